"""A recurrent layer's parameters differenced step by step: the derivative factored through time.

A recurrent layer is a scan, s_t = step(θ, x_t, s_{t−1}), with output h_t = s_t[0] (steps.py says
which layers offer their step and what is verified of it). The derivative of f(θ) = ⟨h, W⟩ with
respect to the shared θ is a sum over the steps,

    ∂f/∂θ = Σ_t ∂F_t/∂θ,   F_t(θ) = ⟨step(θ, x_t, s_{t−1}), λ_t⟩,   s_{t−1} held clean,

where λ_t = ∂f/∂s_t, the state's adjoint: λ_T = (W_T, 0), λ_{t−1} = (W_{t−1}, 0) +
∂⟨step(θ, x_t, s), λ_t⟩/∂s at s_{t−1}. Both are finite differences of the layer's own step
(never its backward): λ per example (a step keeps examples apart), and F_t with column grouping,
since within one step a column of θ reaches one hidden unit only, so one copy perturbs, for every
unit, one column of θ that reaches it. Perturbing the whole forward per entry costs 2·|θ| copies
of T steps; this costs 2·|θ|/H copies of T steps and 2·(states·H) steps per step for λ.

What is differenced is F = Σ_t F_t, a function with f's derivative but not f: its numbers carry
λ's own differencing error, so a row that is not cleanly within the noise is judged again the
direct way (isolated.py, end_to_end.py), and the verdict is always the direct differences'.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .copies import Kept, Twin, grouped_entries
from .steps import Steps

#: methods whose rows may be factored through time (the complex step is exact where the factored
#: sum is not, and Richardson's extrapolation would only extrapolate λ's error)
METHODS = ("central", "forward")
#: numbers that a row (one example of one copy) of a merged step holds in temporaries: what the
#: rows of one call are cut by, here and in the memory model of the batches made
ROW_NUMBERS = 16


def scan_of(layer: Any, x: np.ndarray, out: np.ndarray, weights: np.ndarray, f0: float, eps: float,
            method: str, rng: np.random.Generator, layout: str = "rows",
            max_bytes: int = 64 << 20) -> "Scan | None":
    """f = ⟨layer(x), weights⟩ seen as a scan, or None where the layer offers no step that can
    be used (steps.py). ``f0``: f at the clean point as the caller computes it; F's values are
    given as f0 plus F's change, so that one-sided differences against f0 mean what they say."""
    if method not in METHODS or layout != "rows" or x.ndim != 3 or out.ndim not in (2, 3):
        return None
    steps = Steps.of(layer, x, out)
    if steps is None:
        return None
    return Scan(steps, _per_step(weights, steps.T, out.ndim == 3), f0, eps, rng, max_bytes)


def _per_step(weights: np.ndarray, T: int, sequences: bool) -> list[np.ndarray]:
    """W_t for t = 1 … T: the weights of h_t, zero before the last step for a layer that returns
    only h_T."""
    return [weights[:, t] if sequences else (weights if t == T - 1 else np.zeros_like(weights))
            for t in range(T)]


