"""Finite differences over stacks of perturbed copies.

``evaluate(stack) -> values`` maps a stack of B perturbed copies of a tensor, shape (B, *θ.shape),
to B scalars. Stacking lets layers that accept leading probe axes run all copies as one large
array operation; the stack is cut into chunks so that memory stays bounded.
Pure: θ is never modified, nothing is printed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

F64_EPS = float(np.finfo(np.float64).eps)

#: rounding-optimal relative steps for the float64 reference (see NUMERICS: h ≈ ε^(1/3), √ε)
AUTO_STEP = {"central": F64_EPS ** (1.0 / 3.0), "forward": F64_EPS ** 0.5}
#: evaluations per entry
EVALS_PER_ENTRY = {"central": 2, "forward": 1}

Evaluate = Callable[[np.ndarray], np.ndarray]


def resolve_step(eps: float | str, method: str) -> float:
    return AUTO_STEP[method] if eps == "auto" else float(eps)


@dataclass
class Differences:
    """A numeric gradient and what is needed to judge it."""

    grad: np.ndarray        # float64, θ.shape
    step: np.ndarray        # the step actually taken per entry (exactly representable)
    noise: np.ndarray       # rounding error bound per entry, ε·max|f|/h
    evaluations: int


def numeric_gradient(evaluate: Evaluate, theta: np.ndarray, eps: float, method: str = "central",
                     chunk: int = 256) -> Differences:
    """∂f/∂θ for every entry of θ by central or forward differences, h = eps·max(1, |θ|)."""
    theta = np.asarray(theta, dtype=np.float64)
    flat = theta.reshape(-1)
    n = flat.size
    grad = np.empty(n)
    step = np.empty(n)
    fmax = np.zeros(n)
    evals = 0
    f0 = None
    if method == "forward":
        f0 = float(np.asarray(evaluate(theta[None]))[0])
        evals += 1
    chunk = max(1, int(chunk))
    for start in range(0, n, chunk):
        idx = np.arange(start, min(n, start + chunk))
        h = eps * np.maximum(1.0, np.abs(flat[idx]))
        # Steps taken as representable differences, so the divisor is exactly the change made.
        up = flat[idx] + h
        if method == "central":
            down = flat[idx] - h
            stack = _perturbed(theta, np.concatenate([idx, idx]), np.concatenate([up, down]))
            values = np.asarray(evaluate(stack), dtype=np.float64)
            fp, fm = values[: idx.size], values[idx.size:]
            dh = up - down
            grad[idx] = (fp - fm) / dh
        else:
            stack = _perturbed(theta, idx, up)
            fp = np.asarray(evaluate(stack), dtype=np.float64)
            fm = np.full_like(fp, f0)
            dh = up - flat[idx]
            grad[idx] = (fp - f0) / dh
        step[idx] = dh
        fmax[idx] = np.maximum(np.abs(fp), np.abs(fm))
        evals += stack.shape[0]
    noise = 4.0 * F64_EPS * fmax / step
    return Differences(grad.reshape(theta.shape), step.reshape(theta.shape),
                       noise.reshape(theta.shape), evals)


def _perturbed(theta: np.ndarray, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A stack of copies of θ, copy k with flat entry idx[k] set to values[k]."""
    stack = np.repeat(theta.reshape(1, -1), idx.size, axis=0)
    stack[np.arange(idx.size), idx] = values
    return stack.reshape((idx.size,) + theta.shape)


def chunk_for(bytes_per_probe: int, budget_bytes: int, method: str) -> int:
    """Entries per chunk so that one chunk's stack and activations fit the memory budget."""
    per_entry = max(1, bytes_per_probe) * EVALS_PER_ENTRY[method]
    return int(max(1, min(4096, budget_bytes // per_entry)))
