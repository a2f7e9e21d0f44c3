"""The two checks, side by side, for every (layer, tensor) of a built network.

1. Isolated: with the layer's real input x and a seeded random upstream gradient G, the layer's
   backward(G) against finite differences of ⟨forward(x), G⟩, for x and each parameter.
   This puts a bug in the one layer that has it.
2. Network (end to end): the scalar loss (+ L2) against each parameter tensor and each layer's
   input, perturbed in place and pushed through the rest of the network.

The numeric reference always runs in float64: float32 parameters and inputs are cast exactly, so
the reference is not limited by float32 rounding. Nothing here mutates the network.
"""
from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import fastpath
from .compare import as_gradient, diagnose_failure, judge, shape_mismatch
from .diagnose import Context
from .errors import GradcheckError, LayerRuntimeError
from .network import STREAM_COTANGENT, Network, node_key, rng_for, runtime_error
from .numeric import (EvaluateEntries, EvaluateStack, chunk_for,
                      direction_differences, entry_differences, resolve_step)
from .plan import PlannedLayer
from .probes import (entries_from_stack, probe_capable, stack_evaluator, verify_probe_axes,
                     with_params)
from .registry import is_builtin
from .results import Comparison, ConfigResult, Row, Status, worst
from .tolerance import Tolerance, tolerance_for

DEFAULT_MEMORY = 256 * 1024 * 1024
STREAM_PROBES = 4
#: a layer-input gradient this much smaller (larger) than the loss gradient is flagged
VANISHING, EXPLODING = 1e-8, 1e8

__all__ = ["CheckSettings", "check_network", "with_params"]


