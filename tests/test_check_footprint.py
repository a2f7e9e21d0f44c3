"""check/footprint.py (and its use in check/grouping.py): the user's own convolution, pooling and
reshape layers get column grouping from footprint boxes measured on the real arrays; each
grouped difference equals the one-copy-at-a-time difference to rounding, whatever the geometry,
and a layer that leaks out of its measured footprint falls back to copies that share less."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gradcheck_cli import build_network, check_network, spec_from_text
from gradcheck_cli.check.copies import copies_evaluator
from gradcheck_cli.check.grouping import grouped_input
from gradcheck_cli.check.evaluators import entries_from_stack
from gradcheck_cli.check.state import CheckSettings
from gradcheck_cli.check.structure import structure_of
from gradcheck_cli.layers.registry import register, unregister
from gradcheck_cli.results import Status

from conftest import layers_registered
from test_check_shortcuts import assert_agree_within_noise


def _windows(xpad, k, s, d, out_hw):
    """xpad's (N, C, Ho, Wo) view at every kernel offset (i, j)."""
    ho, wo = out_hw
    for i in range(k):
        for j in range(k):
            yield i, j, xpad[:, :, i * d: i * d + s * (ho - 1) + 1: s, j * d: j * d + s * (wo - 1) + 1: s]


class FpConv:
    """A learner's convolution, one kernel offset at a time: x (N, C, H, W) -> (N, F, Ho, Wo)."""

    def __init__(self, filters=3, kernel=3, stride=1, padding=1, dilation=1):
        self.f, self.k, self.s, self.p, self.d = filters, kernel, stride, padding, dilation

    def build(self, input_shape, rng):
        c, h, w = input_shape
        self.params = {"W": rng.standard_normal((self.f, c, self.k, self.k)) * 0.5,
                       "b": rng.standard_normal(self.f) * 0.1}
        return (self.f, *self._out((h, w)))

    def _out(self, hw):
        span = (self.k - 1) * self.d + 1
        return tuple((n + 2 * self.p - span) // self.s + 1 for n in hw)

    def forward(self, x):
        W, b = self.params["W"], self.params["b"]
        p = self.p
        xpad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        hw = self._out(x.shape[2:])
        out = np.zeros((x.shape[0], W.shape[0], *hw)) + b[None, :, None, None]
        for i, j, view in _windows(xpad, self.k, self.s, self.d, hw):
            out += np.einsum("fc,nchw->nfhw", W[:, :, i, j], view)
        return out, x

    def backward(self, dout, x):
        W = self.params["W"]
        p = self.p
        xpad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        dxpad, dW = np.zeros_like(xpad), np.zeros_like(W)
        hw = dout.shape[2:]
        for (i, j, view), (_, _, dview) in zip(_windows(xpad, self.k, self.s, self.d, hw),
                                               _windows(dxpad, self.k, self.s, self.d, hw)):
            dW[:, :, i, j] = np.einsum("nfhw,nchw->fc", dout, view)
            dview += np.einsum("fc,nfhw->nchw", W[:, :, i, j], dout)
        dx = dxpad[:, :, p: p + x.shape[2], p: p + x.shape[3]]
        return dx, {"W": dW, "b": dout.sum(axis=(0, 2, 3))}


class FpConvOff(FpConv):
    def backward(self, dout, x):
        dx, grads = super().backward(dout, x)
        dx = dx.copy()
        dx[1, 1, 2, 3] += 1e-5 * max(1.0, float(np.abs(dx).max()))
        return dx, grads


class FpPool:
    """Max-pool with any stride (windows overlap when stride < kernel); the gradient goes to
    the first maximum of each window."""

    def __init__(self, kernel=2, stride=None):
        self.k, self.s = kernel, stride or kernel
        self.params = {}

    def build(self, input_shape, rng):
        c, h, w = input_shape
        return (c, (h - self.k) // self.s + 1, (w - self.k) // self.s + 1)

    def _views(self, x):
        win = np.lib.stride_tricks.sliding_window_view(x, (self.k, self.k), axis=(2, 3))
        return win[:, :, ::self.s, ::self.s].reshape(*x.shape[:2], -1, self.k * self.k)

    def forward(self, x):
        win = self._views(x)
        _, _, h, w = x.shape
        hw = ((h - self.k) // self.s + 1, (w - self.k) // self.s + 1)
        return win.max(axis=-1).reshape(*x.shape[:2], *hw), x

    def backward(self, dout, x):
        win = self._views(x)
        arg = win.argmax(axis=-1)                                   # (N, C, windows)
        ho, wo = dout.shape[2:]
        oi, oj = np.divmod(np.arange(ho * wo), wo)
        ki, kj = np.divmod(arg, self.k)
        rows, cols = oi * self.s + ki, oj * self.s + kj             # (N, C, windows)
        n, c = np.indices(arg.shape[:2])
        dx = np.zeros_like(x)
        np.add.at(dx, (n[..., None], c[..., None], rows, cols), dout.reshape(*dout.shape[:2], -1))
        return dx, {}


class FpFlatten:
    def __init__(self):
        self.params = {}

    def build(self, input_shape, rng):
        return (int(np.prod(input_shape)),)

    def forward(self, x):
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, dout, shape):
        return dout.reshape(shape), {}


class FpCumsum:
    """Not local along the last axis: out[..., j] = Σ_{j' ≤ j} x[..., j']."""

    def __init__(self):
        self.params = {}

    def build(self, input_shape, rng):
        return input_shape

    def forward(self, x):
        return np.cumsum(x, axis=-1), None

    def backward(self, dout, cache):
        return np.cumsum(dout[..., ::-1], axis=-1)[..., ::-1], {}


class FpTrap:
    """Even positions only, channels mixed, while its structure is measured; past a number of
    calls every output also reads its left neighbour, so odd positions, which no input reached,
    change: the footprint it showed no longer holds (an adversary of the grouping, not a layer
    anyone writes)."""

    calls = 0
    honest_calls = 10**9

    def __init__(self):
        self.params = {}

    def build(self, input_shape, rng):
        return input_shape

    def forward(self, x):
        type(self).calls += 1
        even = (np.arange(x.shape[-1]) % 2 == 0)
        out = even * (x ** 3 + 0.1 * x.sum(axis=1, keepdims=True))  # channels mix, positions do not
        if type(self).calls > type(self).honest_calls:
            out = out + 0.5 * np.roll(x, 1, axis=-1)
        return out, x

    def backward(self, dout, x):
        d = dout * (np.arange(x.shape[-1]) % 2 == 0)
        return 3 * x ** 2 * d + 0.1 * d.sum(axis=1, keepdims=True), {}


PLUGINS = {"fp_conv": FpConv, "fp_conv_off": FpConvOff, "fp_pool": FpPool, "fp_flatten": FpFlatten,
           "fp_cumsum": FpCumsum, "fp_trap": FpTrap}


@pytest.fixture(scope="module", autouse=True)
def footprint_layers():
    with layers_registered(PLUGINS):
        yield


def _layer(cls, input_shape, **options):
    layer = cls(**options)
    layer.build(input_shape, np.random.default_rng(0))
    return layer


def _structure(layer, x):
    return structure_of(layer, x, "rows", np.random.default_rng(4))


@pytest.mark.parametrize("make, shape, colours", [
    (lambda s: _layer(FpConv, s, filters=3, kernel=3, padding=1), (2, 8, 7), 2 * 3 * 3),
    (lambda s: _layer(FpConv, s, filters=3, kernel=3, stride=2, padding=0), (2, 9, 9), 2 * 3 * 3),
    (lambda s: _layer(FpConv, s, filters=2, kernel=2, padding=1, dilation=2), (2, 8, 8), 2 * 2 * 2),
    (lambda s: _layer(FpPool, s, kernel=2), (3, 8, 8), 4),
    (lambda s: _layer(FpPool, s, kernel=3, stride=1), (3, 8, 8), 9),
    (lambda s: _layer(FpFlatten, s), (3, 4, 4), 1),
], ids=["conv-k3-p1", "conv-k3-s2", "conv-k2-d2", "pool-2", "pool-3-overlapping", "flatten"])
def test_footprint_colours_of_the_users_convolution_pool_and_flatten(make, shape, colours):
    x = np.random.default_rng(5).standard_normal((3, *shape))
    st = _structure(make(shape), x)
    assert st.separable and st.footprint is not None
    # inputs of one colour reach disjoint outputs, in every example at once (with stride 2, rows
    # 0, 1 and 2 of a kernel of 3 all reach output row 0: still 3 colours per axis; a kernel of 2
    # dilated by 2 reads rows i and i + 2, so neighbouring rows share: 2 colours, not 3)
    assert st.footprint.colors == colours


@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 2), (2, 1)])
def test_a_max_pools_boxes_are_its_windows_at_ties_with_one_channel_and_a_slice_per_example(kernel, stride):
    # one channel, two or three examples, each slice measured on one example's outputs: a row
    # of a single window holds the only evidence that a column reaches an output row; relu's
    # zeros and rounding make its maximum a tie or far above the moved entries
    from gradcheck_cli.check.footprint import measure

    layer = _layer(FpPool, (1, 12, 12), kernel=kernel, stride=stride)
    out_n = (12 - kernel) // stride + 1
    window = np.zeros((12, out_n))
    for o in range(out_n):
        window[o * stride:o * stride + kernel, o] = 1.0

    def run(stack):
        return np.stack([layer.forward(c)[0] for c in stack])

    for seed in range(40):
        rng = np.random.default_rng(seed)
        x = np.round(np.maximum(rng.standard_normal((2 + seed % 2, 1, 12, 12)), 0.0), 1)
        fp = measure(run, x, layer.forward(x)[0], rng, batch=0, out_batch=0)
        tied = {(a, b): m for a, b, m in fp.tied}
        assert {(0, 0), (2, 2), (3, 3)} <= set(tied) and (1, 1) not in tied, (seed, sorted(tied))
        assert np.array_equal(tied[2, 2], window) and np.array_equal(tied[3, 3], window), seed
        inside = window.any(axis=1)       # a row or column outside every window reaches nothing
        for (a, b), m in tied.items():
            if a != b:
                assert np.array_equal(m, np.broadcast_to(inside[:, None], m.shape)), (seed, a, b)


