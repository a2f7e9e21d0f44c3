"""One tensor: an analytic gradient against its numeric reference, in the chosen mode.

Also the layer's backward, called and validated once (missing or extra keys, exceptions, writing
into dout, nondeterminism), since every row of a layer depends on it.
"""
from __future__ import annotations

import math
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .judge import as_gradient, judge, shape_mismatch
from .state import CheckContext
from .diagnose import Context
from ..errors import GradcheckError
from .network import STREAM_PROBES, rng_for
from .differences import (EvaluateEntries, EvaluateStack, chunk_for, direction_differences,
                      entry_differences)
from ..results import Comparison, Status
from .ties import check_ties

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


def check_tensor(ctx: CheckContext, analytic: Any, tensor: str, target: Target) -> tuple[Comparison, np.ndarray | None]:
    """Compare one analytic gradient with its numeric reference in the chosen mode.
    Returns the comparison and the numeric gradient when it was computed for every entry."""
    s, tol, theta = ctx.settings, ctx.tol, target.theta
    target = _counted(target, ctx, target.progress_label or tensor)
    context = Context(tensor, ctx.net.batch, ctx.net.spec.layout, tol.pass_rtol, **target.diagnosis)
    a, problem = as_gradient(analytic, tensor, theta.shape, tol)
    if problem is not None:
        shape = problem.analytic_shape
        transposed = shape is not None and len(shape) == 2 and tuple(shape) == theta.shape[::-1]
        # a wrong shape is explained best with the numeric gradient at hand (a crop, a sum that
        # matches it); small tensors get it, as transposed ones always did
        wrong_shape = shape is not None and tuple(shape) != theta.shape and problem.reason.startswith(f"d{tensor} has shape")
        if transposed or (wrong_shape and theta.size <= SHAPE_NUMERIC_LIMIT):
            n_full = _full_numeric(ctx, target)
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
    chunk = chunk_for(target.bytes_per_probe, s.max_memory)
    if s.mode == "directional":
        rng = rng_for(ctx.net.spec.seed, STREAM_PROBES, *target.key)
        u = rng.standard_normal((s.directions, theta.size))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        diffs = direction_differences(target.stack, theta, u, ctx.eps, s.method, target.f0, chunk,
                                      target.f_scale)
        def refine(pos: np.ndarray):
            return direction_differences(target.stack, theta, u[pos], ctx.eps / 2, s.method,
                                         target.f0, chunk, target.f_scale)

        out = judge(u @ a.reshape(-1), diffs.grad, diffs, tensor, ctx.net.spec.dtype, tol, context,
                    refine=None if s.method == "complex" else refine,
                    analytic_scale=target.analytic_scale)
        out.analytic_shape = a.shape
        if out.status is not Status.FAIL:
            return out, None
        # A direction says that something is wrong, not where: check every entry to show it.
        full, n_full = _entries_check(ctx, a, tensor, target, np.arange(theta.size), chunk, context)
        full.reason = f"directional check failed ({out.reason}); full check: {full.reason}"
        return full, n_full
    idx = np.arange(theta.size) if s.mode == "full" or theta.size <= s.samples else _sample(ctx, a, target)
    return _entries_check(ctx, a, tensor, target, idx, chunk, context)


