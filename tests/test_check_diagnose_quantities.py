"""check/diagnose/quantities.py and the constant-factor diagnosis: a factor is said with every quantity
of the config it equals, or with none, never with one of several."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from gradcheck_cli.check.diagnose import Context, diagnose
from gradcheck_cli.check.diagnose.factors import constant_factor
from gradcheck_cli.check.diagnose.quantities import config_quantities, example_axes, matching, tensor_axes

PASS = 1e-7
few = settings(max_examples=30, deadline=None)


def ctx(quantities, batch=4) -> Context:
    return Context("x", batch, "rows", PASS, quantities=tuple(quantities))


def test_avg_pool_factor_at_batch_4_names_k2_and_m():
    qs = config_quantities({"kernel": 2.0}, [("batch", "m", 4), ("channel", "C", 1)], 4)
    names = matching(4.0, qs)
    assert any(n.startswith("m (m = 4") for n in names) and any(n.startswith("k² (kernel 2") for n in names)
    n = np.random.default_rng(0).standard_normal((4, 1, 2, 2))
    text = diagnose(4 * n, n, ctx(qs))
    assert "m (m = 4, the batch size)" in text and "k² (kernel 2, the window size 4)" in text
    assert "all of these are equal here" in text


def test_each_family_quantity_is_named():
    axes = tensor_axes("(T, D) → (T, D)", (2, 4, 8), "rows")
    assert axes == [("batch", "m", 2), ("time", "T", 4), ("feature", "D", 8)]
    assert matching(8 ** 0.5, config_quantities({"heads": 1.0}, axes, 2)) == ["√d (d = 8, the head size)"]
    assert matching(0.25, config_quantities({}, axes, 2)) == ["1/T (T = 4, the time steps)"]
    drop = config_quantities({"p": 0.2}, [("batch", "m", 3), ("feature", "D", 8)], 3)
    assert matching(0.8, drop) == ["1 − p (p = 0.2, the keep probability)"]
    assert matching(1.25, drop) == ["1/(1 − p) (p = 0.2, the keep probability)"]
    assert example_axes("", (3, 5, 5)) == [("channel", "C"), ("height", "H"), ("width", "W")]


@few
@given(st.integers(2, 9), st.integers(2, 5), st.integers(0, 2**31 - 1))
def test_a_factor_names_every_equal_quantity_or_none(m, k, seed):
    qs = config_quantities({"kernel": float(k)}, [("batch", "m", m)], m)
    n = np.random.default_rng(seed).standard_normal((m, 3))
    for c in (float(m), float(k * k), 1.0 / m, 1.0 / (k * k), 2.0, 3.7):
        text = constant_factor(c * n, n, ctx(qs, m))
        assert text is not None
        equal = [q.name for q in qs if abs(q.value - c) < 1e-9 or abs(1 / q.value - c) < 1e-9]
        if c == 3.7 and not equal:
            assert "is none of the config's quantities" in text
        if c == float(m) and len(equal) == 1:
            assert text == f"missing 1/m (analytic = m·numeric, m = {m})"
        if c == float(k * k) and k * k != m:
            assert "k² (kernel" in text and "m (m =" not in text
        if k * k == m and c == float(m):
            assert "k² (kernel" in text and "m (m =" in text
    # right gradients get nothing, nor does noise everywhere
    rng = np.random.default_rng(seed)
    assert diagnose(n * (1 + 1e-12 * rng.standard_normal(n.shape)), n, ctx(qs, m)) is None
    assert constant_factor(n + rng.standard_normal(n.shape), n, ctx(qs, m)) is None
