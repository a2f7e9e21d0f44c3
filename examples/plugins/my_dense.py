"""An example plugin: a fully connected layer in the deeplearning.ai course's columns layout.

Check it with:  gradcheck check examples/plugins/my_dense.yaml --allow-plugins
"""
import numpy as np

from gradcheck_cli import register


@register("my_dense")
class MyDense:
    """Z = W·A_prev + b.  A_prev (n_prev, m), W (units, n_prev), b (units, 1), Z (units, m).

    Backward (vector-Jacobian products, dZ is the upstream gradient):
        dW = dZ·A_prevᵀ,  db = Σ over the m examples of dZ,  dA_prev = Wᵀ·dZ
    """

    # This layer implements the course's layout only; gradcheck refuses it in a rows config.
    layouts = ("columns",)

    def __init__(self, units: int, scale: float = 1.0):
        # Options come from the config entry as keyword arguments: {type: my_dense, units: 3}.
        self.units = units
        self.scale = scale

    def build(self, input_shape, rng):
        # input_shape is per example, without the batch axis: (n_prev,).
        n_prev = input_shape[0]
        self.params = {
            "W": self.scale * rng.standard_normal((self.units, n_prev)) / np.sqrt(n_prev),
            "b": 0.1 * rng.standard_normal((self.units, 1)),
        }
        return (self.units,)

    def forward(self, A_prev):
        W, b = self.params["W"], self.params["b"]
        Z = W @ A_prev + b
        return Z, A_prev  # (out, cache): the cache holds what backward needs

    def backward(self, dZ, cache):
        A_prev = cache
        W = self.params["W"]
        grads = {"W": dZ @ A_prev.T, "b": dZ.sum(axis=1, keepdims=True)}
        dA_prev = W.T @ dZ
        return dA_prev, grads
