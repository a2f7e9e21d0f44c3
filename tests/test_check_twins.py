"""check/twins.py: a user's layer whose forward is x·W + b, found so on its arrays, is differenced
through the built-in dense layer holding the same arrays (whose exact shortcuts serve it); its own
backward is what is checked, a planted error in it is still found at its row, and a forward that
is not x·W + b at any point tried keeps its own."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradcheck_cli import build_network, check_network, spec_from_text
from gradcheck_cli.check.state import CheckSettings
from gradcheck_cli.check.twins import dense_twin
from gradcheck_cli.layers.dense import Dense
from gradcheck_cli.layers.plugins import load_plugin
from gradcheck_cli.layers.registry import lookup
from gradcheck_cli.results import Status

from test_check_shortcuts import assert_agree_within_noise

PLAIN = Path(__file__).resolve().parent / "fixtures" / "plain" / "plain_layers.py"


class Affine:
    """A learner's forms of x·W + b, and forms that are not it."""

    def __init__(self, form):
        self.form = form

    def build(self, n, units, rng):
        self.params = {"W": rng.standard_normal((n, units)), "b": rng.standard_normal(units)}
        return self

    def forward(self, x):
        W, b = self.params["W"], self.params["b"]
        out = {"matmul": lambda: x @ W + b,
               "dot": lambda: x.dot(W) + b,
               "einsum": lambda: np.einsum("nd,du->nu", x, W) + b,
               "no bias": lambda: x @ W,
               "doubled bias": lambda: x @ W + 2 * b,
               "relu": lambda: np.maximum(x @ W + b, 0.0),
               "batch of four only": lambda: (x @ W + b) if len(x) == 4 else (x @ W),
               "mean over the batch": lambda: x @ W + b - (x @ W).mean(axis=0)}[self.form]()
        return out, x


@pytest.mark.parametrize("form, twinned", [
    ("matmul", True), ("dot", True), ("einsum", True), ("no bias", False), ("doubled bias", False),
    ("relu", False), ("batch of four only", False), ("mean over the batch", False)])
def test_a_forward_that_is_x_w_plus_b_at_every_point_tried_has_a_dense_twin(form, twinned):
    rng = np.random.default_rng(0)
    layer = Affine(form).build(6, 3, rng)
    x = rng.standard_normal((4, 6))
    twin = dense_twin(layer, x, np.random.default_rng(1))
    assert (twin is not None) == twinned
    if twinned:
        assert isinstance(twin, Dense) and twin.layout == "rows"
        assert all(twin.params[k] is layer.params[k] for k in ("W", "b"))


def test_no_twin_for_other_parameters_or_shapes():
    rng = np.random.default_rng(2)
    layer = Affine("matmul").build(6, 3, rng)
    assert dense_twin(layer, rng.standard_normal((4, 2, 6)), rng) is None      # not (m, n_in)
    layer.params["scale"] = np.ones(3)
    assert dense_twin(layer, rng.standard_normal((4, 6)), rng) is None         # a third tensor
    assert dense_twin(Dense(3), rng.standard_normal((4, 6)), rng) is None     # a built-in already


MLP = ("input: {shape: [6], batch: 5}\nseed: SEED\nloss: softmax_cross_entropy\nl2: 0.2\n"
       "layers: [{type: DENSE, units: 7}, {type: plain_relu}, {type: DENSE, units: 3}]\n")


@pytest.fixture(scope="module", autouse=True)
def plain_layers():
    load_plugin(PLAIN)


def _calls(spec, monkeypatch, twins=True):
    """The check of ``spec`` and the forward calls its plugin dense layers received."""
    cls, calls = lookup("plain_dense"), []
    forward = cls.forward
    with monkeypatch.context() as mp:
        mp.setattr(cls, "forward", lambda self, x: calls.append(1) or forward(self, x))
        if not twins:
            mp.setattr("gradcheck_cli.check.state.with_twins", lambda ref, net: ref)
        result = check_network(build_network(spec_from_text(spec)), CheckSettings(keep_arrays=True))
    return result, len(calls)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_twinned_plugin_gets_the_same_verdicts_and_numbers_with_fewer_calls_of_its_forward(
        seed, monkeypatch):
    spec = MLP.replace("DENSE", "plain_dense").replace("SEED", str(seed))
    twinned, calls_twinned = _calls(spec, monkeypatch)
    alone, calls_alone = _calls(spec, monkeypatch, twins=False)
    off = check_network(build_network(spec_from_text(spec)), CheckSettings(keep_arrays=True, batched=False))
    assert [r.status for r in twinned.rows] == [r.status for r in alone.rows] == [r.status for r in off.rows]
    assert all(r.status is Status.PASS for r in twinned.rows)
    assert_agree_within_noise(twinned, off)
    # the clean forward, backward's checks and the twin's own test still call the user's forward
    assert 0 < calls_twinned <= calls_alone / 3


def test_a_planted_1e5_error_in_a_twinned_plugins_backward_is_found_at_its_row():
    net = build_network(spec_from_text(MLP.replace("DENSE", "plain_dense_off").replace("SEED", "0")))
    from gradcheck_cli.check.forward import clean_forward, reference_forward
    from gradcheck_cli.check.twins import with_twins

    ref = with_twins(reference_forward(net, clean_forward(net)), net)
    assert isinstance(ref.layers[0], Dense) and isinstance(ref.layers[2], Dense)   # x·W + b both
    result = check_network(net, CheckSettings())
    bad = {(r.label, r.tensor) for r in result.rows if r.status is not Status.PASS}
    assert bad == {("1", "W"), ("3", "W")}                      # the dW each one plants


