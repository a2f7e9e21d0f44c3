"""ties.py: entries that share a kink (tied maxima of a max-pool window) are judged together.
A backward that sends the gradient to every tied entry FAILs at its own row; the valid
subgradients at a tie (first, last, or shared maximum) stay `kink`, over many seeds and in
float32."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradcheck_cli import build_network, check_network, spec_from_text
from gradcheck_cli.layers.plugins import load_plugin
from gradcheck_cli.results import Status
from gradcheck_cli.check.ties import check_ties, tie_groups

load_plugin(Path(__file__).parent / "mutants" / "kinks.py")

# an overlapping pool before the layer under test repeats values, so its windows have real ties
OVERLAP = """name: ties
seed: {seed}
dtype: {dtype}
input: {{shape: [2, 7, 7], batch: 2}}
layers:
  - {{type: conv2d, filters: 3, kernel: 3, padding: 1}}
  - {{type: maxpool2d, kernel: 2, stride: 1}}
  - {{type: {pool}}}
  - {{type: flatten}}
  - {{type: dense, units: 4}}
loss: softmax_cross_entropy
"""
# after a relu, windows whose entries were all clipped to 0 are ties
RELU = """name: relu-ties
seed: {seed}
dtype: {dtype}
input: {{shape: [2, 6, 6], batch: 2}}
layers:
  - {{type: conv2d, filters: 4, kernel: 3, padding: 1, activation: relu}}
  - {{type: {pool}}}
  - {{type: flatten}}
  - {{type: dense, units: 3}}
loss: softmax_cross_entropy
"""


def _check(text: str, pool: str, seed: int = 0, dtype: str = "float64"):
    return check_network(build_network(spec_from_text(text.format(seed=seed, dtype=dtype, pool=pool))))


def _row(result, label, tensor="x"):
    return next(r for r in result.rows if (r.label, r.tensor) == (label, tensor))


def test_tie_groups_are_entries_of_exactly_equal_value():
    groups = tie_groups(np.array([0.5, 0.0, 0.5, 0.25, 0.0, 0.0, 0.5 + 1e-16]))
    assert [g.tolist() for g in groups] == [[1, 4, 5], [0, 2]]
    assert tie_groups(np.array([1.0])) == []


def test_check_ties_on_a_max_of_two_tied_entries():
    # f(θ) = 3·max(θ0, θ1) at θ0 = θ1 = 0.5: D+ = 3 and D− = 0 for each entry alone, but moving
    # both together changes f at rate 3; so (3, 0) and (1.5, 1.5) are subgradients, (3, 3) is not
    theta = np.array([0.5, 0.5, 2.0])

    def stack(copies):
        return 3.0 * copies[:, :2].max(axis=1) + copies[:, 2]

    noise = np.full(2, 1e-10)
    one_sided = (np.array([3.0, 3.0]), np.array([0.0, 0.0]))
    args = (stack, 1e-5, float(stack(theta[None])[0]), 3.0, 64)
    assert check_ties(theta, np.array([0, 1]), np.array([3.0, 0.0]), noise, one_sided, *args) is None
    assert check_ties(theta, np.array([0, 1]), np.array([1.5, 1.5]), noise, one_sided, *args) is None
    bad = check_ties(theta, np.array([0, 1]), np.array([3.0, 3.0]), noise, one_sided, *args)
    assert bad is not None and bad.bad.tolist() == [0, 1]
    assert bad.diagnosis == "gradient sent to every tied entry"
    assert bad.reason == ("gradient sent to every tied entry: in 1 group of tied entries (equal "
                          "values, 2 entries) each entry gets the whole gradient, which only one of "
                          "them (or a share of it) may take; e.g. entries (0,) and (1,) are all 0.5: "
                          "moving them together changes f at rate 3, but their analytic values add up to 6")
    other = check_ties(theta, np.array([0, 1]), np.array([6.0, 0.0]), noise, one_sided, *args)
    assert other is not None and other.diagnosis == "tied entries' gradients do not add up"
    assert other.reason.startswith("the gradients of tied entries do not add up: in 1 group of tied "
                                   "entries (equal values, 2 entries) the sum of the analytic values "
                                   "lies outside the one-sided derivatives along the direction that "
                                   "moves the group together (3 .. 3); e.g. entries (0,) and (1,)")


@pytest.mark.parametrize("text", [OVERLAP, RELU], ids=["overlapping-pool", "relu"])
def test_every_tied_entry_fails_at_its_own_row(text):
    result = _check(text, "kinks_pool_every_tie")
    label = "3" if text is OVERLAP else "2"
    row = _row(result, label)
    assert row.status is Status.FAIL
    assert row.isolated.diagnosis == "gradient sent to every tied entry"
    assert row.reason.startswith("gradient sent to every tied entry: in ")
    failing = {(r.label, r.tensor) for r in result.rows if r.status is Status.FAIL}
    assert failing == {(label, "x")}
    if text is OVERLAP:
        # (after a relu the extra gradient lands on clipped entries, and the relu stops it)
        upstream = [r for r in result.rows if 0 < r.index < row.index and r.network is not None]
        assert upstream and all(r.status is Status.INHERITED for r in upstream)
        assert all(r.reason == "right in isolation; wrong end to end because layer 3 "
                   "(kinks_pool_every_tie) returns a wrong dx" for r in upstream)


@pytest.mark.parametrize("seed", range(20))
def test_every_tied_entry_fails_over_seeds(seed):
    row = _row(_check(OVERLAP, "kinks_pool_every_tie", seed), "3")
    assert row.status is Status.FAIL and row.isolated.diagnosis == "gradient sent to every tied entry"


CORRECT = [(pool, seed) for pool in ("maxpool2d", "kinks_pool_ok") for seed in range(20)] + \
    [(pool, seed) for pool in ("kinks_pool_last", "kinks_pool_split") for seed in range(5)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("pool", "seed"), CORRECT)
def test_valid_subgradients_at_ties_stay_kink(pool, seed, dtype):
    kinks = 0
    for text, label in [(OVERLAP, "3"), (RELU, "2")]:
        result = _check(text, pool, seed, dtype)
        bad = [(r.label, r.tensor, r.status.value, r.reason) for r in result.rows
               if r.status in (Status.FAIL, Status.INHERITED, Status.WARN)]
        assert not bad
        kinks += _row(result, label).isolated.kinks
    assert kinks > 0    # the ties were real: the test had something to judge
