"""The end-to-end difference factored through a layer's output.

d loss/dθ_l = J_θᵀ g_l with g_l = d loss/d a_l (a_l the layer's output). Both factors are
differenced numerically, so nothing analytic enters the reference: g_l by perturbing a_l and
running the rest of the network (one perturbed entry per example shares a copy where every later
layer and the loss keep examples apart), then θ_l against f(θ) = ⟨layer_l(x; θ), g_l⟩, which runs
layer l alone. The two agree with the direct differences of the loss to O(h²) plus g_l's own
error; a row whose factored numbers are not cleanly within the noise is re-run the direct way
(end_to_end.py), so a kink further on or a gradient at the noise floor is judged as before.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import shortcuts
from .state import Differencing, Ledger, Memo, Reference
from .copies import Kept, copies_evaluator, grouped_entries
from .grouping import example_of_entries, grouped_input, grouped_parameter, loss_cells
from .differences import EvaluateEntries, EvaluateStack, chunk_for, entry_differences
from .evaluators import entries_from_stack
from ..results import Comparison, Status
from .budget import bytes_per_probe, copy_sizes, served_bytes, shared_bytes
from .served import supports
from .network import cotangent, node_key
from .recurrence import scan_of


def _factoring(ref: Reference, how: Differencing) -> bool:
    # directions are few and cheap the direct way; one-sided and complex steps have no kink test
    # of their own to fall back on
    return bool(ref.structures) and how.settings.mode != "directional" \
        and how.settings.method in ("central", "richardson")


def input_entries(ref: Reference, how: Differencing, k: int, g: np.ndarray,
                  twin: "tuple[np.ndarray, Kept] | None" = None
                  ) -> tuple[EvaluateEntries, int, float, float] | None:
    """(evaluate_entries, bytes per probe, f0, f_scale) of f(a) = ⟨layer_k(a), g⟩ for the layer's
    input a, where copies can share (the dense shortcut, known windows, verified elementwise or
    separable layers); None where every entry would need its own copy. ``twin``: (other weights,
    a Kept) read from the grouped copies too (grouping.grouped_input)."""
    layer, st, layout = ref.layers[k], ref.structures[k], how.layout
    x, out = ref.acts[k], ref.acts[k + 1]
    if not np.issubdtype(x.dtype, np.floating) or out.shape != g.shape:
        return None
    g_flat = g.reshape(-1)
    f0 = float(out.reshape(-1) @ g_flat)
    sizes = copy_sizes([layer], [x.shape, out.shape], [st.held])
    per_probe = bytes_per_probe(x.size, sizes, how.settings.method)
    if supports(layer, "x", isolated=True):
        per_probe = served_bytes([layer], "x", x.size, sizes, how.batch, how.settings.method, True)

        def tail(o: np.ndarray) -> np.ndarray:
            return o.reshape(*o.shape[:o.ndim - g.ndim], -1) @ g_flat
        entries = shortcuts.entries_evaluator(layer, "x", [x, out], [], tail, True, contraction=g)
    elif (grouped := grouped_input(layer, st, x, out, g, layout, f0, twin)) is not None:
        entries, share = grouped
        per_probe = shared_bytes(entries, per_probe, share, how.settings.max_memory)
    else:
        return None
    return entries, per_probe, f0, float(np.abs(out * g).sum())


def chained_upstream(ref: Reference, how: Differencing, ledger: Ledger, memo: Memo | None = None
                     ) -> dict[int, np.ndarray]:
    """Numeric d loss/d a_k for the layer outputs a_k from the top down: {k: g} with g the
    gradient with respect to ref.acts[k] (k = len(layers) is the loss's input).

    The loss's input is differenced per example (its terms, verified); each layer's input then
    against ⟨layer(a), g_above⟩, the layer alone, its entries grouped where its structure allows
    (a convolution's windows, a pool's, an elementwise or separable layer): g_k = J_kᵀ·g_(k+1),
    both factors numeric, so a chain of single layers replaces runs of the whole rest of the
    network. The chain stops at a layer whose entries cannot share copies (a batch statistic).
    With ``memo``, each layer's grouped copies are also read against the isolated check's G of
    that layer and kept (memo.kept(k, "x")), so that check of the layer's input makes no copy of
    its own."""
    net, layout = ref.net, how.layout
    if not _factoring(ref, how):
        return {}
    top = ref.acts[-1]
    terms = loss_cells(net.loss.layer, ref.targets, layout, top, ref.loss_value)
    if terms is None or not np.issubdtype(top.dtype, np.floating):
        return {}
    cell, color = example_of_entries(top.shape, layout)
    entries = grouped_entries(top, cell, color, terms, terms(top[None])[0], ref.loss_value)
    per_copy = bytes_per_probe(top.size, [top.size], how.settings.method)
    per_probe = shared_bytes(entries, per_copy, net.batch, how.settings.max_memory)
    ledger.needs("upstream of the loss", top.size, net.batch)
    diffs = entry_differences(ledger.metered(entries, "upstream of the loss", per_probe), top,
                              np.arange(top.size), how.eps, how.settings.method, ref.loss_value,
                              chunk_for(per_probe, how.settings.max_memory), abs(ref.loss_value))
    g = {len(net.nodes): diffs.grad.reshape(top.shape)}
    # g_0 (the network input's) is the end-to-end check of x itself, differenced there
    for k in reversed(range(1, len(net.nodes))):
        x = ref.acts[k]
        G = cotangent(net.spec.seed, node_key(net.nodes[k]), ref.acts[k + 1].shape)
        twin = None if memo is None else (G, memo.kept(k, "x", x))
        found = input_entries(ref, how, k, g[k + 1], twin)
        if found is None:
            break
        entries, per_probe, f0, f_scale = found
        what = f"upstream of layer {net.nodes[k].label}"
        ledger.needs(what, x.size, net.batch if ref.structures[k].separable else 1)
        diffs = entry_differences(ledger.metered(entries, what, per_probe), x, np.arange(x.size),
                                  how.eps, how.settings.method, f0,
                                  chunk_for(per_probe, how.settings.max_memory), f_scale)
        g[k] = diffs.grad.reshape(x.shape)
    return g


def direct_cost(ref: Reference, i: int, size: int) -> int:
    """Entries computed by the direct route for a tensor of ``size`` entries of layer i."""
    return 2 * size * sum(math.prod(a.shape) for a in ref.acts[i:])


def factored_cost(ref: Reference, i: int, tensor: str) -> int:
    """Entries computed by the factored route (layer i alone; g_l is shared by its tensors)."""
    size = math.prod(np.shape(ref.layers[i].params[tensor]))
    axes = ref.structures[i].axes_of(tensor)
    copies = size // np.shape(ref.layers[i].params[tensor])[axes[0]] if axes else size
    return 2 * copies * (math.prod(ref.acts[i].shape) + math.prod(ref.acts[i + 1].shape))


def within_noise(comparison: Comparison) -> bool:
    """A factored row is kept only when it passes with every entry within the noise: anything
    else (a kink further on shows in g_l, not in θ_l) is re-run the direct way."""
    return comparison.status is Status.PASS and not comparison.reason and not comparison.kinks \
        and not comparison.notes and comparison.rel_error is not None \
        and comparison.noise is not None and comparison.rel_error <= comparison.noise


def factored_target(ref: Reference, how: Differencing, memo: Memo, i: int, tensor: str, g: np.ndarray
                    ) -> tuple[EvaluateStack, EvaluateEntries, float, float, int]:
    """(stack, entries, f0, f_scale, bytes per probe) of f(θ) = ⟨layer_i(x; θ), g⟩: the
    end-to-end difference of θ factored through the layer's output."""
    layer, st, layout = ref.layers[i], ref.structures[i], how.layout
    x, out = ref.acts[i], ref.acts[i + 1]
    theta = layer.params[tensor]
    g_flat = g.reshape(-1)

    def tail(o: np.ndarray) -> np.ndarray:
        return o.reshape(*o.shape[:o.ndim - g.ndim], -1) @ g_flat

    f0 = float(tail(out))
    stack = copies_evaluator([layer], [st], tensor, x, layout, tail, True)
    entries: EvaluateEntries = entries_from_stack(stack, theta)
    sizes = copy_sizes([layer], [x.shape, out.shape], [st.held])
    per_probe = bytes_per_probe(theta.size, sizes, how.settings.method, st.copies_held(tensor))
    if supports(layer, tensor, isolated=True):
        entries = shortcuts.entries_evaluator(layer, tensor, [x, out], [], tail, True, contraction=g)
        per_probe = served_bytes([layer], tensor, theta.size, sizes, how.batch, how.settings.method, True)
    elif (grouped := grouped_parameter(layer, st, tensor, x, out, g, layout, f0)) is not None:
        entries, share = grouped
        per_probe = shared_bytes(entries, per_probe, share, how.settings.max_memory)
        if memo.twins.get((i, tensor)):
            # the isolated check's grouped copies were read against this g too
            entries = recalled(entries, memo.twins[(i, tensor)])
    elif memo.twins.get((i, tensor)):
        entries = recalled(entries, memo.twins[(i, tensor)])
    elif (scan := _scan(memo, i, layer, x, out, g, f0, how, tensor)) is not None:
        entries, per_probe = scan, shared_bytes(scan, scan.copy_bytes(), scan.share, how.settings.max_memory)
    return stack, entries, f0, float(np.abs(out * g).sum()), per_probe


def _scan(memo: Memo, i: int, layer: Any, x: np.ndarray, out: np.ndarray, g: np.ndarray, f0: float,
          how: Differencing, tensor: str):
    """A recurrent layer's parameter differenced step by step against g (recurrence.py); the
    layer's adjoints serve all of its parameters."""
    if i not in memo.scans:
        memo.scans[i] = scan_of(layer, x, out, g, f0, how.eps, how.settings.method,
                                np.random.default_rng([how.seed, 8, i]), how.layout,
                                how.settings.max_memory)
    return None if memo.scans[i] is None else memo.scans[i].entries(tensor)


class recalled:
    """evaluate_entries that takes each probe's value from what another check's copies gave
    against these weights (a copies.Kept: the same entry and value, the same layer output), and
    evaluates only the probes it has not seen. ``copies`` counts those."""

    def __init__(self, evaluate: EvaluateEntries, memo: Kept) -> None:
        self.evaluate, self.memo, self.copies = evaluate, memo, 0
        #: probes not recalled, evaluated anew
        self.evaluated = 0
        if hasattr(evaluate, "schedule"):
            # the probes it has not seen are batched colour by colour, as the evaluator shares them
            self.schedule = evaluate.schedule

    def __call__(self, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        idx, values = np.asarray(idx), np.asarray(values)
        kept, out = self.memo.lookup(idx, values)
        miss = ~kept
        if miss.any():
            before = getattr(self.evaluate, "copies", None)
            out[miss] = np.asarray(self.evaluate(idx[miss], values[miss])).real
            self.evaluated += int(miss.sum())
            self.copies += int(miss.sum()) if before is None else self.evaluate.copies - before
        return out


def factored_input_target(ref: Reference, how: Differencing, g: np.ndarray, memo: Memo | None = None
                          ) -> tuple[EvaluateStack, EvaluateEntries, float, float, int] | None:
    """The same for the network input x: f(x) = ⟨layer_0(x), g⟩, entries shared as the chain
    shares them (and recalled from the isolated check's copies of x, where it kept them against
    g); None where they cannot share."""
    found = input_entries(ref, how, 0, g)
    if found is None:
        return None
    entries, per_probe, f0, f_scale = found
    if memo is not None and memo.twins.get((0, "x")):
        entries = recalled(entries, memo.twins[(0, "x")])
    layer, st, x = ref.layers[0], ref.structures[0], ref.acts[0]
    g_flat = g.reshape(-1)

    def tail(o: np.ndarray) -> np.ndarray:
        return o.reshape(*o.shape[:o.ndim - g.ndim], -1) @ g_flat

    stack = copies_evaluator([layer], [st], "x", x, how.layout, tail, True)
    return stack, entries, f0, f_scale, per_probe
