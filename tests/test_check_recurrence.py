"""recurrence.py and steps.py: a recurrent layer's parameters differenced step by step (the
derivative factored through time) give the direct differences' numbers to within the noise and
the same verdicts, for a fraction of the copies, built-in layers and plugins that offer their
step alike; a planted error is still found, at its entry; a plugin's step is used only where what
it needs is measured on the arrays (its trajectory is its forward, examples stay apart, each
column reaches one unit)."""
from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli import build_network, check_network, spec_from_text
from gradcheck_cli.check.recurrence import scan_of
from gradcheck_cli.check.state import CheckSettings
from gradcheck_cli.layers.recurrent import GRU, LSTM
from gradcheck_cli.results import Status

from conftest import layers_registered
from test_check_shortcuts import assert_agree_within_noise

SPEC = """
input: {{shape: [{T}, 3], batch: 3}}
seed: {seed}
layers:
  - {{type: {cell}, hidden: {H}, return_sequences: {seq}}}
  - {{type: linear, units: 2}}
loss: mse
"""
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _spec(cell="lstm", T=5, H=4, seq="true", seed=0):
    return spec_from_text(SPEC.format(cell=cell, T=T, H=H, seq=seq, seed=seed))


def _both(spec):
    on = check_network(build_network(spec), CheckSettings(keep_arrays=True))
    off = check_network(build_network(spec), CheckSettings(keep_arrays=True, batched=False))
    return on, off


def _statuses(result):
    return [(r.label, r.tensor, r.isolated.status, r.network and r.network.status) for r in result.rows]


def _made(result, what):
    return {c.what: c.made for c in result.tensor_costs}[what]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("seq", ["true", "false"])
@pytest.mark.parametrize("seed", [0, 1])
def test_step_by_step_differences_agree_with_the_direct_ones(cell, seq, seed):
    spec = _spec(cell, seq=seq, seed=seed)
    on, off = _both(spec)
    assert _statuses(on) == _statuses(off)
    assert all(r.status is Status.PASS for r in on.rows)
    assert_agree_within_noise(on, off)
    _assert_factored(on, off, H=4, gates=GATES[cell])


def _assert_factored(on, off, H, gates, layer="1"):
    # a row and gate of Wh per copy, both signs: 2·H·gates copies where the direct way makes
    # 2·H·H·gates; λ's differences (2·states·H steps per step), the clean trajectory and the
    # measuring come on top. The same copies serve the end-to-end row.
    made = _made(on, f"isolated check, layer {layer} Wh")
    assert 2 * H * gates <= made <= 2 * H * gates + 2 * 2 * H + 8, made
    assert _made(on, f"end to end, layer {layer} Wh") == 0
    assert _made(off, f"isolated check, layer {layer} Wh") >= 2 * H * H * gates


def test_a_one_step_sequence_and_a_float32_network():
    on, off = _both(_spec("lstm", T=1))
    assert _statuses(on) == _statuses(off)
    text = SPEC.format(cell="gru", T=4, H=3, seq="true", seed=2) + "dtype: float32\n"
    on, off = _both(spec_from_text(text))
    assert _statuses(on) == _statuses(off)
    assert all(r.status is Status.PASS for r in on.rows)


class LSTMdWhOff(LSTM):
    """A planted 1e-5 error in one entry of dWh, (1, 6): row 1, the forget gate of unit 2."""

    def backward(self, dout, cache):
        dx, grads = super().backward(dout, cache)
        dWh = grads["Wh"].copy()
        dWh[1, 6] += 1e-5 * max(1.0, float(np.abs(dWh).max()))
        return dx, {**grads, "Wh": dWh}


def test_a_planted_1e5_error_in_a_builtin_lstms_dWh_is_found_at_its_entry():
    spec = spec_from_text(SPEC.format(cell="lstm_dwh_off", T=5, H=4, seq="true", seed=0))
    on, off = _both(spec)
    row = next(r for r in on.rows if (r.label, r.tensor) == ("1", "Wh"))
    assert row.isolated.status is Status.FAIL
    assert "worst entry (1, 6)" in row.reason
    assert _statuses(on) == _statuses(off)
    # factored first, then judged the direct way (every entry through the whole layer)
    assert _made(on, "isolated check, layer 1 Wh") >= 2 * 4 * 4 + 2 * 4 * 16


