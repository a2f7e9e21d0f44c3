"""check/structure.py, check/copies.py, check/grouping.py, check/factored.py: what the engine shares between
perturbed copies is found on the real arrays, never taken from a plugin's word, and every verdict
is the same with and without the shortcuts."""
from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as hs

from gradcheck_cli import build_network, check_network, load_spec, spec_from_text
from gradcheck_cli.check.evaluators import with_params
from gradcheck_cli.check.state import CheckSettings
from gradcheck_cli.check.structure import structure_of
from gradcheck_cli.layers.plugins import load_plugin
from gradcheck_cli.layers.registry import lookup
from gradcheck_cli.results import Status

from test_check_shortcuts import assert_agree_within_noise

ROOT = Path(__file__).resolve().parent.parent
PLAIN = ROOT / "tests" / "fixtures" / "plain" / "plain_layers.py"
CONFIGS = sorted(p for p in (ROOT / "configs").iterdir() if p.suffix in (".yaml", ".toml"))
BROKEN = sorted((ROOT / "examples" / "broken").glob("*.yaml"))
MUTANTS = sorted((ROOT / "tests" / "mutants").glob("*.toml"))

PLAIN_MLP = """
input: {shape: [6], batch: 5}
seed: SEED
layers:
  - {type: DENSE, units: 7}
  - {type: plain_relu}
  - {type: plain_dense, units: 4}
  - {type: plain_batch_center}
  - {type: plain_dense, units: 3}
loss: softmax_cross_entropy
l2: 0.2
"""


@pytest.fixture(scope="module", autouse=True)
def plain_layers():
    load_plugin(PLAIN)


def _layer(name, input_shape, **options):
    layer = lookup(name)(**options)
    layer.build(input_shape, np.random.default_rng(0))
    layer.params = {k: np.asarray(v, dtype=np.float64) for k, v in layer.params.items()}
    return layer


def test_rows_layout_dense_stacks_x_and_w_not_b():
    rng = np.random.default_rng(1)
    st = structure_of(_layer("plain_dense", (5,), units=4), rng.standard_normal((3, 5)), "rows", rng)
    assert st.stacks == {"x", "W"}
    assert st.separable and st.concatenates and not st.elementwise
    assert st.axes_of("W") == (1, 1) and st.axes_of("b") == (0, 1)


def test_relu_is_elementwise_and_batch_centering_is_not_separable():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 6))
    relu = structure_of(_layer("plain_relu", (6,)), x, "rows", rng)
    assert relu.elementwise and relu.separable
    center = structure_of(_layer("plain_batch_center", (6,)), x, "rows", rng)
    assert not center.separable and not center.concatenates and not center.stacks


def test_a_loop_layer_is_batched_along_the_batch_axis_only():
    rng = np.random.default_rng(3)
    st = structure_of(_layer("loop_dense", (5,), units=2), rng.standard_normal((3, 5)), "rows", rng)
    assert st.stacks == set() and st.concatenates and st.separable


def _statuses(result):
    # a diagnosis quotes a rounding-level error (rel err 2.8e-11): its digits are not part of it
    return [(r.label, r.tensor, r.status, r.isolated.status, r.network.status if r.network else None,
             re.sub(r"\d\.\de-\d+", "~", r.isolated.diagnosis or "")) for r in result.rows]


def _both(spec, **settings):
    on = check_network(build_network(spec), CheckSettings(keep_arrays=True, **settings))
    off = check_network(build_network(spec), CheckSettings(keep_arrays=True, batched=False, **settings))
    return on, off


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dense", ["plain_dense", "loop_dense"])
def test_plugin_network_same_verdicts_and_numbers_with_and_without_shortcuts(dense, seed, monkeypatch):
    # the plugins as black boxes: their dense twins (check/twins.py, tested on their own) would
    # serve them by the built-in's shortcuts, which count a probe as an evaluation
    monkeypatch.setattr("gradcheck_cli.check.state.with_twins", lambda ref, net: ref)
    on, off = _both(spec_from_text(PLAIN_MLP.replace("DENSE", dense).replace("SEED", str(seed))))
    assert _statuses(on) == _statuses(off)
    assert_agree_within_noise(on, off)
    # batch centring keeps the layers before it from sharing copies between examples
    assert on.evaluations < 0.6 * off.evaluations


