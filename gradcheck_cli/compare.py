"""Judging one analytic gradient against its numeric reference: errors, shape problems, verdict."""
from __future__ import annotations

import numpy as np

from .diagnose import Context, diagnose
from .numeric import Differences
from .results import Comparison, Status
from .tolerance import UNIT_ROUNDOFF, Tolerance

#: rounding allowance of the analytic gradient, in units of its dtype's roundoff times max|n|
ANALYTIC_ROUNDING = 64.0


def rel_error(a: np.ndarray, n: np.ndarray) -> float:
    """‖a − n‖₂ / (‖a‖₂ + ‖n‖₂), 0 when both are 0: in [0, 1], 1/3 for a factor 2, 1 for a sign flip."""
    denom = float(np.linalg.norm(a) + np.linalg.norm(n))
    return 0.0 if denom == 0.0 else float(np.linalg.norm(a - n)) / denom


def _fmt_shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def compare(analytic, numeric: Differences, tensor: str, dtype: str, tol: Tolerance,
            context: Context | None = None) -> Comparison:
    """Compare an analytic gradient with a numeric one of the tensor's shape; a FAIL is
    diagnosed (which common bug explains it) when a context is given."""
    n = numeric.grad
    try:
        a = np.asarray(analytic)
    except Exception:
        return Comparison(Status.FAIL, reason=f"d{tensor} is not an array ({type(analytic).__name__})")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        return Comparison(Status.FAIL, analytic_shape=a.shape,
                          reason=f"d{tensor} is not numeric (dtype {a.dtype})")
    a = a.astype(np.float64) if not np.iscomplexobj(a) else a.real.astype(np.float64)
    if a.shape != n.shape:
        return _shape_mismatch(a, n, tensor, tol)
    bad_a = int(np.count_nonzero(~np.isfinite(a)))
    if bad_a:
        return Comparison(Status.FAIL, analytic_shape=a.shape, entries=n.size,
                          reason=f"analytic d{tensor} has {bad_a} NaN/Inf "
                                 f"entr{'y' if bad_a == 1 else 'ies'}")
    bad_n = int(np.count_nonzero(~np.isfinite(n)))
    if bad_n:
        return Comparison(Status.FAIL, analytic_shape=a.shape, entries=n.size,
                          reason=f"the function is not finite within one step of {tensor} "
                                 f"({bad_n} numeric entries NaN/Inf)")
    diff = np.abs(a - n)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape)) if diff.size else None
    rel = rel_error(a, n)
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = float(np.abs(n).max()) if n.size else 0.0
    allowance = numeric.noise + ANALYTIC_ROUNDING * UNIT_ROUNDOFF[dtype] * scale
    noise = float(allowance.max()) if allowance.size else 0.0
    out = Comparison(Status.PASS, rel, max_abs, worst, a.shape, noise, n.size)
    if n.size == 0:
        out.status, out.reason = Status.SKIPPED, "empty tensor"
    elif rel <= tol.pass_rtol:
        out.reason = ""
    elif bool(np.all(diff <= allowance)):
        out.reason = (f"relative error {rel:.1e} but every entry is within the finite-difference "
                      f"noise ({noise:.1e}): the gradient is ~0")
    elif rel <= tol.warn_rtol:
        out.status = Status.WARN
        out.reason = f"relative error {rel:.1e} is above {tol.pass_rtol:.0e} (pass) but below {tol.warn_rtol:.0e}"
    else:
        out.status = Status.FAIL
        out.reason = f"d{tensor} does not match: worst entry {worst}: analytic {a[worst]:.6g}, numeric {n[worst]:.6g}"
        if a.ndim == 2 and a.shape[0] == a.shape[1] and a.shape[0] > 1 and rel_error(a.T, n) <= tol.pass_rtol:
            out.reason = f"d{tensor} is transposed? its transpose matches (rel err {rel_error(a.T, n):.1e})"
        elif context is not None:
            out.diagnosis = diagnose(a, n, context)
            if out.diagnosis:
                out.reason = f"{out.diagnosis}; {out.reason}"
    return out


def _shape_mismatch(a: np.ndarray, n: np.ndarray, tensor: str, tol: Tolerance) -> Comparison:
    msg = f"d{tensor} has shape {_fmt_shape(a.shape)}, but {tensor} is {_fmt_shape(n.shape)}"
    out = Comparison(Status.FAIL, analytic_shape=a.shape, entries=n.size)
    if a.ndim == 2 and a.shape == n.shape[::-1]:
        rel = rel_error(a.T, n)
        out.rel_error = rel
        out.max_abs_error = float(np.abs(a.T - n).max())
        verdict = f"its transpose matches (rel err {rel:.1e})" if rel <= tol.pass_rtol else \
            f"and its transpose does not match either (rel err {rel:.1e})"
        out.reason = f"{msg}: transposed? {verdict}"
    elif a.size == n.size:
        out.reason = f"{msg}: same number of entries, reshaped or transposed?"
    elif a.ndim == n.ndim + 1 and a.shape[1:] == n.shape:
        out.reason = f"{msg}: not summed over the batch axis?"
    elif a.ndim == n.ndim and a.size > n.size and n.size and a.size % n.size == 0:
        out.reason = f"{msg}: summed over the wrong axis, or not summed?"
    else:
        out.reason = msg
    return out
