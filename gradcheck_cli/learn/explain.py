"""The equations a config asks its author to write, with this config's concrete shapes.

The text comes from each layer class: a method next to its backward,
``explain(self, s: Symbols) -> {"forward": [...], "backward": [...], "notes": [...]}`` (or a plain
list of lines), where a line is a string or a pair ``(equation, shapes)`` so that shapes can be
aligned in a column. ``Symbols`` names this layer's tensors in the course's notation (``A[l-1]``,
``Z[l]``, ``W[l]``) and formats their shapes. A layer without the method gets its docstring.

Nothing here prints: ``explain_plan`` returns plain data that explain_render.py shows (and
jacobian.py, the numbers of one small layer's Jacobian, uses the same symbols).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Union

from ..errors import format_shape
from ..layers.protocol import full_shape
from ..config.plan import Plan, PlannedLayer

Line = Union[str, tuple[str, str]]

SECTIONS = ("forward", "backward", "notes")


@dataclass
class Symbols:
    """Names and shapes of one layer's tensors, for its ``explain`` method.

    ``x``/``y`` are the input/output symbols (``A[0]``, ``Z[1]``), ``params`` maps a parameter
    name to its symbol (``"W" -> "W[1]"``), ``shapes`` maps symbols to full shapes (batched
    tensors include the batch axis, last in columns layout, first in rows)."""

    label: str
    l: str
    layout: str
    m: int
    x: str
    y: str
    params: dict[str, str]
    shapes: dict[str, tuple[int, ...]]
    batched: set[str] = field(default_factory=set)

    def p(self, name: str) -> str:
        return self.params[name]

    def dims(self, symbol: str, transpose: bool = False) -> str:
        """A tensor's shape as numbers, ``(5, 16)``, reversed when transposed."""
        shape = self.shapes[symbol.lstrip("d")] if symbol not in self.shapes else self.shapes[symbol]
        return format_shape(shape[::-1] if transpose else shape)

    def shape(self, symbol: str) -> str:
        """A tensor's shape with its batch axis named: ``(7, m=16)``."""
        shape = self.shapes[symbol]
        if symbol not in self.batched:
            return format_shape(shape)
        parts = [str(d) for d in shape]
        k = len(parts) - 1 if self.layout == "columns" else 0
        parts[k] = f"m={parts[k]}"
        return "(" + ", ".join(parts) + ")"

    @property
    def batch_sum(self) -> str:
        """How the course writes a sum over the examples in this layout."""
        return "Σ_columns" if self.layout == "columns" else "Σ_rows"


@dataclass
class LayerExplanation:
    label: str
    layer_type: str
    line: int | None
    options: str
    forward: list[tuple[str, str]]
    backward: list[tuple[str, str]]
    notes: list[str]
    from_docstring: bool = False
    doc: str = ""                     # the docstring shown when the class has no explain()


@dataclass
class Explanation:
    name: str
    path: str
    layout: str
    m: int
    layers: list[LayerExplanation]
    notes: list[str]


def _options(layer: Any) -> str:
    try:
        names = [p for p in inspect.signature(type(layer).__init__).parameters if p != "self"]
    except (TypeError, ValueError):
        return ""
    params = inspect.signature(type(layer).__init__).parameters
    # defaults are noise in a heading; what the config chose is what the reader wrote
    values = [f"{k}={getattr(layer, k)!r}" for k in names if hasattr(layer, k)
              and (params[k].default is inspect.Parameter.empty or params[k].default != getattr(layer, k))]
    return ", ".join(values)


def symbols_for(plan: Plan) -> list[Symbols]:
    """The course's names along the network: A[0] in, Z[l] out of a layer with parameters, A[l]
    out of one without (an activation); the loss reads the last output and gives J."""
    spec = plan.spec
    m, layout = spec.input.batch, spec.layout
    def full(s):
        return full_shape(layout, s, m)

    prev = "A[0]"
    out: list[Symbols] = []
    for node in plan.nodes:
        l = str(node.index)
        y = f"Z[{l}]" if node.param_shapes else f"A[{l}]"
        params = {k: f"{k}[{l}]" for k in node.param_shapes}
        shapes = {prev: full(node.input_shape), y: full(node.output_shape),
                  **{params[k]: tuple(v) for k, v in node.param_shapes.items()}}
        out.append(Symbols(node.label, l, layout, m, prev, y, params, shapes, {prev, y}))
        prev = y
    loss = plan.loss
    shapes = {prev: full(loss.input_shape), "J": (), "Y": full(loss.input_shape)}
    out.append(Symbols("loss", "L", layout, m, prev, "J", {}, shapes, {prev, "Y"}))
    return out


def _lines(items) -> list[tuple[str, str]]:
    return [(i, "") if isinstance(i, str) else (str(i[0]), str(i[1])) for i in items or []]


def explain_node(node: PlannedLayer, s: Symbols) -> LayerExplanation:
    layer = node.layer
    method = getattr(layer, "explain", None)
    base = LayerExplanation(node.label, node.type_name, node.line, _options(layer), [], [], [])
    failed = None
    if callable(method):
        try:
            found = method(s)
            if isinstance(found, dict):
                base.forward = _lines(found.get("forward"))
                base.backward = _lines(found.get("backward"))
                base.notes = [str(n) for n in found.get("notes", [])]
            else:
                base.forward = _lines(found)
            return base
        except Exception as exc:  # a plugin's explain(): show its docstring and say why
            failed = f"{type(layer).__qualname__}.explain raised {type(exc).__name__}: {exc}"
            base.forward, base.backward, base.notes = [], [], []
    doc = inspect.cleandoc(type(layer).__doc__ or "") or f"{node.type_name}: no docstring"
    shapes = f"{s.x}: {s.dims(s.x)} → {s.y}: {s.dims(s.y) if s.y != 'J' else 'scalar'}"
    params = ", ".join(f"{sym}: {s.dims(sym)}" for sym in s.params.values())
    base.forward = [(shapes + (f"; {params}" if params else ""), "")]
    base.doc = doc
    base.notes = [failed or f"from the docstring of {type(layer).__qualname__}: give the class an "
                  "explain(self, s) method for equations with this config's shapes"]
    base.from_docstring = True
    return base


def select(plan: Plan, layer: str | None) -> list[PlannedLayer]:
    """Nodes named by --layer: a label ("2", "2a", "loss"), or an index for a layer and its
    activation; all nodes and the loss when None."""
    nodes = [*plan.nodes, plan.loss]
    if layer is None:
        return nodes
    chosen = [n for n in nodes if n.label == layer]
    if layer.isdigit():
        chosen = [n for n in plan.nodes if n.index == int(layer)]
    if not chosen:
        from ..errors import UsageError

        labels = ", ".join(n.label for n in nodes)
        raise UsageError(f"no layer {layer!r} in {plan.spec.doc.path}: choose one of {labels}")
    return chosen


def explain_plan(plan: Plan, layer: str | None = None) -> Explanation:
    spec = plan.spec
    syms = {s.label: s for s in symbols_for(plan)}
    chosen = select(plan, layer)
    layers = [explain_node(n, syms[n.label]) for n in chosen]
    notes = []
    decayed = [syms[n.label].params[p] for n in chosen for p in getattr(n.layer, "decay", ())
               if p in syms[n.label].params]
    if spec.l2 and decayed:
        notes.append(f"L2 (λ = {spec.l2:g}): J += (λ/2m)·Σ_l ‖W[l]‖², so dW[l] += (λ/m)·W[l] "
                     f"for {', '.join(decayed)}")
    return Explanation(spec.name or "", spec.doc.path, spec.layout, spec.input.batch, layers, notes)
