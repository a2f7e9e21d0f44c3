"""The verdict rule: noise, thresholds, kinks, shapes."""
import numpy as np
import pytest

from gradcheck_cli.check.judge import as_gradient, judge, rel_error
from gradcheck_cli.check.differences import Differences
from gradcheck_cli.results import Status
from gradcheck_cli.check.tolerance import TOLERANCES
from gradcheck_cli.check.ties import TieVerdict

TOL = TOLERANCES["float64"]


def diffs(n, rounding=1e-12, truncation=None, d_plus=None, d_minus=None):
    n = np.asarray(n, dtype=float)
    return Differences(n, np.full(n.shape, 1e-6), np.full(n.shape, rounding),
                       None if truncation is None else np.full(n.shape, truncation),
                       d_plus, d_minus, 2 * n.size)


def test_relative_error_values_from_the_numerics_notes():
    n = np.array([1.0, -2.0, 3.0])
    assert rel_error(2 * n, n) == pytest.approx(1 / 3)
    assert rel_error(4 * n, n) == pytest.approx(3 / 5)
    assert rel_error(-n, n) == pytest.approx(1.0)
    assert rel_error(0 * n, n) == pytest.approx(1.0)
    assert rel_error(0 * n, 0 * n) == 0.0


def test_a_correct_gradient_passes_and_a_factor_two_fails():
    n = np.linspace(-1, 1, 7)
    assert judge(n + 1e-13, n, diffs(n), "W", "float64", TOL).status is Status.PASS
    out = judge(2 * n, n, diffs(n), "W", "float64", TOL)
    assert out.status is Status.FAIL and out.rel_error == pytest.approx(1 / 3)


def test_two_near_zero_vectors_within_the_noise_pass_with_a_reason():
    # a bias before batch norm: true gradient 0, analytic 1e-17, numeric at the noise floor
    a, n = np.full(4, 1e-17), np.array([3e-11, -2e-11, 0.0, 1e-11])
    out = judge(a, n, diffs(n, rounding=1e-10), "b", "float64", TOL)
    assert out.rel_error > 0.5
    assert out.status is Status.PASS and "noise" in out.reason


def test_an_error_far_above_the_noise_fails_even_inside_the_warn_band():
    n = np.linspace(1, 2, 5)
    a = n * (1 + 1e-6)  # rel err 5e-7: between pass (1e-7) and warn (1e-5)
    assert judge(a, n, diffs(n, rounding=1e-12), "W", "float64", TOL).status is Status.FAIL
    # the same error with noise of its own size only warns
    assert judge(a, n, diffs(n, rounding=3e-7), "W", "float64", TOL).status is Status.WARN


def test_a_kink_entry_with_a_valid_subgradient_is_a_kink_not_a_fail():
    n = np.array([1.0, 0.5, 2.0, 3.0, -1.0])   # entry 1: central average across a relu kink
    a = np.array([1.0, 1.0, 2.0, 3.0, -1.0])   # analytic takes the right-hand slope
    d = diffs(n, d_plus=np.array([1.0, 1.0, 2.0, 3.0, -1.0]), d_minus=np.array([1.0, 0.0, 2.0, 3.0, -1.0]))
    fine = diffs(np.array([0.5]), d_plus=np.array([1.0]), d_minus=np.array([0.0]))
    out = judge(a, n, d, "x", "float64", TOL, refine=lambda pos: fine, index=np.arange(5))
    assert out.status is Status.KINK and out.kinks == 1


def test_a_tensor_entirely_at_kinks_warns_that_nothing_was_compared():
    # relu after relu: the second one's input is exactly 0 wherever the first one cut; where it
    # cut everything, every entry is a valid subgradient but none was compared where f is smooth
    n = np.full(4, 0.5)
    a = np.zeros(4)                      # relu'(0) = 0, the left slope: a valid subgradient
    d = diffs(n, d_plus=np.ones(4), d_minus=np.zeros(4))
    fine = diffs(n, d_plus=np.ones(4), d_minus=np.zeros(4))
    out = judge(a, n, d, "x", "float64", TOL, refine=lambda pos: fine, index=np.arange(4))
    assert out.status is Status.WARN and out.kinks == 4
    assert out.reason == ("every entry (4) is at a kink: each analytic value lies between its "
                          "one-sided derivatives, but no entry was left to compare where the function "
                          "is differentiable; check this tensor with another seed")
    # one entry left to compare is enough
    n5, a5 = np.append(n, 2.0), np.append(a, 2.0)
    d5 = diffs(n5, d_plus=np.append(np.ones(4), 2.0), d_minus=np.append(np.zeros(4), 2.0))
    out = judge(a5, n5, d5, "x", "float64", TOL, refine=lambda pos: fine, index=np.arange(5))
    assert out.status is Status.KINK and out.kinks == 4


def test_a_wrong_value_at_a_kink_still_fails():
    n = np.array([1.0, 0.5, 2.0])
    a = np.array([1.0, 3.0, 2.0])       # outside [D−, D+] = [0, 1]
    d = diffs(n, d_plus=np.array([1.0, 1.0, 2.0]), d_minus=np.array([1.0, 0.0, 2.0]))
    fine = diffs(np.array([0.5]), d_plus=np.array([1.0]), d_minus=np.array([0.0]))
    out = judge(a, n, d, "x", "float64", TOL, refine=lambda pos: fine, index=np.arange(3))
    assert out.status is Status.FAIL and out.kinks == 0


