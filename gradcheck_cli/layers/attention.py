"""Multi-head self-attention, rows layout: x (m, T, D) → (m, T, D)."""
from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from annotated_types import Gt

from .protocol import ShapeError
from .registry import register
from ._shapes import ShapedLayer, lift


def split_heads(a, heads):
    """(..., T, D) → (..., heads, T, D/heads)."""
    return np.swapaxes(a.reshape(a.shape[:-1] + (heads, -1)), -2, -3)


def merge_heads(a):
    """(..., heads, T, d) → (..., T, heads·d)."""
    a = np.swapaxes(a, -2, -3)
    return a.reshape(a.shape[:-2] + (-1,))


@register("attention")
class Attention(ShapedLayer):
    """Multi-head self-attention with Q/K/V/O projections, optionally causal.

    Q = x·Wq + bq, K = x·Wk, V = x·Wv + bv, split into `heads` of
    d = D/heads; per head S = Q·Kᵀ/√d (−∞ above the diagonal when causal), A = softmax(S) over
    keys, Y = A·V; out = concat(Y)·Wo + bo. x (m, T, D); Wq, Wk, Wv, Wo (D, D); bq, bv, bo (D,).
    There is no bk: it adds the same Q·bk to every key of a query, which softmax cancels, so its
    gradient would be zero by construction.
    VJP: dWo = Yᵀ·dout, dY = dout·Woᵀ; dA = dY·Vᵀ, dV = Aᵀ·dY; dS = A ⊙ (dA − Σ_keys dA ⊙ A);
    dQ = dS·K/√d, dK = dSᵀ·Q/√d; dW· = xᵀ·d·, db· = Σ d·; dx = dQ·Wqᵀ + dK·Wkᵀ + dV·Wvᵀ."""

    layouts = ("rows",)
    decay = ("Wq", "Wk", "Wv", "Wo")
    #: softmax shifts by the real max; the causal mask is a fixed −∞, whatever the scores
    complex_safe = True
    shapes = "(T, D) → (T, D)"

    def __init__(self, heads: Annotated[int, Gt(0)] = 1, causal: bool = False) -> None:
        super().__init__()
        self.heads, self.causal = heads, causal

    def output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ShapeError(f"attention needs a sequence (T, D) per example, got {tuple(input_shape)}")
        if input_shape[1] % self.heads:
            raise ShapeError(f"attention: D = {input_shape[1]} must be a multiple of heads = {self.heads}")
        return tuple(input_shape)

    def param_shapes(self, input_shape):
        self.output_shape(input_shape)
        d = input_shape[1]
        return {**{w: (d, d) for w in ("Wq", "Wk", "Wv", "Wo")}, **{b: (d,) for b in ("bq", "bv", "bo")}}

    def init_params(self, input_shape, rng):
        d = input_shape[1]
        return {k: (rng.standard_normal(s) / np.sqrt(d) if len(s) == 2 else 0.1 * rng.standard_normal(s))
                for k, s in self.param_shapes(input_shape).items()}

    def scale(self):
        return 1.0 / math.sqrt(self.in_shape[1] // self.heads)   # a Python float: see activations._GELU_C

    def explain(self, s):
        """Equations with this config's shapes (see gradcheck_cli.learn.explain.Symbols)."""
        A, Z, d = s.x, s.y, self.in_shape[1] // self.heads
        mask = " + causal mask (−∞ above the diagonal)" if self.causal else ""
        return {"forward": [(f"Q, K, V = {A}·Wq + bq, {A}·Wk, {A}·Wv + bv", f"{A}: {s.shape(A)}"),
                            (f"per head: A = softmax(Q·Kᵀ/√{d}{mask}), Y = A·V", f"{self.heads} heads of d = {d}"),
                            (f"{Z} = concat(Y)·Wo + bo", f"→ {Z}: {s.shape(Z)}")],
                "backward": [("dY = d{0}·Woᵀ, dWo = concat(Y)ᵀ·d{0}".format(Z), ""),
                             ("dA = dY·Vᵀ, dV = Aᵀ·dY, dS = A ⊙ (dA − Σ_keys dA ⊙ A)", ""),
                             (f"dQ = dS·K/√{d}, dK = dSᵀ·Q/√{d}", "the 1/√d again: forgetting it is a classic"),
                             (f"d{A} = dQ·Wqᵀ + dK·Wkᵀ + dV·Wvᵀ", f"→ {s.dims(A)}")]}

    def forward(self, x):
        p, h = self.params, self.heads
        W = {k: lift(p[k], 2, 1) for k in ("Wq", "Wk", "Wv", "Wo")}
        b = {k: lift(p[k], 1, 2) for k in ("bq", "bv", "bo")}
        q = split_heads(x @ W["Wq"] + b["bq"], h)
        k = split_heads(x @ W["Wk"], h)
        v = split_heads(x @ W["Wv"] + b["bv"], h)
        s = q @ np.swapaxes(k, -1, -2) * self.scale()
        if self.causal:
            T = x.shape[-2]
            s = np.where(np.tril(np.ones((T, T), dtype=bool)), s, -np.inf)
        e = np.exp(s - s.real.max(axis=-1, keepdims=True))
        a = e / e.sum(axis=-1, keepdims=True)
        y = merge_heads(a @ v)
        return y @ W["Wo"] + b["bo"], (x, q, k, v, a, y)

    def backward(self, dout, cache):
        x, q, k, v, a, y = cache
        p, h, D = self.params, self.heads, x.shape[-1]
        flat = lambda t: t.reshape(-1, D)  # noqa: E731
        grads = {"Wo": flat(y).T @ flat(dout), "bo": flat(dout).sum(axis=0)}
        dy = split_heads(dout @ p["Wo"].T, h)
        da = dy @ np.swapaxes(v, -1, -2)
        dv = np.swapaxes(a, -1, -2) @ dy
        ds = a * (da - (da * a).sum(axis=-1, keepdims=True))
        dq = merge_heads(ds @ k * self.scale())
        dk = merge_heads(np.swapaxes(ds, -1, -2) @ q * self.scale())
        dv = merge_heads(dv)
        grads.update(Wq=flat(x).T @ flat(dq), Wk=flat(x).T @ flat(dk), Wv=flat(x).T @ flat(dv),
                     bq=flat(dq).sum(axis=0), bv=flat(dv).sum(axis=0))
        dx = dq @ p["Wq"].T + dk @ p["Wk"].T + dv @ p["Wv"].T
        return dx, {key: grads[key] for key in p}
