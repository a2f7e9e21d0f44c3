"""The command line: exit codes 0 / 1 / 2 and the exact, located error text for bad specs."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradcheck_cli.cli import app
from gradcheck_cli.layers.catalog import registered

from ci_helpers import gradcheck

ROOT = Path(__file__).resolve().parent.parent
MY_DENSE = ROOT / "examples" / "plugins" / "my_dense.py"

GOOD = """\
input: {shape: [3], batch: 2}
layers:
  - {type: dense, units: 2, activation: tanh}
loss: mse
"""


@pytest.fixture
def run(tmp_path, monkeypatch):
    """Write files into an empty folder, run `gradcheck ARGS` there; paths show as written."""
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str, files: dict[str, str] | None = None):
        for name, text in (files or {}).items():
            (tmp_path / name).write_text(textwrap.dedent(text))
        return CliRunner().invoke(app, list(args))

    return invoke


def _error(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0][len("error: "):]


# -- exit codes ----------------------------------------------------------------------------------

def test_exit_0_when_every_check_passes(run):
    result = run("check", "good.yaml", files={"good.yaml": GOOD})
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "1 config: 1 passed, 0 failed"
    assert result.stderr == ""


def test_exit_1_when_a_check_fails(run):
    result = run("check", str(ROOT / "examples" / "broken" / "sign_error.yaml"), "--allow-plugins")
    assert result.exit_code == 1, result.output
    assert "sign-error: FAILED — 9 checks: 1 FAIL, 3 inherited, 5 pass" in result.stdout


def test_exit_2_beats_1_and_every_config_is_still_reported(run):
    # (plugin files are used from where they are: one layer type name belongs to one file)
    broken = str(ROOT / "examples" / "broken" / "forgotten_bias.yaml")
    result = run("check", broken, ".", "--allow-plugins",
                 files={"b_bad.yaml": "seed: -1\n", "c_good.yaml": GOOD})
    assert result.exit_code == 2
    assert result.stdout.splitlines()[-1] == "3 configs: 1 passed, 1 failed, 1 could not be checked"


WARN_PLUGIN = """\
from gradcheck_cli import register


@register("cli_test_almost_identity")
class AlmostIdentity:
    \"\"\"y = x, with a backward off by a relative 1e-8: a small error, but well above the noise.\"\"\"

    def build(self, input_shape, rng):
        self.params = {}
        return tuple(input_shape)

    def forward(self, x):
        return x.copy(), None

    def backward(self, dout, cache):
        return dout * (1 + 1e-8), {}
