"""Helpers shared by the layer library: probe-axis lifting, option normalization, sliding windows.

A parameter stacked by the checker has leading probe axes, ``(*Q, *base)``; the input has its own,
``(*P, m, *example)``. Broadcasting lines them up from the right, so a parameter needs singleton
axes between its probe axes and its base axes for every input axis it does not span.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .protocol import Layer


class ShapedLayer(Layer):
    """A built-in that remembers its per-example input shape at build time (configuration, not
    forward state): forward needs it to tell probe axes from example axes."""

    probe_axes = True
    in_shape: tuple[int, ...] = ()

    def build(self, input_shape, rng):
        self.in_shape = tuple(input_shape)
        return super().build(input_shape, rng)


def lift(p: np.ndarray, base_ndim: int, before: int, after: int = 0) -> np.ndarray:
    """Insert ``before`` singleton axes after the probe axes of ``p`` (shape (*Q, *base)) and
    ``after`` singleton axes at the end, so that it broadcasts against a probe-stacked input."""
    q = p.shape[: p.ndim - base_ndim]
    return p.reshape(q + (1,) * before + p.shape[p.ndim - base_ndim:] + (1,) * after)


def tuple_option(value: int | Sequence[int], n: int, name: str) -> tuple[int, ...]:
    """An option given as one int or a list of n ints, as a tuple of n ints."""
    if isinstance(value, int):
        return (value,) * n
    if len(value) != n:
        raise ValueError(f"{name} takes one integer or a list of {n}, got {list(value)}")
    return tuple(int(v) for v in value)


def window_out(size: int, k: int, s: int, d: int, p: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def windows(x: np.ndarray, kernel, stride, dilation, padding) -> np.ndarray:
    """Views of every receptive field: x (..., *S) → (..., *S_out, *kernel), no copy but the pad."""
    nd = len(kernel)
    x = pad_spatial(x, padding)
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    w = sliding_window_view(x, span, axis=tuple(range(x.ndim - nd, x.ndim)))
    index = (Ellipsis,) + tuple(slice(None, None, s) for s in stride) \
        + tuple(slice(None, None, d) for d in dilation)
    return w[index]


def pad_spatial(x: np.ndarray, padding) -> np.ndarray:
    """x with zeros around its last len(padding) axes: one allocation and one copy of x
    (np.pad's general machinery costs more than the copy on these small arrays)."""
    nd = len(padding)
    if not any(padding):
        return x
    shape = x.shape[: x.ndim - nd] + tuple(n + 2 * p for n, p in zip(x.shape[x.ndim - nd:], padding))
    out = np.zeros(shape, dtype=x.dtype)
    out[(Ellipsis,) + tuple(slice(p, p + n) for p, n in zip(padding, x.shape[x.ndim - nd:]))] = x
    return out


def im2col(x: np.ndarray, kernel, stride, dilation, padding) -> np.ndarray:
    """Receptive fields copied out: x (*lead, m, C, *S) → (*lead, m, C, |K|, *S_out), C-contiguous,
    so that (C·|K|, |S_out|) is a matrix per example without a further copy and the product with
    the filters lands in (m, F, *S_out) order directly. One strided slice per kernel offset, each
    copied as a block of contiguous rows (a gather through a many-axis window view is many times
    slower)."""
    nd = len(kernel)
    x = pad_spatial(x, padding)
    out_sp = tuple(window_out(n, k, s, d, 0) for n, k, s, d in
                   zip(x.shape[x.ndim - nd:], kernel, stride, dilation))
    cols = np.empty(x.shape[: x.ndim - nd] + (int(np.prod(kernel)),) + out_sp, dtype=x.dtype)
    for k, offset in enumerate(itertools.product(*(range(k) for k in kernel))):
        cols[(Ellipsis, k) + (slice(None),) * nd] = x[(Ellipsis,) + tuple(
            slice(o * d, o * d + s * (n - 1) + 1, s) for o, d, s, n in zip(offset, dilation, stride, out_sp))]
    return cols


def fold(cols: np.ndarray, in_spatial: tuple[int, ...], kernel, stride, dilation, padding) -> np.ndarray:
    """The adjoint of ``windows`` (col2im): add every window entry back where it was read.
    cols (..., *S_out, *kernel) → (..., *S). Loops over kernel offsets only, never over pixels."""
    nd = len(kernel)
    out_sp = cols.shape[cols.ndim - 2 * nd: cols.ndim - nd]
    lead = cols.shape[: cols.ndim - 2 * nd]
    padded = tuple(n + 2 * p for n, p in zip(in_spatial, padding))
    acc = np.zeros(lead + padded, dtype=cols.dtype)
    for offset in itertools.product(*(range(k) for k in kernel)):
        target = (Ellipsis,) + tuple(
            slice(o * d, o * d + s * (n - 1) + 1, s)
            for o, d, s, n in zip(offset, dilation, stride, out_sp))
        acc[target] += cols[(Ellipsis,) + (slice(None),) * nd + offset]
    crop = (Ellipsis,) + tuple(slice(p, p + n) for p, n in zip(padding, in_spatial))
    return acc[crop]
