"""Activations: elementwise maps with one line per derivative, and softmax.

Every comparison looks at ``x.real`` so that the layers stay analytic along the real axis and
work under complex-step differentiation; at a kink (x = 0 for relu) they use the right-hand
branch's convention of the left side, relu'(0) = 0, like most frameworks.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
from annotated_types import Ge, Gt

from ..layer import Layer
from ..registry import register

_GELU_C = np.sqrt(2.0 / np.pi)


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
        """dZ = dA ⊙ g'(Z), with g' written out (see gradcheck_cli.explain.Symbols)."""
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


@register("softmax")
class Softmax(Layer):
    """y = exp(x)/Σ exp(x) over the feature axis (last in rows, first in columns).
    dx = y ⊙ (dout − Σ_features dout ⊙ y). Shapes: (*probe, m, n) rows, (*probe, n, m) columns."""

    probe_axes = True
    complex_safe = True

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        ax = self.feature_axis()
        # Shift by the real max: exact for softmax, and keeps complex-step inputs analytic.
        e = np.exp(x - x.real.max(axis=ax, keepdims=True))
        y = e / e.sum(axis=ax, keepdims=True)
        return y, y

    def backward(self, dout, cache):
        y = cache
        return y * (dout - (dout * y).sum(axis=self.feature_axis(), keepdims=True)), {}

    def explain(self, s):
        """Softmax couples the features of an example, so its dZ is not dA ⊙ g'(Z)."""
        Z, A = s.x, s.y
        axis = "axis 0, down each column" if self.layout == "columns" else "the last axis, along each row"
        return {"forward": [(f"{A} = exp({Z}) / Σ_features exp({Z})", f"{Z}: {s.shape(Z)} → {A}: {s.shape(A)}"),
                            f"Σ_features: over {axis}, one example at a time"],
                "backward": [(f"d{Z} = {A} ⊙ (d{A} − Σ_features(d{A} ⊙ {A}))",
                              f"{s.dims(A)} → {s.dims(Z)}")]}
