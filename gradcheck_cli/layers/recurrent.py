"""Recurrent layers over a sequence, rows layout: x (m, T, n) → all hidden states (m, T, H) or the
last one (m, H). The state starts at zero; backprop through time loops over time steps only.

Each cell says one step forward (pre-activations from x_t·Wx + b and h·Wh) and one step back
(the gradients of those two pre-activations, and of the state that bypasses Wh); the loop in
between, the parameter gradients and the time stacking are shared:
  dWx = Σ_t x_tᵀ·dax_t,  dWh = Σ_t h_{t−1}ᵀ·dah_t,  db = Σ_t Σ_m dax_t,  dx_t = dax_t·Wxᵀ,
  dh_{t−1} = dah_t·Whᵀ + (direct part).
"""
from __future__ import annotations

from typing import Annotated, ClassVar

import numpy as np
from annotated_types import Gt

from .protocol import ShapeError
from .registry import register
from ._shapes import ShapedLayer, lift


def sigmoid(a):
    e = np.exp(-a)
    e += 1.0
    return np.reciprocal(e, out=e)


class _Recurrent(ShapedLayer):
    gates: ClassVar[int] = 1
    n_states: ClassVar[int] = 1
    #: H-vectors of one example that each step leaves held until backward: its cache, its state
    #: and its output (measured per m·T·H on stacks of copies: rnn 2.0, gru 7.6-7.8, lstm 7.8-7.9)
    step_held: ClassVar[int] = 2
    layouts = ("rows",)
    decay = ("Wx", "Wh")
    complex_safe = True  # matrix products, tanh and σ: analytic

    def __init__(self, hidden: Annotated[int, Gt(0)], return_sequences: bool = True) -> None:
        super().__init__()
        self.hidden, self.return_sequences = hidden, return_sequences

    def output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ShapeError(f"{self.type_name} needs a sequence (T, n) per example, got "
                             f"{tuple(input_shape)}" + (": add a reshape layer before it"
                                                        if len(input_shape) == 1 else ""))
        return (input_shape[0], self.hidden) if self.return_sequences else (self.hidden,)

    def param_shapes(self, input_shape):
        self.output_shape(input_shape)
        gh = self.gates * self.hidden
        return {"Wx": (input_shape[1], gh), "Wh": (self.hidden, gh), "b": (gh,)}

    def init_params(self, input_shape, rng):
        s = self.param_shapes(input_shape)
        n, h = input_shape[1], self.hidden
        return {"Wx": rng.standard_normal(s["Wx"]) / np.sqrt(n),
                "Wh": rng.standard_normal(s["Wh"]) / np.sqrt(h),
                "b": 0.1 * rng.standard_normal(s["b"])}

    def step(self, ax, ah, state):
        """One step: pre-activations ax = x_t·Wx + b, ah = h·Wh → (new state, step cache)."""
        raise NotImplementedError

    def step_backward(self, dstate, cache):
        """→ (dax, dah, direct dstate_prev): gradients of ax and ah, and of the previous state
        through paths that do not go through Wh."""
        raise NotImplementedError

    def held_entries(self, x_shape: tuple[int, ...]) -> int:
        """Entries one forward holds at its peak for an input of shape (m, T, n): every step's
        gates and states stay in the cache for backward (step_held·T·H per example), and a
        step's pre-activations. The checker sizes its batches of copies with it."""
        *_, T, _n = x_shape
        m = int(np.prod(x_shape[:-2]))
        H, k = self.hidden, self.gates
        return m * H * (self.step_held * T + 3 * k)

    def initial_state(self, n: int) -> tuple[np.ndarray, ...]:
        """The state before the first step, for n examples: zeros, h first."""
        return tuple(np.zeros((n, self.hidden)) for _ in range(self.n_states))

    def forward_step(self, xt: np.ndarray, state: tuple) -> tuple:
        """One step: x_t (m, n) and the state parts (m, H) → (the next state, h first; the step's
        cache). Parameters and state parts may carry leading probe axes. The checker differences
        the layer step by step through it (check/recurrence.py)."""
        Wx, Wh, b = self.params["Wx"], self.params["Wh"], self.params["b"]
        return self.step(xt @ Wx + lift(b, 1, 1), state[0] @ Wh, state)

    def explain(self, s):
        """The step equations from the class docstring, with this config's shapes."""
        doc = " ".join((type(self).__doc__ or "").split())
        step, _, bptt = doc.partition("BPTT:")
        A, Z = s.x, s.y
        shapes = ", ".join(f"{s.p(k)}: {s.shape(s.p(k))}" for k in ("Wx", "Wh", "b"))
        return {"forward": [(f"{Z} = {self.type_name}({A})", f"{A}: {s.shape(A)} → {Z}: {s.shape(Z)}; "
                             f"{shapes}"), step.strip()],
                "backward": [f"BPTT, t = T … 1: {bptt.strip()}",
                             "dWx, dWh, db summed over time steps and examples"]}

    def forward(self, x):
        Wx, Wh, b = self.params["Wx"], self.params["Wh"], self.params["b"]
        *lead, m, T, n = x.shape
        bias = lift(b, 1, 1)
        dtype = np.result_type(x, Wx, Wh, b)
        # The state starts at zero, so the first step's h·Wh is zero whatever Wh is: a stack of
        # Wh copies shares that step, and the state broadcasts against the stacks from there on.
        state = tuple(np.zeros((m, self.hidden), dtype=dtype) for _ in range(self.n_states))
        ah = np.zeros((m, Wh.shape[-1]), dtype=dtype)
        hs, caches = [], []
        for t in range(T):
            if t:
                ah = state[0] @ Wh
            # one step's x_t·Wx at a time: a stack of copies holds (copies, m, gates·H) per step,
            # not per sequence
            new, c = self.step(x[..., t, :] @ Wx + bias, ah, state)
            caches.append((x[..., t, :], state[0], c))
            state = new
            hs.append(state[0])
        # A stack of copies gets its probe axes back even where a step did not use them (Wh in a
        # one-step sequence).
        probe = np.broadcast_shapes(tuple(lead), Wx.shape[:-2], Wh.shape[:-2], b.shape[:-1])
        hs = [np.broadcast_to(h, (*probe, m, self.hidden)) for h in hs]
        out = np.stack(hs, axis=-2) if self.return_sequences else hs[-1].copy()
        return out, caches

    def backward(self, dout, cache):
        Wx, Wh = self.params["Wx"], self.params["Wh"]
        T = len(cache)
        m = dout.shape[0]
        dstate = tuple(np.zeros((m, self.hidden), dtype=dout.dtype) for _ in range(self.n_states))
        dWx, dWh = np.zeros_like(Wx, dtype=dout.dtype), np.zeros_like(Wh, dtype=dout.dtype)
        db = np.zeros(Wx.shape[1], dtype=dout.dtype)
        dxs = [None] * T
        for t in reversed(range(T)):
            xt, h_prev, c = cache[t]
            dh = dstate[0] + (dout[:, t] if self.return_sequences else (dout if t == T - 1 else 0.0))
            dax, dah, direct = self.step_backward((dh, *dstate[1:]), c)
            dWx += xt.T @ dax
            dWh += h_prev.T @ dah
            db += dax.sum(axis=0)
            dxs[t] = dax @ Wx.T
            dstate = (dah @ Wh.T + direct[0], *direct[1:])
        return np.stack(dxs, axis=1), {"Wx": dWx, "Wh": dWh, "b": db}


