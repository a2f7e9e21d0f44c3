"""The command line (cli/app.py): the surface CI users rely on (help with examples on every command,
--version, `python -m gradcheck_cli`, shell completion, the pre-commit hooks), unknown layer and
loss types listed and suggested, plugin hints for each front end, plugin loading,
`gradcheck layers NAME`, --no-shortcuts and -v. The exit codes are tested
in tests/test_cli_common.py, the messages for bad configs in tests/test_config_messages.py."""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from gradcheck_cli import __version__
from gradcheck_cli.cli import app
from gradcheck_cli.layers.catalog import registered

from ci_helpers import FAILING, GOOD, PASSING, PLUGIN, error_of as _error, gradcheck

ROOT = Path(__file__).resolve().parent.parent
MY_DENSE = ROOT / "examples" / "plugins" / "my_dense.py"


# -- the surface: help, version, completion, hooks ---------------------------------------------

COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.stdout, result.stdout


#: what typer prints for a parameter without a metavar: a Python type, not a word for a user
TYPE_NAME = re.compile(r"<(?:list\[.*?\]|str|int|float|bool|path|[a-z]+ range)>|\b(?:list|dict)\[")


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_names_values_by_metavars_not_python_types(command):
    result = CliRunner().invoke(app, [*command.split(), "--help"], terminal_width=100)
    assert result.exit_code == 0
    assert not TYPE_NAME.search(result.stdout), result.stdout
    # every option that takes a value names it: "--eps H", "--jobs N", a list of choices
    for line in result.stdout.splitlines():
        match = re.match(r"\s+(?:-\w, )?(--[\w-]+)(?: (\S+))?", line)
        if match and match[1] not in FLAGS:
            assert match[2] and (match[2][0].isupper() or match[2].startswith("<")), line


#: the options that take no value
FLAGS = {"--allow-plugins", "--strict", "--fail-fast", "--quiet", "--verbose", "--debug", "--help",
         "--version", "--install-completion", "--show-completion", "--force", "--isolated",
         "--jacobian", "--watch", "--no-shortcuts"}


def test_help_of_arguments():
    text = CliRunner().invoke(app, ["check", "--help"], terminal_width=100).stdout
    assert "  PATH  Config files, folders" in text
    text = CliRunner().invoke(app, ["show", "--help"], terminal_width=100).stdout
    assert "show [OPTIONS] {DUMP.npz} [KEY]" in text


