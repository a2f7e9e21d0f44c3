"""Layer forwards against independent references with known answers (loops, closed forms)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck_cli.layers.softmax import LogSoftmax
from gradcheck_cli.layers.attention import Attention
from gradcheck_cli.layers.conv import Conv1D, Conv2D
from gradcheck_cli.layers.dropout import Dropout
from gradcheck_cli.layers.classification_losses import NLL, Hinge, SoftmaxCrossEntropy, TemporalSoftmaxCE
from gradcheck_cli.layers.regression_losses import Huber
from gradcheck_cli.layers.norm import BatchNorm, GroupNorm, LayerNorm
from gradcheck_cli.layers.pool import AvgPool2D, MaxPool2D
from gradcheck_cli.layers.recurrent import LSTM


def built(layer, shape, seed=0):
    layer.build(shape, np.random.default_rng(seed))
    return layer


def conv2d_loops(x, W, b, stride, padding, dilation, groups):
    """The textbook definition, one output entry at a time."""
    m, C, H, Wd = x.shape
    F, Cg, kh, kw = W.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (Wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((m, F, Ho, Wo))
    for n in range(m):
        for f in range(F):
            g = f // (F // groups)
            for i in range(Ho):
                for j in range(Wo):
                    acc = b[f]
                    for c in range(Cg):
                        for a in range(kh):
                            for e in range(kw):
                                acc += W[f, c, a, e] * xp[n, g * Cg + c, i * sh + a * dh, j * sw + e * dw]
                    out[n, f, i, j] = acc
    return out


@settings(max_examples=25, deadline=None)
@given(k=st.tuples(st.integers(1, 3), st.integers(1, 3)), s=st.tuples(st.integers(1, 3), st.integers(1, 2)),
       p=st.tuples(st.integers(0, 2), st.integers(0, 1)), d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       groups=st.sampled_from([1, 2]), seed=st.integers(0, 100))
def test_conv2d_matches_the_loop_definition(k, s, p, d, groups, seed):
    rng = np.random.default_rng(seed)
    layer = built(Conv2D(filters=2 * groups, kernel=list(k), stride=list(s), padding=list(p),
                         dilation=list(d), groups=groups), (2 * groups, 7, 6), seed)
    x = rng.standard_normal((2, 2 * groups, 7, 6))
    out, _ = layer.forward(x)
    ref = conv2d_loops(x, layer.params["W"], layer.params["b"], s, p, d, groups)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


def test_conv1d_is_numpy_correlate():
    rng = np.random.default_rng(1)
    layer = built(Conv1D(filters=1, kernel=4), (1, 10))
    x = rng.standard_normal((3, 1, 10))
    out, _ = layer.forward(x)
    for n in range(3):
        ref = np.correlate(x[n, 0], layer.params["W"][0, 0], mode="valid") + layer.params["b"][0]
        np.testing.assert_allclose(out[n, 0], ref, rtol=1e-12)


def test_probe_axes_on_input_and_parameters_match_one_at_a_time():
    rng = np.random.default_rng(2)
    layer = built(Conv2D(filters=4, kernel=3, stride=2, padding=1, groups=2), (2, 5, 5))
    x = rng.standard_normal((3, 2, 5, 5))
    Ws = layer.params["W"] + 0.1 * rng.standard_normal((4,) + layer.params["W"].shape)
    stacked = Conv2D(filters=4, kernel=3, stride=2, padding=1, groups=2)
    stacked.in_shape, stacked.params = layer.in_shape, {"W": Ws, "b": layer.params["b"]}
    one_by_one = []
    for W in Ws:
        layer.params["W"] = W
        one_by_one.append(layer.forward(x)[0])
    np.testing.assert_allclose(stacked.forward(x)[0], np.stack(one_by_one), rtol=1e-12)


def test_log_softmax_and_softmax_cross_entropy_closed_forms():
    # softmax of (0, ln 2, ln 3) is (1, 2, 3)/6
    x = np.log(np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]))
    y, _ = LogSoftmax().forward(x)
    np.testing.assert_allclose(y, np.log(np.array([[1, 2, 3], [3, 2, 1]]) / 6.0), rtol=1e-14)
    ce = SoftmaxCrossEntropy()
    ce.build((3,), None)
    labels = np.array([2, 1])
    value, cache = ce.forward(x, labels)
    assert value == pytest.approx((math.log(2) + math.log(3)) / 2, rel=1e-14)  # −log(3/6), −log(2/6)
    np.testing.assert_allclose(ce.backward(1.0, cache),
                               (np.array([[1, 2, 3], [3, 2, 1]]) / 6.0 - np.eye(3)[labels]) / 2, rtol=1e-14)
    nll = NLL()
    nll.build((3,), None)
    assert nll.forward(y, labels)[0] == pytest.approx(value, rel=1e-14)


def test_temporal_softmax_with_full_mask_is_per_step_cross_entropy():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4))
    labels = rng.integers(0, 4, size=(2, 3))
    loss = TemporalSoftmaxCE()
    loss.build((3, 4), None)
    value = loss.forward(x, np.stack([labels, np.ones_like(labels)]))[0]
    logp = x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
    ref = -np.take_along_axis(logp, labels[..., None], axis=-1).sum() / 2
    assert value == pytest.approx(ref, rel=1e-13)
    masked = loss.forward(x, np.stack([labels, np.zeros_like(labels)]))[0]
    assert masked == 0.0


def test_hinge_cs231n_example():
    # cs231n's SVM example: scores (3.2, 5.1, −1.7) with the cat (class 0) correct → 2.9
    loss = Hinge()
    loss.build((3,), None)
    assert loss.forward(np.array([[3.2, 5.1, -1.7]]), np.array([0]))[0] == pytest.approx(2.9)


def test_huber_is_quadratic_then_linear():
    loss = Huber(delta=1.0)
    loss.build((2,), None)
    value = loss.forward(np.array([[0.5, 3.0]]), np.zeros((1, 2)))[0]
    assert value == pytest.approx(0.125 + (3.0 - 0.5))


def test_batchnorm_forward_is_the_textbook_formula():
    rng = np.random.default_rng(4)
    x = 3.0 + 2.0 * rng.standard_normal((6, 5))
    bn = built(BatchNorm(eps=1e-5), (5,))
    out, _ = bn.forward(x)
    ref = bn.params["gamma"] * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5) + bn.params["beta"]
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    x4 = rng.standard_normal((2, 3, 4, 4))
    bn2 = built(BatchNorm(), (3, 4, 4))
    out4, _ = bn2.forward(x4)
    mu, var = x4.mean(axis=(0, 2, 3), keepdims=True), x4.var(axis=(0, 2, 3), keepdims=True)
    ref4 = (bn2.params["gamma"][:, None, None] * (x4 - mu) / np.sqrt(var + 1e-5)
            + bn2.params["beta"][:, None, None])
    np.testing.assert_allclose(out4, ref4, rtol=1e-12)


def test_layernorm_and_groupnorm_statistics():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 6))
    ln = built(LayerNorm(), (3, 6))
    ln.params = {"gamma": np.ones(6), "beta": np.zeros(6)}
    out = ln.forward(x)[0]
    np.testing.assert_allclose(out.mean(axis=-1), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=-1), 1 / (1 + 1e-5 / x.var(axis=-1)), rtol=1e-10)
    gn = built(GroupNorm(groups=3), (6, 2, 2))
    gn.params = {"gamma": np.ones(6), "beta": np.zeros(6)}
    y = gn.forward(rng.standard_normal((2, 6, 2, 2)))[0].reshape(2, 3, -1)
    np.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-12)


def test_pooling_small_example():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    mp, ap = built(MaxPool2D(kernel=2), (1, 4, 4)), built(AvgPool2D(kernel=2), (1, 4, 4))
    np.testing.assert_array_equal(mp.forward(x)[0][0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(ap.forward(x)[0][0, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_causal_attention_first_step_sees_only_itself():
    rng = np.random.default_rng(6)
    att = built(Attention(heads=2, causal=True), (4, 6))
    x = rng.standard_normal((2, 4, 6))
    out = att.forward(x)[0]
    p = att.params
    np.testing.assert_allclose(out[:, 0], (x[:, 0] @ p["Wv"] + p["bv"]) @ p["Wo"] + p["bo"], rtol=1e-12)
    x2 = x.copy()
    x2[:, 2:] += 1.0  # the future does not leak into earlier positions
    np.testing.assert_allclose(att.forward(x2)[0][:, :2], out[:, :2], rtol=1e-12)


def test_lstm_single_step_closed_form():
    rng = np.random.default_rng(7)
    lstm = built(LSTM(hidden=3, return_sequences=False), (1, 2))
    x = rng.standard_normal((4, 1, 2))
    a = x[:, 0] @ lstm.params["Wx"] + lstm.params["b"]
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, o, g = sig(a[:, :3]), sig(a[:, 6:9]), np.tanh(a[:, 9:])
    np.testing.assert_allclose(lstm.forward(x)[0], o * np.tanh(i * g), rtol=1e-12)


def test_dropout_mask_is_fixed_and_broadcasts_over_probes():
    d = built(Dropout(p=0.5), (50,), seed=11)
    x = np.ones((4, 50))
    a, b = d.forward(x)[0], d.forward(x)[0]
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) <= {0.0, 2.0} and 0.3 < (a == 0).mean() < 0.7
    stacked = d.forward(np.stack([x, 2 * x, 3 * x]))[0]
    np.testing.assert_array_equal(stacked[2], 3 * a)
