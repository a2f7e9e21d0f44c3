"""Judging an analytic gradient against its numeric reference: shape problems, errors, the
noise of the finite differences, kinks, and the verdict. Pure functions over arrays.

The verdict rule (see README, "Verdicts"):
- an entry whose error is within the estimated finite-difference noise (rounding + truncation,
  plus the analytic gradient's own rounding) is no evidence of a bug;
- an entry at a kink (the one-sided differences disagree, so the perturbation crossed a
  non-differentiable point) is accepted when the analytic value lies between them (a valid
  subgradient), and counted;
- then the relative error of the rest decides: pass below the dtype's pass threshold, FAIL
  above its warn threshold, warn between; an error far above the noise fails even inside the
  warn band, and warns even below the pass threshold.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from ..errors import format_shape
from .tolerance import rel_error  # noqa: F401  (the measure the verdict reads)
from .diagnose import EXPLAIN_FACTOR, Context, diagnose, shape_hypothesis
from .differences import Differences
from ..results import Comparison, Status
from .ties import TieCheck
from .tolerance import UNIT_ROUNDOFF, Tolerance

#: rounding allowance of the analytic gradient, in units of its dtype's roundoff times max|n|
ANALYTIC_ROUNDING = 64.0
#: an error up to this many noise estimates is explained by the noise
SAFETY = 4.0
#: an error beyond this many noise estimates is not rounding, whatever its relative size
FAR = 1000.0
#: entries whose truncation error is estimated by a second run at h/2 when it matters
REFINE = 16

Refine = Callable[[np.ndarray], Differences]  # probe positions -> the same probes at h/2
Probe = Callable[[np.ndarray, float], Differences]  # probe positions, d -> the same probes at h/d


def numeric(a: np.ndarray) -> bool:
    """Whether an analytic gradient's array holds numbers (not objects or strings)."""
    return a.dtype != object and (np.issubdtype(a.dtype, np.number) or a.dtype == bool)


def as_gradient(analytic, tensor: str, shape: tuple[int, ...], tol: Tolerance,
                numeric_full: np.ndarray | None = None) -> tuple[np.ndarray | None, Comparison | None]:
    """The analytic gradient as a float64 array of the tensor's shape, or a FAIL saying why not."""
    try:
        a = np.asarray(analytic)
    except Exception:
        return None, Comparison(Status.FAIL, reason=f"d{tensor} is not an array ({type(analytic).__name__})")
    if not numeric(a):
        return None, Comparison(Status.FAIL, analytic_shape=a.shape,
                                reason=f"d{tensor} is not numeric (dtype {a.dtype})")
    a = (a.real if np.iscomplexobj(a) else a).astype(np.float64)
    if a.shape != tuple(shape):
        return None, shape_mismatch(a, tensor, tuple(shape), tol, numeric_full)
    bad = int(np.count_nonzero(~np.isfinite(a)))
    if bad:
        return None, Comparison(Status.FAIL, analytic_shape=a.shape,
                                reason=f"analytic d{tensor} has {bad} NaN/Inf entr{'y' if bad == 1 else 'ies'}")
    return a, None


