"""tensor.py, what a layer's backward returns: dx = None is the answer for token input and a
clear FAIL for a float input; a backward that reads its cache from self (the cs231n habit) FAILs
the rows whose gradient it changes."""
from __future__ import annotations

from pathlib import Path

import pytest

from gradcheck_cli import build_network, check_network, spec_from_text
from gradcheck_cli.layers.plugins import load_plugin
from gradcheck_cli.results import Status

load_plugin(Path(__file__).parent / "mutants" / "kinks.py")


def _check(layers: str, input_: str = "{shape: [4], batch: 3}", seed: int = 0, dtype: str = "float64"):
    return check_network(build_network(spec_from_text(
        f"name: t\nseed: {seed}\ndtype: {dtype}\ninput: {input_}\nlayers: {layers}\nloss: softmax_cross_entropy\n")))


def _not_pass(result):
    return {(r.label, r.tensor): (r.status, r.reason) for r in result.rows if r.status is not Status.PASS}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dx_none_for_token_input_is_accepted_and_says_what_it_means(dtype):
    result = _check("[{type: kinks_embedding_ok, vocab: 10, dim: 4}, {type: flatten}, {type: dense, units: 3}]",
                    "{shape: [5], batch: 3, vocab: 10}", dtype=dtype)
    assert result.status is Status.PASS
    row = next(r for r in result.rows if (r.label, r.tensor) == ("1", "x"))
    assert row.status is Status.SKIPPED
    assert row.reason == ("n/a (integer input; backward returns dx = None: no gradient flows into "
                          "token indices)")
    assert row.network.reason == row.reason


def test_dx_none_for_float_input_fails_the_x_row_with_the_reason():
    result = _check("[{type: dense, units: 4, activation: tanh}, {type: kinks_dense_dx_none, units: 4}, "
                    "{type: dense, units: 3}]")
    rows = _not_pass(result)
    assert rows[("2", "x")] == (Status.FAIL, (
        "backward returned dx = None, but x is float64 (shape (3, 4)): None says that no gradient "
        "flows into x, which only integer inputs (token indices) may say; the layers before this "
        "one get no gradient. Return an array of x's shape"))
    assert rows[("1", "W")] == (Status.INHERITED, "not computed: layer 2's backward returned dx = None")
    assert next(r for r in result.rows if (r.label, r.tensor) == ("2", "x")).isolated.diagnosis == \
        "dx = None for a float input"
    assert {k for k, (s, _) in rows.items() if s is Status.FAIL} == {("2", "x")}


@pytest.mark.parametrize("seed", range(3))
def test_a_cache_kept_on_self_fails_the_rows_it_changes(seed):
    result = _check("[{type: dense, units: 4, activation: tanh}, {type: kinks_dense_self_cache, units: 4}, "
                    "{type: dense, units: 3}]", seed=seed)
    assert _not_pass(result) == {("2", "W"): (Status.FAIL, (
        "backward reads state that forward left on the layer (self), not only its cache: after a "
        "forward with another input, backward with the first forward's cache gives a different dW; "
        "keep everything backward needs in the cache forward returns"))}
    row = next(r for r in result.rows if (r.label, r.tensor) == ("2", "W"))
    assert row.isolated.diagnosis == "backward reads state that forward left on self"


@pytest.mark.parametrize("seed", range(3))
def test_the_same_layer_with_its_cache_passes(seed):
    result = _check("[{type: dense, units: 4, activation: tanh}, {type: kinks_dense_ok, units: 4}, "
                    "{type: dense, units: 3}]", seed=seed)
    assert result.status is Status.PASS
