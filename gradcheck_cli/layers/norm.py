"""Normalization layers (training-mode statistics), rows layout.

All three share one VJP. With x̂ = (x − μ)·ι, ι = 1/√(σ² + eps), μ and σ² over a set of N
entries, and dx̂ = dout ⊙ γ:  dx = (ι/N)·(N·dx̂ − Σ dx̂ − x̂·Σ(dx̂ ⊙ x̂)), sums over the same set.
The middle term is the path through μ, the last the path through σ².
"""
from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from annotated_types import Gt

from .protocol import ShapeError
from .registry import register
from ._shapes import ShapedLayer, lift


def normalize(x, axes, eps):
    mu = x.mean(axis=axes, keepdims=True)
    xc = x - mu
    inv = 1.0 / np.sqrt((xc * xc).mean(axis=axes, keepdims=True) + eps)
    return xc * inv, inv


def normalize_backward(dxhat, xhat, inv, axes):
    # a Python int: a NumPy int64 scalar would upcast a float32 dx to float64
    n = math.prod(dxhat.shape[a] for a in axes)
    return (inv / n) * (n * dxhat - dxhat.sum(axis=axes, keepdims=True)
                        - xhat * (dxhat * xhat).sum(axis=axes, keepdims=True))


class _Norm(ShapedLayer):
    layouts = ("rows",)
    #: σ² is the mean of (x − μ)·(x − μ), never of |x − μ|² (np.var), so it stays analytic
    complex_safe = True

    def __init__(self, eps: Annotated[float, Gt(0)] = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def channels(self, input_shape):
        return input_shape[0]

    def param_shapes(self, input_shape):
        c = self.channels(input_shape)
        return {"gamma": (c,), "beta": (c,)}

    def init_params(self, input_shape, rng):
        # Not 1 and 0: a γ of exactly 1 would hide a backward that forgets to multiply by it.
        c = self.channels(input_shape)
        return {"gamma": 1.0 + 0.1 * rng.standard_normal(c), "beta": 0.1 * rng.standard_normal(c)}

    def affine(self, p):
        """γ or β lifted to broadcast against (*P, m, C, *S)."""
        r = len(self.in_shape)
        return lift(p, 1, 1, r - 1)

    def param_axes(self, ndim):
        """The axes of (m, C, *S) that dγ and dβ sum over: all but the channel axis."""
        return (0, *range(2, ndim))

    def explain(self, s):
        """Equations with this config's shapes; the statistics' axes come from the docstring."""
        A, Z, g, b = s.x, s.y, s.p("gamma"), s.p("beta")
        summary = " ".join((type(self).__doc__ or "").split()).split(" out = ")[0]
        return {"forward": [(f"x̂ = ({A} − μ)/√(σ² + {self.eps:g}),  {Z} = {g} ⊙ x̂ + {b}",
                             f"{A}: {s.shape(A)} → {Z}: {s.shape(Z)}; {g}, {b}: {s.dims(g)}"), summary],
                "backward": [(f"d{g} = Σ d{Z} ⊙ x̂,  d{b} = Σ d{Z}", f"→ {s.dims(g)}"),
                             (f"d{A} = (ι/N)·(N·dx̂ − Σ dx̂ − x̂·Σ(dx̂ ⊙ x̂)),  dx̂ = d{Z} ⊙ {g}, ι = 1/√(σ² + eps)",
                              "the middle term is the path through μ, the last through σ²")]}

    def forward(self, x):
        xhat, inv = self.stats(x)
        return self.affine(self.params["gamma"]) * xhat + self.affine(self.params["beta"]), (xhat, inv)

    def backward(self, dout, cache):
        xhat, inv = cache
        dx = self.stats_backward(dout * self.affine(self.params["gamma"]), xhat, inv)
        axes = self.param_axes(dout.ndim)
        return dx, {"gamma": (dout * xhat).sum(axis=axes), "beta": dout.sum(axis=axes)}


@register("batchnorm")
class BatchNorm(_Norm):
    """Batch normalization with training-mode statistics, per feature or per channel.

    Statistics per channel over the batch (and the spatial axes for (C, H, W) or (C, L) input);
    1-D input (n,) normalizes each feature over the batch.
    out = γ·x̂ + β with x̂ = (x − μ)/√(σ² + eps), γ, β (C,).
    dγ = Σ dout ⊙ x̂, dβ = Σ dout (over batch and space); dx = (ι/N)(N·dx̂ − Σdx̂ − x̂·Σ dx̂⊙x̂),
    dx̂ = dout ⊙ γ, N = m·|S|."""

    shapes = "(C, *S) → same"

    def _axes(self, ndim):
        r = len(self.in_shape)
        return (ndim - r - 1, *range(ndim - r + 1, ndim))

    def stats(self, x):
        return normalize(x, self._axes(x.ndim), self.eps)

    def stats_backward(self, dxhat, xhat, inv):
        return normalize_backward(dxhat, xhat, inv, self._axes(dxhat.ndim))


@register("layernorm")
class LayerNorm(_Norm):
    """Layer normalization over the last axis (features, d_model).

    x (m, ..., D) → same,
    out = γ·x̂ + β, x̂ = (x − μ)/√(σ² + eps) with μ, σ² over D per position; γ, β (D,).
    dγ = Σ dout ⊙ x̂, dβ = Σ dout over all other axes; dx = (ι/D)(D·dx̂ − Σ_D dx̂ − x̂·Σ_D dx̂⊙x̂)."""

    shapes = "(..., D) → same"

    def channels(self, input_shape):
        return input_shape[-1]

    def affine(self, p):
        return lift(p, 1, len(self.in_shape))

    def param_axes(self, ndim):
        return tuple(range(ndim - 1))

    def stats(self, x):
        return normalize(x, (-1,), self.eps)

    def stats_backward(self, dxhat, xhat, inv):
        return normalize_backward(dxhat, xhat, inv, (-1,))


@register("groupnorm")
class GroupNorm(_Norm):
    """Group normalization: channels split into `groups`, normalized per example and group.

    Statistics per example and group over
    the group's channels and all spatial positions. x (m, C, *S) → same, γ, β (C,).
    dγ, dβ as batchnorm; dx as the shared formula with N = (C/groups)·|S| per (example, group)."""

    shapes = "(C, *S) → same"

    def __init__(self, groups: Annotated[int, Gt(0)], eps: Annotated[float, Gt(0)] = 1e-5) -> None:
        super().__init__(eps)
        self.groups = groups

    def output_shape(self, input_shape):
        if input_shape[0] % self.groups:
            raise ShapeError(f"groupnorm: channels ({input_shape[0]}) must be a multiple of groups "
                             f"({self.groups})")
        return tuple(input_shape)

    def _grouped(self, x):
        r = len(self.in_shape)
        lead = x.shape[: x.ndim - r]
        g = x.reshape(lead + (self.groups, -1) + self.in_shape[1:])
        return g, tuple(range(g.ndim - r, g.ndim))

    def stats(self, x):
        g, axes = self._grouped(x)
        xhat, inv = normalize(g, axes, self.eps)
        return xhat.reshape(x.shape), inv

    def stats_backward(self, dxhat, xhat, inv):
        g, axes = self._grouped(dxhat)
        dx = normalize_backward(g, self._grouped(xhat)[0], inv, axes)
        return dx.reshape(dxhat.shape)