def test_a_unit_dead_in_the_example_that_measures_its_slice_is_seen_to_reach_every_output():
    # relu then a dense product, every input dead but one: each feature's slice is measured on
    # one example and stands for all, so its move must revive a dead entry in one direction
    # whatever the draw. A move of normal random size fell short of 0 both ways in 0.7% of such
    # layers, and the feature seemed to reach nothing (a box too small); a move of at least
    # DELTA times the input's range cannot.
    from gradcheck_cli.check.footprint import measure

    W = np.random.default_rng(0).standard_normal((4, 4))

    def run(stack):
        return np.maximum(stack, 0.0) @ W

    for seed in range(2000):
        rng = np.random.default_rng(seed)
        x = -0.9 * rng.random((3, 4))
        x[2, 2] = 1.0
        assert measure(run, x, run(x[None])[0], rng, batch=0, out_batch=0) is None, seed


@pytest.mark.parametrize("kind, colours", [("flatten", 1), ("reshape, shape: [6, 15]", 4),
                                           ("global_avgpool", 5 * 6)])
def test_a_built_in_layer_without_windows_of_its_own_is_measured_like_the_users(kind, colours):
    # only the built-in convolutions and pools have windows by construction (check/known.py):
    # a built-in flatten's input shares copies as a plugin flatten's does (two in all, not two
    # per entry of an example), a global pool's channels share theirs
    text = (f"input: {{shape: [3, 5, 6], batch: 4}}\nlayers:\n  - {{type: {kind}}}\n  - {{type: flatten}}\n"
            "  - {type: dense, units: 2}\nloss: softmax_cross_entropy\n")
    net = build_network(spec_from_text(text))
    st = _structure(net.nodes[0].layer, np.asarray(net.x, dtype=np.float64))
    assert st.footprint is not None and st.footprint.colors == colours
    result = check_network(net, CheckSettings())
    assert result.status is Status.PASS
    made = {c.what: c.made for c in result.tensor_costs}
    assert made["isolated check, layer 1 x"] == 2 * colours