def shape_mismatch(a: np.ndarray, tensor: str, shape: tuple[int, ...], tol: Tolerance,
                   n: np.ndarray | None, context: Context | None = None) -> Comparison:
    msg = f"d{tensor} has shape {format_shape(a.shape)}, but {tensor} is {format_shape(shape)}"
    out = Comparison(Status.FAIL, analytic_shape=a.shape)
    found = None
    if context is not None and not (a.ndim == 2 and a.shape == shape[::-1]):
        found = shape_hypothesis(a, shape, n, context, tol.pass_rtol * EXPLAIN_FACTOR)
    if found:
        out.reason = out.diagnosis = found
    elif a.ndim == 2 and a.shape == shape[::-1]:
        if n is not None:
            rel = rel_error(a.T, n)
            out.rel_error, out.max_abs_error = rel, float(np.abs(a.T - n).max())
            verdict = (f"its transpose matches (rel err {rel:.1e})" if rel <= tol.pass_rtol else
                       f"and its transpose does not match either (rel err {rel:.1e})")
        else:
            verdict = "its shape is the transpose"
        out.reason = f"{msg}: transposed? {verdict}"
        out.diagnosis = "transposed"
    elif a.size == int(np.prod(shape)):
        out.reason = f"{msg}: same number of entries: reshaped or transposed?"
    elif a.ndim == len(shape) + 1 and a.shape[1:] == shape:
        out.reason = f"{msg}: not summed over the batch axis?"
        out.diagnosis = "bias gradient not summed over the batch"
    elif a.ndim == len(shape) and a.size > int(np.prod(shape)):
        out.reason = f"{msg}: summed over the wrong axis, or not summed?"
        out.diagnosis = "summed over the wrong axis"
    else:
        out.reason = msg
    return out