def test_a_planted_1e5_error_in_a_plugin_is_still_found():
    spec = PLAIN_MLP.replace("DENSE", "plain_dense_off").replace("SEED", "0")
    on, off = _both(spec_from_text(spec))
    row = next(r for r in on.rows if (r.label, r.tensor) == ("1", "W"))
    assert row.status is Status.FAIL
    assert _statuses(on) == _statuses(off)


@pytest.mark.parametrize("path", [p for p in CONFIGS if "lenet" not in p.name] + BROKEN,
                         ids=lambda p: p.name)
def test_bundled_and_broken_configs_same_verdicts_with_and_without_shortcuts(path):
    spec = load_spec(path)
    for plugin in spec.plugins:
        load_plugin(path.parent / plugin)
    on, off = _both(spec)
    assert _statuses(on) == _statuses(off)
    # the end-to-end column may come from the factored route: the same numbers to the noise
    assert_agree_within_noise(on, off)


def _mutant_specs():
    for table in MUTANTS:
        data = tomllib.loads(table.read_text(encoding="utf-8"))
        plugin = table.parent / data.get("plugin", table.with_suffix(".py").name)
        for k, case in enumerate(data.get("cases", [])):
            net = dict(data["networks"][case["network"]])
            for drop in ("correct", "seeds", "dtypes"):
                net.pop(drop, None)
            entry = {"type": case["layer"], **case.get("options", {})}
            net["layers"] = [{**layer, **entry} if layer.get("type") == "@" else layer
                             for layer in net["layers"]]
            if net.get("loss") == "@":
                net["loss"] = entry
            net["seed"], net["dtype"] = case.get("seed", 0), case.get("dtype", "float64")
            yield pytest.param(plugin, json.dumps(net), id=f"{table.stem}-{k}-{case['layer']}")


@pytest.mark.parametrize("plugin,text", list(_mutant_specs()))
def test_mutant_corpus_same_verdicts_with_and_without_shortcuts(plugin, text):
    load_plugin(plugin)
    on, off = _both(spec_from_text(text, "yaml", "mutant.yaml"))
    assert _statuses(on) == _statuses(off)


CONVNET = """
input: {shape: SHAPE, batch: 3}
seed: SEED
layers:
  - {type: CONV, filters: 4, kernel: KERNEL, stride: STRIDE, padding: PAD, dilation: DIL, groups: GROUPS}
  - {type: tanh}
  - {type: flatten}
  - {type: dense, units: 3}
loss: softmax_cross_entropy
"""

GEOMETRIES = [("conv2d", [2, 7, 6], 3, 1, 1, 1, 1), ("conv2d", [2, 9, 8], [3, 2], 2, [1, 0], 1, 1),
              ("conv2d", [4, 8, 8], 3, 1, 2, 2, 2), ("conv1d", [3, 40], 4, 3, 1, 2, 1)]


def _convnet(conv, shape, kernel, stride, pad, dil, groups, seed=0):
    text = CONVNET
    for k, v in dict(CONV=conv, SHAPE=shape, KERNEL=kernel, STRIDE=stride, PAD=pad, DIL=dil,
                     GROUPS=groups, SEED=seed).items():
        text = text.replace(k, json.dumps(v))
    return spec_from_text(text)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: f"{g[0]}-k{g[2]}-s{g[3]}-p{g[4]}-d{g[5]}-g{g[6]}")
