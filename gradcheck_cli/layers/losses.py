"""Losses: the mean over the batch of a per-example loss, so every backward here carries the 1/m.

Shapes: x is the network output, (*probe, m, *shape) in rows layout, (*probe, n, m) in columns;
the value has shape (*probe,). Targets are drawn from the seed to suit each loss.
"""
from __future__ import annotations

import numpy as np

from ..errors import LayerRuntimeError
from ..layer import Loss, ShapeError
from ..registry import register


class _Loss(Loss):
    """Built-in losses reduce over the example axes only, so they accept leading probe axes."""

    probe_axes = True
    complex_safe = True


def _batch_axes(loss: Loss, x) -> tuple[int, ...]:
    """The example axes (batch and features) that the mean and sums run over, leaving probe axes."""
    rank = len(loss.input_shape) + 1
    return tuple(range(x.ndim - rank, x.ndim))


def _full_shape(loss: Loss, batch: int) -> tuple[int, ...]:
    if loss.layout == "columns":
        return (*loss.input_shape, batch)
    return (batch, *loss.input_shape)


@register("mse")
class MSE(_Loss):
    """L = (1/2m)·Σ (x − y)²  (half the squared error, summed over features, mean over examples);
    dx = (x − y)/m. Targets: standard normal, shaped like the output."""

    per_example = True  # the mean over examples of a per-example term (fastpath.PerExampleLoss)

    def targets(self, input_shape, batch, rng):
        return rng.standard_normal(_full_shape(self, batch))

    def forward(self, x, y):
        m = self.batch_size(x)
        d = x - y
        return (d * d).sum(axis=_batch_axes(self, x)) / (2 * m), (d, m)

    def backward(self, dvalue, cache):
        d, m = cache
        return _scale(self, dvalue, d / m)

    def explain(self, s):
        A = s.x
        return {"forward": [(f"J = (1/2m)·Σ ({A} − Y)²", f"{A}, Y: {s.shape(A)} → J: scalar")],
                "backward": [(f"d{A} = ({A} − Y)/m", f"{s.dims(A)}")]}


@register("binary_cross_entropy")
class BinaryCrossEntropy(_Loss):
    """On probabilities p ∈ (0, 1): L = −(1/m)·Σ [y·log p + (1 − y)·log(1 − p)];
    dx = −(1/m)·(y/p − (1 − y)/(1 − p)). Targets: 0 or 1, shaped like the output."""

    per_example = True  # the mean over examples of a per-example term (fastpath.PerExampleLoss)

    def targets(self, input_shape, batch, rng):
        return rng.integers(0, 2, size=_full_shape(self, batch)).astype(float)

    def validate_input(self, p) -> None:
        lo, hi = float(np.min(p.real)), float(np.max(p.real))
        if lo <= 0.0 or hi >= 1.0:
            raise LayerRuntimeError(
                f"binary_cross_entropy takes probabilities in (0, 1), but the network outputs values "
                f"in [{lo:.3g}, {hi:.3g}]: end the network with a sigmoid, or use "
                "binary_cross_entropy_with_logits")

    def forward(self, p, y):
        m = self.batch_size(p)
        value = -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(axis=_batch_axes(self, p)) / m
        return value, (p, y, m)

    def backward(self, dvalue, cache):
        p, y, m = cache
        return _scale(self, dvalue, -(y / p - (1 - y) / (1 - p)) / m)

    def explain(self, s):
        A = s.x
        notes = [f"the course writes d{A} = −(Y/{A} − (1 − Y)/(1 − {A})) without the 1/m and puts "
                 "the 1/m in dW, db instead"] if self.layout == "columns" else []
        return {"forward": [(f"J = −(1/m)·Σ [Y ⊙ log {A} + (1 − Y) ⊙ log(1 − {A})]",
                             f"{A}, Y: {s.shape(A)} → J: scalar")],
                "backward": [(f"d{A} = −(1/m)·(Y/{A} − (1 − Y)/(1 − {A}))", f"{s.dims(A)}")],
                "notes": notes}


