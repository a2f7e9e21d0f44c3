"""Activations: elementwise maps with one line per derivative, and prelu (learnable, per channel).

Every comparison looks at ``x.real`` so that the layers stay analytic along the real axis and
work under complex-step differentiation; at a kink (x = 0 for relu) they use the right-hand
branch's convention of the left side, relu'(0) = 0, like most frameworks.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
from annotated_types import Ge, Gt

from .protocol import Layer
from .registry import register
from ._shapes import ShapedLayer, lift

_GELU_C = float(np.sqrt(2.0 / np.pi))   # a Python float: a NumPy float64 scalar would upcast float32 arrays


class Elementwise(Layer):
    """y = f(x) entrywise; dx = dout ⊙ f'(x). Shapes: x, y, dout, dx all (*probe, m, ...)."""

    probe_axes = True
    complex_safe = True

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def f(self, x):
        raise NotImplementedError

    def df(self, x, y):
        """f'(x), given x and y = f(x)."""
        raise NotImplementedError

    def forward(self, x):
        with np.errstate(over="ignore"):  # exp of the branch np.where discards may overflow
            y = self.f(x)
        return y, (x, y)

    def backward(self, dout, cache):
        x, y = cache
        with np.errstate(over="ignore"):
            return dout * self.df(x, y), {}

    #: g(z) and g'(z) written out for `gradcheck explain`; {option} fields are filled in.
    #: None: the docstring's "y = ...;  dx = ..." halves are shown instead.
    g_text: str | None = None
    dg_text: str | None = None

    def explain(self, s):
        """dZ = dA ⊙ g'(Z), with g' written out (see gradcheck_cli.learn.explain.Symbols)."""
        name, Z, A = self.type_name, s.x, s.y
        if self.g_text is not None and self.dg_text is not None:
            g = f"{name}(z) = {self.g_text.format(**vars(self))}"
            dg = f"{name}'(z) = {self.dg_text.format(**vars(self))}"
        else:
            doc = " ".join((type(self).__doc__ or "").split())
            g, _, dg = doc.partition(";")
            g, dg = f"{g.strip()}  (x = {Z}, y = {A})", dg.strip() or "(see the docstring)"
        return {"forward": [(f"{A} = {name}({Z})", f"{Z}: {s.shape(Z)} → {A}: {s.shape(A)}"), g],
                "backward": [(f"d{Z} = d{A} ⊙ {name}'({Z})", f"{s.dims(A)} ⊙ {s.dims(Z)} → {s.dims(Z)}"),
                             dg]}


@register("identity")
class Identity(Elementwise):
    """y = x;  dx = dout."""
    g_text, dg_text = "z", "1"
    def f(self, x): return x
    def df(self, x, y): return np.ones_like(x)


@register("relu")
class ReLU(Elementwise):
    """y = max(0, x);  dx = dout ⊙ [x > 0]."""
    g_text, dg_text = "max(0, z)", "1 if z > 0 else 0 (0 at z = 0)"
    def f(self, x): return np.maximum(x, 0) if not np.iscomplexobj(x) else x * (x.real > 0)
    def df(self, x, y): return (x.real > 0).astype(x.real.dtype)


@register("leaky_relu")
class LeakyReLU(Elementwise):
    """y = x if x > 0 else alpha·x;  dx = dout ⊙ (1 if x > 0 else alpha)."""
    g_text, dg_text = "z if z > 0 else {alpha}·z", "1 if z > 0 else {alpha}"
    def __init__(self, alpha: Annotated[float, Ge(0)] = 0.01) -> None:
        super().__init__()
        self.alpha = alpha
    def f(self, x): return np.where(x.real > 0, x, self.alpha * x)
    def df(self, x, y): return np.where(x.real > 0, 1.0, self.alpha).astype(x.real.dtype)


@register("sigmoid")
class Sigmoid(Elementwise):
    """y = σ(x) = 1/(1 + e⁻ˣ);  dx = dout ⊙ y(1 − y)."""
    g_text, dg_text = "σ(z) = 1/(1 + e⁻ᶻ)", "σ(z)·(1 − σ(z)) = A ⊙ (1 − A)"
    def f(self, x): return 1.0 / (1.0 + np.exp(-x))
    def df(self, x, y): return y * (1.0 - y)


@register("tanh")
class Tanh(Elementwise):
    """y = tanh(x);  dx = dout ⊙ (1 − y²)."""
    g_text, dg_text = "(eᶻ − e⁻ᶻ)/(eᶻ + e⁻ᶻ)", "1 − tanh²(z) = 1 − A²"
    def f(self, x): return np.tanh(x)
    def df(self, x, y): return 1.0 - y * y


@register("softplus")
class Softplus(Elementwise):
    """y = log(1 + eˣ) (evaluated without overflow);  dx = dout ⊙ σ(x)."""
    g_text, dg_text = "log(1 + eᶻ)", "σ(z) = 1/(1 + e⁻ᶻ)"
    def f(self, x): return np.where(x.real > 0, x + np.log1p(np.exp(-x)), np.log1p(np.exp(x)))
    def df(self, x, y): return 1.0 / (1.0 + np.exp(-x))


@register("elu")
class ELU(Elementwise):
    """y = x if x > 0 else alpha·(eˣ − 1);  dx = dout ⊙ (1 if x > 0 else y + alpha)."""
    g_text, dg_text = "z if z > 0 else {alpha}·(eᶻ − 1)", "1 if z > 0 else {alpha}·eᶻ = A + {alpha}"
    def __init__(self, alpha: Annotated[float, Gt(0)] = 1.0) -> None:
        super().__init__()
        self.alpha = alpha
    def f(self, x): return np.where(x.real > 0, x, self.alpha * np.expm1(x))
    def df(self, x, y): return np.where(x.real > 0, 1.0, y + self.alpha)


@register("gelu")
class GELU(Elementwise):
    """GELU, tanh form: y = ½x(1 + t), t = tanh(u), u = c(x + 0.044715x³), c = √(2/π);
    dx = dout ⊙ (½(1 + t) + ½x(1 − t²)·u'), u' = c(1 + 3·0.044715x²).

    Evaluated as y = x·σ(2u), with 1 + t = 2σ(2u) and 1 − t² = 4σ(2u)σ(−2u): the same numbers,
    without the cancellation of 1 + t and 1 − t² far in the negative tail, where t → −1."""
    g_text, dg_text = "½z(1 + t), t = tanh(c(z + 0.044715z³)), c = √(2/π)", "½(1 + t) + ½z(1 − t²)·c(1 + 3·0.044715z²)"
    def f(self, x): return x / (1.0 + np.exp(-2.0 * _GELU_C * (x + 0.044715 * x**3)))
    def df(self, x, y):
        u2 = 2.0 * _GELU_C * (x + 0.044715 * x**3)
        s, r = 1.0 / (1.0 + np.exp(-u2)), 1.0 / (1.0 + np.exp(u2))   # σ(2u), σ(−2u)
        return s + 2.0 * x * s * r * _GELU_C * (1.0 + 3 * 0.044715 * x * x)


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
