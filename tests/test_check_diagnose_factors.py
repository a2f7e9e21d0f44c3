"""check/diagnose/factors.py: the fits (analytic = c·numeric, = numeric ⊙ γ, = numeric + c·θ) are
claimed only where their residual is at the noise level the check measured for each entry
(float64 and float32 alike), and through the checker a planted factor is named in float32 as in
float64."""
from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings, strategies as st

from gradcheck_cli.check.diagnose import Context, diagnose
from gradcheck_cli.check.diagnose.factors import constant_factor, per_slice_factor, proportional_to_tensor
from gradcheck_cli.check.diagnose.quantities import config_quantities
from gradcheck_cli.check.tolerance import TOLERANCES

import mutant_corpus as corpus

seeds = st.integers(0, 2**31 - 1)
few = settings(max_examples=25, deadline=None)


def ctx(dtype: str, noise=None, m: int = 4) -> Context:
    return Context("W", m, "rows", TOLERANCES[dtype].pass_rtol,
                   quantities=tuple(config_quantities({}, [], m)), noise=noise)


@few
@given(seeds, st.sampled_from(["float64", "float32"]), st.sampled_from([0.25, 3.0, -0.5]))
def test_claimed_at_noise_level_only(seed, dtype, c):
    rng = np.random.default_rng(seed)
    n = rng.standard_normal((5, 4))
    # the noise a check of this dtype measures, per entry (relative 1e-9 / 1e-5 of the scale)
    level = {"float64": 1e-9, "float32": 1e-5}[dtype]
    noise = level * (1 + rng.random(n.shape))
    within = c * n + 0.2 * noise * rng.standard_normal(n.shape)
    assert constant_factor(within, n, ctx(dtype, noise)) is not None
    # ten times the noise at one entry: far below 10× the pass threshold overall, so the old
    # test (relative error of the fit) would claim the factor; the noise says it is not one
    off = within.copy()
    off[2, 1] += 10 * max(1.0, abs(c)) * noise[2, 1]
    assert constant_factor(off, n, ctx(dtype)) is not None        # without the noise: the old test
    assert constant_factor(off, n, ctx(dtype, noise)) is None
    assert "factor" not in (diagnose(off, n, ctx(dtype, noise)) or "")


def test_words_with_the_noise():
    n = np.random.default_rng(0).standard_normal((4, 3))
    noise = np.full(n.shape, 1e-9)
    assert diagnose(n / 4, n, ctx("float64", noise)) == "extra 1/m (analytic = numeric/m, m = 4)"
    assert diagnose(-n, n, ctx("float64", noise)) == "sign flipped (analytic = −numeric)"


def _case(name: str):
    _, cases = corpus.load()
    return next(c for c in cases if c.layer == name)


def test_through_the_checker_in_float32():
    for name, words in (("conv_dW_over_m", "extra 1/m"), ("dropout_no_rescale", "0.8 = 1 − p"),
                        ("attention_no_scale_in_backward", r"2.828 = √d")):
        out = corpus.run_case(dataclasses.replace(_case(name), dtype="float32"))
        assert out.fails_at_own_row and not out.stray, out.reason
        assert words in out.diagnosis, out.diagnosis


@few
@given(seeds, st.sampled_from(["float64", "float32"]))
def test_per_slice_and_l2_fits_at_noise_level_only(seed, dtype):
    rng = np.random.default_rng(seed)
    n = rng.standard_normal((5, 4))
    gamma = 0.5 + rng.random(4)
    theta = rng.standard_normal((5, 4))
    level = {"float64": 1e-9, "float32": 1e-5}[dtype]
    noise = level * (1 + rng.random(n.shape))
    base = dict(quantities=tuple(config_quantities({"lam": 0.3}, [], 4)), params={"gamma": gamma},
                theta=theta)
    with_noise = Context("W", 4, "rows", TOLERANCES[dtype].pass_rtol, noise=noise, **base)
    for fit, guess, words in ((per_slice_factor, n / gamma, "the factor gamma is missing"),
                              (per_slice_factor, n * gamma, "an extra factor gamma"),
                              (proportional_to_tensor, n + 0.3 * theta, "0.3 = λ")):
        within = guess + 0.2 * noise * rng.standard_normal(n.shape)
        assert words in fit(within, n, with_noise)
        off = within.copy()
        off[1, 2] += 20 * noise[1, 2] / min(1.0, gamma.min())
        assert fit(off, n, with_noise) is None
