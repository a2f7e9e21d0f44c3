"""Check 1, isolated, per layer: with the layer's real input x and a seeded random upstream
gradient G, the layer's backward(G) against finite differences of ⟨forward(x), G⟩, for x and
each parameter. This puts a bug in the one layer that has it."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import numpy as np

from . import shortcuts
from ..layers.protocol import full_shape
from .forward import as_f64, differentiable
from .state import Differencing, Ledger, Memo, Reference
from .forward import Forward
from .network import STREAM_COTANGENT, cotangent, node_key, rng_for
from ..config.plan import PlannedLayer
from .evaluators import entries_from_stack, probe_capable, stack_evaluator, with_params
from ..results import Comparison, Row, Status
from .tensor import Target, check_analytic, gradient_scale, integer_input, tensor_key
from .backward import BackwardFailure, Defect, nondeterministic, run_backward, state_on_self
from .budget import bytes_per_probe, copy_sizes, served_bytes, shared_bytes
from .served import supports
from .diagnose.evidence import Setting, layer_evidence, loss_evidence
from ..errors import GradcheckError
from .differences import stack_entries
from .copies import Kept, copies_evaluator, grouped_entries, perturbed
from .grouping import example_of_entries, grouped_input, grouped_parameter, loss_cells
from ..layers.registry import is_builtin
from .structure import Structure
from .recurrence import scan_of
from .factored import recalled, within_noise


def isolated_rows(ref: Reference, how: Differencing, ledger: Ledger, memo: Memo, clean: Forward,
                  i: int, node: PlannedLayer) -> list[Row]:
    st = ref.structures[i] if ref.structures else Structure.none()
    rows = _isolated(ref, how, ledger, memo, clean, node.layer, ref.layers[i], st, ref.acts[i],
                     clean.caches[i],
                     node.label, node_key(node),
                     lambda tensor, shape, comparison: layer_row(how, node, tensor, shape, comparison),
                     clean.acts[i], twin=(i, (memo.upstream or {}).get(i + 1)))
    rows.extend(_inner_rows(ref, how, ledger, memo, clean, node, node.layer, clean.caches[i],
                            node.label, node_key(node)))
    return rows


def _isolated(ref: Reference, how: Differencing, ledger: Ledger, memo: Memo, clean: Forward,
              layer: Any, ref_layer: Any, st: Structure, x64: np.ndarray,
              cache: Any, label: str,
              key: tuple[int, ...], make_row: Callable[[str, tuple, Comparison], Row],
              x: np.ndarray, twin: tuple[int, np.ndarray | None] = (-1, None)) -> list[Row]:
    """Check 1 for one layer: backward(G) against differences of ⟨forward(·), G⟩; ``x`` is the
    layer's input in the network's dtype. ``twin``: (the layer's index, the chained g of its
    output), with which each parameter copy's output is contracted too (see twinned)."""
    # a copy: a forward that writes into its input must not corrupt the cached activation
    # that every later difference of the network starts from (see clean_forward)
    out64 = ref_layer.forward(x64.copy())[0]
    g64 = cotangent(ref.net.spec.seed, key, out64.shape)
    g = g64.astype(ref.net.dtype)
    analytic, failure = run_backward(layer, g, cache)
    if failure is None:
        failure = nondeterministic(layer, g, cache, analytic)
    stateful = {} if failure else state_on_self(layer, x, g, cache, analytic,
                                                rng_for(ref.net.spec.seed, STREAM_COTANGENT, *key, 7))
    g_flat = g64.reshape(-1)

    def tail(out):
        # ⟨out, G⟩ per copy, as one matrix-vector product
        return out.reshape(*out.shape[:out.ndim - g64.ndim], -1) @ g_flat

    f0 = float(tail(out64))
    f_scale = float(np.abs(out64 * g64).sum())
    batched = how.settings.batched and probe_capable([ref_layer])
    layout = how.layout
    rows = []
    ledger.keep(f"isolated/{label}/cotangent", g64)
    scans = scan_of(ref_layer, x64, out64, g64, f0, how.eps, how.settings.method,
                    rng_for(ref.net.spec.seed, STREAM_COTANGENT, *key, 8), layout,
                    how.settings.max_memory) \
        if how.settings.batched else None
    upstream = None if twin[1] is None else np.asarray(twin[1], dtype=np.float64).reshape(out64.shape)
    scans_up = None if scans is None or upstream is None else \
        scans.against(upstream, float(out64.reshape(-1) @ upstream.reshape(-1)))
    for tensor in ["x", *layer.params]:
        theta = x64 if tensor == "x" else ref_layer.params[tensor]
        if tensor == "x" and not differentiable(theta):
            rows.append(make_row(tensor, theta.shape, integer_input(analytic)))
            continue
        stack = copies_evaluator([ref_layer], [st], tensor, x64, layout, tail, True)
        # where this tensor's copies are also read against the chained g, for the end-to-end row
        kept = None if upstream is None or (tensor != "x" and theta.size > TWIN_LIMIT) else \
            memo.kept(twin[0], tensor, theta)
        sizes = copy_sizes([ref_layer], [x64.shape, out64.shape], [st.held])
        entries, per_probe = entries_from_stack(stack, theta), bytes_per_probe(
            theta.size, sizes, how.settings.method, st.copies_held(tensor))
        if batched and supports(ref_layer, tensor, isolated=True):
            entries = shortcuts.entries_evaluator(ref_layer, tensor, [x64, out64], [], tail, True,
                                                 contraction=g64)
            per_probe = served_bytes([ref_layer], tensor, theta.size, sizes, how.batch, how.settings.method, True)
        elif how.settings.batched:
            # the network input's copies serve its end-to-end row too (a hidden layer's input was
            # differenced by the chain already, and is recalled from it below)
            both = (upstream, kept) if kept is not None and (tensor != "x" or twin[0] == 0) else None
            grouped = grouped_input(ref_layer, st, x64, out64, g64, layout, f0, both) if tensor == "x" \
                else grouped_parameter(ref_layer, st, tensor, x64, out64, g64, layout, f0, both)
            if grouped is not None:
                entries, share = grouped
                per_probe = shared_bytes(entries, per_probe, share, how.settings.max_memory)
            elif tensor != "x" and kept is not None:
                entries = twinned(ref_layer, st, tensor, x64, theta, layout, g_flat, upstream, kept)
        if tensor == "x" and twin[0] > 0 and memo.twins.get((twin[0], "x")):
            # the chain's grouped copies of this input were read against G too (chained_upstream)
            entries = recalled(entries, memo.twins[(twin[0], "x")])
        target = Target(theta, stack, entries, f0, f_scale, per_probe,
                         (*key, tensor_key(layer, tensor)), gradient_scale(analytic))
        target.diagnosis = layer_evidence(evidence_setting(ref, how), ref_layer, tensor, x64, out64,
                                          g64, analytic, layer)
        target.progress_label = f"isolated check, layer {label} {tensor}"
        if tensor == "x" and st.separable:
            target.examples_per_call = how.batch
        scan = None
        if scans is not None and tensor != "x":
            # with the chained g at hand, the same copies serve the factored end-to-end row
            scan = scans.entries(tensor, None if scans_up is None or kept is None else (scans_up, kept))
        comparison = None
        if scan is not None:
            shared = shared_bytes(scan, scan.copy_bytes(), scan.share, how.settings.max_memory)
            comparison, n_full = check_analytic(how, ledger, analytic, failure, tensor,
                                                replace(target, entries=scan, bytes_per_probe=shared))
            if not within_noise(comparison):
                comparison = None  # judged the direct way: the verdict is the direct differences'
        if comparison is None:
            comparison, n_full = check_analytic(how, ledger, analytic, failure, tensor, target)
        if tensor in stateful:
            comparison.status = Status.FAIL
            comparison.diagnosis = "backward reads state that forward left on self"
            comparison.reason = "; ".join(filter(None, [stateful[tensor], comparison.reason]))
        # (a forward that upcasts has its own warning, and its cache makes backward follow)
        wider = None if label in clean.upcast else _upcast_gradient(how, x, analytic.get(tensor), tensor)
        if wider:
            comparison.notes = "; ".join(filter(None, [comparison.notes, wider]))
        ledger.keep(f"isolated/{label}/{tensor}/analytic", analytic.get(tensor))
        ledger.keep(f"isolated/{label}/{tensor}/numeric", n_full)
        rows.append(make_row(tensor, theta.shape, comparison))
    return rows


