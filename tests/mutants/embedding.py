"""An embedding lookup as a learner writes it: integer ids x (m, T) → W[x] (m, T, dim).
The correct layer first, then the bugs."""
import numpy as np

from gradcheck_cli import register


@register("embedding_ok")
class Embedding:
    """out = W[x];  dW = Σ over the positions holding each id (np.add.at); x has no gradient."""

    def __init__(self, vocab: int, dim: int):
        self.vocab, self.dim = vocab, dim

    def build(self, input_shape, rng):
        self.params = {"W": rng.standard_normal((self.vocab, self.dim))}
        return (*input_shape, self.dim)

    def forward(self, x):
        return self.params["W"][x], x

    def backward(self, dout, cache):
        x = cache
        dW = np.zeros_like(self.params["W"])
        np.add.at(dW, x, dout)
        return np.zeros(x.shape), {"W": dW}


@register("embedding_fancy_index_add")
class EmbeddingFancyIndexAdd(Embedding):
    def backward(self, dout, cache):
        x = cache
        dW = np.zeros_like(self.params["W"])
        dW[x] += dout                       # repeated ids: only one of their rows lands
        return np.zeros(x.shape), {"W": dW}


@register("embedding_dW_over_m")
class EmbeddingDWOverM(Embedding):
    def backward(self, dout, cache):
        dx, grads = Embedding.backward(self, dout, cache)
        return dx, {"W": grads["W"] / cache.shape[0]}


@register("embedding_dW_transposed")
class EmbeddingDWTransposed(Embedding):
    def backward(self, dout, cache):
        dx, grads = Embedding.backward(self, dout, cache)
        return dx, {"W": grads["W"].T}


@register("embedding_ids_off_by_one")
class EmbeddingIdsOffByOne(Embedding):
    def backward(self, dout, cache):
        x = cache
        dW = np.zeros_like(self.params["W"])
        np.add.at(dW, x - 1, dout)          # ids taken as 1-based
        return np.zeros(x.shape), {"W": dW}
