"""Planted bugs in the complex layers: each must FAIL at exactly its (layer, tensor) rows.

Each mutant is a subclass of the real layer, registered under a test-only name, with one
classic mistake in its backward; every other row must stay pass (or inherited, for rows that are
right in isolation but sit upstream of the broken dx).
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from gradcheck_cli.check.engine import check_network
from gradcheck_cli.layers.attention import Attention
from gradcheck_cli.layers.conv import Conv2D
from gradcheck_cli.layers.norm import BatchNorm
from gradcheck_cli.layers.recurrent import LSTM
from gradcheck_cli.check.network import build_network
from gradcheck_cli.layers.catalog import register
from gradcheck_cli.results import Status
from gradcheck_cli.config.models import spec_from_text


@register("test_mutant_conv2d_flipped")
class FlippedKernelConv(Conv2D):
    """dx computed with the kernel flipped (the convolution/cross-correlation mix-up)."""

    def backward(self, dout, cache):
        flipped = copy.copy(self)
        flipped.params = {**self.params, "W": self.params["W"][..., ::-1, ::-1]}
        dx, _ = Conv2D.backward(flipped, dout, cache)
        return dx, Conv2D.backward(self, dout, cache)[1]


@register("test_mutant_batchnorm_no_mean")
class BatchNormWithoutMeanTerm(BatchNorm):
    """dx without the −Σdx̂ term (the path through the batch mean forgotten)."""

    def stats_backward(self, dxhat, xhat, inv):
        axes = self._axes(dxhat.ndim)
        n = np.prod([dxhat.shape[a] for a in axes])
        return (inv / n) * (n * dxhat - xhat * (dxhat * xhat).sum(axis=axes, keepdims=True))


@register("test_mutant_lstm_no_forget")
class LSTMWithoutForgetGradient(LSTM):
    """The forget gate's gradient dropped (df = dc ⊙ c_{t−1} taken as 0)."""

    def step_backward(self, dstate, cache):
        dh, dc_next = dstate
        i, f, o, g, c_prev, tc = cache
        dc = dc_next + dh * o * (1.0 - tc * tc)
        da = np.concatenate([dc * g * i * (1 - i), np.zeros_like(f), dh * tc * o * (1 - o),
                             dc * i * (1 - g * g)], axis=-1)
        return da, da, (0.0, dc * f)


@register("test_mutant_attention_unscaled")
class AttentionWithoutScaleInBackward(Attention):
    """Forward scales the scores by 1/√d; backward forgets to."""

    def backward(self, dout, cache):
        unscaled = copy.copy(self)
        unscaled.scale = lambda: 1.0
        return Attention.backward(unscaled, dout, cache)


def run(spec: dict, seed: int):
    return check_network(build_network(spec_from_text(json.dumps({"seed": seed, **spec}))))


CONV = dict(input=dict(shape=[2, 6, 6], batch=2), loss="mse", layers=[
    {"type": "conv2d", "filters": 2, "kernel": 3, "padding": 1, "activation": "tanh"},
    {"type": "test_mutant_conv2d_flipped", "filters": 3, "kernel": 3, "stride": 2, "padding": 1},
    {"type": "flatten"}, {"type": "dense", "units": 4}])
BN = dict(input=dict(shape=[5], batch=6), loss="softmax_cross_entropy", layers=[
    {"type": "dense", "units": 6}, {"type": "test_mutant_batchnorm_no_mean", "activation": "tanh"},
    {"type": "dense", "units": 3}])
LSTM_NET = dict(input=dict(shape=[4, 3], batch=2), loss="temporal_softmax_cross_entropy", layers=[
    {"type": "linear", "units": 3}, {"type": "test_mutant_lstm_no_forget", "hidden": 4},
    {"type": "linear", "units": 5}])
ATTN = dict(input=dict(shape=[5, 8], batch=2), loss="mse", layers=[
    {"type": "layernorm"}, {"type": "test_mutant_attention_unscaled", "heads": 2, "causal": True},
    {"type": "linear", "units": 3}])

MUTANTS = {
    "conv-flipped-kernel": (CONV, {("2", "x")}),
    "batchnorm-no-mean-term": (BN, {("2", "x")}),
    "lstm-no-forget-gradient": (LSTM_NET, {("2", "x"), ("2", "Wx"), ("2", "Wh"), ("2", "b")}),
    "attention-no-scale": (ATTN, {("2", "x"), ("2", "Wq"), ("2", "bq"), ("2", "Wk")}),
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_mutant_fails_at_its_rows_and_nowhere_else(mutant, seed):
    spec, expected = MUTANTS[mutant]
    result = run(spec, seed)
    failed = {(r.label, r.tensor) for r in result.rows if r.status is Status.FAIL}
    assert failed == expected
    assert {(r.label, r.tensor) for r in result.rows if r.isolated.status is Status.FAIL} == expected
    for r in result.rows:
        if (r.label, r.tensor) not in expected:
            assert r.status in (Status.PASS, Status.INHERITED, Status.WARN), (r.label, r.tensor, r.reason)
    # Rows upstream of the broken dx are right in isolation and blamed on the mutant end to end.
    upstream = [r for r in result.rows if r.label in ("1", "1a") and r.network is not None]
    assert upstream and all(r.status is Status.INHERITED for r in upstream)
    assert result.status is Status.FAIL


def test_unmutated_networks_pass():
    for spec, _ in MUTANTS.values():
        plain = json.loads(json.dumps(spec).replace("test_mutant_conv2d_flipped", "conv2d")
                           .replace("test_mutant_batchnorm_no_mean", "batchnorm")
                           .replace("test_mutant_lstm_no_forget", "lstm")
                           .replace("test_mutant_attention_unscaled", "attention"))
        assert run(plain, 0).status is Status.PASS


def test_mutant_inside_a_residual_block_is_located_inside_it():
    spec = dict(input=dict(shape=[4, 8], batch=2), loss="mse", layers=[
        {"type": "residual", "layers": [{"type": "layernorm"},
                                        {"type": "test_mutant_attention_unscaled", "heads": 2}]}])
    result = run(spec, 0)
    inner_failed = {(r.label, r.tensor) for r in result.rows
                    if r.status is Status.FAIL and r.label.startswith("1.")}
    assert inner_failed == {("1.2", "x"), ("1.2", "Wq"), ("1.2", "bq"), ("1.2", "Wk")}
    assert not [r for r in result.rows if r.label == "1.1" and r.status is Status.FAIL]
