"""One step of a recurrent layer, run on stacks of perturbed copies, and what the step-by-step
differences (recurrence.py) need to know of it: which hidden unit each column of a parameter
reaches within one step.

A layer offers its step as ``forward_step(x_t, state) -> (next state, cache)`` (a state is a
tuple of (m, H) arrays, h first), with ``initial_state(m)``, the state before the first step. For a built-in rnn, lstm or gru the unit of column
j is j mod H (gate j // H of that unit) and its step broadcasts over stacks of copies, by
construction. A plugin's step is held to what is measured on its real arrays: its trajectory
reproduces its forward, a step keeps examples apart (copies of the state then run as one batch
along the example axis), and each column of a parameter, moved as a whole both ways at two
steps, changes exactly one unit, the same at both. Its parameter copies run one call each, with
every step in it: the T steps' inputs and clean states stacked along the example axis (m·T rows),
where one such call is verified to reproduce the trajectory. A plugin's step on a few examples
costs tens of microseconds, mostly Python around small products, so T calls cost about T times
one call of T times the rows.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from .evaluators import with_params
from .structure import separating_sets

#: how far a scan may be from the forward that was run, relative to the output's size (the
#: rounding of products taken in another order)
REPRODUCES = 1e-12


def builtin_step(layer: Any) -> bool:
    """Whether the layer's step is a built-in one (a subclass may change its backward only)."""
    return all(getattr(getattr(type(layer), name, None), "__module__", "").startswith("gradcheck_cli.layers.")
               for name in ("initial_state", "forward_step", "step", "forward"))


