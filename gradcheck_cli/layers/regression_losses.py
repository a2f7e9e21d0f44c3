"""Losses on real-valued targets: mse, l1, huber. Each is a mean over the batch (see loss_base)."""
from __future__ import annotations

from typing import Annotated

import numpy as np
from annotated_types import Gt

from .loss_base import MeanLoss, batch_axes, scale
from .protocol import full_shape
from .registry import register


@register("mse")
class MSE(MeanLoss):
    """L = (1/2m)·Σ (x − y)²  (half the squared error, summed over features, mean over examples);
    dx = (x − y)/m. Targets: standard normal, shaped like the output."""

    per_example = True  # the mean over examples of a per-example term (check/shortcuts.py, PerExampleLoss)

    def targets(self, input_shape, batch, rng):
        return rng.standard_normal(full_shape(self.layout, self.input_shape, batch))

    def forward(self, x, y):
        m = self.batch_size(x)
        d = x - y
        return (d * d).sum(axis=batch_axes(self, x)) / (2 * m), (d, m)

    def backward(self, dvalue, cache):
        d, m = cache
        return scale(self, dvalue, d / m)

    def explain(self, s):
        A = s.x
        return {"forward": [(f"J = (1/2m)·Σ ({A} − Y)²", f"{A}, Y: {s.shape(A)} → J: scalar")],
                "backward": [(f"d{A} = ({A} − Y)/m", f"{s.dims(A)}")]}


@register("l1")
class L1(MeanLoss):
    """L = (1/m)·Σ |x − y| (summed over features, mean over examples); dx = sign(x − y)/m.
    Targets: standard normal, shaped like the output."""

    def targets(self, input_shape, batch, rng):
        return rng.standard_normal(full_shape(self.layout, self.input_shape, batch))

    def forward(self, x, y):
        m = self.batch_size(x)
        d = x - y
        return (d * np.sign(d.real)).sum(axis=batch_axes(self, x)) / m, (np.sign(d.real), m)

    def backward(self, dvalue, cache):
        sign, m = cache
        return scale(self, dvalue, sign / m)


@register("huber")
class Huber(MeanLoss):
    """L = (1/m)·Σ h(x − y), h(d) = d²/2 if |d| ≤ delta else delta·(|d| − delta/2);
    dx = clip(x − y, −delta, delta)/m. Targets: standard normal, shaped like the output."""

    def __init__(self, delta: Annotated[float, Gt(0)] = 1.0) -> None:
        super().__init__()
        self.delta = delta

    def targets(self, input_shape, batch, rng):
        return rng.standard_normal(full_shape(self.layout, self.input_shape, batch))

    def forward(self, x, y):
        m, dl = self.batch_size(x), self.delta
        d = x - y
        absd = d * np.sign(d.real)
        h = np.where(absd.real <= dl, 0.5 * d * d, dl * (absd - 0.5 * dl))
        return h.sum(axis=batch_axes(self, x)) / m, (d, m)

    def backward(self, dvalue, cache):
        d, m = cache
        return scale(self, dvalue, np.clip(d, -self.delta, self.delta) / m)
