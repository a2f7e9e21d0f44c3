"""An affine map over the last axis of any per-example shape (a position-wise dense layer)."""
from __future__ import annotations

from typing import Annotated

import numpy as np
from annotated_types import Gt

from .registry import register
from ._shapes import ShapedLayer, lift


@register("linear")
class Linear(ShapedLayer):
    """out = x·W + b applied at every position: x (m, ..., n), W (n, units), b (units,) →
    (m, ..., units); cs231n's temporal affine for (T, n), dense for (n,).
    dx = dout·Wᵀ,  dW = Σ_positions xᵀ·dout,  db = Σ_positions dout. He init, biases N(0, 0.1²)."""

    layouts = ("rows",)
    decay = ("W",)
    complex_safe = True
    shapes = "(..., n) → (..., units)"

    def __init__(self, units: Annotated[int, Gt(0)]) -> None:
        super().__init__()
        self.units = units

    def output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def param_shapes(self, input_shape):
        return {"W": (input_shape[-1], self.units), "b": (self.units,)}

    def init_params(self, input_shape, rng):
        n = input_shape[-1]
        return {"W": np.sqrt(2.0 / n) * rng.standard_normal((n, self.units)),
                "b": 0.1 * rng.standard_normal(self.units)}

    def forward(self, x):
        r = len(self.in_shape)
        out = x @ lift(self.params["W"], 2, r - 1) + lift(self.params["b"], 1, r)
        return out, x

    def backward(self, dout, cache):
        x, W = cache, self.params["W"]
        n = x.shape[-1]
        dW = x.reshape(-1, n).T @ dout.reshape(-1, self.units)
        return dout @ W.T, {"W": dW, "b": dout.reshape(-1, self.units).sum(axis=0)}