def test_convolution_inputs_grouped_by_window_same_verdicts_and_numbers(geometry):
    # a built-in convolution's dx is differenced with inputs whose output windows do not overlap
    # perturbed together (every example at once), and read from their own windows
    on, off = _both(_convnet(*geometry))
    assert _statuses(on) == _statuses(off)
    assert all(r.status is Status.PASS for r in on.rows)
    assert_agree_within_noise(on, off)
    conv_x = on.arrays["isolated/1/x/numeric"]
    channels, period = conv_x.shape[1], 1
    for k, d in zip(np.atleast_1d(geometry[2]) * np.ones(conv_x.ndim - 2, int),
                    np.atleast_1d(geometry[5]) * np.ones(conv_x.ndim - 2, int)):
        period *= (k - 1) * d + 1
    # without the windows, the examples alone would share copies: 2 per entry of one example,
    # in the isolated check of dx, whose copies serve the end-to-end row of the network input
    # too (differenced through the first layer alone against the chained g)
    with pytest.MonkeyPatch.context() as mp:
        from gradcheck_cli.check import structure
        from gradcheck_cli.layers.conv import _Conv

        known = structure.windows_known
        mp.setattr("gradcheck_cli.check.grouping.conv_geometry", lambda layer: None)
        # nor measured: the convolution's input shares copies between examples only
        mp.setattr(structure, "windows_known", lambda layer, st: isinstance(layer, _Conv) or known(layer, st))
        per_example = check_network(build_network(_convnet(*geometry)), CheckSettings())
    colours = channels * period
    assert per_example.evaluations - on.evaluations == 2 * (conv_x.size // conv_x.shape[0] - colours)
    made = {c.what: c.made for c in on.tensor_costs}
    assert made["end to end, layer 1 x"] == 0
    assert colours < conv_x.size // conv_x.shape[0] / 2   # so that the count above says something


def test_a_planted_1e5_error_in_a_convolutions_dx_is_found_with_grouped_inputs():
    from gradcheck_cli.layers.conv import Conv2D
    from gradcheck_cli.layers.registry import register, unregister

    class Conv2DOff(Conv2D):
        def backward(self, dout, cache):
            dx, grads = super().backward(dout, cache)
            dx = dx.copy()
            dx.reshape(-1)[dx.size // 2] += 1e-5   # entry (1, 1, 0, 0) of (3, 2, 7, 6) * max(1.0, float(np.abs(dx).max()))
            return dx, grads

    register("conv2d_dx_off")(Conv2DOff)
    try:
        on, off = _both(_convnet("conv2d_dx_off", [2, 7, 6], 3, 1, 1, 1, 1))
    finally:
        unregister("conv2d_dx_off")
    row = next(r for r in on.rows if (r.label, r.tensor) == ("1", "x"))
    # found, and at the entry where it was planted (a 1e-5 change of a large dx is a warning)
    assert row.isolated.status in (Status.WARN, Status.FAIL)
    assert "worst entry (1, 1, 0, 0)" in row.reason
    assert _statuses(on) == _statuses(off)


def test_examples_share_copies_when_probes_are_batched_in_index_order():
    # rows layout: an index-ordered batch of probes holds one example's entries, which share no
    # copy; the probes are taken colour by colour instead (the memory budget forces many batches)
    spec = PLAIN_MLP.replace("DENSE", "plain_dense").replace("SEED", "0").replace("batch: 5", "batch: 8")
    small = check_network(build_network(spec_from_text(spec)), CheckSettings(max_memory=64 << 10))
    large = check_network(build_network(spec_from_text(spec)), CheckSettings())
    assert small.evaluations <= 1.2 * large.evaluations
    assert _statuses(small) == _statuses(large)


RECURRENT = """
input: {shape: [5, 3], batch: 3}
seed: SEED
layers:
  - {type: lstm, hidden: 4}
  - {type: linear, units: 2}
loss: mse
"""


@pytest.mark.parametrize("seed", [0, 1])
def test_a_recurrent_layers_parameter_copies_serve_both_columns(seed, monkeypatch):
    # the isolated check's copies of Wx, Wh and b (and the linear layer's grouped copies of W
    # and b) are contracted with the chained g as well, so their factored end-to-end rows run no
    # copy of their own. This is what a recurrent plugin gets: a built-in one is differenced
    # step by step instead (check/recurrence.py), which is turned off here.
    monkeypatch.setattr("gradcheck_cli.check.recurrence.METHODS", ())
    spec = spec_from_text(RECURRENT.replace("SEED", str(seed)))
    on, off = _both(spec)
    assert _statuses(on) == _statuses(off)
    assert all(r.status is Status.PASS for r in on.rows)
    assert_agree_within_noise(on, off)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("gradcheck_cli.check.isolated.TWIN_LIMIT", -1)
        apart = check_network(build_network(spec), CheckSettings())
    lstm = build_network(spec).nodes[0].layer
    params = [f"end to end, layer {k} {name}" for k, names in ((1, ("Wx", "Wh", "b")), (2, ("W", "b")))
              for name in names]
    made = {c.what: c.made for c in on.tensor_costs}
    alone = {c.what: c.made for c in apart.tensor_costs}
    assert [made[p] for p in params] == [0] * len(params)
    assert [alone[p] for p in params[:3]] == [2 * p.size for p in lstm.params.values()]
    assert apart.evaluations - on.evaluations == sum(alone[p] for p in params)


def _splits_every_pair(sets: np.ndarray) -> bool:
    """Whether for every q != q' some set holds q and not q'."""
    holds_not = sets.T.astype(int) @ (~sets).astype(int)                 # (n, n) counts
    np.fill_diagonal(holds_not, 1)
    return bool((holds_not > 0).all())


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 9, 16, 33, 100, 1000])
def test_separating_sets_split_every_ordered_pair_with_the_fewest_codes(n):
    import math
    from gradcheck_cli.check.structure import separating_sets

    sets = separating_sets(n)
    assert sets.shape[1] == n
    assert _splits_every_pair(sets)
    k = next(k for k in range(40) if math.comb(k, k // 2) >= n)
    assert len(sets) <= k                                                # 5 for 8, not 6


def test_separating_sets_of_a_long_axis_split_every_pair_through_its_two_parts(monkeypatch):
    from gradcheck_cli.check import structure

    monkeypatch.setattr(structure, "CODED", 8)
    for n in (9, 17, 64, 70):
        assert _splits_every_pair(structure.separating_sets(n)), n


@pytest.mark.parametrize("n, q, q2", [(5, 0, 4), (5, 4, 0), (8, 3, 4), (8, 6, 5), (17, 16, 0), (17, 2, 9)])
def test_one_slice_that_reaches_one_other_is_never_taken_as_independent(n, q, q2):
    """Slice q2 of the output also depends, faintly, on slice q of θ: some set moves q and not
    q2, so the dependence is seen whatever the pair."""
    from gradcheck_cli.check.structure import independent_slices

    rng = np.random.default_rng(n)
    theta = rng.standard_normal((n, 3))

    def call(v):
        out = v * 2.0
        out[q2] = out[q2] + (v[q] - theta[q]) * 1e-9
        return out

    assert not independent_slices(call, theta, 0, call(theta), 0, rng)
    assert independent_slices(lambda v: v * 2.0, theta, 0, theta * 2.0, 0, rng)


def test_filter_copies_run_side_by_side_only_where_the_layer_gives_each_its_own_output():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3, 5))
    mix = structure_of(_layer("plain_mix", (3, 5), filters=6), x, "rows", rng)
    assert mix.axes_of("W") == (0, 1) and mix.axes_of("b") == (0, 1)
    # b has one entry a filter: its copies are two in all, side by side or not
    assert mix.stacks == set() and mix.widens == {"W"}
    # each filter reaches its own channel alone, but the layer divides by the number of filters
    mean = structure_of(_layer("plain_mix_mean", (3, 5), filters=6), x, "rows", rng)
    assert mean.axes_of("W") == (0, 1) and mean.widens == set()
    # sized by self.units, not by W: a wider W would be read in part
    loop = structure_of(_layer("loop_dense", (5,), units=4), rng.standard_normal((3, 5)), "rows", rng)
    assert loop.axes_of("W") == (1, 1) and loop.widens == set()


