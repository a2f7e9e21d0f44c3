"""recurrence.py: a built-in recurrent layer's parameters differenced step by step (the derivative
factored through time) give the direct differences' numbers to within the noise and the same
verdicts, for a fraction of the copies; a planted error is still found, at its entry; a step that
is not the built-in one is never factored."""
from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli import build_network, check_network, spec_from_text
from gradcheck_cli.check.recurrence import scan_of
from gradcheck_cli.check.state import CheckSettings
from gradcheck_cli.layers.recurrent import GRU, LSTM
from gradcheck_cli.layers.registry import register, unregister
from gradcheck_cli.results import Status

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
    # a row and gate of Wh per copy, both signs: 2·H·gates copies where the direct way makes
    # 2·H·H·gates; λ's differences come on top (at most 2·states·H steps per step)
    H, gates = 4, GATES[cell]
    for check in ("isolated check", "end to end"):
        made = _made(on, f"{check}, layer 1 Wh")
        assert 2 * H * gates <= made <= 2 * H * gates + 2 * 2 * H, (check, made)
        assert _made(off, f"{check}, layer 1 Wh") >= 2 * H * H * gates


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
    register("lstm_dwh_off")(LSTMdWhOff)
    try:
        spec = spec_from_text(SPEC.format(cell="lstm_dwh_off", T=5, H=4, seq="true", seed=0))
        on, off = _both(spec)
    finally:
        unregister("lstm_dwh_off")
    row = next(r for r in on.rows if (r.label, r.tensor) == ("1", "Wh"))
    assert row.isolated.status is Status.FAIL
    assert "worst entry (1, 6)" in row.reason
    assert _statuses(on) == _statuses(off)
    # factored first, then judged the direct way (every entry through the whole layer)
    assert _made(on, "isolated check, layer 1 Wh") >= 2 * 4 * 4 + 2 * 4 * 16


class MixedUnits(GRU):
    """A user's step that mixes hidden units (each unit's update reads its neighbour's)."""

    def step(self, ax, ah, state):
        (h,), cache = super().step(ax, ah, state)
        return (h + 0.1 * np.roll(h, 1, axis=-1),), cache


def test_only_the_builtin_steps_are_factored():
    spec = _spec("gru")
    net = build_network(spec)
    layer, x = net.nodes[0].layer, net.x
    out = layer.forward(x)[0]
    weights = np.ones_like(out)
    assert scan_of(layer, x, out, weights, 1e-5, "central") is not None
    # a scan that does not reproduce the forward that was run, and a method it does not serve
    assert scan_of(layer, x, out + 1e-6, weights, 1e-5, "central") is None
    assert scan_of(layer, x, out, weights, 1e-5, "complex") is None
    mixed = MixedUnits(hidden=layer.hidden)
    mixed.params = layer.params
    assert scan_of(mixed, x, mixed.forward(x)[0], weights, 1e-5, "central") is None
