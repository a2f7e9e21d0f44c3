"""Which outputs each input entry of a layer can reach, measured on the real arrays: footprint
boxes, so that the user's own convolution or pooling layer shares perturbed copies the way a
built-in's known windows do (column grouping, Curtis–Powell–Reid).

For every axis a of the input and every index q along it, the whole slice q is perturbed at once
(every other index with it, once by δ and once by −δ) and the check records, for every output
axis b, which indices along b changed: P_a[q, b]. An output that stays bit-identical while a
whole slice holding entry e moves does not depend on e. δ is large: entry by entry, a random
sign and a size between DELTA and 2·DELTA times the input's largest entry, so that a move toward
a threshold anywhere in the input's range crosses it, and of random sizes, so that the moves of a
slice's entries do not cancel in a sum. What depends on e then changes in at least one of the two
directions: a window's maximum once an entry of the slice is pushed past it, a dead relu once
pushed up, a saturated unit off its plateau on one side; an overflow is a change too. Both
directions, because a slice measured on one example stands for every example, where a unit dead
in that one may be alive (a normal draw of size would leave an entry short of relu's 0 in up to
0.8% of draws, and the layer's dependence on it unseen). Each P_a[q, b] is an "any" over every
other axis of the output. A change too large only makes a box larger, which shares less; a box
too small is what would mislead, and is what this guards against.

Where the layer keeps examples apart (verified before: separable), a copy carries a different
slice in each example, and each example's outputs are read for its own slice: m slices a copy
instead of one, a slice measured on the outputs of one example, which hold every index along
the other output axes. Entry e = (e_0, e_1, ...) then reaches only the box

    B(e) = ∏_b ∩_a P_a[e_a, b],

and two entries whose boxes are disjoint may share a copy: each is read back from its own box.
Per axis, indices q and q' may share when for some output axis b their P_a rows are disjoint; an
entry's colour is the tuple of its axes' colours, so two distinct entries of one colour differ,
on some axis, in two indices that share, and their boxes are disjoint. A 3×3 convolution with
padding 1 gets C·3·3 colours with every example sharing (what its built-in twin gets), a 2×2
max-pool 4, a flatten 1.

Each grouped evaluation also checks what it can of what the boxes promise: an output outside
every perturbed entry's box must not change (``LeakError`` otherwise, and the caller falls back
to copies that share less). A change inside another perturbed entry's box cannot be told apart
from that entry's own; there the measurement is what the grouping rests on, which is why every
P_a row is an "any" over the whole rest of the output (of one example, where examples are apart)
and δ is large.

Pure: nothing here calls a layer; the caller passes a function that runs a stack of inputs.
"""
from __future__ import annotations

import functools
import string
from dataclasses import dataclass
from typing import Callable

import numpy as np

#: axes longer than this are not measured: their indices keep colours of their own
MAX_AXIS = 512
#: entries of one output axis's joint reach matrix (_by_output) kept as a matrix product
MAX_JOINT = 1 << 22
#: the least size of an entry's move, relative to the input's largest entry (at least 1)
DELTA = 100.0
#: bytes of perturbed inputs run through the layer at once while measuring
BLOCK_BYTES = 32 * 2**20


class LeakError(Exception):
    """An output outside every perturbed entry's footprint box changed."""


