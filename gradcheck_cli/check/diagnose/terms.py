"""Hypotheses about a term of the backward: the skip path of a residual forgotten or counted
twice, the gradient copied from another tensor of the layer, a normalization's mean or variance
term missing (the error constant along an axis, or proportional to the standardized input)."""
from __future__ import annotations

import numpy as np

from ..tolerance import rel_error
from .context import Context, as_f64, fails, grad_name


def skip_path(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """dx off by exactly the upstream gradient (a skip path forgotten or counted twice), or dx
    equal to it in a layer with parameters (only the skip path, the branch forgotten)."""
    g = as_f64(ctx.cotangent)
    if ctx.tensor != "x" or g is None or g.shape != a.shape or not fails(a, n, ctx):
        return None
    if rel_error(a + g, n) <= ctx.explain_rtol:
        return ("analytic + dout = numeric: the skip (identity) path's dout is missing from dx "
                "(a residual's dx = dout + the branch's dx)")
    if rel_error(a - g, n) <= ctx.explain_rtol:
        return "analytic − dout = numeric: dout is added once too often (the skip path counted twice?)"
    if ctx.params and rel_error(a, g) <= ctx.explain_rtol:
        return ("dx = dout itself: only the skip (identity) path; the gradient through the layer's "
                "branch is missing")
    return None


def equals_other(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The gradient returned is the layer's gradient of another tensor of the same shape."""
    for name, other in ctx.others.items():
        o = as_f64(other)
        if o is None or o.shape != a.shape or not np.any(o) or name == ctx.tensor:
            continue
        if rel_error(a, o) <= ctx.explain_rtol:
            return (f"{grad_name(ctx)} equals d{name}, this layer's gradient of {name}: copied from the wrong "
                    f"tensor, or the factor that tells them apart is missing (x̂ for a norm's γ?)")
    return None


def _standardized(x: np.ndarray, axis: int) -> np.ndarray:
    mu = x.mean(axis=axis, keepdims=True)
    sd = x.std(axis=axis, keepdims=True)
    return (x - mu) / np.where(sd > 0, sd, 1.0)


def error_structure(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The error a − n constant along an axis (a term through a mean missing), or proportional to
    the input standardized along that axis (a term through a variance missing): the two terms of
    a normalization's backward."""
    x = as_f64(ctx.layer_input)
    if ctx.tensor != "x" or x is None or x.shape != a.shape or a.ndim < 2 or not fails(a, n, ctx):
        return None
    e = a - n
    tol = ctx.explain_rtol * max(float(np.abs(a).max()), float(np.abs(n).max()))
    axes = list(ctx.axes) if len(ctx.axes) == a.ndim else [("axis", str(k), a.shape[k]) for k in range(a.ndim)]
    order = [0, a.ndim - 1] + list(range(1, a.ndim - 1))
    for k in order:
        if a.shape[k] < 3:
            continue
        where = _axis_words(axes[k], k)
        spread = np.abs(e - e.mean(axis=k, keepdims=True)).max()
        if spread <= tol and np.abs(e).max() > tol:
            return (f"the error (analytic − numeric) is the same along {where}: a term through the "
                    f"mean over that axis (−Σ dx̂/n) is missing or wrong")
        z = _standardized(x, k)
        w = (e * z).sum(axis=k, keepdims=True) / np.maximum((z * z).sum(axis=k, keepdims=True), 1e-300)
        if np.abs(e - z * w).max() <= tol and np.abs(e).max() > tol:
            return (f"the error (analytic − numeric) is proportional to x̂, the input standardized "
                    f"along {where}: the term through the variance (−x̂·Σ dx̂·x̂/n) is missing or wrong")
    return None


def _axis_words(axis: tuple, k: int) -> str:
    word, symbol, length = axis
    if word == "batch":
        return f"the batch axis (axis {k}): the same for every example"
    return f"the {word} axis ({symbol} = {length}, axis {k})"
