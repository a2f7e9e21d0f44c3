"""A residual block as a learner writes it: out = x + tanh(x·W + b), x (m, D), W (D, D).
The correct layer first, then the bugs."""
import numpy as np

from gradcheck_cli import register


@register("residual_ok")
class Residual:
    """out = x + tanh(x·W + b);  dx = dout + dz·Wᵀ with dz = dout ⊙ (1 − t²)."""

    def build(self, input_shape, rng):
        D = input_shape[0]
        self.params = {"W": rng.standard_normal((D, D)) / np.sqrt(D), "b": 0.1 * rng.standard_normal(D)}
        return (D,)

    def forward(self, x):
        t = np.tanh(x @ self.params["W"] + self.params["b"])
        return x + t, (x, t)

    def branch(self, dout, cache):
        x, t = cache
        dz = dout * (1 - t ** 2)
        return dz @ self.params["W"].T, {"W": x.T @ dz, "b": dz.sum(axis=0)}

    def backward(self, dout, cache):
        dbranch, grads = self.branch(dout, cache)
        return dout + dbranch, grads


@register("residual_no_skip")
class ResidualNoSkip(Residual):
    def backward(self, dout, cache):
        return self.branch(dout, cache)


@register("residual_skip_twice")
class ResidualSkipTwice(Residual):
    def backward(self, dout, cache):
        dbranch, grads = self.branch(dout, cache)
        return 2 * dout + dbranch, grads


@register("residual_only_skip")
class ResidualOnlySkip(Residual):
    def backward(self, dout, cache):
        _, grads = self.branch(dout, cache)
        return dout, grads


@register("residual_dW_transposed")
class ResidualDWTransposed(Residual):
    def backward(self, dout, cache):
        dx, grads = Residual.backward(self, dout, cache)
        return dx, {**grads, "W": grads["W"].T}
