"""Kinks and layer-author surprises: max-pool backwards at tied maxima, a cache kept on self,
dx = None for token input, a float32 layer that computes in float64, a forward that writes into
its input. Plain NumPy plugin layers, written as a learner writes them; each mutant's planted
bug is in its docstring."""
import numpy as np

from gradcheck_cli import register


def _windows(x):
    """(m, C, H, W) → (m, C, H/2, W/2, 4): the 2×2 windows of a stride-2 pool, flattened."""
    m, c, h, w = x.shape
    return x.reshape(m, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(m, c, h // 2, w // 2, 4)


def _unwindows(d, shape):
    m, c, h, w = shape
    return d.reshape(m, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(shape)


@register("kinks_pool_ok")
class PoolFirst:
    """2×2 max pool, stride 2; backward routes dout to the first maximum of each window."""

    def build(self, input_shape, rng):
        self.params = {}
        c, h, w = input_shape
        return (c, h // 2, w // 2)

    def forward(self, x):
        return _windows(x).max(axis=-1), x

    def backward(self, dout, x):
        win = _windows(x)
        first = np.arange(4) == win.argmax(axis=-1)[..., None]
        return _unwindows(first * dout[..., None], x.shape), {}


@register("kinks_pool_last")
class PoolLast(PoolFirst):
    """Correct too: the last maximum of a window takes dout (another valid subgradient)."""

    def backward(self, dout, x):
        win = _windows(x)[..., ::-1]
        last = (np.arange(4) == win.argmax(axis=-1)[..., None])[..., ::-1]
        return _unwindows(last * dout[..., None], x.shape), {}


@register("kinks_pool_split")
class PoolSplit(PoolFirst):
    """Correct too: dout shared equally by the tied maxima (a convex combination)."""

    def backward(self, dout, x):
        win = _windows(x)
        tied = win == win.max(axis=-1, keepdims=True)
        share = (tied / tied.sum(axis=-1, keepdims=True)).astype(dout.dtype)   # bool / int is float64
        return _unwindows(share * dout[..., None], x.shape), {}


@register("kinks_pool_every_tie")
class PoolEveryTie(PoolFirst):
    """BUG: every entry equal to the window's maximum gets the whole dout."""

    def backward(self, dout, x):
        win = _windows(x)
        tied = win == win.max(axis=-1, keepdims=True)
        return _unwindows(tied * dout[..., None], x.shape), {}


def _overlapping(x, k, stride):
    """(m, C, H, W) → (m, C, OH, OW, k·k): the k×k windows at the given stride (they overlap
    when stride < k), each flattened in row-major order."""
    m, c, h, w = x.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.empty((m, c, oh, ow, k * k), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + k, j * stride:j * stride + k].reshape(m, c, -1)
    return out


def _fold(d, shape, k, stride):
    """The adjoint of _overlapping: each window's values added back where they came from."""
    m, c, oh, ow, _ = d.shape
    dx = np.zeros(shape, dtype=d.dtype)
    for i in range(oh):
        for j in range(ow):
            dx[:, :, i * stride:i * stride + k, j * stride:j * stride + k] += d[:, :, i, j].reshape(m, c, k, k)
    return dx


@register("kinks_pool_overlap_ok")
class PoolOverlapFirst:
    """k×k max pool at any stride (overlapping windows when stride < k); backward routes each
    window's dout to its first maximum, and an entry in several windows adds up what it gets."""

    def __init__(self, kernel: int = 3, stride: int = 1):
        self.kernel, self.stride = kernel, stride

    def build(self, input_shape, rng):
        self.params = {}
        c, h, w = input_shape
        return (c, (h - self.kernel) // self.stride + 1, (w - self.kernel) // self.stride + 1)

    def forward(self, x):
        return _overlapping(x, self.kernel, self.stride).max(axis=-1), x

    def backward(self, dout, x):
        win = _overlapping(x, self.kernel, self.stride)
        first = np.arange(win.shape[-1]) == win.argmax(axis=-1)[..., None]
        return _fold(first * dout[..., None], x.shape, self.kernel, self.stride), {}


@register("kinks_pool_overlap_every_tie")
class PoolOverlapEveryTie(PoolOverlapFirst):
    """BUG: every entry equal to its window's maximum gets the window's whole dout."""

    def backward(self, dout, x):
        win = _overlapping(x, self.kernel, self.stride)
        tied = win == win.max(axis=-1, keepdims=True)
        return _fold(tied * dout[..., None], x.shape, self.kernel, self.stride), {}


@register("kinks_pair_relu_ok")
class PairRelu:
    """out = relu(a − b), a and b the two halves of the features: one relu kink that two input
    entries share, so both flip together where a = b (after a relu, where both are 0)."""

    def build(self, input_shape, rng):
        self.params = {}
        return (input_shape[0] // 2,)

    def forward(self, x):
        k = x.shape[-1] // 2
        return np.maximum(x[..., :k] - x[..., k:], 0), x

    def backward(self, dout, x):
        k = x.shape[-1] // 2
        g = dout * (x[..., :k] - x[..., k:] > 0)
        return np.concatenate([g, -g], axis=-1), {}


@register("kinks_pair_relu_two_masks")
class PairReluTwoMasks(PairRelu):
    """BUG: a's mask is a − b ≥ 0 and b's is a − b > 0, so at a tie only a gets dout."""

    def backward(self, dout, x):
        k = x.shape[-1] // 2
        d = x[..., :k] - x[..., k:]
        return np.concatenate([dout * (d >= 0), -dout * (d > 0)], axis=-1), {}


@register("kinks_dense_ok")
class Dense:
    """out = x W + b, the cache is x."""

    def __init__(self, units: int = 4):
        self.units = units

    def build(self, input_shape, rng):
        n = input_shape[0]
        self.params = {"W": rng.standard_normal((n, self.units)) / np.sqrt(n),
                       "b": 0.1 * rng.standard_normal(self.units)}
        return (self.units,)

    def forward(self, x):
        return x @ self.params["W"] + self.params["b"], x

    def backward(self, dout, x):
        return dout @ self.params["W"].T, {"W": x.T @ dout, "b": dout.sum(axis=0)}


@register("kinks_dense_self_cache")
class DenseSelfCache(Dense):
    """BUG: forward keeps its input on self (the cs231n habit), backward reads it from there."""

    def forward(self, x):
        self.x = x
        return x @ self.params["W"] + self.params["b"], None

    def backward(self, dout, cache):
        return dout @ self.params["W"].T, {"W": self.x.T @ dout, "b": dout.sum(axis=0)}


@register("kinks_dense_dx_none")
class DenseDxNone(Dense):
    """BUG: returns dx = None although its input is float (the layers before get no gradient)."""

    def backward(self, dout, x):
        return None, {"W": x.T @ dout, "b": dout.sum(axis=0)}


@register("kinks_dense_upcast")
class DenseUpcast(Dense):
    """Right, but computes in float64 whatever the input dtype (float32 rounding goes untested)."""

    def forward(self, x):
        x = np.asarray(x, dtype=np.float64)
        return x @ self.params["W"].astype(np.float64) + self.params["b"], x


@register("kinks_dense_upcast_backward")
class DenseUpcastBackward(Dense):
    """Right, but backward computes dW in float64 whatever the dtype of its inputs."""

    def backward(self, dout, x):
        return dout @ self.params["W"].T, {"W": x.astype(np.float64).T @ dout, "b": dout.sum(axis=0)}


@register("kinks_embedding_ok")
class Embedding:
    """Token indices (m, T) → vectors (m, T, D); no gradient flows into integers: dx = None."""

    def __init__(self, vocab: int = 10, dim: int = 4):
        self.vocab, self.dim = vocab, dim

    def build(self, input_shape, rng):
        self.params = {"W": rng.standard_normal((self.vocab, self.dim))}
        return (*input_shape, self.dim)

    def forward(self, idx):
        return self.params["W"][idx], idx

    def backward(self, dout, idx):
        dW = np.zeros_like(self.params["W"])
        np.add.at(dW, idx, dout)
        return None, {"W": dW}


@register("kinks_relu_dense_inplace")
class ReluDenseInplace(Dense):
    """BUG: out = relu(x) W + b, with relu applied by clipping the caller's array in place."""

    def forward(self, x):
        np.maximum(x, 0, out=x)
        return x @ self.params["W"] + self.params["b"], x

    def backward(self, dout, x):
        return (dout @ self.params["W"].T) * (x > 0), {"W": x.T @ dout, "b": dout.sum(axis=0)}
