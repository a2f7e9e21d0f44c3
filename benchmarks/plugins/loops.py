"""A learner's first convolution and max-pool, written with loops as in cs231n's
conv_forward_naive / max_pool_forward_naive: one call is the cost of the check, so gradcheck
should call them as few times as a full check allows.

    gradcheck check benchmarks/plugins/convnet_loops.yaml --allow-plugins
"""
import numpy as np

from gradcheck_cli import register


@register("naive_conv")
class NaiveConv:
    """x (N, C, H, W), W (F, C, kh, kw), b (F,) → (N, F, H', W'), zero padding, stride."""

    def __init__(self, filters, kernel=3, padding=1, stride=1):
        self.filters, self.kernel, self.pad, self.stride = filters, kernel, padding, stride

    def build(self, input_shape, rng):
        C, H, W = input_shape
        k = self.kernel
        self.params = {"W": rng.standard_normal((self.filters, C, k, k)) * np.sqrt(2.0 / (C * k * k)),
                       "b": 0.1 * rng.standard_normal(self.filters)}
        return (self.filters, (H + 2 * self.pad - k) // self.stride + 1,
                (W + 2 * self.pad - k) // self.stride + 1)

    def forward(self, x):
        w, b = self.params["W"], self.params["b"]
        N, C, H, W = x.shape
        F, _, HH, WW = w.shape
        s, p = self.stride, self.pad
        Ho, Wo = 1 + (H + 2 * p - HH) // s, 1 + (W + 2 * p - WW) // s
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="constant")
        out = np.zeros((N, F, Ho, Wo))
        for n in range(N):
            for f in range(F):
                for i in range(Ho):
                    for j in range(Wo):
                        window = xp[n, :, i * s:i * s + HH, j * s:j * s + WW]
                        out[n, f, i, j] = np.sum(window * w[f]) + b[f]
        return out, x

    def backward(self, dout, x):
        w = self.params["W"]
        N, C, H, W = x.shape
        F, _, HH, WW = w.shape
        s, p = self.stride, self.pad
        _, _, Ho, Wo = dout.shape
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="constant")
        dxp = np.zeros_like(xp)
        dw = np.zeros_like(w)
        db = np.zeros(F)
        for n in range(N):
            for f in range(F):
                db[f] += dout[n, f].sum()
                for i in range(Ho):
                    for j in range(Wo):
                        window = xp[n, :, i * s:i * s + HH, j * s:j * s + WW]
                        dw[f] += window * dout[n, f, i, j]
                        dxp[n, :, i * s:i * s + HH, j * s:j * s + WW] += w[f] * dout[n, f, i, j]
        return dxp[:, :, p:p + H, p:p + W], {"W": dw, "b": db}


@register("naive_maxpool")
class NaiveMaxPool:
    """x (N, C, H, W) → (N, C, H', W'), window k×k, stride k; gradient to the first maximum."""

    def __init__(self, kernel=2):
        self.k = kernel
        self.params = {}

    def build(self, input_shape, rng):
        C, H, W = input_shape
        return (C, H // self.k, W // self.k)

    def forward(self, x):
        N, C, H, W = x.shape
        k = self.k
        out = np.zeros((N, C, H // k, W // k))
        for n in range(N):
            for c in range(C):
                for i in range(H // k):
                    for j in range(W // k):
                        out[n, c, i, j] = np.max(x[n, c, i * k:(i + 1) * k, j * k:(j + 1) * k])
        return out, x

    def backward(self, dout, x):
        N, C, H, W = x.shape
        k = self.k
        dx = np.zeros_like(x)
        for n in range(N):
            for c in range(C):
                for i in range(H // k):
                    for j in range(W // k):
                        window = x[n, c, i * k:(i + 1) * k, j * k:(j + 1) * k]
                        a, b = np.unravel_index(np.argmax(window), window.shape)
                        dx[n, c, i * k + a, j * k + b] += dout[n, c, i, j]
        return dx, {}