def test_the_complex_step_and_a_check_without_shortcuts_difference_the_users_own_forward():
    from gradcheck_cli.check.state import CheckContext

    net = build_network(spec_from_text(MLP.replace("DENSE", "plain_dense").replace("SEED", "0")))
    assert isinstance(CheckContext(net, CheckSettings()).ref.layers[0], Dense)
    for settings in (CheckSettings(batched=False), CheckSettings(method="complex")):
        assert not isinstance(CheckContext(net, settings).ref.layers[0], Dense)


@pytest.mark.parametrize("layout, tried", [("rows", True), ("columns", False)])
def test_twins_are_looked_for_in_rows_layout_only(layout, tried, monkeypatch):
    # the twin's shortcuts take the first axis for the examples, the columns layout the last
    from gradcheck_cli.check import twins

    seen = []
    monkeypatch.setattr(twins, "dense_twin", lambda *args: seen.append(args) or None)
    net = build_network(spec_from_text(f"input: {{shape: [6], batch: 5}}\nlayout: {layout}\nlayers:\n"
                                       "  - {type: dense, units: 3}\nloss: softmax_cross_entropy\n"))
    check_network(net, CheckSettings())
    assert bool(seen) == tried


class Pool:
    """A learner's forms of a k×k pool, stride k, and forms that are not one."""

    params: dict = {}

    def __init__(self, form, k=2):
        self.form, self.k = form, k

    def forward(self, x):
        N, C, H, W = x.shape
        k = self.k
        win = x.reshape(N, C, H // k, k, W // k, k)
        out = {"max": lambda: win.max(axis=(3, 5)),
               "mean": lambda: win.mean(axis=(3, 5)),
               "max of the first row": lambda: win[:, :, :, 0].max(axis=-1),
               "max, then relu": lambda: np.maximum(win.max(axis=(3, 5)), 0.0),
               "max, first channel twice": lambda: win.max(axis=(3, 5))[:, [0] * C]}[self.form]()
        return out, x


@pytest.mark.parametrize("form, twin", [("max", "MaxPool2D"), ("mean", "AvgPool2D"),
                                        ("max of the first row", None), ("max, then relu", None),
                                        ("max, first channel twice", None)])
def test_a_pool_that_takes_each_windows_max_or_mean_has_a_pool_twin(form, twin):
    from gradcheck_cli.check.twins import pool_twin

    # relu's zeros tie many windows: the twin must agree there too
    x = np.maximum(np.random.default_rng(3).standard_normal((3, 2, 8, 6)), 0.0)
    found = pool_twin(Pool(form), x, Pool(form).forward(x)[0], np.random.default_rng(4))
    assert (None if found is None else type(found).__name__) == twin
    if found is not None:
        assert found.kernel == found.stride == (2, 2)


CONVNET = ("input: {shape: [2, 8, 8], batch: 3}\nseed: SEED\nloss: softmax_cross_entropy\nlayers: "
           "[{type: conv2d, filters: 3, kernel: 3, padding: 1}, {type: relu}, {type: POOL}, "
           "{type: flatten}, {type: dense, units: 3}]\n")


class TwinPool:
    """A learner's reshape max-pool; ``off`` halves the gradient it routes (a planted bug)."""

    off = False

    def __init__(self):
        self.params = {}

    def build(self, input_shape, rng):
        c, h, w = input_shape
        return (c, h // 2, w // 2)

    def forward(self, x):
        N, C, H, W = x.shape
        win = x.reshape(N, C, H // 2, 2, W // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, H // 2, W // 2, 4)
        arg = win.argmax(axis=-1)
        return np.take_along_axis(win, arg[..., None], axis=-1)[..., 0], (x.shape, arg)

    def backward(self, dout, cache):
        (N, C, H, W), arg = cache
        dwin = np.zeros((N, C, H // 2, W // 2, 4))
        np.put_along_axis(dwin, arg[..., None], (0.5 if self.off else 1.0) * dout[..., None], axis=-1)
        return dwin.reshape(N, C, H // 2, W // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, H, W), {}


class TwinPoolOff(TwinPool):
    off = True


@pytest.mark.parametrize("seed", [0, 1])
def test_a_twinned_pool_gets_the_same_verdicts_and_numbers_and_a_planted_error_is_found(seed):
    from gradcheck_cli.check.state import CheckContext
    from gradcheck_cli.layers.pool import MaxPool2D
    from conftest import layers_registered

    with layers_registered({"twin_pool": TwinPool, "twin_pool_off": TwinPoolOff}):
        spec = CONVNET.replace("SEED", str(seed))
        net = build_network(spec_from_text(spec.replace("POOL", "twin_pool")))
        assert isinstance(CheckContext(net, CheckSettings()).ref.layers[2], MaxPool2D)
        on = check_network(net, CheckSettings(keep_arrays=True))
        off = check_network(build_network(spec_from_text(spec.replace("POOL", "twin_pool"))),
                            CheckSettings(keep_arrays=True, batched=False))
        assert [r.status for r in on.rows] == [r.status for r in off.rows]
        assert all(r.status in (Status.PASS, Status.KINK) for r in on.rows)
        assert_agree_within_noise(on, off)
        bad = check_network(build_network(spec_from_text(spec.replace("POOL", "twin_pool_off"))))
        assert {(r.label, r.tensor) for r in bad.rows if r.status is Status.FAIL} == {("3", "x")}
