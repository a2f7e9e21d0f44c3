"""One tensor's function, for step sweeps and teaching tools: the scalar the checks differentiate."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..check.state import CheckContext, CheckSettings
from ..check.end_to_end import backward_chain, l2_coefficient, l2_term, with_l2, with_l2_gradient
from ..check.network import STREAM_COTANGENT, Network, node_key, rng_for
from ..check.differences import EvaluateStack
from ..check.evaluators import probe_capable, stack_evaluator
from ..check.backward import run_backward


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
    ctx = CheckContext(net, CheckSettings())
    loss, targets = net.loss.layer, ctx.ref.targets
    if label == "loss":
        theta = ctx.ref.acts[-1]
        analytic = loss.backward(1.0, ctx.clean.loss_cache)

        def evaluate(stack: np.ndarray) -> np.ndarray:
            return np.asarray(loss.forward(stack, targets)[0]).reshape(stack.shape[0])

        return TensorFunction(label, tensor, theta, evaluate, ctx.ref.loss_value,
                              np.asarray(analytic, dtype=np.float64))
    chain = backward_chain(net, ctx.clean) if network else {}
    for i, node in enumerate(net.nodes):
        if node.label != label:
            continue
        layer, ref_layer, x64 = node.layer, ctx.ref.layers[i], ctx.ref.acts[i]
        if tensor != "x" and tensor not in layer.params:
            break
        theta = x64 if tensor == "x" else ref_layer.params[tensor]
        if network:
            rest = ctx.ref.layers[i + 1:]
            batched = probe_capable([ref_layer, *rest, net.loss.layer])
            evaluate = stack_evaluator(ref_layer, tensor, x64, rest,
                                       lambda out: loss.forward(out, targets)[0], batched)
            grads, f0 = chain[i][0], ctx.ref.loss_value
            a = grads.get(tensor)
            coef = l2_coefficient(layer, tensor, net.spec.l2, net.batch)
            if coef:
                evaluate = with_l2(evaluate, coef)
                f0 += l2_term(theta, coef)
                a = None if a is None else with_l2_gradient(a, layer.params[tensor], coef)
        else:
            out64 = ref_layer.forward(x64)[0]
            g64 = rng_for(net.spec.seed, STREAM_COTANGENT, *node_key(node)).standard_normal(out64.shape)
            grads, _ = run_backward(layer, g64.astype(net.dtype), ctx.clean.caches[i])
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

