"""Fully connected layer."""
from __future__ import annotations

from typing import Annotated, Literal

from annotated_types import Gt

import numpy as np

from .protocol import Layer, ShapeError
from .registry import register


@register("dense")
class Dense(Layer):
    """Affine map of a 1-D feature vector.

    rows:    x (m, n_in), W (n_in, units), b (units,)      out = x·W + b
             dx = dout·Wᵀ   dW = xᵀ·dout   db = Σ_m dout
    columns: x (n_in, m), W (units, n_in), b (units, 1)    out = W·x + b   (the course's Z = W·A_prev + b)
             dx = Wᵀ·dout   dW = dout·xᵀ   db = Σ_m dout (kept as a column)
    Any leading probe axes on x, W and b broadcast.

    init: he N(0, 2/n_in), xavier N(0, 2/(n_in + units)), normal N(0, std²). Biases start at
    N(0, 0.1²), not zero, so that no entry of the check sits at a special point by construction.
    """

    probe_axes = True
    decay = ("W",)
    complex_safe = True

    def __init__(self, units: Annotated[int, Gt(0)],
                 init: Literal["he", "xavier", "normal"] = "he",
                 std: Annotated[float, Gt(0)] = 0.01) -> None:
        super().__init__()
        self.units, self.init, self.std = units, init, std

    def output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ShapeError(f"dense needs a 1-D input per example, got {tuple(input_shape)}: "
                             "add a flatten layer before it")
        return (self.units,)

    def param_shapes(self, input_shape):
        self.output_shape(input_shape)
        n_in = input_shape[0]
        if self.layout == "columns":
            return {"W": (self.units, n_in), "b": (self.units, 1)}
        return {"W": (n_in, self.units), "b": (self.units,)}

    def init_params(self, input_shape, rng):
        shapes = self.param_shapes(input_shape)
        n_in = input_shape[0]
        std = {"he": np.sqrt(2.0 / n_in), "xavier": np.sqrt(2.0 / (n_in + self.units)),
               "normal": self.std}[self.init]
        return {"W": std * rng.standard_normal(shapes["W"]),
                "b": 0.1 * rng.standard_normal(shapes["b"])}

    def forward(self, x):
        W, b = self.params["W"], self.params["b"]
        if self.layout == "columns":
            return W @ x + b, x
        if W.ndim == 2 and x.ndim > 2:
            # one large GEMM over all probe copies, not one small GEMM per copy
            return (x.reshape(-1, x.shape[-1]) @ W).reshape(*x.shape[:-1], W.shape[1]) + b, x
        # b[..., None, :] lines a probe-batched bias (P, units) up with out (P, m, units).
        return x @ W + b[..., None, :], x

    def backward(self, dout, cache):
        x, W = cache, self.params["W"]
        if self.layout == "columns":
            return W.T @ dout, {"W": dout @ x.T, "b": dout.sum(axis=-1, keepdims=True)}
        return dout @ W.T, {"W": x.T @ dout, "b": dout.sum(axis=0)}

    def explain(self, s):
        """Equations with this config's shapes (see gradcheck_cli.learn.explain.Symbols)."""
        W, b, A, Z = s.p("W"), s.p("b"), s.x, s.y
        shapes = f"{W}: {s.shape(W)}, {A}: {s.shape(A)}, {b}: {s.shape(b)} → {Z}: {s.shape(Z)}"
        if self.layout == "columns":
            return {
                "forward": [(f"{Z} = {W}·{A} + {b}", shapes)],
                "backward": [
                    (f"d{W} = (1/m)·d{Z}·{A}ᵀ", f"{s.dims(Z)}·{s.dims(A, True)} → {s.dims(W)}"),
                    (f"d{b} = (1/m)·Σ_columns d{Z}", f"{s.dims(Z)} → {s.dims(b)}"),
                    (f"d{A} = {W}ᵀ·d{Z}", f"{s.dims(W, True)}·{s.dims(Z)} → {s.dims(A)}")],
                "notes": [f"course form: its dZ is m × the exact gradient (its dA[L] has no 1/m); "
                          f"this layer's backward returns the exact VJP d{W} = d{Z}·{A}ᵀ, "
                          f"d{b} = Σ_columns d{Z}, with the 1/m in the loss's backward"]}
        return {
            "forward": [(f"{Z} = {A}·{W} + {b}", shapes)],
            "backward": [
                (f"d{W} = {A}ᵀ·d{Z}", f"{s.dims(A, True)}·{s.dims(Z)} → {s.dims(W)}"),
                (f"d{b} = Σ_rows d{Z}", f"{s.dims(Z)} → {s.dims(b)}"),
                (f"d{A} = d{Z}·{W}ᵀ", f"{s.dims(Z)}·{s.dims(W, True)} → {s.dims(A)}")],
            "notes": ["exact vector-Jacobian products: the 1/m of the mean loss is already in "
                      f"d{Z} (the loss's backward carries it)"]}
