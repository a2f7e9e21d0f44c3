"""Perturbed copies through layers, as few and as large calls as each layer's verified structure
allows (structure.py): a stack in one call, one batch of concatenated copies, or one call per copy.

The evaluators here feed differences.py: ``copies_evaluator`` gives f of each copy in a stack, and
``grouped_entries`` perturbs many entries of θ in one copy when their effects land in disjoint
*cells* of the result (examples of a separable layer, entries of an elementwise one, windows of
a pooling layer) and reads each entry's f from its own cells. That is column grouping (Curtis,
Powell and Reid): entry k's f is f0 + Σ over its cells of (new − clean), which is what perturbing
entry k alone would give, because no other entry of the copy reaches those cells. Which cells
each entry reaches, layer by layer, is grouping.py's.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .differences import EvaluateStack
from .evaluators import with_params
from ..layers.registry import is_builtin
from .structure import Structure, narrowed, through, widened

#: per copy: (B, *out.shape) -> (B, n_cells) contributions of each cell to f
Cells = Callable[[np.ndarray], np.ndarray]


def perturbed(layer: Any, st: Structure, tensor: str, x: np.ndarray, stack: np.ndarray, layout: str,
              calls: Callable[[int], None] | None = None) -> np.ndarray:
    """The layer's output for each copy of ``tensor`` in the stack (its input when "x")."""
    if tensor == "x":
        return through(layer, st, stack, layout, calls)
    # a plugin's forward gets its own copy of the clean input, which it might write into
    fresh = (lambda: x) if is_builtin(type(layer)) else (lambda: x.copy())
    if tensor in st.stacks:
        out, n = with_params(layer, {tensor: stack}).forward(fresh())[0], 1
    elif tensor in st.widens:
        wide = with_params(layer, widened(layer, st.axes, tensor, stack)).forward(fresh())[0]
        out, n = narrowed(np.asarray(wide), stack.shape[0], st.axes_of(tensor)[1]), 1
    else:
        out = np.stack([np.asarray(with_params(layer, {tensor: c}).forward(fresh())[0]) for c in stack])
        n = stack.shape[0]
    if calls is not None:
        calls(n)
    return np.asarray(out)


def copies_evaluator(layers: list[Any], structures: list[Structure], tensor: str, x: np.ndarray,
                     layout: str, tail: Callable[[np.ndarray], np.ndarray],
                     tail_batched: bool, counters: list[Callable[[int], None]] | None = None) -> EvaluateStack:
    """f(stack): perturb ``tensor`` of layers[0] to each copy, run the other layers, reduce each
    copy with ``tail`` (one call for all copies when ``tail_batched``)."""

    def evaluate(stack: np.ndarray) -> np.ndarray:
        counter = (counters or [None] * len(layers))
        out = perturbed(layers[0], structures[0], tensor, x, stack, layout, counter[0])
        for layer, st, c in zip(layers[1:], structures[1:], counter[1:]):
            out = through(layer, st, out, layout, c)
        if tail_batched:
            return np.asarray(tail(out)).reshape(stack.shape[0])
        return np.array([np.asarray(tail(one)).reshape(()) for one in out])

    return evaluate


def cells_evaluator(layers: list[Any], structures: list[Structure], x: np.ndarray, layout: str,
                    cells: Cells, counters: list[Callable[[int], None]] | None = None) -> Cells:
    """Per-cell contributions of each copy of the input x of layers[0], run through all layers."""

    def evaluate(stack: np.ndarray) -> np.ndarray:
        out = stack
        for layer, st, c in zip(layers, structures, counters or [None] * len(layers)):
            out = through(layer, st, out, layout, c)
        return cells(out)

    return evaluate


