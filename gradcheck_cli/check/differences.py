"""Finite differences, evaluated as batches of perturbed copies.

Two kinds of probe: an *entry* probe changes one entry of θ (full and sample modes), a
*direction* probe moves all of θ along a unit vector u (directional mode). The caller supplies
the function to differentiate as ``evaluate_entries(idx, values)`` (the scalar f with
θ.flat[idx[k]] set to values[k], for every k at once) or ``evaluate_stack(stack)`` (f of each
copy in a stack of shape (B, *θ.shape)). Batching is the caller's business: a layer that accepts
leading probe axes runs the whole batch as one array operation.

Pure: θ is never modified, nothing is printed. See NUMERICS.md for the step and error formulas.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


F64_EPS = float(np.finfo(np.float64).eps)

#: Rounding-optimal relative steps for the float64 reference: truncation h^p against rounding
#: ε/h balance at h ≈ ε^(1/(p+1)); complex step has no subtraction, so h can be tiny.
AUTO_STEP = {"central": F64_EPS ** (1 / 3), "forward": F64_EPS ** (1 / 2),
             "richardson": F64_EPS ** (1 / 7), "complex": 1e-20}

#: Multiples of h at which each method evaluates f (complex: imaginary multiples).
OFFSETS = {"central": (1.0, -1.0), "forward": (1.0,), "complex": (1.0,),
           "richardson": (1.0, -1.0, 0.5, -0.5, 0.25, -0.25)}

#: Rounding error of each method's estimate, in units of ε·max|f|/h.
ROUNDING = {"central": 1.0, "forward": 2.0, "richardson": (1 + 40 + 256) / 45, "complex": 0.0}

EvaluateEntries = Callable[[np.ndarray, np.ndarray], np.ndarray]
EvaluateStack = Callable[[np.ndarray], np.ndarray]


def resolve_step(eps: float | str, method: str) -> float:
    return AUTO_STEP[method] if eps == "auto" else float(eps)


def evaluations_per_probe(method: str) -> int:
    return len(OFFSETS[method])


@dataclass
class Differences:
    """Numeric derivatives for B probes, and what is needed to judge them."""

    grad: np.ndarray                 # (B,) float64: ∂f/∂θ_i, or ⟨∇f, u⟩ for a direction
    step: np.ndarray                 # (B,) the step h actually taken
    rounding: np.ndarray             # (B,) rounding error bound of grad
    truncation: np.ndarray | None    # (B,) truncation estimate where the method gives one
    d_plus: np.ndarray | None        # (B,) one-sided (f(θ+h) − f(θ))/h, for kink detection
    d_minus: np.ndarray | None       # (B,) one-sided (f(θ) − f(θ−h))/h
    evaluations: int


def entry_differences(evaluate: EvaluateEntries, theta: np.ndarray, idx: np.ndarray, eps: float,
                      method: str, f0: float, chunk: int, f_scale: float = 0.0) -> Differences:
    """Derivatives of f with respect to the entries θ.flat[idx], h_i = eps·max(1, |θ_i|).

    ``f_scale`` bounds the size of the terms f sums (e.g. Σ|out ⊙ G|): f's rounding error is
    ε times that, which can be far more than ε·|f| when the terms cancel."""
    flat = np.asarray(theta).reshape(-1)
    idx = np.asarray(idx, dtype=np.intp)
    base = flat[idx].astype(np.float64)
    h = eps * np.maximum(1.0, np.abs(base))
    offsets = OFFSETS[method]
    values = np.empty((len(offsets), idx.size))
    steps = np.empty((len(offsets), idx.size))
    chunk = max(1, int(chunk) // len(offsets))
    # an evaluator that perturbs several entries per copy (copies.grouped_entries) says in which
    # order to take them, so that each batch holds entries that can share copies
    schedule = getattr(evaluate, "schedule", None)
    order = np.asarray(schedule(idx), dtype=np.intp) if schedule is not None and idx.size > chunk else None
    for start in range(0, idx.size, chunk):
        sl = slice(start, min(idx.size, start + chunk))
        if order is not None:
            sl = order[sl]
        probe_idx, probe_val = [], []
        for j, c in enumerate(offsets):
            if method == "complex":
                new = base[sl] + 1j * (c * h[sl])
                steps[j, sl] = c * h[sl]
            else:
                new = base[sl] + c * h[sl]
                # the change actually made, exactly representable, is what we divide by
                steps[j, sl] = new - base[sl]
            probe_idx.append(idx[sl])
            probe_val.append(new)
        out = np.asarray(evaluate(np.concatenate(probe_idx), np.concatenate(probe_val)))
        n = probe_idx[0].size
        for j in range(len(offsets)):
            part = out[j * n:(j + 1) * n]
            values[j, sl] = part.imag if method == "complex" else part.real
    return _combine(method, values, steps, h, f0, idx.size * len(offsets), f_scale)


def direction_differences(evaluate: EvaluateStack, theta: np.ndarray, directions: np.ndarray,
                          eps: float, method: str, f0: float, chunk: int,
                          f_scale: float = 0.0) -> Differences:
    """Directional derivatives ⟨∇f, u_k⟩ for unit directions u_k (rows of ``directions``)."""
    theta = np.asarray(theta, dtype=np.float64)
    h = np.full(len(directions), eps * max(1.0, float(np.abs(theta).max(initial=0.0))))
    offsets = OFFSETS[method]
    values = np.empty((len(offsets), len(directions)))
    chunk = max(1, int(chunk) // len(offsets))
    for start in range(0, len(directions), chunk):
        sl = slice(start, min(len(directions), start + chunk))
        u = directions[sl].reshape((-1,) + theta.shape)
        stacks = []
        for c in offsets:
            step = (1j if method == "complex" else 1.0) * c * h[sl].reshape((-1,) + (1,) * theta.ndim)
            stacks.append(theta[None] + step * u)
        out = np.asarray(evaluate(np.concatenate(stacks)))
        n = sl.stop - sl.start
        for j in range(len(offsets)):
            part = out[j * n:(j + 1) * n]
            values[j, sl] = part.imag if method == "complex" else part.real
    steps = np.array([c * h for c in offsets])
    return _combine(method, values, steps, h, f0, len(directions) * len(offsets), f_scale)


def _combine(method: str, values: np.ndarray, steps: np.ndarray, h: np.ndarray, f0: float,
             evaluations: int, f_scale: float) -> Differences:
    fmax = np.maximum(np.abs(values).max(axis=0), max(abs(f0), f_scale))
    rounding = 4.0 * ROUNDING[method] * F64_EPS * fmax / h
    truncation = d_plus = d_minus = None
    if method == "forward":
        grad = (values[0] - f0) / steps[0]
    elif method == "complex":
        grad = values[0] / steps[0]
        rounding = 4.0 * F64_EPS * np.abs(grad)
    else:
        fp, fm = values[0], values[1]
        grad = (fp - fm) / (steps[0] - steps[1])
        d_plus, d_minus = (fp - f0) / steps[0], (f0 - fm) / (-steps[1])
        if method == "richardson":
            phi = [grad] + [(values[2 * k] - values[2 * k + 1]) / (steps[2 * k] - steps[2 * k + 1])
                            for k in (1, 2)]
            grad = (phi[0] - 20 * phi[1] + 64 * phi[2]) / 45
            # the O(h⁴) estimates of two step pairs differ by about their own error, which
            # bounds the O(h⁶) error of the combination
            r1, r2 = (4 * phi[1] - phi[0]) / 3, (4 * phi[2] - phi[1]) / 3
            truncation = np.abs(r1 - r2)
    return Differences(grad, h, rounding, truncation, d_plus, d_minus, evaluations)


def stack_entries(theta: np.ndarray, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A stack of copies of θ, copy k with θ.flat[idx[k]] set to values[k]."""
    dtype = np.result_type(theta.dtype, np.asarray(values).dtype, np.float64)
    stack = np.repeat(np.asarray(theta, dtype=dtype).reshape(1, -1), idx.size, axis=0)
    stack[np.arange(idx.size), idx] = values
    return stack.reshape((idx.size,) + theta.shape)


#: a batch of perturbed copies of about this size: smaller batches pay Python's overhead per
#: call, larger ones only add cache misses to the memory-bound elementwise work (measured on
#: the 134k-parameter MLP: 256 copies of 64 KiB activations was fastest)
CACHE_TARGET = 32 * 1024 * 1024
#: below this many probes per call, Python overhead per batch dominates
MIN_BATCH = 64


def chunk_for(bytes_per_probe: int, budget_bytes: int) -> int:
    """Probes per batch: cache-sized, never over the memory budget."""
    per = max(1, bytes_per_probe)
    fits = max(1, budget_bytes // per)
    return int(max(1, min(fits, max(MIN_BATCH, CACHE_TARGET // per), 8192)))
