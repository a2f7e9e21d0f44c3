"""Convolutions (cross-correlation, as in every framework) in rows layout: NCL and NCHW.

im2col: every receptive field copied out once, (m, C·|K|, |S_out|) per example, with one strided
slice per kernel offset; then one matrix product with the filters per example, which lands in
(m, F, *S_out) order without a transpose (leading probe axes broadcast through it). Backward
contracts with einsum and folds the window gradients back with one strided add per kernel offset,
never a Python loop over pixels.
"""
from __future__ import annotations

from typing import Annotated, ClassVar, Union

import numpy as np
from annotated_types import Ge, Gt

from .protocol import ShapeError
from .registry import register
from ._shapes import ShapedLayer, fold, im2col, lift, tuple_option, window_out

Pos = Annotated[int, Gt(0)]
#: im2col of a stack of perturbed inputs is done in blocks of about this size, which stay in the
#: core's cache while the filters are applied (measured: whole-stack copies run at memory speed)
COLS_BLOCK_BYTES = 1 << 20
NonNeg = Annotated[int, Ge(0)]


class _Conv(ShapedLayer):
    nd: ClassVar[int] = 2
    layouts = ("rows",)
    decay = ("W",)
    complex_safe = True  # im2col and matrix products only

    def __init__(self, filters: Pos, kernel: Union[Pos, list[Pos]], stride: Union[Pos, list[Pos]] = 1,
                 padding: Union[NonNeg, list[NonNeg]] = 0, dilation: Union[Pos, list[Pos]] = 1,
                 groups: Pos = 1) -> None:
        super().__init__()
        n = self.nd
        self.filters, self.groups = filters, groups
        self.kernel = tuple_option(kernel, n, "kernel")
        self.stride = tuple_option(stride, n, "stride")
        self.padding = tuple_option(padding, n, "padding")
        self.dilation = tuple_option(dilation, n, "dilation")
        if filters % groups:
            raise ValueError(f"filters ({filters}) must be a multiple of groups ({groups})")

    def _geometry(self):
        return self.kernel, self.stride, self.dilation, self.padding

    def output_shape(self, input_shape):
        n, name = self.nd, self.type_name
        axes = "(C, L)" if n == 1 else "(C, H, W)"
        if len(input_shape) != n + 1:
            hint = ": add a reshape layer before it" if len(input_shape) < n + 1 else ""
            raise ShapeError(f"{name} needs {axes} input per example, got {tuple(input_shape)}{hint}")
        c, spatial = input_shape[0], input_shape[1:]
        if c % self.groups:
            raise ShapeError(f"{name}: input channels ({c}) must be a multiple of groups ({self.groups})")
        out = tuple(window_out(s, k, st, d, p) for s, k, st, d, p in
                    zip(spatial, self.kernel, self.stride, self.dilation, self.padding))
        if min(out) < 1:
            raise ShapeError(f"{name}: kernel {self.kernel} (dilation {self.dilation}) does not fit "
                             f"input {tuple(spatial)} with padding {self.padding}")
        return (self.filters, *out)

    def param_shapes(self, input_shape):
        self.output_shape(input_shape)
        return {"W": (self.filters, input_shape[0] // self.groups, *self.kernel), "b": (self.filters,)}

    def init_params(self, input_shape, rng):
        shapes = self.param_shapes(input_shape)
        fan_in = int(np.prod(shapes["W"][1:]))
        return {"W": np.sqrt(2.0 / fan_in) * rng.standard_normal(shapes["W"]),
                "b": 0.1 * rng.standard_normal(shapes["b"])}

    def _letters(self):
        return "xyz"[: self.nd], "ijk"[: self.nd]

    def forward(self, x):
        W, b = self.params["W"], self.params["b"]
        n = self.nd
        probes = x.shape[: x.ndim - n - 2]
        if probes and W.ndim == n + 2:
            # A stack of perturbed inputs: im2col a few copies at a time into a block that stays
            # in cache, instead of one copy of the whole stack nine times its size through memory.
            flat = x.reshape((-1,) + x.shape[len(probes):])
            per_copy = flat[0].size * int(np.prod(self.kernel)) * flat.itemsize
            step = max(1, COLS_BLOCK_BYTES // per_copy)
            out = np.empty((flat.shape[0],) + self._out_example(flat.shape[1]),
                           dtype=np.result_type(x.dtype, W.dtype))
            bias = lift(b, 1, 1, n) if b.ndim == 1 and np.can_cast(b.dtype, out.dtype) else None
            for start in range(0, flat.shape[0], step):
                block = self._filter(flat[start: start + step], W, out[start: start + step])
                if bias is not None:
                    block += bias                                 # while the block is in cache
            out = out.reshape(probes + out.shape[1:])
            if bias is not None:
                return out, x
        else:
            out = self._filter(x, W)
        bias = lift(b, 1, 1, n)
        if np.broadcast_shapes(out.shape, bias.shape) == out.shape and np.can_cast(bias.dtype, out.dtype):
            out += bias
        else:
            out = out + bias
        return out, x

    def _out_example(self, m):
        return (m, self.filters) + tuple(window_out(s, k, st, d, p) for s, k, st, d, p in zip(
            self.in_shape[1:], self.kernel, self.stride, self.dilation, self.padding))

    def _filter(self, x, W, out=None):
        """Σ over channels and kernel offsets of W · windows of x, without the bias: (*B, m, F, *S_out)."""
        g, n, f = self.groups, self.nd, self.filters
        cols = im2col(x, *self._geometry())                       # (*P, m, C, K, *S_out)
        c, nk, s_out = cols.shape[-n - 2], cols.shape[-n - 1], cols.shape[cols.ndim - n:]
        rows = cols.reshape(cols.shape[: -n - 2] + (g, c // g * nk, -1))   # (*P, m, g, C/g·K, |S_out|)
        Wk = W.reshape(W.shape[: W.ndim - n - 2] + (1, g, f // g, -1))     # (*Q, 1, g, F/g, C/g·K)
        if out is None:
            return (Wk @ rows).reshape(np.broadcast_shapes(Wk.shape[:-3], rows.shape[:-3]) + (f,) + s_out)
        np.matmul(Wk, rows, out=out.reshape(out.shape[:-n - 1] + (g, f // g, -1)))
        return out

    def explain(self, s):
        """Equations with this config's shapes (see gradcheck_cli.learn.explain.Symbols)."""
        W, b, A, Z = s.p("W"), s.p("b"), s.x, s.y
        k = "·".join(map(str, self.kernel))
        return {"forward": [(f"{Z} = {W} ⋆ {A} + {b}  (cross-correlation)",
                             f"{A}: {s.shape(A)}, {W}: {s.shape(W)} → {Z}: {s.shape(Z)}"),
                            (f"cols = im2col({A}): each {k} window of every channel, one column "
                             "per output position", "then one matrix product with the filters")],
                "backward": [(f"d{W} = Σ_(examples, positions) d{Z} · window", f"→ {s.dims(W)}"),
                             (f"d{b} = Σ_(examples, positions) d{Z}", f"→ {s.dims(b)}"),
                             (f"d{A} = fold(Σ_filters d{Z} · {W})", f"window gradients added back "
                              f"where they were read, padding cropped → {s.dims(A)}")],
                "notes": [f"stride {self.stride}, padding {self.padding}, dilation {self.dilation}, "
                          f"groups {self.groups}"]}

    def backward(self, dout, cache):
        # forward kept only its input: the windows are copied out again here, once per backward,
        # rather than kept from every one of the checker's forward calls
        cols, W = im2col(cache, *self._geometry()), self.params["W"]   # cols (m, C, K, *S_out)
        g, n, f = self.groups, self.nd, self.filters
        m, c, nk = cols.shape[:3]
        gcols = cols.reshape((m, g, c // g * nk, -1))
        gd = dout.reshape((m, g, f // g, -1))
        Wk = W.reshape((g, f // g, -1))
        dW = np.einsum("mgfs,mgks->gfk", gd, gcols, optimize=True).reshape(W.shape)
        dcols = np.einsum("mgfs,gfk->mgks", gd, Wk, optimize=True)
        # (m, C, *kernel, *S_out) → the (m, C, *S_out, *kernel) view that fold reads
        dcols = dcols.reshape((m, c) + self.kernel + dout.shape[2:])
        dcols = np.moveaxis(dcols, tuple(range(2, 2 + n)), tuple(range(-n, 0)))
        dx = fold(dcols, self.in_shape[1:], *self._geometry())
        return dx, {"W": dW, "b": dout.sum(axis=(0, *range(2, dout.ndim)))}


@register("conv2d")
class Conv2D(_Conv):
    """2-D convolution (cross-correlation), NCHW, with stride, padding, dilation and groups.

    x (m, C, H, W), W (F, C/groups, kh, kw), b (F,) → (m, F, H', W'),
    H' = ⌊(H + 2p − d(kh − 1) − 1)/s⌋ + 1.

    out[n,f,y,x] = b[f] + Σ_{c,i,j} W[f,c,i,j]·xpad[n, g(f)·C/g + c, s·y + d·i, s·x + d·j]
    dW[f,c,i,j] = Σ_{n,y,x} dout[n,f,y,x]·xpad[n, ·, s·y + d·i, s·x + d·j]    db[f] = Σ_{n,y,x} dout
    dx = fold(Σ_f dout[n,f,y,x]·W[f,c,i,j]): every window gradient added back where it was read,
    then the padding cropped. kernel, stride, padding, dilation: one int or [h, w]."""

    nd = 2
    shapes = "(C, H, W) → (filters, H', W')"


@register("conv1d")
class Conv1D(_Conv):
    """1-D convolution (cross-correlation), NCL, with stride, padding, dilation and groups.

    x (m, C, L), W (F, C/groups, k), b (F,) → (m, F, L'),
    L' = ⌊(L + 2p − d(k − 1) − 1)/s⌋ + 1.

    out[n,f,t] = b[f] + Σ_{c,i} W[f,c,i]·xpad[n, ·, s·t + d·i];  dW = Σ_{n,t} dout·window,
    db = Σ_{n,t} dout, dx = fold(Σ_f dout·W), cropped."""

    nd = 1
    shapes = "(C, L) → (filters, L')"