class grouped_entries:
    """evaluate_entries from copies that each perturb several entries at once.

    ``cell[k]`` is the cell entry k reaches (−1: none, f does not depend on it); entries of one
    ``color`` reach distinct cells, so they may share a copy. Probes of the same entry (its +h
    and −h) always go to different copies. ``copies`` counts the copies evaluated."""

    def __init__(self, theta: np.ndarray, cell: np.ndarray, color: np.ndarray, evaluate_cells: Cells,
                 clean_cells: np.ndarray, f0: float, twin: "Twin | None" = None) -> None:
        self.shape = np.shape(theta)
        self.flat = np.asarray(theta).reshape(-1)
        self.cell = np.asarray(cell).reshape(-1)
        self.color = np.asarray(color).reshape(-1)
        self.evaluate_cells, self.clean_cells, self.f0 = evaluate_cells, clean_cells, f0
        #: with a twin, evaluate_cells gives (cells, the twin's cells) of the same copies, and each
        #: probe's twin value is kept in twin.memo (factored.recalled reads it)
        self.twin = twin
        self.copies = 0
        #: copies run through the layers at once, at most: a batch sized for probes that share
        #: copies must fit the memory budget even where its probes could not share (None: any)
        self.max_copies: int | None = None

    def schedule(self, idx: np.ndarray) -> np.ndarray:
        """The order in which to probe ``idx`` (positions into it): colour by colour, so that a
        batch of probes holds whole colours, whose entries share copies. In index order a batch
        would hold one example's entries (rows layout), which share nothing."""
        return np.argsort(self.color[np.asarray(idx, dtype=np.intp)], kind="stable")

    def __call__(self, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.intp)
        values = np.asarray(values)
        out = np.full(idx.size, self.f0, dtype=np.result_type(values, np.float64))
        live = np.nonzero(self.cell[idx] >= 0)[0]
        if live.size == 0:
            return out
        # the n-th probe of an entry goes to the n-th copy of its colour
        order = live[np.argsort(idx[live], kind="stable")]
        sorted_idx = idx[order]
        rank = np.arange(live.size) - np.searchsorted(sorted_idx, sorted_idx, side="left")
        keys = self.color[sorted_idx] * (int(rank.max()) + 1) + rank
        slots, copy = np.unique(keys, return_inverse=True)
        dtype = np.result_type(self.flat.dtype, values.dtype, np.float64)
        cap = slots.size if self.max_copies is None else max(1, self.max_copies)
        if slots.size <= cap:
            stack = np.repeat(self.flat.astype(dtype)[None], slots.size, axis=0)
            stack[copy, sorted_idx] = values[order]
            got = self._cells(stack.reshape((slots.size,) + self.shape), order, sorted_idx, values, copy,
                              np.arange(live.size))
        else:
            # the copies in blocks of ``cap``, each built only when it is evaluated
            parts, by_copy = [], np.argsort(copy, kind="stable")
            bounds = np.searchsorted(copy[by_copy], np.arange(0, slots.size + cap, cap))
            for k, start in enumerate(range(0, slots.size, cap)):
                n = min(cap, slots.size - start)
                mine = by_copy[bounds[k]:bounds[k + 1]]
                stack = np.repeat(self.flat.astype(dtype)[None], n, axis=0)
                stack[copy[mine] - start, sorted_idx[mine]] = values[order[mine]]
                parts.append(self._cells(stack.reshape((n,) + self.shape), order, sorted_idx, values,
                                         copy - start, mine))
            got = np.concatenate(parts)
        self.copies += slots.size
        c = self.cell[sorted_idx]
        out[order] = self.f0 + (got[copy, c] - self.clean_cells[c])
        return out

    def _cells(self, stack: np.ndarray, order, sorted_idx, values, copy, mine) -> np.ndarray:
        """The cells of a block of copies; with a twin, its values for the probes ``mine`` of the
        block (whose copies are ``copy[mine]``) go into its memo."""
        if self.twin is None:
            return self.evaluate_cells(stack)
        got, twin_got = self.evaluate_cells(stack)
        t, c = self.twin, self.cell[sorted_idx[mine]]
        f = t.f0 + (twin_got[copy[mine], c] - t.clean_cells[c])
        t.memo.keep(sorted_idx[mine], np.asarray(values)[order[mine]], np.asarray(f).real)
        return got


class Twin:
    """A second set of weights read from the same copies (the chained g of the layer's output,
    or its isolated G), its clean cells and f0, and the values kept per probe."""

    def __init__(self, cells: Cells | None, clean_cells: np.ndarray, f0: float, memo: "Kept") -> None:
        self.cells, self.clean_cells, self.f0, self.memo = cells, clean_cells, f0, memo


class Kept:
    """What one check's copies of θ gave against another check's weights, for that check to
    recall (factored.recalled; state.Memo.twins says which): per entry, the value last taken
    above θ and the one below, and f at each. Dense arrays, 32 bytes an entry: a dict keyed by (entry, value)
    took about 240 bytes a probe, tens of megabytes for a recurrent layer's weights, which the
    memory estimate does not see. A value kept in neither slot (Richardson's inner steps, a
    refinement) is simply evaluated again."""

    def __init__(self, theta: np.ndarray) -> None:
        self.theta = np.asarray(theta, dtype=np.float64).reshape(-1)
        self.values = np.full((2, self.theta.size), np.nan)
        self.f = np.zeros((2, self.theta.size))
        self.count = 0

    def __bool__(self) -> bool:
        return self.count > 0

    def _slot(self, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        # factored rows exist for real steps only (central, Richardson): see factored._factoring
        assert not np.iscomplexobj(values)
        return np.where(values > self.theta[idx], 0, 1)

    def keep(self, idx: np.ndarray, values: np.ndarray, f: np.ndarray) -> None:
        idx, values = np.asarray(idx, dtype=np.intp), np.asarray(values)
        slot = self._slot(idx, values)
        self.values[slot, idx] = values
        self.f[slot, idx] = f
        self.count += idx.size

    def lookup(self, idx: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(kept?, f) of each probe (entry idx[k] set to values[k])."""
        idx, values = np.asarray(idx, dtype=np.intp), np.asarray(values)
        slot = self._slot(idx, values)
        return self.values[slot, idx] == values, self.f[slot, idx]