def _counted(target: Target, ctx: CheckContext, what: str) -> Target:
    """The same target, counting each batch: the copies evaluated (the measured cost) and the
    entries probed (what the estimate and the progress display count)."""
    from dataclasses import replace

    progress = ctx.settings.progress

    def stack(st: np.ndarray) -> np.ndarray:
        out = target.stack(st)
        ctx.count(st.shape[0], what)
        ctx.probes += st.shape[0]
        if progress is not None:
            progress(st.shape[0], what)
        return out

    def entries(idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        # an evaluator that perturbs several entries per copy says how many copies it made
        before = getattr(target.entries, "copies", None)
        out = target.entries(idx, values)
        ctx.count(idx.size if before is None else target.entries.copies - before, what)
        ctx.probes += idx.size
        if progress is not None:
            progress(idx.size, what)
        return out

    return replace(target, stack=stack, entries=entries)


def _entries_check(ctx: CheckContext, a: np.ndarray, tensor: str, target: Target, idx: np.ndarray,
                   chunk: int, context: Context) -> tuple[Comparison, np.ndarray | None]:
    s = ctx.settings
    diffs = entry_differences(target.entries, target.theta, idx, ctx.eps, s.method, target.f0, chunk,
                              target.f_scale)
    def at_half_step(pos: np.ndarray):
        return entry_differences(target.entries, target.theta, idx[pos], ctx.eps / 2, s.method,
                                 target.f0, chunk, target.f_scale)

    def ties(pos: np.ndarray, analytic: np.ndarray, noise: np.ndarray, d_plus: np.ndarray,
             d_minus: np.ndarray):
        return check_ties(target.theta, idx[pos], analytic, noise, (d_plus, d_minus), target.stack,
                          ctx.eps, target.f0, target.f_scale, chunk)

    # the complex step has no truncation to estimate and crosses no kink
    out = judge(a.reshape(-1)[idx], diffs.grad, diffs, tensor, ctx.net.spec.dtype, ctx.tol, context,
                refine=None if s.method == "complex" else at_half_step, index=idx,
                full_shape=target.theta.shape,
                analytic_scale=target.analytic_scale, ties=ties)
    out.analytic_shape = a.shape
    n_full = None
    if idx.size == target.theta.size:
        n_full = diffs.grad.reshape(target.theta.shape)
    return out, n_full


def _sample(ctx: CheckContext, a: np.ndarray, target: Target) -> np.ndarray:
    """K entries drawn from the seed, always including the largest |analytic| entry."""
    rng = rng_for(ctx.net.spec.seed, STREAM_PROBES, *target.key)
    k = ctx.settings.samples
    chosen = rng.choice(target.theta.size, size=k, replace=False)
    top = int(np.argmax(np.abs(a).reshape(-1)))
    if top not in chosen:
        chosen[0] = top
    return np.sort(chosen)


def _full_numeric(ctx: CheckContext, target: Target) -> np.ndarray:
    idx = np.arange(target.theta.size)
    chunk = chunk_for(target.bytes_per_probe, ctx.settings.max_memory)
    d = entry_differences(target.entries, target.theta, idx, ctx.eps, ctx.settings.method,
                          target.f0, chunk, target.f_scale)
    return d.grad.reshape(target.theta.shape)


def bytes_per_probe(theta: np.ndarray, activations: list[tuple[int, ...]], method: str) -> int:
    item = 16 if method == "complex" else 8
    return item * (theta.size + 3 * sum(math.prod(s) for s in activations) + 16)


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


def dx_none(theta: np.ndarray) -> str:
    """Why dx = None fails for a float input."""
    return (f"backward returned dx = None, but x is {theta.dtype} (shape {tuple(theta.shape)}): None "
            "says that no gradient flows into x, which only integer inputs (token indices) may "
            "say; the layers before this one get no gradient. Return an array of x's shape")


def run_backward(layer: Any, dout: np.ndarray, cache: Any) -> tuple[dict[str, Any], str | None]:
    """The layer's backward as {tensor: gradient}, or the reason it cannot be used."""
    before = np.array(dout, copy=True)
    try:
        result = layer.backward(dout, cache)
    except GradcheckError:  # ours (a time limit, a located error): as it is
        raise
    except (Exception, SystemExit) as exc:  # plugin code may call sys.exit
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
        return {}, f"backward raised {type(exc).__name__}: {exc}{where}"
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        return {}, f"backward must return (dx, grads) with grads a dict, got {type(result).__name__}"
    dx, grads = result
    if not np.array_equal(before, dout, equal_nan=True):
        return {"x": dx, **grads}, ("backward modifies its upstream gradient dout in place (the "
                                    "caller's array): copy it before changing it")
    params = set(layer.params)
    missing, extra = sorted(params - set(grads)), sorted(set(map(str, grads)) - params)
    out = {"x": dx, **{k: v for k, v in grads.items() if k in params}}
    notes = []
    if missing:
        notes.append(f"grads has no {', '.join(missing)}")
    if extra:
        notes.append(f"grads has keys that are not parameters: {', '.join(extra)}")
    return out, "; ".join(notes) or None


def nondeterministic(layer: Any, dout: np.ndarray, cache: Any, first: dict[str, Any]) -> str | None:
    """Backward called twice on the same inputs must give the same numbers."""
    again, failure = run_backward(layer, dout, cache)
    if failure:
        return None
    for k, v in first.items():
        if v is None or again.get(k) is None:
            if v is None and again.get(k) is None:   # dx = None (token input) both times
                continue
            return f"backward is not deterministic: a second call with the same inputs gives a different d{k}"
        try:
            same = np.array_equal(np.asarray(v), np.asarray(again.get(k)), equal_nan=True)
        except (TypeError, ValueError):
            same = False
        if not same:
            return f"backward is not deterministic: a second call with the same inputs gives a different d{k}"
    return None


def state_on_self(layer: Any, x: np.ndarray, dout: np.ndarray, cache: Any, first: dict[str, Any],
                  rng: np.random.Generator) -> dict[str, str]:
    """{tensor: why} for the gradients that change when forward runs on another input between
    the forward that made ``cache`` and the backward: backward then reads something forward
    keeps on ``self`` (the cs231n habit), and in training it would use the wrong batch.
    The layer's state is restored by a last forward on ``x``."""
    x = np.asarray(x)
    other = rng.permutation(x.reshape(-1)).reshape(x.shape)
    if x.size < 2 or np.array_equal(other, x):
        return {}
    try:
        layer.forward(other)
        again, failure = run_backward(layer, dout, cache)
    except GradcheckError:  # ours (a time limit): as it is
        raise
    except (Exception, SystemExit):  # not ours to judge here: the checks themselves run forward
        return {}
    finally:
        try:
            layer.forward(x.copy())
        except (Exception, SystemExit):
            pass
    if failure:
        return {}
    out = {}
    for k, v in first.items():
        w = again.get(k)
        try:
            same = (v is None and w is None) or np.array_equal(np.asarray(v), np.asarray(w), equal_nan=True)
        except (TypeError, ValueError):
            same = False
        if not same:
            out[k] = (f"backward reads state that forward left on the layer (self), not only its "
                      f"cache: after a forward with another input, backward with the first "
                      f"forward's cache gives a different d{k}; keep everything backward needs in "
                      f"the cache forward returns")
    return out


def check_analytic(ctx: CheckContext, analytic: dict[str, Any], failure: str | None, tensor: str,
           target: Target) -> tuple[Comparison, np.ndarray | None]:
    """Check one tensor; a defect of the whole backward (extra keys, nondeterminism, writing
    into dout) fails the row even where the numbers match."""
    whole = failure is not None and any(w in failure for w in ("not parameters", "not deterministic"))
    in_place = failure is not None and "in place" in failure
    if whole or in_place:
        if in_place and tensor != "x":
            failure = None
        value = analytic.get(tensor)
        if value is None:
            return Comparison(Status.FAIL, entries=target.theta.size,
                              reason=failure or f"backward returned no gradient for {tensor}"), None
        comparison, n_full = check_tensor(ctx, value, tensor, target)
        if failure:
            comparison.status = Status.FAIL
            comparison.reason = "; ".join(filter(None, [failure, comparison.reason]))
        return comparison, n_full
    if tensor not in analytic or analytic[tensor] is None:
        none_dx = failure is None and tensor == "x" and tensor in analytic
        reason = failure or (dx_none(target.theta) if none_dx else f"backward returned no gradient for {tensor}")
        return Comparison(Status.FAIL, entries=target.theta.size, reason=reason,
                          diagnosis="dx = None for a float input" if none_dx else None), None
    return check_tensor(ctx, analytic[tensor], tensor, target)

