"""Which cells the change of each entry lands in, and the grouped evaluators built from them
(copies.grouped_entries): examples of a separable layer, entries of an elementwise one, windows
of a built-in pooling layer or convolution, the measured footprint boxes of the user's own
layers (footprint.py), a parameter's output slices, a loss's per-example terms.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from .copies import Cells, Kept, Twin, cells_evaluator, copies_evaluator, grouped_entries, perturbed
from .differences import EvaluateEntries
from .evaluators import entries_from_stack
from .footprint import Footprint, LeakError
from .known import conv_geometry, pool_windows
from .structure import Structure, through


def example_cells(layout: str, weights: np.ndarray | None = None) -> Cells:
    """Cells = examples: Σ over each example's entries of out (⊙ weights), per copy."""

    def cells(out: np.ndarray) -> np.ndarray:
        w = out if weights is None else out * weights
        b = w.shape[0]
        if layout == "columns":
            return w.reshape(b, -1, w.shape[-1]).sum(axis=1)
        return w.reshape(b, w.shape[1], -1).sum(axis=2)

    return cells


def entry_cells(weights: np.ndarray) -> Cells:
    """Cells = output entries: out ⊙ weights, per copy."""
    return lambda out: (out * weights).reshape(out.shape[0], -1)


def example_of_entries(shape: tuple[int, ...], layout: str) -> tuple[np.ndarray, np.ndarray]:
    """(cell, colour) of every entry of a batch: its example, and its place within the example."""
    index = np.arange(int(np.prod(shape))).reshape(shape)
    if layout == "columns":
        example = np.broadcast_to(np.arange(shape[-1]), shape)
        within = index // shape[-1]
    else:
        example = np.broadcast_to(np.arange(shape[0]).reshape((-1,) + (1,) * (len(shape) - 1)), shape)
        within = index % int(np.prod(shape[1:]))
    return example.reshape(-1).copy(), within.reshape(-1).copy()


