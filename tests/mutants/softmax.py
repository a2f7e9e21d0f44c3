"""Softmax + cross-entropy as a learner writes them: a loss on logits, and a softmax layer.
Correct ones first, then the bugs."""
import numpy as np

from gradcheck_cli import Loss, register


def softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@register("softmax_ce_ok")
class SoftmaxCE(Loss):
    """L = −(1/m)·Σ log p[y], p = softmax(x) over the classes;  dx = (p − onehot(y))/m."""

    def targets(self, input_shape, batch, rng):
        return rng.integers(0, input_shape[0], size=batch)

    def forward(self, x, y):
        p = softmax(x)
        m = x.shape[-2]
        value = -np.log(np.take_along_axis(p, y[:, None], axis=-1)).sum(axis=(-2, -1)) / m
        return value, (p, y)

    def onehot(self, p, y):
        Y = np.zeros_like(p)
        Y[np.arange(len(y)), y] = 1
        return Y

    def backward(self, dvalue, cache):
        p, y = cache
        return dvalue * (p - self.onehot(p, y)) / len(y)


@register("softmax_ce_no_mean")
class SoftmaxCENoMean(SoftmaxCE):
    def backward(self, dvalue, cache):
        p, y = cache
        return dvalue * (p - self.onehot(p, y))


@register("softmax_ce_no_minus_y")
class SoftmaxCENoMinusY(SoftmaxCE):
    def backward(self, dvalue, cache):
        p, y = cache
        return dvalue * p / len(y)


@register("softmax_ce_sign")
class SoftmaxCESign(SoftmaxCE):
    def backward(self, dvalue, cache):
        p, y = cache
        return dvalue * (self.onehot(p, y) - p) / len(y)


@register("softmax_ok")
class Softmax:
    """p = softmax(x) over the last axis;  dx = p ⊙ (dout − Σ_j dout_j·p_j)."""

    def build(self, input_shape, rng):
        self.params = {}
        return tuple(input_shape)

    def forward(self, x):
        p = softmax(x)
        return p, p

    def backward(self, dout, cache):
        p = cache
        return p * (dout - (dout * p).sum(axis=-1, keepdims=True)), {}


@register("softmax_diagonal_only")
class SoftmaxDiagonalOnly(Softmax):
    def backward(self, dout, cache):
        p = cache
        return dout * p * (1 - p), {}


@register("softmax_sum_wrong_axis")
class SoftmaxSumWrongAxis(Softmax):
    def backward(self, dout, cache):
        p = cache
        return p * (dout - (dout * p).sum(axis=0, keepdims=True)), {}
