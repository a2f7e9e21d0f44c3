"""Shape-only layers: the numbers pass through, the per-example axes change."""
from __future__ import annotations

import math

from .protocol import ShapeError
from .registry import register
from ._shapes import ShapedLayer


class _Reshape(ShapedLayer):
    layouts = ("rows",)
    complex_safe = True

    def target(self, input_shape):
        raise NotImplementedError

    def output_shape(self, input_shape):
        return self.target(tuple(input_shape))

    def forward(self, x):
        r = len(self.in_shape)
        lead = x.shape[: x.ndim - r]
        return x.reshape(lead + self.target(self.in_shape)), None

    def backward(self, dout, cache):
        return dout.reshape(dout.shape[:1] + self.in_shape), {}


@register("flatten")
class Flatten(_Reshape):
    """x (m, *S) → (m, ∏S), row-major (C order, like PyTorch's flatten); dx = dout reshaped back."""

    shapes = "(*S) → (∏S,)"

    def target(self, input_shape):
        return (math.prod(input_shape),)


@register("reshape")
class Reshape(_Reshape):
    """x (m, *S) → (m, *shape), row-major; one entry of shape may be -1 (inferred).
    dx = dout reshaped back to (m, *S)."""

    shapes = "(*S) → shape"

    def __init__(self, shape: list[int]) -> None:
        super().__init__()
        if not shape or any(d == 0 or d < -1 for d in shape) or shape.count(-1) > 1:
            raise ValueError(f"shape must be positive sizes with at most one -1, got {shape}")
        self.shape = tuple(shape)

    def target(self, input_shape):
        n = math.prod(input_shape)
        known = math.prod(d for d in self.shape if d != -1)
        out = tuple(n // known if d == -1 else d for d in self.shape)
        if math.prod(out) != n:
            raise ShapeError(f"reshape cannot turn {input_shape} ({n} values) into {list(self.shape)}")
        return out
