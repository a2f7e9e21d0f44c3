"""Each diagnosis hypothesis: found with the right words on its planted bug, silent on correct
gradients (several seeds) and on gradients it does not explain."""
from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli.check import diagnose as dg
from gradcheck_cli.check.diagnose import Context, diagnose, wrong_cache_candidates
from gradcheck_cli.layers.catalog import lookup

PASS = 1e-7
SEEDS = [0, 1, 2, 3, 4]


def central(f, theta: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(theta)
    for j in range(theta.size):
        step = h * max(1.0, abs(theta.flat[j]))
        tp, tm = theta.copy(), theta.copy()
        tp.flat[j] += step
        tm.flat[j] -= step
        grad.flat[j] = (f(tp) - f(tm)) / (2 * step)
    return grad


def layer(name: str, layout: str, in_shape, seed: int, **options):
    obj = lookup(name)(**options)
    obj.layout = layout
    obj.build(tuple(in_shape), np.random.default_rng(seed))
    return obj


def dense_case(layout: str, n_in: int, units: int, m: int, seed: int):
    """A dense layer, its input, upstream G and the numeric gradients of ⟨out, G⟩."""
    rng = np.random.default_rng(100 + seed)
    d = layer("dense", layout, (n_in,), seed, units=units)
    x = rng.standard_normal((n_in, m) if layout == "columns" else (m, n_in))
    out, cache = d.forward(x)
    g = rng.standard_normal(out.shape)

    def f_param(name):
        def f(t):
            return float((d.__class__.forward(_with(d, name, t), x)[0] * g).sum())
        return f

    numeric = {"x": central(lambda t: float((d.forward(t)[0] * g).sum()), x)}
    for name in d.params:
        numeric[name] = central(f_param(name), d.params[name])
    dx, grads = d.backward(g, cache)
    return d, x, out, g, numeric, {"x": dx, **grads}


def _with(layer_obj, name, value):
    import copy

    new = copy.copy(layer_obj)
    new.params = {**layer_obj.params, name: value}
    return new


def act_case(name: str, seed: int, shape=(6, 5), **options):
    rng = np.random.default_rng(200 + seed)
    a = layer(name, "rows", shape[1:], seed, **options)
    z = rng.standard_normal(shape)
    y, cache = a.forward(z)
    g = rng.standard_normal(shape)
    n = central(lambda t: float((a.forward(t)[0] * g).sum()), z)
    return a, z, y, g, n, a.backward(g, cache)[0]


def ctx(tensor="W", m=4, layout="columns", **kw) -> Context:
    return Context(tensor, m, layout, PASS, **kw)


# -- planted bugs: detected, with the right wording ------------------------------------------------

def test_all_zero_forgotten_bias_gradient():
    d, x, out, g, n, a = dense_case("columns", 4, 3, 5, 0)
    msg = diagnose(np.zeros_like(a["b"]), n["b"], ctx("b", 5, cotangent=g))
    assert msg == "db is all zeros but the numeric gradient is not: never computed or not returned?"


@pytest.mark.parametrize("factor,words", [
    (2.0, "extra factor 2"), (0.5, "missing factor 2"), (-1.0, "sign flipped"),
    (5.0, "missing 1/m (analytic = m·numeric, m = 5)"), (0.2, "extra 1/m (analytic = numeric/m, m = 5)"),
])
def test_constant_factor(factor, words):
    d, x, out, g, n, a = dense_case("columns", 4, 3, 5, 1)
    msg = diagnose(factor * a["W"], n["W"], ctx("W", 5))
    assert msg is not None and msg.startswith(words)


def test_bias_summed_over_the_wrong_axis_same_shape():
    # rows layout with m == units: Σ over features has the shape of b, so only the numbers tell
    d, x, out, g, n, a = dense_case("rows", 3, 4, 4, 2)
    wrong = g.sum(axis=1)
    msg = diagnose(wrong, n["b"], ctx("b", 4, "rows", cotangent=g))
    assert msg == ("bias gradient summed over the wrong axis: db = Σ over feature axis 1 (axis=1) of "
                   "dZ; it should be summed over the examples (rows, axis 0) only (axis=0)")


def test_bias_summed_over_rows_in_columns_layout():
    d, x, out, g, n, a = dense_case("columns", 3, 4, 4, 3)
    wrong = g.sum(axis=0, keepdims=True).T   # (4, 1), the shape of b, summed over units
    msg = diagnose(wrong, n["b"], ctx("b", 4, "columns", cotangent=g))
    assert msg is not None and msg.startswith("bias gradient summed over the wrong axis: db = Σ over "
                                              "feature axis 0 (axis=0)")


def test_bias_not_summed():
    d, x, out, g, n, a = dense_case("rows", 3, 4, 6, 4)
    msg = diagnose(g.copy(), n["b"], ctx("b", 6, "rows", cotangent=g))
    assert msg == ("db is dZ itself, shape (6, 4): not summed over the examples (rows, axis 0) "
                   "(it should be Σ over axis 0, shape (4,))")


@pytest.mark.parametrize("name,wrong,words", [
    ("sigmoid", lambda z, y, g: g * y, "dZ = dA ⊙ A: the activation g(Z) where its derivative g'(Z) "
                                       "belongs (e.g. sigmoid' written as σ instead of σ(1 − σ))"),
    ("tanh", lambda z, y, g: g * (1 - y), "dZ = dA ⊙ (1 − A)"),
    ("relu", lambda z, y, g: g, "dZ = dA: the activation's derivative g'(Z) is missing"),
    ("sigmoid", lambda z, y, g: g * (1 / (1 + np.exp(-y))) * (1 - 1 / (1 + np.exp(-y))),
     "dZ = dA ⊙ σ'(A): the derivative applied to A instead of Z"),
])
def test_wrong_activation_derivative(name, wrong, words):
    a, z, y, g, n, dx = act_case(name, 0)
    msg = diagnose(wrong(z, y, g), n, ctx("x", 6, "rows", cotangent=g, layer_input=z, layer_output=y))
    assert msg is not None and msg.startswith("wrong activation derivative: " + words)


def test_right_only_where_active():
    # leaky relu whose backward forgot the slope: dZ = dA ⊙ [Z > 0]
    a, z, y, g, n, dx = act_case("leaky_relu", 1, alpha=0.1)
    wrong = g * (z > 0)
    msg = diagnose(wrong, n, ctx("x", 6, "rows", cotangent=g, layer_input=z, layer_output=y))
    inactive = int((z <= 0).sum())
    assert msg == (f"right only where the activation is active (Z > 0): wrong at the {inactive} entries "
                   "where Z ≤ 0, where the analytic gradient is 0: the inactive branch's derivative "
                   "(a leaky slope?) is missing")


@pytest.mark.parametrize("wrong,words", [
    (lambda z, g, n: np.where(z > 0, n, -n), "where analytic = −numeric: the inactive branch's "
                                              "derivative has its sign flipped"),
    (lambda z, g, n: np.where(z > 0, n, 0.5 * g), "so the derivative's inactive branch is wrong "
                                                   "(mask taken from the wrong tensor? wrong slope?)"),
])
def test_right_only_where_active_says_how_the_rest_is_wrong(wrong, words):
    a, z, y, g, n, dx = act_case("leaky_relu", 2, alpha=0.1)
    msg = diagnose(wrong(z, g, n), n, ctx("x", 6, "rows", cotangent=g, layer_input=z, layer_output=y))
    assert msg is not None and msg.startswith("right only where the activation is active (Z > 0)")
    assert msg.endswith(words)


def test_correct_except_one_column():
    # a loop over inputs `for j in range(n_in - 1)`: the last column of dW is never written
    d, x, out, g, n, a = dense_case("columns", 5, 3, 4, 5)
    wrong = a["W"].copy()
    wrong[:, -1] = 0.0
    msg = diagnose(wrong, n["W"], ctx("W", 4, cotangent=g))
    assert msg == "correct except column 4 ([:, 4]) (all zeros there): 3 of 15 entries wrong, all in that slice"


def test_correct_except_one_row():
    d, x, out, g, n, a = dense_case("columns", 5, 3, 4, 6)
    wrong = a["W"].copy()
    wrong[1] *= 3.0
    msg = diagnose(wrong, n["W"], ctx("W", 4, cotangent=g))
    assert msg == "correct except row 1 ([1, :]): 5 of 15 entries wrong, all in that slice"


def test_wrong_cache_of_a_neighbouring_layer():
    # two dense layers with equal widths; layer 2's dW was computed with layer 1's input A[0]
    rng = np.random.default_rng(7)
    d1 = layer("dense", "columns", (4,), 1, units=4)
    d2 = layer("dense", "columns", (4,), 2, units=3)
    a0 = rng.standard_normal((4, 5))
    a1, _ = d1.forward(a0)
    z2, cache2 = d2.forward(a1)
    g = rng.standard_normal(z2.shape)
    n = central(lambda t: float((_with(d2, "W", t).forward(a1)[0] * g).sum()), d2.params["W"])
    wrong = g @ a0.T

    def forward(x, params):
        return _with(d2, "W", params["W"]).forward(x)[0]

    calls = []

    def lazily():
        calls.append(1)
        return wrong_cache_candidates(forward, d2.params, "W", g, {"layer 1's input A[0]": a0})

    msg = diagnose(wrong, n, ctx("W", 5, cotangent=g, neighbours=lazily))
    assert msg == "dW equals dW with layer 1's input A[0] as the cache: a neighbouring layer's gradient, or the wrong cache?"
    assert calls == [1]
    # computed only when needed: a gradient an earlier hypothesis explains never calls it
    assert diagnose(2 * n, n, ctx("W", 5, neighbours=lazily)) == "extra factor 2" and calls == [1]


def test_neighbouring_layer_gradient():
    d, x, out, g, n, a = dense_case("columns", 3, 3, 4, 8)
    other = np.random.default_rng(9).standard_normal(a["W"].shape)
    msg = diagnose(other, n["W"], ctx("W", 4, neighbours={"dW of layer 3": other}))
    assert msg == "dW equals dW of layer 3: a neighbouring layer's gradient, or the wrong cache?"


# -- never reported on correct gradients ----------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_silent_on_correct_dense(seed, layout):
    # square shapes on purpose: the bias, transpose and neighbour hypotheses all have a shape to match
    d, x, out, g, n, a = dense_case(layout, 4, 4, 4, seed)
    for tensor in ("x", "W", "b"):
        c = ctx(tensor, 4, layout, cotangent=g, layer_input=x, layer_output=out,
                neighbours={"the other": n["W"].T})
        assert diagnose(a[tensor], n[tensor], c) is None
        for hypothesis in dg.HYPOTHESES:
            assert hypothesis(np.asarray(a[tensor]), n[tensor], c) is None, hypothesis.__name__


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "leaky_relu", "identity", "elu"])
def test_silent_on_correct_activations(seed, name):
    a, z, y, g, n, dx = act_case(name, seed)
    c = ctx("x", 6, "rows", cotangent=g, layer_input=z, layer_output=y)
    for hypothesis in dg.HYPOTHESES:
        assert hypothesis(np.asarray(dx), n, c) is None, hypothesis.__name__


