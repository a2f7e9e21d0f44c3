"""The numbers behind one small layer's backward: its full Jacobian J (by the checker's finite
differences), the isolated check's upstream gradient G, Gᵀ·J, and the layer's own VJP
backward(G), which must equal Gᵀ·J. Plain data; explain_render.py shows it."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import format_shape
from .explain import select, symbols_for

#: the largest Jacobian (entries) that ``--jacobian`` prints; beyond it a screen cannot show it
MAX_JACOBIAN_ENTRIES = 400


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
    from ..check.network import STREAM_COTANGENT, node_key, rng_for
    from ..check.tolerance import rel_error

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
    jac = _jacobian(lambda t: forward(t, params) if tensor == "x" else forward(x, {**params, tensor: t}),
                    theta, out)
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
        view.vjp_error = (f"backward returned d{tensor} of shape {format_shape(vjp.shape)}, but "
                          f"{view.tensor_symbol} is {format_shape(theta.shape)}")
        view.vjp = vjp
    elif vjp is not None:
        view.vjp = vjp
        view.rel_error = rel_error(vjp, view.product)
    elif view.vjp_error is None:
        view.vjp_error = f"backward returned no gradient for {tensor}"
    return view


def _jacobian(forward, theta: np.ndarray, out: np.ndarray) -> np.ndarray:
    """J[i, j] = ∂out_i/∂θ_j by the checker's central differences and step (differences.py):
    each output entry is a scalar function of θ, and every one of them reads the same perturbed
    copies, so each copy's forward pass runs once."""
    from ..check.differences import entry_differences, resolve_step, stack_entries

    method = "central"
    idx = np.arange(theta.size)
    seen: dict[bytes, np.ndarray] = {}

    def outputs(probe_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        key = probe_idx.tobytes() + values.tobytes()
        if key not in seen:
            stack = stack_entries(theta, probe_idx, values)
            seen[key] = np.stack([np.reshape(forward(t), -1) for t in stack])
        return seen[key]

    flat = np.reshape(out, -1)
    rows = [entry_differences(lambda i, v, k=k: outputs(i, v)[:, k], theta, idx,
                              resolve_step("auto", method), method, float(flat[k]),
                              chunk=2 * theta.size).grad
            for k in range(flat.size)]
    return np.array(rows).reshape(max(out.size, 1), theta.size)


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
