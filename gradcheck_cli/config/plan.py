"""From a validated spec to a plan: layer classes looked up, options validated, shapes inferred.

Nothing is allocated here except for plugin layers that only say their output shape by building,
so ``gradcheck validate`` stays fast, and absurd sizes fail before any memory is touched.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..errors import QUOTED, GradcheckError, ShapeError, SpecError, quote, shorten, spec_errors
from ..layers.catalog import registered
from ..layers.options import options_model
from ..layers.protocol import Layer, infer_output_shape, overrides
from .document import Document, KeyPath
from .messages import pydantic_error
from .models import MAX_DIM, Spec

#: A network with more parameters than this is refused at validation.
MAX_PARAMS = 50_000_000


@dataclass
class PlannedLayer:
    """One node of the network: a configured layer, where it was written, and its shapes."""

    label: str               # "1", "1a" (an `activation:` shorthand of layer 1), "loss"
    index: int               # 1-based position in `layers:` (0 for the loss)
    type_name: str
    keypath: KeyPath
    line: int | None
    layer: Layer
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    param_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.param_shapes.values())


@dataclass
class Plan:
    """The network a spec describes, before any array exists."""

    spec: Spec
    nodes: list[PlannedLayer]
    loss: PlannedLayer

    @property
    def n_params(self) -> int:
        return sum(n.n_params for n in self.nodes)


def plan_network(spec: Spec, unknown_hint: str = "") -> Plan:
    """Resolve every layer entry of a spec against the registry and infer all shapes.

    Every problem is collected, not only the first: each entry's type and options are checked
    on their own, and shapes as far as the layers before are known (a layer after a broken one
    has no input shape to check). ``unknown_hint`` follows an unknown type's name: how the
    caller's front end loads a plugin file (--plugin for the command line)."""
    doc = spec.doc
    problems: list[SpecError] = []
    shape: tuple[int, ...] | None = tuple(spec.input.shape)
    if spec.layout == "columns" and len(shape) != 1:
        problems.append(doc.error(f"columns layout holds 1-D feature vectors (x is (n, m)); got shape "
                                  f"{list(shape)}: use layout: rows for images and sequences",
                                  ("input", "shape")))
        shape = None
    nodes: list[PlannedLayer] = []
    for i, entry in enumerate(spec.layers):
        keypath: KeyPath = ("layers", i)
        steps = [(entry, keypath, str(i + 1), False)]
        for item, path, label, shorthand in steps:
            try:
                layer, activation = _configure(doc, item, path, kind="layer", shorthand=shorthand,
                                               unknown_hint=unknown_hint)
            except SpecError as exc:
                problems.append(exc)
                shape = None
                break
            if activation is not None:
                steps.append((activation, keypath + ("activation",), f"{i + 1}a", True))
            if shape is None:
                continue
            try:
                node = _place(spec, layer, label, i + 1, path, shape)
            except SpecError as exc:
                problems.append(exc)
                shape = None
                continue
            nodes.append(node)
            shape = node.output_shape
    loss_entry = spec.loss if isinstance(spec.loss, dict) else {"type": spec.loss}
    try:
        loss, _ = _configure(doc, loss_entry, ("loss",), kind="loss", shorthand=isinstance(spec.loss, str),
                             unknown_hint=unknown_hint)
    except SpecError as exc:
        problems.append(exc)
        raise spec_errors(problems) from None
    loss.layout = spec.layout
    if shape is not None:
        try:
            loss.check_input(shape)
        except ShapeError as exc:
            problems.append(doc.error(f"{exc} (the last layer outputs {shape} per example)", ("loss",)))
    if problems:
        raise spec_errors(problems)
    loss_node = PlannedLayer("loss", 0, loss.type_name, ("loss",), doc.locate(("loss",))[0], loss,
                             shape, ())
    plan = Plan(spec, nodes, loss_node)
    if plan.n_params > MAX_PARAMS:
        raise doc.error(f"the network has {plan.n_params:,} parameters; gradcheck checks at most "
                        f"{MAX_PARAMS:,}: use smaller sizes", ("layers",))
    return plan


