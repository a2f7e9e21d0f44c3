"""A sigmoid activation in the course's notation, with one planted bug.

THE BUG: the backward uses σ(Z) as the derivative. The derivative of the sigmoid is
σ'(Z) = σ(Z)·(1 − σ(Z)). gradcheck fails row x of this layer; the layers before it are right in
isolation but get a wrong dA from it, so their rows show "inherited".
"""
import numpy as np

from gradcheck_cli import register


@register("sigmoid_wrong_derivative")
class SigmoidWrongDerivative:
    """A = σ(Z) = 1 / (1 + e^(−Z)), elementwise; Z and A are (n, m).

    Correct backward: dZ = dA · σ(Z) · (1 − σ(Z)).
    """

    def build(self, input_shape, rng):
        self.params = {}
        return tuple(input_shape)

    def forward(self, Z):
        A = 1 / (1 + np.exp(-Z))
        return A, A

    def backward(self, dA, cache):
        A = cache
        dZ = dA * A  # BUG: should be dA * A * (1 - A)
        return dZ, {}