def test_no_footprint_where_it_would_share_nothing_more_than_examples():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 2, 5, 6))
    assert _structure(_layer(FpCumsum, (2, 5, 6)), x).footprint is not None     # rows and channels are local
    dense_like = _structure(_layer(FpFlatten, (30,)), rng.standard_normal((3, 30)))
    assert dense_like.elementwise and dense_like.footprint is None


def _grouped_against_single(layer, x, st=None):
    """f = ⟨layer(x), g⟩ at x ± h·e_k for every entry k: grouped (the footprint) and one copy
    at a time; the grouped evaluator and the structure it used."""
    st = st or _structure(layer, x)
    out = layer.forward(x.copy())[0]
    g = np.random.default_rng(7).standard_normal(out.shape)
    f0 = float((out * g).sum())
    grouped, _ = grouped_input(layer, st, x, out, g, "rows", f0)
    g_flat = g.reshape(-1)
    single = entries_from_stack(copies_evaluator([layer], [st], "x", x, "rows",
                                                 lambda o: o.reshape(o.shape[0], -1) @ g_flat, True), x)
    idx = np.repeat(np.arange(x.size), 2)
    h = 1e-4
    values = x.reshape(-1)[idx] + np.tile([h, -h], x.size)
    order = grouped.schedule(idx)
    got = np.empty(idx.size)
    got[order] = grouped(idx[order], values[order])
    want = single(idx, values)
    return got, want, float(np.abs(out * g).sum()), grouped, st