def _scan(layer, x, method="central", out=None):
    out = layer.forward(x)[0] if out is None else out
    return scan_of(layer, x, out, np.ones_like(out), 0.0, 1e-5, method, np.random.default_rng(0))


class MixedUnits(GRU):
    """A user's step that mixes hidden units (each unit's update reads its neighbour's)."""

    def step(self, ax, ah, state):
        (h,), cache = super().step(ax, ah, state)
        return (h + 0.1 * np.roll(h, 1, axis=-1),), cache


def test_a_scan_that_is_not_the_forward_or_a_step_that_mixes_units_is_not_factored():
    net = build_network(_spec("gru"))
    layer, x = net.nodes[0].layer, net.x
    out = layer.forward(x)[0]
    assert _scan(layer, x).entries("Wh") is not None
    assert _scan(layer, x, out=out + 1e-6) is None
    assert _scan(layer, x, method="complex") is None
    mixed = MixedUnits(hidden=layer.hidden)
    mixed.params = layer.params
    scan = _scan(mixed, x)  # its own step, so measured as a plugin's: the units are refused
    assert scan is not None and all(scan.entries(t) is None for t in ("Wx", "Wh", "b"))


# -- plugins: a step-by-step LSTM in the cs231n way (forward loops over forward_step) --------


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class StepLSTM:
    """x (N, T, D) → h (N, T, H); gates side by side [i | f | o | g], or unit by unit."""

    interleaved = False

    def __init__(self, hidden):
        self.hidden = hidden

    def build(self, input_shape, rng):
        T, D = input_shape
        H = self.hidden
        self.params = {"Wx": rng.standard_normal((D, 4 * H)) / np.sqrt(D),
                       "Wh": rng.standard_normal((H, 4 * H)) / np.sqrt(H),
                       "b": 0.1 * rng.standard_normal(4 * H)}
        return (T, H)

    def split(self, a):
        if self.interleaved:
            return tuple(a.reshape(a.shape[0], self.hidden, 4)[..., k] for k in range(4))
        return tuple(np.split(a, 4, axis=1))

    def join(self, parts):
        if self.interleaved:
            return np.stack(parts, axis=-1).reshape(parts[0].shape[0], -1)
        return np.hstack(parts)

    def initial_state(self, N):
        return np.zeros((N, self.hidden)), np.zeros((N, self.hidden))

    def forward_step(self, x_t, state):
        return self.step(x_t, state)

    def step(self, x_t, state):
        h, c = state
        a = x_t @ self.params["Wx"] + h @ self.params["Wh"] + self.params["b"]
        ai, af, ao, ag = self.split(a)
        i, f, o, g = sigmoid(ai), sigmoid(af), sigmoid(ao), np.tanh(ag)
        c_next = f * c + i * g
        return (o * np.tanh(c_next), c_next), (x_t, h, c, i, f, o, g, c_next)

    def forward(self, x):
        state, hs, caches = self.initial_state(x.shape[0]), [], []
        for t in range(x.shape[1]):
            state, cache = self.step(x[:, t], state)
            hs.append(state[0])
            caches.append(cache)
        return np.stack(hs, axis=1), caches

    def backward(self, dout, caches):
        Wx, Wh = self.params["Wx"], self.params["Wh"]
        dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wx.shape[1])
        dh_next = dc_next = np.zeros((dout.shape[0], self.hidden))
        dx = np.zeros((dout.shape[0], dout.shape[1], Wx.shape[0]))
        for t in reversed(range(dout.shape[1])):
            x_t, h, c, i, f, o, g, c_next = caches[t]
            dh = dout[:, t] + dh_next
            tc = np.tanh(c_next)
            dc = dc_next + dh * o * (1 - tc ** 2)
            da = self.join([dc * g * i * (1 - i), dc * c * f * (1 - f), dh * tc * o * (1 - o),
                            dc * i * (1 - g ** 2)])
            dx[:, t] = da @ Wx.T
            dWx += x_t.T @ da
            dWh += h.T @ da
            db += da.sum(axis=0)
            dh_next, dc_next = da @ Wh.T, dc * f
        return dx, {"Wx": dWx, "Wh": dWh, "b": db}


