"""The two checks, side by side, for every (layer, tensor) of a built network.

1. Isolated: with the layer's real input x and a seeded random upstream gradient G, the layer's
   backward(G) against central differences of ⟨forward(x), G⟩, for x and each parameter.
   This puts a bug in the one layer that has it.
2. Network (end to end): the scalar loss (+ L2) against each parameter tensor and each layer's
   input, perturbed in place and pushed through the rest of the network.

The numeric reference always runs in float64: float32 parameters and inputs are cast exactly, so
the reference is not limited by float32 rounding. Nothing here mutates the network.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .compare import compare
from .diagnose import Context
from .errors import LayerRuntimeError
from .network import STREAM_COTANGENT, Network, node_key, rng_for, runtime_error
from .numeric import chunk_for, numeric_gradient, resolve_step
from .plan import PlannedLayer
from .results import Comparison, ConfigResult, Row, Status, worst
from .tolerance import Tolerance, tolerance_for

DEFAULT_MEMORY = 256 * 1024 * 1024


@dataclass
class CheckSettings:
    """How to check; built from the spec's `check:` and any command-line overrides."""

    method: str = "central"
    eps: float | str = "auto"
    pass_rtol: float | None = None
    warn_rtol: float | None = None
    #: bytes one stack of perturbed copies may take; larger tensors are checked in chunks
    max_memory: int = DEFAULT_MEMORY
    #: False evaluates one perturbed copy per call, even for layers that accept probe axes
    batched: bool = True

    @classmethod
    def from_spec(cls, spec, **overrides: Any) -> "CheckSettings":
        c = spec.check
        values = dict(method=c.method, eps=c.eps, pass_rtol=c.pass_rtol, warn_rtol=c.warn_rtol)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def with_params(layer: Any, params: dict[str, np.ndarray]) -> Any:
    """A shallow copy of a layer with some parameters replaced; the original is untouched."""
    new = copy.copy(layer)
    new.params = {**layer.params, **params}
    return new


def full_shape(layout: str, shape: tuple[int, ...], batch: int) -> tuple[int, ...]:
    return (*shape, batch) if layout == "columns" else (batch, *shape)


@dataclass
class _Forward:
    acts: list[np.ndarray]          # input of node i is acts[i]; acts[-1] feeds the loss
    caches: list[Any]
    loss_value: float = 0.0
    loss_cache: Any = None


@dataclass
class _Context:
    net: Network
    settings: CheckSettings
    tol: Tolerance
    eps: float
    clean: _Forward = field(init=False)
    ref_layers: list[Any] = field(init=False)
    ref_loss: Any = field(init=False)
    ref: _Forward = field(init=False)
    ref_targets: Any = field(init=False)

    def ref_out_shape(self, ref_layer: Any, x64: np.ndarray) -> tuple[int, ...]:
        return tuple(ref_layer.forward(x64)[0].shape)


def check_network(net: Network, settings: CheckSettings | None = None) -> ConfigResult:
    """Run both checks on every (layer, tensor) of ``net``; return the rows as plain data."""
    started = time.perf_counter()
    spec = net.spec
    settings = settings or CheckSettings.from_spec(spec)
    ctx = _Context(net, settings, tolerance_for(spec.dtype, settings.pass_rtol, settings.warn_rtol),
                   resolve_step(settings.eps, settings.method))
    ctx.clean = _clean_forward(net)
    _reference(ctx)
    rows: list[Row] = []
    for i, node in enumerate(net.nodes):
        rows.extend(_isolated_rows(ctx, i, node))
    rows.append(_loss_row(ctx))
    _network_check(ctx, rows)
    _settle(rows)
    status = worst(r.status for r in rows)
    return ConfigResult(
        path=spec.doc.path, name=spec.name or "", status=status, seed=spec.seed, dtype=spec.dtype,
        layout=spec.layout, method=settings.method, eps=ctx.eps,
        reference="float64 (float32 values cast exactly)" if spec.dtype == "float32" else "float64",
        n_params=sum(math.prod(s) for n in net.nodes for s in n.param_shapes.values()),
        batch=net.batch, rows=rows,
        settings={"method": settings.method, "eps": settings.eps, "pass_rtol": ctx.tol.pass_rtol,
                  "warn_rtol": ctx.tol.warn_rtol, "batched": settings.batched},
        seconds=time.perf_counter() - started)


