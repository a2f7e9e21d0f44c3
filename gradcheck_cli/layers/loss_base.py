"""What the built-in losses share: the value is the mean over the batch of a per-example loss, so
every backward carries the 1/m, and only the example axes are reduced, so leading probe axes pass.

Shapes: x is the network output, (*probe, m, *shape) in rows layout, (*probe, n, m) in columns;
the value has shape (*probe,). Targets are drawn from the seed to suit each loss.
"""
from __future__ import annotations

import numpy as np

from .protocol import Loss, ShapeError


class MeanLoss(Loss):
    """Built-in losses reduce over the example axes only, so they accept leading probe axes."""

    probe_axes = True
    complex_safe = True


def batch_axes(loss: Loss, x) -> tuple[int, ...]:
    """The example axes (batch and features) that the mean and sums run over, leaving probe axes."""
    rank = len(loss.input_shape) + 1
    return tuple(range(x.ndim - rank, x.ndim))


def scale(loss: Loss, dvalue, grad):
    """Multiply a per-probe cotangent (*probe,) into a gradient (*probe, m, ...)."""
    dvalue = np.asarray(dvalue)
    return dvalue.reshape(dvalue.shape + (1,) * (len(loss.input_shape) + 1)) * grad


class ClassScoresLoss(MeanLoss):
    """Losses on class scores (C,) per example, with class indices (m,) as targets."""

    def check_input(self, input_shape):
        if len(input_shape) != 1 or input_shape[0] < 2:
            raise ShapeError(f"{self.type_name} needs class scores of shape (C,) with C ≥ 2, "
                             f"got {tuple(input_shape)}")

    def targets(self, input_shape, batch, rng):
        return rng.integers(0, input_shape[0], size=batch)
