"""Hypotheses that compare a failing gradient with gradients computed another way: a
neighbouring layer's, this layer's with the wrong cache, with its kernel flipped or at stride 1
(what such a backward returns), and the layer's own backward given a cached matrix transposed
(when that repairs it, the backward uses the matrix where its transpose belongs).

The candidates cost finite differences or backward calls, so the Context holds them lazily; the
differences are the checker's (differences.entry_differences, its step and method), in float64.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Mapping

import numpy as np

from ..differences import AUTO_STEP, OFFSETS, entry_differences
from ..tolerance import rel_error
from .context import Context, as_f64, fails, grad_name, resolved
from .quantities import STRIDE

Forward = Callable[[np.ndarray, dict[str, np.ndarray]], np.ndarray]
#: the new candidates (stride 1, a cached matrix transposed) skip tensors above this size: their
#: differences cost two forward calls per entry, and a learner's loop layer may take ms per call
CANDIDATE_LIMIT = 4096


def neighbour(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The analytic gradient is one that belongs elsewhere: a neighbouring layer's, or this one's
    computed from the wrong cache."""
    if not fails(a, n, ctx):
        return None
    found = resolved(ctx.neighbours)
    for name, candidate in found.items():
        c = as_f64(candidate)
        if c is not None and c.shape == a.shape and np.any(c) and rel_error(a, c) <= ctx.explain_rtol:
            return f"{grad_name(ctx)} equals {name}: a neighbouring layer's gradient, or the wrong cache?"
    return None


