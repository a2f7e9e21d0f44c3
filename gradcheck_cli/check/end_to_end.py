"""Check 2, end to end: the scalar loss (+ L2) against each parameter tensor and the network
input, perturbed in place and pushed through the rest of the network, compared with the gradient
that every layer's backward, chained from the loss, produces."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import shortcuts
from .forward import as_f64, differentiable
from .state import Differencing, Ledger, Memo, Reference
from .forward import Forward
from ..errors import GradcheckError
from .network import Network, node_key
from .differences import EvaluateEntries, EvaluateStack
from .copies import cells_evaluator, copies_evaluator, grouped_entries
from .grouping import example_of_entries, loss_cells
from .evaluators import entries_from_stack
from .factored import (chained_upstream, within_noise, direct_cost, factored_cost, factored_input_target,
                       factored_target)
from .structure import Structure
from ..results import Row
from .tensor import Target, check_analytic, gradient_scale, integer_input, tensor_key
from .backward import BackwardFailure, Defect, run_backward
from .budget import bytes_per_probe, copy_sizes, served_bytes, shared_bytes
from .served import supports

#: a layer-input gradient this much smaller (larger) than the loss gradient is flagged
VANISHING, EXPLODING = 1e-8, 1e8


def network_check(ref: Reference, how: Differencing, ledger: Ledger, memo: Memo, clean: Forward,
                  rows: list[Row]) -> set[tuple[str, str]]:
    """Backpropagate the loss through every layer's backward and check each tensor end to end.
    Returns the (label, tensor) rows whose end-to-end gradient could not be computed: a backward
    after their layer broke the chain."""
    net, spec = ref.net, ref.net.spec
    by_key = {(r.label, r.tensor): r for r in rows}
    loss_row = by_key[("loss", "x")]
    loss_row.network = loss_row.isolated
    chain = backward_chain(ref.net, clean)
    top = chain.get("top")
    per_example = shortcuts.PerExampleLoss.of(net.loss.layer, ref.targets, ref.acts[-1],
                                             ref.loss_value)
    terms = loss_cells(net.loss.layer, ref.targets, spec.layout, ref.acts[-1],
                       ref.loss_value) if how.settings.batched else None
    not_computed: set[tuple[str, str]] = set()
    upstream = memo.upstream if memo.upstream is not None else chained_upstream(ref, how, ledger)
    for i, node in enumerate(net.nodes):
        grads, failure = chain[i]
        for tensor in ["x", *node.layer.params]:
            row = by_key[(node.label, tensor)]
            theta = ref.acts[i] if tensor == "x" else ref.layers[i].params[tensor]
            if tensor == "x" and not differentiable(theta):
                row.network = integer_input(grads)
                continue
            if tensor == "x" and i > 0:
                # end to end, only the network input is checked: a hidden layer's dx is checked
                # in isolation, and its effect shows in every parameter upstream
                if top and grads.get("x") is not None:
                    _flag_scale(row, grads["x"], top)
                continue
            coef = l2_coefficient(node.layer, tensor, spec.l2, net.batch)
            analytic = dict(grads)
            if coef and analytic.get(tensor) is not None:
                try:
                    analytic[tensor] = with_l2_gradient(analytic[tensor], node.layer.params[tensor], coef)
                except ValueError:
                    pass  # a wrong-shaped gradient is reported as such
            if failure is not None and failure.has(Defect.NOT_COMPUTED):
                not_computed.add((node.label, tensor))
            key = (*node_key(node), 50 + tensor_key(node.layer, tensor))
            diagnosis = dict(cotangent=as_f64(chain[("dout", i)]), layer_input=ref.acts[i],
                             layer_output=ref.acts[i + 1]) if ("dout", i) in chain else {}
            row.network = None
            parts = None
            if tensor == "x" and i + 1 in upstream:
                parts = factored_input_target(ref, how, upstream[i + 1], memo)
            elif tensor != "x" and i + 1 in upstream and \
                    factored_cost(ref, i, tensor) < direct_cost(ref, i, theta.size):
                parts = factored_target(ref, how, memo, i, tensor, upstream[i + 1])
            if parts is not None:
                target = _target(theta, *parts, coef, key, gradient_scale(analytic), diagnosis)
                target.progress_label = f"end to end, layer {node.label} {tensor}"
                if tensor == "x" and ref.structures[i].separable:
                    target.examples_per_call = net.batch
                row.network, n_full = check_analytic(how, ledger, analytic, failure, tensor, target)
                if not within_noise(row.network):
                    row.network = None  # judged the direct way below
            if row.network is None:
                parts = _direct(ref, how, i, tensor, terms, per_example)
                target = _target(theta, *parts, coef, key, gradient_scale(analytic), diagnosis)
                target.progress_label = f"end to end, layer {node.label} {tensor}"
                if tensor == "x" and terms is not None and ref.structures and \
                        all(st.separable for st in ref.structures):
                    target.examples_per_call = net.batch
                row.network, n_full = check_analytic(how, ledger, analytic, failure, tensor, target)
            ledger.keep(f"network/{node.label}/{tensor}/analytic", analytic.get(tensor))
            ledger.keep(f"network/{node.label}/{tensor}/numeric", n_full)
            if tensor == "x" and top and analytic.get("x") is not None:
                _flag_scale(row, analytic["x"], top)
    return not_computed


def _target(theta, stack, entries, f0, f_scale, per_probe, coef, key, analytic_scale, diagnosis) -> Target:
    if coef:
        stack, entries = with_l2(stack, coef), entries_with_l2(entries, theta, coef)
        f0 += l2_term(theta, coef)
    return Target(theta, stack, entries, f0, max(abs(f0), f_scale), per_probe, key, analytic_scale,
                  diagnosis)


def _direct(ref: Reference, how: Differencing, i: int, tensor: str, terms, per_example):
    """(stack, entries, f0, f_scale, bytes per probe) of the loss as a function of one tensor
    of layer i, perturbed in place and pushed through the rest of the network."""
    net, layout = ref.net, how.layout
    structures = ref.structures or [Structure.none()] * len(net.nodes)
    loss_batched = getattr(type(net.loss.layer), "probe_axes", False)

    def loss_tail(out):
        return net.loss.layer.forward(out, ref.targets)[0]

    theta = ref.acts[i] if tensor == "x" else ref.layers[i].params[tensor]
    stack = copies_evaluator(ref.layers[i:], structures[i:], tensor, ref.acts[i], layout,
                             loss_tail, loss_batched and how.settings.batched)
    entries = entries_from_stack(stack, theta)
    sizes = copy_sizes(ref.layers[i:], [a.shape for a in ref.acts[i:]], [s.held for s in structures[i:]])
    per_probe = bytes_per_probe(theta.size, sizes, how.settings.method,
                                structures[i].copies_held(tensor))
    if how.settings.batched and supports(ref.layers[i], tensor):
        entries = shortcuts.entries_evaluator(ref.layers[i], tensor, ref.acts[i:],
                                             ref.layers[i + 1:], loss_tail, loss_batched,
                                             loss=per_example)
        per_probe = served_bytes(ref.layers[i:], tensor, theta.size, sizes, how.batch, how.settings.method, False)
    elif tensor == "x" and terms is not None and all(st.separable for st in structures):
        # every layer keeps examples apart: one perturbed entry per example shares a copy, and
        # each is read from its own example's loss term
        cell, color = example_of_entries(theta.shape, layout)
        evaluate = cells_evaluator(ref.layers, structures, theta, layout, terms)
        entries = grouped_entries(theta, cell, color, evaluate, terms(ref.acts[-1][None])[0],
                                  ref.loss_value)
        per_probe = shared_bytes(entries, per_probe, net.batch, how.settings.max_memory)
    return stack, entries, ref.loss_value, abs(ref.loss_value), per_probe


def backward_chain(net: Network, clean: Forward) -> dict:
    """Every layer's backward, chained from the loss: {i: (grads, failure)}, plus the loss gradient."""
    chain: dict = {}
    try:
        d = net.loss.layer.backward(1.0, clean.loss_cache)
        chain["top"] = float(np.linalg.norm(np.asarray(d, dtype=np.float64)))
        broken = None
    except GradcheckError:  # ours (a time limit, a located error): as it is
        raise
    except (Exception, SystemExit) as exc:  # plugin code may call sys.exit
        d, broken = None, _not_computed(f"the loss's backward raised {type(exc).__name__}")
    for i in reversed(range(len(net.nodes))):
        if d is None:
            chain[i] = ({}, broken)
            continue
        chain[("dout", i)] = np.array(d, copy=True)   # for the diagnosis of this layer's rows
        grads, failure = run_backward(net.nodes[i].layer, d, clean.caches[i])
        chain[i] = (grads, failure)
        d = grads.get("x")
        if d is not None:
            # a copy, so that a backward writing into its dout cannot alter the row it came from
            d = np.array(d, copy=True)
        if d is None or (failure is not None and failure.has(Defect.RAISED)):
            what = "returned dx = None" if d is None and "x" in grads else "failed"
            d, broken = None, _not_computed(f"layer {net.nodes[i].label}'s backward {what}")
    return chain