class Steps:
    """A layer's step at the clean point (``states``: s_0 … s_T), on copies of a parameter or of
    the state; ``calls`` counts the steps run, a copy each."""

    def __init__(self, layer: Any, x: np.ndarray, builtin: bool) -> None:
        self.layer, self.x, self.builtin, self.calls = layer, x, builtin, 0
        # a plugin's step gets its own copies of its state and input where it writes into them
        # (seen while the trajectory is run, on the very inputs its later calls get), so that it
        # cannot move the clean trajectory every later step starts from
        self.protect, self._wrote = not builtin, False
        self.states = [_parts(layer.initial_state(x.shape[0]))]
        writes = False
        for t in range(x.shape[1]):
            xt, state = x[:, t], self.states[-1]
            self.states.append(self._call(layer, xt, state))
            writes = writes or self._wrote
        self.protect = self.protect and writes
        self.merges = False

    @classmethod
    def of(cls, layer: Any, x: np.ndarray, out: np.ndarray) -> "Steps | None":
        """The steps, or None where the layer offers none, fails, or does not reproduce ``out``."""
        if not callable(getattr(layer, "forward_step", None)) or not callable(getattr(layer, "initial_state", None)):
            return None
        builtin = builtin_step(layer)
        try:
            with np.errstate(all="ignore"):
                steps = cls(layer, x, builtin)
                h = np.stack([s[0] for s in steps.states[1:]], axis=1)
                if out.ndim == 2:
                    h = h[:, -1]
                if not _reproduces(h, out):
                    return None
                if not builtin and not steps._keeps_examples_apart():
                    return None
                steps.merges = not builtin and steps._merged_reproduces()
        except (Exception, SystemExit):  # a plugin's step that cannot run is not used
            return None
        return steps

    @property
    def T(self) -> int:
        return self.x.shape[1]

    def hidden(self) -> int:
        return self.states[0][0].shape[-1]

    def with_param(self, tensor: str, stack: np.ndarray, t: int) -> tuple[np.ndarray, ...]:
        """Step t (0-based) from the clean state s_t with a stack (B, *θ.shape) of copies of a
        parameter: the new state parts, (B, m, H) each."""
        xt, state = self.x[:, t], self.states[t]
        if self.builtin:
            return tuple(np.broadcast_to(p, (stack.shape[0], *p.shape[-2:]))
                         for p in self._call(with_params(self.layer, {tensor: stack}), xt, state,
                                             stack.shape[0]))
        new = self._each_copy(tensor, stack, xt, state, 1)
        return tuple(np.stack([n[k] for n in new]) for k in range(len(state)))

    def _each_copy(self, tensor: str, stack: np.ndarray, xt: np.ndarray, state: tuple,
                   steps: int) -> list[tuple[np.ndarray, ...]]:
        """A plugin's step (or ``steps`` merged steps) once per copy of the parameter in the
        stack: one shallow copy of the layer whose parameters are swapped per copy, since a
        plugin's step costs microseconds and copying the layer for each would add a third."""
        layer, new = with_params(self.layer, {}), []
        for c in stack:
            layer.params = {**self.layer.params, tensor: c}
            new.append(self._call(layer, xt, state, steps))
        return new

    def with_param_steps(self, tensor: str, stack: np.ndarray, max_rows: int
                         ) -> Iterator[tuple[np.ndarray, ...]]:
        """Every step t = 0 … T−1 in order, each from its clean state s_t, with a stack of
        copies of a parameter: per step, the new state parts (B, m, H). A plugin whose merged
        step is verified runs its steps in blocks of at most ``max_rows`` rows, a call per copy."""
        if not self.merges:
            yield from (self.with_param(tensor, stack, t) for t in range(self.T))
            return
        m = self.x.shape[0]
        per = max(1, min(self.T, max_rows // max(1, m)))
        for start in range(0, self.T, per):
            ts = range(start, min(self.T, start + per))
            xs, state = self._merged(ts)
            new = self._each_copy(tensor, stack, xs, state, len(ts))
            for i in range(len(ts)):
                yield tuple(np.stack([n[k][i * m:(i + 1) * m] for n in new]) for k in range(len(state)))

    def _merged(self, ts: range) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """The inputs and clean states of steps ``ts`` stacked along the example axis."""
        xs = np.concatenate([self.x[:, t] for t in ts])
        parts = len(self.states[0])
        return xs, tuple(np.concatenate([self.states[t][k] for t in ts]) for k in range(parts))

    def _merged_reproduces(self) -> bool:
        """Whether one call on every step's input and clean state, stacked along the example
        axis, gives every step's next state (to the rounding of products of another size)."""
        if self.T < 2:
            return False
        xs, state = self._merged(range(self.T))
        new = self._call(self.layer, xs, state, self.T)
        want = tuple(np.concatenate([s[k] for s in self.states[1:]]) for k in range(len(state)))
        return len(new) == len(want) and all(_reproduces(a, b) for a, b in zip(new, want))

    def with_state(self, t: int, stack: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """Step t from copies of the state (parts (B, m, H)): the new parts, (B, m, H) each."""
        xt = self.x[:, t]
        if self.builtin:
            return self._call(self.layer, xt, stack, stack[0].shape[0])
        # examples are verified to stay apart: the copies run as one batch of B·m examples
        B, m = stack[0].shape[:2]
        merged = tuple(p.reshape(B * m, -1) for p in stack)
        new = self._call(self.layer, np.tile(xt, (B,) + (1,) * (xt.ndim - 1)), merged, B)
        return tuple(p.reshape(B, m, -1) for p in new)

    def units(self, tensor: str, rng: np.random.Generator) -> np.ndarray | None:
        """The hidden unit that each column (last axis) of a parameter reaches within one step,
        or None where no layout of the gates is verified: gates side by side (column j reaches
        unit j mod H, as the built-ins and cs231n lay them out) or unit by unit (j // gates)."""
        theta = np.asarray(self.layer.params[tensor], dtype=np.float64)
        H, cols = self.hidden(), theta.shape[-1]
        if cols % H:
            return None
        if self.builtin:
            return np.arange(cols) % H
        if self.T < 2:
            return None
        for unit in (np.arange(cols) % H, np.arange(cols) // (cols // H)):
            if all(self._reaches_only(tensor, theta, unit, t, rng) for t in (self.T // 2, self.T - 1)):
                return unit
        return None

    def _reaches_only(self, tensor: str, theta: np.ndarray, unit: np.ndarray, t: int,
                      rng: np.random.Generator) -> bool:
        """Whether, at step t, every column reaches no unit but ``unit[column]``. For each of the
        unit sets that split every pair of units (structure.separating_sets), the columns whose
        unit is in the set are moved together: a change outside the set's units refutes it.
        Columns that pass every set reach only their own unit, with 2 × 7 copies for 32 units
        where one column at a time would take 2·columns. Moves are random and taken both ways,
        so a change does not cancel and a tie shows (see footprint.py)."""
        H = self.hidden()
        # a single unit: one set of every column, which can only show that the layer runs
        allowed = separating_sets(H) if H > 1 else np.ones((1, H), dtype=bool)   # (sets, H)
        sets = allowed[:, unit]                                      # (sets, cols)
        scale = 0.1 * max(1.0, float(np.abs(theta).max(initial=0.0)))
        mask = sets.reshape((len(sets),) + (1,) * (theta.ndim - 1) + (theta.shape[-1],))
        delta = scale * rng.standard_normal((len(sets),) + theta.shape) * mask
        try:
            with np.errstate(all="ignore"):
                new = self.with_param(tensor, np.concatenate([theta + delta, theta - delta]), t)
        except (Exception, SystemExit):
            return False
        moved = np.zeros((2 * len(sets), H), dtype=bool)
        for part, clean in zip(new, self.states[t + 1]):
            moved |= ~((part == clean[None]) | (np.isnan(part) & np.isnan(clean[None]))).all(axis=1)
        moved = moved[:len(sets)] | moved[len(sets):]
        return not (moved & ~allowed).any()

    def _keeps_examples_apart(self) -> bool:
        """A step moved in example 0 only (its state and input) leaves every other example's new
        state bit-identical, at a step with a live state."""
        m = self.x.shape[0]
        if m < 2:
            return True
        t = self.T // 2
        state = tuple(p.copy() for p in self.states[t])
        xt = self.x[:, t].copy()
        for p in state:
            p[0] += 0.1 * max(1.0, float(np.abs(p).max(initial=0.0)))
        xt[0] += 0.1 * max(1.0, float(np.abs(xt).max(initial=0.0)))
        moved = self._call(self.layer, xt, state)
        clean = self.states[t + 1]
        return all(np.array_equal(a[1:], b[1:]) for a, b in zip(moved, clean))

    def _call(self, layer: Any, xt: np.ndarray, state: tuple, copies: int = 1) -> tuple[np.ndarray, ...]:
        self.calls += copies
        if not self.protect:
            return _parts(layer.forward_step(xt, state)[0])
        mine, own = xt.copy(), tuple(np.array(p, copy=True) for p in state)
        new = _parts(layer.forward_step(mine, own)[0])
        self._wrote = not np.array_equal(mine, xt) or not all(np.array_equal(a, b) for a, b in zip(own, state))
        return new


def _reproduces(got: np.ndarray, want: np.ndarray) -> bool:
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    return got.shape == want.shape and np.allclose(got, want, rtol=REPRODUCES, atol=REPRODUCES * scale)


def _parts(state: Any) -> tuple[np.ndarray, ...]:
    """A state as a tuple of float arrays (a plugin's one-part state may be a bare array)."""
    parts = state if isinstance(state, tuple) else (state,)
    if all(type(p) is np.ndarray for p in parts):
        return parts
    return tuple(np.asarray(p) for p in parts)