@pytest.mark.parametrize("make, shape", [
    (lambda s: _layer(FpConv, s, filters=3, kernel=3, padding=1), (2, 7, 6)),
    (lambda s: _layer(FpConv, s, filters=2, kernel=3, stride=2, padding=0), (3, 9, 8)),
    (lambda s: _layer(FpConv, s, filters=2, kernel=2, padding=2, dilation=2), (2, 6, 7)),
    (lambda s: _layer(FpPool, s, kernel=2), (3, 6, 8)),
    (lambda s: _layer(FpPool, s, kernel=3, stride=1), (2, 7, 7)),
    (lambda s: _layer(FpPool, s, kernel=3, stride=2), (2, 9, 9)),
    (lambda s: _layer(FpFlatten, s), (3, 4, 5)),
    (lambda s: _layer(FpCumsum, s), (2, 3, 6)),
], ids=["conv-k3-p1", "conv-k3-s2", "conv-k2-d2", "pool-2", "pool-3-s1", "pool-3-s2", "flatten", "cumsum"])
def test_grouped_differences_equal_one_copy_at_a_time(make, shape):
    x = np.random.default_rng(8).standard_normal((3, *shape))
    got, want, scale, grouped, st = _grouped_against_single(make(shape), x)
    assert np.all(np.abs(got - want) <= 1e-12 * scale)
    assert grouped.copies == 2 * st.footprint.colors < x.size      # every example and colour shares
    assert grouped.fallback is None


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_grouped_differences_equal_one_copy_at_a_time_at_max_pool_ties(stride, seed):
    # relu's zeros and repeated values tie for the maximum of a window: moving the tied entry
    # down leaves the window alone, moving it up does not, so a footprint measured with one
    # direction only would miss it (found with integer-valued inputs of one channel)
    rng = np.random.default_rng(seed)
    x = np.maximum(np.round(2 * rng.standard_normal((1, 1, 5, 6))), 0.0)
    got, want, scale, grouped, st = _grouped_against_single(_layer(FpPool, (1, 5, 6), kernel=3, stride=stride), x)
    assert np.all(np.abs(got - want) <= 1e-12 * scale + 1e-15)


@settings(max_examples=30, deadline=None)
@given(kernel=st.integers(1, 4), stride=st.integers(1, 3), padding=st.integers(0, 2),
       dilation=st.integers(1, 2), channels=st.integers(1, 3), h=st.integers(5, 9), w=st.integers(5, 9),
       seed=st.integers(0, 2**16))
def test_grouped_differences_equal_one_copy_at_a_time_for_any_convolution(kernel, stride, padding,
                                                                          dilation, channels, h, w, seed):
    span = (kernel - 1) * dilation + 1
    if h + 2 * padding < span or w + 2 * padding < span:
        return
    layer = _layer(FpConv, (channels, h, w), filters=2, kernel=kernel, stride=stride,
                   padding=padding, dilation=dilation)
    x = np.random.default_rng(seed).standard_normal((2, channels, h, w))
    got, want, scale, _, _ = _grouped_against_single(layer, x)
    assert np.all(np.abs(got - want) <= 1e-12 * scale)


