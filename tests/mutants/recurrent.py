"""Vanilla RNN, LSTM and GRU over a sequence, x (m, T, n) → all hidden states (m, T, H), h₀ = 0,
as a learner writes them: a loop over time forward and backward. Correct layers first, then bugs."""
import numpy as np

from gradcheck_cli import register


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


class Recurrent:
    gates = 1

    def __init__(self, hidden: int):
        self.hidden = hidden

    def build(self, input_shape, rng):
        T, n = input_shape
        H, G = self.hidden, self.gates
        self.params = {"Wx": rng.standard_normal((n, G * H)) / np.sqrt(n),
                       "Wh": rng.standard_normal((H, G * H)) / np.sqrt(H),
                       "b": 0.1 * rng.standard_normal(G * H)}
        return (T, H)


@register("rnn_ok")
class RNN(Recurrent):
    """h_t = tanh(x_t·Wx + h_{t−1}·Wh + b)."""

    def forward(self, x):
        Wx, Wh, b = self.params["Wx"], self.params["Wh"], self.params["b"]
        m, T, _ = x.shape
        h = np.zeros((m, T + 1, self.hidden), dtype=x.dtype)          # h[:, 0] is h₀
        for t in range(T):
            h[:, t + 1] = np.tanh(x[:, t] @ Wx + h[:, t] @ Wh + b)
        return h[:, 1:], (x, h)

    def backward(self, dout, cache, carry=True):
        x, h = cache
        Wx, Wh = self.params["Wx"], self.params["Wh"]
        dx = np.zeros_like(x)
        grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        dh_next = np.zeros_like(h[:, 0])
        for t in reversed(range(x.shape[1])):
            dz = (dout[:, t] + dh_next) * (1 - h[:, t + 1] ** 2)
            dx[:, t] = dz @ Wx.T
            grads["Wx"] += x[:, t].T @ dz
            grads["Wh"] += h[:, t].T @ dz
            grads["b"] += dz.sum(axis=0)
            if carry:
                dh_next = dz @ Wh.T
        return dx, grads


@register("rnn_no_backprop_through_time")
class RNNNoBPTT(RNN):
    def backward(self, dout, cache):
        return RNN.backward(self, dout, cache, carry=False)


@register("rnn_db_not_summed_over_time")
class RNNDbNotSummedOverTime(RNN):
    def backward(self, dout, cache):
        x, h = cache
        dx, grads = RNN.backward(self, dout, cache)
        db = np.zeros((x.shape[1], self.hidden))
        dh_next = np.zeros_like(h[:, 0])
        for t in reversed(range(x.shape[1])):
            dz = (dout[:, t] + dh_next) * (1 - h[:, t + 1] ** 2)
            db[t] = dz.sum(axis=0)
            dh_next = dz @ self.params["Wh"].T
        return dx, {**grads, "b": db}


@register("rnn_dWh_transposed")
class RNNDWhTransposed(RNN):
    def backward(self, dout, cache):
        dx, grads = RNN.backward(self, dout, cache)
        return dx, {**grads, "Wh": grads["Wh"].T}


@register("rnn_dWx_mean_over_time")
class RNNDWxMeanOverTime(RNN):
    def backward(self, dout, cache):
        dx, grads = RNN.backward(self, dout, cache)
        return dx, {**grads, "Wx": grads["Wx"] / dout.shape[1]}


@register("rnn_dh_through_Wh_untransposed")
class RNNDhThroughWhUntransposed(RNN):
    def backward(self, dout, cache):
        x, h = cache
        Wx, Wh = self.params["Wx"], self.params["Wh"]
        dx = np.zeros_like(x)
        grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        dh_next = np.zeros_like(h[:, 0])
        for t in reversed(range(x.shape[1])):
            dz = (dout[:, t] + dh_next) * (1 - h[:, t + 1] ** 2)
            dx[:, t] = dz @ Wx.T
            grads["Wx"] += x[:, t].T @ dz
            grads["Wh"] += h[:, t].T @ dz
            grads["b"] += dz.sum(axis=0)
            dh_next = dz @ Wh
        return dx, grads


