"""A fully connected layer in the deeplearning.ai course's notation, with one planted bug.

THE BUG: the bias gradient is forgotten (left at zeros), as if b did not take part in Z. gradcheck
fails row b of this layer; x and W are right, so no other row is affected.
"""
import numpy as np

from gradcheck_cli import register


@register("dense_forgotten_bias")
class DenseForgottenBias:
    """Z = W·A_prev + b, with A_prev (n_prev, m), W (units, n_prev), b (units, 1).

    Correct backward: dW = dZ·A_prevᵀ, db = Σ over examples of dZ, dA_prev = Wᵀ·dZ.
    """

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
        Z = np.dot(W, A_prev) + b
        return Z, A_prev

    def backward(self, dZ, cache):
        A_prev = cache
        W = self.params["W"]
        dW = np.dot(dZ, A_prev.T)
        db = np.zeros_like(self.params["b"])  # BUG: should be np.sum(dZ, axis=1, keepdims=True)
        dA_prev = np.dot(W.T, dZ)
        return dA_prev, {"W": dW, "b": db}
