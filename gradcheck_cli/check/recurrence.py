"""A recurrent layer's parameters differenced step by step: the derivative factored through time.

A built-in recurrent layer is a scan, s_t = advance(θ, x_t, s_{t−1}), with output h_t = s_t[0].
The derivative of f(θ) = ⟨h, W⟩ with respect to the shared θ is a sum over the steps,

    ∂f/∂θ = Σ_t ∂F_t/∂θ,   F_t(θ) = ⟨advance(θ, x_t, s_{t−1}), λ_t⟩,   s_{t−1} held clean,

where λ_t = ∂f/∂s_t, the state's adjoint: λ_T = (W_T, 0), λ_{t−1} = (W_{t−1}, 0) +
∂⟨advance(θ, x_t, s), λ_t⟩/∂s at s_{t−1}. Both are finite differences of the layer's own step
(never its backward): λ per example (examples do not mix), and F_t with column grouping, since
within one step a column of θ reaches one hidden unit only (column j feeds gate j // H of unit
j mod H), so one copy perturbs a row and gate of θ for all H units at once. Perturbing the whole
forward per entry costs 2·|θ| copies of T steps; this costs 2·rows·gates copies of T steps and
2·(states·H) steps per step for λ.

What is differenced is F = Σ_t F_t, a function with f's derivative but not f: its numbers carry
λ's own differencing error, so a row that is not cleanly within the noise is judged again the
direct way (isolated.py, end_to_end.py), and the verdict is always the direct differences'.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .copies import grouped_entries

#: methods whose rows may be factored through time (the complex step is exact where the factored
#: sum is not, and Richardson's extrapolation would only extrapolate λ's error)
METHODS = ("central", "forward")


def scan_of(layer: Any, x: np.ndarray, out: np.ndarray, weights: np.ndarray, eps: float,
            method: str) -> "Scan | None":
    """f = ⟨layer(x), weights⟩ seen as a scan, or None where the layer is not a built-in scan or
    its scan does not reproduce ``out``."""
    if method not in METHODS or not _builtin_scan(layer) or x.ndim != 3:
        return None
    m, T = x.shape[0], x.shape[1]
    states = [layer.initial_state(m, np.float64)]
    for t in range(T):
        states.append(layer.advance(layer.params, x[:, t], states[-1]))
    h = np.stack([s[0] for s in states[1:]], axis=1)
    if out.ndim == 2:
        h = h[:, -1]
    # the scan must be the forward that was run, to the rounding of its products
    if h.shape != out.shape or not np.allclose(h, out, rtol=1e-12, atol=1e-12 * max(1.0, float(np.abs(out).max()))):
        return None
    per_step = [weights[:, t] if out.ndim == 3 else (weights if t == T - 1 else np.zeros_like(weights))
                for t in range(T)]
    return Scan(layer, x, states, per_step, eps)


def _builtin_scan(layer: Any) -> bool:
    """Whether the layer's step is a built-in one (a subclass may change its backward only): the
    grouping by unit is known of the built-in steps, not verified."""
    return all(getattr(getattr(type(layer), name, None), "__module__", "").startswith("gradcheck_cli.layers.")
               for name in ("initial_state", "advance", "step", "forward"))


class Scan:
    """The clean trajectory s_0 … s_T, the weights per step, and the adjoints λ_1 … λ_T, which
    are differenced on first use and serve every parameter of the layer."""

    def __init__(self, layer: Any, x: np.ndarray, states: list, weights: list, eps: float) -> None:
        self.layer, self.x, self.states, self.weights, self.eps = layer, x, states, weights, eps
        self._lam: list | None = None
        #: layer-sized copies (T steps) that differencing λ took, not yet counted by an entries
        self.uncounted = 0

    def entries(self, tensor: str) -> "ScanEntries | None":
        return ScanEntries(self, tensor) if tensor in self.layer.params else None

    @property
    def lam(self) -> list[tuple[np.ndarray, ...]]:
        """λ_t for t = 1 … T (the state after step t), from the last step down."""
        if self._lam is None:
            states, T = self.states, len(self.weights)
            zeros = [np.zeros_like(p) for p in states[0][1:]]
            lam: list = [None] * T
            lam[T - 1] = (self.weights[T - 1], *zeros)
            for t in range(T - 1, 0, -1):
                d = self._state_gradient(self.x[:, t], states[t], lam[t])
                lam[t - 1] = (self.weights[t - 1] + d[0], *d[1:])
            self._lam = lam
        return self._lam

    def cells(self, tensor: str, theta: np.ndarray) -> np.ndarray:
        """Σ_t F_t per hidden unit, for θ or a stack of copies of it: (..., H)."""
        params = {**self.layer.params, tensor: theta}
        total = 0.0
        for t, lam in enumerate(self.lam):
            new = self.layer.advance(params, self.x[:, t], self.states[t])
            total = total + sum((part * w).sum(axis=-2) for part, w in zip(new, lam))
        return np.asarray(total)

    def _state_gradient(self, xt: np.ndarray, state: tuple, lam: tuple) -> tuple[np.ndarray, ...]:
        """∂⟨advance(θ, x_t, s), λ⟩/∂s by central differences, every example in one copy (a step
        keeps examples apart): one copy per (state part, unit) and sign."""
        base = np.stack(state)                                       # (P, m, H)
        P, H = base.shape[0], base.shape[-1]
        part, unit = np.divmod(np.arange(P * H), H)
        h = self.eps * np.maximum(1.0, np.abs(base[part, :, unit]))  # (P·H, m)
        up, down = base[part, :, unit] + h, base[part, :, unit] - h
        stack = np.repeat(base[None], 2 * P * H, axis=0)             # (2·P·H, P, m, H)
        n = np.arange(P * H)
        stack[n, part, :, unit] = up
        stack[P * H + n, part, :, unit] = down
        new = self.layer.advance(self.layer.params, xt, tuple(stack[:, p] for p in range(P)))
        f = sum((s * w).sum(axis=-1) for s, w in zip(new, lam))      # (2·P·H, m)
        self.uncounted += -(-2 * P * H // len(self.weights))
        grad = np.zeros_like(base)
        grad[part, :, unit] = (f[:P * H] - f[P * H:]) / (up - down)
        return tuple(grad)


class ScanEntries:
    """evaluate_entries of F for one parameter: grouped_entries over its cells (the hidden
    units), built on the first call; ``copies`` counts layer-sized copies (T steps each), λ's
    included where this parameter was the first to need them."""

    def __init__(self, scan: Scan, tensor: str) -> None:
        self.scan, self.tensor = scan, tensor
        theta = scan.layer.params[tensor]
        H, cols = scan.states[0][0].shape[-1], theta.shape[-1]
        index = np.arange(theta.size)
        self.cell = index % cols % H
        # (entries of the other axes) × gate: the entries of one colour reach distinct units
        self.color = index // cols * (cols // H) + index % cols // H
        self.share = H
        self.max_copies: int | None = None
        self._inner: grouped_entries | None = None
        self._own = 0

    @property
    def copies(self) -> int:
        return self._own + (self._inner.copies if self._inner is not None else 0)

    def schedule(self, idx: np.ndarray) -> np.ndarray:
        return np.argsort(self.color[np.asarray(idx, dtype=np.intp)], kind="stable")

    def __call__(self, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        if self._inner is None:
            theta = self.scan.layer.params[self.tensor]
            clean = self.scan.cells(self.tensor, theta)
            self._own, self.scan.uncounted = self.scan.uncounted, 0
            self._inner = grouped_entries(theta, self.cell, self.color,
                                          lambda stack: self.scan.cells(self.tensor, stack),
                                          clean, float(clean.sum()))
        self._inner.max_copies = self.max_copies
        return self._inner(idx, values)
