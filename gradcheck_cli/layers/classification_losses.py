"""Losses on classes: binary cross-entropy (on probabilities or logits), softmax cross-entropy,
multiclass SVM (hinge), nll on log-probabilities, and the temporal softmax cross-entropy with a
mask of cs231n's captioning RNN. Each is a mean over the batch (see loss_base)."""
from __future__ import annotations

from typing import Annotated

import numpy as np
from annotated_types import Gt

from ..errors import LayerRuntimeError
from .loss_base import ClassScoresLoss, MeanLoss, batch_axes, scale
from .protocol import ShapeError, full_shape
from .registry import register


@register("binary_cross_entropy")
class BinaryCrossEntropy(MeanLoss):
    """On probabilities p ∈ (0, 1): L = −(1/m)·Σ [y·log p + (1 − y)·log(1 − p)];
    dx = −(1/m)·(y/p − (1 − y)/(1 − p)). Targets: 0 or 1, shaped like the output."""

    per_example = True  # the mean over examples of a per-example term (check/shortcuts.py, PerExampleLoss)

    def targets(self, input_shape, batch, rng):
        return rng.integers(0, 2, size=full_shape(self.layout, self.input_shape, batch)).astype(float)

    def validate_input(self, p) -> None:
        lo, hi = float(np.min(p.real)), float(np.max(p.real))
        if lo <= 0.0 or hi >= 1.0:
            raise LayerRuntimeError(
                f"binary_cross_entropy takes probabilities in (0, 1), but the network outputs values "
                f"in [{lo:.3g}, {hi:.3g}]: end the network with a sigmoid, or use "
                "binary_cross_entropy_with_logits")

    def forward(self, p, y):
        m = self.batch_size(p)
        value = -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(axis=batch_axes(self, p)) / m
        return value, (p, y, m)

    def backward(self, dvalue, cache):
        p, y, m = cache
        return scale(self, dvalue, -(y / p - (1 - y) / (1 - p)) / m)

    def explain(self, s):
        A = s.x
        notes = [f"the course writes d{A} = −(Y/{A} − (1 − Y)/(1 − {A})) without the 1/m and puts "
                 "the 1/m in dW, db instead"] if self.layout == "columns" else []
        return {"forward": [(f"J = −(1/m)·Σ [Y ⊙ log {A} + (1 − Y) ⊙ log(1 − {A})]",
                             f"{A}, Y: {s.shape(A)} → J: scalar")],
                "backward": [(f"d{A} = −(1/m)·(Y/{A} − (1 − Y)/(1 − {A}))", f"{s.dims(A)}")],
                "notes": notes}


@register("binary_cross_entropy_with_logits")
class BinaryCrossEntropyWithLogits(MeanLoss):
    """On logits z: L = (1/m)·Σ [softplus(z) − y·z]  (= BCE of σ(z), without overflow);
    dx = (σ(z) − y)/m. Targets: 0 or 1, shaped like the output."""

    per_example = True  # the mean over examples of a per-example term (check/shortcuts.py, PerExampleLoss)

    def targets(self, input_shape, batch, rng):
        return rng.integers(0, 2, size=full_shape(self.layout, self.input_shape, batch)).astype(float)

    def forward(self, z, y):
        m = self.batch_size(z)
        with np.errstate(over="ignore"):
            softplus = np.where(z.real > 0, z + np.log1p(np.exp(-z)), np.log1p(np.exp(z)))
        return (softplus - y * z).sum(axis=batch_axes(self, z)) / m, (z, y, m)

    def backward(self, dvalue, cache):
        z, y, m = cache
        with np.errstate(over="ignore"):
            return scale(self, dvalue, (1.0 / (1.0 + np.exp(-z)) - y) / m)

    def explain(self, s):
        Z = s.x
        return {"forward": [(f"J = (1/m)·Σ [softplus({Z}) − Y ⊙ {Z}]", f"{Z}, Y: {s.shape(Z)} → J: scalar")],
                "backward": [(f"d{Z} = (σ({Z}) − Y)/m", f"{s.dims(Z)}")]}


@register("softmax_cross_entropy")
class SoftmaxCrossEntropy(ClassScoresLoss):
    """On logits z with C classes: L = (1/m)·Σ_i [log Σ_c exp(z_ic) − z_i,y_i];
    dx = (softmax(z) − onehot(y))/m. Targets: class indices, shape (m,)."""

    per_example = True  # the mean over examples of a per-example term (check/shortcuts.py, PerExampleLoss)

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
        return scale(self, dvalue, (probs - onehot) / m)

    def explain(self, s):
        Z = s.x
        feat = "rows" if self.layout == "columns" else "columns"
        return {"forward": [(f"J = (1/m)·Σ_examples [log Σ_classes exp({Z}) − {Z}[true class]]",
                             f"{Z}: {s.shape(Z)}, labels: (m={s.m},) → J: scalar")],
                "backward": [(f"d{Z} = (softmax({Z}) − onehot(labels))/m", f"{s.dims(Z)}")],
                "notes": [f"softmax over the classes ({feat} of {Z}); onehot(labels) shaped like {Z}"]}


