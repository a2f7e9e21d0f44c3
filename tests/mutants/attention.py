"""Multi-head self-attention, x (m, T, D) → (m, T, D), and a causal mask on attention scores,
as a learner writes them. Correct layers first, then the bugs."""
import math

import numpy as np

from gradcheck_cli import register


def softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@register("attention_ok")
class Attention:
    """Q, K, V = x·Wq, x·Wk, x·Wv split into heads of d = D/heads; P = softmax(Q·Kᵀ/√d);
    out = merge(P·V)·Wo."""

    def __init__(self, heads: int = 1):
        self.heads = heads

    def build(self, input_shape, rng):
        T, D = input_shape
        self.params = {k: rng.standard_normal((D, D)) / np.sqrt(D) for k in ("Wq", "Wk", "Wv", "Wo")}
        return (T, D)

    def split(self, a):
        m, T, D = a.shape
        return a.reshape(m, T, self.heads, D // self.heads).transpose(0, 2, 1, 3)

    def merge(self, a):
        m, h, T, d = a.shape
        return a.transpose(0, 2, 1, 3).reshape(m, T, h * d)

    def forward(self, x):
        p = self.params
        Q, K, V = (self.split(x @ p[k]) for k in ("Wq", "Wk", "Wv"))
        d = Q.shape[-1]
        P = softmax(Q @ K.transpose(0, 1, 3, 2) / math.sqrt(d))
        O = self.merge(P @ V)
        return O @ p["Wo"], (x, Q, K, V, P, O)

    def backward(self, dout, cache, scaled=True):
        x, Q, K, V, P, O = cache
        p = self.params
        d = Q.shape[-1]
        dWo = np.einsum("mti,mtj->ij", O, dout)
        dO = self.split(dout @ p["Wo"].T)
        dP = dO @ V.transpose(0, 1, 3, 2)
        dV = P.transpose(0, 1, 3, 2) @ dO
        dS = P * (dP - (dP * P).sum(axis=-1, keepdims=True))
        if scaled:
            dS = dS / math.sqrt(d)
        dQ, dK = self.merge(dS @ K), self.merge(dS.transpose(0, 1, 3, 2) @ Q)
        dV = self.merge(dV)
        grads = {"Wq": np.einsum("mti,mtj->ij", x, dQ), "Wk": np.einsum("mti,mtj->ij", x, dK),
                 "Wv": np.einsum("mti,mtj->ij", x, dV), "Wo": dWo}
        dx = dQ @ p["Wq"].T + dK @ p["Wk"].T + dV @ p["Wv"].T
        return dx, grads


@register("attention_no_scale_in_backward")
class AttentionNoScaleInBackward(Attention):
    def backward(self, dout, cache):
        return Attention.backward(self, dout, cache, scaled=False)


@register("attention_dWq_from_dK")
class AttentionDWqFromDK(Attention):
    def backward(self, dout, cache):
        dx, grads = Attention.backward(self, dout, cache)
        return dx, {**grads, "Wq": grads["Wk"]}


@register("attention_dWo_over_heads")
class AttentionDWoOverHeads(Attention):
    def backward(self, dout, cache):
        dx, grads = Attention.backward(self, dout, cache)
        return dx, {**grads, "Wo": grads["Wo"] / self.heads}


@register("attention_dV_untransposed_P")
class AttentionDVUntransposedP(Attention):
    def backward(self, dout, cache):
        x, Q, K, V, P, O = cache
        dx, grads = Attention.backward(self, dout, cache)
        dO = self.split(dout @ self.params["Wo"].T)
        good = self.merge(P.transpose(0, 1, 3, 2) @ dO)
        bad = self.merge(P @ dO)
        dWv = np.einsum("mti,mtj->ij", x, bad)
        return dx + (bad - good) @ self.params["Wv"].T, {**grads, "Wv": dWv}


@register("causal_mask_ok")
class CausalMask:
    """Scores (m, T, T) → the same with every future position (column j > row i) set to −1e4;
    dx = dout where j ≤ i, 0 elsewhere."""

    def build(self, input_shape, rng):
        self.params = {}
        return tuple(input_shape)

    def forward(self, s):
        T = s.shape[-1]
        keep = np.tril(np.ones((T, T), dtype=bool))
        return np.where(keep, s, -1e4), keep

    def backward(self, dout, cache):
        keep = cache
        return np.where(keep, dout, 0.0), {}


@register("causal_mask_not_in_backward")
class CausalMaskNotInBackward(CausalMask):
    def backward(self, dout, cache):
        return dout, {}