def test_filter_copies_side_by_side_give_what_each_copy_gives_alone_in_one_call():
    from gradcheck_cli.check.copies import perturbed

    rng = np.random.default_rng(6)
    layer = _layer("plain_mix", (3, 5), filters=6)
    x = rng.standard_normal((4, 3, 5))
    st = structure_of(layer, x, "rows", rng)
    stack = layer.params["W"] + 0.1 * rng.standard_normal((7, 6, 3))
    calls = []
    together = perturbed(layer, st, "W", x, stack, "rows", calls.append)
    alone = np.stack([with_params(layer, {"W": w}).forward(x)[0] for w in stack])
    assert calls == [1]
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-13 * np.abs(alone).max())


MIX = """
input: {shape: [3, 5], batch: 4}
seed: SEED
layers:
  - {type: MIX, filters: 6}
  - {type: tanh}
  - {type: flatten}
  - {type: dense, units: 3}
loss: softmax_cross_entropy
"""


@pytest.mark.parametrize("seed", [0, 1])
def test_filters_side_by_side_same_verdicts_and_numbers_and_a_planted_1e5_error_is_found(seed):
    on, off = _both(spec_from_text(MIX.replace("MIX", "plain_mix").replace("SEED", str(seed))))
    assert _statuses(on) == _statuses(off)
    assert all(r.status is Status.PASS for r in on.rows)
    assert_agree_within_noise(on, off)
    on, off = _both(spec_from_text(MIX.replace("MIX", "plain_mix_off").replace("SEED", str(seed))))
    row = next(r for r in on.rows if (r.label, r.tensor) == ("1", "W"))
    assert row.isolated.status in (Status.WARN, Status.FAIL)
    assert "worst entry (2, 1)" in row.reason
    assert _statuses(on) == _statuses(off)


