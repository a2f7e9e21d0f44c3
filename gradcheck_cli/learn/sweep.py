"""Step sweeps: the error of each difference method over a range of steps (the V-shaped curve),
and the Taylor test's convergence order. Answers "what step should I use" and "is this a real bug".
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .tensor_function import TensorFunction
from ..check.tolerance import rel_error
from ..check.differences import entry_differences
from ..names import METHODS

DEFAULT_STEPS = tuple(10.0 ** -k for k in range(1, 13))
#: entries used per step; the sweep is about the step, not about every entry
MAX_ENTRIES = 64


@dataclass
class SweepResult:
    label: str
    tensor: str
    steps: list[float]
    #: method -> relative error against the analytic gradient at each step (None: not available)
    errors: dict[str, list[float | None]] = field(default_factory=dict)
    #: Taylor remainders |f(θ + hδ) − f(θ) − h⟨∇f, δ⟩| at each step
    taylor: list[float] = field(default_factory=list)
    #: fitted slope of log remainder against log h: 2 for a right gradient, 1 for a wrong one
    order: float | None = None
    entries: int = 0
    note: str = ""
    check: str = "end to end"


def sweep_plan(plan, layer: str | None = None, tensor: str | None = None,
               isolated: bool = False) -> SweepResult:
    """The sweep of one row of a planned config: by default the first layer with parameters and
    its first parameter (else x); end to end (the loss), or the isolated check's function."""
    from ..check.network import build_network
    from .tensor_function import tensor_function

    net = build_network(plan)
    if layer is None:
        layer = next((n for n in net.nodes if n.layer.params), net.nodes[0]).label
    node = next((n for n in net.nodes if n.label == layer), None)
    if tensor is None:
        tensor = next(iter(node.layer.params), "x") if node is not None else "x"
    fn = tensor_function(net, layer, tensor, network=not isolated)
    complex_ok = all(getattr(type(n.layer), "complex_safe", False) for n in [*net.nodes, net.loss])
    result = sweep(fn, np.random.default_rng(net.spec.seed), complex_ok=complex_ok)
    result.check = "isolated check" if isolated else "end to end"
    return result


def sweep(fn: TensorFunction, rng: np.random.Generator, steps=DEFAULT_STEPS,
          methods=METHODS, complex_ok: bool = True) -> SweepResult:
    """Relative error of each method at each step, and the Taylor test, for one tensor."""
    result = SweepResult(fn.label, fn.tensor, [float(h) for h in steps])
    if fn.analytic is None or fn.analytic.shape != fn.theta.shape:
        result.note = "the analytic gradient is missing or has the wrong shape: nothing to sweep against"
        return result
    size = fn.theta.size
    idx = np.arange(size) if size <= MAX_ENTRIES else np.sort(rng.choice(size, MAX_ENTRIES, replace=False))
    result.entries = idx.size
    a = fn.analytic.reshape(-1)[idx]

    def entries(i: np.ndarray, values: np.ndarray) -> np.ndarray:
        stack = np.repeat(fn.theta.reshape(1, -1).astype(np.result_type(values, np.float64)), i.size, axis=0)
        stack[np.arange(i.size), i] = values
        return fn.evaluate(stack.reshape((i.size,) + fn.theta.shape))

    for method in methods:
        if method == "complex" and not complex_ok:
            result.errors[method] = [None] * len(steps)
            continue
        errs = []
        for h in steps:
            step = 1e-20 if method == "complex" and h > 1e-20 else h
            with np.errstate(all="ignore"):
                d = entry_differences(entries, fn.theta, idx, step if method == "complex" else h,
                                      method, fn.f0, 4096)
            errs.append(rel_error(a, d.grad) if np.all(np.isfinite(d.grad)) else None)
        result.errors[method] = errs
    direction = rng.standard_normal(fn.theta.shape)
    direction /= np.linalg.norm(direction)
    slope = float((fn.analytic * direction).sum())
    stack = np.stack([fn.theta + h * direction for h in steps])
    values = np.asarray(fn.evaluate(stack), dtype=np.float64)
    result.taylor = [abs(v - fn.f0 - h * slope) for v, h in zip(values, steps)]
    result.order = _order(result.steps, result.taylor, fn.f0)
    return result


def _order(steps: list[float], remainders: list[float], f0: float) -> float | None:
    """The slope of log r against log h, fitted where r is well above rounding (ε·|f|·100)."""
    floor = 100 * np.finfo(np.float64).eps * max(abs(f0), 1e-300)
    pts = [(np.log10(h), np.log10(r)) for h, r in zip(steps, remainders) if r > floor and h < 0.5]
    if len(pts) < 3:
        return None
    # the largest steps may be past the Taylor regime; fit the longest clean tail of points
    xs, ys = np.array(pts).T
    return float(np.polyfit(xs, ys, 1)[0])
