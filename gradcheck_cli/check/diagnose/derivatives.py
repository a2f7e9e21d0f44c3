"""Hypotheses about an elementwise or softmax layer's derivative: a recognizably wrong factor
g'(Z), the softmax Jacobian cut to its diagonal or summed over the wrong axis, or a derivative
right only where the unit is active."""
from __future__ import annotations

import numpy as np

from ..tolerance import rel_error
from .context import Context, as_f64, fails, matching_entries


def _derivative_candidates(z: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """Factors h for a wrong dZ = dA ⊙ h, each with what writing it means."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        sig_y = 1.0 / (1.0 + np.exp(-y))
        return [
            (np.ones_like(z), "dZ = dA: the activation's derivative g'(Z) is missing"),
            (y, "dZ = dA ⊙ A: the activation g(Z) where its derivative g'(Z) belongs "
                "(e.g. sigmoid' written as σ instead of σ(1 − σ))"),
            (z, "dZ = dA ⊙ Z: multiplied by Z where g'(Z) belongs"),
            (y * (1 - y), "dZ = dA ⊙ A(1 − A): the sigmoid's derivative, which is not this activation's"),
            (1 - y, "dZ = dA ⊙ (1 − A): σ' = A(1 − A) without its factor A, or tanh' written "
                    "as 1 − A instead of 1 − A²"),
            (1 - y * y, "dZ = dA ⊙ (1 − A²): the tanh's derivative, which is not this activation's"),
            (sig_y * (1 - sig_y), "dZ = dA ⊙ σ'(A): the derivative applied to A instead of Z"),
            (1 - np.tanh(y) ** 2, "dZ = dA ⊙ tanh'(A): the derivative applied to A instead of Z"),
            (1 - z * z, "dZ = dA ⊙ (1 − Z²): tanh′ written as 1 − Z² (the pre-activation) instead of 1 − A²"),
            (z * (1 - z), "dZ = dA ⊙ Z(1 − Z): σ′ written as Z(1 − Z) (the pre-activation) instead of A(1 − A)"),
        ]


def _softmax_like(y: np.ndarray, axis: int) -> bool:
    return bool(np.all(y > 0) and np.allclose(y.sum(axis=axis), 1.0, rtol=1e-6, atol=1e-9))


def softmax_backward(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """A softmax layer's dx with its Jacobian cut to the diagonal, or the Σ over the wrong axis."""
    g, y = as_f64(ctx.cotangent), as_f64(ctx.layer_output)
    if g is None or y is None or ctx.tensor != "x" or ctx.params or not fails(a, n, ctx):
        return None
    if not (a.shape == g.shape == y.shape) or y.ndim < 2:
        return None
    axis = y.ndim - 1 if ctx.layout != "columns" else y.ndim - 2
    if not _softmax_like(y, axis):
        return None
    if rel_error(g * y * (1 - y), a) <= ctx.explain_rtol:
        return ("dx = dout ⊙ p(1 − p): only the diagonal of the softmax Jacobian; the −p_i·p_j terms "
                "are missing (dx = p ⊙ (dout − Σ_j dout_j·p_j))")
    for k in range(y.ndim):
        if k != axis and rel_error(y * (g - (g * y).sum(axis=k, keepdims=True)), a) <= ctx.explain_rtol:
            return (f"softmax backward with its Σ over axis {k} (dx = p ⊙ (dout − Σ dout·p)) taken over "
                    f"axis {k} instead of axis {axis} (the axis the softmax normalizes)")
    return None


def activation_derivative(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """An elementwise layer's dZ computed with a recognizably wrong derivative factor."""
    g, z, y = as_f64(ctx.cotangent), as_f64(ctx.layer_input), as_f64(ctx.layer_output)
    if g is None or z is None or y is None or ctx.tensor != "x" or ctx.params or not fails(a, n, ctx):
        return None
    if not (a.shape == n.shape == g.shape == z.shape == y.shape):
        return None
    # the sigmoid's derivative is not a softmax's: a softmax output gets softmax_backward's words
    softmax = _softmax_like(y, y.ndim - 1 if ctx.layout != "columns" else y.ndim - 2) and y.ndim >= 2
    for h, text in _derivative_candidates(z, y):
        if softmax and "sigmoid" in text:
            continue
        guess = g * h
        if np.all(np.isfinite(guess)) and rel_error(guess, a) <= ctx.explain_rtol:
            return f"wrong activation derivative: {text}"
    return None


def active_only(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """Right exactly where the unit is active (Z > 0) and wrong elsewhere: the derivative's inactive
    branch is wrong (relu' not applied, leaky slope forgotten, mask taken from the wrong tensor)."""
    z = as_f64(ctx.layer_input)
    if z is None or ctx.tensor != "x" or a.shape != n.shape or z.shape != a.shape or not fails(a, n, ctx):
        return None
    ok = matching_entries(a, n, ctx)
    active = z > 0
    if not active.any() or active.all():
        return None
    if np.array_equal(ok, active):
        inactive = int((~active).sum())
        where = (f"right only where the activation is active (Z > 0): wrong at the {inactive} "
                 f"entr{'y' if inactive == 1 else 'ies'} where Z ≤ 0")
        g = as_f64(ctx.cotangent)
        g_in = g[~active] if g is not None and g.shape == a.shape else None
        return f"{where}, {_inactive_branch(a[~active], n[~active], g_in, ctx)}"
    return None


def _inactive_branch(a: np.ndarray, n: np.ndarray, g: np.ndarray | None, ctx: Context) -> str:
    """What the wrong entries of the inactive branch look like, when that is recognizable."""
    if rel_error(a, -n) <= ctx.explain_rtol:
        return "where analytic = −numeric: the inactive branch's derivative has its sign flipped"
    if not np.any(a):
        return "where the analytic gradient is 0: the inactive branch's derivative (a leaky slope?) is missing"
    if g is not None and rel_error(a, g) <= ctx.explain_rtol:
        return "where dZ = dA: the derivative is not applied there (relu' missing?)"
    return "so the derivative's inactive branch is wrong (mask taken from the wrong tensor? wrong slope?)"