class InterleavedLSTM(StepLSTM):
    interleaved = True


class StepIsNotItsForward(StepLSTM):
    """Its forward runs the step as written; its forward_step says h is 0.1% larger."""

    def forward_step(self, x_t, state):
        (h, c), cache = self.step(x_t, state)
        return (1.001 * h, c), cache


class StepMixesExamples(StepLSTM):
    """Its cell state is centred over the batch at every step (as a batch norm would)."""

    def step(self, x_t, state):
        (h, c), cache = super().step(x_t, state)
        return (h, c - 1e-3 * c.mean(axis=0)), cache


class StepLSTMdWhOff(StepLSTM):
    def backward(self, dout, caches):
        dx, grads = super().backward(dout, caches)
        grads["Wh"] = grads["Wh"].copy()
        grads["Wh"][1, 6] += 1e-5 * max(1.0, float(np.abs(grads["Wh"]).max()))
        return dx, grads


def _plugin_spec(cell, seed=0):
    return spec_from_text(SPEC.format(cell=cell, T=5, H=4, seq="true", seed=seed)
                          .replace(", return_sequences: true", ""))


@pytest.mark.parametrize("cell", ["step_lstm", "interleaved_lstm"])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_plugin_that_offers_its_step_is_differenced_step_by_step(cell, seed):
    on, off = _both(_plugin_spec(cell, seed))
    assert _statuses(on) == _statuses(off)
    assert all(r.status is Status.PASS for r in on.rows)
    assert_agree_within_noise(on, off)
    _assert_factored(on, off, H=4, gates=4)


@pytest.mark.parametrize("cell", ["step_not_forward", "step_mixes_examples"])
def test_a_plugins_step_that_is_not_what_it_needs_to_be_is_not_used(cell):
    net = build_network(_plugin_spec(cell))
    assert _scan(net.nodes[0].layer, net.x) is None
    on, off = _both(_plugin_spec(cell))
    assert _statuses(on) == _statuses(off)
    assert _made(on, "isolated check, layer 1 Wh") >= 2 * 4 * 16


def test_a_planted_1e5_error_in_a_plugin_lstms_dWh_is_found_at_its_entry():
    on, off = _both(_plugin_spec("step_lstm_dwh_off"))
    row = next(r for r in on.rows if (r.label, r.tensor) == ("1", "Wh"))
    assert row.isolated.status is Status.FAIL
    assert "worst entry (1, 6)" in row.reason
    assert _statuses(on) == _statuses(off)


class StepWritesItsState(StepLSTM):
    """Its step updates the cell state it is given in place (c *= f, then c += i·g)."""

    def step(self, x_t, state):
        h, c = state
        (h_next, c_next), cache = super().step(x_t, (h, c.copy()))
        c *= 0.0
        c += c_next
        return (h_next, c), cache


def test_a_plugin_step_that_writes_into_its_state_does_not_move_the_trajectory():
    on, off = _both(_plugin_spec("step_writes_state"))
    assert _statuses(on) == _statuses(off)
    assert all(r.status is Status.PASS for r in on.rows)
    _assert_factored(on, off, H=4, gates=4)


class StepScalesByRows(StepLSTM):
    """Its step keeps examples apart but reads how many rows it is given (a cell state scaled
    by the batch size), so that its steps stacked along the example axis are another function."""

    def step(self, x_t, state):
        (h, c), cache = super().step(x_t, state)
        return (h, c * (1.0 + 1e-3 * x_t.shape[0])), cache


class CountingStepLSTM(StepLSTM):
    rows: list = []

    def forward_step(self, x_t, state):
        type(self).rows.append(x_t.shape[0])
        return super().forward_step(x_t, state)


