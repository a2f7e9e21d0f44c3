"""Exact shortcuts for perturbing one entry of a dense layer's parameters.

Changing W[p, q] (or b[q]) of a dense layer changes one feature column of its output:
z'[:, q] = z[:, q] + δ·x[:, p], an O(m) update instead of a matrix product. An elementwise
activation keeps that change in one column; the next dense layer turns it into a rank-1 update
of its output, (Δ column) ⊗ W[q, :]. Only from there on do the perturbed copies run as one
stacked forward (large matrix products). The arithmetic is the forward's own, reassociated,
so results agree with full recomputation to rounding.

Used only for built-in layers whose forward is the one these rules mirror.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..layers.activations import Elementwise, LeakyReLU, ReLU
from ..layers.dense import Dense
from .differences import EvaluateEntries
from .evaluators import probe_capable, run
from .served import is_ as _is, per_example


@dataclass
class Columns:
    """B copies of an activation, copy k differing from the clean one only in feature[k]."""

    base: np.ndarray      # clean activation: (m, n) in rows layout, (n, m) in columns
    feature: np.ndarray   # (B,) the feature that differs
    values: np.ndarray    # (B, m) its new values
    rows: bool

    def old(self) -> np.ndarray:
        return self.base[:, self.feature].T if self.rows else self.base[self.feature, :]

    def materialize(self) -> np.ndarray:
        dtype = np.result_type(self.base.dtype, self.values.dtype)
        stack = np.repeat(self.base[None].astype(dtype), len(self.feature), axis=0)
        k = np.arange(len(self.feature))
        if self.rows:
            stack[k, :, self.feature] = self.values
        else:
            stack[k, self.feature, :] = self.values
        return stack


@dataclass
class Rows:
    """B copies of an activation (rows layout) that differ from the clean one in a few examples:
    copy[i] has row sample[i] replaced by values[i]. Examples are independent through
    per-example layers, so only the changed rows need computing."""

    base: np.ndarray      # clean activation (m, n)
    copies: int           # B
    copy: np.ndarray      # (N,) which copy
    sample: np.ndarray    # (N,) which example of it
    values: np.ndarray    # (N, n) the new row

    def materialize(self) -> np.ndarray:
        dtype = np.result_type(self.base.dtype, self.values.dtype)
        stack = np.repeat(self.base[None].astype(dtype), self.copies, axis=0)
        stack[self.copy, self.sample, :] = self.values
        return stack

    def through(self, layer: Any, out: np.ndarray) -> "Rows":
        # a batch of N single rows: (N, n) -> (N, n_out)
        return Rows(out, self.copies, self.copy, self.sample, layer.forward(self.values)[0])


def _start_input(layer: Dense, x: np.ndarray, z: np.ndarray, idx: np.ndarray, values: np.ndarray,
                 contraction: np.ndarray | None):
    """Perturbing x[s, p] changes one example's output by δ·W[p, :] (a row in rows layout, a
    column in columns layout). With a contraction G the scalar ⟨z', G⟩ follows directly."""
    rows = layer.layout == "rows"
    W = layer.params["W"]
    delta = values - x.reshape(-1)[idx]
    a, b = np.unravel_index(idx, x.shape)
    s, p = (a, b) if rows else (b, a)
    w = W[p, :] if rows else W[:, p].T                         # (B, units)
    if contraction is not None:
        g = contraction[s, :] if rows else contraction[:, s].T
        return float((z * contraction).sum()) + delta * (w * g).sum(axis=1)
    if rows:
        return Rows(z, idx.size, np.arange(idx.size), s, z[s, :] + delta[:, None] * w)
    dtype = np.result_type(z.dtype, delta.dtype)
    stack = np.repeat(z[None].astype(dtype), idx.size, axis=0)
    stack[np.arange(idx.size), :, s] += delta[:, None] * w
    return stack


def _start(layer: Dense, x: np.ndarray, z: np.ndarray, tensor: str, idx: np.ndarray,
           values: np.ndarray) -> Columns:
    rows = layer.layout == "rows"
    param = layer.params[tensor]
    delta = values - param.reshape(-1)[idx]
    if tensor == "W":
        # rows: W is (n_in, units), entry (p, q); columns: W is (units, n_in), entry (q, p)
        a, b = np.unravel_index(idx, param.shape)
        p, q = (a, b) if rows else (b, a)
        source = x[:, p].T if rows else x[p, :]
        change = delta[:, None] * source
    else:
        q = np.unravel_index(idx, param.shape)[0]
        change = np.broadcast_to(delta[:, None], (idx.size, z.shape[0] if rows else z.shape[1]))
    cols = Columns(z, q, np.empty(0), rows)
    cols.values = cols.old() + change
    return cols


