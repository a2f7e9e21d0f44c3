"""The course's cross-entropy cost, with one planted bug.

gradcheck's convention: every backward returns the exact vector-Jacobian product. The cost is the
MEAN over the m examples, so the 1/m belongs to the cost's own backward (the course puts it in
dW = (1/m)·dZ·A_prevᵀ instead; here the layers take none).

THE BUG: dAL is missing the 1/m, so it is m times too large. gradcheck fails the loss row; every
layer before it is right in isolation but wrong end to end, so those rows show "inherited".
"""
import numpy as np

from gradcheck_cli import Loss, ShapeError, register


@register("cross_entropy_missing_mean")
class CrossEntropyMissingMean(Loss):
    """J = −(1/m)·Σ [Y·log(AL) + (1 − Y)·log(1 − AL)], AL and Y of shape (1, m).

    Correct backward: dAL = −(1/m)·(Y/AL − (1 − Y)/(1 − AL)).
    """

    layouts = ("columns",)

    def check_input(self, input_shape):
        if tuple(input_shape) != (1,):
            raise ShapeError(f"cross-entropy needs one sigmoid output, got {tuple(input_shape)}")

    def targets(self, input_shape, batch, rng):
        return rng.integers(0, 2, size=(1, batch)).astype(float)

    def forward(self, AL, Y):
        m = Y.shape[1]
        cost = -np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)) / m
        return cost, (AL, Y)

    def backward(self, dcost, cache):
        AL, Y = cache
        dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))  # BUG: missing / m
        return dcost * dAL