# -- forward passes ---------------------------------------------------------------------------------

def _clean_forward(net: Network) -> _Forward:
    """The network's own forward in its dtype, checking what every layer returns."""
    plan, m = net.plan, net.batch
    acts, caches = [net.x], []
    for node in net.nodes:
        try:
            result = node.layer.forward(acts[-1])
        except Exception as exc:
            raise runtime_error(plan, node, "forward", exc) from None
        out = _unpack(plan, node, result, "forward", full_shape(net.spec.layout, node.output_shape, m))
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
    except Exception as exc:
        raise runtime_error(plan, net.loss, "forward", exc) from None
    if np.ndim(value) != 0 or not np.isfinite(value):
        raise net.spec.doc.error(f"{net.loss.type_name}.forward returned {value!r:.60} for the loss; "
                                 "expected one finite number", ("loss",))
    return _Forward(acts, caches, float(value), lcache)


def _unpack(plan, node: PlannedLayer, result: Any, what: str, expected: tuple[int, ...]) -> np.ndarray:
    doc = plan.spec.doc
    if not (isinstance(result, tuple) and len(result) == 2):
        raise doc.error(f"{node.type_name}.{what} must return (out, cache), got "
                        f"{type(result).__name__}", node.keypath)
    out = result[0]
    if not isinstance(out, np.ndarray):
        raise doc.error(f"{node.type_name}.{what} returned out of type {type(out).__name__}; "
                        "expected a numpy array", node.keypath)
    if out.shape != expected:
        raise doc.error(f"{node.type_name}.{what} returned out of shape {out.shape}; expected "
                        f"{expected}", node.keypath)
    if not np.all(np.isfinite(out)):
        raise doc.error(f"{node.type_name}.{what} returned NaN or Inf "
                        f"({int(np.count_nonzero(~np.isfinite(out)))} entries)", node.keypath)
    return out


def _reference(ctx: _Context) -> None:
    """float64 copies of every layer, and the clean float64 forward through them."""
    net = ctx.net
    ctx.ref_layers = [with_params(n.layer, {k: v.astype(np.float64) for k, v in n.layer.params.items()})
                      for n in net.nodes]
    ctx.ref_loss = net.loss.layer
    t = net.targets
    ctx.ref_targets = t.astype(np.float64) if np.issubdtype(np.asarray(t).dtype, np.floating) else t
    if net.dtype == np.float64:
        ctx.ref = ctx.clean
        return
    acts = [net.x.astype(np.float64) if _differentiable(net.x) else net.x]
    for layer in ctx.ref_layers:
        acts.append(layer.forward(acts[-1])[0])
    ctx.ref = _Forward(acts, [])


# -- evaluating stacks of perturbed copies ------------------------------------------------------

def _probe_capable(layers) -> bool:
    return all(getattr(type(layer), "probe_axes", False) for layer in layers)


def _run(layers: list[Any], x: np.ndarray, loss: Any = None, targets: Any = None) -> np.ndarray:
    for layer in layers:
        x = layer.forward(x)[0]
    return x if loss is None else loss.forward(x, targets)[0]


def _stack_evaluator(ctx: _Context, layers: list[Any], first: Any, tensor: str, x: np.ndarray,
                     tail: Callable[[np.ndarray], np.ndarray],
                     tail_batched: bool = True) -> Callable[[np.ndarray], np.ndarray]:
    """evaluate(stack) for perturbing ``tensor`` of ``first`` (the input when tensor is 'x'),
    then running ``layers`` (the rest) and reducing each copy to a scalar with ``tail``.
    Layers that accept probe axes take the whole stack in one call; others one copy at a time."""
    batched = ctx.settings.batched and tail_batched and _probe_capable([first, *layers])

    def one(value: np.ndarray) -> np.ndarray:
        if tensor == "x":
            out = first.forward(value)[0]
        else:
            out = with_params(first, {tensor: value}).forward(x)[0]
        return tail(_run(layers, out))

    def evaluate(stack: np.ndarray) -> np.ndarray:
        if batched:
            return np.asarray(one(stack)).reshape(stack.shape[0])
        return np.array([float(np.asarray(one(s))) for s in stack])

    return evaluate