def test_high_curvature_is_not_mistaken_for_a_kink():
    # one-sided differences that halve with h are curvature, not a kink
    n = np.array([1.0])
    a = np.array([1.3])
    d = diffs(n, d_plus=np.array([1.4]), d_minus=np.array([0.6]))
    fine = diffs(n, d_plus=np.array([1.2]), d_minus=np.array([0.8]))
    out = judge(a, n, d, "x", "float64", TOL, refine=lambda pos: fine, index=np.arange(1))
    assert out.status is Status.FAIL


def test_a_jump_of_f_is_not_a_kink():
    # f(θ ± h) off by a constant c from f(θ): the one-sided differences are ∇ ± c/h, so their gap
    # doubles at h/2. That is a discontinuity (or evaluations that disagree with f(θ)), not a
    # kink, whatever the analytic value between them
    n = np.array([1.0, 2.0])
    a = np.array([1.3, 2.0])
    d = diffs(n, d_plus=np.array([1.0 + 0.2, 2.0]), d_minus=np.array([1.0 - 0.2, 2.0]))
    fine = diffs(n[:1], d_plus=np.array([1.0 + 0.4]), d_minus=np.array([1.0 - 0.4]))
    out = judge(a, n, d, "x", "float64", TOL, refine=lambda pos: fine, index=np.arange(2))
    assert out.status is Status.FAIL and out.kinks == 0


def test_an_inconsistent_tie_group_is_not_excused():
    # entries 0 and 1 each at a kink, each within its own [D−, D+]; the tie check rejects them
    n = np.array([0.5, 0.5, 2.0])
    a = np.array([1.0, 1.0, 2.0])
    d = diffs(n, d_plus=np.array([1.0, 1.0, 2.0]), d_minus=np.array([0.0, 0.0, 2.0]))
    fine = diffs(n[:2], d_plus=np.array([1.0, 1.0]), d_minus=np.array([0.0, 0.0]))
    seen = []

    def ties(pos, analytic, noise, d_plus, d_minus, bracketed, delta):
        seen.append((pos.tolist(), analytic.tolist(), d_plus.tolist(), d_minus.tolist(), bracketed.tolist()))
        return TieVerdict(np.array([0, 1]), "gradient sent to every tied entry: ...",
                          "gradient sent to every tied entry")

    out = judge(a, n, d, "x", "float64", TOL, refine=lambda pos: fine, index=np.arange(3), ties=ties)
    assert seen == [([0, 1], [1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [True, True])]
    assert out.status is Status.FAIL and out.kinks == 0
    assert out.diagnosis == "gradient sent to every tied entry"
    assert out.reason.startswith("gradient sent to every tied entry: ...; dx does not match: worst entry (0,)")
    consistent = judge(a, n, d, "x", "float64", TOL, refine=lambda pos: fine, index=np.arange(3),
                       ties=lambda *args: None)
    assert consistent.status is Status.KINK and consistent.kinks == 2


def test_a_consistent_tie_group_excuses_an_entry_outside_its_own_bracket():
    # entry 0 tied in two overlapping windows with upstream gradients 1 and −1: moved alone it
    # is the maximum of both (D+ = 0) or of neither (D− = 0), and first-maximum routing gives it
    # 1, outside [0, 0]; the group's sum is what decides, and the tie check found it right
    n = np.array([0.0, 0.5, 2.0])
    a = np.array([1.0, 0.0, 2.0])
    d = diffs(n, d_plus=np.array([0.0, 1.0, 2.0]), d_minus=np.array([0.0, 0.0, 2.0]))
    # (the gap of entry 0: two kinks whose jumps cancel; give it the persisting gap of its own
    # windows' bracket, which is what the one-sided differences show once the windows differ)
    d.d_plus[0], d.d_minus[0] = 0.4, -0.6
    fine = diffs(n[:2], d_plus=np.array([0.4, 1.0]), d_minus=np.array([-0.6, 0.0]))
    seen = []

    def ties(pos, analytic, noise, d_plus, d_minus, bracketed, delta):
        seen.append((pos.tolist(), bracketed.tolist()))
        return TieVerdict(np.zeros(0, dtype=np.intp), "", "", excused=np.array([0]))

    out = judge(a, n, d, "x", "float64", TOL, refine=lambda pos: fine, index=np.arange(3), ties=ties)
    assert seen == [([0, 1], [False, True])]
    assert out.status is Status.KINK and out.kinks == 2
    # without the group's word, the entry outside its bracket fails
    alone = judge(a, n, d, "x", "float64", TOL, refine=lambda pos: fine, index=np.arange(3),
                  ties=lambda *args: None)
    assert alone.status is Status.FAIL and alone.kinks == 1


def test_shapes_transposes_and_nans_are_named():
    _, out = as_gradient(np.ones((5, 7)), "W", (7, 5), TOL, numeric_full=np.ones((7, 5)))
    assert out.status is Status.FAIL and "transposed?" in out.reason and "matches" in out.reason
    _, out = as_gradient(np.ones((3, 5)), "b", (5,), TOL)
    assert "not summed over the batch axis" in out.reason
    _, out = as_gradient(np.array([1.0, np.nan]), "b", (2,), TOL)
    assert "NaN" in out.reason
    _, out = as_gradient("oops", "b", (2,), TOL)
    assert out.status is Status.FAIL
