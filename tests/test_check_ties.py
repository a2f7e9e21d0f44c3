"""ties.py: entries that share a kink (tied maxima of a max-pool window) are judged together.
A backward that sends the gradient to every tied entry FAILs at its own row; the valid
subgradients at a tie (first, last, or shared maximum) stay `kink`, over many seeds and in
float32."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

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
    grad = lambda a0, a1: np.array([a0, a1, 1.0])     # noqa: E731  (θ2's gradient is 1)
    assert check_ties(theta, np.array([0, 1]), grad(3.0, 0.0), noise, one_sided, *args) is None
    assert check_ties(theta, np.array([0, 1]), grad(1.5, 1.5), noise, one_sided, *args) is None
    bad = check_ties(theta, np.array([0, 1]), grad(3.0, 3.0), noise, one_sided, *args)
    assert bad is not None and bad.bad.tolist() == [0, 1]
    assert bad.diagnosis == "gradient sent to every tied entry"
    assert bad.reason == ("gradient sent to every tied entry: in 1 group of tied entries (equal "
                          "values, 2 entries) each entry gets the whole gradient, which only one of "
                          "them (or a share of it) may take; e.g. entries (0,) and (1,) are all 0.5: "
                          "moving them together changes f at rate 3, but their analytic values add up to 6")
    other = check_ties(theta, np.array([0, 1]), grad(6.0, 0.0), noise, one_sided, *args)
    assert other is not None and other.diagnosis == "tied entries' gradients do not add up"
    assert other.reason == ("the gradients of tied entries do not add up: in 1 group of tied entries "
                            "(equal values, 2 entries) the sum of the analytic values is not the "
                            "derivative along the direction that moves the group together; e.g. "
                            "entries (0,) and (1,) are all 0.5: moving them together changes f at rate "
                            "3, but their analytic values add up to 6")


def _two_windows(copies):
    # f = max(θ0, θ1) − ½·max(θ2, θ0): windows overlapping in θ0, upstream gradients of mixed sign
    return np.maximum(copies[:, 0], copies[:, 1]) - 0.5 * np.maximum(copies[:, 2], copies[:, 0])


def test_an_entry_tied_in_windows_of_mixed_signs_is_excused_by_its_group():
    # θ = 0: θ0 moved up alone is the maximum of both windows (D+ = ½), moved down of neither
    # (D− = 0). First-maximum routing gives θ0 the first window's 1 and θ2 the second's −½:
    # θ0's 1 lies outside [0, ½], yet it is the gradient at θ − ε·(0, 1, 2), a valid subgradient.
    # Moving the three tied entries together changes f at rate ½, and the routing adds up to ½
    theta = np.zeros(3)
    args = (_two_windows, 1e-5, 0.0, 1.0, 64)
    noise = np.full(3, 1e-10)
    one_sided = (np.array([0.5, 1.0, -0.5]), np.array([0.0, 0.0, 0.0]))
    first = check_ties(theta, np.arange(3), np.array([1.0, 0.0, -0.5]), noise, one_sided, *args,
                       bracketed=np.array([False, True, True]))
    assert first is not None and first.bad.size == 0 and first.excused.tolist() == [0]
    every = check_ties(theta, np.arange(3), np.array([0.5, 1.0, -0.5]), noise, one_sided, *args)
    assert every is not None and every.bad.tolist() == [0, 1, 2]
    assert every.diagnosis == "gradient sent to every tied entry"


def test_a_tie_with_a_constant_is_judged_by_the_bracket():
    # relu(θ0) − ½·relu(θ1) at θ = 0 (ties with the constant 0): the group's direction crosses
    # the kinks, so its sum must lie within [D−, D+] = [0, ½] along it; relu' = 1[x > 0] gives
    # (0, 0), 1[x ≥ 0] gives (1, −½); twice the derivative is outside
    def stack(copies):
        return np.maximum(copies[:, 0], 0) - 0.5 * np.maximum(copies[:, 1], 0) + 0.0 * copies[:, 2]

    theta = np.array([0.0, 0.0, 1.0])
    args = (stack, 1e-5, 0.0, 1.0, 64)
    noise = np.full(2, 1e-10)
    one_sided = (np.array([1.0, -0.5]), np.array([0.0, 0.0]))
    assert check_ties(theta, np.arange(2), np.array([0.0, 0.0, 0.0]), noise, one_sided, *args) is None
    assert check_ties(theta, np.arange(2), np.array([1.0, -0.5, 0.0]), noise, one_sided, *args) is None
    twice = check_ties(theta, np.arange(2), np.array([2.0, -1.0, 0.0]), noise, one_sided, *args)
    assert twice is not None and twice.bad.tolist() == [0, 1]
    assert twice.reason.startswith("the gradients of tied entries do not add up: in 1 group of tied "
                                   "entries (equal values, 2 entries) the sum of the analytic values "
                                   "lies outside the one-sided derivatives along the direction that "
                                   "moves the group together (0 .. 0.5)")


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


def _overlapping(before: str, layer: str, kernel: int, seed: int, dtype: str = "float64"):
    first = ({"type": "relu"} if before == "relu" else {"type": "maxpool2d", "kernel": 2, "stride": 1})
    spec = {"name": "overlap", "seed": seed, "dtype": dtype, "input": {"shape": [1, 7, 7], "batch": 3},
            "layers": [{"type": "conv2d", "filters": 2, "kernel": 3, "padding": 1}, first,
                       {"type": layer, "kernel": kernel, "stride": 1}, {"type": "flatten"},
                       {"type": "dense", "units": 3}],
            "loss": "softmax_cross_entropy"}
    return check_network(build_network(spec_from_text(json.dumps(spec))))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("before", "kernel"), [("relu", 2), ("pool", 3)])
@pytest.mark.parametrize("seed", range(20))
def test_every_tied_entry_fails_with_overlapping_windows(seed, before, kernel, dtype):
    # windows that share their tied entries (stride 1): the bug FAILs at its own row, in each seed
    result = _overlapping(before, "kinks_pool_overlap_every_tie", kernel, seed, dtype)
    row = _row(result, "3")
    assert row.status is Status.FAIL and row.isolated.diagnosis == "gradient sent to every tied entry"
    assert {(r.label, r.tensor) for r in result.rows if r.status is Status.FAIL} == {("3", "x")}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("layer", ["maxpool2d", "kinks_pool_overlap_ok"])
@pytest.mark.parametrize("seed", range(20))
def test_first_maximum_routing_over_overlapping_windows_stays_kink(seed, layer, dtype):
    # entries tied in two windows whose upstream gradients differ in sign lie outside their own
    # one-sided derivatives; their tie group (every entry of the value) adds up, so no alarm
    kinks = 0
    for before, kernel in [("relu", 2), ("relu", 3), ("pool", 3)]:
        result = _overlapping(before, layer, kernel, seed, dtype)
        assert not [(r.label, r.tensor, r.status.value, r.reason) for r in result.rows
                    if r.status in (Status.FAIL, Status.INHERITED, Status.WARN)]
        kinks += _row(result, "3").isolated.kinks
    assert kinks > 0


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


@pytest.mark.parametrize(("before", "kernel"), [("relu", 2), ("pool", 3)])
@pytest.mark.parametrize("seed", range(10))
def test_directional_mode_judges_ties_along_directions_constant_on_them(seed, before, kernel):
    # a random direction through a tie is bracketed by its one-sided derivatives even when every
    # tied entry gets the gradient; the same direction made constant on the tied entries is
    # smooth there, and catches it (then the full check names it)
    def spec(layer):
        first = ({"type": "relu"} if before == "relu" else {"type": "maxpool2d", "kernel": 2, "stride": 1})
        return {"name": "dir", "seed": seed, "input": {"shape": [1, 7, 7], "batch": 3},
                "check": {"mode": "directional"},
                "layers": [{"type": "conv2d", "filters": 2, "kernel": 3, "padding": 1}, first,
                           {"type": layer, "kernel": kernel, "stride": 1}, {"type": "flatten"},
                           {"type": "dense", "units": 3}],
                "loss": "softmax_cross_entropy"}

    bug = check_network(build_network(spec_from_text(json.dumps(spec("kinks_pool_overlap_every_tie")))))
    row = _row(bug, "3")
    assert row.status is Status.FAIL and row.isolated.diagnosis == "gradient sent to every tied entry"
    assert {(r.label, r.tensor) for r in bug.rows if r.status is Status.FAIL} == {("3", "x")}
    for layer in ("maxpool2d", "kinks_pool_overlap_ok"):
        ok = check_network(build_network(spec_from_text(json.dumps(spec(layer)))))
        assert not [(r.label, r.tensor, r.status.value, r.reason) for r in ok.rows
                    if r.status in (Status.FAIL, Status.INHERITED, Status.WARN)]


def test_tie_directions_are_constant_on_equal_entries():
    from gradcheck_cli.check.ties import tie_directions

    theta = np.array([0.0, 1.0, 0.0, 2.0, 1.0, 0.0])
    u = np.array([[1.0, 2.0, 3.0, 4.0, 0.0, 2.0]])
    out = tie_directions(theta, u)
    expected = np.array([2.0, 1.0, 2.0, 4.0, 1.0, 2.0])
    np.testing.assert_allclose(out, [expected / np.linalg.norm(expected)])
    assert tie_directions(np.arange(4.0), u[:, :4]) is None


def _size(n, k, s, p=0, d=1):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(c=st.integers(1, 2), h=st.integers(3, 8), w=st.integers(3, 8), batch=st.integers(1, 3),
       k=st.integers(1, 3), s=st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2),
       pool=st.sampled_from(["maxpool2d", "avgpool2d"]), pk=st.integers(1, 3), ps=st.integers(1, 3),
       relu=st.booleans(), dtype=st.sampled_from(["float64", "float32"]), seed=st.integers(0, 50))
def test_correct_conv_and_pool_geometries_never_fail_or_warn(c, h, w, batch, k, s, p, d, pool, pk, ps,
                                                             relu, dtype, seed):
    # borders (padding, a last window cut short), strides and dilations, overlapping windows and
    # relu zeros (ties) before the pool: built-in layers are right, so no FAIL and no warn
    oh, ow = _size(h, k, s, p, d), _size(w, k, s, p, d)
    assume(oh >= 1 and ow >= 1 and _size(oh, pk, ps) >= 1 and _size(ow, pk, ps) >= 1)
    layers = [{"type": "conv2d", "filters": 2, "kernel": k, "stride": s, "padding": p, "dilation": d}]
    layers += [{"type": "relu"}] if relu else []
    layers += [{"type": pool, "kernel": pk, "stride": ps}, {"type": "flatten"}, {"type": "dense", "units": 2}]
    spec = {"name": "geometry", "seed": seed, "dtype": dtype, "input": {"shape": [c, h, w], "batch": batch},
            "layers": layers, "loss": "softmax_cross_entropy"}
    result = check_network(build_network(spec_from_text(json.dumps(spec))))
    # (a geometry whose windows only ever see padding sends no gradient back at all: that note
    # is about the network, true of it, and no verdict on a gradient)
    assert not [(r.label, r.tensor, r.status.value, r.reason) for r in result.rows
                if r.status in (Status.FAIL, Status.INHERITED, Status.WARN)
                and not r.reason.startswith("vanishing gradient: ‖dL/dx‖ is 0.0e+00")]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", range(20))
def test_relus_that_flip_together_are_judged_together(seed, dtype):
    # relu(a − b) where a = b = 0 (after a relu): one kink crossed by either entry, each alone
    # within its one-sided derivatives even with two masks; their group (every 0 of x) is
    # smooth along the joint move, and must add up
    def check(layer):
        spec = {"name": "pair", "seed": seed, "dtype": dtype, "input": {"shape": [8], "batch": 4},
                "layers": [{"type": "dense", "units": 8, "activation": "relu"}, {"type": layer},
                           {"type": "dense", "units": 3}], "loss": "softmax_cross_entropy"}
        return check_network(build_network(spec_from_text(json.dumps(spec))))

    ok = check("kinks_pair_relu_ok")
    assert not [(r.label, r.tensor, r.status.value) for r in ok.rows
                if r.status in (Status.FAIL, Status.INHERITED, Status.WARN)]
    bug = check("kinks_pair_relu_two_masks")
    row = _row(bug, "2")
    if _row(ok, "2").isolated.kinks:      # (a seed without a tie a = b has nothing to catch)
        assert row.status is Status.FAIL
        assert row.isolated.diagnosis == "tied entries' gradients do not add up"
    assert {(r.label, r.tensor) for r in bug.rows if r.status is Status.FAIL} <= {("2", "x")}