def _bytes_per_probe(ctx: _Context, start: int, tensor_size: int) -> int:
    m = ctx.net.batch
    sizes = [math.prod(n.output_shape) * m for n in ctx.net.nodes[start:]]
    return 8 * (tensor_size + 3 * sum(sizes) + 16)


# -- check 1: isolated, per layer -------------------------------------------------------------------

def _isolated_rows(ctx: _Context, i: int, node: PlannedLayer) -> list[Row]:
    net, spec = ctx.net, ctx.net.spec
    rows = _isolated(ctx, node.layer, ctx.ref_layers[i], ctx.clean.acts[i], ctx.ref.acts[i],
                     ctx.clean.caches[i], node_key(node),
                     lambda tensor, shape, comparison: _row(ctx, node, tensor, shape, comparison))
    rows.extend(_inner_rows(ctx, node, node.layer, ctx.clean.caches[i], node.label, node_key(node)))
    return rows


def _isolated(ctx: _Context, layer: Any, ref_layer: Any, x: np.ndarray, x64: np.ndarray, cache: Any,
              key: tuple[int, ...], make_row: Callable[[str, tuple, Comparison], Row]) -> list[Row]:
    """Check 1 for one layer: backward(G) against differences of ⟨forward(·), G⟩."""
    out_full = ctx.ref_out_shape(ref_layer, x64)
    g64 = rng_for(ctx.net.spec.seed, STREAM_COTANGENT, *key).standard_normal(out_full)
    analytic, failure = _backward(layer, g64.astype(ctx.net.dtype), cache)
    axes = tuple(range(-len(out_full), 0))

    def tail(out):
        return (out * g64).sum(axis=axes)

    rows = []
    for tensor in ["x", *layer.params]:
        theta = x64 if tensor == "x" else ref_layer.params[tensor]
        if tensor == "x" and not _differentiable(x64):
            rows.append(make_row(tensor, theta.shape, _integer_input(analytic)))
            continue
        evaluate = _stack_evaluator(ctx, [], ref_layer, tensor, x64, tail)
        per_probe = 8 * (theta.size + 3 * (x64.size + math.prod(out_full)) + 16)
        chunk = chunk_for(per_probe, ctx.settings.max_memory, ctx.settings.method)
        diffs = numeric_gradient(evaluate, theta, ctx.eps, ctx.settings.method, chunk)
        rows.append(make_row(tensor, theta.shape, _judge(ctx, analytic, failure, tensor, diffs)))
    return rows


def _inner_rows(ctx: _Context, node: PlannedLayer, layer: Any, cache: Any, label: str,
                key: tuple[int, ...]) -> list[Row]:
    """Isolated rows for the inner layers of a composite (labels 3.1, 3.2, ...), so that a bug
    inside a block is located inside it. A composite lists them with ``inner(cache)``."""
    inner = getattr(layer, "inner", None)
    if inner is None:
        return []
    rows: list[Row] = []
    for k, (suffix, sub, sub_x) in enumerate(inner(cache), start=1):
        sub_label = f"{label}.{suffix}"
        sub_out, sub_cache = sub.forward(sub_x)
        ref_sub = with_params(sub, {n: v.astype(np.float64) for n, v in sub.params.items()})
        sub_key = (*key, k)

        def make_row(tensor, shape, comparison, sub=sub, sub_label=sub_label, sub_x=sub_x, sub_out=sub_out):
            return Row(label=sub_label, index=node.index, layer_type=sub.type_name or type(sub).__name__,
                       line=node.line, tensor=tensor, input_shape=tuple(sub_x.shape),
                       output_shape=tuple(np.shape(sub_out)), tensor_shape=tuple(shape),
                       isolated=comparison, network=None)

        rows.extend(_isolated(ctx, sub, ref_sub, sub_x, np.asarray(sub_x, dtype=np.float64), sub_cache,
                              sub_key, make_row))
        rows.extend(_inner_rows(ctx, node, sub, sub_cache, sub_label, sub_key))
    return rows


