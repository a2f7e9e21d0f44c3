"""Hypotheses that fit a factor: analytic = c·numeric for a constant c (said with every config
quantity c equals), = numeric ⊙ a parameter, = numeric + c·θ (an L2 term), or all zeros."""
from __future__ import annotations

import numpy as np

from .quantities import Quantity, matching
from .context import Context, as_f64, explained, fails, grad_name


def all_zero(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The analytic gradient is zero while the numeric one is not: never written, or a term forgotten."""
    if a.shape == n.shape and not np.any(a) and np.any(n):
        return f"{grad_name(ctx)} is all zeros but the numeric gradient is not: never computed or not returned?"
    return None


def _fit(a: np.ndarray, n: np.ndarray) -> float:
    """Least-squares c in a ≈ c·n."""
    return float((a * n).sum() / (n * n).sum())


def constant_factor(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """analytic = c · numeric for a constant c (fitted by least squares, the residual at the
    noise level of every entry: c·numeric carries c times the numeric side's noise), said
    together with every quantity of the config it equals, or none."""
    if a.shape != n.shape or not fails(a, n, ctx) or not np.any(n) or not np.any(a):
        return None
    c = _fit(a, n)
    if not np.isfinite(c) or c == 0.0 or not explained(a, c * n, ctx, max(1.0, abs(c))):
        return None
    m = ctx.batch
    # the plain cases keep their familiar wording when nothing else coincides with them
    names = matching(c, list(ctx.quantities)) if ctx.quantities else _legacy_names(c, m)
    sign = c < 0
    simple = [q for q in names if q not in ("2", "1/2")]
    if _close(c, -1.0):
        return "sign flipped (analytic = −numeric)"
    if names == ["2"] and not sign:
        return "extra factor 2"
    if names == ["1/2"] and not sign:
        return "missing factor 2 (analytic = numeric/2)"
    if len(simple) == 1 and len(names) == 1 and simple[0].startswith("m (") and m > 1:
        return (f"{'sign flipped and ' if sign else ''}missing 1/m (analytic = {'−' if sign else ''}m·numeric, m = {m})")
    if len(simple) == 1 and len(names) == 1 and simple[0].startswith("1/m (") and m > 1:
        return (f"{'sign flipped and ' if sign else ''}extra 1/m (analytic = {'−' if sign else ''}numeric/m, m = {m})")
    head = f"{'sign flipped and ' if sign else ''}a constant factor: analytic = {c:.4g}·numeric"
    names = [{"2": "a plain factor 2", "1/2": "a plain factor 1/2"}.get(q, q) for q in names]
    if not names:
        return f"{head}, and {abs(c):.4g} is none of the config's quantities"
    return f"{head}, and {abs(c):.4g} = " + " = ".join(names) + (
        "" if len(names) == 1 else " (all of these are equal here: one of them is missing or extra)")


def _legacy_names(c: float, m: int) -> list[str]:
    qs = [Quantity(2.0, "2", "2")]
    if m > 1:
        qs.append(Quantity(float(m), f"m (m = {m}, the batch size)", "m"))
    return matching(c, qs)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-4 * max(abs(a), abs(b))


def proportional_to_tensor(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """analytic = numeric + c·θ: a weight-decay term in the backward that the forward does not have
    (the residual of the fit at the noise level, like every fit here)."""
    theta = as_f64(ctx.theta)
    if theta is None or theta.shape != a.shape or ctx.tensor == "x" or not np.any(theta):
        return None
    e = a - n
    c = float((e * theta).sum() / (theta * theta).sum())
    if c == 0.0 or not explained(a, n + c * theta, ctx):
        return None
    names = matching(c, list(ctx.quantities))
    said = f", and {abs(c):.4g} = " + " = ".join(names) if names else ""
    op = "+" if c > 0 else "−"
    return (f"analytic = numeric {op} {abs(c):.4g}·{ctx.tensor}{said}: an L2 (weight-decay) term in the "
            f"backward that the forward does not have; the config's l2 is added by gradcheck, "
            f"the layer returns the data term only")


def per_slice_factor(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """analytic = numeric ⊙ v, with v one of the layer's parameters (or its inverse) broadcast
    along the last axis: a factor such as γ missing or extra."""
    if a.shape != n.shape or a.ndim < 2 or not fails(a, n, ctx):
        return None
    for name, value in ctx.params.items():
        v = as_f64(value)
        if v is None or v.ndim != 1 or v.shape[0] != a.shape[-1] or not np.all(v != 0):
            continue
        if np.allclose(v, v[0]):
            continue
        # numeric ⊙ v carries |v| times the numeric side's noise
        if explained(a, n / v, ctx, np.maximum(1.0, 1.0 / np.abs(v))):
            return (f"analytic = numeric / {name} (per entry of the last axis): the factor {name} is "
                    f"missing in backward")
        if explained(a, n * v, ctx, np.maximum(1.0, np.abs(v))):
            return f"analytic = numeric · {name} (per entry of the last axis): an extra factor {name}"
    return None