CONVNET = """
seed: SEED
input: {shape: [2, 8, 8], batch: 3}
layers:
  - {type: CONV, filters: 3, kernel: 3, padding: 1}
  - {type: relu}
  - {type: fp_pool, kernel: 2}
  - {type: fp_flatten}
  - {type: dense, units: 4}
loss: softmax_cross_entropy
"""


def _both(text):
    spec = spec_from_text(text)
    on = check_network(build_network(spec), CheckSettings(keep_arrays=True))
    off = check_network(build_network(spec), CheckSettings(keep_arrays=True, batched=False))
    return on, off


def _statuses(result):
    return [(r.label, r.tensor, r.status, r.isolated.status, r.network.status if r.network else None)
            for r in result.rows]


@pytest.mark.parametrize("seed", [0, 1])
def test_a_plugin_convnet_same_verdicts_and_numbers_with_fewer_evaluations(seed, monkeypatch):
    # the plugins as black boxes: the pool's twin (check/twins.py) would take its windows as known
    monkeypatch.setattr("gradcheck_cli.check.state.with_twins", lambda ref, net: ref)
    on, off = _both(CONVNET.replace("CONV", "fp_conv").replace("SEED", str(seed)))
    assert _statuses(on) == _statuses(off)
    assert all(r.status in (Status.PASS, Status.KINK) for r in on.rows)
    assert_agree_within_noise(on, off)
    # the footprints are what made the difference: without them the examples alone share
    monkeypatch.setattr("gradcheck_cli.check.structure.footprint", lambda *a: None)
    per_example = check_network(build_network(spec_from_text(
        CONVNET.replace("CONV", "fp_conv").replace("SEED", str(seed)))), CheckSettings())
    assert _statuses(per_example) == _statuses(on)
    made = {c.what: c.made for c in on.tensor_costs}
    alone = {c.what: c.made for c in per_example.tensor_costs}
    # the convolution's input: 2 copies per colour (2 channels × 3 × 3), every example sharing,
    # where the examples alone need 2 per entry of one example (2 × 8 × 8); the same copies serve
    # the network input's end-to-end row
    assert (made["isolated check, layer 1 x"], alone["isolated check, layer 1 x"]) == (2 * 18, 2 * 128)
    assert made["end to end, layer 1 x"] == alone["end to end, layer 1 x"] == 0
    # the pool's 2 × 2 windows: 4 colours, the flatten's: 1, in the chain of upstream gradients,
    # whose copies serve the isolated rows of those inputs too: the flatten's makes none, the
    # pool's only its second look at a max-pool's ties (its kinks), itself grouped
    assert made["upstream of layer 3"] < alone["upstream of layer 3"] / 10
    assert made["isolated check, layer 3 x"] < alone["isolated check, layer 3 x"]
    assert (made["upstream of layer 4"], alone["upstream of layer 4"]) == (2, 2 * 48)
    assert made["isolated check, layer 4 x"] == alone["isolated check, layer 4 x"] == 0


def test_a_planted_1e5_error_in_a_plugin_convolutions_dx_is_found_at_its_entry():
    on, off = _both(CONVNET.replace("CONV", "fp_conv_off").replace("SEED", "0"))
    row = next(r for r in on.rows if (r.label, r.tensor) == ("1", "x"))
    assert row.isolated.status in (Status.WARN, Status.FAIL)
    assert "worst entry (1, 1, 2, 3)" in row.reason
    assert _statuses(on) == _statuses(off)


def test_a_layer_that_leaves_its_measured_footprint_falls_back_and_gives_the_same_numbers():
    layer = _layer(FpTrap, (3, 6))
    x = np.random.default_rng(9).standard_normal((2, 3, 6))
    FpTrap.calls = 0
    st = _structure(layer, x)
    assert st.footprint is not None and not st.elementwise
    # past the calls its structure took, the layer reads a neighbour: a leak, seen on the copy
    FpTrap.honest_calls = FpTrap.calls
    try:
        got, want, scale, grouped, _ = _grouped_against_single(layer, x, st)
    finally:
        FpTrap.honest_calls = 10**9
    assert grouped.fallback is not None
    assert np.all(np.abs(got - want) <= 1e-12 * scale)