"""


def test_warnings_pass_unless_strict(run):
    # rel err ~1e-8: above this pass threshold, below the warn one, and 10-100× the noise
    warn = GOOD.replace("loss: mse", "  - {type: cli_test_almost_identity}\nloss: mse\n"
                                     "check: {pass_rtol: 1e-9}")
    result = run("check", "warn.yaml", "--plugin", "almost.py",
                 files={"warn.yaml": warn, "almost.py": WARN_PLUGIN})
    assert result.exit_code == 0, result.output
    assert "passed with warnings" in result.stdout
    strict = run("check", "warn.yaml", "--plugin", "almost.py", "--strict")
    assert strict.exit_code == 1
    assert strict.stdout.splitlines()[-1] == \
        "1 config: 0 passed, 1 with warnings (failures under --strict), 0 failed"


def test_missing_path_is_an_error(run):
    result = run("check", "nope.yaml")
    assert result.exit_code == 2
    assert _error(result) == "nope.yaml: no such file or folder"


def test_folder_without_configs_is_an_error(run, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("check", "empty")
    assert result.exit_code == 2
    assert _error(result) == "empty: no config files (*.yaml, *.yml, *.toml) in this folder"


def test_bad_step_option_is_a_usage_error(run):
    result = run("check", "good.yaml", "--eps", "abc", files={"good.yaml": GOOD})
    assert result.exit_code == 2
    assert "Invalid value for '--eps': expected a number or 'auto', got 'abc'" in result.output


# -- bad specs: exact, located messages, exit 2 ---------------------------------------------------

BAD_SPECS = {
    "unknown top-level key": (
        "bad.yaml", "input: {shape: [3]}\nlayers: [{type: dense, units: 2}]\nloss: mse\nepochs: 3\n",
        "bad.yaml:4:1: epochs: unknown key `epochs`: valid keys: name, seed, dtype, layout, input, "
        "layers, loss, l2, check, plugins"),
    "unknown layer option, with a suggestion": (
        "bad.yaml", "input: {shape: [3]}\nlayers:\n  - {type: dense, units: 2, activaton: relu}\nloss: mse\n",
        "bad.yaml:3:29: layers[0].activaton: unknown key `activaton`: did you mean `activation`? "
        "valid keys: type, units, init, std, activation"),
    "typo of a required option": (
        "bad.yaml", "input: {shape: [3]}\nlayers:\n  - {type: dense, unitz: 2}\nloss: mse\n",
        "bad.yaml:3:19: layers[0].unitz: unknown key `unitz`: did you mean `units`? valid keys: "
        "type, units, init, std, activation"),
    "wrong type (a quoted number)": (
        "bad.yaml", "input: {shape: [3], batch: \"4\"}\nlayers: [{type: dense, units: 2}]\nloss: mse\n",
        "bad.yaml:1:21: input.batch: expected an integer, got a string ('4')"),
    "wrong type of a layer option": (
        "bad.yaml", "input: {shape: [3]}\nlayers:\n  - {type: dense, units: 2.5}\nloss: mse\n",
        "bad.yaml:3:19: layers[0].units: expected an integer, got a number (2.5)"),
    "missing required option": (
        "bad.yaml", "input: {shape: [3]}\nlayers:\n  - {type: dense}\nloss: mse\n",
        "bad.yaml:3:5: layers[0].units: required key is missing: `units` takes int > 0"),
    "out of range": (
        "bad.yaml", "input: {shape: [3], batch: 0}\nlayers: [{type: relu}]\nloss: mse\n",
        "bad.yaml:1:21: input.batch: must be ≥ 1, got 0"),
    "bad dtype": (
        "bad.yaml", "dtype: float16\ninput: {shape: [3]}\nlayers: [{type: relu}]\nloss: mse\n",
        "bad.yaml:1:1: dtype: expected 'float64' or 'float32', got 'float16'"),
    "softmax_cross_entropy after a 1-unit layer": (
        "bad.yaml", "input: {shape: [3]}\nlayers:\n  - {type: dense, units: 1}\nloss: softmax_cross_entropy\n",
        "bad.yaml:4:1: loss: softmax_cross_entropy needs class scores of shape (C,) with C ≥ 2, "
        "got (1,) (the last layer outputs (1,) per example)"),
    "dense after a 3-D input": (
        "bad.yaml", "input: {shape: [2, 3, 4]}\nlayers:\n  - {type: dense, units: 2}\nloss: mse\n",
        "bad.yaml:3:5: layers[0]: dense needs a 1-D input per example, got (2, 3, 4): add a "
        "flatten layer before it"),
    "columns layout with a 2-D input": (
        "bad.yaml", "layout: columns\ninput: {shape: [2, 3]}\nlayers:\n  - {type: relu}\nloss: mse\n",
        "bad.yaml:2:9: input.shape: columns layout holds 1-D feature vectors (x is (n, m)); got "
        "shape [2, 3]: use layout: rows for images and sequences"),
    "loss used as a layer": (
        "bad.yaml", "input: {shape: [3]}\nlayers:\n  - {type: mse}\nloss: mse\n",
        "bad.yaml:3:6: layers[0].type: `mse` is a loss, so it belongs under `loss:`"),
    "duplicate key": (
        "bad.yaml", "input: {shape: [3]}\ninput: {shape: [4]}\nlayers: [{type: relu}]\nloss: mse\n",
        "bad.yaml:2:1: invalid YAML: found duplicate key \"input\" (each key may appear once)"),
    "TOML, wrong type": (
        "bad.toml", '[input]\nshape = [3]\nbatch = "2"\n[[layers]]\ntype = "relu"\n[loss]\ntype = "mse"\n',
        "bad.toml:3:1: input.batch: expected an integer, got a string ('2')"),
    "plugins without --allow-plugins": (
        "bad.yaml", "input: {shape: [3]}\nplugins: [mine.py]\nlayers: [{type: relu}]\nloss: mse\n",
        "bad.yaml:2:1: plugins: this config names plugins, which are Python code; gradcheck runs "
        "them only with --allow-plugins (or name them with --plugin)"),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_bad_spec_gives_exact_located_error_and_exit_2(run, case):
    name, text, expected = BAD_SPECS[case]
    files = {name: text, "mine.py": "raise SystemExit('must not run')\n"}
    result = run("check", name, files=files)
    assert result.exit_code == 2, result.output
    assert _error(result) == expected
    assert result.stdout.splitlines()[-1] == "1 config: 0 passed, 0 failed, 1 could not be checked"
    assert "Traceback" not in result.output + result.stderr


def test_unknown_layer_type_lists_the_valid_ones(run, builtins_only):
    result = run("check", "bad.yaml", files={"bad.yaml": "input: {shape: [3]}\nlayers:\n"
                                                          "  - {type: dense, units: 2}\n  - {type: rellu}\nloss: mse\n"})
    assert result.exit_code == 2
    valid = ", ".join(registered("layer"))
    assert _error(result) == (f"bad.yaml:4:6: layers[1].type: unknown layer type `rellu`: "
                              f"did you mean `relu`? valid types: {valid}")
    assert {"dense", "relu", "sigmoid", "tanh", "softmax"} <= set(valid.split(", "))


def test_unknown_loss_type_lists_the_valid_ones(run, builtins_only):
    result = run("check", "bad.yaml", files={"bad.yaml": "input: {shape: [3]}\nlayers: [{type: relu}]\n"
                                                          "loss: zzz\n"})
    assert result.exit_code == 2
    valid = ", ".join(registered("loss"))
    assert _error(result) == (f"bad.yaml:3:1: loss: unknown loss type `zzz` (a plugin loss? load its "
                              "file: --plugin FILE, or list it under `plugins:` and pass --allow-plugins); "
                              f"valid types: {valid}")


PLUGIN_NET = "input: {shape: [3]}\nlayers: [{type: my_thing}]\nloss: mse\n"


def test_under_pre_commit_the_plugin_hints_name_the_hook_args(run, monkeypatch):
    monkeypatch.setenv("PRE_COMMIT", "1")
    result = run("validate", "bad.yaml", files={"bad.yaml": PLUGIN_NET})
    assert result.exit_code == 2
    assert _error(result).startswith(
        "bad.yaml:2:11: layers[0].type: unknown layer type `my_thing` (a plugin layer? load its file: "
        "add `args: [--plugin, FILE]` to the hook in .pre-commit-config.yaml, or list it under "
        "`plugins:` and add `args: [--allow-plugins]`); valid types: ")
    result = run("check", "net.yaml", files={"net.yaml": PLUGIN_NET + "plugins: [my.py]\n", "my.py": ""})
    assert _error(result) == (
        "net.yaml:4:1: plugins: this config names plugins, which are Python code; gradcheck runs them "
        "only with --allow-plugins: add `args: [--allow-plugins]` to the hook in "
        ".pre-commit-config.yaml (or `args: [--plugin, FILE]`)")


def test_plugin_config_runs_with_allow_plugins_or_plugin(run):
    # a copy registers under its own name: one layer type name belongs to one file
    plugin = (ROOT / "examples" / "plugins" / "my_dense.py").read_text()
    config = (ROOT / "examples" / "plugins" / "my_dense.yaml").read_text()
    files = {"net.yaml": config.replace("my_dense.py", "layers.py").replace("my_dense,", "my_copy,"),
             "layers.py": plugin.replace('"my_dense"', '"my_copy"')}
    refused = run("check", "net.yaml", files=files)
    assert refused.exit_code == 2
    assert run("check", "net.yaml", "--allow-plugins").exit_code == 0
    assert run("check", "net.yaml", "--plugin", "layers.py").exit_code == 0


def test_plugin_layer_option_errors_list_accepted_options(run):
    files = {"net.yaml": "layout: columns\ninput: {shape: [3]}\nlayers:\n"
                         "  - {type: my_dense, units: 2, bias: false}\nloss: mse\n"}
    result = run("check", "net.yaml", "--plugin", str(MY_DENSE), files=files)
    assert result.exit_code == 2
    assert _error(result) == ("net.yaml:4:32: layers[0].bias: unknown key `bias`: valid keys: "
                              "type, units, scale, activation")


def test_plugin_layer_in_the_wrong_layout(run):
    files = {"net.yaml": "input: {shape: [3]}\nlayers:\n  - {type: my_dense, units: 2}\nloss: mse\n"}
    result = run("check", "net.yaml", "--plugin", str(MY_DENSE), files=files)
    assert result.exit_code == 2
    assert _error(result) == "net.yaml:3:5: layers[0]: `my_dense` supports layout columns, not rows"


def test_plugin_file_that_raises_on_import(run):
    result = run("check", "good.yaml", "--plugin", "boom.py",
                 files={"good.yaml": GOOD, "boom.py": "import numpy\n\nraise RuntimeError('no')\n"})
    assert result.exit_code == 2
    assert _error(result) == "boom.py:3: importing the plugin raised RuntimeError: no"


# -- gradcheck layers NAME ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, message", [
    ("dens", "no layer named `dens`: did you mean `dense`?"),
    ("Dense", "no layer named `Dense`: did you mean `dense`?"),
    ("cross", "no layer named `cross`: did you mean `binary_cross_entropy` or "
              "`binary_cross_entropy_with_logits` or `softmax_cross_entropy` or "
              "`temporal_softmax_cross_entropy`?"),
])
def test_layers_with_a_wrong_name_suggests_one(name, message):
    # in a fresh process: other tests register plugin layers (my_dense) in this one
    result = gradcheck("layers", name)
    assert result.returncode == 2
    assert result.stderr == f"error: {message}\n"


def test_layers_with_a_name_like_none_lists_them_all():
    result = gradcheck("layers", "nosuch")
    assert result.returncode == 2
    names = gradcheck("layers").stdout
    assert result.stderr.startswith("error: no layer named `nosuch`; the layers and losses are: "
                                    "attention, avgpool2d, batchnorm, binary_cross_entropy, ")
    listed = result.stderr.strip().split(": ")[-1].split(", ")
    assert len(listed) >= 40 and all(f"{n}" in names for n in listed)
