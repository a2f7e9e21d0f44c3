"""Pooling over NCHW inputs, rows layout: forward takes one strided slice per kernel offset;
backward folds the window gradients back where they were read."""
from __future__ import annotations

from typing import Annotated, Optional, Union

import numpy as np
from annotated_types import Gt

from .protocol import ShapeError
from .registry import register
from ._shapes import ShapedLayer, fold, tuple_option, window_out, windows

Pos = Annotated[int, Gt(0)]


class _Pool2D(ShapedLayer):
    layouts = ("rows",)
    #: max-pool picks each window's entry by its real part and passes that entry on, complex
    complex_safe = True
    shapes = "(C, H, W) → (C, H', W')"

    def __init__(self, kernel: Union[Pos, list[Pos]] = 2, stride: Optional[Union[Pos, list[Pos]]] = None) -> None:
        super().__init__()
        self.kernel = tuple_option(kernel, 2, "kernel")
        self.stride = self.kernel if stride is None else tuple_option(stride, 2, "stride")

    def _geometry(self):
        return self.kernel, self.stride, (1, 1), (0, 0)

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.type_name} needs (C, H, W) input per example, got "
                             f"{tuple(input_shape)}" + (": add a reshape layer before it"
                                                        if len(input_shape) < 3 else ""))
        out = tuple(window_out(s, k, st, 1, 0) for s, k, st in zip(input_shape[1:], self.kernel, self.stride))
        if min(out) < 1:
            raise ShapeError(f"{self.type_name}: kernel {self.kernel} is larger than the input "
                             f"{tuple(input_shape[1:])}")
        return (input_shape[0], *out)


@register("maxpool2d")
class MaxPool2D(_Pool2D):
    """Max pooling: out[n,c,y,x] = max over the kernel window at (s·y, s·x); stride defaults to kernel.
    x (m, C, H, W) → (m, C, H', W'), H' = ⌊(H − kh)/s⌋ + 1.
    dx = fold(dout routed to the arg-max of each window) (the first maximum on ties); overlapping
    windows add up."""

    def forward(self, x):
        # One strided slice per kernel offset: a reduction over tiny trailing window axes is slow.
        # Complex inputs (complex step): compare real parts, pass the winning entry on whole.
        if np.iscomplexobj(x):
            parts = offsets(x, self.kernel, self.stride)
            out = next(parts)
            for part in parts:
                out = np.where(part.real > out.real, part, out)
            return out, x
        return in_blocks(x, self._max, self.kernel, self.stride), x

    def _max(self, x, out):
        """A running np.maximum over the kernel offsets, written into ``out``."""
        parts = offsets(x, self.kernel, self.stride)
        first, second = next(parts), next(parts, None)
        if second is None:
            out[...] = first
            return
        np.maximum(first, second, out=out)
        for part in parts:
            np.maximum(out, part, out=out)

    def backward(self, dout, cache):
        cols = windows(cache, *self._geometry())
        flat = cols.reshape(cols.shape[:-2] + (-1,))
        arg = flat.real.argmax(axis=-1)
        onehot = np.arange(flat.shape[-1]) == arg[..., None]
        dcols = (onehot * dout[..., None]).reshape(cols.shape)
        return fold(dcols, self.in_shape[1:], *self._geometry()), {}


#: a stack of inputs is pooled this many bytes at a time, so that the kernel offsets' passes
#: over one block read it from cache, not each from memory
POOL_BLOCK_BYTES = 1 << 20


def in_blocks(x, pool, kernel, stride):
    """pool(x_block, out_block) over blocks of x's leading example axes (x (..., C, H, W)), into one
    output: a block's strided passes, one per kernel offset, then hit the cache."""
    lead = x.shape[:-3]
    flat = x.reshape((-1,) + x.shape[-3:])
    first = next(offsets(flat[:1], kernel, stride))
    out = np.empty(flat.shape[:1] + first.shape[1:], dtype=x.dtype)
    step = max(1, POOL_BLOCK_BYTES // max(1, flat[0].nbytes))
    for start in range(0, flat.shape[0], step):
        pool(flat[start: start + step], out[start: start + step])
    return out.reshape(lead + out.shape[1:])


def offsets(x, kernel, stride):
    """x[..., i::s, j::s] cut to the output size, for every kernel offset (i, j)."""
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = window_out(x.shape[-2], kh, sh, 1, 0), window_out(x.shape[-1], kw, sw, 1, 0)
    for i in range(kh):
        for j in range(kw):
            yield x[..., i: i + sh * (ho - 1) + 1: sh, j: j + sw * (wo - 1) + 1: sw]


@register("avgpool2d")
class AvgPool2D(_Pool2D):
    """Average pooling: out[n,c,y,x] = mean of the window at (s·y, s·x); stride defaults to kernel.
    x (m, C, H, W) → (m, C, H', W'). dx = fold(dout/(kh·kw) spread over each window)."""

    def forward(self, x):
        return in_blocks(x, self._mean, self.kernel, self.stride), None

    def _mean(self, x, out):
        parts = offsets(x, self.kernel, self.stride)
        first, second = next(parts), next(parts, None)
        if second is None:
            out[...] = first
        else:
            np.add(first, second, out=out)
        for part in parts:
            out += part
        out /= self.kernel[0] * self.kernel[1]

    def backward(self, dout, cache):
        k = self.kernel[0] * self.kernel[1]
        dcols = np.broadcast_to((dout / k)[..., None, None], dout.shape + self.kernel)
        return fold(dcols, self.in_shape[1:], *self._geometry()), {}


@register("global_avgpool")
class GlobalAvgPool(ShapedLayer):
    """Mean over all spatial axes: x (m, C, *S) → (m, C); dx = dout/|S| broadcast over S."""

    layouts = ("rows",)
    complex_safe = True
    shapes = "(C, *S) → (C,)"

    def output_shape(self, input_shape):
        if len(input_shape) < 2:
            raise ShapeError(f"global_avgpool needs (C, H, W) or (C, L) input per example, got "
                             f"{tuple(input_shape)}")
        return (input_shape[0],)

    def forward(self, x):
        r = len(self.in_shape)
        return x.mean(axis=tuple(range(x.ndim - r + 1, x.ndim))), None

    def backward(self, dout, cache):
        spatial = self.in_shape[1:]
        scale = 1.0 / float(np.prod(spatial))
        return np.broadcast_to((dout * scale).reshape(dout.shape + (1,) * len(spatial)),
                               dout.shape + spatial).copy(), {}