def _complete(words: str) -> list[str]:
    """What bash completion offers for the last word of ``words``, through typer's protocol."""
    env = {**os.environ, "_GRADCHECK_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    import subprocess
    import sys

    from pathlib import Path

    # the installed command: completion is keyed on the program's name (_GRADCHECK_COMPLETE)
    script = Path(sys.executable).parent / "gradcheck"
    run = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout.split()


def test_completion_of_template_and_layer_names():
    assert _complete("gradcheck init --template ") == ["mlp", "convnet", "rnn", "custom-layer"]
    assert _complete("gradcheck init -t c") == ["convnet", "custom-layer"]
    offered = _complete("gradcheck layers d")
    assert "dense" in offered and "dropout" in offered
    assert all(name.startswith("d") for name in offered)
    assert _complete("gradcheck layers softmax_c") == ["softmax_cross_entropy"]


def test_main_help_states_the_exit_codes():
    result = CliRunner().invoke(app, ["--help"])
    assert "Exit codes: 0 all checks passed, 1 a check failed, 2 a usage or config" in result.stdout
    assert set(COMMANDS) >= {"check", "validate", "layers", "init", "schema"}


def test_version_and_module_entry_point():
    run = gradcheck("--version")
    assert run.returncode == 0
    assert run.stdout.startswith(f"gradcheck {__version__} (numpy ")


def test_shell_completion_script():
    result = CliRunner().invoke(app, ["--show-completion", "bash"], prog_name="gradcheck")
    assert result.exit_code == 0
    assert "_GRADCHECK_COMPLETE=complete_bash" in result.stdout


# -- pre-commit hooks -------------------------------------------------------------------------------

def test_pre_commit_hooks_run_as_declared(tmp_path):
    hooks = {h["id"]: h for h in YAML(typ="safe").load(ROOT / ".pre-commit-hooks.yaml")}
    assert set(hooks) == {"gradcheck-validate", "gradcheck-check"}
    import re

    for hook in hooks.values():
        assert hook["language"] == "python"
        pattern = re.compile(hook["files"])
        assert pattern.search("nets/mlp.gradcheck.yaml") and pattern.search("a.gradcheck.toml")
        assert not pattern.search(".github/workflows/ci.yml")
    # pre-commit appends the staged file names to the entry
    def run(hook, *files):
        entry = shlex.split(hooks[hook]["entry"])
        assert entry[0] == "gradcheck"
        return gradcheck(*entry[1:], "--plugin", PLUGIN, *files)

    assert run("gradcheck-validate", PASSING, FAILING).returncode == 0
    assert run("gradcheck-check", PASSING).returncode == 0
    assert run("gradcheck-check", PASSING, FAILING).returncode == 1


# -- unknown types, plugins -----------------------------------------------------------------------

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


def _verdicts(result) -> list:
    """Each config's status and each row's status and diagnosis, from check's JSON."""
    import json

    data = json.loads(result.stdout)
    return [(c["path"], c["status"], [(r["label"], r["tensor"], r["status"],
                                       r["isolated"]["diagnosis"],
                                       (r["network"] or {}).get("diagnosis")) for r in c["rows"]])
            for c in data["configs"]]


def test_no_shortcuts_gives_the_same_verdicts_statuses_and_diagnoses(monkeypatch):
    """--no-shortcuts turns every shortcut off (one perturbed copy per call, nothing shared or
    grouped) on the bundled configs and the broken examples, and changes no verdict."""
    import json

    monkeypatch.chdir(ROOT)
    paths = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "configs").iterdir())
             if p.suffix in (".yaml", ".toml") and "lenet" not in p.name]  # lenet: minutes without
    paths += ["examples/broken"]
    on = CliRunner().invoke(app, ["check", *paths, "--allow-plugins", "--format", "json"])
    off = CliRunner().invoke(app, ["check", *paths, "--allow-plugins", "--format", "json",
                                   "--no-shortcuts"])
    assert on.exit_code == off.exit_code == 1, (on.stderr, off.stderr)
    assert _verdicts(on) == _verdicts(off)
    assert len(_verdicts(on)) == len(paths) - 1 + 5
    both = [json.loads(r.stdout)["configs"] for r in (on, off)]
    assert all(c["settings"]["batched"] for c in both[0])
    assert not any(c["settings"]["batched"] for c in both[1])
    # the switch did turn the shortcuts off: one evaluation per probe, where shortcuts share
    assert all(c["evaluations"] == c["probes"] for c in both[1])
    assert sum(c["evaluations"] for c in both[0]) < sum(c["evaluations"] for c in both[1])