def test_a_plugins_steps_run_merged_one_call_a_copy_only_where_that_reproduces_its_trajectory(monkeypatch):
    from gradcheck_cli.check.steps import Steps

    net = build_network(_plugin_spec("step_scales_by_rows"))
    assert not _scan(net.nodes[0].layer, net.x).steps.merges
    on, off = _both(_plugin_spec("step_scales_by_rows"))
    assert _statuses(on) == _statuses(off)  # its backward does not know of the scaling

    net = build_network(_plugin_spec("counting_step_lstm"))
    assert _scan(net.nodes[0].layer, net.x).steps.merges
    CountingStepLSTM.rows = []
    merged = check_network(build_network(_plugin_spec("counting_step_lstm")), CheckSettings(keep_arrays=True))
    calls, rows = len(CountingStepLSTM.rows), set(CountingStepLSTM.rows)
    monkeypatch.setattr(Steps, "_merged_reproduces", lambda self: False)
    CountingStepLSTM.rows = []
    one_by_one = check_network(build_network(_plugin_spec("counting_step_lstm")), CheckSettings(keep_arrays=True))
    # batch 3, 5 steps: a parameter copy is one call of 15 rows instead of five of 3
    assert 15 in rows and 15 not in set(CountingStepLSTM.rows)
    assert calls < len(CountingStepLSTM.rows) / 3
    assert _statuses(merged) == _statuses(one_by_one)
    assert_agree_within_noise(merged, one_by_one)
    # the same copies, counted in layer-sized copies either way
    assert _made(merged, "isolated check, layer 1 Wh") == _made(one_by_one, "isolated check, layer 1 Wh")


# every layer class of this module, registered while it runs
PLUGINS = {"step_lstm": StepLSTM, "interleaved_lstm": InterleavedLSTM,
           "step_not_forward": StepIsNotItsForward, "step_mixes_examples": StepMixesExamples,
           "step_lstm_dwh_off": StepLSTMdWhOff, "lstm_dwh_off": LSTMdWhOff,
           "step_writes_state": StepWritesItsState, "step_scales_by_rows": StepScalesByRows,
           "counting_step_lstm": CountingStepLSTM}


@pytest.fixture(scope="module", autouse=True)
def plugins():
    with layers_registered(PLUGINS):
        yield


@pytest.mark.parametrize("tensor", ["Wx", "Wh", "b"])
def test_a_scans_calls_hold_what_the_memory_model_says(tensor):
    """The figures the batches of a step-by-step row are cut by (Scan.copy_bytes, a copy of θ
    and a step's temporaries for each example; adjoint_bytes, λ's differencing, in the first
    call) against what the calls hold, traced."""
    import tracemalloc

    from gradcheck_cli.check.budget import shared_bytes
    from gradcheck_cli.check.state import Ledger

    spec = spec_from_text("input: {shape: [16, 32], batch: 8}\nlayers:\n  - {type: lstm, hidden: 64}\n"
                          "loss: mse\n")
    net = build_network(spec)
    layer, x = net.nodes[0].layer, np.asarray(net.x, dtype=np.float64)
    budget = 16 * 2**20
    scan = scan_of(layer, x, layer.forward(x)[0], np.ones((8, 16, 64)), 0.0, 1e-5, "central",
                   np.random.default_rng(0), max_bytes=budget)
    entries = scan.entries(tensor)
    per_probe = shared_bytes(entries, entries.copy_bytes(), entries.share, budget)
    ledger = Ledger(per_probe=2)
    evaluate = ledger.metered(entries, tensor, per_probe)
    theta = layer.params[tensor].reshape(-1)
    idx = np.arange(min(theta.size, 2048))
    for call in range(2):                       # the first computes λ, the second only copies
        tracemalloc.start()
        try:
            evaluate(idx, theta[idx] + 1e-5)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        modelled = ledger.batches[tensor] if call == 0 else idx.size * per_probe
        assert 0.75 * modelled <= peak <= 1.35 * modelled, (call, peak / modelled)