@register("rnn")
class RNN(_Recurrent):
    """Vanilla tanh RNN over a sequence, returning all hidden states or the last.

    h_t = tanh(x_t·Wx + h_{t−1}·Wh + b), h_0 = 0.
    x (m, T, n), Wx (n, H), Wh (H, H), b (H,) → (m, T, H), or (m, H) with return_sequences: false.
    BPTT: da_t = (dout_t + dh_t)(1 − h_t²), dh_{t−1} = da_t·Whᵀ; dWx = Σ x_tᵀda_t, dWh = Σ h_{t−1}ᵀda_t."""

    shapes = "(T, n) → (T, hidden) or (hidden,)"

    def step(self, ax, ah, state):
        h = np.tanh(ax + ah)
        return (h,), h

    def step_backward(self, dstate, cache):
        da = dstate[0] * (1.0 - cache * cache)
        return da, da, (0.0,)


@register("lstm")
class LSTM(_Recurrent):
    """LSTM over a sequence, returning all hidden states or the last.

    a = x_t·Wx + h_{t−1}·Wh + b split into i, f, o, g (H each); i, f, o = σ(·), g = tanh(·);
    c_t = f ⊙ c_{t−1} + i ⊙ g, h_t = o ⊙ tanh(c_t); h_0 = c_0 = 0.
    x (m, T, n), Wx (n, 4H), Wh (H, 4H), b (4H,) → (m, T, H) or (m, H).
    BPTT: dc = dc_next + dh ⊙ o ⊙ (1 − tanh²c); di = dc ⊙ g, df = dc ⊙ c_{t−1}, do = dh ⊙ tanh c,
    dg = dc ⊙ i; da = [di·i(1−i), df·f(1−f), do·o(1−o), dg(1−g²)]; dc_{t−1} = dc ⊙ f."""

    gates, n_states, step_held = 4, 2, 8
    shapes = "(T, n) → (T, hidden) or (hidden,)"

    def step(self, ax, ah, state):
        H = self.hidden
        a = ax + ah
        ifo = sigmoid(a[..., :3 * H])
        i, f, o = ifo[..., :H], ifo[..., H:2 * H], ifo[..., 2 * H:]
        g = np.tanh(a[..., 3 * H:])
        c = f * state[1] + i * g
        tc = np.tanh(c)
        return (o * tc, c), (i, f, o, g, state[1], tc)

    def step_backward(self, dstate, cache):
        dh, dc_next = dstate
        i, f, o, g, c_prev, tc = cache
        dc = dc_next + dh * o * (1.0 - tc * tc)
        da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f),
                             dh * tc * o * (1 - o), dc * i * (1 - g * g)], axis=-1)
        return da, da, (0.0, dc * f)