def test_verbose_reports_evaluations_per_tensor_against_the_minimum(monkeypatch):
    """-v: per tensor, the evaluations made against the fewest a full check needs (2 per entry,
    central; an input of separable layers per entry of one example). The counts are exact."""
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["check", "configs/mlp.yaml", "-v"])
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("evaluations per tensor"))
    assert lines[start:start + 18] == [
        "evaluations per tensor, made against the minimum a full check needs (the method's "
        "evaluations per entry probed, 2 for central differences; for an input whose layers are "
        "verified to keep examples apart, per entry of one example, every example sharing each "
        "evaluation):",
        "  upstream of the loss           6 made, minimum  6 (1.00×, 3 examples per evaluation)",
        "  upstream of layer 2           30 made, minimum 10 (3.00×, 3 examples per evaluation)",
        "  upstream of layer 1a          30 made, minimum 10 (3.00×, 3 examples per evaluation)",
        "  isolated check, layer 1 x     24 made, minimum  8 (3.00×, 3 examples per evaluation)",
        "  isolated check, layer 1 W     40 made, minimum 40 (1.00×)",
        "  isolated check, layer 1 b     10 made, minimum 10 (1.00×)",
        "  isolated check, layer 1a x    30 made, minimum 10 (3.00×, 3 examples per evaluation)",
        "  isolated check, layer 2 x     30 made, minimum 10 (3.00×, 3 examples per evaluation)",
        "  isolated check, layer 2 W     30 made, minimum 30 (1.00×)",
        "  isolated check, layer 2 b      6 made, minimum  6 (1.00×)",
        "  isolated check, layer loss x   6 made, minimum  6 (1.00×, 3 examples per evaluation)",
        "  end to end, layer 1 x         24 made, minimum  8 (3.00×, 3 examples per evaluation)",
        "  end to end, layer 1 W         40 made, minimum 40 (1.00×)",
        "  end to end, layer 1 b         10 made, minimum 10 (1.00×)",
        "  end to end, layer 2 W         30 made, minimum 30 (1.00×)",
        "  end to end, layer 2 b          6 made, minimum  6 (1.00×)",
        "  all                           352 made, minimum 240 (1.47×)",
    ]
    # the default table is unchanged: no such lines without -v
    quiet = CliRunner().invoke(app, ["check", "configs/mlp.yaml"])
    assert "evaluations per tensor" not in quiet.stderr + quiet.stdout
    # without shortcuts nothing is verified separable: the minimum is 2 per entry of every example
    off = CliRunner().invoke(app, ["check", "configs/mlp.yaml", "-v", "--no-shortcuts"])
    assert "  isolated check, layer 1 x     24 made, minimum 24 (1.00×)" in off.stderr.splitlines()


def _cost_lines(stderr: str) -> list[str]:
    """-v's estimate and per-tensor lines (the measured line holds a time and a rate)."""
    return [line for line in stderr.splitlines() if not line.startswith("measured:")]


def test_verbose_with_a_format_keeps_the_cost_lines_on_stderr_and_puts_the_counts_in_the_json(monkeypatch):
    """-v --format json: stdout holds the document alone; stderr the same cost lines as the table's
    -v; the JSON carries the per-tensor counts, which add up to the evaluations made."""
    import json

    monkeypatch.chdir(ROOT)
    table = CliRunner().invoke(app, ["check", "configs/mlp.yaml", "-v"])
    doc = CliRunner().invoke(app, ["check", "configs/mlp.yaml", "-v", "--format", "json"])
    assert table.exit_code == doc.exit_code == 0, doc.stderr
    config = json.loads(doc.stdout)["configs"][0]
    assert _cost_lines(doc.stderr) == _cost_lines(table.stderr)
    assert any(line.startswith("measured: ") for line in doc.stderr.splitlines())
    by_check = config["evaluations_by_check"]
    assert sum(c["made"] for c in by_check) == config["evaluations"]
    assert {"check": "isolated check, layer 1 W", "made": 40, "minimum": 40,
            "examples_per_call": 1} in by_check
    assert {"check": "isolated check, layer 1 x", "made": 24, "minimum": 8,
            "examples_per_call": 3} in by_check
    lines = doc.stderr.splitlines()
    for c in by_check:
        assert any(line.startswith(f"  {c['check']} ") and f" {c['made']:,} made, minimum" in line
                   for line in lines), c


def test_verbose_counts_the_numeric_gradient_of_a_wrong_shaped_gradient(monkeypatch):
    """A transposed dW gets the numeric gradient (to show the transpose): its evaluations have
    their -v line against the minimum like every other tensor, and the lines add up to the total."""
    import json

    monkeypatch.chdir(ROOT)
    args = ["check", "examples/broken/missing_transpose.yaml", "--allow-plugins", "-v"]
    run = CliRunner().invoke(app, [*args, "--format", "json"])
    assert run.exit_code == 1, run.stderr
    config = json.loads(run.stdout)["configs"][0]
    rows = {(c["check"]): c for c in config["evaluations_by_check"]}
    assert rows["isolated check, layer 2 W"]["minimum"] == 30        # W is (3, 5): 2 per entry
    assert rows["end to end, layer 2 W"]["minimum"] == 30
    assert sum(c["made"] for c in rows.values()) == config["evaluations"]