def test_an_axis_whose_first_and_last_slices_reach_everything_is_not_measured_further():
    # a dense layer's features: two slices (each moved both ways) say it, not one per feature;
    # and with no local axis beside it the batch axis (examples, known apart already) is not
    # measured at all
    from gradcheck_cli.check.footprint import measure

    rng = np.random.default_rng(10)
    W = rng.standard_normal((40, 7))
    x = rng.standard_normal((5, 40))
    copies = []

    def run(stack):
        copies.append(stack.shape[0])
        return stack @ W

    assert measure(run, x, x @ W, rng, batch=0) is None
    assert sum(copies) == 4



def _band(n, width):
    return sum(np.eye(n, k=k) for k in range(-width, width + 1))


HALVE = np.kron(np.eye(2), np.ones((2, 1)))          # (4, 2): a 2x2 pool's rows or columns


@pytest.mark.parametrize("in_shape, out_shape, tied", [
    # a convolution with its examples apart (the identity) and a 3-wide band on each side
    ((2, 3, 5, 4), (2, 6, 5, 4), ((0, 0, np.eye(2)), (2, 2, _band(5, 1)), (3, 3, _band(4, 1)))),
    # a pool: channel to channel, each side halved
    ((2, 3, 4, 4), (2, 3, 2, 2), ((0, 0, np.eye(2)), (1, 1, np.eye(3)), (2, 2, HALVE), (3, 3, HALVE))),
    # a flatten: its three input axes tied to its one output axis
    ((2, 3, 2, 2), (2, 12), ((0, 0, np.eye(2)), (1, 1, np.kron(np.eye(3), np.ones((1, 4)))),
                             (2, 1, np.tile(np.kron(np.eye(2), np.ones((1, 2))), 3)),
                             (3, 1, np.tile(np.eye(2), 6)))),
])
def test_box_sums_by_output_axis_equal_the_one_einsum_over_every_box(in_shape, out_shape, tied):
    """The matrix products per output axis (_by_output, the identity skipped) give what the one
    einsum over every tied pair gives: the cells of each entry, and the outputs each covers."""
    from gradcheck_cli.check.footprint import Footprint

    color = np.arange(int(np.prod(in_shape)))
    fast = Footprint(in_shape, out_shape, tied, color, color.size)
    slow = Footprint(in_shape, out_shape, tied, color, color.size)
    slow.__dict__["_by_output"] = None               # the one einsum
    assert fast._by_output is not None
    rng = np.random.default_rng(0)
    change, weight = rng.standard_normal((6, *out_shape)), rng.standard_normal(out_shape)
    np.testing.assert_allclose(fast.cells(change, weight), slow.cells(change, weight), rtol=1e-12, atol=1e-12)
    perturbed = rng.random((6, *in_shape)) < 0.1
    assert perturbed.any()
    full = (6, *out_shape)
    np.testing.assert_array_equal(np.broadcast_to(fast.covered(perturbed), full),
                                  np.broadcast_to(slow.covered(perturbed), full))


class FpConvMarked(FpConv):
    """FpConv whose output holds an inf and a NaN at fixed places, whatever the input."""

    def forward(self, x):
        out, cache = super().forward(x)
        out = out.copy()
        out[:, 0, 0, 0], out[:, 1, 2, 1] = np.inf, np.nan
        return out, cache


def test_box_sums_leave_out_a_clean_output_that_is_inf_or_nan_and_never_moves():
    """Where the clean output is inf or NaN and a copy's is the same, that output did not move:
    it adds nothing to the cells (inf − inf would make them NaN) and is no leak."""
    from gradcheck_cli.check.grouping import footprint_cells

    x = np.random.default_rng(3).standard_normal((2, 2, 5, 4))
    plain, marked = _layer(FpConv, (2, 5, 4), filters=2), _layer(FpConvMarked, (2, 5, 4), filters=2)
    marked.params = plain.params
    st = _structure(plain, x)
    out_plain, out_marked = plain.forward(x)[0], marked.forward(x)[0]
    g = np.random.default_rng(4).standard_normal(out_plain.shape)
    g[:, 0, 0, 0] = g[:, 1, 2, 1] = 0.0
    colour = st.footprint.color.reshape(x.shape) == 0
    stack = np.stack([x + 1e-3 * colour, x - 1e-3 * colour])
    want = footprint_cells(plain, st, st.footprint, x, out_plain, [g], "rows")(stack)
    got = footprint_cells(marked, st, st.footprint, x, out_marked, [g], "rows")(stack)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
