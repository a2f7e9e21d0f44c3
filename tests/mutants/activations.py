"""tanh and sigmoid as a learner writes them; the correct ones first, then one planted bug per class."""
import numpy as np

from gradcheck_cli import register


@register("tanh_ok")
class Tanh:
    """A = tanh(Z);  dZ = dA ⊙ (1 − A²)."""

    def build(self, input_shape, rng):
        self.params = {}
        return tuple(input_shape)

    def forward(self, Z):
        A = np.tanh(Z)
        return A, (Z, A)

    def backward(self, dA, cache):
        Z, A = cache
        return dA * (1 - A ** 2), {}


@register("sigmoid_ok")
class Sigmoid(Tanh):
    """A = σ(Z);  dZ = dA ⊙ A(1 − A)."""

    def forward(self, Z):
        A = 1 / (1 + np.exp(-Z))
        return A, (Z, A)

    def backward(self, dA, cache):
        Z, A = cache
        return dA * A * (1 - A), {}


@register("tanh_prime_of_z")
class TanhPrimeOfZ(Tanh):
    def backward(self, dA, cache):
        Z, A = cache
        return dA * (1 - Z ** 2), {}


@register("tanh_one_minus_a")
class TanhOneMinusA(Tanh):
    def backward(self, dA, cache):
        Z, A = cache
        return dA * (1 - A), {}


@register("tanh_no_derivative")
class TanhNoDerivative(Tanh):
    def backward(self, dA, cache):
        return dA, {}


@register("tanh_sign")
class TanhSign(Tanh):
    def backward(self, dA, cache):
        Z, A = cache
        return dA * (A ** 2 - 1), {}


@register("sigmoid_prime_is_a")
class SigmoidPrimeIsA(Sigmoid):
    def backward(self, dA, cache):
        Z, A = cache
        return dA * A, {}


@register("sigmoid_prime_of_z")
class SigmoidPrimeOfZ(Sigmoid):
    def backward(self, dA, cache):
        Z, A = cache
        return dA * Z * (1 - Z), {}


@register("sigmoid_tanh_derivative")
class SigmoidTanhDerivative(Sigmoid):
    def backward(self, dA, cache):
        Z, A = cache
        return dA * (1 - A ** 2), {}


@register("sigmoid_of_a")
class SigmoidOfA(Sigmoid):
    def backward(self, dA, cache):
        Z, A = cache
        s = 1 / (1 + np.exp(-A))
        return dA * s * (1 - s), {}