def test_filter_copies_side_by_side_are_budgeted_for_the_copy_laid_out_anew(monkeypatch):
    # the stack of copies and the wide parameter made of it are held at once: a batch is sized
    # for both, so that --max-memory holds where the copies, not the activations, are the bulk
    import gradcheck_cli.check.differences as differences
    from gradcheck_cli.check.budget import bytes_per_probe, copy_sizes

    seen = []
    chunk_for = differences.chunk_for
    # the copies a batch of grouped probes may hold (grouped_entries.max_copies, budget.shared_bytes)
    monkeypatch.setattr(differences, "chunk_for", lambda per, budget: seen.append(per) or chunk_for(per, budget))
    text = MIX.replace("MIX", "plain_mix").replace("SEED", "0").replace("[3, 5]", "[300, 1]")
    net = build_network(spec_from_text(text))
    layer = net.nodes[0].layer
    x = np.asarray(net.x, dtype=np.float64)
    st = structure_of(layer, x, "rows", np.random.default_rng(0))
    assert st.widens == {"W"}
    check_network(net, CheckSettings())
    sizes = copy_sizes([layer], [x.shape, (x.shape[0], 6, 1)], [st.held])
    assert bytes_per_probe(6 * 300, sizes, "central", copies=2) in seen


@hypothesis_settings(max_examples=60, deadline=None)
@given(shape=hs.lists(hs.integers(1, 4), min_size=1, max_size=3), copies=hs.integers(1, 5), data=hs.data())
def test_copies_side_by_side_come_back_each_in_its_place_whatever_the_axis(shape, copies, data):
    # a layer whose output puts the parameter's axis a second (after a batch of one): the wide
    # output, parted again, is each copy's own output, in the order of the stack
    from gradcheck_cli.check.structure import narrowed, widened

    a = data.draw(hs.integers(0, len(shape) - 1))

    class Moves:
        def forward(self, x):
            return np.moveaxis(self.params["W"], a, 0)[None] * x, None

    layer = Moves()
    rng = np.random.default_rng(len(shape) * 10 + copies)
    layer.params = {"W": rng.standard_normal(shape), "s": rng.standard_normal(shape[a])}
    stack = rng.standard_normal((copies, *shape))
    axes = (("W", (a, 1)), ("s", (0, 1)))
    params = widened(layer, axes, "W", stack)
    # the companion of the same length is repeated once per copy
    assert params["s"].shape == (copies * shape[a],)
    wide = with_params(layer, params).forward(1.0)[0]
    alone = np.stack([with_params(layer, {"W": w}).forward(1.0)[0] for w in stack])
    np.testing.assert_array_equal(narrowed(wide, copies, 1), alone)


@pytest.mark.parametrize("stacks", [False, True])
def test_a_plugins_copies_go_through_in_calls_that_hold_about_call_bytes_each_as_one_call_gives(stacks):
    # a learner's im2col keeps a cache many times its input: copies go through in calls whose
    # output and cache hold about CALL_BYTES (two copies at least, which the batch was sized
    # for anyway), each copy's output what one call of the whole stack gives, bit for bit
    from gradcheck_cli.check.structure import CALL_BYTES, through

    calls = []

    class Wide:
        params = {}

        def forward(self, x):
            calls.append(x.shape[0])
            cache = np.repeat(x[..., None], 64, axis=-1)           # 64 entries kept per input entry
            return np.tanh(x) * 2.0, cache

    x = np.random.default_rng(0).standard_normal((4, 512))
    st = structure_of(Wide(), x, "rows", np.random.default_rng(1))
    assert st.held == x.size * 65 and st.separable and st.concatenates
    if stacks:
        assert "x" in st.stacks
    else:
        st = dataclasses.replace(st, stacks=frozenset())
    stack = np.random.default_rng(2).standard_normal((9, *x.shape))
    per_call = max(2, CALL_BYTES // (st.held * 8))
    calls.clear()
    out = through(Wide(), st, stack, "rows")
    assert len(calls) == -(-9 // per_call) and per_call < 9
    assert np.array_equal(out, np.tanh(stack) * 2.0)
