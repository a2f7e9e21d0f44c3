"""The two checks, side by side, for every (layer, tensor) of a built network.

1. Isolated: with the layer's real input x and a seeded random upstream gradient G, the layer's
   backward(G) against finite differences of ⟨forward(x), G⟩, for x and each parameter.
   This puts a bug in the one layer that has it.
2. Network (end to end): the scalar loss (+ L2) against each parameter tensor and the network
   input, perturbed in place and pushed through the rest of the network.

This module runs the clean forward passes, both checks (isolated.py, endtoend.py; one tensor at a
time in tensorcheck.py) and settles each row's verdict. The numeric reference always runs in
float64: float32 parameters and inputs are cast exactly, so the reference is not limited by
float32 rounding. Nothing here mutates the network.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np

from .state import CheckContext, CheckSettings, Forward, as_f64, full_shape
from .end_to_end import network_check
from ..errors import GradcheckError, LayerRuntimeError
from .isolated import isolated_rows, loss_row
from .network import Network, rng_for, runtime_error
from .differences import resolve_step
from ..config.plan import PlannedLayer
from .evaluators import verify_probe_axes, with_params
from ..layers.registry import is_builtin
from ..results import ConfigResult, Row, Status, worst
from .tensor import STREAM_PROBES
from .tolerance import tolerance_for

__all__ = ["CheckSettings", "check_network", "with_params"]


def check_network(net: Network, settings: CheckSettings | None = None) -> ConfigResult:
    """Run both checks on every (layer, tensor) of ``net``; return the rows as plain data."""
    started = time.perf_counter()
    spec = net.spec
    settings = settings or CheckSettings.from_spec(spec)
    ctx = CheckContext(net, settings, tolerance_for(spec.dtype, settings.pass_rtol, settings.warn_rtol),
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


def _check(ctx: CheckContext, started: float) -> ConfigResult:
    net, spec, settings = ctx.net, ctx.net.spec, ctx.settings
    ctx.clean = clean_forward(net)
    reference_forward(ctx)
    rows: list[Row] = []
    for i, node in enumerate(net.nodes):
        rows.extend(isolated_rows(ctx, i, node))
    rows.append(loss_row(ctx))
    for r in rows:
        if r.tensor == "x" and r.label in ctx.clean.upcast:
            r.isolated.notes = "; ".join(filter(None, [r.isolated.notes, ctx.clean.upcast[r.label]]))
        if r.tensor == "x" and r.label in ctx.clean.mutated:
            r.isolated.status = Status.FAIL
            r.isolated.reason = "; ".join(filter(None, [ctx.clean.mutated[r.label], r.isolated.reason]))
            r.isolated.diagnosis = r.isolated.diagnosis or "forward writes into its input"
    network_check(ctx, rows)
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
        seconds=time.perf_counter() - started, arrays=ctx.arrays, evaluations=ctx.evaluations,
        peak_memory=_peak_memory())


def _peak_memory() -> int | None:
    """The process's peak resident memory so far, in bytes (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # not on every platform
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024   # KiB on Linux, bytes on macOS


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


def clean_forward(net: Network) -> Forward:
    """The network's own forward in its dtype, checking what every layer returns."""
    plan, m = net.plan, net.batch
    acts, caches, mutated, upcast = [net.x], [], {}, {}
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
        if net.dtype == np.float32 and given.dtype == np.float32 and out.dtype.itemsize > 4:
            upcast[node.label] = upcast_note(out.dtype)
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
    return Forward(acts, caches, float(value), lcache, mutated, upcast)


def upcast_note(dtype: np.dtype) -> str:
    """Why a float32 check of a layer that computes in a wider dtype is not a float32 check."""
    return (f"the check ran in {dtype}: forward returns {dtype} from a float32 input, so this layer "
            "(and every layer after it) was not checked in float32; return out.astype(x.dtype) "
            "if float32 is what you mean to test")


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


def reference_forward(ctx: CheckContext) -> None:
    """float64 copies of every layer, and the clean float64 forward through them."""
    net = ctx.net
    ctx.ref_layers = [with_params(n.layer, {k: as_f64(v) for k, v in n.layer.params.items()})
                      for n in net.nodes]
    rng = rng_for(net.spec.seed, STREAM_PROBES, 999)
    for k, (node, layer) in enumerate(zip(net.nodes, ctx.ref_layers)):
        if getattr(layer, "probe_axes", False) and not is_builtin(type(layer)) \
                and not verify_probe_axes(layer, as_f64(ctx.clean.acts[k]), rng):
            layer.probe_axes = False  # this copy only: evaluate it one perturbed copy at a time
            ctx.untrusted.append(node.label)
    ctx.ref_targets = as_f64(np.asarray(net.targets))
    acts = [as_f64(net.x)]
    for layer in ctx.ref_layers:
        acts.append(layer.forward(acts[-1].copy())[0])  # a copy: see clean_forward
    ctx.ref_acts = acts
    ctx.ref_loss_value = float(np.real(net.loss.layer.forward(acts[-1], ctx.ref_targets)[0]))
    ctx.keep("input", net.x)
    ctx.keep("targets", net.targets)
    for node in net.nodes:
        for name, value in node.layer.params.items():
            ctx.keep(f"params/{node.label}/{name}", value)


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

