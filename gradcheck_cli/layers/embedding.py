"""Embedding lookup for integer token input (set `vocab:` under `input:`)."""
from __future__ import annotations

from typing import Annotated

import numpy as np
from annotated_types import Gt

from .registry import register
from ._shapes import ShapedLayer


@register("embedding")
class Embedding(ShapedLayer):
    """Embedding lookup: integer token ids → learned vectors.

    x (m, *S) integer indices in [0, vocab), W (vocab, dim) → out (m, *S, dim),
    out[..., :] = W[x[...], :].
    dW[v] = Σ over positions with x = v of dout[position] (scatter-add); x has no gradient (the
    table shows its row as n/a), dx is returned as zeros."""

    layouts = ("rows",)
    #: the ids stay integers; a lookup in a complex W is linear in W
    complex_safe = True
    shapes = "(*S) integer → (*S, dim)"

    def __init__(self, vocab: Annotated[int, Gt(0)], dim: Annotated[int, Gt(0)]) -> None:
        super().__init__()
        self.vocab, self.dim = vocab, dim

    def output_shape(self, input_shape):
        return (*input_shape, self.dim)

    def param_shapes(self, input_shape):
        return {"W": (self.vocab, self.dim)}

    def init_params(self, input_shape, rng):
        return {"W": rng.standard_normal((self.vocab, self.dim))}

    def _indices(self, x):
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.integer):
            if not np.all(x == np.round(x.real)):
                raise ValueError("embedding needs integer indices: set `vocab` under `input:` so "
                                 "that the input holds token ids")
            x = x.real.astype(np.intp)
        if x.size and (x.min() < 0 or x.max() >= self.vocab):
            raise ValueError(f"embedding: index {int(x.max() if x.max() >= self.vocab else x.min())} "
                             f"is outside [0, vocab={self.vocab}): make input.vocab ≤ {self.vocab}")
        return x

    def forward(self, x):
        idx = self._indices(x)
        return self.params["W"][..., idx, :], idx

    def backward(self, dout, cache):
        idx = cache
        dW = np.zeros((self.vocab, self.dim), dtype=dout.dtype)
        np.add.at(dW, idx.reshape(-1), dout.reshape(-1, self.dim))
        return np.zeros(idx.shape, dtype=dout.dtype), {"W": dW}
