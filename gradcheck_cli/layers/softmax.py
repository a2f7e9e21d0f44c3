"""Softmax and log-softmax: maps that normalize over the feature axis, so each output entry
depends on every feature of its example (their dZ is not dA ⊙ g'(Z))."""
from __future__ import annotations

import numpy as np

from .protocol import Layer
from .registry import register


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