def _differentiable(x: np.ndarray) -> bool:
    return np.issubdtype(np.asarray(x).dtype, np.inexact)


def _integer_input(analytic: dict[str, Any]) -> Comparison:
    """Integer inputs (token indices) have no gradient: neither a pass nor a FAIL."""
    dx = analytic.get("x")
    shape = None if dx is None else tuple(np.shape(dx))
    return Comparison(Status.SKIPPED, analytic_shape=shape, reason="n/a (integer input)")


def _backward(layer: Any, dout: np.ndarray, cache: Any) -> tuple[dict[str, Any], str | None]:
    """The layer's backward as {tensor: gradient}, or the reason it cannot be used."""
    try:
        result = layer.backward(dout, cache)
    except Exception as exc:
        import traceback

        frames = traceback.extract_tb(exc.__traceback__)
        where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
        return {}, f"backward raised {type(exc).__name__}: {exc}{where}"
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        return {}, f"backward must return (dx, grads) with grads a dict, got {type(result).__name__}"
    dx, grads = result
    params = set(layer.params)
    missing, extra = sorted(params - set(grads)), sorted(set(grads) - params)
    out = {"x": dx, **{k: v for k, v in grads.items() if k in params}}
    notes = []
    if missing:
        notes.append(f"grads has no {', '.join(missing)}")
    if extra:
        notes.append(f"grads has keys that are not parameters: {', '.join(map(str, extra))}")
    return out, "; ".join(notes) or None


def _judge(ctx: _Context, analytic: dict[str, Any], failure: str | None, tensor: str, diffs) -> Comparison:
    if tensor not in analytic or analytic[tensor] is None:
        reason = failure or f"backward returned no gradient for {tensor}"
        return Comparison(Status.FAIL, entries=diffs.grad.size, reason=reason)
    context = Context(tensor, ctx.net.batch, ctx.net.spec.layout, ctx.tol.pass_rtol)
    comparison = compare(analytic[tensor], diffs, tensor, ctx.net.spec.dtype, ctx.tol, context)
    if failure and "not parameters" in failure:
        comparison.reason = "; ".join(filter(None, [comparison.reason, failure]))
        comparison.status = Status.FAIL
    return comparison


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
        dx = loss.backward(1.0, ctx.clean.loss_cache)
        analytic, failure = {"x": dx}, None
    except Exception as exc:
        analytic, failure = {}, f"backward raised {type(exc).__name__}: {exc}"
    x64 = ctx.ref.acts[-1]
    targets = ctx.ref_targets

    class _AsLayer:  # the loss seen as a layer whose output is the scalar itself
        probe_axes = getattr(type(loss), "probe_axes", False)

        def forward(self, x):
            return loss.forward(x, targets)

    evaluate = _stack_evaluator(ctx, [], _AsLayer(), "x", x64, lambda v: v)
    diffs = numeric_gradient(evaluate, x64, ctx.eps, ctx.settings.method)
    return _row(ctx, node, "x", x64.shape, _judge(ctx, analytic, failure, "x", diffs))


# -- check 2: the whole network --------------------------------------------------------------------

