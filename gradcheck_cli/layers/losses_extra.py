"""More losses: l1, huber, multiclass SVM (hinge), nll on log-probabilities, and the temporal
softmax cross-entropy with a mask of cs231n's captioning RNN. As in losses.py, the value is a mean
over the batch, so each backward carries the 1/m, and leading probe axes pass through."""
from __future__ import annotations

from typing import Annotated

import numpy as np
from annotated_types import Gt

from ..layer import ShapeError
from ..registry import register
from .losses import _batch_axes, _full_shape, _Loss, _OnClassScores, _scale


@register("l1")
class L1(_Loss):
    """L = (1/m)·Σ |x − y| (summed over features, mean over examples); dx = sign(x − y)/m.
    Targets: standard normal, shaped like the output."""

    def targets(self, input_shape, batch, rng):
        return rng.standard_normal(_full_shape(self, batch))

    def forward(self, x, y):
        m = self.batch_size(x)
        d = x - y
        return (d * np.sign(d.real)).sum(axis=_batch_axes(self, x)) / m, (np.sign(d.real), m)

    def backward(self, dvalue, cache):
        sign, m = cache
        return _scale(self, dvalue, sign / m)


@register("huber")
class Huber(_Loss):
    """L = (1/m)·Σ h(x − y), h(d) = d²/2 if |d| ≤ delta else delta·(|d| − delta/2);
    dx = clip(x − y, −delta, delta)/m. Targets: standard normal, shaped like the output."""

    def __init__(self, delta: Annotated[float, Gt(0)] = 1.0) -> None:
        super().__init__()
        self.delta = delta

    def targets(self, input_shape, batch, rng):
        return rng.standard_normal(_full_shape(self, batch))

    def forward(self, x, y):
        m, dl = self.batch_size(x), self.delta
        d = x - y
        absd = d * np.sign(d.real)
        h = np.where(absd.real <= dl, 0.5 * d * d, dl * (absd - 0.5 * dl))
        return h.sum(axis=_batch_axes(self, x)) / m, (d, m)

    def backward(self, dvalue, cache):
        d, m = cache
        return _scale(self, dvalue, np.clip(d, -self.delta, self.delta) / m)


def _rows_only(loss) -> None:
    # The planner checks `layouts` for layers only; a loss says it through its input check.
    if loss.layout not in loss.layouts:
        raise ShapeError(f"{loss.type_name} supports layout rows, not {loss.layout}")


class _ClassScores(_OnClassScores):
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
        return _scale(self, dvalue, (a - onehot * a.sum(axis=-1, keepdims=True)) / m)


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
        return _scale(self, dvalue, -onehot / m)


@register("temporal_softmax_cross_entropy")
class TemporalSoftmaxCE(_Loss):
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
        return _scale(self, dvalue, (probs - onehot) * w[..., None] / m)
