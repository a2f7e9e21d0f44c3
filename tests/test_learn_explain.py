"""`gradcheck explain`: exact equations for a dense network in both layouts, Markdown, the
Jacobian view, the docstring fallback for plugins, and its errors."""
from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from gradcheck_cli.cli import app
from gradcheck_cli.learn.explain import explain_plan
from gradcheck_cli.learn.jacobian import jacobian_view
from gradcheck_cli.learn.explain_render import explanation_markdown, render_explanation
from gradcheck_cli.check.network import build_network
from gradcheck_cli.config.plan import plan_network
from gradcheck_cli.config.models import spec_from_text

NET = """name: two-layer
layout: {layout}
input: {{shape: [7], batch: {m}}}
layers:
  - {{type: dense, units: 5, activation: relu}}
  - {{type: dense, units: 1, activation: sigmoid}}
loss: binary_cross_entropy
"""

EXPECTED_COLUMNS = """\
net.yaml  two-layer · columns layout · batch m = 16

layer 1 · dense(units=5), line 5
forward   Z[1] = W[1]·A[0] + b[1]        W[1]: (5, 7), A[0]: (7, m=16), b[1]: (5, 1) → Z[1]: (5, m=16)
backward  dW[1] = (1/m)·dZ[1]·A[0]ᵀ      (5, 16)·(16, 7) → (5, 7)
          db[1] = (1/m)·Σ_columns dZ[1]  (5, 16) → (5, 1)
          dA[0] = W[1]ᵀ·dZ[1]            (7, 5)·(5, 16) → (7, 16)
note: course form: its dZ is m × the exact gradient (its dA[L] has no 1/m); this layer's backward returns the exact VJP dW[1] = dZ[1]·A[0]ᵀ, db[1] = Σ_columns dZ[1], with the 1/m in the loss's backward

layer 1a · relu, line 5
forward   A[1] = relu(Z[1])                          Z[1]: (5, m=16) → A[1]: (5, m=16)
          relu(z) = max(0, z)
backward  dZ[1] = dA[1] ⊙ relu'(Z[1])                (5, 16) ⊙ (5, 16) → (5, 16)
          relu'(z) = 1 if z > 0 else 0 (0 at z = 0)

layer 2 · dense(units=1), line 6
forward   Z[2] = W[2]·A[1] + b[2]        W[2]: (1, 5), A[1]: (5, m=16), b[2]: (1, 1) → Z[2]: (1, m=16)
backward  dW[2] = (1/m)·dZ[2]·A[1]ᵀ      (1, 16)·(16, 5) → (1, 5)
          db[2] = (1/m)·Σ_columns dZ[2]  (1, 16) → (1, 1)
          dA[1] = W[2]ᵀ·dZ[2]            (5, 1)·(1, 16) → (5, 16)
note: course form: its dZ is m × the exact gradient (its dA[L] has no 1/m); this layer's backward returns the exact VJP dW[2] = dZ[2]·A[1]ᵀ, db[2] = Σ_columns dZ[2], with the 1/m in the loss's backward

layer 2a · sigmoid, line 6
forward   A[2] = sigmoid(Z[2])                         Z[2]: (1, m=16) → A[2]: (1, m=16)
          sigmoid(z) = σ(z) = 1/(1 + e⁻ᶻ)
backward  dZ[2] = dA[2] ⊙ sigmoid'(Z[2])               (1, 16) ⊙ (1, 16) → (1, 16)
          sigmoid'(z) = σ(z)·(1 − σ(z)) = A ⊙ (1 − A)

loss · binary_cross_entropy, line 7
forward   J = −(1/m)·Σ [Y ⊙ log A[2] + (1 − Y) ⊙ log(1 − A[2])]  A[2], Y: (1, m=16) → J: scalar
backward  dA[2] = −(1/m)·(Y/A[2] − (1 − Y)/(1 − A[2]))           (1, 16)
note: the course writes dA[2] = −(Y/A[2] − (1 − Y)/(1 − A[2])) without the 1/m and puts the 1/m in dW, db instead
"""