def entry_problems(doc: Document, unknown_hint: str = "") -> list[SpecError]:
    """The problems of a document's layer and loss entries on their own (types, options), for a
    config whose top-level keys are already wrong: all of a file's mistakes come in one run."""
    data = doc.data if isinstance(doc.data, dict) else {}
    problems: list[SpecError] = []
    entries = data.get("layers")
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict):
            continue  # the spec's own validation has said what is wrong with it
        try:
            _, activation = _configure(doc, entry, ("layers", i), kind="layer", unknown_hint=unknown_hint)
            if activation is not None:
                _configure(doc, activation, ("layers", i, "activation"), kind="layer", shorthand=True,
                           unknown_hint=unknown_hint)
        except SpecError as exc:
            problems.append(exc)
    loss = data.get("loss")
    if isinstance(loss, (str, dict)):
        try:
            _configure(doc, loss if isinstance(loss, dict) else {"type": loss}, ("loss",),
                       kind="loss", shorthand=isinstance(loss, str), unknown_hint=unknown_hint)
        except SpecError as exc:
            problems.append(exc)
    return problems


def _configure(doc: Document, entry: Any, keypath: KeyPath, kind: str,
               shorthand: bool = False, unknown_hint: str = "") -> tuple[Layer, Any]:
    """Instantiate the registered class an entry names, with its validated options."""
    if isinstance(entry, str) and shorthand:
        entry = {"type": entry}
    if not isinstance(entry, dict):
        raise doc.error(f"expected a mapping with a `type` key, got {quote(entry)}", keypath)
    type_path = keypath if shorthand and set(entry) == {"type"} else keypath + ("type",)
    name = entry.get("type")
    if name is None:
        raise doc.error(f"missing `type`: one of {_names(kind)}", keypath)
    if not isinstance(name, str):
        raise doc.error(f"`type` must be a {'loss' if kind == 'loss' else 'layer'} name such as "
                        f"`{'mse' if kind == 'loss' else 'dense'}`, got {quote(name)} "
                        "(`gradcheck layers` lists them)", type_path)
    available = registered()
    cls = available.get(name)
    if cls is None:
        close = difflib.get_close_matches(name, list(registered(kind)), n=1) if len(name) <= QUOTED else []
        # no name close to it: most likely a plugin's layer whose file was not loaded
        what = "loss" if kind == "loss" else "layer"
        if close or not unknown_hint:
            hint = f": did you mean `{close[0]}`? " if close else ": "
        else:
            hint = f" (a plugin {what}? {unknown_hint}); "
        raise doc.error(f"unknown {what} type `{shorten(name)}`{hint}valid types: {_names(kind)}", type_path)
    if getattr(cls, "kind", "layer") != kind:
        where = "under `loss:`" if kind == "layer" else "in `layers:`"
        raise doc.error(f"`{name}` is a {getattr(cls, 'kind', 'layer')}, so it belongs {where}", type_path)
    model = options_model(cls)
    # a layer with an `activation` option of its own (transformer_block's MLP) takes it; for the
    # others `activation:` is the shorthand for an activation layer after this one
    own = "activation" in model.model_fields
    options = {k: v for k, v in entry.items() if k != "type" and (own or k != "activation")}
    activation = None if own else entry.get("activation")
    if "activation" in entry and kind == "loss":
        raise doc.error("a loss takes no `activation`: put it on the last layer instead",
                        keypath + ("activation",))
    try:
        validated = model.model_validate(options)
    except ValidationError as exc:
        keys = ["type", *model.model_fields] + ([] if kind == "loss" or own else ["activation"])
        raise pydantic_error(doc, exc, model=model, prefix=keypath, valid_keys=keys) from None
    kwargs = {k: getattr(validated, k) for k in model.model_fields}
    kwargs.update(validated.model_extra or {})
    try:
        layer = cls(**kwargs)
    except GradcheckError:
        raise
    except Exception as exc:  # a plugin's constructor refusing its options
        raise doc.error(f"{name}({', '.join(f'{k}={quote(v)}' for k, v in kwargs.items())}) raised "
                        f"{type(exc).__name__}: {shorten(str(exc), 4 * QUOTED)}", keypath) from None
    if not hasattr(layer, "params"):
        layer.params = {}
    inner_option = getattr(cls, "inner_option", None)
    if inner_option is not None:
        _configure_inner(doc, layer, kwargs[inner_option], keypath + (inner_option,), unknown_hint)
    return layer, activation