def evidence_setting(ref: Reference, how: Differencing) -> Setting:
    """What the diagnoses read of this check (diagnose/evidence.py)."""
    return Setting(tuple(ref.acts), ref.targets, how.eps, how.settings.method,
                   how.layout, how.batch, ref.net.spec.l2)


#: parameters up to this many entries keep their copies' values against the chained g
TWIN_LIMIT = 1 << 18


def twinned(layer: Any, st: Structure, tensor: str, x: np.ndarray, theta: np.ndarray, layout: str,
            g_flat: np.ndarray, upstream: np.ndarray, memo: Kept) -> Callable:
    """evaluate_entries of ⟨layer(x; θ), G⟩ that also keeps ⟨layer(x; θ), g⟩ of every copy in
    ``memo``: the factored end-to-end row of θ differences the same copies against the chained
    g (factored.recalled), so a parameter that shares no copy (a recurrent layer's weights)
    runs through its layer once for both columns, not twice."""
    both = np.stack([g_flat, np.asarray(upstream, dtype=np.float64).reshape(-1)], axis=1)

    def entries(idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        stack = stack_entries(theta, idx, values)
        out = np.asarray(perturbed(layer, st, tensor, x, stack, layout))
        f = out.reshape(stack.shape[0], -1) @ both
        memo.keep(idx, values, f[:, 1])
        return f[:, 0]

    return entries


def _upcast_gradient(how: Differencing, x: np.ndarray, grad: Any, tensor: str) -> str | None:
    """Why a float32 check of a backward that returns a wider dtype is not a float32 check."""
    if how.dtype != "float32" or np.asarray(x).dtype.itemsize > 4 or grad is None:
        return None
    dtype = getattr(grad, "dtype", None)
    if dtype is None or not np.issubdtype(dtype, np.floating) or dtype.itemsize <= 4:
        return None
    return (f"the check ran in {dtype}: backward returns {dtype} d{tensor} from float32 inputs, so "
            f"its float32 rounding was not checked; return d{tensor}.astype(np.float32) if "
            "float32 is what you mean to test")


def _inner_rows(ref: Reference, how: Differencing, ledger: Ledger, memo: Memo, clean: Forward,
                node: PlannedLayer, layer: Any, cache: Any, label: str,
                key: tuple[int, ...]) -> list[Row]:
    """Isolated rows for the inner layers of a composite (labels 3.1, 3.2, ...), so that a bug
    inside a block is located inside it. A composite lists them with ``inner(cache)``."""
    inner = getattr(layer, "inner", None)
    if inner is None:
        return []
    rows: list[Row] = []
    doc = ref.net.spec.doc
    written = dict(zip(getattr(layer, "labels", ()), getattr(layer, "inner_keypaths", ())))
    for k, (suffix, sub, sub_x) in enumerate(inner(cache), start=1):
        sub_label = f"{label}.{suffix}"
        sub_line = doc.locate(written[suffix])[0] if suffix in written else node.line
        sub_out, sub_cache = sub.forward(np.array(sub_x, copy=True))  # a copy: see _isolated
        ref_sub = with_params(sub, {n: as_f64(v) for n, v in sub.params.items()})
        sub_key = (*key, 100 + k)

        def make_row(tensor, shape, comparison, sub=sub, sub_label=sub_label, sub_x=sub_x, sub_out=sub_out,
                     sub_line=sub_line):
            return Row(label=sub_label, index=node.index, layer_type=sub.type_name or type(sub).__name__,
                       line=sub_line, tensor=tensor, input_shape=tuple(np.shape(sub_x)),
                       output_shape=tuple(np.shape(sub_out)), tensor_shape=tuple(shape),
                       isolated=comparison, network=None)

        sub_st = Structure(frozenset(["x", *sub.params])) if how.settings.batched and \
            probe_capable([sub]) and is_builtin(type(sub)) else Structure.none()
        rows.extend(_isolated(ref, how, ledger, memo, clean, sub, ref_sub, sub_st, as_f64(np.asarray(sub_x)),
                              sub_cache, sub_label,
                              sub_key, make_row, np.asarray(sub_x)))
        rows.extend(_inner_rows(ref, how, ledger, memo, clean, node, sub, sub_cache, sub_label, sub_key))
    return rows


def layer_row(how: Differencing, node: PlannedLayer, tensor: str, shape, comparison: Comparison) -> Row:
    m = how.batch
    return Row(label=node.label, index=node.index, layer_type=node.type_name, line=node.line,
               tensor=tensor, input_shape=full_shape(how.layout, node.input_shape, m),
               output_shape=full_shape(how.layout, node.output_shape, m) if node.output_shape else (),
               tensor_shape=tuple(shape), isolated=comparison, network=None)


def loss_row(ref: Reference, how: Differencing, ledger: Ledger, clean: Forward) -> Row:
    net = ref.net
    node, loss = net.loss, net.loss.layer
    try:
        analytic, failure = {"x": loss.backward(1.0, clean.loss_cache)}, None
    except GradcheckError:  # ours (a time limit, a located error): as it is
        raise
    except (Exception, SystemExit) as exc:  # plugin code may call sys.exit
        analytic, failure = {}, BackwardFailure.of(f"backward raised {type(exc).__name__}: {exc}",
                                                   Defect.RAISED)
    x64 = ref.acts[-1]
    targets = ref.targets

    def tail(value):
        return value

    class _AsLayer:  # the loss seen as a layer whose output is the scalar itself
        probe_axes = getattr(type(loss), "probe_axes", False)

        def forward(self, x):
            return loss.forward(x, targets)

    batched = how.settings.batched and probe_capable([_AsLayer()])
    stack = stack_evaluator(_AsLayer(), "x", x64, [], tail, batched)
    entries, per_probe = entries_from_stack(stack, x64), bytes_per_probe(x64.size, [x64.size],
                                                                         how.settings.method)
    terms = loss_cells(loss, targets, how.layout, x64, ref.loss_value) \
        if how.settings.batched else None
    if terms is not None:
        cell, color = example_of_entries(x64.shape, how.layout)
        entries = grouped_entries(x64, cell, color, terms, terms(x64[None])[0], ref.loss_value)
        per_probe = shared_bytes(entries, per_probe, how.batch, how.settings.max_memory)
    target = Target(x64, stack, entries, ref.loss_value, abs(ref.loss_value), per_probe,
                    (0, 9, 0))
    target.progress_label = "isolated check, layer loss x"
    if terms is not None:
        target.examples_per_call = how.batch
    target.diagnosis = loss_evidence(evidence_setting(ref, how), loss, x64)
    comparison, n_full = check_analytic(how, ledger, analytic, failure, "x", target)
    ledger.keep("isolated/loss/x/analytic", analytic.get("x"))
    ledger.keep("isolated/loss/x/numeric", n_full)
    return layer_row(how, node, "x", x64.shape, comparison)