@register("binary_cross_entropy_with_logits")
class BinaryCrossEntropyWithLogits(_Loss):
    """On logits z: L = (1/m)·Σ [softplus(z) − y·z]  (= BCE of σ(z), without overflow);
    dx = (σ(z) − y)/m. Targets: 0 or 1, shaped like the output."""

    per_example = True  # the mean over examples of a per-example term (fastpath.PerExampleLoss)

    def targets(self, input_shape, batch, rng):
        return rng.integers(0, 2, size=_full_shape(self, batch)).astype(float)

    def forward(self, z, y):
        m = self.batch_size(z)
        with np.errstate(over="ignore"):
            softplus = np.where(z.real > 0, z + np.log1p(np.exp(-z)), np.log1p(np.exp(z)))
        return (softplus - y * z).sum(axis=_batch_axes(self, z)) / m, (z, y, m)

    def backward(self, dvalue, cache):
        z, y, m = cache
        with np.errstate(over="ignore"):
            return _scale(self, dvalue, (1.0 / (1.0 + np.exp(-z)) - y) / m)

    def explain(self, s):
        Z = s.x
        return {"forward": [(f"J = (1/m)·Σ [softplus({Z}) − Y ⊙ {Z}]", f"{Z}, Y: {s.shape(Z)} → J: scalar")],
                "backward": [(f"d{Z} = (σ({Z}) − Y)/m", f"{s.dims(Z)}")]}


class _OnClassScores(_Loss):
    """Losses on class scores (C,) per example, with class indices (m,) as targets."""

    def check_input(self, input_shape):
        if len(input_shape) != 1 or input_shape[0] < 2:
            raise ShapeError(f"{self.type_name} needs class scores of shape (C,) with C ≥ 2, "
                             f"got {tuple(input_shape)}")

    def targets(self, input_shape, batch, rng):
        return rng.integers(0, input_shape[0], size=batch)


@register("softmax_cross_entropy")
class SoftmaxCrossEntropy(_OnClassScores):
    """On logits z with C classes: L = (1/m)·Σ_i [log Σ_c exp(z_ic) − z_i,y_i];
    dx = (softmax(z) − onehot(y))/m. Targets: class indices, shape (m,)."""

    per_example = True  # the mean over examples of a per-example term (fastpath.PerExampleLoss)

    def _onehot(self, labels, dtype):
        onehot = np.eye(self.input_shape[0], dtype=dtype)[labels]
        return onehot.T if self.layout == "columns" else onehot

    def forward(self, z, labels):
        ax = self.feature_axis()
        m = self.batch_size(z)
        shifted = z - z.real.max(axis=ax, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=ax, keepdims=True)
        onehot = self._onehot(labels, z.real.dtype)
        value = (np.log(s).sum(axis=(-1, -2)) - (shifted * onehot).sum(axis=(-1, -2))) / m
        return value, (e / s, onehot, m)

    def backward(self, dvalue, cache):
        probs, onehot, m = cache
        return _scale(self, dvalue, (probs - onehot) / m)

    def explain(self, s):
        Z = s.x
        feat = "rows" if self.layout == "columns" else "columns"
        return {"forward": [(f"J = (1/m)·Σ_examples [log Σ_classes exp({Z}) − {Z}[true class]]",
                             f"{Z}: {s.shape(Z)}, labels: (m={s.m},) → J: scalar")],
                "backward": [(f"d{Z} = (softmax({Z}) − onehot(labels))/m", f"{s.dims(Z)}")],
                "notes": [f"softmax over the classes ({feat} of {Z}); onehot(labels) shaped like {Z}"]}


def _scale(loss: Loss, dvalue, grad):
    """Multiply a per-probe cotangent (*probe,) into a gradient (*probe, m, ...)."""
    dvalue = np.asarray(dvalue)
    return dvalue.reshape(dvalue.shape + (1,) * (len(loss.input_shape) + 1)) * grad