def _network_check(ctx: _Context, rows: list[Row]) -> None:
    """Backpropagate the loss through every layer's backward and check each tensor end to end."""
    net, spec = ctx.net, ctx.net.spec
    m, l2 = net.batch, spec.l2
    by_key = {(r.label, r.tensor): r for r in rows}
    loss_row = by_key[("loss", "x")]
    loss_row.network = loss_row.isolated
    try:
        d = net.loss.layer.backward(1.0, ctx.clean.loss_cache)
        broken = None
    except Exception as exc:
        d, broken = None, f"loss backward raised {type(exc).__name__}"
    chain: dict[int, tuple[dict[str, Any], str | None]] = {}
    for i in reversed(range(len(net.nodes))):
        if d is None:
            chain[i] = ({}, broken)
            continue
        grads, failure = _backward(net.nodes[i].layer, d, ctx.clean.caches[i])
        chain[i] = (grads, failure)
        d = grads.get("x")
        if d is None or failure and "raised" in failure:
            d, broken = None, f"not computed: layer {net.nodes[i].label} backward failed"
    def loss_tail(out):
        return ctx.ref_loss.forward(out, ctx.ref_targets)[0]

    loss_batched = getattr(type(ctx.ref_loss), "probe_axes", False)
    for i, node in enumerate(net.nodes):
        grads, failure = chain[i]
        rest = ctx.ref_layers[i + 1:]
        for tensor in ["x", *node.layer.params]:
            theta = ctx.ref.acts[i] if tensor == "x" else ctx.ref_layers[i].params[tensor]
            if tensor == "x" and not _differentiable(theta):
                by_key[(node.label, tensor)].network = _integer_input(grads)
                continue
            penalized = tensor != "x" and tensor in getattr(node.layer, "decay", ()) and l2 > 0

            evaluate = _stack_evaluator(ctx, rest, ctx.ref_layers[i], tensor, ctx.ref.acts[i], loss_tail,
                                        tail_batched=loss_batched)
            if penalized:
                evaluate = _with_l2(evaluate, l2 / (2 * m))
            chunk = chunk_for(_bytes_per_probe(ctx, i, theta.size), ctx.settings.max_memory,
                              ctx.settings.method)
            diffs = numeric_gradient(evaluate, theta, ctx.eps, ctx.settings.method, chunk)
            analytic = dict(grads)
            if penalized and tensor in analytic:
                try:
                    analytic[tensor] = np.asarray(analytic[tensor]) + (l2 / m) * node.layer.params[tensor]
                except ValueError:
                    pass  # a wrong-shaped gradient is reported as such below
            by_key[(node.label, tensor)].network = _judge(ctx, analytic, failure, tensor, diffs)


def _with_l2(evaluate: Callable[[np.ndarray], np.ndarray], coef: float):
    def penalized(stack: np.ndarray) -> np.ndarray:
        axes = tuple(range(1, stack.ndim))
        return evaluate(stack) + coef * (stack * stack).sum(axis=axes)
    return penalized


# -- verdict per row -------------------------------------------------------------------------------

def _settle(rows: list[Row]) -> None:
    """A row's status from both checks; a network-only failure is blamed on a later layer's dx."""
    order = {r.label: k for k, r in enumerate(rows)}
    bad_dx = [r for r in rows if r.tensor == "x" and r.isolated.status is Status.FAIL]
    for r in rows:
        iso, net = r.isolated, r.network
        if iso.status is Status.FAIL:
            r.status, r.reason = Status.FAIL, iso.reason
        elif net is not None and net.status is Status.FAIL:
            culprit = next((b for b in bad_dx if order[b.label] > order[r.label]), None)
            if culprit is not None:
                r.status = Status.INHERITED
                r.reason = (f"right in isolation; wrong end to end because layer {culprit.label} "
                            f"({culprit.layer_type}) returns a wrong dx")
            else:
                r.status = Status.FAIL
                r.reason = f"right in isolation but wrong end to end: {net.reason}"
        elif Status.WARN in (iso.status, net.status if net else None):
            r.status = Status.WARN
            r.reason = iso.reason if iso.status is Status.WARN else f"end to end: {net.reason}"
        elif iso.status is Status.SKIPPED:
            r.status, r.reason = Status.SKIPPED, iso.reason
        else:
            r.status, r.reason = Status.PASS, iso.reason or (net.reason if net else "")
