"""Complex-step differentiation through every built-in: Im f(θ + ih)/h with h = 1e-20.

A built-in declares ``complex_safe = True`` only when its forward is analytic along the real axis
for complex inputs and complex parameters: decisions (relu, max-pool, hinge, ...) look at the real
part, and nothing takes |z| (np.abs, np.var, np.maximum). A layer that broke this would give
Im f = 0 or a conjugated derivative, so its own rows would FAIL here. Planted bugs must still FAIL
at their row: a method that passes everything would be worthless.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli.check.engine import CheckSettings, check_network
from gradcheck_cli.cli import app
from gradcheck_cli.errors import SpecError
from gradcheck_cli.layers.protocol import Layer
from gradcheck_cli.check.network import build_network
from gradcheck_cli.layers.catalog import is_builtin, lookup, register, registered
from gradcheck_cli.results import Status
from gradcheck_cli.config.models import spec_from_text

import test_layers_mutations
from test_layers_catalog import EXAMPLES
from verdict_corpus import HARD, MUTANTS, hard_spec, mutant_spec

COMPLEX = CheckSettings(method="complex")
CONFIGS = Path(__file__).resolve().parent.parent / "configs"
BUILTINS = [name for name, cls in registered().items() if is_builtin(cls)]
CASES = [(name, k) for name in BUILTINS for k in range(len(EXAMPLES.get(name, ())))]


def check(spec: dict | str, seed: int = 0, dtype: str = "float64"):
    text = spec if isinstance(spec, str) else json.dumps({"seed": seed, "dtype": dtype, **spec})
    return check_network(build_network(spec_from_text(text)), COMPLEX)


def not_passing(result, allowed=(Status.PASS, Status.SKIPPED)):
    return [(r.label, r.tensor, r.status.value, r.reason) for r in result.rows
            if r.status not in allowed or r.isolated.status not in allowed]


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_declares_complex_safe_and_has_an_example(name):
    assert registered()[name].complex_safe is True
    assert EXAMPLES.get(name), f"{name}: no example spec in tests/test_layers_catalog.py"


@pytest.mark.parametrize("name,k", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_builtin_passes_with_complex_step(name, k):
    result = check(EXAMPLES[name][k], seed=k)
    assert result.method == "complex" and result.eps == 1e-20
    assert not not_passing(result)
    # the step is imaginary: nothing is differenced, so the agreement is to machine precision
    # (but for gradients that are exactly zero, such as a bias before a batch norm)
    assert all(r.isolated.rel_error < 1e-12 or "~0" in r.isolated.reason for r in result.rows
               if r.isolated.status is Status.PASS and r.isolated.rel_error is not None)


@pytest.mark.parametrize("name", BUILTINS)
def test_float32_networks_pass_with_complex_step(name):
    result = check(EXAMPLES[name][0], seed=3, dtype="float32")
    assert not not_passing(result, (Status.PASS, Status.SKIPPED, Status.WARN))


@pytest.mark.parametrize("hard", HARD, ids=lambda h: h.name)
def test_kinks_and_ties_decide_on_the_real_part(hard):
    # an imaginary step never crosses a decision, so there is no kink to explain and no FAIL
    for seed in (0, 1):
        assert not not_passing(check(hard_spec(hard, seed)))


@pytest.mark.parametrize("mutant", list(test_layers_mutations.MUTANTS))
def test_planted_bug_in_a_library_layer_fails_at_its_rows(mutant):
    spec, expected = test_layers_mutations.MUTANTS[mutant]
    result = check(spec, seed=1)
    assert {(r.label, r.tensor) for r in result.rows if r.status is Status.FAIL} == expected
    assert {(r.label, r.tensor) for r in result.rows if r.isolated.status is Status.FAIL} == expected


@pytest.mark.parametrize("mutant", [m for m in MUTANTS if m.name in (
    "mut_relu_sign", "mut_softmax_wrong_axis", "mut_dense_cols_dW_transposed", "mut_sce_no_1m")],
    ids=lambda m: m.name)
def test_planted_bug_from_the_corpus_fails_at_its_row(mutant):
    result = check(mutant_spec(mutant, 2))
    assert {(r.label, r.tensor) for r in result.rows if r.status is Status.FAIL} == {mutant.row}


def test_maxpool_passes_on_the_complex_value_of_the_entry_its_backward_routes_to():
    pool = lookup("maxpool2d")(kernel=2)
    pool.build((1, 2, 2), np.random.default_rng(0))
    # a four-way tie in the real part, told apart only by the imaginary part
    x = (np.ones((1, 1, 2, 2)) + 1j * np.array([[1.0, 4.0], [3.0, 2.0]]) * 1e-20)
    out, _ = pool.forward(x)
    dx, _ = pool.backward(np.ones((1, 1, 1, 1)), x.real)
    assert out[0, 0, 0, 0] == x[0, 0, 0, 0]
    assert dx[0, 0, 0, 0] == 1.0 and dx.sum() == 1.0
    y = x.copy()
    y.real[0, 0, 1, 0] += 1e-9  # a real winner, with the smallest imaginary part but one
    assert pool.forward(y)[0][0, 0, 0, 0] == y[0, 0, 1, 0]


def test_batchnorm_variance_is_not_taken_of_the_modulus():
    # np.var of a complex array is the mean of |x − μ|², whose imaginary part is 0: the
    # derivative through σ² would silently vanish
    bn = lookup("batchnorm")()
    bn.build((3,), np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((5, 3))
    v = np.random.default_rng(2).standard_normal((5, 3))
    h = 1e-20
    derivative = bn.forward(x + 1j * h * v)[0].imag / h
    d = 1e-6
    central = (bn.forward(x + d * v)[0] - bn.forward(x - d * v)[0]) / (2 * d)
    np.testing.assert_allclose(derivative, central, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(bn.forward(x + 1j * h * v)[0].real, bn.forward(x)[0], rtol=1e-14)


@register("test_abs_not_complex_safe")
class AbsLayer(Layer):
    """y = |x| through np.abs, which is not analytic: dx = dout ⊙ sign(x)."""

    probe_axes = True

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        return np.abs(x), x

    def backward(self, dout, cache):
        return dout * np.sign(cache), {}


def _residual(children: list[dict]) -> dict:
    return dict(input=dict(shape=[4], batch=3), loss="mse", layers=[
        {"type": "dense", "units": 4},
        {"type": "residual", "layers": [{"type": "residual", "layers": children}]}])


def test_residual_around_a_layer_that_is_not_complex_safe_is_refused_by_name_and_line():
    spec = _residual([{"type": "dense", "units": 4}, {"type": "test_abs_not_complex_safe"}])
    net = build_network(spec_from_text(json.dumps({"seed": 0, **spec})))
    block = net.nodes[1].layer
    assert block.type_name == "residual" and is_builtin(type(block))
    assert type(block).__doc__ == lookup("residual").__doc__
    assert not type(block).complex_safe and not type(block.inner_layers[0]).complex_safe
    assert lookup("residual").complex_safe  # the registered class itself is unchanged
    # the error names the layer inside the blocks that is not complex-safe, where it was written
    with pytest.raises(SpecError, match=r"layers\[1\]\.layers\[0\]\.layers\[1\]: method complex needs "
                                        r"every layer to be complex-safe, and `test_abs_not_complex_safe` "
                                        r"does not declare"):
        check_network(net, COMPLEX)
    # the same block is fine under a method that only evaluates real inputs
    assert check_network(net).status is Status.PASS


def test_residual_around_complex_safe_layers_is_complex_safe():
    spec = _residual([{"type": "dense", "units": 4, "activation": "relu"}, {"type": "layernorm"}])
    net = build_network(spec_from_text(json.dumps({"seed": 0, **spec})))
    assert type(net.nodes[1].layer) is lookup("residual")
    assert not not_passing(check_network(net, COMPLEX))


def test_every_bundled_config_passes_with_complex_step_from_the_command_line(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["check", str(CONFIGS), "--method", "complex"])
    assert result.exit_code == 0, result.stdout + result.stderr
    n = len(list(CONFIGS.glob("*.y*ml")) + list(CONFIGS.glob("*.toml")))
    assert f"{n} configs: {n} passed, 0 failed" in result.stdout
