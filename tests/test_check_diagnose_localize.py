"""check/diagnose/localize.py and the structural hypotheses of check/diagnose/: each one named on its
planted pattern, silent on a correct gradient (the numeric one plus noise below the pass
threshold) and on a gradient wrong everywhere, for random arrays (hypothesis)."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from gradcheck_cli.check import diagnose as dg
from gradcheck_cli.check.diagnose import localize as lz
from gradcheck_cli.check.diagnose.factors import proportional_to_tensor
from gradcheck_cli.check.diagnose.terms import error_structure, skip_path
from gradcheck_cli.check.diagnose import Context, diagnose
from gradcheck_cli.check.diagnose.quantities import config_quantities

PASS = 1e-7
seeds = st.integers(0, 2**31 - 1)
few = settings(max_examples=20, deadline=None)
ALL = [h for h in dg.HYPOTHESES]


def ctx(tensor="x", batch=3, **kw) -> Context:
    return Context(tensor, batch, "rows", PASS, **kw)


def correct(n: np.ndarray, rng) -> np.ndarray:
    """A right gradient: the numeric one up to rounding-level differences."""
    return n * (1 + 1e-12 * rng.standard_normal(n.shape))


def everywhere(n: np.ndarray, rng) -> np.ndarray:
    """Wrong in every entry, in no pattern."""
    return n + 0.5 * np.abs(n).max() * rng.standard_normal(n.shape)


def silent(a, n, c):
    for h in ALL:
        assert h(a, n, c) is None, h.__name__
    assert diagnose(a, n, c) is None


@few
@given(seeds)
def test_mask_missing_and_misrouted(seed):
    rng = np.random.default_rng(seed)
    keep = rng.random((3, 8)) > 0.3
    keep[0, :2] = [True, False]
    g = rng.standard_normal((3, 8))
    n = g * keep
    assert "a mask is not applied" in lz.mask_missing(g, n, ctx())
    other = np.roll(keep, 1, axis=1)
    a = g * other
    if (other != keep).any() and (other & ~keep).any() and (keep & ~other).any():
        assert "sent to the wrong entries" in diagnose(a, n, ctx())
    assert lz.mask_missing(correct(n, rng), n, ctx()) is None
    assert lz.misrouted(everywhere(n, rng), n, ctx()) is None


@few
@given(seeds)
def test_flipped_and_shifted(seed):
    rng = np.random.default_rng(seed)
    n = rng.standard_normal((2, 3, 4, 4))
    assert "flipped in its last two axes" in diagnose(n[..., ::-1, ::-1], n, ctx("W"))
    shifted = np.zeros_like(n)
    shifted[..., 1:, 1:] = n[..., :-1, :-1]
    shifted[..., 0, :] = rng.standard_normal((2, 3, 4))
    assert "shifted by 1 along axes 2 and 3" in diagnose(shifted, n, ctx())
    assert "shifted by 1 along axis 1" in diagnose(np.roll(n, -1, axis=1), n, ctx("W"))
    silent(correct(n, rng), n, ctx())
    for h in (lz.flipped, lz.shifted):
        assert h(everywhere(n, rng), n, ctx()) is None


@few
@given(seeds)
def test_triangle(seed):
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((2, 5, 5))
    keep = np.tril(np.ones((5, 5), dtype=bool))
    n = g * keep
    assert "causal mask not applied in backward" in diagnose(g, n, ctx())
    assert lz.triangle(correct(n, rng), n, ctx()) is None
    assert lz.triangle(everywhere(n, rng), n, ctx()) is None


@few
@given(seeds)
def test_repeated_ids(seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 6, size=(3, 4))
    ids[0, :3] = [5, 5, 4]
    ids[1:] = np.where(ids[1:] >= 4, 0, ids[1:])       # id 4 once, id 5 twice
    g = rng.standard_normal((3, 4, 2))
    n = np.zeros((6, 2))
    np.add.at(n, ids, g)
    a = np.zeros((6, 2))
    a[ids] += g
    c = ctx("W", cotangent=g, layer_input_raw=ids)
    assert "np.add.at" in diagnose(a, n, c)
    assert lz.repeated_ids(correct(n, rng), n, c) is None
    assert lz.repeated_ids(everywhere(n, rng), n, c) is None


@few
@given(seeds)
def test_gate_block_and_time_steps(seed):
    rng = np.random.default_rng(seed)
    n = rng.standard_normal((3, 16))
    a = n.copy()
    a[:, 8:12] += rng.standard_normal((3, 4))
    c = ctx("Wx", options={"hidden": 4.0})
    assert "only columns 8:12 — gate 3 of 4 — are wrong" in diagnose(a, n, c)
    assert lz.block(everywhere(n, rng), n, c) is None
    x = rng.standard_normal((2, 4, 3))
    axes = (("batch", "m", 2), ("time", "T", 4), ("feature", "D", 3))
    a = x.copy()
    a[:, :3] += rng.standard_normal((2, 3, 3))
    assert "only time steps 0:3 of 4" in lz.block(a, x, ctx(axes=axes))
    silent(correct(x, rng), x, ctx(axes=axes))


@few
@given(seeds)
def test_skip_path_l2_and_norm_terms(seed):
    rng = np.random.default_rng(seed)
    g, n, W, x = (rng.standard_normal((4, 5)) for _ in range(4))
    c = ctx(cotangent=g, params={"W": W}, layer_input=x, axes=(("batch", "m", 4), ("feature", "D", 5)))
    assert "skip (identity) path's dout is missing" in diagnose(n - g, n, c)
    assert "counted twice" in diagnose(n + g, n, c)
    assert "only the skip (identity) path" in diagnose(g, n, c)
    qs = tuple(config_quantities({"lam": 0.3}, [], 4))
    cw = ctx("W", batch=4, theta=W, quantities=qs)
    assert "0.3 = λ" in diagnose(n + 0.3 * W, n, cw)
    assert "0.075 = λ/m" in diagnose(n + 0.075 * W, n, cw)
    assert "same along the batch axis" in diagnose(n + rng.standard_normal((1, 5)), n, c)
    z = (x - x.mean(0)) / x.std(0)
    assert "proportional to x̂" in diagnose(n + z * rng.standard_normal((1, 5)), n, c)
    silent(correct(n, rng), n, c)
    for h in (skip_path, proportional_to_tensor, error_structure):
        assert h(everywhere(n, rng), n, c) is None
        assert h(everywhere(n, rng), n, cw) is None