@pytest.mark.parametrize("seed", SEEDS)
def test_silent_on_gradients_no_hypothesis_explains(seed):
    d, x, out, g, n, a = dense_case("columns", 4, 4, 4, seed)
    noise = np.random.default_rng(seed).standard_normal(n["W"].shape)
    c = ctx("W", 4, cotangent=g, layer_input=x, layer_output=out)
    assert diagnose(noise, n["W"], c) is None
    # a factor the config has no quantity for is said as it is, and named as nothing else
    assert diagnose(3.0 * n["W"], n["W"], c) == ("a constant factor: analytic = 3·numeric, and 3 is "
                                                 "none of the config's quantities")
    # a gradient that is off by more than the threshold
    assert diagnose(2.0 * n["W"] + 1e-3 * noise, n["W"], c) is None


# -- through the checker: the diagnosis lands in the failing row's reason, and nowhere else --------

def test_pipeline_names_the_bug_in_the_failing_row_only():
    from pathlib import Path

    from gradcheck_cli.run.pipeline import RunOptions, check_file

    root = Path(__file__).resolve().parent.parent / "examples" / "broken"
    found = {}
    for name in ("missing_mean", "forgotten_bias"):
        result = check_file(root / f"{name}.yaml", RunOptions(allow_plugins=True))
        found[name] = [(r.label, r.tensor, r.isolated.diagnosis) for r in result.rows
                       if r.isolated.diagnosis]
    assert found["missing_mean"] == [("loss", "x", "missing 1/m (analytic = m·numeric, m = 5)")]
    assert [(lb, t) for lb, t, _ in found["forgotten_bias"]] == [("1", "b")]
    assert found["forgotten_bias"][0][2].startswith("db is all zeros")


