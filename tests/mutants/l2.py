"""Weight decay as a learner writes it: a dense layer whose backward adds the L2 term itself,
although the config's `l2` (the cost's (λ/2m)·Σ‖W‖²) is gradcheck's to add. Correct layer first."""
import numpy as np

from gradcheck_cli import register


@register("l2_dense_ok")
class DecayedDense:
    """Z = x·W + b; W is penalized by the config's l2 (decay = ("W",)), so the backward returns
    the data term only: dW = xᵀ·dZ."""

    decay = ("W",)

    def __init__(self, units: int, lam: float = 0.0):
        self.units, self.lam = units, lam

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


@register("l2_added_in_backward")
class L2AddedInBackward(DecayedDense):
    def backward(self, dout, cache):
        dx, grads = DecayedDense.backward(self, dout, cache)
        return dx, {**grads, "W": grads["W"] + self.lam * self.params["W"]}


@register("l2_added_over_m")
class L2AddedOverM(DecayedDense):
    def backward(self, dout, cache):
        dx, grads = DecayedDense.backward(self, dout, cache)
        m = dout.shape[0]
        return dx, {**grads, "W": grads["W"] + self.lam / m * self.params["W"]}


@register("l2_added_twice_lam")
class L2AddedTwiceLam(DecayedDense):
    def backward(self, dout, cache):
        dx, grads = DecayedDense.backward(self, dout, cache)
        return dx, {**grads, "W": grads["W"] + 2 * self.lam * self.params["W"]}


@register("l2_bias_decayed")
class L2BiasDecayed(DecayedDense):
    def backward(self, dout, cache):
        dx, grads = DecayedDense.backward(self, dout, cache)
        return dx, {**grads, "b": grads["b"] + self.lam * self.params["b"]}