def _through(layer: Any, x: np.ndarray, out: np.ndarray, cols: Columns) -> Columns | np.ndarray | None:
    """The next layer's output for the copies: still one column, a dense stack, or None when
    no shortcut applies (the copies are then materialized and run through the layer itself)."""
    if _is(layer, Elementwise):
        with np.errstate(over="ignore"):
            return Columns(out, cols.feature, layer.f(cols.values), cols.rows)
    if _is(layer, Dense) and cols.rows and layer.layout == "rows":
        # rank-1 update of the examples whose column changed; after a relu most of the change is
        # exactly zero in about half of the examples, which then stay as they were
        change = cols.values - cols.old()                          # (B, m)
        copy, sample = np.nonzero(change)
        W = layer.params["W"]
        values = out[sample] + change[copy, sample][:, None] * W[cols.feature[copy], :]
        return Rows(out, len(cols.feature), copy, sample, values)
    if _is(layer, Dense) and layer.layout == ("rows" if cols.rows else "columns"):
        change = cols.values - cols.old()                          # (B, m)
        W = layer.params["W"]
        # one buffer, written once and updated in place: this step is memory-bound
        if cols.rows:                                              # out (m, units)
            a, b = change[:, :, None], W[cols.feature, :][:, None, :]
        else:
            a, b = W[:, cols.feature].T[:, :, None], change[:, None, :]
        stack = np.multiply(a, b, dtype=np.result_type(a, b, out))
        stack += out
        return stack
    return None


class PiecewiseLinear:
    """dense → relu (or leaky relu) → dense, for copies that differ in one input column.

    Column q of the first dense layer's input changes by c[s] in example s, so its output row
    changes by c[s]·W[q, :]. Where that moves no unit across the activation's kink, the
    activation is linear there, and the second dense layer's output row changes by exactly
    c[s]·P[s, q] with P[s, q] = (slope[s] ⊙ W[q, :])·W₂, computed once for all copies. The few
    (copy, example) pairs whose change could cross a kink are computed in full. Either way the
    copies' values are the forward's own, reassociated; the loss after them is evaluated as is.
    """

    def __init__(self, dense: Dense, act: Any, dense2: Dense, z: np.ndarray, out: np.ndarray) -> None:
        W, W2 = dense.params["W"], dense2.params["W"]
        self.dense, self.act, self.dense2, self.z, self.out = dense, act, dense2, z, out
        slope = act.df(z, act.f(z))                                    # (m, u)
        self.P = np.einsum("su,qu,uc->sqc", slope, W, W2, optimize=True)
        # |change| below this moves no unit of example s across 0 when column q changes
        with np.errstate(divide="ignore"):
            self.limit = 0.5 * (np.abs(z)[:, None, :] / np.abs(W)[None, :, :]).min(axis=2)

    @classmethod
    def match(cls, rest: list[Any], acts: list[np.ndarray], k: int) -> "PiecewiseLinear | None":
        if k + 2 >= len(rest):
            return None
        dense, act, dense2 = rest[k], rest[k + 1], rest[k + 2]
        if not (_is(dense, Dense) and _is(dense2, Dense) and type(act) in (ReLU, LeakyReLU)
                and dense.layout == dense2.layout == "rows" and act.layout == "rows"):
            return None
        return cls(dense, act, dense2, acts[k + 2], acts[k + 4])

    def apply(self, cols: Columns) -> Rows:
        change = cols.values - cols.old()                              # (B, m)
        copy, sample = np.nonzero(change)
        c, q = change[copy, sample], cols.feature[copy]
        values = np.empty((copy.size, self.out.shape[1]), dtype=np.result_type(c, self.out))
        safe = np.abs(c) < self.limit[sample, q]
        values[safe] = self.out[sample[safe]] + c[safe][:, None] * self.P[sample[safe], q[safe]]
        hard = ~safe
        if hard.any():
            z = self.z[sample[hard]] + c[hard][:, None] * self.dense.params["W"][q[hard], :]
            values[hard] = self.dense2.forward(self.act.forward(z)[0])[0]
        return Rows(self.out, len(cols.feature), copy, sample, values)