def _configure_inner(doc: Document, layer: Layer, entries: list, keypath: KeyPath,
                     unknown_hint: str = "") -> None:
    """A composite's inner layer entries (``inner_option`` names the option that holds them),
    resolved like top-level ones so that their errors are located at e.g. layers[2].layers[0]."""
    children, paths, labels = [], [], []
    for j, entry in enumerate(entries):
        child, activation = _configure(doc, entry, keypath + (j,), kind="layer", unknown_hint=unknown_hint)
        children.append(child)
        paths.append(keypath + (j,))
        labels.append(str(j + 1))
        if activation is not None:
            act_path = keypath + (j, "activation")
            children.append(_configure(doc, activation, act_path, kind="layer", shorthand=True,
                                       unknown_hint=unknown_hint)[0])
            paths.append(act_path)
            labels.append(f"{j + 1}a")
    try:
        layer.set_inner(children, labels)
    except ShapeError as exc:
        raise doc.error(f"{exc}", keypath) from None
    layer.inner_keypaths = paths


def _place(spec: Spec, layer: Layer, label: str, index: int, keypath: KeyPath,
           in_shape: tuple[int, ...]) -> PlannedLayer:
    doc = spec.doc
    name = layer.type_name
    layouts = getattr(layer, "layouts", ("rows", "columns"))
    if spec.layout not in layouts:
        raise doc.error(f"`{name}` supports layout {' or '.join(layouts)}, not {spec.layout}", keypath)
    layer.layout = spec.layout
    shape = tuple(in_shape)
    for child, child_path in zip(getattr(layer, "inner_layers", ()), getattr(layer, "inner_keypaths", ())):
        shape = _place(spec, child, label, index, child_path, shape).output_shape
    try:
        out = infer_output_shape(layer, in_shape)
        shapes = layer.param_shapes(in_shape) if overrides(layer, "param_shapes") else {}
    except ShapeError as exc:
        raise doc.error(f"{exc}", keypath) from None
    except GradcheckError:
        raise
    except Exception as exc:
        raise doc.error(f"{name} cannot take input shape {in_shape}: {type(exc).__name__}: {exc}",
                        keypath) from None
    if not overrides(layer, "param_shapes") and getattr(layer, "params", None):
        shapes = {k: tuple(getattr(v, "shape", ())) for k, v in layer.params.items()}
    if spec.layout == "columns" and len(out) != 1:
        raise doc.error(f"`{name}` outputs shape {out}, but columns layout holds 1-D feature vectors",
                        keypath)
    _check_sizes(doc, name, keypath, tuple(out), shapes)
    line = doc.locate(keypath)[0]
    return PlannedLayer(label, index, name, keypath, line, layer, tuple(in_shape), tuple(out), shapes)


def _check_sizes(doc, name: str, keypath: KeyPath, out: tuple[int, ...],
                 shapes: dict[str, tuple[int, ...]]) -> None:
    """Absurd sizes fail here, from shapes alone and located at the layer, before any array exists."""
    if math.prod(out) > MAX_DIM:
        raise doc.error(f"`{name}` would output {math.prod(out):,} values per example (shape {out}); "
                        f"gradcheck allows at most {MAX_DIM:,}: use smaller sizes", keypath)
    sizes = {k: math.prod(s) for k, s in shapes.items()}
    if sum(sizes.values()) > MAX_PARAMS:
        big = max(sizes, key=sizes.get)
        raise doc.error(f"`{name}` would have {sum(sizes.values()):,} parameters ({big} has shape "
                        f"{tuple(shapes[big])}); gradcheck checks at most {MAX_PARAMS:,}: use "
                        "smaller sizes", keypath)


def _names(kind: str) -> str:
    return ", ".join(registered(kind))


__all__ = ["Plan", "PlannedLayer", "plan_network", "SpecError"]
