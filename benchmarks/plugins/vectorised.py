"""A learner's own layers, vectorised the way one writes them once past loops: `x @ W + b`, an
im2col convolution, a reshape max-pool, a step-by-step LSTM. No base class, no `probe_axes`:
gradcheck knows nothing about them but what it can verify on the arrays.

Rows layout throughout (x is (N, ...), as in cs231n). The parameter shapes match gradcheck's
built-in layers, so that the benchmark (benchmarks/bench_networks.py) can check both on the same
arrays.
"""
import numpy as np

from gradcheck_cli import register


@register("my_affine")
class MyAffine:
    """out = x @ W + b over the last axis; x (N, ..., D), W (D, M), b (M,)."""

    def __init__(self, units):
        self.units = units

    def build(self, input_shape, rng):
        d = input_shape[-1]
        self.params = {"W": rng.standard_normal((d, self.units)) * np.sqrt(2.0 / d),
                       "b": 0.1 * rng.standard_normal(self.units)}
        return (*input_shape[:-1], self.units)

    def forward(self, x):
        out = x @ self.params["W"] + self.params["b"]
        return out, x

    def backward(self, dout, x):
        W = self.params["W"]
        D, M = W.shape
        dW = x.reshape(-1, D).T @ dout.reshape(-1, M)
        db = dout.reshape(-1, M).sum(axis=0)
        return dout @ W.T, {"W": dW, "b": db}


@register("my_relu")
class MyReLU:
    def __init__(self):
        self.params = {}

    def build(self, input_shape, rng):
        return input_shape

    def forward(self, x):
        return np.maximum(0, x), x

    def backward(self, dout, x):
        return dout * (x > 0), {}


@register("my_flatten")
class MyFlatten:
    def __init__(self):
        self.params = {}

    def build(self, input_shape, rng):
        return (int(np.prod(input_shape)),)

    def forward(self, x):
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, dout, shape):
        return dout.reshape(shape), {}


def im2col_indices(C, H, W, kh, kw, pad, stride):
    """Index arrays that pick every receptive field out of the padded image:
    cols[n, (c, i, j), (y, x)] = xpad[n, c, stride*y + i, stride*x + j]."""
    Ho = (H + 2 * pad - kh) // stride + 1
    Wo = (W + 2 * pad - kw) // stride + 1
    i0 = np.tile(np.repeat(np.arange(kh), kw), C)
    j0 = np.tile(np.arange(kw), kh * C)
    i1 = stride * np.repeat(np.arange(Ho), Wo)
    j1 = stride * np.tile(np.arange(Wo), Ho)
    rows = i0[:, None] + i1[None, :]
    cols = j0[:, None] + j1[None, :]
    chans = np.repeat(np.arange(C), kh * kw)[:, None]
    return chans, rows, cols, Ho, Wo


@register("my_conv")
class MyConv:
    """Convolution by im2col: x (N, C, H, W), W (F, C, kh, kw), b (F,) → (N, F, H', W')."""

    def __init__(self, filters, kernel=3, padding=1, stride=1):
        self.filters, self.kernel, self.pad, self.stride = filters, kernel, padding, stride

    def build(self, input_shape, rng):
        C, H, W = input_shape
        k = self.kernel
        self.params = {"W": rng.standard_normal((self.filters, C, k, k)) * np.sqrt(2.0 / (C * k * k)),
                       "b": 0.1 * rng.standard_normal(self.filters)}
        Ho = (H + 2 * self.pad - k) // self.stride + 1
        Wo = (W + 2 * self.pad - k) // self.stride + 1
        return (self.filters, Ho, Wo)

    def forward(self, x):
        W, b = self.params["W"], self.params["b"]
        N, C, H, Wd = x.shape
        F, _, kh, kw = W.shape
        p = self.pad
        xpad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        chans, rows, cols, Ho, Wo = im2col_indices(C, H, Wd, kh, kw, p, self.stride)
        xcols = xpad[:, chans, rows, cols]                      # (N, C*kh*kw, Ho*Wo)
        out = W.reshape(F, -1) @ xcols + b.reshape(F, 1)        # (N, F, Ho*Wo)
        return out.reshape(N, F, Ho, Wo), (x.shape, xcols)

    def backward(self, dout, cache):
        (N, C, H, Wd), xcols = cache
        W = self.params["W"]
        F, _, kh, kw = W.shape
        p = self.pad
        d = dout.reshape(N, F, -1)
        dW = np.einsum("nfs,nks->fk", d, xcols).reshape(W.shape)
        db = d.sum(axis=(0, 2))
        dcols = W.reshape(F, -1).T @ d                           # (N, C*kh*kw, Ho*Wo)
        chans, rows, cols, _, _ = im2col_indices(C, H, Wd, kh, kw, p, self.stride)
        dxpad = np.zeros((N, C, H + 2 * p, Wd + 2 * p))
        np.add.at(dxpad, (slice(None), chans, rows, cols), dcols)
        return dxpad[:, :, p:p + H, p:p + Wd], {"W": dW, "b": db}