class PerExampleLoss:
    """A loss that is the mean over examples of a per-example term (a built-in loss declaring
    ``per_example = True``), in rows layout: copies that differ in a few examples change it by
    Σ (ℓ(new row) − ℓ(old row)) / m, so only those rows are evaluated, each as a batch of one."""

    def __init__(self, loss: Any, targets: Any, base: np.ndarray, value: float) -> None:
        self.loss, self.targets, self.value = loss, np.asarray(targets), value
        self.m = base.shape[0]
        self.old = self._terms(base, np.arange(self.m))

    @classmethod
    def of(cls, loss: Any, targets: Any, base: np.ndarray, value: float) -> "PerExampleLoss | None":
        if getattr(type(loss), "per_example", False) and loss.layout == "rows" and base.ndim == 2:
            return cls(loss, targets, base, value)
        return None

    def _terms(self, rows: np.ndarray, sample: np.ndarray) -> np.ndarray:
        # probe axis = the rows, batch of one: (N, 1, C) with targets (N, 1[, C])
        return np.asarray(self.loss.forward(rows[:, None], self.targets[sample][:, None])[0])

    def of_rows(self, rows: Rows) -> np.ndarray:
        change = self._terms(rows.values, rows.sample) - self.old[rows.sample]
        total = np.zeros(rows.copies, dtype=np.result_type(change, float))
        np.add.at(total, rows.copy, change)
        return self.value + total / self.m


def entries_evaluator(first: Dense, tensor: str, acts: list[np.ndarray], rest: list[Any],
                      tail: Callable[[np.ndarray], np.ndarray], tail_batched: bool,
                      contraction: np.ndarray | None = None,
                      loss: PerExampleLoss | None = None) -> EvaluateEntries:
    """evaluate_entries for ``tensor`` of a dense layer, followed by ``rest`` and ``tail``.

    ``acts`` holds the clean activations from the dense layer's input on. With ``contraction``
    G and no further layers, f = ⟨out, G⟩ is updated directly from the changed column.
    """
    x, z = acts[0], acts[1]
    if _is(first, Elementwise):
        assert contraction is not None and not rest
        f0 = float((z * contraction).sum())

        def elementwise(idx: np.ndarray, values: np.ndarray) -> np.ndarray:
            # one input entry changes one output entry: ⟨y', G⟩ = ⟨y, G⟩ + (f(v) − y_i)·G_i
            with np.errstate(over="ignore"):
                return f0 + (first.f(values) - z.reshape(-1)[idx]) * contraction.reshape(-1)[idx]

        return elementwise

    def evaluate(idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        if tensor == "x":
            start = _start_input(first, x, z, idx, values, contraction if not rest else None)
            if isinstance(start, np.ndarray) and start.ndim == 1:
                return start
            return _finish(start, 0)
        cols = _start(first, x, z, tensor, idx, values)
        if contraction is not None and not rest:
            g = contraction[:, cols.feature].T if cols.rows else contraction[cols.feature, :]
            f0 = float((z * contraction).sum())
            return f0 + ((cols.values - cols.old()) * g).sum(axis=1)
        current: Columns | Rows | np.ndarray = cols
        k = 0
        while k < len(rest) and isinstance(current, Columns):
            if k not in pieces:
                pieces[k] = PiecewiseLinear.match(rest, acts, k)
            if pieces[k] is not None and not np.iscomplexobj(current.values):
                return _finish(pieces[k].apply(current), k + 3)
            following = _through(rest[k], acts[k + 1], acts[k + 2], current)
            if following is None:
                break
            current = following
            k += 1
        return _finish(current, k)

    pieces: dict[int, PiecewiseLinear | None] = {}

    def _finish(current: Columns | Rows | np.ndarray, k: int) -> np.ndarray:
        """Carry changed rows through the per-example layers from rest[k] on, then run the
        remaining layers on the materialized copies and reduce each to its scalar."""
        while isinstance(current, Rows) and k < len(rest) and per_example(rest[k]):
            current = current.through(rest[k], acts[k + 2])
            k += 1
        if isinstance(current, Rows) and k == len(rest) and loss is not None:
            return loss.of_rows(current)
        stack = current if isinstance(current, np.ndarray) else current.materialize()
        remaining = rest[k:]
        # the stack is ours: a relu right after the rank-1 step can work in place
        while remaining and type(remaining[0]) is ReLU and not np.iscomplexobj(stack):
            np.maximum(stack, 0, out=stack)
            remaining = remaining[1:]
        if tail_batched and probe_capable(remaining):
            return np.asarray(tail(run(remaining, stack))).reshape(stack.shape[0])
        return np.array([np.asarray(tail(run(remaining, one))).reshape(()) for one in stack])

    return evaluate
