"""Finite-difference oracles: functions with known derivatives, for every method."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gradcheck_cli.check.differences import (AUTO_STEP, direction_differences, entry_differences,
                                   stack_entries)
from gradcheck_cli.names import METHODS


def f_stack(stack):
    # f(θ) = Σ sin(θ_i)·θ_i³ + exp(θ_0·θ_1): smooth, with cross terms; complex-analytic
    flat = stack.reshape(stack.shape[0], -1)
    return (np.sin(flat) * flat**3).sum(axis=1) + np.exp(flat[:, 0] * flat[:, 1])


def grad_f(theta):
    t = theta.reshape(-1)
    g = np.cos(t) * t**3 + 3 * np.sin(t) * t**2
    e = np.exp(t[0] * t[1])
    g[0] += t[1] * e
    g[1] += t[0] * e
    return g.reshape(theta.shape)


def entries_of(theta):
    return lambda idx, values: f_stack(stack_entries(theta, idx, values))


EXPECTED = {"central": 1e-9, "forward": 1e-6, "richardson": 1e-11, "complex": 1e-14}


@pytest.mark.parametrize("method", METHODS)
def test_each_method_reaches_its_expected_accuracy(method):
    theta = np.random.default_rng(0).standard_normal((3, 4))
    f0 = float(f_stack(theta[None])[0])
    d = entry_differences(entries_of(theta), theta, np.arange(theta.size), AUTO_STEP[method], method,
                          f0, chunk=5)
    exact = grad_f(theta).reshape(-1)
    assert np.abs(d.grad - exact).max() / np.abs(exact).max() < EXPECTED[method]
    assert d.evaluations == theta.size * {"central": 2, "forward": 1, "richardson": 6, "complex": 1}[method]


def test_the_rounding_bound_covers_the_actual_error_of_central_differences():
    theta = np.random.default_rng(1).standard_normal(20)
    f0 = float(f_stack(theta[None])[0])
    d = entry_differences(entries_of(theta), theta, np.arange(20), 1e-9, "central", f0, chunk=64)
    # at a tiny step rounding dominates; the bound must not be beaten by much
    assert np.all(np.abs(d.grad - grad_f(theta)) <= 4 * d.rounding + 1e-6)


def test_richardson_carries_a_truncation_estimate_that_bounds_its_error():
    theta = np.random.default_rng(2).standard_normal(6)
    f0 = float(f_stack(theta[None])[0])
    d = entry_differences(entries_of(theta), theta, np.arange(6), 1e-2, "richardson", f0, chunk=64)
    err = np.abs(d.grad - grad_f(theta))
    assert np.all(err <= d.truncation + d.rounding + 1e-12)


def test_the_input_is_never_modified():
    theta = np.random.default_rng(3).standard_normal((2, 3))
    theta.setflags(write=False)
    entry_differences(entries_of(theta), theta, np.arange(6), 1e-5, "central", 0.0, chunk=2)


@given(st.integers(1, 6), st.integers(0, 2**31 - 1))
@settings(max_examples=25, deadline=None)
def test_directional_derivatives_match_the_projected_gradient(k, seed):
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal(5)
    u = rng.standard_normal((k, 5))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    f0 = float(f_stack(theta[None])[0])
    d = direction_differences(f_stack, theta, u, AUTO_STEP["central"], "central", f0, chunk=3)
    np.testing.assert_allclose(d.grad, u @ grad_f(theta), rtol=1e-6, atol=1e-6)


def test_one_sided_differences_straddle_a_kink():
    # |θ| at θ = 1e-7 with h = 1e-6: the step crosses the kink at 0
    def f(stack):
        return np.abs(stack.reshape(stack.shape[0], -1)).sum(axis=1)
    theta = np.array([1e-7])
    d = entry_differences(lambda i, v: f(stack_entries(theta, i, v)), theta, np.arange(1), 1e-6,
                          "central", 1e-7, chunk=4)
    assert d.d_minus[0] < 0.0 < d.d_plus[0]
    assert abs(d.grad[0]) < 0.2  # the central difference averages the two slopes