class Scan:
    """The steps at the clean trajectory, the weights per step, and the adjoints λ_1 … λ_T,
    which are differenced on first use and serve every parameter of the layer."""

    def __init__(self, steps: Steps, weights: list, f0: float, eps: float,
                 rng: np.random.Generator, max_bytes: int) -> None:
        self.steps, self.weights, self.f0, self.eps, self.rng = steps, weights, f0, eps, rng
        self.max_bytes = max_bytes
        self._lam: list | None = None
        self._counted = 0

    def entries(self, tensor: str, twin: "tuple[Scan, Kept] | None" = None) -> "ScanEntries | None":
        """evaluate_entries of F for one parameter; ``twin``: (the scan against other weights, a
        memo) whose value of every probe is kept too, read from the same copies."""
        if tensor not in self.steps.layer.params:
            return None
        unit = self.steps.units(tensor, self.rng)
        return None if unit is None else ScanEntries(self, tensor, unit, twin)

    def against(self, weights: np.ndarray, f0: float) -> "Scan":
        """The same steps contracted with other weights of the layer's output (shaped like it)."""
        sequences = weights.ndim == 3
        return Scan(self.steps, _per_step(weights, self.steps.T, sequences), f0, self.eps, self.rng,
                    self.max_bytes)

    def uncounted(self) -> int:
        """Steps run and not yet counted by an entries, in layer-sized copies (T steps each)."""
        calls = self.steps.calls - self._counted
        self._counted = self.steps.calls
        return -(-calls // self.steps.T)

    @property
    def lam(self) -> list[tuple[np.ndarray, ...]]:
        """λ_t for t = 1 … T (the state after step t), from the last step down."""
        if self._lam is None:
            states, T = self.steps.states, self.steps.T
            zeros = [np.zeros_like(p) for p in states[0][1:]]
            lam: list = [None] * T
            lam[T - 1] = (self.weights[T - 1], *zeros)
            for t in range(T - 1, 0, -1):
                d = self._state_gradient(t, lam[t])
                lam[t - 1] = (self.weights[t - 1] + d[0], *d[1:])
            self._lam = lam
        return self._lam

    def cells(self, tensor: str, stack: np.ndarray, *others: "Scan") -> list[np.ndarray]:
        """Σ_t F_t per hidden unit, for each copy in a stack of θ: (B, H); one array for this
        scan and one for each of ``others`` (other weights), from the same steps."""
        lams = [self.lam] + [o.lam for o in others]
        before = self.steps.calls
        totals: list = [0.0] * len(lams)
        # rows of one merged call: its temporaries (about ROW_NUMBERS·H numbers a row) within the budget
        rows = max(1, self.max_bytes // (8 * ROW_NUMBERS * self.steps.hidden() * max(1, stack.shape[0])))
        for t, new in enumerate(self.steps.with_param_steps(tensor, stack, rows)):
            for k, lam in enumerate(lams):
                totals[k] = totals[k] + sum((part * w).sum(axis=-2) for part, w in zip(new, lam[t]))
        self._counted += self.steps.calls - before  # counted as copies by grouped_entries
        return [np.asarray(total) for total in totals]

    def copy_bytes(self, tensor: str) -> int:
        """Bytes one copy of ``tensor`` holds in ``cells``: the copy, and for each example a
        row of a step's temporaries (the whole sequence is never held per copy)."""
        m = self.steps.states[0][0].shape[0]
        return 8 * (int(np.size(self.steps.layer.params[tensor])) + ROW_NUMBERS * self.steps.hidden() * m)

    @property
    def adjoints_known(self) -> bool:
        return self._lam is not None

    def adjoint_bytes(self) -> int:
        """Bytes the differencing of λ holds at once (_state_gradient): a block of copies of
        the state, each with a step's temporaries for every example."""
        P, (m, H) = len(self.steps.states[0]), self.steps.states[0][0].shape
        n = min(self._block(P, m, H), P * H)
        return 2 * n * 8 * (P * m * H + ROW_NUMBERS * H * m)

    def _block(self, P: int, m: int, H: int) -> int:
        # state entries a block differences: their copies and the step's temporaries for them
        # (about ROW_NUMBERS·H numbers per example) within the memory budget
        return max(1, self.max_bytes // (2 * 8 * ROW_NUMBERS * H * m))

    def _state_gradient(self, t: int, lam: tuple) -> tuple[np.ndarray, ...]:
        """∂⟨step(θ, x_t, s), λ⟩/∂s at the clean s_t (0-based step t) by central differences,
        every example in one copy (a step keeps examples apart): one copy per (state part,
        unit) and sign."""
        base = np.stack(self.steps.states[t])                        # (P, m, H)
        P, m, H = base.shape
        grad = np.zeros_like(base)
        block = self._block(P, m, H)
        for start in range(0, P * H, block):
            part, unit = np.divmod(np.arange(start, min(P * H, start + block)), H)
            h = self.eps * np.maximum(1.0, np.abs(base[part, :, unit]))  # (n, m)
            up, down = base[part, :, unit] + h, base[part, :, unit] - h
            n = np.arange(part.size)
            stack = np.repeat(base[None], 2 * part.size, axis=0)         # (2n, P, m, H)
            stack[n, part, :, unit] = up
            stack[part.size + n, part, :, unit] = down
            new = self.steps.with_state(t, tuple(stack[:, p] for p in range(P)))
            f = sum((s * w).sum(axis=-1) for s, w in zip(new, lam))      # (2n, m)
            grad[part, :, unit] = (f[:part.size] - f[part.size:]) / (up - down)
        return tuple(grad)


class ScanEntries:
    """evaluate_entries of F for one parameter: grouped_entries over its cells (the hidden
    units), built on the first call; ``copies`` counts layer-sized copies (T steps each), the
    measuring and λ's included where this parameter was the first to need them."""

    def __init__(self, scan: Scan, tensor: str, unit: np.ndarray,
                 twin: "tuple[Scan, Kept] | None" = None) -> None:
        self.scan, self.tensor, self.twin = scan, tensor, twin
        theta = scan.steps.layer.params[tensor]
        cols = theta.shape[-1]
        # a column's rank among the columns that reach its unit (its gate, for a built-in)
        order = np.argsort(unit, kind="stable")
        rank = np.empty(cols, dtype=np.intp)
        rank[order] = np.arange(cols) - np.searchsorted(unit[order], unit[order], side="left")
        index = np.arange(theta.size)
        self.cell = unit[index % cols]
        # the entries of one colour reach distinct units
        self.color = index // cols * (int(rank.max()) + 1) + rank[index % cols]
        self.share = int(np.bincount(self.color).max())
        self.max_copies: int | None = None
        #: bytes the last call held beyond its copies, by the memory model: λ's differencing,
        #: in the call that needed λ first
        self.extra_bytes = 0
        self._inner: grouped_entries | None = None
        self._own = 0

    def copy_bytes(self) -> int:
        return self.scan.copy_bytes(self.tensor)

    @property
    def copies(self) -> int:
        return self._own + (self._inner.copies if self._inner is not None else 0)

    def schedule(self, idx: np.ndarray) -> np.ndarray:
        return np.argsort(self.color[np.asarray(idx, dtype=np.intp)], kind="stable")

    def __call__(self, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        self.extra_bytes = 0
        if self._inner is None:
            if not self.scan.adjoints_known:
                self.extra_bytes = self.scan.adjoint_bytes()
            theta = np.asarray(self.scan.steps.layer.params[self.tensor])
            others = () if self.twin is None else (self.twin[0],)
            clean = [c[0] for c in self.scan.cells(self.tensor, theta[None], *others)]
            self._own += 1 + self.scan.uncounted()
            if self.twin is None:
                self._inner = grouped_entries(theta, self.cell, self.color,
                                              lambda stack: self.scan.cells(self.tensor, stack)[0],
                                              clean[0], self.scan.f0)
            else:
                twin = Twin(None, clean[1], self.twin[0].f0, self.twin[1])
                self._inner = grouped_entries(theta, self.cell, self.color,
                                              lambda stack: tuple(self.scan.cells(self.tensor, stack, *others)),
                                              clean[0], self.scan.f0, twin)
        self._inner.max_copies = self.max_copies
        return self._inner(idx, values)
