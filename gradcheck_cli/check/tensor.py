"""One tensor: an analytic gradient against its numeric reference, in the chosen mode (the
layer's backward is called and validated in backward.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .judge import as_gradient, judge, numeric, shape_mismatch
from .state import Differencing, Ledger
from .diagnose import Context
from .backward import BackwardFailure, Defect, dx_none
from .network import STREAM_PROBES, rng_for
from .differences import (EvaluateEntries, EvaluateStack, chunk_for, direction_differences,
                      entry_differences)
from ..results import Comparison, Status
from .ties import check_ties, tie_directions

#: a gradient of the wrong shape gets the numeric gradient (to explain the shape) up to this size
SHAPE_NUMERIC_LIMIT = 50_000


@dataclass
class Target:
    """What to differentiate: a scalar function of one tensor, evaluated in batches."""

    theta: np.ndarray                  # float64 copy of the tensor at the clean point
    stack: EvaluateStack               # f of each copy in a stack
    entries: EvaluateEntries           # f with single entries changed
    f0: float                          # f at the clean point
    f_scale: float                     # size of the terms f sums, for its rounding error
    bytes_per_probe: int
    key: tuple[int, ...]               # seed key for sampling and directions
    #: size of the layer's gradients: the analytic side's rounding (float32 above all) scales
    #: with it, even for a tensor whose own gradient is exactly zero (a bias before batch norm)
    analytic_scale: float = 0.0
    #: extra diagnose.Context fields (upstream gradient, layer input/output, neighbours)
    diagnosis: dict = field(default_factory=dict)
    #: what a progress display says is being checked: the check (isolated, end to end), the
    #: row's layer label and the tensor
    progress_label: str = ""
    #: examples verified independent for this tensor (an input whose layers keep examples
    #: apart): one call serves them all in the minimum a full check needs
    examples_per_call: int = 1


def check_tensor(how: Differencing, ledger: Ledger, analytic: Any, tensor: str, target: Target
                 ) -> tuple[Comparison, np.ndarray | None]:
    """Compare one analytic gradient with its numeric reference in the chosen mode.
    Returns the comparison and the numeric gradient when it was computed for every entry."""
    s, tol, theta = how.settings, how.tol, target.theta
    target = _counted(target, ledger, target.progress_label or tensor)
    context = Context(tensor, how.batch, how.layout, tol.pass_rtol, **target.diagnosis)
    a, problem = as_gradient(analytic, tensor, theta.shape, tol)
    if problem is not None:
        shape = problem.analytic_shape
        transposed = shape is not None and len(shape) == 2 and tuple(shape) == theta.shape[::-1]
        # a wrong shape is explained best with the numeric gradient at hand (a crop, a sum that
        # matches it); small tensors get it, as transposed ones always did
        wrong_shape = shape is not None and tuple(shape) != theta.shape and numeric(np.asarray(analytic))
        if transposed or (wrong_shape and theta.size <= SHAPE_NUMERIC_LIMIT):
            ledger.needs(target.progress_label or tensor, theta.size, target.examples_per_call)
            n_full = _full_numeric(how, target)
            problem = shape_mismatch(np.asarray(analytic, dtype=np.float64), tensor, theta.shape, tol, n_full,
                                     context)
            problem.entries = theta.size
            return problem, n_full
        if wrong_shape:
            problem = shape_mismatch(np.asarray(analytic, dtype=np.float64), tensor, theta.shape, tol, None,
                                     context)
        problem.entries = theta.size
        return problem, None
    if theta.size == 0:
        return Comparison(Status.SKIPPED, analytic_shape=a.shape, reason="empty tensor"), None
    what = target.progress_label or tensor
    if s.mode == "full" or (s.mode == "sample" and theta.size <= s.samples):
        ledger.needs(what, theta.size, target.examples_per_call)
    else:
        ledger.needs(what, s.directions if s.mode == "directional" else s.samples)
    chunk = chunk_for(target.bytes_per_probe, s.max_memory)
    if s.mode == "directional":
        rng = rng_for(how.seed, STREAM_PROBES, *target.key)
        u = rng.standard_normal((s.directions, theta.size))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        # where θ has equal entries (ties), the same directions made constant on them too
        tied = tie_directions(theta, u)
        if tied is not None:
            u = np.concatenate([u, tied])
        diffs = direction_differences(target.stack, theta, u, how.eps, s.method, target.f0, chunk,
                                      target.f_scale)
        def refine(pos: np.ndarray):
            return direction_differences(target.stack, theta, u[pos], how.eps / 2, s.method,
                                         target.f0, chunk, target.f_scale)

        out = judge(u @ a.reshape(-1), diffs.grad, diffs, tensor, how.dtype, tol, context,
                    refine=None if s.method == "complex" else refine,
                    analytic_scale=target.analytic_scale)
        out.analytic_shape = a.shape
        if out.status is not Status.FAIL:
            return out, None
        # A direction says that something is wrong, not where: check every entry to show it.
        full, n_full = _entries_check(how, ledger, a, tensor, target, np.arange(theta.size), chunk, context)
        full.reason = f"directional check failed ({out.reason}); full check: {full.reason}"
        return full, n_full
    idx = np.arange(theta.size) if s.mode == "full" or theta.size <= s.samples else _sample(how, a, target)
    return _entries_check(how, ledger, a, tensor, target, idx, chunk, context)


def _counted(target: Target, ledger: Ledger, what: str) -> Target:
    """The same target, counting each batch: the copies evaluated (the measured cost) and the
    entries probed (what the estimate and the progress display count)."""
    from dataclasses import replace

    def stack(st: np.ndarray) -> np.ndarray:
        out = target.stack(st)
        ledger.count(st.shape[0], what, st.shape[0] * target.bytes_per_probe)
        ledger.advance(st.shape[0], what)
        return out

    entries = ledger.metered(target.entries, what, target.bytes_per_probe, probed=True)
    return replace(target, stack=stack, entries=entries)


def _entries_check(how: Differencing, ledger: Ledger, a: np.ndarray, tensor: str, target: Target,
                   idx: np.ndarray,
                   chunk: int, context: Context) -> tuple[Comparison, np.ndarray | None]:
    s = how.settings
    diffs = entry_differences(target.entries, target.theta, idx, how.eps, s.method, target.f0, chunk,
                              target.f_scale)
    def at_half_step(pos: np.ndarray):
        return entry_differences(target.entries, target.theta, idx[pos], how.eps / 2, s.method,
                                 target.f0, chunk, target.f_scale)

    def at_step(pos: np.ndarray, divisor: float):
        return entry_differences(target.entries, target.theta, idx[pos], how.eps / divisor, s.method,
                                 target.f0, chunk, target.f_scale)

    def ties(pos: np.ndarray, analytic: np.ndarray, noise: np.ndarray, d_plus: np.ndarray,
             d_minus: np.ndarray, bracketed: np.ndarray, delta: float):
        # the group is every entry of θ with a kink entry's value: the whole gradient is needed
        return check_ties(target.theta, idx[pos], a, noise, (d_plus, d_minus), target.stack,
                          how.eps, target.f0, target.f_scale, chunk, bracketed, delta)

    # the complex step has no truncation to estimate and crosses no kink
    out = judge(a.reshape(-1)[idx], diffs.grad, diffs, tensor, how.dtype, how.tol, context,
                refine=None if s.method == "complex" else at_half_step, index=idx,
                full_shape=target.theta.shape,
                analytic_scale=target.analytic_scale, ties=ties,
                probe=None if s.method == "complex" else at_step)
    out.analytic_shape = a.shape
    n_full = None
    if idx.size == target.theta.size:
        n_full = diffs.grad.reshape(target.theta.shape)
    return out, n_full


def _sample(how: Differencing, a: np.ndarray, target: Target) -> np.ndarray:
    """K entries drawn from the seed, always including the largest |analytic| entry."""
    rng = rng_for(how.seed, STREAM_PROBES, *target.key)
    k = how.settings.samples
    chosen = rng.choice(target.theta.size, size=k, replace=False)
    top = int(np.argmax(np.abs(a).reshape(-1)))
    if top not in chosen:
        chosen[0] = top
    return np.sort(chosen)


def _full_numeric(how: Differencing, target: Target) -> np.ndarray:
    idx = np.arange(target.theta.size)
    chunk = chunk_for(target.bytes_per_probe, how.settings.max_memory)
    d = entry_differences(target.entries, target.theta, idx, how.eps, how.settings.method,
                          target.f0, chunk, target.f_scale)
    return d.grad.reshape(target.theta.shape)


def gradient_scale(analytic: dict[str, Any]) -> float:
    """The largest entry of a layer's gradients (x and parameters), ignoring unusable ones."""
    scale = 0.0
    for value in analytic.values():
        try:
            arr = np.abs(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):
            continue
        if arr.size and np.all(np.isfinite(arr)):
            scale = max(scale, float(arr.max()))
    return scale


