"""Backprop for the deeplearning.ai course's network, written as gradcheck layers (columns layout).

This is the first attempt of the README's tutorial, "Find the bug in this backprop": it has two
bugs, found one after the other with `gradcheck check`, `gradcheck explain` and the diagnosis.
my_backprop_step2.py fixes the first, my_backprop_fixed.py both.
"""
import numpy as np

from gradcheck_cli import Loss, ShapeError, register


@register("course_linear")
class CourseLinear:
    """Z = W·A_prev + b, with A_prev (n_prev, m), W (units, n_prev), b (units, 1)."""

    layouts = ("columns",)

    def __init__(self, units: int):
        self.units = units

    def build(self, input_shape, rng):
        n_prev = input_shape[0]
        self.params = {"W": rng.standard_normal((self.units, n_prev)) * np.sqrt(2 / n_prev),
                       "b": rng.standard_normal((self.units, 1)) * 0.1}
        return (self.units,)

    def forward(self, A_prev):
        W, b = self.params["W"], self.params["b"]
        return np.dot(W, A_prev) + b, A_prev

    def backward(self, dZ, A_prev):
        W = self.params["W"]
        dW = np.dot(A_prev, dZ.T)
        db = np.sum(dZ, axis=1, keepdims=True)
        dA_prev = np.dot(W.T, dZ)
        return dA_prev, {"W": dW, "b": db}


@register("course_cost")
class CourseCost(Loss):
    """J = −(1/m)·Σ [Y·log(AL) + (1 − Y)·log(1 − AL)], AL and Y of shape (1, m)."""

    layouts = ("columns",)

    def check_input(self, input_shape):
        if tuple(input_shape) != (1,):
            raise ShapeError(f"the cost needs one sigmoid output, got {tuple(input_shape)}")

    def targets(self, input_shape, batch, rng):
        return rng.integers(0, 2, size=(1, batch)).astype(float)

    def forward(self, AL, Y):
        m = Y.shape[1]
        cost = -np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)) / m
        return cost, (AL, Y)

    def backward(self, dcost, cache):
        AL, Y = cache
        dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
        return dcost * dAL
