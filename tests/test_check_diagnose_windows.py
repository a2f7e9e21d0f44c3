"""check/diagnose/windows.py: the patterns of sliding windows (a border over the padding, the
stride positions, entries overlapping windows share) named on their planted pattern, silent on
a correct gradient and on a gradient wrong everywhere, for random arrays (hypothesis)."""
from __future__ import annotations

import numpy as np
from hypothesis import given, strategies as st

from gradcheck_cli.check.diagnose import diagnose
from gradcheck_cli.check.diagnose import windows as wn

from test_check_diagnose_localize import correct, ctx, everywhere, few, seeds, silent


@few
@given(seeds)
def test_border_of_the_padding(seed):
    rng = np.random.default_rng(seed)
    n = rng.standard_normal((2, 2, 8, 8))
    c = ctx(options={"kernel": 3.0, "padding": 1.0})
    band = np.zeros((8, 8), dtype=bool)
    band[:2] = band[-2:] = band[:, :2] = band[:, -2:] = True     # what windows over the padding cover
    a = n + np.where(band, 0.3 * rng.standard_normal(n.shape), 0.0)
    said = diagnose(a, n, c)
    assert "windows reaching into the zero padding" in said and "within 2 of the border" in said
    silent(correct(n, rng), n, c)
    assert wn.border(everywhere(n, rng), n, c) is None
    # without a padding there is no border to speak of
    assert wn.border(a, n, ctx(options={"kernel": 3.0})) is None


@few
@given(seeds, st.sampled_from([2, 3]))
def test_stride_positions_and_shared_windows(seed, s):
    rng = np.random.default_rng(seed)
    n = rng.standard_normal((2, 2, 3 * s, 3 * s))
    lattice = np.zeros(n.shape, dtype=bool)
    lattice[..., ::s, ::s] = True
    pool = ctx(options={"kernel": float(s)})
    said = diagnose(np.where(lattice, n, 0.0), n, pool)
    assert f"right only at every {s}{'nd' if s == 2 else 'rd'} position" in said and "(0 there)" in said
    wrong_there = n + np.where(lattice, rng.standard_normal(n.shape), 0.0)
    assert "only the entries at every" in diagnose(wrong_there, n, pool)
    silent(correct(n, rng), n, pool)
    assert wn.stride_lattice(everywhere(n, rng), n, pool) is None
    # a strided convolution: the entries windows share (kernel 3, stride 2, padding 1), tried
    # after the candidates
    conv = ctx(params={"W": np.ones((2, 2, 3, 3))}, options={"kernel": 3.0, "stride": 2.0, "padding": 1.0})
    x = rng.standard_normal((2, 2, 5, 5))
    shared = np.ones((5, 5), dtype=bool)
    shared[::2, ::2] = False
    a = x + np.where(shared, rng.standard_normal(x.shape), 0.0)
    assert wn.overlapping_windows(a, x, conv) is None and wn.stride_lattice(a, x, conv) is None
    assert "contributions overwritten (=)" in diagnose(a, x, conv)
    silent(correct(x, rng), x, conv)
    assert wn.overlapping_windows_with_parameters(everywhere(x, rng), x, conv) is None
