"""The equations a config asks its author to write, with this config's concrete shapes.

The text comes from each layer class: a method next to its backward,
``explain(self, s: Symbols) -> {"forward": [...], "backward": [...], "notes": [...]}`` (or a plain
list of lines), where a line is a string or a pair ``(equation, shapes)`` so that shapes can be
aligned in a column. ``Symbols`` names this layer's tensors in the course's notation (``A[l-1]``,
``Z[l]``, ``W[l]``) and formats their shapes. A layer without the method gets its docstring.

Nothing here prints: ``explain_plan`` and ``jacobian_view`` return plain data that
explain_render.py shows.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Union

from ..layers.protocol import full_shape
from ..config.plan import Plan, PlannedLayer

Line = Union[str, tuple[str, str]]

#: the largest Jacobian (entries) that ``--jacobian`` prints; beyond it a screen cannot show it
MAX_JACOBIAN_ENTRIES = 400
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
        return _fmt(shape[::-1] if transpose else shape)

    def shape(self, symbol: str) -> str:
        """A tensor's shape with its batch axis named: ``(7, m=16)``."""
        shape = self.shapes[symbol]
        if symbol not in self.batched:
            return _fmt(shape)
        parts = [str(d) for d in shape]
        k = len(parts) - 1 if self.layout == "columns" else 0
        parts[k] = f"m={parts[k]}"
        return "(" + ", ".join(parts) + ")"

    @property
    def batch_sum(self) -> str:
        """How the course writes a sum over the examples in this layout."""
        return "Σ_columns" if self.layout == "columns" else "Σ_rows"


def _fmt(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


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


# -- the Jacobian, for a layer small enough to print --------------------------------------------------

@dataclass
class JacobianView:
    label: str
    layer_type: str
    tensor: str                       # "x", "W", ...
    tensor_symbol: str
    out_symbol: str
    out_shape: tuple[int, ...]
    tensor_shape: tuple[int, ...]
    too_big: str | None = None        # why it is not shown
    jacobian: Any = None              # (out.size, tensor.size), built by central differences
    upstream: Any = None              # G, shaped like the output
    product: Any = None               # Gᵀ·J reshaped to the tensor's shape
    vjp: Any = None                   # the layer's backward(G)[tensor]
    vjp_error: str | None = None      # why the VJP could not be shown
    rel_error: float | None = None


def jacobian_view(net, label: str, tensor: str | None = None) -> JacobianView:
    """J of one layer's output with respect to one of its tensors (central differences on its real
    input from the network's forward pass), the seeded upstream gradient G of the isolated check,
    Gᵀ·J, and the layer's own VJP backward(G)."""
    import numpy as np

    from ..check.network import STREAM_COTANGENT, node_key, rng_for

    plan = net.plan
    node = select(plan, label)[0]
    syms = {s.label: s for s in symbols_for(plan)}[node.label]
    tensors = ["x", *node.layer.params]
    tensor = tensor or (tensors[1] if len(tensors) > 1 else "x")
    if tensor not in tensors:
        from ..errors import UsageError

        raise UsageError(f"layer {node.label} ({node.type_name}) has no tensor {tensor!r}: "
                         f"choose one of {', '.join(tensors)}")
    x = net.x
    for n in plan.nodes:
        if n is node:
            break
        x = n.layer.forward(x)[0]
    if np.issubdtype(np.asarray(x).dtype, np.floating):
        x = np.asarray(x, dtype=np.float64)
    elif tensor == "x":
        from ..errors import UsageError

        raise UsageError(f"layer {node.label} ({node.type_name}) takes integers (indices) as x, "
                         f"which have no derivative: choose a parameter with --tensor "
                         f"({', '.join(tensors[1:]) or 'it has none'})")
    layer = node.layer
    params = {k: np.asarray(v, dtype=np.float64) for k, v in layer.params.items()}
    is_loss = node is plan.loss
    targets = net.targets

    def forward(xv, pv):
        import copy

        clone = copy.copy(layer)
        clone.params = pv
        return np.asarray(clone.forward(xv, targets)[0] if is_loss else clone.forward(xv)[0],
                          dtype=np.float64)

    try:
        out = forward(x, params)
    except Exception as exc:  # a plugin's forward: a located error, not a crash
        from ..check.network import runtime_error

        raise runtime_error(plan, node, "forward", exc) from None
    theta = x if tensor == "x" else params[tensor]
    view = JacobianView(node.label, node.type_name, tensor,
                        syms.x if tensor == "x" else syms.params[tensor], syms.y,
                        tuple(out.shape), tuple(theta.shape))
    entries = max(out.size, 1) * theta.size
    if entries > MAX_JACOBIAN_ENTRIES:
        view.too_big = (f"J would be {max(out.size, 1)} × {theta.size} = {entries:,} entries, more "
                        f"than the {MAX_JACOBIAN_ENTRIES} that fit on a screen: try a config with "
                        "batch: 2 and a few units. Backprop never forms J: the VJP Gᵀ·J is computed "
                        "directly, which is why it only needs tensors of the shapes above.")
        return view
    if is_loss:
        g = np.ones(())
    else:
        g = rng_for(plan.spec.seed, STREAM_COTANGENT, *node_key(node)).standard_normal(out.shape)
    jac = np.zeros((max(out.size, 1), theta.size))
    for j in range(theta.size):
        h = 6e-6 * max(1.0, abs(float(theta.flat[j])))
        cols = []
        for sign in (1.0, -1.0):
            t = theta.copy()
            t.flat[j] += sign * h
            cols.append(forward(t, params) if tensor == "x" else forward(x, {**params, tensor: t}))
        jac[:, j] = ((cols[0] - cols[1]) / (2 * h)).reshape(-1)
    view.jacobian, view.upstream = jac, g
    view.product = (g.reshape(-1) @ jac).reshape(theta.shape)
    try:
        xd = x.astype(net.dtype) if np.issubdtype(x.dtype, np.floating) else x
        cache = layer.forward(xd, targets)[1] if is_loss else layer.forward(xd)[1]
        result = layer.backward(1.0 if is_loss else g.astype(net.dtype), cache)
        vjp = result if is_loss else (result[0] if tensor == "x" else result[1].get(tensor))
        vjp = None if vjp is None else np.asarray(vjp, dtype=np.float64)
    except Exception as exc:  # the backward under study may be broken: say so, do not crash
        vjp, view.vjp_error = None, f"backward raised {type(exc).__name__}: {exc}"
    if vjp is not None and vjp.shape != view.product.shape:
        view.vjp_error = (f"backward returned d{tensor} of shape {_fmt(vjp.shape)}, but "
                          f"{view.tensor_symbol} is {_fmt(theta.shape)}")
        view.vjp = vjp
    elif vjp is not None:
        view.vjp = vjp
        denom = float(np.linalg.norm(vjp) + np.linalg.norm(view.product))
        view.rel_error = 0.0 if denom == 0 else float(np.linalg.norm(vjp - view.product)) / denom
    elif view.vjp_error is None:
        view.vjp_error = f"backward returned no gradient for {tensor}"
    return view


def entries_label(shape: tuple[int, ...]) -> list[str]:
    """Row/column names of a flattened tensor: its index tuples in C order."""
    if not shape:
        return ["()"]
    import itertools

    if len(shape) == 1:
        return [str(i) for i in range(shape[0])]
    return ["(" + ",".join(str(i) for i in idx) + ")" for idx in itertools.product(*map(range, shape))]


def n_entries(shape: tuple[int, ...]) -> int:
    return math.prod(shape) if shape else 1
