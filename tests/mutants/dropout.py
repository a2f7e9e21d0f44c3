"""Inverted dropout as a learner writes it, with a mask drawn from a fixed seed (the same in every
forward call, as a gradient check needs). The correct layer first, then the bugs."""
import numpy as np

from gradcheck_cli import register


@register("dropout_ok")
class Dropout:
    """out = x ⊙ mask/(1 − p), mask ~ Bernoulli(1 − p) (p is the drop probability);
    dx = dout ⊙ mask/(1 − p)."""

    def __init__(self, p: float = 0.2, seed: int = 0):
        self.p, self.seed = p, seed

    def build(self, input_shape, rng):
        self.params = {}
        return tuple(input_shape)

    def mask(self, shape, seed):
        return np.random.default_rng(seed).random(shape) >= self.p

    def forward(self, x):
        mask = self.mask(x.shape, self.seed)
        return x * mask / (1 - self.p), mask

    def backward(self, dout, cache):
        return dout * cache / (1 - self.p), {}


@register("dropout_no_rescale")
class DropoutNoRescale(Dropout):
    def backward(self, dout, cache):
        return dout * cache, {}


@register("dropout_mask_forgotten")
class DropoutMaskForgotten(Dropout):
    def backward(self, dout, cache):
        return dout / (1 - self.p), {}


@register("dropout_new_mask")
class DropoutNewMask(Dropout):
    def backward(self, dout, cache):
        return dout * self.mask(dout.shape, self.seed + 1) / (1 - self.p), {}


@register("dropout_rescaled_twice")
class DropoutRescaledTwice(Dropout):
    def backward(self, dout, cache):
        return dout * cache / (1 - self.p) ** 2, {}
