"""More activations: swish/silu, mish, hardtanh, softsign, log_softmax, and prelu (learnable)."""
from __future__ import annotations

import numpy as np

from ..layer import Layer
from ..registry import register
from ._shapes import ShapedLayer, lift
from .activations import Elementwise


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x):
    return np.where(x.real > 0, x + np.log1p(np.exp(-x)), np.log1p(np.exp(x)))


@register("swish")
class Swish(Elementwise):
    """y = x·σ(x);  dx = dout ⊙ σ(x)(1 + x(1 − σ(x)))."""
    g_text, dg_text = "z·σ(z)", "σ(z)·(1 + z·(1 − σ(z)))"
    def f(self, x): return x * _sigmoid(x)
    def df(self, x, y):
        s = _sigmoid(x)
        return s * (1.0 + x * (1.0 - s))


@register("silu")
class SiLU(Swish):
    """y = x·σ(x) (the same function as swish);  dx = dout ⊙ σ(x)(1 + x(1 − σ(x)))."""


@register("mish")
class Mish(Elementwise):
    """y = x·tanh(softplus(x));  dx = dout ⊙ (t + x(1 − t²)σ(x)), t = tanh(softplus(x))."""
    g_text, dg_text = "z·tanh(softplus(z))", "t + z·(1 − t²)·σ(z),  t = tanh(softplus(z))"
    def f(self, x): return x * np.tanh(_softplus(x))
    def df(self, x, y):
        t = np.tanh(_softplus(x))
        return t + x * (1.0 - t * t) * _sigmoid(x)


@register("hardtanh")
class HardTanh(Elementwise):
    """y = clip(x, min_val, max_val);  dx = dout ⊙ [min_val < x < max_val]."""
    g_text, dg_text = "clip(z, {min_val}, {max_val})", "1 if {min_val} < z < {max_val} else 0"
    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        super().__init__()
        if not min_val < max_val:
            raise ValueError(f"min_val ({min_val}) must be below max_val ({max_val})")
        self.min_val, self.max_val = min_val, max_val
    def f(self, x): return np.where(x.real < self.min_val, self.min_val,
                                    np.where(x.real > self.max_val, self.max_val, x))
    def df(self, x, y): return ((x.real > self.min_val) & (x.real < self.max_val)).astype(x.real.dtype)


@register("softsign")
class Softsign(Elementwise):
    """y = x/(1 + |x|);  dx = dout/(1 + |x|)²."""
    g_text, dg_text = "z/(1 + |z|)", "1/(1 + |z|)²"
    def f(self, x): return x / (1.0 + x * np.sign(x.real))  # |x|, kept analytic for complex steps
    def df(self, x, y): return 1.0 / (1.0 + np.abs(x.real)) ** 2


@register("log_softmax")
class LogSoftmax(Layer):
    """y = x − log Σ exp(x) over the feature axis (last in rows, first in columns);
    dx = dout − softmax(x) ⊙ Σ_features dout. Shapes: (*probe, m, n) rows, (*probe, n, m) columns."""

    probe_axes = True
    complex_safe = True  # shifted by the real max, like softmax
    shapes = "(n,) → (n,)"

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        ax = self.feature_axis()
        shifted = x - x.real.max(axis=ax, keepdims=True)
        y = shifted - np.log(np.exp(shifted).sum(axis=ax, keepdims=True))
        return y, y

    def backward(self, dout, cache):
        ax = self.feature_axis()
        return dout - np.exp(cache) * dout.sum(axis=ax, keepdims=True), {}


@register("prelu")
class PReLU(ShapedLayer):
    """y = x if x > 0 else α·x with a learnable α per channel (per feature for 1-D input, per
    channel C for (C, *S) input); α (C,), initialized near 0.25.
    dx = dout ⊙ (1 if x > 0 else α);  dα = Σ over batch and space of dout ⊙ min(x, 0)."""

    complex_safe = True  # the x > 0 decision looks at x.real only
    shapes = "any → same"

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def param_shapes(self, input_shape):
        return {"alpha": (input_shape[0],)}

    def init_params(self, input_shape, rng):
        return {"alpha": 0.25 + 0.05 * rng.standard_normal(input_shape[0])}

    def _alpha(self, alpha):
        r = len(self.in_shape)
        return lift(alpha, 1, 0, 1) if self.layout == "columns" else lift(alpha, 1, 1, r - 1)

    def forward(self, x):
        neg = x.real <= 0
        return np.where(neg, self._alpha(self.params["alpha"]) * x, x), x

    def backward(self, dout, cache):
        x = cache
        neg = x.real <= 0
        dx = np.where(neg, self._alpha(self.params["alpha"]) * dout, dout)
        contrib = dout * np.where(neg, x, 0.0)
        axes = (1,) if self.layout == "columns" else (0, *range(2, x.ndim))
        return dx, {"alpha": contrib.sum(axis=axes)}