def transformed_layer(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The analytic gradient is the one the layer would have transformed (its kernel flipped, its
    stride 1): the backward computes another layer than the forward. ``ctx.transformed`` maps
    what to say to that layer's gradient."""
    if not fails(a, n, ctx):
        return None
    for says, candidate in resolved(ctx.transformed).items():
        c = as_f64(candidate)
        if c is not None and c.shape == a.shape and np.any(c) and rel_error(a, c) <= ctx.explain_rtol:
            return says
    return None


def repaired_by_cache(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The layer's backward, given one cached matrix transposed, returns the right gradient:
    it multiplies by that matrix where its transpose belongs. ``ctx.repairs`` maps what to say
    to the gradient so obtained."""
    if not fails(a, n, ctx) or a.shape != n.shape:
        return None
    for says, candidate in resolved(ctx.repairs).items():
        c = as_f64(candidate)
        if c is not None and c.shape == n.shape and np.any(c) and rel_error(c, n) <= ctx.explain_rtol:
            return says
    return None


# -- candidates ------------------------------------------------------------------------------------

def _vjp_by_differences(forward: Forward, x: np.ndarray, params: dict[str, np.ndarray], tensor: str,
                        g: np.ndarray, step: float, method: str) -> np.ndarray:
    """The checker's differences of ⟨forward(x, params), g⟩ with respect to ``tensor`` (``x`` or
    a parameter), one perturbed copy per call, in float64: the gradient a candidate backward
    would return."""
    theta = x if tensor == "x" else params[tensor]

    def f(value: np.ndarray) -> Any:
        y = forward(value, params) if tensor == "x" else forward(x, {**params, tensor: value})
        return (np.asarray(y) * g).sum()

    def evaluate(idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        out = np.empty(idx.size, dtype=np.result_type(values.dtype, np.float64))
        for k, (j, v) in enumerate(zip(idx, values)):
            t = theta.astype(out.dtype, copy=True)
            t.flat[j] = v
            out[k] = f(t)
        return out

    y0 = forward(x, params)
    f0 = float((np.asarray(y0, dtype=np.float64) * g).sum())
    f_scale = float(np.abs(np.asarray(y0, dtype=np.float64) * g).sum())
    idx = np.arange(theta.size)
    d = entry_differences(evaluate, theta, idx, step, method, f0, theta.size * len(OFFSETS[method]), f_scale)
    return d.grad.reshape(theta.shape)


def wrong_cache_candidates(forward: Forward, params: dict[str, np.ndarray], tensor: str,
                           cotangent: np.ndarray, inputs: Mapping[str, np.ndarray],
                           step: float = AUTO_STEP["central"], method: str = "central") -> dict[str, np.ndarray]:
    """The gradient of ⟨forward(x', params), G⟩ with respect to ``tensor`` at other inputs x'
    (another layer's input or output of the same shape): what a backward that used the wrong
    cache returns. ``forward(x, params) -> out``; differences in float64, inputs untouched."""
    g = np.asarray(cotangent, dtype=np.float64)
    base = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    return {f"d{tensor} with {name} as the cache":
            _vjp_by_differences(forward, np.asarray(x_alt, dtype=np.float64), base, tensor, g, step, method)
            for name, x_alt in inputs.items()}


def transformed_candidates(forward: Forward, params: dict[str, np.ndarray], tensor: str,
                           cotangent: np.ndarray, x: np.ndarray, step: float = AUTO_STEP["central"],
                           method: str = "central") -> dict[str, np.ndarray]:
    """What to say → the gradient of ⟨forward(x, params'), G⟩ with respect to ``tensor`` where
    params' has a 4-D kernel flipped in its last two axes: what a backward that flips the
    kernel returns."""
    g = np.asarray(cotangent, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    base = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    out: dict[str, np.ndarray] = {}
    for name, value in base.items():
        if value.ndim != 4 or value.shape[-1] < 2 or value.shape[-2] < 2:
            continue
        alt = {**base, name: value[..., ::-1, ::-1].copy()}
        says = (f"d{tensor} is the gradient of the layer with {name} flipped in its last two axes: the "
                f"backward uses the kernel flipped (a convolution where the forward is a cross-correlation)")
        out[says] = _vjp_by_differences(forward, x, alt, tensor, g, step, method)
    return out


def _strides(layer: Any) -> list[tuple[str, Any, Any]]:
    """(attribute, stride, the same at 1) of each stride option above 1 the layer keeps."""
    found = []
    for key, value in vars(layer).items():
        if key.lower() not in STRIDE or isinstance(value, bool):
            continue
        if isinstance(value, int) and value > 1:
            found.append((key, value, 1))
        elif isinstance(value, tuple) and value and all(isinstance(v, int) and not isinstance(v, bool)
                                                        for v in value) and max(value) > 1:
            found.append((key, value, (1,) * len(value)))
    return found


def stride_candidates(layer: Any, tensor: str, cotangent: np.ndarray, x: np.ndarray,
                      step: float = AUTO_STEP["central"], method: str = "central") -> dict[str, np.ndarray]:
    """What to say → the gradient the layer would have at stride 1, with the upstream gradient
    as the first outputs of that layer (the stride-1 correlation): what a backward returns that
    takes its windows at i instead of s·i. Only for a layer that keeps a stride option above 1."""
    g = np.asarray(cotangent, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    theta = x if tensor == "x" else layer.params.get(tensor)
    if theta is None or np.size(theta) > CANDIDATE_LIMIT:
        return {}
    out: dict[str, np.ndarray] = {}
    for attr, stride, one in _strides(layer):
        alt = copy.copy(layer)
        setattr(alt, attr, one)
        base = {k: np.asarray(v, dtype=np.float64) for k, v in layer.params.items()}

        def forward(xx, pp, alt=alt):
            new = copy.copy(alt)
            new.params = {**alt.params, **pp}
            return new.forward(xx)[0]

        try:
            y1 = np.asarray(forward(x, base))
        except Exception:  # a layer that cannot run at stride 1 has no such candidate
            continue
        if y1.ndim != g.ndim or any(a < b for a, b in zip(y1.shape, g.shape)) or y1.shape == g.shape:
            continue
        g1 = np.zeros(y1.shape)
        g1[tuple(slice(0, d) for d in g.shape)] = g
        grown = [k for k in range(g.ndim) if y1.shape[k] != g.shape[k]]
        first = "×".join(str(g.shape[k]) for k in grown)
        s = stride if isinstance(stride, int) else (stride[0] if len(set(stride)) == 1 else stride)
        says = (f"d{tensor} is the stride-1 correlation: the gradient of this layer at stride 1, with "
                f"dout as its first {first} outputs; the layer's {attr} {s} is not applied in backward "
                f"(window positions taken at i instead of {s}·i)")
        try:
            out[says] = _vjp_by_differences(forward, x, base, tensor, g1, step, method)
        except Exception:
            continue
    return out


def _arrays(cache: Any) -> list[tuple[tuple, np.ndarray]]:
    """(path, array) of the arrays in a cache: the cache itself, or the items of a tuple, list
    or dict (one level down too)."""
    found: list[tuple[tuple, np.ndarray]] = []

    def walk(node: Any, path: tuple, depth: int) -> None:
        if isinstance(node, np.ndarray):
            found.append((path, node))
        elif depth < 2 and isinstance(node, (tuple, list)):
            for i, v in enumerate(node):
                walk(v, path + (i,), depth + 1)
        elif depth < 2 and isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + (k,), depth + 1)
    walk(cache, (), 0)
    return found


def _replaced(node: Any, path: tuple, value: np.ndarray) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        return {**node, head: _replaced(node[head], rest, value)}
    items = list(node)
    items[head] = _replaced(items[head], rest, value)
    if isinstance(node, list):
        return items
    return tuple(items) if type(node) is tuple else type(node)(*items)  # a namedtuple


def _row_stochastic(m: np.ndarray) -> bool:
    return bool(np.all(m >= 0) and np.allclose(m.sum(axis=-1), 1.0, rtol=1e-9, atol=1e-12))


def transposed_cache_candidates(backward: Callable[[np.ndarray, Any], Any], cache: Any, tensor: str,
                                cotangent: np.ndarray) -> dict[str, np.ndarray]:
    """What to say → the gradient of ``tensor`` that the layer's backward returns when one square
    matrix of its cache (the last two axes, not symmetric) is given transposed. When that is the
    right gradient, the backward multiplies by the matrix where its transpose belongs."""
    out: dict[str, np.ndarray] = {}
    for path, arr in _arrays(cache):
        if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2] or arr.shape[-1] < 2 \
                or not np.issubdtype(arr.dtype, np.floating) or arr.size > CANDIDATE_LIMIT:
            continue
        flipped = np.swapaxes(arr, -1, -2).copy()
        if np.allclose(flipped, arr):
            continue
        try:
            dx, grads = backward(np.array(cotangent, copy=True), _replaced(cache, path, flipped))
            got = dx if tensor == "x" else grads[tensor]
        except Exception:  # a backward that cannot take it says nothing
            continue
        if got is None:
            continue
        item = "the cache" if not path else "cache item " + "][".join(str(p) for p in path)
        shape = "(" + ", ".join(str(d) for d in arr.shape) + ")"
        if _row_stochastic(arr):
            what = f"{item}, the {shape} attention weights P (its rows sum to 1),"
            how = "P where Pᵀ belongs (dV = P·dO instead of Pᵀ·dO?)"
        else:
            what, how = f"{item} ({shape})", "that matrix M where Mᵀ belongs (M·dout instead of Mᵀ·dout)"
        says = (f"d{tensor} comes out right when backward is given {what} transposed in its last "
                f"two axes: backward multiplies by {how}")
        out[says] = np.asarray(got, dtype=np.float64)
    return out
