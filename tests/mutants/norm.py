"""Batch norm (over the batch axis, x (m, D)) and layer norm (over the last axis, x (m, T, D)) as
a learner writes them: x̂ = (x − μ)/σ, out = γ·x̂ + β. Correct layers first, then the bugs."""
import numpy as np

from gradcheck_cli import register


@register("batchnorm_ok")
class BatchNorm:
    """dx = (1/(m·σ))·(m·dx̂ − Σ dx̂ − x̂·Σ dx̂·x̂), dx̂ = dout·γ; dγ = Σ dout·x̂, dβ = Σ dout."""

    axis = 0

    def __init__(self, eps: float = 1e-5):
        self.eps = eps

    def build(self, input_shape, rng):
        D = input_shape[-1]
        self.params = {"gamma": 1 + 0.1 * rng.standard_normal(D), "beta": 0.1 * rng.standard_normal(D)}
        return tuple(input_shape)

    def forward(self, x):
        mu = x.mean(axis=self.axis, keepdims=True)
        var = x.var(axis=self.axis, keepdims=True)
        inv = 1 / np.sqrt(var + self.eps)
        xhat = (x - mu) * inv
        return self.params["gamma"] * xhat + self.params["beta"], (xhat, inv)

    def sums(self, a):
        """Σ over every axis but the features (γ and β's gradients)."""
        return a.reshape(-1, a.shape[-1]).sum(axis=0)

    def backward(self, dout, cache):
        xhat, inv = cache
        n = xhat.shape[self.axis]
        dxhat = dout * self.params["gamma"]
        dx = inv / n * (n * dxhat - dxhat.sum(axis=self.axis, keepdims=True)
                        - xhat * (dxhat * xhat).sum(axis=self.axis, keepdims=True))
        return dx, {"gamma": self.sums(dout * xhat), "beta": self.sums(dout)}


@register("batchnorm_no_mean_term")
class BatchNormNoMeanTerm(BatchNorm):
    def backward(self, dout, cache):
        xhat, inv = cache
        n = xhat.shape[0]
        dxhat = dout * self.params["gamma"]
        dx = inv / n * (n * dxhat - xhat * (dxhat * xhat).sum(axis=0, keepdims=True))
        return dx, {"gamma": (dout * xhat).sum(axis=0), "beta": dout.sum(axis=0)}


@register("batchnorm_no_variance_term")
class BatchNormNoVarianceTerm(BatchNorm):
    def backward(self, dout, cache):
        xhat, inv = cache
        n = xhat.shape[0]
        dxhat = dout * self.params["gamma"]
        dx = inv / n * (n * dxhat - dxhat.sum(axis=0, keepdims=True))
        return dx, {"gamma": (dout * xhat).sum(axis=0), "beta": dout.sum(axis=0)}


@register("batchnorm_dgamma_no_xhat")
class BatchNormDgammaNoXhat(BatchNorm):
    def backward(self, dout, cache):
        dx, grads = BatchNorm.backward(self, dout, cache)
        return dx, {**grads, "gamma": dout.sum(axis=0)}


@register("batchnorm_dbeta_mean")
class BatchNormDbetaMean(BatchNorm):
    def backward(self, dout, cache):
        dx, grads = BatchNorm.backward(self, dout, cache)
        return dx, {**grads, "beta": dout.mean(axis=0)}


@register("batchnorm_dgamma_wrong_axis")
class BatchNormDgammaWrongAxis(BatchNorm):
    def backward(self, dout, cache):
        xhat, _ = cache
        dx, grads = BatchNorm.backward(self, dout, cache)
        return dx, {**grads, "gamma": (dout * xhat).sum(axis=1)}


@register("batchnorm_dx_no_gamma")
class BatchNormDxNoGamma(BatchNorm):
    def backward(self, dout, cache):
        xhat, inv = cache
        n = xhat.shape[0]
        dxhat = dout                                   # the factor γ forgotten
        dx = inv / n * (n * dxhat - dxhat.sum(axis=0, keepdims=True)
                        - xhat * (dxhat * xhat).sum(axis=0, keepdims=True))
        return dx, {"gamma": (dout * xhat).sum(axis=0), "beta": dout.sum(axis=0)}


@register("layernorm_ok")
class LayerNorm(BatchNorm):
    """Normalized over the last axis (the features of each position)."""

    axis = -1


@register("layernorm_dgamma_not_summed_over_time")
class LayerNormDgammaNotSummedOverTime(LayerNorm):
    def backward(self, dout, cache):
        xhat, _ = cache
        dx, grads = LayerNorm.backward(self, dout, cache)
        return dx, {**grads, "gamma": (dout * xhat).sum(axis=0)}


@register("layernorm_no_mean_term")
class LayerNormNoMeanTerm(LayerNorm):
    def backward(self, dout, cache):
        xhat, inv = cache
        D = xhat.shape[-1]
        dxhat = dout * self.params["gamma"]
        dx = inv / D * (D * dxhat - xhat * (dxhat * xhat).sum(axis=-1, keepdims=True))
        return dx, {"gamma": self.sums(dout * xhat), "beta": self.sums(dout)}


@register("layernorm_dx_missing_1_over_D")
class LayerNormDxMissing1OverD(LayerNorm):
    def backward(self, dout, cache):
        xhat, inv = cache
        D = xhat.shape[-1]
        dxhat = dout * self.params["gamma"]
        dx = inv * (D * dxhat - dxhat.sum(axis=-1, keepdims=True)
                    - xhat * (dxhat * xhat).sum(axis=-1, keepdims=True))
        return dx, {"gamma": self.sums(dout * xhat), "beta": self.sums(dout)}
