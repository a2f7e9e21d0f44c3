"""Plugin layers that misbehave at run time, beyond the corpus in tests/bad_configs/: whatever a
layer does, the outcome is an error or a FAIL, never a silent pass."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradcheck_cli.cli import app

PLUGIN = '''"""Layers that misbehave in forward or backward."""
import sys

from gradcheck_cli import register
from gradcheck_cli.layers.protocol import Layer


class _Same(Layer):
    def output_shape(self, input_shape):
        return input_shape

    def forward(self, x):
        return x, None

    def backward(self, dout, cache):
        return dout, {}


@register("pf_forward_exits")
class ForwardExits(_Same):
    def forward(self, x):
        sys.exit(0)


@register("pf_backward_exits")
class BackwardExits(_Same):
    def backward(self, dout, cache):
        raise SystemExit(0)


@register("pf_object_output")
class ObjectOutput(_Same):
    def forward(self, x):
        return x.astype(object), None


@register("pf_backward_raises")
class BackwardRaises(_Same):
    def backward(self, dout, cache):
        raise ValueError("shapes (2,4) and (3,) not aligned")


@register("pf_backward_none")
class BackwardNone(_Same):
    def backward(self, dout, cache):
        return None
'''


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    # one file for the whole module: a second file registering the same names would clash
    path = tmp_path_factory.mktemp("pf") / "pf_layers.py"
    path.write_text(PLUGIN)
    return path


def _check(tmp_path: Path, monkeypatch, plugin: Path, layer: str):
    (tmp_path / "net.yaml").write_text(f"input: {{shape: [4], batch: 2}}\nlayers:\n  - {{type: {layer}}}\n"
                                       "loss: mse\n")
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(app, ["check", "--plugin", str(plugin), "net.yaml"])


@pytest.mark.parametrize("layer", ["pf_backward_raises", "pf_backward_none"])
def test_a_broken_backward_fails_its_rows_with_the_reason(tmp_path, monkeypatch, plugin, layer):
    result = _check(tmp_path, monkeypatch, plugin, layer)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "FAIL" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_forward_calling_sys_exit_is_an_error_not_a_silent_pass(tmp_path, monkeypatch, plugin):
    result = _check(tmp_path, monkeypatch, plugin, "pf_forward_exits")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: net.yaml:3:5: layers[0]: pf_forward_exits.forward raised "
                                    "SystemExit: 0 (at ")


def test_a_backward_calling_sys_exit_fails_its_row(tmp_path, monkeypatch, plugin):
    result = _check(tmp_path, monkeypatch, plugin, "pf_backward_exits")
    assert result.exit_code == 1
    assert "backward raised SystemExit: 0" in result.stdout


def test_a_forward_returning_an_object_array_gets_a_located_message(tmp_path, monkeypatch, plugin):
    result = _check(tmp_path, monkeypatch, plugin, "pf_object_output")
    assert result.exit_code == 2
    assert result.stderr == ("error: net.yaml:3:5: layers[0]: pf_object_output.forward returned an "
                             "array of dtype object; expected floating point numbers\n")