@register("gru")
class GRU(_Recurrent):
    """GRU (PyTorch's form) over a sequence, returning all hidden states or the last.

    ax = x_t·Wx + b and ah = h_{t−1}·Wh, each split into z, r, n parts;
    z = σ(ax_z + ah_z), r = σ(ax_r + ah_r), ñ = tanh(ax_n + r ⊙ ah_n), h_t = (1 − z) ⊙ ñ + z ⊙ h_{t−1}.
    x (m, T, n), Wx (n, 3H), Wh (H, 3H), b (3H,) → (m, T, H) or (m, H).
    BPTT: dñ = dh(1 − z), dz = dh(h_{t−1} − ñ), dan = dñ(1 − ñ²), dr = dan ⊙ ah_n;
    dax = [dz·z(1−z), dr·r(1−r), dan], dah = [same z, same r, dan ⊙ r]; dh_{t−1} = dah·Whᵀ + dh ⊙ z."""

    gates, step_held = 3, 8
    shapes = "(T, n) → (T, hidden) or (hidden,)"

    def step(self, ax, ah, state):
        H = self.hidden
        h = state[0]
        z = sigmoid(ax[..., :H] + ah[..., :H])
        r = sigmoid(ax[..., H:2 * H] + ah[..., H:2 * H])
        ahn = ah[..., 2 * H:]
        n = np.tanh(ax[..., 2 * H:] + r * ahn)
        return ((1 - z) * n + z * h,), (z, r, n, ahn, h)

    def step_backward(self, dstate, cache):
        dh = dstate[0]
        z, r, n, ahn, h = cache
        dan = dh * (1 - z) * (1 - n * n)
        daz = dh * (h - n) * z * (1 - z)
        dar = dan * ahn * r * (1 - r)
        dax = np.concatenate([daz, dar, dan], axis=-1)
        dah = np.concatenate([daz, dar, dan * r], axis=-1)
        return dax, dah, (dh * z,)