@register("my_maxpool")
class MyMaxPool:
    """2×2 max-pool, stride 2, by reshaping into windows: x (N, C, H, W) → (N, C, H/2, W/2).
    The gradient goes to the first maximum of each window."""

    def __init__(self, kernel=2):
        self.k = kernel
        self.params = {}

    def build(self, input_shape, rng):
        C, H, W = input_shape
        return (C, H // self.k, W // self.k)

    def forward(self, x):
        N, C, H, W = x.shape
        k = self.k
        win = x.reshape(N, C, H // k, k, W // k, k).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, H // k, W // k, k * k)
        arg = win.argmax(axis=-1)
        out = np.take_along_axis(win, arg[..., None], axis=-1)[..., 0]
        return out, (x.shape, arg)

    def backward(self, dout, cache):
        (N, C, H, W), arg = cache
        k = self.k
        dwin = np.zeros((N, C, H // k, W // k, k * k))
        np.put_along_axis(dwin, arg[..., None], dout[..., None], axis=-1)
        dx = dwin.reshape(N, C, H // k, W // k, k, k).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, H, W)
        return dx, {}


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


@register("my_lstm")
class MyLSTM:
    """LSTM over a sequence, one time step at a time, as cs231n's lstm_forward runs its
    lstm_step_forward: x (N, T, D) → h (N, T, H). a = x_t Wx + h_{t-1} Wh + b, gates i, f, o, g
    in that order; h_0 = c_0 = 0. The step is a method of its own, forward_step(x_t, state):
    gradcheck differences the layer through it, one step at a time (docs/plugins.md)."""

    def __init__(self, hidden):
        self.hidden = hidden

    def build(self, input_shape, rng):
        T, D = input_shape
        H = self.hidden
        self.params = {"Wx": rng.standard_normal((D, 4 * H)) / np.sqrt(D),
                       "Wh": rng.standard_normal((H, 4 * H)) / np.sqrt(H),
                       "b": 0.1 * rng.standard_normal(4 * H)}
        return (T, H)

    def initial_state(self, N):
        return np.zeros((N, self.hidden)), np.zeros((N, self.hidden))

    def forward_step(self, x_t, state):
        Wx, Wh, b = self.params["Wx"], self.params["Wh"], self.params["b"]
        h, c = state
        H = self.hidden
        a = x_t @ Wx + h @ Wh + b
        i = sigmoid(a[:, :H])
        f = sigmoid(a[:, H:2 * H])
        o = sigmoid(a[:, 2 * H:3 * H])
        g = np.tanh(a[:, 3 * H:])
        c_next = f * c + i * g
        h_next = o * np.tanh(c_next)
        return (h_next, c_next), (x_t, h, c, i, f, o, g, c_next)

    def forward(self, x):
        N, T, D = x.shape
        state = self.initial_state(N)
        hs = np.zeros((N, T, self.hidden))
        steps = []
        for t in range(T):
            state, cache = self.forward_step(x[:, t, :], state)
            steps.append(cache)
            hs[:, t, :] = state[0]
        return hs, steps

    def backward(self, dh_all, steps):
        Wx, Wh = self.params["Wx"], self.params["Wh"]
        N, T, H = dh_all.shape
        dx = np.zeros((N, T, Wx.shape[0]))
        dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(4 * H)
        dh_next = np.zeros((N, H))
        dc_next = np.zeros((N, H))
        for t in reversed(range(T)):
            xt, h_prev, c_prev, i, f, o, g, c = steps[t]
            dh = dh_all[:, t, :] + dh_next
            tc = np.tanh(c)
            dc = dc_next + dh * o * (1 - tc ** 2)
            da = np.hstack([dc * g * i * (1 - i), dc * c_prev * f * (1 - f),
                            dh * tc * o * (1 - o), dc * i * (1 - g ** 2)])
            dx[:, t, :] = da @ Wx.T
            dWx += xt.T @ da
            dWh += h_prev.T @ da
            db += da.sum(axis=0)
            dh_next = da @ Wh.T
            dc_next = dc * f
        return dx, {"Wx": dWx, "Wh": dWh, "b": db}


@register("my_lstm_no_step")
class MyLSTMNoStep(MyLSTM):
    """MyLSTM with its step out of gradcheck's sight (no forward_step, the step run inside forward,
    as many write it): the check can only perturb the whole sequence, one call per parameter
    probe, since a step-by-step forward takes no stack of parameter copies."""

    forward_step = None

    def forward(self, x):
        N, T, D = x.shape
        state = self.initial_state(N)
        hs = np.zeros((N, T, self.hidden))
        steps = []
        for t in range(T):
            state, cache = MyLSTM.forward_step(self, x[:, t, :], state)
            steps.append(cache)
            hs[:, t, :] = state[0]
        return hs, steps
