"""Convolutions (cross-correlation, as in every framework) in rows layout: NCL and NCHW.

im2col: every receptive field copied out channels-last with one strided slice per kernel offset,
then one batched matrix product with the filters (leading probe axes broadcast through it);
backward contracts with einsum and folds the window gradients back with one strided add per
kernel offset, never a Python loop over pixels.
"""
from __future__ import annotations

from typing import Annotated, ClassVar, Union

import numpy as np
from annotated_types import Ge, Gt

from .protocol import ShapeError
from .registry import register
from ._shapes import ShapedLayer, fold, im2col, lift, tuple_option, window_out

Pos = Annotated[int, Gt(0)]
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
        g, n, f = self.groups, self.nd, self.filters
        cols = im2col(x, *self._geometry())                       # (*P, K, C, m, *S_out)
        L = cols.ndim - n - 3                                     # probe axes
        nk, c, m, s_out = cols.shape[L], cols.shape[L + 1], cols.shape[L + 2], cols.shape[L + 3:]
        rows = cols.reshape(cols.shape[:L] + (nk, g, c // g, -1))
        if g > 1:
            rows = np.moveaxis(rows, L + 1, L)
        rows = rows.reshape(cols.shape[:L] + (g, nk * (c // g), -1))  # (*P, g, K·C/g, m·|S_out|)
        Wk = W.reshape(W.shape[: W.ndim - n - 2] + (g, f // g, c // g, nk))
        Wk = np.swapaxes(Wk, -1, -2).reshape(Wk.shape[:-2] + (-1,))   # (*Q, g, F/g, K·C/g)
        out = Wk @ rows                                           # (*B, g, F/g, m·|S_out|)
        out = out.reshape(out.shape[:-3] + (f, m) + s_out)
        out = np.swapaxes(out, -n - 2, -n - 1)                    # (*B, m, F, *S_out)
        return out + lift(b, 1, 1, n), cols

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
        cols, W = cache, self.params["W"]                         # cols (K, C, m, *S_out)
        g, n, f = self.groups, self.nd, self.filters
        nk, c, m = cols.shape[:3]
        gcols = cols.reshape((nk, g, c // g) + cols.shape[2:])
        gd = dout.reshape((m, g, f // g) + dout.shape[2:])
        Wk = W.reshape((g, f // g, c // g, nk))
        s = "xyz"[:n]
        dW = np.einsum(f"mgf{s},kgcm{s}->gfck", gd, gcols, optimize=True).reshape(W.shape)
        dcols = np.einsum(f"mgf{s},gfck->mcg{s}k", gd, Wk, optimize=True)
        dcols = np.swapaxes(dcols, 1, 2).reshape((m, c) + dout.shape[2:] + self.kernel)
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
