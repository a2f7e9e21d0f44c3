"""A leaky ReLU activation, with one planted bug.

THE BUG: a sign error on the negative side: for Z ≤ 0 the slope is alpha, but the backward uses
−alpha. gradcheck fails row x of this layer; the layers before it are right in isolation but get
a wrong dA from it, so their rows show "inherited".
"""
import numpy as np

from gradcheck_cli import register


@register("leaky_relu_sign_error")
class LeakyReLUSignError:
    """A = Z where Z > 0, alpha·Z elsewhere; Z and A are (n, m).

    Correct backward: dZ = dA where Z > 0, alpha·dA elsewhere.
    """

    def __init__(self, alpha: float = 0.1):
        self.alpha = alpha

    def build(self, input_shape, rng):
        self.params = {}
        return tuple(input_shape)

    def forward(self, Z):
        A = np.where(Z > 0, Z, self.alpha * Z)
        return A, Z

    def backward(self, dA, cache):
        Z = cache
        dZ = np.where(Z > 0, dA, -self.alpha * dA)  # BUG: should be self.alpha * dA
        return dZ, {}