def _rows_only(loss) -> None:
    # The planner checks `layouts` for layers only; a loss says it through its input check.
    if loss.layout not in loss.layouts:
        raise ShapeError(f"{loss.type_name} supports layout rows, not {loss.layout}")


class _ClassScores(ClassScoresLoss):
    """Losses on class scores (C,) per example in rows layout; targets are class indices (m,)."""

    layouts = ("rows",)

    def check_input(self, input_shape):
        _rows_only(self)
        super().check_input(input_shape)

    def onehot(self, labels, dtype):
        return np.eye(self.input_shape[0], dtype=dtype)[labels]


@register("hinge")
class Hinge(_ClassScores):
    """Multiclass SVM loss (cs231n) on class scores.

    L = (1/m)·Σ_i Σ_{j≠y_i} max(0, s_ij − s_iy_i + margin).
    dx_ij = [margin_ij > 0]/m for j ≠ y_i, dx_iy_i = −(number of positive margins in row i)/m.
    Targets: class indices (m,)."""

    def __init__(self, margin: Annotated[float, Gt(0)] = 1.0) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, s, labels):
        m = self.batch_size(s)
        onehot = self.onehot(labels, s.real.dtype)
        correct = (s * onehot).sum(axis=-1, keepdims=True)
        margins = s - correct + self.margin
        active = (margins.real > 0) & (onehot == 0)
        return (margins * active).sum(axis=(-1, -2)) / m, (active, onehot, m)

    def backward(self, dvalue, cache):
        active, onehot, m = cache
        a = active.astype(onehot.dtype)
        return scale(self, dvalue, (a - onehot * a.sum(axis=-1, keepdims=True)) / m)


@register("svm")
class MulticlassSVM(Hinge):
    """The same loss as hinge (cs231n's name): L = (1/m)·Σ_i Σ_{j≠y_i} max(0, s_ij − s_iy_i + margin);
    dx_ij = [margin_ij > 0]/m, dx_iy_i = −Σ_j [margin_ij > 0]/m."""


@register("nll")
class NLL(_ClassScores):
    """Negative log-likelihood on log-probabilities (after log_softmax): L = −(1/m)·Σ_i x_i,y_i;
    dx = −onehot(y)/m. Targets: class indices (m,)."""

    def forward(self, x, labels):
        m = self.batch_size(x)
        onehot = self.onehot(labels, x.real.dtype)
        return -(x * onehot).sum(axis=(-1, -2)) / m, (onehot, m)

    def backward(self, dvalue, cache):
        onehot, m = cache
        return scale(self, dvalue, -onehot / m)


@register("temporal_softmax_cross_entropy")
class TemporalSoftmaxCE(MeanLoss):
    """Softmax cross-entropy at every time step with a mask (cs231n captioning).

    x (m, T, V) scores, targets (m, T) word indices and mask (m, T) of 0/1, both drawn from the seed
    (the mask keeps ~80% of the steps, as padding would).
    L = −(1/m)·Σ_{i,t} mask_it·log softmax(x_it)[y_it];  dx = mask ⊙ (softmax(x) − onehot(y))/m."""

    layouts = ("rows",)

    def check_input(self, input_shape):
        _rows_only(self)
        if len(input_shape) != 2 or input_shape[1] < 2:
            raise ShapeError(f"temporal_softmax_cross_entropy needs scores of shape (T, V) with V ≥ 2, "
                             f"got {tuple(input_shape)}: end the network with a linear layer")

    def targets(self, input_shape, batch, rng):
        t, v = input_shape
        labels = rng.integers(0, v, size=(batch, t))
        mask = (rng.random((batch, t)) < 0.8).astype(np.int64)
        return np.stack([labels, mask])

    def forward(self, x, targets):
        labels, mask = targets[0], targets[1]
        m = self.batch_size(x)
        shifted = x - x.real.max(axis=-1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=-1, keepdims=True)
        onehot = np.eye(self.input_shape[1], dtype=x.real.dtype)[labels]
        logp = (shifted * onehot).sum(axis=-1) - np.log(s[..., 0])
        w = mask.astype(x.real.dtype)
        return -(logp * w).sum(axis=(-1, -2)) / m, (e / s, onehot, w, m)

    def backward(self, dvalue, cache):
        probs, onehot, w, m = cache
        return scale(self, dvalue, (probs - onehot) * w[..., None] / m)
