"""The end-to-end difference factored through a layer's output.

d loss/dθ_l = J_θᵀ g_l with g_l = d loss/d a_l (a_l the layer's output). Both factors are
differenced numerically, so nothing analytic enters the reference: g_l by perturbing a_l and
running the rest of the network (one perturbed entry per example shares a copy where every later
layer and the loss keep examples apart), then θ_l against f(θ) = ⟨layer_l(x; θ), g_l⟩, which runs
layer l alone. The two agree with the direct differences of the loss to O(h²) plus g_l's own
error; a row whose factored numbers are not cleanly within the noise is re-run the direct way
(endtoend.py), so a kink further on or a gradient at the noise floor is judged as before.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import shortcuts
from .state import CheckContext
from .copies import (cells_evaluator, copies_evaluator, example_of_entries, grouped_entries,
                     grouped_parameter, loss_cells)
from .differences import EvaluateEntries, EvaluateStack, chunk_for, entry_differences
from .evaluators import entries_from_stack
from ..results import Comparison, Status
from .budget import bytes_per_probe


@dataclass
class Upstream:
    """The numeric d loss/d a for one layer's output a (float64, a's shape)."""

    grad: np.ndarray
    copies: int


def upstream_gradients(ctx: CheckContext, wanted: list[int]) -> dict[int, Upstream]:
    """Numeric d loss/d(output of layer i) for each i in ``wanted`` where every later layer and
    the loss are verified separable; {} when shortcuts are off or the loss has no per-example
    terms."""
    net, layout = ctx.net, ctx.net.spec.layout
    # directions are few and cheap the direct way; one-sided and complex steps have no kink test
    # of their own to fall back on
    if not ctx.structures or ctx.settings.mode == "directional" \
            or ctx.settings.method not in ("central", "richardson"):
        return {}
    terms = loss_cells(net.loss.layer, ctx.ref_targets, layout, ctx.ref_acts[-1], ctx.ref_loss_value)
    if terms is None:
        return {}
    clean_terms = terms(ctx.ref_acts[-1][None])[0]
    out: dict[int, Upstream] = {}
    for i in wanted:
        rest, structures = ctx.ref_layers[i + 1:], ctx.structures[i + 1:]
        if not all(st.separable for st in structures):
            continue
        a = ctx.ref_acts[i + 1]
        if not np.issubdtype(a.dtype, np.floating):
            continue
        cell, color = example_of_entries(a.shape, layout)
        entries = grouped_entries(a, cell, color, cells_evaluator(rest, structures, a, layout, terms),
                                  clean_terms, ctx.ref_loss_value)
        per_copy = bytes_per_probe(a.size, [x.size for x in ctx.ref_acts[i + 1:]], ctx.settings.method)
        entries.max_copies = chunk_for(per_copy, ctx.settings.max_memory)
        chunk = chunk_for(max(1, per_copy // net.batch), ctx.settings.max_memory)
        diffs = entry_differences(entries, a, np.arange(a.size), ctx.eps, ctx.settings.method,
                                  ctx.ref_loss_value, chunk, abs(ctx.ref_loss_value))
        what = f"upstream of layer {net.nodes[i].label}"
        ctx.count(entries.copies, what)
        ctx.needs(what, a.size, net.batch)
        out[i] = Upstream(diffs.grad.reshape(a.shape), entries.copies)
    return out


def direct_cost(ctx: CheckContext, i: int, size: int) -> int:
    """Entries computed by the direct route for a tensor of ``size`` entries of layer i."""
    return 2 * size * sum(math.prod(a.shape) for a in ctx.ref_acts[i:])


def factored_cost(ctx: CheckContext, i: int, tensor: str) -> int:
    """Entries computed by the factored route (layer i alone; g_l is shared by its tensors)."""
    size = math.prod(np.shape(ctx.ref_layers[i].params[tensor]))
    axes = ctx.structures[i].axes_of(tensor)
    copies = size // np.shape(ctx.ref_layers[i].params[tensor])[axes[0]] if axes else size
    return 2 * copies * (math.prod(ctx.ref_acts[i].shape) + math.prod(ctx.ref_acts[i + 1].shape))


def clean(comparison: Comparison) -> bool:
    """A factored row is kept only when it passes with every entry within the noise: anything
    else (a kink further on shows in g_l, not in θ_l) is re-run the direct way."""
    return comparison.status is Status.PASS and not comparison.reason and not comparison.kinks \
        and not comparison.notes and comparison.rel_error is not None \
        and comparison.noise is not None and comparison.rel_error <= comparison.noise


def factored_target(ctx: CheckContext, i: int, tensor: str, g: np.ndarray
                    ) -> tuple[EvaluateStack, EvaluateEntries, float, float, int]:
    """(stack, entries, f0, f_scale, bytes per probe) of f(θ) = ⟨layer_i(x; θ), g⟩: the
    end-to-end difference of θ factored through the layer's output."""
    layer, st, layout = ctx.ref_layers[i], ctx.structures[i], ctx.net.spec.layout
    x, out = ctx.ref_acts[i], ctx.ref_acts[i + 1]
    theta = layer.params[tensor]
    g_flat = g.reshape(-1)

    def tail(o: np.ndarray) -> np.ndarray:
        return o.reshape(*o.shape[:o.ndim - g.ndim], -1) @ g_flat

    f0 = float(tail(out))
    stack = copies_evaluator([layer], [st], tensor, x, layout, tail, True)
    entries: EvaluateEntries = entries_from_stack(stack, theta)
    per_probe = bytes_per_probe(theta.size, [x.size, out.size], ctx.settings.method)
    if shortcuts.supports(layer, tensor, isolated=True):
        entries = shortcuts.entries_evaluator(layer, tensor, [x, out], [], tail, True, contraction=g)
    elif (grouped := grouped_parameter(layer, st, tensor, x, out, g, layout, f0)) is not None:
        entries, share = grouped
        entries.max_copies = chunk_for(per_probe, ctx.settings.max_memory)
        per_probe = max(1, per_probe // share)
    return stack, entries, f0, float(np.abs(out * g).sum()), per_probe