def _not_computed(why: str) -> BackwardFailure:
    return BackwardFailure.of(f"not computed: {why}", Defect.NOT_COMPUTED)


def _flag_scale(row: Row, dx: Any, top: float) -> None:
    """Vanishing or exploding gradients at a layer's input, relative to the loss gradient."""
    try:
        ratio = float(np.linalg.norm(np.asarray(dx, dtype=np.float64))) / top
    except (TypeError, ValueError):
        return
    if ratio < VANISHING or ratio > EXPLODING:
        word = "vanishing" if ratio < VANISHING else "exploding"
        (row.network or row.isolated).notes = f"{word} gradient: ‖dL/dx‖ is {ratio:.1e} × ‖dL/d(output)‖"


def l2_coefficient(layer: Any, tensor: str, l2: float, batch: int) -> float:
    """The factor c of the L2 term c·‖θ‖² the loss carries for one tensor: λ/2m for the tensors
    a layer decays (its ``decay``), 0 for the rest and for the input."""
    decayed = tensor != "x" and tensor in getattr(layer, "decay", ()) and l2 > 0
    return l2 / (2 * batch) if decayed else 0.0


def l2_term(theta: np.ndarray, coef: float) -> float:
    """c·‖θ‖²: what the L2 term adds to the loss at θ."""
    return coef * float((theta * theta).sum())


def with_l2_gradient(grad: Any, theta: np.ndarray, coef: float) -> np.ndarray:
    """A backward's gradient with the L2 term's, 2c·θ (λ/m·θ), added."""
    return np.asarray(grad) + 2 * coef * theta


def entries_with_l2(evaluate: EvaluateEntries, theta: np.ndarray, coef: float) -> EvaluateEntries:
    total = float((theta * theta).sum())
    flat = theta.reshape(-1)

    def penalized(idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        return evaluate(idx, values) + coef * (total - flat[idx] ** 2 + values * values)
    if hasattr(evaluate, "schedule"):
        penalized.schedule = evaluate.schedule  # type: ignore[attr-defined]
    return penalized


def with_l2(evaluate: EvaluateStack, coef: float) -> EvaluateStack:
    def penalized(stack: np.ndarray) -> np.ndarray:
        axes = tuple(range(1, stack.ndim))
        return evaluate(stack) + coef * (stack * stack).sum(axis=axes)
    return penalized