@dataclass(frozen=True, eq=False)
class Footprint:
    """The measured boxes of one layer's input (see the module docstring)."""

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    #: (input axis, output axis, 0/1 matrix (n_a, n_b)): the pairs whose P_a is not all ones
    tied: tuple[tuple[int, int, np.ndarray], ...]
    color: np.ndarray                 # the colour of every input entry, flat
    colors: int

    @functools.cached_property
    def _by_output(self) -> list[tuple[int, tuple[int, ...], np.ndarray | None, np.ndarray | None]] | None:
        """Per tied output axis b (in order): the input axes A_b tied to it and the 0/1 matrix
        (∏ n_a, n_b) of their joint reach, in float64 and in float32 (None for the identity: the
        batch axis of examples kept apart), where every input axis is tied to one output axis at
        most and the matrices are small; None otherwise (one einsum then does it all). Each
        contraction is then a matrix product: a flatten's three input axes, all tied to its one
        output axis, cost an einsum of copies × n_in × n_out terms outside any BLAS."""
        inputs = [a for a, _, _ in self.tied]
        if len(set(inputs)) != len(inputs):
            return None
        groups = []
        for b in sorted({b for _, b, _ in self.tied}):
            pairs = [(a, m) for a, bb, m in self.tied if bb == b]
            joint = np.ones((1, self.out_shape[b]))
            for _, m in pairs:
                joint = (joint[:, None, :] * m[None, :, :]).reshape(-1, self.out_shape[b])
                if joint.size > MAX_JOINT:
                    return None
            if joint.shape[0] == joint.shape[1] and np.array_equal(joint, np.eye(joint.shape[0])):
                groups.append((b, tuple(a for a, _ in pairs), None, None))
            else:
                groups.append((b, tuple(a for a, _ in pairs), joint, joint.astype(np.float32)))
        return groups

    def cells(self, change: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """(C, *out_shape) changes and the output's weight (out_shape) -> (C, n_in): for every
        input entry, the weighted change summed over its box (exact for the one perturbed entry
        of its colour in each copy)."""
        groups = self._by_output
        if groups is not None:
            return self._cells_by_output(change, weight, groups)
        letters = iter(string.ascii_letters)
        copy = next(letters)
        outs = [next(letters) for _ in self.out_shape]
        ins = [next(letters) for _ in self.in_shape]
        operands, subs = [change, weight], [copy + "".join(outs), "".join(outs)]
        for a, b, m in self.tied:
            operands.append(m)
            subs.append(ins[a] + outs[b])
        kept = sorted({a for a, _, _ in self.tied})
        spec = ",".join(subs) + "->" + copy + "".join(ins[a] for a in kept)
        got = np.einsum(spec, *operands, optimize=True)
        shape = [change.shape[0]] + [n if a in kept else 1 for a, n in enumerate(self.in_shape)]
        full = np.broadcast_to(got.reshape(shape), (change.shape[0], *self.in_shape))
        return full.reshape(change.shape[0], -1)

    def _cells_by_output(self, change: np.ndarray, weight: np.ndarray, groups: list) -> np.ndarray:
        C = change.shape[0]
        tied_out = [b for b, _, _, _ in groups]
        nd = len(self.out_shape)
        # the weighted change summed over the untied output axes in one pass, with no product
        # of the two in memory
        got = np.einsum(change, [0, *range(1, nd + 1)], weight, list(range(1, nd + 1)),
                        [0, *(1 + b for b in tied_out)])
        for i, (_, _, joint, _) in enumerate(groups):  # output axis b becomes its input group
            got = _along(got, 1 + i, None if joint is None else joint.T)
        order = [a for _, axes, _, _ in groups for a in axes]
        got = got.reshape([C] + [self.in_shape[a] for a in order])
        kept = sorted(order)
        got = got.transpose([0] + [1 + order.index(a) for a in kept])
        shape = [C] + [n if a in kept else 1 for a, n in enumerate(self.in_shape)]
        return np.broadcast_to(got.reshape(shape), (C, *self.in_shape)).reshape(C, -1)

    def covered(self, perturbed: np.ndarray) -> np.ndarray:
        """(C, *in_shape) perturbed entries (booleans, or 0/1) -> booleans that broadcast to
        (C, *out_shape) (an axis no box ties has length 1): whether each output lies in the box
        of some perturbed entry of its copy."""
        groups = self._by_output
        if groups is not None:
            return self._covered_by_output(perturbed, groups)
        letters = iter(string.ascii_letters)
        copy = next(letters)
        outs = [next(letters) for _ in self.out_shape]
        ins = [next(letters) for _ in self.in_shape]
        kept = sorted({a for a, _, _ in self.tied})
        reduced = perturbed.any(axis=tuple(1 + a for a in range(len(self.in_shape)) if a not in kept))
        reduced = reduced.astype(np.float64)
        operands, subs = [reduced], [copy + "".join(ins[a] for a in kept)]
        for a, b, m in self.tied:
            operands.append(m)
            subs.append(ins[a] + outs[b])
        tied_out = sorted({b for _, b, _ in self.tied})
        spec = ",".join(subs) + "->" + copy + "".join(outs[b] for b in tied_out)
        got = np.einsum(spec, *operands, optimize=True) > 0
        shape = [perturbed.shape[0]] + [n if b in tied_out else 1 for b, n in enumerate(self.out_shape)]
        return got.reshape(shape)


    def _covered_by_output(self, perturbed: np.ndarray, groups: list) -> np.ndarray:
        C = perturbed.shape[0]
        order = [a for _, axes, _, _ in groups for a in axes]
        got = perturbed.any(axis=tuple(1 + a for a in range(len(self.in_shape)) if a not in order))
        # float32 counts: a sum of non-negative terms is > 0 exactly when one of them is
        got = got.astype(np.float32)
        kept = sorted(order)
        got = got.transpose([0] + [1 + kept.index(a) for a in order])
        got = got.reshape([C] + [int(np.prod([self.in_shape[a] for a in axes])) for _, axes, _, _ in groups])
        for i, (_, _, _, joint) in enumerate(groups):  # input group i becomes output axis b
            got = _along(got, 1 + i, joint)
        tied_out = [b for b, _, _, _ in groups]
        shape = [C] + [n if b in tied_out else 1 for b, n in enumerate(self.out_shape)]
        return got.reshape(shape) > 0


def _along(got: np.ndarray, axis: int, M: np.ndarray | None) -> np.ndarray:
    """got with its axis ``axis`` (length n) contracted with M (n, k) into one of length k, in
    place of the old one: one matrix product, without moving axes (None: M is the identity)."""
    if M is None:
        return got
    before, n, after = got.shape[:axis], got.shape[axis], got.shape[axis + 1:]
    P, Q = int(np.prod(before)), int(np.prod(after))
    if Q == 1:
        out = got.reshape(P, n) @ M
    else:
        out = np.matmul(M.T, got.reshape(P, n, Q))
    return out.reshape(*before, M.shape[1], *after)


def measure(run: Callable[[np.ndarray], np.ndarray | None], x: np.ndarray, clean: np.ndarray,
            rng: np.random.Generator, batch: int | None = None,
            out_batch: int | None = None) -> Footprint | None:
    """The footprint of a layer at input ``x`` (output ``clean``); ``run`` maps a stack of
    inputs (B, *x.shape) to their outputs (B, *clean.shape), None when the layer failed. Each
    stack is made for that call alone: ``run`` may pass it to a layer that writes into its input.
    None when nothing was learnt beyond the examples: the batch axis ``batch`` (an axis whose
    examples stay apart, known already) is measured only when another axis is local too.
    ``out_batch``: the output's axis of those examples, so that a copy carries a slice in each
    example (the module docstring)."""
    if x.ndim == 0 or clean.ndim == 0:
        return None
    apart = None
    if batch is not None and out_batch is not None and x.shape[batch] > 1 \
            and clean.shape[out_batch] == x.shape[batch]:
        apart = (batch, out_batch)
    scale = max(1.0, float(np.abs(x).max(initial=0.0)))
    sign = np.where(rng.random(x.shape) < 0.5, -1.0, 1.0)
    delta = DELTA * scale * sign * (1.0 + rng.random(x.shape))
    tied: list[tuple[int, int, np.ndarray]] = []
    axis_colors: dict[int, np.ndarray] = {}
    order = [a for a in range(x.ndim) if a != batch] + ([batch] if batch is not None else [])
    for a in order:
        n = x.shape[a]
        if a == batch and not tied:
            return None
        if a == batch and apart is not None:
            # examples kept apart is verified for every pair (structure.separable): example q
            # reaches output example q alone, and whatever it reaches along the other axes is
            # taken as all of it, which only makes boxes larger
            tied.append((a, out_batch, np.eye(n)))
            axis_colors[a] = np.zeros(n, dtype=np.intp)
            continue
        rows = _slice_reach(run, x, clean, delta, a, apart) if 1 < n <= MAX_AXIS else None
        if rows is None:
            axis_colors[a] = np.arange(n)
            continue
        mine = [(b, r) for b, r in enumerate(rows) if not r.all()]
        tied += [(a, b, r.astype(np.float64)) for b, r in mine]
        axis_colors[a] = _greedy_colors([r for _, r in mine], n)
    if not tied:
        return None
    colors = [axis_colors[a] for a in range(x.ndim)]
    dims = tuple(int(c.max()) + 1 for c in colors)
    grids = np.meshgrid(*colors, indexing="ij")
    color = np.ravel_multi_index(tuple(grids), dims).reshape(-1)
    return Footprint(tuple(x.shape), tuple(clean.shape), tuple(tied), color, int(np.prod(dims)))


def _slice_reach(run, x, clean, delta, a, apart=None) -> list[np.ndarray] | None:
    """For every output axis b, the (n_a, n_b) indices along b that change when slice q of
    input axis a moves; None when the layer failed on a perturbed input, or when the first and
    the last slice each reach the whole output (a dense layer's features): the axis is then
    taken as reaching everything, which only shares less. Where examples are apart, the copy
    that measures the two end slices carries middle slices in its other examples."""
    n = x.shape[a]
    reach = _reach if apart is None else (lambda *args: _reach_apart(*args, *apart))
    first = min(n, 2 if apart is None else max(2, x.shape[apart[0]]))
    qs = np.array([0, n - 1] + list(range(1, first - 1)))
    got = reach(run, x, clean, delta, a, qs)
    if got is None or all(r[:2].all() for r in got):
        return None
    if first < n:
        rest = np.arange(first - 1, n - 1)
        more = reach(run, x, clean, delta, a, rest)
        if more is None:
            return None
        qs = np.concatenate([qs, rest])
        got = [np.concatenate([g, m]) for g, m in zip(got, more)]
    order = np.argsort(qs)
    return [g[order] for g in got]


def _reach(run, x, clean, delta, a, qs_all) -> list[np.ndarray] | None:
    """_slice_reach for the indices ``qs_all`` of axis a: (len(qs_all), n_b) per output axis b."""
    n = x.shape[a]
    per_block = max(1, BLOCK_BYTES // max(1, x.nbytes))
    reach = [np.zeros((qs_all.size, m), dtype=bool) for m in clean.shape]
    for start in range(0, qs_all.size, per_block):
        pos = np.arange(start, min(qs_all.size, start + per_block))
        qs = qs_all[pos]
        on = np.zeros((qs.size, n), dtype=bool)
        on[np.arange(qs.size), qs] = True
        shape = [qs.size] + [1] * x.ndim
        shape[1 + a] = n
        changed = _changed(run, x, clean, delta, on.reshape(shape))
        if changed is None:
            return None
        for b in range(clean.ndim):
            others = tuple(1 + d for d in range(clean.ndim) if d != b)
            reach[b][pos] = changed.any(axis=others) if others else changed
    return reach


def _changed(run, x, clean, delta, on) -> np.ndarray | None:
    """(k, *clean.shape): which outputs change when the entries ``on`` ((k, *x.shape), broadcast)
    of copy k move by +δ or by −δ; None when the layer failed (both ways: the module docstring)."""
    step = np.where(on, delta[None], 0.0)
    k = step.shape[0]
    out = run(np.concatenate([x[None] + step, x[None] - step]))
    if out is None or out.shape != (2 * k, *clean.shape):
        return None
    same = out == clean[None]
    nan = np.isnan(clean)
    if nan.any():
        same |= np.isnan(out) & nan[None]
    moved = ~same
    return moved[:k] | moved[k:]


def _reach_apart(run, x, clean, delta, a, qs_all, bx, bo) -> list[np.ndarray] | None:
    """_reach where examples stay apart (input axis bx, output axis bo): copy k moves, in
    example e, slice qs_all[k·m + e], and reads its reach from example e's outputs. The reach
    along bo is left whole: that of the batch axis is known from its verification (measure)."""
    m, n = x.shape[bx], x.shape[a]
    reach = [np.zeros((qs_all.size, size), dtype=bool) for size in clean.shape]
    reach[bo][:] = True
    copies = -(-qs_all.size // m)
    per_block = max(1, BLOCK_BYTES // max(1, x.nbytes))
    for start in range(0, copies, per_block):
        ks = np.arange(start, min(copies, start + per_block))
        slot = ks[:, None] * m + np.arange(m)[None, :]               # (k, m) into qs_all
        k, e = np.nonzero(slot < qs_all.size)
        on = np.zeros((ks.size, m, n), dtype=bool)
        on[k, e, qs_all[slot[k, e]]] = True
        if bx > a:
            on = on.transpose(0, 2, 1)
        shape = [ks.size] + [1] * x.ndim
        shape[1 + bx], shape[1 + a] = m, n
        changed = _changed(run, x, clean, delta, on.reshape(shape))
        if changed is None:
            return None
        changed = np.moveaxis(changed, 1 + bo, 1)                    # (k, m, ...)
        rest = [d for d in range(clean.ndim) if d != bo]
        for b in rest:
            others = tuple(2 + i for i, d in enumerate(rest) if d != b)
            seen = changed.any(axis=others) if others else changed        # (k, m, n_b)
            reach[b][slot[k, e]] = seen[k, e]
    return reach


def _greedy_colors(rows: list[np.ndarray], n: int) -> np.ndarray:
    """Colours of the n indices of one axis: two indices conflict unless some output axis sees
    them reach disjoint indices; each index takes the smallest colour none of its earlier
    conflicting indices has."""
    if not rows:
        return np.arange(n)
    conflict = np.ones((n, n), dtype=bool)
    for r in rows:
        f = r.astype(np.float64)
        conflict &= (f @ f.T) > 0
    color = np.full(n, -1, dtype=np.intp)
    for q in range(n):
        taken = set(color[:q][conflict[q, :q]].tolist())
        c = 0
        while c in taken:
            c += 1
        color[q] = c
    return color
