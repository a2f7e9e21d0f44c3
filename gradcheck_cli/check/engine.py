"""The two checks, side by side, for every (layer, tensor) of a built network.

1. Isolated: with the layer's real input x and a seeded random upstream gradient G, the layer's
   backward(G) against finite differences of ⟨forward(x), G⟩, for x and each parameter.
   This puts a bug in the one layer that has it.
2. Network (end to end): the scalar loss (+ L2) against each parameter tensor and the network
   input, perturbed in place and pushed through the rest of the network.

This module runs both checks (isolated.py, end_to_end.py; one tensor at a time in tensor.py) on
the state that state.py builds (the forward passes are forward.py's) and settles each row's
verdict. The numeric reference always runs in float64: float32 parameters and inputs are cast
exactly, so the reference is not limited by float32 rounding. Nothing here mutates the network.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Any

from ..errors import LayerRuntimeError
from ..results import ConfigResult, Row, Status, worst
from .budget import base_bytes, item_bytes, modelled_peak
from .end_to_end import network_check
from .factored import chained_upstream
from .isolated import isolated_rows, loss_row
from .network import Network
from .state import CheckContext, CheckSettings

__all__ = ["CheckSettings", "check_network"]


def check_network(net: Network, settings: CheckSettings | None = None) -> ConfigResult:
    """Run both checks on every (layer, tensor) of ``net``; return the rows as plain data."""
    started = time.perf_counter()
    spec = net.spec
    settings = settings or CheckSettings.from_spec(spec)
    if settings.method == "complex":
        _require_complex_safe(net)
    try:
        return _check(CheckContext(net, settings), started)
    except SystemExit as exc:
        # a layer's code called sys.exit while the differences ran: nothing was computed
        raise LayerRuntimeError(f"a layer called sys.exit({exc.code!r}) during the check; "
                                "nothing can be checked", file=spec.doc.path) from None


def _check(ctx: CheckContext, started: float) -> ConfigResult:
    net, spec, settings = ctx.net, ctx.net.spec, ctx.settings
    ref, how, ledger, memo, clean = ctx.ref, ctx.how, ctx.ledger, ctx.memo, ctx.clean
    rows: list[Row] = []
    memo.upstream = chained_upstream(ref, how, ledger, memo)
    for i, node in enumerate(net.nodes):
        rows.extend(isolated_rows(ref, how, ledger, memo, clean, i, node))
    rows.append(loss_row(ref, how, ledger, clean))
    for r in rows:
        if r.tensor == "x" and r.label in ctx.clean.upcast:
            r.isolated.notes = "; ".join(filter(None, [r.isolated.notes, ctx.clean.upcast[r.label]]))
        if r.tensor == "x" and r.label in ctx.clean.mutated:
            r.isolated.status = Status.FAIL
            r.isolated.reason = "; ".join(filter(None, [ctx.clean.mutated[r.label], r.isolated.reason]))
            r.isolated.diagnosis = r.isolated.diagnosis or "forward writes into its input"
    not_computed = network_check(ref, how, ledger, memo, clean, rows)
    _settle(rows, not_computed)
    status = worst(r.status for r in rows)
    n_params = sum(math.prod(s) for n in net.nodes for s in n.param_shapes.values())
    held, largest = ledger.held()
    return ConfigResult(
        path=spec.doc.path, name=spec.name or "", status=status, seed=spec.seed, dtype=spec.dtype,
        layout=spec.layout, method=settings.method, eps=how.eps,
        reference="float64 (float32 values cast exactly)" if spec.dtype == "float32" else "float64",
        n_params=n_params, batch=net.batch, rows=rows,
        settings={"method": settings.method, "eps": settings.eps, "mode": settings.mode,
                  "samples": settings.samples, "directions": settings.directions,
                  "pass_rtol": how.tol.pass_rtol, "warn_rtol": how.tol.warn_rtol,
                  "batched": settings.batched},
        seconds=time.perf_counter() - started, arrays=ledger.arrays, evaluations=ledger.evaluations,
        probes=ledger.probes, tensor_costs=ledger.tensor_costs(),
        peak_memory=_peak_memory(), memory_largest=largest or None,
        memory_model=modelled_peak(base_bytes(
            n_params, ref.layers, [a.shape for a in ref.acts], item_bytes(spec.dtype),
            settings, [s.held for s in ref.structures]), held))


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


def _who(row: Row) -> str:
    return f"the loss ({row.layer_type})" if row.label == "loss" else f"layer {row.label} ({row.layer_type})"


def _settle(rows: list[Row], not_computed: set[tuple[str, str]]) -> None:
    """A row's status from both checks; a network-only failure is blamed on a later layer's dx
    (``not_computed``: the rows whose end-to-end gradient a broken backward left uncomputed)."""
    order = {r.label: k for k, r in enumerate(rows)}
    bad_dx = [r for r in rows if r.tensor == "x" and r.isolated.status is Status.FAIL]
    for r in rows:
        iso, net = r.isolated, r.network
        notes = (net.notes if net is not None else None) or iso.notes
        if iso.status is Status.FAIL:
            r.status, r.reason = Status.FAIL, iso.reason
        elif net is not None and net.status is Status.FAIL:
            culprit = next((b for b in bad_dx if order[b.label] > order[r.label]), None)
            if (r.label, r.tensor) in not_computed:
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

