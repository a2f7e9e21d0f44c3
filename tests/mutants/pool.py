"""Max and average pooling (NCHW) as a learner writes them. Correct layers first, then the bugs."""
import numpy as np

from gradcheck_cli import register


def windows(x, k, stride):
    v = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return v[:, :, ::stride, ::stride]          # (m, C, H', W', k, k)


@register("maxpool_ok")
class MaxPool:
    """out = max over each k×k window at stride s; dx routes dout to the window's (first) maximum."""

    def __init__(self, kernel: int = 2, stride: int = 2):
        self.kernel, self.stride = kernel, stride

    def build(self, input_shape, rng):
        C, H, W = input_shape
        k, s = self.kernel, self.stride
        self.params = {}
        return (C, (H - k) // s + 1, (W - k) // s + 1)

    def forward(self, x):
        win = windows(x, self.kernel, self.stride)
        flat = win.reshape(*win.shape[:4], -1)
        return flat.max(axis=-1), (x, flat.argmax(axis=-1))

    def route(self, dout, x, winner):
        """dx: dout[n,c,i,j] added at the entry `winner` of window (i, j)."""
        k, s = self.kernel, self.stride
        Ho, Wo = dout.shape[2:]
        dx = np.zeros_like(x)
        for a in range(k):
            for b in range(k):
                mask = winner == a * k + b
                dx[:, :, a:a + s * Ho:s, b:b + s * Wo:s] += dout * mask
        return dx

    def backward(self, dout, cache):
        x, winner = cache
        return self.route(dout, x, winner), {}


@register("maxpool_no_mask")
class MaxPoolNoMask(MaxPool):
    def backward(self, dout, cache):
        x, winner = cache
        k, s = self.kernel, self.stride
        Ho, Wo = dout.shape[2:]
        dx = np.zeros_like(x)
        for a in range(k):
            for b in range(k):
                dx[:, :, a:a + s * Ho:s, b:b + s * Wo:s] += dout
        return dx, {}


@register("maxpool_argmin")
class MaxPoolArgmin(MaxPool):
    def backward(self, dout, cache):
        x, _ = cache
        win = windows(x, self.kernel, self.stride)
        loser = win.reshape(*win.shape[:4], -1).argmin(axis=-1)
        return self.route(dout, x, loser), {}


@register("maxpool_overlap_assigned")
class MaxPoolOverlapAssigned(MaxPool):
    def backward(self, dout, cache):
        x, winner = cache
        k, s = self.kernel, self.stride
        Ho, Wo = dout.shape[2:]
        dx = np.zeros_like(x)
        for i in range(Ho):
            for j in range(Wo):
                a, b = np.divmod(winner[:, :, i, j], k)
                n, c = np.indices(a.shape)
                dx[n, c, s * i + a, s * j + b] = dout[:, :, i, j]   # = where overlapping windows need +=
        return dx, {}


@register("maxpool_dx_over_window")
class MaxPoolDxOverWindow(MaxPool):
    def backward(self, dout, cache):
        x, winner = cache
        return self.route(dout, x, winner) / self.kernel ** 2, {}


@register("avgpool_ok")
class AvgPool:
    """out = mean over each k×k window (stride k); dx = dout/k² spread over the window."""

    def __init__(self, kernel: int = 2):
        self.kernel = kernel

    def build(self, input_shape, rng):
        C, H, W = input_shape
        self.params = {}
        return (C, H // self.kernel, W // self.kernel)

    def forward(self, x):
        win = windows(x, self.kernel, self.kernel)
        return win.mean(axis=(-2, -1)), x.shape

    def spread(self, dout, shape):
        k = self.kernel
        dx = np.zeros(shape, dtype=dout.dtype)
        up = np.repeat(np.repeat(dout, k, axis=2), k, axis=3)
        dx[:, :, :up.shape[2], :up.shape[3]] = up
        return dx

    def backward(self, dout, cache):
        return self.spread(dout, cache) / self.kernel ** 2, {}


@register("avgpool_no_division")
class AvgPoolNoDivision(AvgPool):
    def backward(self, dout, cache):
        return self.spread(dout, cache), {}


@register("avgpool_divided_by_k")
class AvgPoolDividedByK(AvgPool):
    def backward(self, dout, cache):
        return self.spread(dout, cache) / self.kernel, {}


@register("avgpool_spills_over_border")
class AvgPoolSpillsOverBorder(AvgPool):
    def backward(self, dout, cache):
        k = self.kernel
        up = np.repeat(np.repeat(dout, k, axis=2), k, axis=3) / k ** 2
        H, W = cache[2:]
        # the uncovered last rows/columns padded with copies of their neighbours
        dx = np.pad(up, ((0, 0), (0, 0), (0, H - up.shape[2]), (0, W - up.shape[3])), mode="edge")
        return dx, {}


@register("avgpool_first_entry_only")
class AvgPoolFirstEntryOnly(AvgPool):
    def backward(self, dout, cache):
        k = self.kernel
        dx = np.zeros(cache, dtype=dout.dtype)
        dx[:, :, :k * dout.shape[2]:k, :k * dout.shape[3]:k] = dout / k ** 2   # only each window's first entry
        return dx, {}


@register("avgpool_padded_ok")
class AvgPoolPadded:
    """out = mean of the real entries of each k×k window at stride 1 over x zero-padded by p
    (the padding not counted: a border window averages fewer entries); dx spreads
    dout/count over each window's real entries."""

    def __init__(self, kernel: int = 3, padding: int = 1):
        self.kernel, self.padding = kernel, padding

    def build(self, input_shape, rng):
        C, H, W = input_shape
        self.params = {}
        k, p = self.kernel, self.padding
        return (C, H + 2 * p - k + 1, W + 2 * p - k + 1)

    def counts(self, shape):
        """(H', W'): how many real entries each window holds."""
        p = self.padding
        ones = np.pad(np.ones((1, 1) + tuple(shape[2:])), ((0, 0), (0, 0), (p, p), (p, p)))
        return windows(ones, self.kernel, 1).sum(axis=(-2, -1))[0, 0]

    def forward(self, x):
        p = self.padding
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        return windows(xp, self.kernel, 1).sum(axis=(-2, -1)) / self.counts(x.shape).astype(x.dtype), x.shape

    def spread(self, g, shape):
        k, p = self.kernel, self.padding
        m, C, H, W = shape
        dxp = np.zeros((m, C, H + 2 * p, W + 2 * p), dtype=g.dtype)
        for a in range(k):
            for b in range(k):
                dxp[:, :, a:a + g.shape[2], b:b + g.shape[3]] += g
        return dxp[:, :, p:p + H, p:p + W]

    def backward(self, dout, cache):
        return self.spread(dout / self.counts(cache).astype(dout.dtype), cache), {}


@register("avgpool_padded_divides_by_k2")
class AvgPoolPaddedDividesByK2(AvgPoolPadded):
    def backward(self, dout, cache):
        return self.spread(dout / self.kernel ** 2, cache), {}     # the padding counted after all