@dataclass
class CheckSettings:
    """How to check; built from the spec's `check:` and any command-line overrides."""

    method: str = "central"
    eps: float | str = "auto"
    mode: str = "full"               # full | sample | directional
    samples: int = 16                # entries per tensor in sample mode
    directions: int = 4              # random directions per tensor in directional mode
    pass_rtol: float | None = None
    warn_rtol: float | None = None
    #: bytes one batch of perturbed copies may take; larger tensors are checked in chunks
    max_memory: int = DEFAULT_MEMORY
    #: False evaluates one perturbed copy per call, even for layers that accept probe axes
    batched: bool = True
    #: keep every array checked in ConfigResult.arrays (for --dump)
    keep_arrays: bool = False
    #: called as progress(evaluations, what) after each batch of perturbed copies (for a
    #: progress display); never part of the results
    progress: Callable[[int, str], None] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_spec(cls, spec, **overrides: Any) -> "CheckSettings":
        c = spec.check
        values = {k: getattr(c, k) for k in ("method", "eps", "mode", "samples", "directions",
                                             "pass_rtol", "warn_rtol") if hasattr(c, k)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def full_shape(layout: str, shape: tuple[int, ...], batch: int) -> tuple[int, ...]:
    return (*shape, batch) if layout == "columns" else (batch, *shape)


@dataclass
class _Forward:
    acts: list[np.ndarray]          # input of node i is acts[i]; acts[-1] feeds the loss
    caches: list[Any]
    loss_value: float = 0.0
    loss_cache: Any = None
    mutated: dict[str, str] = field(default_factory=dict)   # label -> what a layer overwrote


@dataclass
class _Context:
    net: Network
    settings: CheckSettings
    tol: Tolerance
    eps: float
    clean: _Forward = field(init=False)
    ref_layers: list[Any] = field(init=False)
    ref_acts: list[np.ndarray] = field(init=False)
    ref_loss_value: float = field(init=False)
    ref_targets: Any = field(init=False)
    arrays: dict[str, np.ndarray] | None = None
    untrusted: list[str] = field(default_factory=list)   # plugin layers whose probe_axes claim failed

    def keep(self, key: str, value: Any) -> None:
        if self.arrays is not None and value is not None:
            self.arrays[key] = np.array(value)


def check_network(net: Network, settings: CheckSettings | None = None) -> ConfigResult:
    """Run both checks on every (layer, tensor) of ``net``; return the rows as plain data."""
    started = time.perf_counter()
    spec = net.spec
    settings = settings or CheckSettings.from_spec(spec)
    ctx = _Context(net, settings, tolerance_for(spec.dtype, settings.pass_rtol, settings.warn_rtol),
                   resolve_step(settings.eps, settings.method),
                   arrays={} if settings.keep_arrays else None)
    if settings.method == "complex":
        _require_complex_safe(net)
    try:
        return _check(ctx, started)
    except SystemExit as exc:
        # a layer's code called sys.exit while the differences ran: nothing was computed
        raise LayerRuntimeError(f"a layer called sys.exit({exc.code!r}) during the check; "
                                "nothing can be checked", file=spec.doc.path) from None


def _check(ctx: _Context, started: float) -> ConfigResult:
    net, spec, settings = ctx.net, ctx.net.spec, ctx.settings
    ctx.clean = _clean_forward(net)
    _reference(ctx)
    rows: list[Row] = []
    for i, node in enumerate(net.nodes):
        rows.extend(_isolated_rows(ctx, i, node))
    rows.append(_loss_row(ctx))
    for r in rows:
        if r.tensor == "x" and r.label in ctx.clean.mutated:
            r.isolated.status = Status.FAIL
            r.isolated.reason = "; ".join(filter(None, [ctx.clean.mutated[r.label], r.isolated.reason]))
    _network_check(ctx, rows)
    _settle(rows)
    status = worst(r.status for r in rows)
    return ConfigResult(
        path=spec.doc.path, name=spec.name or "", status=status, seed=spec.seed, dtype=spec.dtype,
        layout=spec.layout, method=settings.method, eps=ctx.eps,
        reference="float64 (float32 values cast exactly)" if spec.dtype == "float32" else "float64",
        n_params=sum(math.prod(s) for n in net.nodes for s in n.param_shapes.values()),
        batch=net.batch, rows=rows,
        settings={"method": settings.method, "eps": settings.eps, "mode": settings.mode,
                  "samples": settings.samples, "directions": settings.directions,
                  "pass_rtol": ctx.tol.pass_rtol, "warn_rtol": ctx.tol.warn_rtol,
                  "batched": settings.batched},
        seconds=time.perf_counter() - started, arrays=ctx.arrays)


def _require_complex_safe(net: Network) -> None:
    for node in [*net.nodes, net.loss]:
        if not getattr(type(node.layer), "complex_safe", False):
            name, keypath = _unsafe_inside(node.layer, node.type_name, node.keypath)
            raise net.spec.doc.error(
                f"method complex needs every layer to be complex-safe, and `{name}` does "
                "not declare `complex_safe = True` (its forward must stay analytic for complex "
                "inputs: compare on x.real, no abs/maximum); use --method central", keypath)


def _unsafe_inside(layer: Any, name: str, keypath: tuple) -> tuple[str, tuple]:
    """The innermost layer of a composite that is not complex-safe, and where it was written."""
    for child, path in zip(getattr(layer, "inner_layers", ()), getattr(layer, "inner_keypaths", ())):
        if not getattr(type(child), "complex_safe", False):
            return _unsafe_inside(child, getattr(child, "type_name", type(child).__name__), path)
    return name, keypath


# -- forward passes ---------------------------------------------------------------------------------

def _clean_forward(net: Network) -> _Forward:
    """The network's own forward in its dtype, checking what every layer returns."""
    plan, m = net.plan, net.batch
    acts, caches, mutated = [net.x], [], {}
    for node in net.nodes:
        # each layer gets its own copy, so that one that writes into its input cannot corrupt
        # the previous layer's output or cache (and so the verdict stays on the right row)
        given = acts[-1].copy()
        try:
            result = node.layer.forward(given)
        except GradcheckError:  # ours (a time limit, a located error): as it is
            raise
        except (Exception, SystemExit) as exc:  # plugin code may call sys.exit
            raise runtime_error(plan, node, "forward", exc) from None
        if not np.array_equal(given, acts[-1], equal_nan=True):
            mutated[node.label] = "forward modifies its input x in place"
        out = _unpack(plan, node, result, full_shape(net.spec.layout, node.output_shape, m))
        acts.append(out)
        caches.append(result[1])
    loss = net.loss.layer
    if hasattr(loss, "validate_input"):
        try:
            loss.validate_input(acts[-1])
        except LayerRuntimeError as exc:
            raise net.spec.doc.error(exc.message, ("loss",)) from None
    try:
        value, lcache = loss.forward(acts[-1], net.targets)
    except GradcheckError:  # ours (a time limit, a located error): as it is
        raise
    except (Exception, SystemExit) as exc:  # plugin code may call sys.exit
        raise runtime_error(plan, net.loss, "forward", exc) from None
    if np.ndim(value) != 0 or not np.isfinite(value):
        raise net.spec.doc.error(f"{net.loss.type_name}.forward returned {value!r:.60} for the loss; "
                                 "expected one finite number", ("loss",))
    return _Forward(acts, caches, float(value), lcache, mutated)


def _unpack(plan, node: PlannedLayer, result: Any, expected: tuple[int, ...]) -> np.ndarray:
    doc = plan.spec.doc
    if not (isinstance(result, tuple) and len(result) == 2):
        raise doc.error(f"{node.type_name}.forward must return (out, cache), got "
                        f"{type(result).__name__}", node.keypath)
    out = result[0]
    if not isinstance(out, np.ndarray):
        raise doc.error(f"{node.type_name}.forward returned out of type {type(out).__name__}; "
                        "expected a numpy array", node.keypath)
    if out.shape != expected:
        raise doc.error(f"{node.type_name}.forward returned out of shape {out.shape}; expected "
                        f"{expected}", node.keypath)
    if not np.issubdtype(out.dtype, np.inexact):
        raise doc.error(f"{node.type_name}.forward returned an array of dtype {out.dtype}; expected "
                        "floating point numbers", node.keypath)
    if not np.all(np.isfinite(out)):
        raise doc.error(f"{node.type_name}.forward returned NaN or Inf "
                        f"({int(np.count_nonzero(~np.isfinite(out)))} entries): the first layer "
                        "where the forward pass stops being finite", node.keypath)
    return out


def _differentiable(x: Any) -> bool:
    return np.issubdtype(np.asarray(x).dtype, np.inexact)


def _f64(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) if _differentiable(x) else x


def _reference(ctx: _Context) -> None:
    """float64 copies of every layer, and the clean float64 forward through them."""
    net = ctx.net
    ctx.ref_layers = [with_params(n.layer, {k: _f64(v) for k, v in n.layer.params.items()})
                      for n in net.nodes]
    rng = rng_for(net.spec.seed, STREAM_PROBES, 999)
    for k, (node, layer) in enumerate(zip(net.nodes, ctx.ref_layers)):
        if getattr(layer, "probe_axes", False) and not is_builtin(type(layer)) \
                and not verify_probe_axes(layer, _f64(ctx.clean.acts[k]), rng):
            layer.probe_axes = False  # this copy only: evaluate it one perturbed copy at a time
            ctx.untrusted.append(node.label)
    ctx.ref_targets = _f64(np.asarray(net.targets))
    acts = [_f64(net.x)]
    for layer in ctx.ref_layers:
        acts.append(layer.forward(acts[-1].copy())[0])  # a copy: see _clean_forward
    ctx.ref_acts = acts
    ctx.ref_loss_value = float(np.real(net.loss.layer.forward(acts[-1], ctx.ref_targets)[0]))
    ctx.keep("input", net.x)
    ctx.keep("targets", net.targets)
    for node in net.nodes:
        for name, value in node.layer.params.items():
            ctx.keep(f"params/{node.label}/{name}", value)


# -- one tensor -----------------------------------------------------------------------------------

@dataclass
class _Target:
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


def _diagnosis_context(ctx: _Context, ref_layer: Any, tensor: str, x64: np.ndarray,
                       out64: np.ndarray, g64: np.ndarray) -> dict[str, Any]:
    """What the diagnosis of a failing isolated gradient may use; the wrong-cache candidates
    (gradients at other layers' inputs of the same shape) cost differences, so they are lazy."""
    from .diagnose import wrong_cache_candidates

    others = {f"layer input {j}": a for j, a in enumerate(ctx.ref_acts)
              if a.shape == x64.shape and not np.array_equal(a, x64)}

    def neighbours():
        return wrong_cache_candidates(lambda xx, pp: with_params(ref_layer, pp).forward(xx)[0],
                                      ref_layer.params, tensor, g64, others)

    return dict(cotangent=g64, layer_input=x64, layer_output=out64, neighbours=neighbours)


def _check_tensor(ctx: _Context, analytic: Any, tensor: str, target: _Target) -> tuple[Comparison, np.ndarray | None]:
    """Compare one analytic gradient with its numeric reference in the chosen mode.
    Returns the comparison and the numeric gradient when it was computed for every entry."""
    s, tol, theta = ctx.settings, ctx.tol, target.theta
    if s.progress is not None:
        target = _counted(target, s.progress, f"{target.key[0]} {tensor}")
    a, problem = as_gradient(analytic, tensor, theta.shape, tol)
    if problem is not None:
        if problem.analytic_shape is not None and len(problem.analytic_shape) == 2 \
                and tuple(problem.analytic_shape) == theta.shape[::-1]:
            n_full = _full_numeric(ctx, target)
            problem = shape_mismatch(np.asarray(analytic, dtype=np.float64), tensor, theta.shape, tol, n_full)
            problem.entries = theta.size
            return problem, n_full
        problem.entries = theta.size
        return problem, None
    if theta.size == 0:
        return Comparison(Status.SKIPPED, analytic_shape=a.shape, reason="empty tensor"), None
    chunk = chunk_for(target.bytes_per_probe, s.max_memory)
    context = Context(tensor, ctx.net.batch, ctx.net.spec.layout, tol.pass_rtol, **target.diagnosis)
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


def _counted(target: _Target, progress: Callable[[int, str], None], what: str) -> _Target:
    """The same target, reporting each batch of evaluations."""
    from dataclasses import replace

    def stack(st: np.ndarray) -> np.ndarray:
        out = target.stack(st)
        progress(st.shape[0], what)
        return out

    def entries(idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        out = target.entries(idx, values)
        progress(idx.size, what)
        return out

    return replace(target, stack=stack, entries=entries)


def _entries_check(ctx: _Context, a: np.ndarray, tensor: str, target: _Target, idx: np.ndarray,
                   chunk: int, context: Context) -> tuple[Comparison, np.ndarray | None]:
    s = ctx.settings
    diffs = entry_differences(target.entries, target.theta, idx, ctx.eps, s.method, target.f0, chunk,
                              target.f_scale)
    refine = None
    if s.method != "complex":
        def refine(pos: np.ndarray):
            return entry_differences(target.entries, target.theta, idx[pos], ctx.eps / 2, s.method,
                                     target.f0, chunk, target.f_scale)
    out = judge(a.reshape(-1)[idx], diffs.grad, diffs, tensor, ctx.net.spec.dtype, ctx.tol, context,
                refine=refine, index=idx, full_shape=target.theta.shape,
                analytic_scale=target.analytic_scale)
    out.analytic_shape = a.shape
    n_full = None
    if idx.size == target.theta.size:
        n_full = diffs.grad.reshape(target.theta.shape)
        diagnose_failure(out, a, n_full, ctx.tol, context)
    return out, n_full


def _sample(ctx: _Context, a: np.ndarray, target: _Target) -> np.ndarray:
    """K entries drawn from the seed, always including the largest |analytic| entry."""
    rng = rng_for(ctx.net.spec.seed, STREAM_PROBES, *target.key)
    k = ctx.settings.samples
    chosen = rng.choice(target.theta.size, size=k, replace=False)
    top = int(np.argmax(np.abs(a).reshape(-1)))
    if top not in chosen:
        chosen[0] = top
    return np.sort(chosen)


def _full_numeric(ctx: _Context, target: _Target) -> np.ndarray:
    idx = np.arange(target.theta.size)
    chunk = chunk_for(target.bytes_per_probe, ctx.settings.max_memory)
    d = entry_differences(target.entries, target.theta, idx, ctx.eps, ctx.settings.method,
                          target.f0, chunk, target.f_scale)
    return d.grad.reshape(target.theta.shape)


def _bytes_per_probe(theta: np.ndarray, activations: list[tuple[int, ...]], method: str) -> int:
    item = 16 if method == "complex" else 8
    return item * (theta.size + 3 * sum(math.prod(s) for s in activations) + 16)


# -- check 1: isolated, per layer -------------------------------------------------------------------

def _isolated_rows(ctx: _Context, i: int, node: PlannedLayer) -> list[Row]:
    rows = _isolated(ctx, node.layer, ctx.ref_layers[i], ctx.ref_acts[i], ctx.clean.caches[i],
                     node.label, node_key(node),
                     lambda tensor, shape, comparison: _row(ctx, node, tensor, shape, comparison))
    rows.extend(_inner_rows(ctx, node, node.layer, ctx.clean.caches[i], node.label, node_key(node)))
    return rows


def _isolated(ctx: _Context, layer: Any, ref_layer: Any, x64: np.ndarray, cache: Any, label: str,
              key: tuple[int, ...], make_row: Callable[[str, tuple, Comparison], Row]) -> list[Row]:
    """Check 1 for one layer: backward(G) against differences of ⟨forward(·), G⟩."""
    out64 = ref_layer.forward(x64)[0]
    g64 = rng_for(ctx.net.spec.seed, STREAM_COTANGENT, *key).standard_normal(out64.shape)
    g = g64.astype(ctx.net.dtype)
    analytic, failure = _backward(layer, g, cache)
    if failure is None:
        failure = _nondeterministic(layer, g, cache, analytic)
    g_flat = g64.reshape(-1)

    def tail(out):
        # ⟨out, G⟩ per copy, as one matrix-vector product
        return out.reshape(*out.shape[:out.ndim - g64.ndim], -1) @ g_flat

    f0 = float(tail(out64))
    f_scale = float(np.abs(out64 * g64).sum())
    batched = ctx.settings.batched and probe_capable([ref_layer])
    rows = []
    ctx.keep(f"isolated/{label}/cotangent", g64)
    for tensor in ["x", *layer.params]:
        theta = x64 if tensor == "x" else ref_layer.params[tensor]
        if tensor == "x" and not _differentiable(theta):
            rows.append(make_row(tensor, theta.shape, _integer_input(analytic)))
            continue
        stack = stack_evaluator(ref_layer, tensor, x64, [], tail, batched)
        entries, per_probe = entries_from_stack(stack, theta), _bytes_per_probe(
            theta, [x64.shape, out64.shape], ctx.settings.method)
        if batched and fastpath.supports(ref_layer, tensor, isolated=True):
            entries = fastpath.entries_evaluator(ref_layer, tensor, [x64, out64], [], tail, True,
                                                 contraction=g64)
        target = _Target(theta, stack, entries, f0, f_scale, per_probe,
                         (*key, _tensor_key(layer, tensor)), _gradient_scale(analytic))
        target.diagnosis = _diagnosis_context(ctx, ref_layer, tensor, x64, out64, g64)
        comparison, n_full = _judge(ctx, analytic, failure, tensor, target)
        ctx.keep(f"isolated/{label}/{tensor}/analytic", analytic.get(tensor))
        ctx.keep(f"isolated/{label}/{tensor}/numeric", n_full)
        rows.append(make_row(tensor, theta.shape, comparison))
    return rows


def _gradient_scale(analytic: dict[str, Any]) -> float:
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


def _tensor_key(layer: Any, tensor: str) -> int:
    return 0 if tensor == "x" else 1 + list(layer.params).index(tensor)


def _inner_rows(ctx: _Context, node: PlannedLayer, layer: Any, cache: Any, label: str,
                key: tuple[int, ...]) -> list[Row]:
    """Isolated rows for the inner layers of a composite (labels 3.1, 3.2, ...), so that a bug
    inside a block is located inside it. A composite lists them with ``inner(cache)``."""
    inner = getattr(layer, "inner", None)
    if inner is None:
        return []
    rows: list[Row] = []
    doc = ctx.net.spec.doc
    written = dict(zip(getattr(layer, "labels", ()), getattr(layer, "inner_keypaths", ())))
    for k, (suffix, sub, sub_x) in enumerate(inner(cache), start=1):
        sub_label = f"{label}.{suffix}"
        sub_line = doc.locate(written[suffix])[0] if suffix in written else node.line
        sub_out, sub_cache = sub.forward(sub_x)
        ref_sub = with_params(sub, {n: _f64(v) for n, v in sub.params.items()})
        sub_key = (*key, 100 + k)

        def make_row(tensor, shape, comparison, sub=sub, sub_label=sub_label, sub_x=sub_x, sub_out=sub_out,
                     sub_line=sub_line):
            return Row(label=sub_label, index=node.index, layer_type=sub.type_name or type(sub).__name__,
                       line=sub_line, tensor=tensor, input_shape=tuple(np.shape(sub_x)),
                       output_shape=tuple(np.shape(sub_out)), tensor_shape=tuple(shape),
                       isolated=comparison, network=None)

        rows.extend(_isolated(ctx, sub, ref_sub, _f64(np.asarray(sub_x)), sub_cache, sub_label,
                              sub_key, make_row))
        rows.extend(_inner_rows(ctx, node, sub, sub_cache, sub_label, sub_key))
    return rows


def _integer_input(analytic: dict[str, Any]) -> Comparison:
    """Integer inputs (token indices) have no gradient: neither a pass nor a FAIL."""
    dx = analytic.get("x")
    shape = None if dx is None else tuple(np.shape(dx))
    return Comparison(Status.SKIPPED, analytic_shape=shape, reason="n/a (integer input)")


def _backward(layer: Any, dout: np.ndarray, cache: Any) -> tuple[dict[str, Any], str | None]:
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


def _nondeterministic(layer: Any, dout: np.ndarray, cache: Any, first: dict[str, Any]) -> str | None:
    """Backward called twice on the same inputs must give the same numbers."""
    again, failure = _backward(layer, dout, cache)
    if failure:
        return None
    for k, v in first.items():
        try:
            same = np.array_equal(np.asarray(v), np.asarray(again.get(k)), equal_nan=True)
        except (TypeError, ValueError):
            same = False
        if not same:
            return f"backward is not deterministic: a second call with the same inputs gives a different d{k}"
    return None


def _judge(ctx: _Context, analytic: dict[str, Any], failure: str | None, tensor: str,
           target: _Target) -> tuple[Comparison, np.ndarray | None]:
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
        comparison, n_full = _check_tensor(ctx, value, tensor, target)
        if failure:
            comparison.status = Status.FAIL
            comparison.reason = "; ".join(filter(None, [failure, comparison.reason]))
        return comparison, n_full
    if tensor not in analytic or analytic[tensor] is None:
        reason = failure or f"backward returned no gradient for {tensor}"
        return Comparison(Status.FAIL, entries=target.theta.size, reason=reason), None
    return _check_tensor(ctx, analytic[tensor], tensor, target)


def _row(ctx: _Context, node: PlannedLayer, tensor: str, shape, comparison: Comparison) -> Row:
    spec, m = ctx.net.spec, ctx.net.batch
    return Row(label=node.label, index=node.index, layer_type=node.type_name, line=node.line,
               tensor=tensor, input_shape=full_shape(spec.layout, node.input_shape, m),
               output_shape=full_shape(spec.layout, node.output_shape, m) if node.output_shape else (),
               tensor_shape=tuple(shape), isolated=comparison, network=None)


def _loss_row(ctx: _Context) -> Row:
    net = ctx.net
    node, loss = net.loss, net.loss.layer
    try:
        analytic, failure = {"x": loss.backward(1.0, ctx.clean.loss_cache)}, None
    except GradcheckError:  # ours (a time limit, a located error): as it is
        raise
    except (Exception, SystemExit) as exc:  # plugin code may call sys.exit
        analytic, failure = {}, f"backward raised {type(exc).__name__}: {exc}"
    x64 = ctx.ref_acts[-1]
    targets = ctx.ref_targets

    def tail(value):
        return value

    class _AsLayer:  # the loss seen as a layer whose output is the scalar itself
        probe_axes = getattr(type(loss), "probe_axes", False)

        def forward(self, x):
            return loss.forward(x, targets)

    batched = ctx.settings.batched and probe_capable([_AsLayer()])
    stack = stack_evaluator(_AsLayer(), "x", x64, [], tail, batched)
    target = _Target(x64, stack, entries_from_stack(stack, x64), ctx.ref_loss_value,
                     abs(ctx.ref_loss_value), _bytes_per_probe(x64, [x64.shape], ctx.settings.method),
                     (0, 9, 0))
    comparison, n_full = _judge(ctx, analytic, failure, "x", target)
    ctx.keep("isolated/loss/x/analytic", analytic.get("x"))
    ctx.keep("isolated/loss/x/numeric", n_full)
    return _row(ctx, node, "x", x64.shape, comparison)


# -- check 2: the whole network --------------------------------------------------------------------

def _network_check(ctx: _Context, rows: list[Row]) -> None:
    """Backpropagate the loss through every layer's backward and check each tensor end to end."""
    net, spec = ctx.net, ctx.net.spec
    m, l2 = net.batch, spec.l2
    by_key = {(r.label, r.tensor): r for r in rows}
    loss_row = by_key[("loss", "x")]
    loss_row.network = loss_row.isolated
    chain = _chain(ctx)
    loss_batched = getattr(type(net.loss.layer), "probe_axes", False)

    def loss_tail(out):
        return net.loss.layer.forward(out, ctx.ref_targets)[0]

    top = chain.get("top")
    for i, node in enumerate(net.nodes):
        grads, failure = chain[i]
        rest = ctx.ref_layers[i + 1:]
        batched = ctx.settings.batched and loss_batched and probe_capable([ctx.ref_layers[i], *rest])
        activations = [ctx.ref_acts[j].shape for j in range(i, len(ctx.ref_acts))]
        for tensor in ["x", *node.layer.params]:
            row = by_key[(node.label, tensor)]
            theta = ctx.ref_acts[i] if tensor == "x" else ctx.ref_layers[i].params[tensor]
            if tensor == "x" and not _differentiable(theta):
                row.network = _integer_input(grads)
                continue
            if tensor == "x" and i > 0:
                # end to end, only the network input is checked: a hidden layer's dx is checked
                # in isolation, and its effect shows in every parameter upstream
                if top and grads.get("x") is not None:
                    _flag_scale(row, grads["x"], top)
                continue
            penalized = tensor != "x" and tensor in getattr(node.layer, "decay", ()) and l2 > 0
            stack = stack_evaluator(ctx.ref_layers[i], tensor, ctx.ref_acts[i], rest, loss_tail, batched)
            entries = entries_from_stack(stack, theta)
            per_probe = _bytes_per_probe(theta, activations, ctx.settings.method)
            if ctx.settings.batched and fastpath.supports(ctx.ref_layers[i], tensor):
                entries = fastpath.entries_evaluator(ctx.ref_layers[i], tensor, ctx.ref_acts[i:], rest,
                                                     loss_tail, loss_batched)
                per_probe -= 8 * theta.size  # no copies of θ are made
            f0 = ctx.ref_loss_value
            analytic = dict(grads)
            if penalized:
                coef = l2 / (2 * m)
                stack = _with_l2(stack, coef)
                entries = _entries_with_l2(entries, theta, coef)
                f0 += coef * float((theta * theta).sum())
                if analytic.get(tensor) is not None:
                    try:
                        analytic[tensor] = np.asarray(analytic[tensor]) + (l2 / m) * node.layer.params[tensor]
                    except ValueError:
                        pass  # a wrong-shaped gradient is reported as such
            target = _Target(theta, stack, entries, f0, abs(f0), per_probe,
                             (*node_key(node), 50 + _tensor_key(node.layer, tensor)),
                             _gradient_scale(analytic))
            if ("dout", i) in chain:
                target.diagnosis = dict(cotangent=_f64(chain[("dout", i)]),
                                        layer_input=ctx.ref_acts[i], layer_output=ctx.ref_acts[i + 1])
            row.network, n_full = _judge(ctx, analytic, failure, tensor, target)
            ctx.keep(f"network/{node.label}/{tensor}/analytic", analytic.get(tensor))
            ctx.keep(f"network/{node.label}/{tensor}/numeric", n_full)
            if tensor == "x" and top and analytic.get("x") is not None:
                _flag_scale(row, analytic["x"], top)


def _chain(ctx: _Context) -> dict:
    """Every layer's backward, chained from the loss: {i: (grads, failure)}, plus the loss gradient."""
    net = ctx.net
    chain: dict = {}
    try:
        d = net.loss.layer.backward(1.0, ctx.clean.loss_cache)
        chain["top"] = float(np.linalg.norm(np.asarray(d, dtype=np.float64)))
        broken = None
    except GradcheckError:  # ours (a time limit, a located error): as it is
        raise
    except (Exception, SystemExit) as exc:  # plugin code may call sys.exit
        d, broken = None, f"not computed: the loss's backward raised {type(exc).__name__}"
    for i in reversed(range(len(net.nodes))):
        if d is None:
            chain[i] = ({}, broken)
            continue
        chain[("dout", i)] = np.array(d, copy=True)   # for the diagnosis of this layer's rows
        grads, failure = _backward(net.nodes[i].layer, d, ctx.clean.caches[i])
        chain[i] = (grads, failure)
        d = grads.get("x")
        if d is not None:
            # a copy, so that a backward writing into its dout cannot alter the row it came from
            d = np.array(d, copy=True)
        if d is None or (failure and "raised" in failure):
            d, broken = None, f"not computed: layer {net.nodes[i].label}'s backward failed"
    return chain


def _flag_scale(row: Row, dx: Any, top: float) -> None:
    """Vanishing or exploding gradients at a layer's input, relative to the loss gradient."""
    try:
        ratio = float(np.linalg.norm(np.asarray(dx, dtype=np.float64))) / top
    except (TypeError, ValueError):
        return
    if ratio < VANISHING or ratio > EXPLODING:
        word = "vanishing" if ratio < VANISHING else "exploding"
        (row.network or row.isolated).notes = f"{word} gradient: ‖dL/dx‖ is {ratio:.1e} × ‖dL/d(output)‖"


def _entries_with_l2(evaluate: EvaluateEntries, theta: np.ndarray, coef: float) -> EvaluateEntries:
    total = float((theta * theta).sum())
    flat = theta.reshape(-1)

    def penalized(idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        return evaluate(idx, values) + coef * (total - flat[idx] ** 2 + values * values)
    return penalized


def _with_l2(evaluate: EvaluateStack, coef: float) -> EvaluateStack:
    def penalized(stack: np.ndarray) -> np.ndarray:
        axes = tuple(range(1, stack.ndim))
        return evaluate(stack) + coef * (stack * stack).sum(axis=axes)
    return penalized


# -- verdict per row -------------------------------------------------------------------------------

def _who(row: Row) -> str:
    return f"the loss ({row.layer_type})" if row.label == "loss" else f"layer {row.label} ({row.layer_type})"


def _settle(rows: list[Row]) -> None:
    """A row's status from both checks; a network-only failure is blamed on a later layer's dx."""
    order = {r.label: k for k, r in enumerate(rows)}
    bad_dx = [r for r in rows if r.tensor == "x" and r.isolated.status is Status.FAIL]
    for r in rows:
        iso, net = r.isolated, r.network
        notes = (net.notes if net is not None else None) or iso.notes
        if iso.status is Status.FAIL:
            r.status, r.reason = Status.FAIL, iso.reason
        elif net is not None and net.status is Status.FAIL:
            culprit = next((b for b in bad_dx if order[b.label] > order[r.label]), None)
            if net.reason.startswith("not computed"):
                r.status, r.reason = Status.INHERITED, net.reason
            elif culprit is not None:
                r.status = Status.INHERITED
                r.reason = f"right in isolation; wrong end to end because {_who(culprit)} returns a wrong dx"
            else:
                r.status = Status.FAIL
                r.reason = f"right in isolation but wrong end to end: {net.reason}"
        elif net is None and r.tensor == "x" and r.label != "loss" and \
                (culprit := next((b for b in bad_dx if order[b.label] > order[r.label]), None)):
            # a hidden layer's dL/dx is not differenced end to end, but it is wrong all the same
            r.status = Status.INHERITED
            r.reason = (f"right in isolation; its end-to-end dL/dx is wrong because {_who(culprit)} "
                        "returns a wrong dx")
        elif Status.WARN in (iso.status, net.status if net else None) or notes:
            r.status = Status.WARN
            r.reason = "; ".join(filter(None, [
                iso.reason if iso.status is Status.WARN else "",
                f"end to end: {net.reason}" if net is not None and net.status is Status.WARN else "",
                notes or ""]))
        elif Status.KINK in (iso.status, net.status if net else None):
            r.status = Status.KINK
            r.reason = iso.reason if iso.status is Status.KINK else f"end to end: {net.reason}"
        elif iso.status is Status.SKIPPED:
            r.status, r.reason = Status.SKIPPED, iso.reason
        else:
            r.status, r.reason = Status.PASS, iso.reason or (net.reason if net else "")


# -- one tensor's function, for step sweeps and teaching tools --------------------------------------

@dataclass
class TensorFunction:
    """The isolated check's scalar function of one tensor: f(θ) = ⟨layer.forward(x; θ), G⟩
    (for the loss row, the loss itself), with the layer's own analytic gradient of it."""

    label: str
    tensor: str
    theta: np.ndarray            # float64, the clean value
    evaluate: EvaluateStack      # f of each copy in a stack (B, *θ.shape)
    f0: float
    analytic: np.ndarray | None  # float64, or None when backward gave nothing usable


def tensor_function(net: Network, label: str, tensor: str, network: bool = True) -> TensorFunction:
    """The function behind row (label, tensor) of a built network: end to end, the loss (+ L2)
    as a function of that tensor; isolated, ⟨layer.forward(x; θ), G⟩."""
    ctx = _Context(net, CheckSettings(), tolerance_for(net.spec.dtype), resolve_step("auto", "central"))
    ctx.clean = _clean_forward(net)
    _reference(ctx)
    loss, targets = net.loss.layer, ctx.ref_targets
    if label == "loss":
        theta = ctx.ref_acts[-1]
        analytic = loss.backward(1.0, ctx.clean.loss_cache)

        def evaluate(stack: np.ndarray) -> np.ndarray:
            return np.asarray(loss.forward(stack, targets)[0]).reshape(stack.shape[0])

        return TensorFunction(label, tensor, theta, evaluate, ctx.ref_loss_value,
                              np.asarray(analytic, dtype=np.float64))
    chain = _chain(ctx) if network else {}
    for i, node in enumerate(net.nodes):
        if node.label != label:
            continue
        layer, ref_layer, x64 = node.layer, ctx.ref_layers[i], ctx.ref_acts[i]
        if tensor != "x" and tensor not in layer.params:
            break
        theta = x64 if tensor == "x" else ref_layer.params[tensor]
        if network:
            rest = ctx.ref_layers[i + 1:]
            batched = probe_capable([ref_layer, *rest, net.loss.layer])
            evaluate = stack_evaluator(ref_layer, tensor, x64, rest,
                                       lambda out: loss.forward(out, targets)[0], batched)
            grads, f0 = chain[i][0], ctx.ref_loss_value
            a = grads.get(tensor)
            if tensor != "x" and tensor in getattr(layer, "decay", ()) and net.spec.l2 > 0:
                coef = net.spec.l2 / (2 * net.batch)
                evaluate = _with_l2(evaluate, coef)
                f0 += coef * float((theta * theta).sum())
                a = None if a is None else np.asarray(a) + 2 * coef * layer.params[tensor]
        else:
            out64 = ref_layer.forward(x64)[0]
            g64 = rng_for(net.spec.seed, STREAM_COTANGENT, *node_key(node)).standard_normal(out64.shape)
            grads, _ = _backward(layer, g64.astype(net.dtype), ctx.clean.caches[i])
            g_flat = g64.reshape(-1)

            def tail(out):
                return out.reshape(*out.shape[:out.ndim - g64.ndim], -1) @ g_flat

            evaluate = stack_evaluator(ref_layer, tensor, x64, [], tail, probe_capable([ref_layer]))
            a, f0 = grads.get(tensor), float(tail(out64))
        try:
            a = np.asarray(a, dtype=np.float64) if a is not None else None
        except (TypeError, ValueError):
            a = None
        return TensorFunction(label, tensor, theta, evaluate, f0, a)
    tensors = {n.label: ["x", *n.layer.params] for n in net.nodes}
    raise net.spec.doc.error(f"no row {label} {tensor}: rows are "
                             + "; ".join(f"{k}: {', '.join(v)}" for k, v in tensors.items())
                             + "; loss: x")