def judge(a: np.ndarray, n: np.ndarray, diffs: Differences, tensor: str, dtype: str, tol: Tolerance,
          context: Context | None = None, refine: Refine | None = None,
          index: np.ndarray | None = None, full_shape: tuple[int, ...] | None = None,
          analytic_scale: float = 0.0, ties: TieCheck | None = None,
          probe: Probe | None = None) -> Comparison:
    """Verdict on analytic values ``a`` against numeric ``n`` (both (B,), the probes checked).

    ``index`` maps probes to flat entries of the tensor (None for directional probes), so the
    worst entry can be named; ``refine`` re-runs some probes at h/2, which tells truncation
    error from a kink: at a smooth point the one-sided differences disagree by O(h) and halve
    with h; across a kink they disagree by the jump in slope, which does not shrink. ``ties``
    judges the kink entries that share a kink together (ties.py): the entries of an
    inconsistent tie group are not excused, and the tensor FAILs; a consistent group excuses
    its entries even where one alone lies outside its own one-sided derivatives (an entry
    tied in several overlapping windows). ``probe`` re-runs probes at h/divisor: with it, the
    noise of f's evaluations is measured before a kink is claimed (see ``_evaluation_noise``).
    """
    if n.size == 0:
        return Comparison(Status.SKIPPED, reason="empty tensor")
    bad_n = int(np.count_nonzero(~np.isfinite(n)))
    if bad_n:
        return Comparison(Status.FAIL, entries=n.size,
                          reason=f"the function is not finite within one step of {tensor} "
                                 f"({bad_n} numeric value{'s' if bad_n > 1 else ''} NaN/Inf)")
    err = np.abs(a - n)
    scale = max(float(np.abs(n).max()), analytic_scale)
    noise = diffs.rounding + ANALYTIC_ROUNDING * UNIT_ROUNDOFF[dtype] * scale
    if diffs.truncation is not None:
        noise = noise + diffs.truncation
    kink = np.zeros(a.shape, dtype=bool)
    crossed = np.zeros(a.shape, dtype=bool)     # at a kink, bracketed by D−, D+ or not
    delta = 0.0
    suspicious = np.flatnonzero(err > SAFETY * noise)
    if suspicious.size and refine is not None:
        order = suspicious[np.argsort(-(err[suspicious] / np.maximum(noise[suspicious], 1e-300)))]
        chosen = order[:REFINE]
        fine = refine(chosen)
        persists = _persists(diffs, chosen, fine)
        if probe is not None and persists.any():
            # every re-run probe is a sample of the same f's noise, kink or not
            delta = _evaluation_noise(probe, chosen, diffs)
        crossed[chosen], kink[chosen] = _kinks(a[chosen], noise[chosen], diffs, chosen, fine, delta)
        if crossed[chosen].any() and order.size > chosen.size:
            # kinks come in numbers (a tied pool window, a relu layer near 0): classify every
            # suspicious entry, or the ones past the first few would fail for no reason
            more = order[chosen.size:]
            fine_more = refine(more)
            crossed[more], kink[more] = _kinks(a[more], noise[more], diffs, more, fine_more, delta)
            chosen, fine = order, _concat(fine, fine_more)
        truncation = np.zeros_like(err)
        smooth = chosen[~crossed[chosen]]
        truncation[chosen] = _truncation(diffs, chosen, fine)
        truncation[chosen[crossed[chosen]]] = 0.0
        rest = np.setdiff1d(suspicious, chosen)
        if rest.size and smooth.size:
            # entries not re-run get the largest truncation seen among smooth ones
            truncation[rest] = truncation[smooth].max()
        noise = noise + truncation
    tied = None
    if ties is not None and crossed.any():
        at_kink = np.flatnonzero(crossed)
        found = ties(at_kink, a[at_kink], noise[at_kink], *_one_sided(fine, chosen, at_kink),
                     kink[at_kink], delta)
        if found is not None:
            kink[at_kink[found.excused]] = True
            kink[at_kink[found.bad]] = False
            tied = found if found.bad.size else None
    keep = ~kink
    rel_all = rel_error(a, n)
    rel = rel_error(a[keep], n[keep]) if keep.any() else 0.0
    ratio = float((err[keep] / np.maximum(noise[keep], 1e-300)).max()) if keep.any() else 0.0
    worst = int(np.argmax(np.where(keep, err, -1.0)))
    worst_index = _entry(index, worst, full_shape)
    out = Comparison(Status.PASS, rel_all, float(err.max()), worst_index, None,
                     float(np.linalg.norm(noise) / max(np.linalg.norm(a) + np.linalg.norm(n), 1e-300)),
                     int(n.size), kinks=int(kink.sum()), rel_error_excluding_kinks=rel)
    if ratio <= SAFETY:
        explained = rel > tol.pass_rtol
        out.reason = (f"relative error {rel:.1e}, but every entry is within the finite-difference "
                      f"noise: the gradient is ~0 at this resolution" if explained else "")
    elif rel <= tol.pass_rtol:
        if ratio > FAR:
            out.status = Status.WARN
            out.reason = (f"small (rel err {rel:.1e}) but {ratio:.0f}× the finite-difference noise "
                          f"at entry {worst_index}: a real, small discrepancy?")
    elif rel <= tol.warn_rtol and ratio <= FAR:
        out.status = Status.WARN
        out.reason = f"relative error {rel:.1e} is above {tol.pass_rtol:.0e} (pass) but below {tol.warn_rtol:.0e}"
    else:
        out.status = Status.FAIL
        what = "entry" if index is not None else "direction"
        out.reason = (f"d{tensor} does not match: worst {what} {worst_index}: analytic {a[worst]:.6g}, "
                      f"numeric {n[worst]:.6g} ({ratio:.0f}× the noise)")
    if tied is not None:
        out.status, out.diagnosis = Status.FAIL, tied.diagnosis
        out.reason = "; ".join(filter(None, [tied.reason, out.reason]))
    if out.kinks and out.status is not Status.FAIL:
        if out.status is Status.PASS:
            out.status = Status.KINK
        out.reason = "; ".join(filter(None, [
            f"{out.kinks} entr{'y' if out.kinks == 1 else 'ies'} at a kink (a decision such as "
            f"relu's x > 0 flips within ±h); the analytic value lies between the one-sided "
            f"derivatives, a valid subgradient; the other entries: rel err {rel:.1e}", out.reason]))
    if out.kinks == n.size > 1 and out.status is Status.KINK:
        # nothing was compared at a differentiable point: a bracket alone is weak evidence (a
        # layer whose evaluations disagree with f(θ) would look like this), so say so
        out.status = Status.WARN
        out.reason = (f"every entry ({out.kinks}) is at a kink: each analytic value lies between "
                      f"its one-sided derivatives, but no entry was left to compare where the "
                      f"function is differentiable; check this tensor with another seed")
    if full_shape is not None and index is not None and index.size == int(np.prod(full_shape)):
        # every entry was probed, in order: name the bug, with the noise each entry carries
        diagnose_failure(out, a.reshape(full_shape), n.reshape(full_shape), tol, context,
                         (SAFETY * noise).reshape(full_shape))
    return out