def window_of_entries(shape: tuple[int, ...], kernel: tuple[int, int], out_hw: tuple[int, int]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(cell, colour) for non-overlapping pooling windows over (m, C, H, W): the output entry an
    input entry reaches (−1 outside every window), and its offset within the window."""
    m, c, h, w = shape
    kh, kw = kernel
    oh, ow = out_hw
    i = np.arange(h)[:, None]
    j = np.arange(w)[None, :]
    inside = (i // kh < oh) & (j // kw < ow)
    pos = np.where(inside, (i // kh) * ow + (j // kw), -1)                       # (H, W)
    plane = (np.arange(m)[:, None] * c + np.arange(c)[None, :]) * (oh * ow)      # (m, C)
    cell = np.where(inside[None, None], plane[:, :, None, None] + pos[None, None], -1)
    color = np.broadcast_to((i % kh) * kw + (j % kw), shape)
    return cell.reshape(-1), color.reshape(-1).copy()


def window_colors(shape: tuple[int, ...], kernel: tuple[int, ...], dilation: tuple[int, ...]
                  ) -> np.ndarray:
    """The colour of every entry of a convolution's input (m, C, *S): its channel and its position
    modulo (k − 1)·d + 1 along each spatial axis. Two inputs of one channel reach a common output
    only when their positions differ by a multiple of d of at most (k − 1)·d along every axis, so
    entries of one colour reach disjoint outputs, in every example at once (stride only thins the
    outputs each reaches). Channels are told apart: every filter reads every channel of its group."""
    period = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
    spatial = shape[2:]
    grids = np.meshgrid(*[np.arange(n) % p for n, p in zip(spatial, period)], indexing="ij")
    pos = np.ravel_multi_index(tuple(grids), period) if spatial else np.zeros((), np.intp)
    color = np.arange(shape[1]).reshape((-1,) + (1,) * len(spatial)) * int(np.prod(period)) + pos
    return np.broadcast_to(color, shape).reshape(-1).copy()


def window_cells(geometry: tuple, out: np.ndarray, g: np.ndarray, in_shape: tuple[int, ...]) -> Cells:
    """Cells = the convolution's input entries: for each copy, what each input entry's windows of
    the output add to ⟨out, G⟩, Σ over the outputs that read it of (new − clean) ⊙ G (col2im of
    the change summed over filters). Exact for the perturbed entry of a colour: no other entry of
    its copy reaches those outputs. Clean cells are 0."""
    from ..layers._shapes import fold

    kernel, stride, dilation, padding = geometry
    nd = len(kernel)

    def cells(new: np.ndarray) -> np.ndarray:
        change = ((new - out) * g).sum(axis=2, keepdims=True)          # (B, m, 1, *S_out)
        cols = np.broadcast_to(change[(Ellipsis,) + (None,) * nd], change.shape + tuple(kernel))
        read = fold(cols, in_shape[2:], kernel, stride, dilation, padding)   # (B, m, 1, *S)
        return np.broadcast_to(read, (new.shape[0],) + tuple(in_shape)).reshape(new.shape[0], -1)

    return cells


def footprint_cells(layer: Any, st: Structure, fp: Footprint, x: np.ndarray, out: np.ndarray,
                    weights: list[np.ndarray], layout: str) -> Callable[[np.ndarray], Any]:
    """Cells = the input entries, read from the measured footprint boxes: for each copy, the
    change ⊙ G summed over each entry's box. Exact for the one perturbed entry of its colour in
    a copy, as long as nothing changed outside the perturbed entries' boxes, which is checked on
    every copy (LeakError). With two weights, the cells of each, from the same copies."""

    finite = bool(np.isfinite(out).all())
    nan_out = np.isnan(out)

    def evaluate(stack: np.ndarray) -> np.ndarray:
        new = through(layer, st, stack, layout)
        if finite:
            # for a finite clean output, new − out is 0 exactly where new == out
            change = new - out[None]
            moved = change != 0
        else:
            with np.errstate(invalid="ignore"):           # inf − inf where nothing moved
                change = new - out[None]
            same = (new == out[None]) | (np.isnan(new) & nan_out[None])
            change[same] = 0.0
            moved = ~same
        if moved.any() and np.any(moved & ~fp.covered(stack != x[None])):
            raise LeakError("an output outside the perturbed entries' footprint changed")
        got = [fp.cells(change, w) for w in weights]
        return got[0] if len(got) == 1 else tuple(got)

    return evaluate


class guarded_entries:
    """Grouped entries that fall back, for the rest of the tensor, to copies that share less
    when a copy's change leaks out of the footprint it was grouped by (LeakError): what was
    read before the leak came from copies that were each checked."""

    def __init__(self, primary: grouped_entries, fallback: Callable[[], EvaluateEntries]) -> None:
        self.primary, self.make_fallback = primary, fallback
        self.fallback: EvaluateEntries | None = None
        self.loose = 0                     # copies of a fallback that does not count its own
        self.schedule = primary.schedule

    @property
    def copies(self) -> int:
        return self.primary.copies + self.loose + getattr(self.fallback, "copies", 0)

    @property
    def max_copies(self) -> int | None:
        return self.primary.max_copies

    @max_copies.setter
    def max_copies(self, value: int | None) -> None:
        self.primary.max_copies = value
        if hasattr(self.fallback, "max_copies"):
            self.fallback.max_copies = value  # type: ignore[union-attr]

    def __call__(self, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        if self.fallback is None:
            try:
                return self.primary(idx, values)
            except LeakError:
                self.fallback = self.make_fallback()
                if hasattr(self.fallback, "max_copies"):
                    self.fallback.max_copies = self.primary.max_copies  # type: ignore[union-attr]
        if not hasattr(self.fallback, "copies"):
            self.loose += np.size(idx)
        return self.fallback(idx, values)


def grouped_input(layer: Any, st: Structure, x: np.ndarray, out: np.ndarray, g: np.ndarray,
                  layout: str, f0: float, twin: "tuple[np.ndarray, Kept] | None" = None
                  ) -> tuple[EvaluateEntries, int] | None:
    """evaluate_entries of f = ⟨layer(x), G⟩ for the layer's input x, grouped by what is known
    of the layer (built-in windows) or verified (elementwise, the measured footprint boxes,
    separable), and how many probes at most share a copy; None when nothing is known.
    ``twin``: (other weights of the output, a Kept) whose f of every probe is kept too, read
    from the same copies (the isolated check's G, while the chain differences against g)."""
    weights = [g] if twin is None else [g, twin[0]]

    def paired(cells_of: Callable[[np.ndarray], Cells]) -> Cells:
        """One cells function for g, or one giving (g's, the twin's) cells of the same output."""
        each = [cells_of(w) for w in weights]
        return each[0] if twin is None else (lambda o: tuple(c(o) for c in each))

    def grouped(cell, color, evaluate, clean_of: Callable[[Cells], np.ndarray]) -> grouped_entries:
        other = None
        if twin is not None:
            # f0 as the isolated row computes it (⟨out, G⟩ as one product), so that values agree
            other = Twin(None, clean_of(1), float(out.reshape(-1) @ twin[0].reshape(-1)), twin[1])
        return grouped_entries(x, cell, color, evaluate, clean_of(0), f0, other)

    fp = st.footprint
    if fp is not None and fp.in_shape == x.shape and fp.out_shape == out.shape and not st.elementwise:
        primary = grouped(np.arange(x.size), fp.color, footprint_cells(layer, st, fp, x, out, weights, layout),
                          lambda k: np.zeros(x.size))

        def fallback() -> EvaluateEntries:
            found = grouped_input(layer, dataclasses.replace(st, footprint=None), x, out, g, layout, f0, twin)
            if found is not None:
                return found[0]
            g_flat = g.reshape(-1)
            return entries_from_stack(copies_evaluator(
                [layer], [st], "x", x, layout,
                lambda o: o.reshape(*o.shape[:o.ndim - g.ndim], -1) @ g_flat, True), x)

        return guarded_entries(primary, fallback), max(1, x.size // fp.colors)
    kernel = pool_windows(layer) if x.ndim == 4 and out.ndim == 4 else None
    conv = conv_geometry(layer) if x.ndim == out.ndim and x.ndim >= 3 else None
    if conv is not None and "x" in st.stacks:
        # a built-in convolution's Jacobian is a window by construction (Curtis, Powell, Reid)
        color = window_colors(x.shape, conv[0], conv[2])
        evaluate = cells_evaluator([layer], [st], x, layout,
                                   paired(lambda w: window_cells(conv, out, w, x.shape)))
        share = max(1, x.size // (int(color.max()) + 1))
        return grouped(np.arange(x.size), color, evaluate, lambda k: np.zeros(x.size)), share
    if st.elementwise:
        cell, color, cells_of, share = np.arange(x.size), np.zeros(x.size, np.intp), entry_cells, x.size
    elif kernel is not None:
        cell, color = window_of_entries(x.shape, kernel, out.shape[2:])
        cells_of, share = entry_cells, max(1, x.size // (kernel[0] * kernel[1]))
    elif st.separable:
        cell, color = example_of_entries(x.shape, layout)
        cells_of, share = (lambda w: example_cells(layout, w)), x.shape[-1 if layout == "columns" else 0]
    else:
        return None
    evaluate = cells_evaluator([layer], [st], x, layout, paired(cells_of))
    return grouped(cell, color, evaluate, lambda k: cells_of(weights[k])(out[None])[0]), share


def slice_cells(axis: int, weights: np.ndarray) -> Cells:
    """Cells = slices of the output along ``axis``: Σ of out ⊙ weights over every other axis."""

    nd = weights.ndim
    kept = [0, axis + 1]

    def cells(out: np.ndarray) -> np.ndarray:
        # one pass over out, with no product or moved copy of it in memory
        return np.einsum(out, [0, *range(1, nd + 1)], weights, list(range(1, nd + 1)), kept)

    return cells


def slice_of_entries(shape: tuple[int, ...], axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(cell, colour) of every entry of a parameter: its index along ``axis``, and its place
    among the other axes."""
    index = np.indices(shape).reshape(len(shape), -1)
    cell = index[axis]
    others = [d for d in range(len(shape)) if d != axis]
    color = np.ravel_multi_index(tuple(index[d] for d in others), tuple(shape[d] for d in others)) \
        if others else np.zeros(cell.size, dtype=np.intp)
    return cell, color


def grouped_parameter(layer: Any, st: Structure, tensor: str, x: np.ndarray, out: np.ndarray,
                      weights: np.ndarray, layout: str, f0: float,
                      twin: tuple[np.ndarray, dict] | None = None
                      ) -> tuple[EvaluateEntries, int] | None:
    """evaluate_entries of f = ⟨layer(x; θ), weights⟩ for a parameter θ whose slices reach
    disjoint output slices (verified: Structure.axes), and how many probes share a copy.
    ``twin``: (other weights, a memo) whose f of every probe is kept too, from the same copies."""
    axes = st.axes_of(tensor)
    if axes is None:
        return None
    theta = layer.params[tensor]
    cell, color = slice_of_entries(theta.shape, axes[0])
    cells = slice_cells(axes[1], weights)
    second = None
    if twin is not None:
        twin_cells = slice_cells(axes[1], twin[0])
        # f0 as the factored row computes it (⟨out, g⟩ as one product), so that the values agree
        second = Twin(twin_cells, twin_cells(out[None])[0], float(out.reshape(-1) @ twin[0].reshape(-1)),
                      twin[1])

    def evaluate(stack: np.ndarray):
        new = perturbed(layer, st, tensor, x, stack, layout)
        return cells(new) if second is None else (cells(new), second.cells(new))

    return grouped_entries(theta, cell, color, evaluate, cells(out[None])[0], f0, second), \
        theta.shape[axes[0]]


#: the mean of a loss's per-example terms must give its value to this fraction of Σ|terms|
TERMS_RTOL = 1e-10


def loss_cells(loss: Any, targets: Any, layout: str, x: np.ndarray, value: float) -> Cells | None:
    """Cells = examples of the loss: each example's term ℓ_s/m, from the loss evaluated on each
    example as a batch of one (probe axes of a built-in loss). None unless the loss declares
    itself a mean of per-example terms (``per_example``) and that holds on the real arrays."""
    if not (getattr(type(loss), "per_example", False) and getattr(type(loss), "probe_axes", False)):
        return None
    targets = np.asarray(targets)
    m = x.shape[-1] if layout == "columns" else x.shape[0]
    if targets.ndim == 0 or targets.shape[-1 if layout == "columns" else 0] != m:
        return None
    per = np.moveaxis(targets, -1, 0) if layout == "columns" else targets

    def cells(out: np.ndarray) -> np.ndarray:
        b = out.shape[0]
        rows = np.moveaxis(out, -1, 1) if layout == "columns" else out      # (B, m, *shape)
        one = rows.reshape(b * m, 1, *rows.shape[2:])
        t = np.broadcast_to(per[None], (b, *per.shape)).reshape(b * m, 1, *per.shape[1:])
        if layout == "columns":
            one, t = np.moveaxis(one, 1, -1), np.moveaxis(t, 1, -1)
        return np.asarray(loss.forward(one, t)[0]).reshape(b, m) / m

    try:
        terms = cells(x[None])[0]
    except (Exception, SystemExit):
        return None
    if terms.shape != (m,) or abs(float(terms.sum()) - value) > TERMS_RTOL * max(float(np.abs(terms).sum()), 1e-300):
        return None
    return cells
