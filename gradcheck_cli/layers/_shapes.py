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
    if any(padding):
        x = np.pad(x, [(0, 0)] * (x.ndim - nd) + [(p, p) for p in padding])
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    w = sliding_window_view(x, span, axis=tuple(range(x.ndim - nd, x.ndim)))
    index = (Ellipsis,) + tuple(slice(None, None, s) for s in stride) \
        + tuple(slice(None, None, d) for d in dilation)
    return w[index]


def im2col(x: np.ndarray, kernel, stride, dilation, padding) -> np.ndarray:
    """Receptive fields copied out: x (*lead, m, C, *S) → (*lead, |K|, C, m, *S_out), one strided
    slice per kernel offset, each copied as a contiguous block (a gather through a many-axis
    window view, or a stack along a short last axis, is many times slower)."""
    nd = len(kernel)
    if any(padding):
        x = np.pad(x, [(0, 0)] * (x.ndim - nd) + [(p, p) for p in padding])
    L = x.ndim - nd - 2
    xt = np.swapaxes(x, L, L + 1)                                       # (*lead, C, m, *S)
    out_sp = [window_out(n, k, s, d, 0) for n, k, s, d in
              zip(x.shape[x.ndim - nd:], kernel, stride, dilation)]
    parts = [xt[(Ellipsis,) + tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                                    for o, d, s, n in zip(offset, dilation, stride, out_sp))]
             for offset in itertools.product(*(range(k) for k in kernel))]
    return np.stack(parts, axis=L)


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
