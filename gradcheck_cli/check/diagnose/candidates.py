"""Hypotheses that compare the analytic gradient with gradients computed another way: a
neighbouring layer's, this layer's with the wrong cache, or with its kernel flipped. The
candidates cost finite differences, so the Context holds them lazily."""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from ..tolerance import rel_error
from .context import Context, as_f64, fails, grad_name, resolved


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


def transformed_parameter(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The analytic gradient is the one the layer would have with a parameter transformed
    (a kernel flipped): the backward uses the parameter in another form than the forward."""
    if not fails(a, n, ctx):
        return None
    found = resolved(ctx.transformed)
    for name, candidate in found.items():
        c = as_f64(candidate)
        if c is not None and c.shape == a.shape and np.any(c) and rel_error(a, c) <= ctx.explain_rtol:
            return (f"{grad_name(ctx)} is the gradient of the layer with {name}: the backward uses the kernel "
                    f"flipped (a convolution where the forward is a cross-correlation)")
    return None


def _vjp_by_differences(forward: Callable[[np.ndarray, dict[str, np.ndarray]], np.ndarray],
                        x: np.ndarray, params: dict[str, np.ndarray], tensor: str, g: np.ndarray,
                        eps: float) -> np.ndarray:
    """Central differences of ⟨forward(x, params), g⟩ with respect to ``tensor`` (``x`` or a
    parameter), entry by entry in float64: the gradient a candidate backward would return."""
    theta = x if tensor == "x" else params[tensor]
    grad = np.zeros_like(theta)
    flat = grad.reshape(-1)
    for j in range(theta.size):
        h = eps * max(1.0, abs(float(theta.flat[j])))
        vals = []
        for sign in (1.0, -1.0):
            t = theta.copy()
            t.flat[j] += sign * h
            y = forward(t, params) if tensor == "x" else forward(x, {**params, tensor: t})
            vals.append(float((np.asarray(y, dtype=np.float64) * g).sum()))
        flat[j] = (vals[0] - vals[1]) / (2 * h)
    return grad


def wrong_cache_candidates(forward: Callable[[np.ndarray, dict[str, np.ndarray]], np.ndarray],
                           params: dict[str, np.ndarray], tensor: str, cotangent: np.ndarray,
                           inputs: Mapping[str, np.ndarray], eps: float = 1e-6) -> dict[str, np.ndarray]:
    """The gradient of ⟨forward(x', params), G⟩ with respect to ``tensor`` at other inputs x'
    (another layer's input or output of the same shape): what a backward that used the wrong
    cache returns. ``forward(x, params) -> out``; central differences in float64, inputs untouched."""
    g = np.asarray(cotangent, dtype=np.float64)
    base = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    return {f"d{tensor} with {name} as the cache":
            _vjp_by_differences(forward, np.asarray(x_alt, dtype=np.float64), base, tensor, g, eps)
            for name, x_alt in inputs.items()}


def transformed_candidates(forward: Callable[[np.ndarray, dict[str, np.ndarray]], np.ndarray],
                           params: dict[str, np.ndarray], tensor: str, cotangent: np.ndarray,
                           x: np.ndarray, eps: float = 1e-6) -> dict[str, np.ndarray]:
    """The gradient of ⟨forward(x, params'), G⟩ with respect to ``tensor`` where params' has a
    4-D kernel flipped in its last two axes: what a backward that flips the kernel returns."""
    g = np.asarray(cotangent, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    base = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    out: dict[str, np.ndarray] = {}
    for name, value in base.items():
        if value.ndim != 4 or value.shape[-1] < 2 or value.shape[-2] < 2:
            continue
        alt = {**base, name: value[..., ::-1, ::-1].copy()}
        out[f"{name} flipped in its last two axes"] = _vjp_by_differences(forward, x, alt, tensor, g, eps)
    return out
