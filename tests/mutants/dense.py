"""Dense layers as a learner writes them (rows layout: x is (m, n)); the correct one first, then
the planted bugs, one per class."""
import numpy as np

from gradcheck_cli import register


@register("dense_ok")
class Dense:
    """Z = x·W + b.  x (m, n), W (n, units), b (units,).  dx = dZ·Wᵀ, dW = xᵀ·dZ, db = Σ_m dZ."""

    def __init__(self, units: int):
        self.units = units

    def build(self, input_shape, rng):
        n = input_shape[0]
        self.params = {"W": rng.standard_normal((n, self.units)) / np.sqrt(n),
                       "b": 0.1 * rng.standard_normal(self.units)}
        return (self.units,)

    def forward(self, x):
        return x @ self.params["W"] + self.params["b"], x

    def backward(self, dout, cache):
        x = cache
        return dout @ self.params["W"].T, {"W": x.T @ dout, "b": dout.sum(axis=0)}


@register("dense_dW_transposed")
class DenseDWTransposed(Dense):
    def backward(self, dout, cache):
        x = cache
        return dout @ self.params["W"].T, {"W": dout.T @ x, "b": dout.sum(axis=0)}


@register("dense_db_not_summed")
class DenseDbNotSummed(Dense):
    def backward(self, dout, cache):
        x = cache
        return dout @ self.params["W"].T, {"W": x.T @ dout, "b": dout}


@register("dense_dx_sign")
class DenseDxSign(Dense):
    def backward(self, dout, cache):
        x = cache
        return -dout @ self.params["W"].T, {"W": x.T @ dout, "b": dout.sum(axis=0)}


@register("dense_dW_over_m")
class DenseDWOverM(Dense):
    def backward(self, dout, cache):
        x = cache
        m = x.shape[0]
        return dout @ self.params["W"].T, {"W": x.T @ dout / m, "b": dout.sum(axis=0)}


@register("dense_db_zero")
class DenseDbZero(Dense):
    def backward(self, dout, cache):
        x = cache
        return dout @ self.params["W"].T, {"W": x.T @ dout, "b": np.zeros(self.units)}