def tensor_key(layer: Any, tensor: str) -> int:
    return 0 if tensor == "x" else 1 + list(layer.params).index(tensor)


def integer_input(analytic: dict[str, Any]) -> Comparison:
    """Integer inputs (token indices) have no gradient: neither a pass nor a FAIL."""
    dx = analytic.get("x")
    if dx is None:
        return Comparison(Status.SKIPPED, reason="n/a (integer input; backward returns dx = None: "
                                                 "no gradient flows into token indices)")
    return Comparison(Status.SKIPPED, analytic_shape=tuple(np.shape(dx)), reason="n/a (integer input)")


def check_analytic(how: Differencing, ledger: Ledger, analytic: dict[str, Any],
                   failure: BackwardFailure | None,
                   tensor: str, target: Target) -> tuple[Comparison, np.ndarray | None]:
    """Check one tensor; a defect of the whole backward (extra keys, nondeterminism, writing
    into dout) fails the row even where the numbers match."""
    whole = failure is not None and failure.has(Defect.EXTRA, Defect.NONDETERMINISTIC)
    in_place = failure is not None and failure.has(Defect.IN_PLACE)
    if whole or in_place:
        if in_place and tensor != "x":
            failure = None
        value = analytic.get(tensor)
        if value is None:
            return Comparison(Status.FAIL, entries=target.theta.size,
                              reason=str(failure or f"backward returned no gradient for {tensor}")), None
        comparison, n_full = check_tensor(how, ledger, value, tensor, target)
        if failure:
            comparison.status = Status.FAIL
            comparison.reason = "; ".join(filter(None, [failure.message, comparison.reason]))
        return comparison, n_full
    if tensor not in analytic or analytic[tensor] is None:
        none_dx = failure is None and tensor == "x" and tensor in analytic
        reason = failure.message if failure else \
            dx_none(target.theta) if none_dx else f"backward returned no gradient for {tensor}"
        return Comparison(Status.FAIL, entries=target.theta.size, reason=reason,
                          diagnosis="dx = None for a float input" if none_dx else None), None
    return check_tensor(how, ledger, analytic[tensor], tensor, target)