@register("lstm_ok")
class LSTM(Recurrent):
    """Gates [i, f, o, g] = [σ, σ, σ, tanh](x_t·Wx + h_{t−1}·Wh + b), each H wide;
    c_t = f·c_{t−1} + i·g, h_t = o·tanh(c_t)."""

    gates = 4

    def forward(self, x):
        Wx, Wh, b = self.params["Wx"], self.params["Wh"], self.params["b"]
        m, T, _ = x.shape
        H = self.hidden
        h = np.zeros((m, T + 1, H), dtype=x.dtype)
        c = np.zeros((m, T + 1, H), dtype=x.dtype)
        acts = []
        for t in range(T):
            a = x[:, t] @ Wx + h[:, t] @ Wh + b
            i, f, o, g = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), sigmoid(a[:, 2 * H:3 * H]), np.tanh(a[:, 3 * H:])
            c[:, t + 1] = f * c[:, t] + i * g
            h[:, t + 1] = o * np.tanh(c[:, t + 1])
            acts.append((i, f, o, g))
        return h[:, 1:], (x, h, c, acts)

    def accumulate(self, grads, x_t, h_prev, da):
        """The parameter gradients of one step, gate by gate (da = [dai, daf, dao, dag])."""
        H = self.hidden
        for k, dak in enumerate(da):
            cols = slice(k * H, (k + 1) * H)
            grads["Wx"][:, cols] += x_t.T @ dak
            grads["Wh"][:, cols] += h_prev.T @ dak
            grads["b"][cols] += dak.sum(axis=0)

    def backward(self, dout, cache, carry_cell=True):
        x, h, c, acts = cache
        Wx, Wh = self.params["Wx"], self.params["Wh"]
        dx = np.zeros_like(x)
        grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        dh_next = np.zeros_like(h[:, 0])
        dc_next = np.zeros_like(h[:, 0])
        for t in reversed(range(x.shape[1])):
            i, f, o, g = acts[t]
            tc = np.tanh(c[:, t + 1])
            dh = dout[:, t] + dh_next
            dc = dh * o * (1 - tc ** 2) + (dc_next if carry_cell else 0)
            da = [dc * g * i * (1 - i), dc * c[:, t] * f * (1 - f), dh * tc * o * (1 - o),
                  dc * i * (1 - g ** 2)]
            self.accumulate(grads, x[:, t], h[:, t], da)
            da = np.concatenate(da, axis=-1)
            dx[:, t] = da @ Wx.T
            dh_next = da @ Wh.T
            dc_next = dc * f
        return dx, grads


@register("lstm_dWx_output_gate_typo")
class LSTMDWxOutputGateTypo(LSTM):
    def accumulate(self, grads, x_t, h_prev, da):
        H = self.hidden
        dai, daf, dao, dag = da
        LSTM.accumulate(self, grads, x_t, h_prev, da)
        grads["Wx"][:, 2 * H:3 * H] += x_t.T @ (daf - dao)      # copy-paste: daf where dao belongs


@register("lstm_db_forget_gate_typo")
class LSTMDbForgetGateTypo(LSTM):
    def accumulate(self, grads, x_t, h_prev, da):
        H = self.hidden
        dai, daf, dao, dag = da
        LSTM.accumulate(self, grads, x_t, h_prev, da)
        grads["b"][H:2 * H] += (dai - daf).sum(axis=0)


@register("lstm_dWh_cell_gate_typo")
class LSTMDWhCellGateTypo(LSTM):
    def accumulate(self, grads, x_t, h_prev, da):
        H = self.hidden
        dai, daf, dao, dag = da
        LSTM.accumulate(self, grads, x_t, h_prev, da)
        grads["Wh"][:, 3 * H:] += h_prev.T @ (dai - dag)


