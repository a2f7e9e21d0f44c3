"""Dropout with a mask that is fixed for the whole check."""
from __future__ import annotations

from typing import Annotated

import numpy as np
from annotated_types import Ge, Lt

from .registry import register
from ._shapes import ShapedLayer


@register("dropout")
class Dropout(ShapedLayer):
    """Inverted dropout with a mask fixed for the whole check.

    out = x ⊙ mask/(1 − p), mask ~ Bernoulli(1 − p) per entry of (m, *S);
    dx = dout ⊙ mask/(1 − p). Any shape, either layout.

    The mask is drawn from an integer seed taken from the spec's seed at build time and rebuilt
    from it (and the example shape) on every forward, so it is the same mask in every one of the
    thousands of perturbed forwards: a fresh mask per forward would make the function being
    differentiated change between f(θ + h) and f(θ − h), and finite differences meaningless.
    Leading probe axes broadcast over the one mask."""

    layouts = ("rows", "columns")
    complex_safe = True  # the mask is real and fixed: x ⊙ mask is linear
    shapes = "any → same"

    def __init__(self, p: Annotated[float, Ge(0), Lt(1)] = 0.5) -> None:
        super().__init__()
        self.p = p
        self.seed = 0

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def build(self, input_shape, rng):
        self.seed = int(rng.integers(2**62))
        return super().build(input_shape, rng)

    def mask(self, example_shape: tuple[int, ...], dtype) -> np.ndarray:
        keep = np.random.default_rng(self.seed).random(example_shape) >= self.p
        return keep.astype(dtype) / (1.0 - self.p)

    def forward(self, x):
        mask = self.mask(x.shape[x.ndim - len(self.in_shape) - 1:], x.real.dtype)
        return x * mask, mask

    def backward(self, dout, cache):
        return dout * cache, {}