def diagnose_failure(out: Comparison, a_full: np.ndarray, n_full: np.ndarray, tol: Tolerance,
                     context: Context | None, noise: np.ndarray | None = None) -> None:
    """Name the common bug behind a FAIL (transpose, a factor, zeros, ...) when one explains it;
    ``noise``: per entry, the error the finite differences' noise explains."""
    if out.status is not Status.FAIL or context is None or out.diagnosis:
        return
    if noise is not None:
        context = replace(context, noise=noise)
    a, n = a_full, n_full
    if a.ndim == 2 and a.shape[0] == a.shape[1] and a.shape[0] > 1 and rel_error(a.T, n) <= tol.pass_rtol:
        out.diagnosis = "transposed"
        out.reason = f"d{context.tensor} is transposed? its transpose matches (rel err {rel_error(a.T, n):.1e})"
        return
    found = diagnose(a, n, context)
    if found:
        out.diagnosis = found
        out.reason = f"{found}; {out.reason}"


def _concat(a: Differences, b: Differences) -> Differences:
    def cat(x, y):
        return None if x is None or y is None else np.concatenate([x, y])
    return Differences(cat(a.grad, b.grad), cat(a.step, b.step), cat(a.rounding, b.rounding),
                       cat(a.truncation, b.truncation), cat(a.d_plus, b.d_plus),
                       cat(a.d_minus, b.d_minus), a.evaluations + b.evaluations)


def _truncation(coarse: Differences, pos: np.ndarray, fine: Differences) -> np.ndarray:
    """Truncation error of D(h), from D(h) − D(h/2): ¾·c·h² of c·h² for central differences
    (Richardson carries its own estimate), ½·c·h of c·h for forward."""
    factor = 2.0 if coarse.d_minus is None else 4.0 / 3.0
    return factor * np.abs(coarse.grad[pos] - fine.grad)


def _persists(coarse: Differences, pos: np.ndarray, fine: Differences) -> np.ndarray:
    """Whether the gap between the one-sided differences keeps its size at h/2 (a kink) instead
    of halving (curvature: at a smooth point D+ − D− = h·f'' + O(h²)) or doubling (a jump of f
    itself, c/h, not of its slope: a discontinuity, or evaluations that disagree with f(θ))."""
    if coarse.d_plus is None or fine.d_plus is None:
        return np.zeros(pos.shape, dtype=bool)
    gap = coarse.d_plus[pos] - coarse.d_minus[pos]
    gap_fine = fine.d_plus - fine.d_minus
    floor = 4.0 * (coarse.rounding[pos] + fine.rounding)
    jump, jump_fine = np.abs(gap), np.abs(gap_fine)
    # (a kink keeps its gap, or the gap vanishes once h/2 no longer reaches the kink, in which
    # case D(h/2) is simply accurate and no kink is needed)
    return (jump > SAFETY * floor) & (np.sign(gap) == np.sign(gap_fine)) & \
        (jump_fine > 0.75 * jump) & (jump_fine < 1.5 * jump + floor)