@register("lstm_no_cell_carry")
class LSTMNoCellCarry(LSTM):
    def backward(self, dout, cache):
        return LSTM.backward(self, dout, cache, carry_cell=False)


@register("gru_ok")
class GRU(Recurrent):
    """r, z = σ(x_t·Wx + h_{t−1}·Wh + b) (first two blocks), n = tanh(x_t·Wxn + r·(h_{t−1}·Whn) + bn),
    h_t = (1 − z)·n + z·h_{t−1}; blocks of Wx, Wh, b in the order [r, z, n]."""

    gates = 3

    def forward(self, x):
        Wx, Wh, b = self.params["Wx"], self.params["Wh"], self.params["b"]
        m, T, _ = x.shape
        H = self.hidden
        h = np.zeros((m, T + 1, H), dtype=x.dtype)
        acts = []
        for t in range(T):
            ax = x[:, t] @ Wx + b
            ah = h[:, t] @ Wh
            r, z = sigmoid(ax[:, :H] + ah[:, :H]), sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
            hn = ah[:, 2 * H:]
            n = np.tanh(ax[:, 2 * H:] + r * hn)
            h[:, t + 1] = (1 - z) * n + z * h[:, t]
            acts.append((r, z, n, hn))
        return h[:, 1:], (x, h, acts)

    def accumulate(self, grads, x_t, h_prev, dar, daz, dan, dhn):
        H = self.hidden
        grads["Wx"][:, :H] += x_t.T @ dar
        grads["Wx"][:, H:2 * H] += x_t.T @ daz
        grads["Wx"][:, 2 * H:] += x_t.T @ dan
        grads["Wh"][:, :H] += h_prev.T @ dar
        grads["Wh"][:, H:2 * H] += h_prev.T @ daz
        grads["Wh"][:, 2 * H:] += h_prev.T @ dhn
        grads["b"] += np.concatenate([dar, daz, dan], axis=-1).sum(axis=0)

    def backward(self, dout, cache, direct=True):
        x, h, acts = cache
        Wx, Wh = self.params["Wx"], self.params["Wh"]
        H = self.hidden
        dx = np.zeros_like(x)
        grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        dh_next = np.zeros_like(h[:, 0])
        for t in reversed(range(x.shape[1])):
            r, z, n, hn = acts[t]
            dh = dout[:, t] + dh_next
            dan = dh * (1 - z) * (1 - n ** 2)
            daz = dh * (h[:, t] - n) * z * (1 - z)
            dar = dan * hn * r * (1 - r)
            dhn = dan * r
            self.accumulate(grads, x[:, t], h[:, t], dar, daz, dan, dhn)
            dx[:, t] = np.concatenate([dar, daz, dan], axis=-1) @ Wx.T
            dh_next = np.concatenate([dar, daz, dhn], axis=-1) @ Wh.T + (dh * z if direct else 0)
        return dx, grads


@register("gru_dWx_reset_gate_typo")
class GRUDWxResetGateTypo(GRU):
    def accumulate(self, grads, x_t, h_prev, dar, daz, dan, dhn):
        H = self.hidden
        GRU.accumulate(self, grads, x_t, h_prev, dar, daz, dan, dhn)
        grads["Wx"][:, :H] += x_t.T @ (daz - dar)


@register("gru_dWh_update_gate_typo")
class GRUDWhUpdateGateTypo(GRU):
    def accumulate(self, grads, x_t, h_prev, dar, daz, dan, dhn):
        H = self.hidden
        GRU.accumulate(self, grads, x_t, h_prev, dar, daz, dan, dhn)
        grads["Wh"][:, H:2 * H] += h_prev.T @ (dar - daz)


@register("gru_no_direct_path")
class GRUNoDirectPath(GRU):
    def backward(self, dout, cache):
        return GRU.backward(self, dout, cache, direct=False)
