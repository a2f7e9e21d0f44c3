"""The command-line surface CI users rely on: help with examples on every command, --version,
`python -m gradcheck_cli`, shell completion, the pre-commit hooks, atomic --output files."""
from __future__ import annotations

import os
import re
import shlex
import stat

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from ci_helpers import FAILING, PASSING, PLUGIN, ROOT, gradcheck
from gradcheck_cli import __version__
from gradcheck_cli.cli import app
from gradcheck_cli.report.formats import FORMATS, format_for_path, write_atomic

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


# -- output files -----------------------------------------------------------------------------------

def test_formats_by_suffix():
    assert [format_for_path(p) for p in ("a.json", "a.XML", "a.md", "a.txt", "a.out", "a")] == \
        ["json", "junit", "markdown", "table", None, None]
    assert set(FORMATS) == {"table", "json", "junit", "markdown", "github"}


def test_write_atomic_replaces_whole_files_and_keeps_the_mode(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    os.chmod(target, 0o640)
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_write_atomic_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")

    with pytest.raises(TypeError):
        write_atomic(target, 42)  # type: ignore[arg-type]  (write() refuses it midway)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_annotation_levels_follow_the_exit_code():
    from gradcheck_cli.report.github import config_commands
    from gradcheck_cli.results import Comparison, ConfigResult, Row, Status

    def row(label, status):
        return Row(label, 1, "dense", 4, "W", (2, 3), (2, 4), (3, 4),
                   Comparison(status, rel_error=0.5), None, status=status, reason="r")

    config = ConfigResult("n.yaml", "n", Status.FAIL, rows=[
        row("1", Status.INHERITED), row("2", Status.FAIL), row("3", Status.WARN), row("4", Status.PASS),
        row("5", Status.KINK), row("6", Status.SKIPPED)])
    levels = [line.split(" ", 1)[0] for line in config_commands(config)]
    assert levels == ["::notice", "::error", "::warning", "::notice"]
    # --strict fails warnings, as the exit code does, and nothing else
    assert [line.split(" ", 1)[0] for line in config_commands(config, strict=True)] == \
        ["::notice", "::error", "::error", "::notice"]

    import xml.etree.ElementTree as ET

    from gradcheck_cli.report.junit import to_junit
    from gradcheck_cli.results import RunResult

    for strict, failures in ((False, "2"), (True, "3")):
        root = ET.fromstring(to_junit(RunResult([config], strict=strict)))
        assert (root.get("tests"), root.get("failures")) == ("6", failures)
        assert len(root.findall(".//skipped")) == 1


def test_junit_is_well_formed_whatever_a_message_holds():
    import xml.etree.ElementTree as ET

    from gradcheck_cli.report.junit import to_junit
    from gradcheck_cli.results import ConfigResult, RunResult, Status

    config = ConfigResult("n.yaml", "n\x01", Status.ERROR, error="plugin said \x00\x1b[31mno\x07 <&>")
    root = ET.fromstring(to_junit(RunResult([config])))
    assert root.find("testsuite/testcase/error").get("message") == "plugin said \ufffd\ufffd[31mno\ufffd <&>"


def test_table_file_prints_messages_as_written():
    from gradcheck_cli.results import ConfigResult, RunResult, Status

    config = ConfigResult("n.yaml", "n", Status.ERROR, error="n.yaml:1:1: key `[/red]`: unknown")
    text = FORMATS["table"].render(RunResult([config]), False)
    assert text.splitlines()[0] == "error: n.yaml:1:1: key `[/red]`: unknown"


def test_json_writes_nan_and_inf_as_null_and_keeps_the_status():
    import json

    from gradcheck_cli.report.json_report import to_json
    from gradcheck_cli.results import Comparison, ConfigResult, Row, RunResult, Status

    comparison = Comparison(Status.FAIL, rel_error=float("nan"), max_abs_error=float("inf"),
                            reason="numeric gradient is NaN")
    row = Row("1", 1, "dense", 4, "W", (2, 3), (2, 4), (3, 4), comparison, None,
              status=Status.FAIL, reason="numeric gradient is NaN")
    config = ConfigResult("n.yaml", "n", Status.FAIL, rows=[row], seconds=1.5)
    text = to_json(RunResult([config]))
    doc = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    iso = doc["configs"][0]["rows"][0]["isolated"]
    assert (iso["rel_error"], iso["max_abs_error"], iso["status"]) == (None, None, "FAIL")
    assert "seconds" not in doc["configs"][0]


def test_every_problem_of_an_invalid_config_is_its_own_annotation():
    corpus = ROOT / "tests" / "bad_configs"
    run = gradcheck("check", "five_mistakes.yaml", "--format", "github", cwd=corpus)
    assert run.returncode == 2
    lines = run.stdout.splitlines()
    assert [line.split("::")[1] for line in lines] == [
        f"error file=five_mistakes.yaml,line={n},col={c},title=gradcheck five_mistakes%3A invalid config"
        for n, c in [(3, 1), (6, 47), (7, 6), (8, 19), (9, 5)]]
    assert lines[3].endswith("::layers[2].units: must be > 0, got -2")