def _kinks(a: np.ndarray, noise: np.ndarray, coarse: Differences, pos: np.ndarray,
           fine: Differences, delta: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Which of the re-run probes crossed a kink, and which of those have an analytic value
    within the one-sided derivatives [D−, D+] at h or h/2 (for an entry in a single kink, the
    valid subgradients). ``delta`` is the measured noise of one evaluation of f."""
    if coarse.d_plus is None or fine.d_plus is None:
        none = np.zeros(a.shape, dtype=bool)
        return none, none
    h = coarse.step[pos]
    gap = coarse.d_plus[pos] - coarse.d_minus[pos]
    gap_fine = fine.d_plus - fine.d_minus
    # The gaps are truncation (h·f'' at h, half of it at h/2), rounding (f's evaluation noise
    # δ over the step: (1, −2, 1)·δ/h at h, twice that at h/2) and the kink's jump J (the same
    # at both). 2·gap(h/2) − gap(h) = (4f(θ+h/2) + 4f(θ−h/2) − f(θ+h) − f(θ−h) − 6f(θ))/h
    # cancels the truncation exactly, leaving J plus noise of √70·δ/h: a kink claim needs J
    # well above that, whatever δ is
    # (ε·|f| for a plain loss, far more when f is a small difference of large terms, as in a
    # gated recurrent cell)
    jump = 2.0 * gap_fine - gap
    rounding = np.sqrt(70.0) * np.maximum(delta, 0.25 * coarse.rounding[pos] * h) / h
    crossed = _persists(coarse, pos, fine) & (np.abs(jump) > SAFETY * rounding) & \
        (np.sign(jump) == np.sign(gap))
    sides = np.stack([coarse.d_plus[pos], coarse.d_minus[pos], fine.d_plus, fine.d_minus])
    one_sided_noise = 4.0 * (coarse.rounding[pos] + fine.rounding) + 2.0 * rounding
    # one-sided differences carry an O(h) truncation error; D(h) − D(h/2) estimates half of it
    slack = one_sided_noise + noise + 2.0 * np.maximum(np.abs(coarse.d_plus[pos] - fine.d_plus),
                                                       np.abs(coarse.d_minus[pos] - fine.d_minus))
    lo = sides.min(axis=0) - slack
    hi = sides.max(axis=0) + slack
    return crossed, crossed & (a >= lo) & (a <= hi)


#: the steps (fractions of h) at which f's evaluation noise is measured: small enough that a
#: kink at θ contributes little, on both sides of θ so that a kink exactly at θ contributes nothing
NOISE_STEPS = (1 / 64, 2 / 64, 3 / 64)


def _evaluation_noise(probe: Probe, pos: np.ndarray, coarse: Differences) -> float:
    """The rounding noise δ of one evaluation of f near θ, measured: f at θ ± k·h/64 (k = 1, 2,
    3) against a line through f(θ) on each side. At steps that small the curvature is far below
    rounding, and a kink exactly at θ (a tie) leaves each side a line, so the residuals are
    rounding alone; the median over the probes keeps a kink a little off θ from counting."""
    ys, ss = [], []
    for frac in NOISE_STEPS:
        d = probe(pos, 1.0 / frac)
        s = d.step
        ys += [d.d_plus * s, -d.d_minus * s]       # f(θ + s) − f(θ), f(θ − s) − f(θ)
        ss += [s, -s]
    y, s = np.array(ys), np.array(ss)
    rss = 0.0
    for side in (slice(0, None, 2), slice(1, None, 2)):
        ys_, ss_ = y[side], s[side]
        slope = (ys_ * ss_).sum(axis=0) / (ss_ * ss_).sum(axis=0)
        rss = rss + ((ys_ - slope * ss_) ** 2).sum(axis=0)
    # each side: 3 residuals, 1 fitted slope; a residual is the difference of two evaluations'
    # noise, so E[rss] ≈ 2 sides · 2 dof · 2δ²
    return float(np.median(np.sqrt(rss / 8.0)))


def _one_sided(fine: Differences, chosen: np.ndarray,
               at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """D+ and D− at h/2 (the more accurate) of the probes ``at``, all among the re-run ``chosen``."""
    where = {int(p): k for k, p in enumerate(chosen)}
    rows = np.array([where[int(p)] for p in at], dtype=np.intp)
    return fine.d_plus[rows], fine.d_minus[rows]


def _entry(index: np.ndarray | None, k: int, shape: tuple[int, ...] | None):
    if index is None:
        return (k,)
    if shape is None:
        return (int(index[k]),)
    return tuple(int(i) for i in np.unravel_index(int(index[k]), shape))
