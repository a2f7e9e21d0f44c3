"""Check 2, end to end: the scalar loss (+ L2) against each parameter tensor and the network
input, perturbed in place and pushed through the rest of the network, compared with the gradient
that every layer's backward, chained from the loss, produces."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import shortcuts
from .forward import as_f64, differentiable
from .state import CheckContext
from ..errors import GradcheckError
from .network import node_key
from .differences import EvaluateEntries, EvaluateStack
from .evaluators import entries_from_stack, probe_capable, stack_evaluator
from ..results import Row
from .tensor import (Target, bytes_per_probe, check_analytic, gradient_scale, integer_input,
                          run_backward, tensor_key)

#: a layer-input gradient this much smaller (larger) than the loss gradient is flagged
VANISHING, EXPLODING = 1e-8, 1e8


def network_check(ctx: CheckContext, rows: list[Row]) -> None:
    """Backpropagate the loss through every layer's backward and check each tensor end to end."""
    net, spec = ctx.net, ctx.net.spec
    m, l2 = net.batch, spec.l2
    by_key = {(r.label, r.tensor): r for r in rows}
    loss_row = by_key[("loss", "x")]
    loss_row.network = loss_row.isolated
    chain = backward_chain(ctx)
    loss_batched = getattr(type(net.loss.layer), "probe_axes", False)

    def loss_tail(out):
        return net.loss.layer.forward(out, ctx.ref_targets)[0]

    top = chain.get("top")
    per_example = shortcuts.PerExampleLoss.of(net.loss.layer, ctx.ref_targets, ctx.ref_acts[-1],
                                             ctx.ref_loss_value)
    for i, node in enumerate(net.nodes):
        grads, failure = chain[i]
        rest = ctx.ref_layers[i + 1:]
        batched = ctx.settings.batched and loss_batched and probe_capable([ctx.ref_layers[i], *rest])
        activations = [ctx.ref_acts[j].shape for j in range(i, len(ctx.ref_acts))]
        for tensor in ["x", *node.layer.params]:
            row = by_key[(node.label, tensor)]
            theta = ctx.ref_acts[i] if tensor == "x" else ctx.ref_layers[i].params[tensor]
            if tensor == "x" and not differentiable(theta):
                row.network = integer_input(grads)
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
            per_probe = bytes_per_probe(theta, activations, ctx.settings.method)
            if ctx.settings.batched and shortcuts.supports(ctx.ref_layers[i], tensor):
                entries = shortcuts.entries_evaluator(ctx.ref_layers[i], tensor, ctx.ref_acts[i:], rest,
                                                     loss_tail, loss_batched, loss=per_example)
                per_probe -= 8 * theta.size  # no copies of θ are made
            f0 = ctx.ref_loss_value
            analytic = dict(grads)
            if penalized:
                coef = l2 / (2 * m)
                stack = with_l2(stack, coef)
                entries = entries_with_l2(entries, theta, coef)
                f0 += coef * float((theta * theta).sum())
                if analytic.get(tensor) is not None:
                    try:
                        analytic[tensor] = np.asarray(analytic[tensor]) + (l2 / m) * node.layer.params[tensor]
                    except ValueError:
                        pass  # a wrong-shaped gradient is reported as such
            target = Target(theta, stack, entries, f0, abs(f0), per_probe,
                             (*node_key(node), 50 + tensor_key(node.layer, tensor)),
                             gradient_scale(analytic))
            target.progress_label = f"end to end, layer {node.label} {tensor}"
            if ("dout", i) in chain:
                target.diagnosis = dict(cotangent=as_f64(chain[("dout", i)]),
                                        layer_input=ctx.ref_acts[i], layer_output=ctx.ref_acts[i + 1])
            row.network, n_full = check_analytic(ctx, analytic, failure, tensor, target)
            ctx.keep(f"network/{node.label}/{tensor}/analytic", analytic.get(tensor))
            ctx.keep(f"network/{node.label}/{tensor}/numeric", n_full)
            if tensor == "x" and top and analytic.get("x") is not None:
                _flag_scale(row, analytic["x"], top)


def backward_chain(ctx: CheckContext) -> dict:
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
        grads, failure = run_backward(net.nodes[i].layer, d, ctx.clean.caches[i])
        chain[i] = (grads, failure)
        d = grads.get("x")
        if d is not None:
            # a copy, so that a backward writing into its dout cannot alter the row it came from
            d = np.array(d, copy=True)
        if d is None or (failure and "raised" in failure):
            what = "returned dx = None" if d is None and "x" in grads else "failed"
            d, broken = None, f"not computed: layer {net.nodes[i].label}'s backward {what}"
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


def entries_with_l2(evaluate: EvaluateEntries, theta: np.ndarray, coef: float) -> EvaluateEntries:
    total = float((theta * theta).sum())
    flat = theta.reshape(-1)

    def penalized(idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        return evaluate(idx, values) + coef * (total - flat[idx] ** 2 + values * values)
    return penalized


def with_l2(evaluate: EvaluateStack, coef: float) -> EvaluateStack:
    def penalized(stack: np.ndarray) -> np.ndarray:
        axes = tuple(range(1, stack.ndim))
        return evaluate(stack) + coef * (stack * stack).sum(axis=axes)
    return penalized