EXPECTED_ROWS = """\
net.yaml  two-layer · rows layout · batch m = 16

layer 1 · dense(units=5), line 5
forward   Z[1] = A[0]·W[1] + b[1]  W[1]: (7, 5), A[0]: (m=16, 7), b[1]: (5,) → Z[1]: (m=16, 5)
backward  dW[1] = A[0]ᵀ·dZ[1]      (7, 16)·(16, 5) → (7, 5)
          db[1] = Σ_rows dZ[1]     (16, 5) → (5,)
          dA[0] = dZ[1]·W[1]ᵀ      (16, 5)·(5, 7) → (16, 7)
note: exact vector-Jacobian products: the 1/m of the mean loss is already in dZ[1] (the loss's backward carries it)

layer 1a · relu, line 5
forward   A[1] = relu(Z[1])                          Z[1]: (m=16, 5) → A[1]: (m=16, 5)
          relu(z) = max(0, z)
backward  dZ[1] = dA[1] ⊙ relu'(Z[1])                (16, 5) ⊙ (16, 5) → (16, 5)
          relu'(z) = 1 if z > 0 else 0 (0 at z = 0)

layer 2 · dense(units=1), line 6
forward   Z[2] = A[1]·W[2] + b[2]  W[2]: (5, 1), A[1]: (m=16, 5), b[2]: (1,) → Z[2]: (m=16, 1)
backward  dW[2] = A[1]ᵀ·dZ[2]      (5, 16)·(16, 1) → (5, 1)
          db[2] = Σ_rows dZ[2]     (16, 1) → (1,)
          dA[1] = dZ[2]·W[2]ᵀ      (16, 1)·(1, 5) → (16, 5)
note: exact vector-Jacobian products: the 1/m of the mean loss is already in dZ[2] (the loss's backward carries it)

layer 2a · sigmoid, line 6
forward   A[2] = sigmoid(Z[2])                         Z[2]: (m=16, 1) → A[2]: (m=16, 1)
          sigmoid(z) = σ(z) = 1/(1 + e⁻ᶻ)
backward  dZ[2] = dA[2] ⊙ sigmoid'(Z[2])               (16, 1) ⊙ (16, 1) → (16, 1)
          sigmoid'(z) = σ(z)·(1 − σ(z)) = A ⊙ (1 − A)

loss · binary_cross_entropy, line 7
forward   J = −(1/m)·Σ [Y ⊙ log A[2] + (1 − Y) ⊙ log(1 − A[2])]  A[2], Y: (m=16, 1) → J: scalar
backward  dA[2] = −(1/m)·(Y/A[2] − (1 − Y)/(1 − A[2]))           (16, 1)
"""


def plan_for(layout: str, m: int = 16):
    return plan_network(spec_from_text(NET.format(layout=layout, m=m), path="net.yaml"))


def rendered(ex) -> str:
    buf = io.StringIO()
    render_explanation(Console(file=buf, width=160, color_system=None), ex)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


@pytest.mark.parametrize("layout,expected", [("columns", EXPECTED_COLUMNS), ("rows", EXPECTED_ROWS)])
def test_dense_network_exact_text(layout, expected):
    assert rendered(explain_plan(plan_for(layout))) == expected


def test_one_layer_and_its_activation_by_index():
    ex = explain_plan(plan_for("columns"), "2")
    assert [e.label for e in ex.layers] == ["2", "2a"]
    assert [e.label for e in explain_plan(plan_for("columns"), "2a").layers] == ["2a"]


def test_markdown():
    md = explanation_markdown(explain_plan(plan_for("columns"), "1"))
    assert md.splitlines()[:9] == [
        "## two-layer — columns layout, batch m = 16", "", "`net.yaml`", "",
        "### layer 1 · dense(units=5), line 5", "", "| | equation | shapes |", "|---|---|---|",
        "| forward | `Z[1] = W[1]·A[0] + b[1]` | `W[1]: (5, 7), A[0]: (7, m=16), b[1]: (5, 1) → Z[1]: (5, m=16)` |"]
    assert "| backward | `dW[1] = (1/m)·dZ[1]·A[0]ᵀ` | `(5, 16)·(16, 7) → (5, 7)` |" in md


def test_l2_note(tmp_path):
    plan = plan_network(spec_from_text(NET.format(layout="columns", m=4) + "l2: 0.5\n", path="net.yaml"))
    assert explain_plan(plan).notes == [
        "L2 (λ = 0.5): J += (λ/2m)·Σ_l ‖W[l]‖², so dW[l] += (λ/m)·W[l] for W[1], W[2]"]


@pytest.mark.parametrize("layout", ["rows", "columns"])
@pytest.mark.parametrize("label,tensor", [("1", "W"), ("1", "b"), ("1", "x"), ("1a", "x"), ("loss", "x")])
def test_jacobian_vjp_equals_gt_j(layout, label, tensor):
    net = build_network(plan_for(layout, m=2))
    v = jacobian_view(net, label, tensor)
    assert v.too_big is None and v.vjp_error is None
    out_size = int(np.prod(v.out_shape)) if v.out_shape else 1
    assert v.jacobian.shape == (out_size, int(np.prod(v.tensor_shape)))
    np.testing.assert_allclose(v.product, v.vjp, rtol=1e-6, atol=1e-8)
    assert v.rel_error < 1e-7