def test_pipeline_names_the_unwritten_column():
    from gradcheck_cli import check_layer

    def affine_forward(x, w, b):
        return x @ w + b, (x, w, b)

    def affine_backward(dout, cache):  # the loop over outputs stops one short
        x, w, b = cache
        dw = np.zeros_like(w)
        for j in range(w.shape[1] - 1):
            dw[:, j] = x.T @ dout[:, j]
        return dout @ w.T, dw, dout.sum(axis=0)

    report = check_layer(affine_forward, affine_backward, input_shape=(4,), batch=3,
                         params={"w": (4, 5), "b": (5,)})
    rows = {(r.label, r.tensor): r for r in report.rows}
    assert rows[("1", "w")].isolated.diagnosis == (
        "correct except column 4 ([:, 4]) (all zeros there): 4 of 20 entries wrong, all in that slice")
    assert all(r.isolated.diagnosis is None for k, r in rows.items() if k != ("1", "w"))


@pytest.mark.parametrize("config", ["mlp.yaml", "course_columns.yaml", "activations.toml"])
def test_pipeline_silent_on_correct_configs(config):
    from pathlib import Path

    from gradcheck_cli.run.pipeline import check_file

    result = check_file(Path(__file__).resolve().parent.parent / "configs" / config)
    assert all(r.isolated.diagnosis is None and (r.network is None or r.network.diagnosis is None)
               for r in result.rows)