def test_jacobian_of_dense_wrt_w_has_the_input_in_it():
    # columns: Z[i,k] = Σ_j W[i,j]·A[j,k] + b[i], so ∂Z[i,k]/∂W[p,j] = [i = p]·A[j,k]
    net = build_network(plan_for("columns", m=2))
    v = jacobian_view(net, "1", "W")
    a0 = net.x
    expected = np.zeros((5 * 2, 5 * 7))
    for i in range(5):
        for k in range(2):
            expected[i * 2 + k, i * 7:(i + 1) * 7] = a0[:, k]
    np.testing.assert_allclose(v.jacobian, expected, atol=1e-8)


def test_jacobian_too_big_says_why():
    v = jacobian_view(build_network(plan_for("columns", m=16)), "1", "W")
    assert v.jacobian is None
    assert v.too_big.startswith("J would be 80 × 35 = 2,800 entries, more than the 400 that fit on a screen")


def test_cli_explain_and_jacobian(tmp_path):
    cfg = tmp_path / "net.yaml"
    cfg.write_text(NET.format(layout="columns", m=2))
    runner = CliRunner()
    r = runner.invoke(app, ["explain", str(cfg), "--layer", "2"], env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.output
    assert "dW[2] = (1/m)·dZ[2]·A[1]ᵀ      (1, 2)·(2, 5) → (1, 5)" in r.output
    r = runner.invoke(app, ["explain", str(cfg), "--layer", "2", "--jacobian"], env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.output
    assert "Jacobian of Z[2] (1, 2) with respect to W[2] (1, 5)" in r.output
    assert "the layer's VJP: backward(G) → dW[2]" in r.output
    r = runner.invoke(app, ["explain", str(cfg), "--layer", "9"], env={"COLUMNS": "160"})
    assert r.exit_code == 2
    assert r.output.strip().endswith(f"error: no layer '9' in {cfg}: choose one of 1, 1a, 2, 2a, loss")
    r = runner.invoke(app, ["explain", str(cfg), "--jacobian"], env={"COLUMNS": "160"})
    assert r.exit_code == 2 and "--jacobian needs --layer" in r.output


PLUGIN = '''
import numpy as np
from gradcheck_cli import register


@register("scale_explain_test")
class Scale:
    """y = 3·x.

    dx = 3·dout."""

    def build(self, input_shape, rng):
        self.params = {}
        return tuple(input_shape)

    def forward(self, x):
        return 3 * x, None

    def backward(self, dout, cache):
        return 3 * dout, {}
'''


def test_plugin_without_explain_gets_its_docstring(tmp_path):
    (tmp_path / "scale.py").write_text(PLUGIN)
    cfg = tmp_path / "net.yaml"
    cfg.write_text("layout: rows\ninput: {shape: [3], batch: 2}\nplugins: [scale.py]\n"
                   "layers:\n  - {type: scale_explain_test}\nloss: mse\n")
    r = CliRunner().invoke(app, ["explain", str(cfg), "--allow-plugins", "--layer", "1"],
                           env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.output
    lines = [" ".join(line.split()) for line in r.output.splitlines()]
    assert "shapes A[0]: (2, 3) → A[1]: (2, 3)" in lines
    assert "y = 3·x." in lines and "dx = 3·dout." in lines
    assert any(line.startswith("note: from the docstring of Scale: give the class an explain(self, s)")
               for line in lines)


BROKEN_EXPLAIN = PLUGIN.replace('"scale_explain_test"', '"scale_explain_broken"') + '''
    def explain(self, s):
        return {"forward": [s.p("W")]}
'''


def test_plugin_whose_explain_raises_gets_its_docstring_and_the_reason(tmp_path):
    (tmp_path / "scale.py").write_text(BROKEN_EXPLAIN)
    cfg = tmp_path / "net.yaml"
    cfg.write_text("layout: rows\ninput: {shape: [3], batch: 2}\nplugins: [scale.py]\n"
                   "layers:\n  - {type: scale_explain_broken}\nloss: mse\n")
    r = CliRunner().invoke(app, ["explain", str(cfg), "--allow-plugins", "--layer", "1"],
                           env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.output
    assert "note: Scale.explain raised KeyError: 'W'" in r.output
    assert "y = 3·x." in r.output
