"""The exit-code contract and the stream conventions of `gradcheck check`:
0 all pass, 1 a check failed (or warned, under --strict), 2 a usage or config error and also an
internal error (with a "please report" line; the traceback only with --debug), 130 on Ctrl-C after
the summary of what finished. Results on stdout, diagnostics on stderr; colors only on a terminal
(or with FORCE_COLOR), never with NO_COLOR."""
from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ci_helpers import (ANSI, FAILING, GOOD, INVALID, PASSING, PLUGIN, ROOT, WARNING, clean_env,
                        default_ctrl_c, error_of, gradcheck)
from gradcheck_cli.cli import app

@pytest.mark.parametrize("args, code", [
    ([PASSING], 0),
    ([FAILING, "--plugin", PLUGIN], 1),
    ([PASSING, FAILING, "--plugin", PLUGIN], 1),
    ([INVALID], 2),
    ([PASSING, INVALID, FAILING, "--plugin", PLUGIN], 2),
    (["tests/fixtures/ci/no-such-file.yaml"], 2),
    ([PASSING, "--jobs", "-1"], 2),
    ([PASSING, "--format", "yaml"], 2),
    ([PASSING, "--output", "results.unknown"], 2),
    ([PASSING, "--format", "json", "--output", "results.xml"], 2),
    ([PASSING, "--output", "no-such-folder/r.json"], 2),
    ([], 2),
])
def test_exit_code(args, code, monkeypatch):
    if PLUGIN in args:   # a plugin must not register in the test process
        run = gradcheck("check", *args)
        returncode, output = run.returncode, run.stdout + run.stderr
    else:
        monkeypatch.chdir(ROOT)
        result = CliRunner().invoke(app, ["check", *args])
        returncode, output = result.exit_code, result.stdout + result.stderr
    assert returncode == code, output
    assert "Traceback" not in output


def test_usage_errors_say_what_is_wrong():
    run = gradcheck("check", PASSING, "--format", "json", "--output", "results.xml")
    assert run.stderr == ("error: --output results.xml: the suffix means junit but --format says "
                          "json; rename the file or drop --format\n")
    run = gradcheck("check", PASSING, "--output", "results.unknown")
    assert run.stderr == ("error: --output results.unknown: cannot tell the format from the suffix; "
                          "use .json, .xml, .md or .txt, or give --format\n")


def test_warnings_fail_only_under_strict():
    run = gradcheck("check", WARNING, "-q", "--plugin", PLUGIN)
    assert run.returncode == 0 and "passed with warnings" in run.stdout, run.stdout
    assert gradcheck("check", WARNING, "-q", "--plugin", PLUGIN, "--strict").returncode == 1


def test_fail_fast_stops_after_the_first_failure():
    run = gradcheck("check", FAILING, PASSING, "--plugin", PLUGIN, "--fail-fast", "-q")
    assert run.returncode == 1
    lines = run.stdout.splitlines()
    assert lines[0].startswith("tests/fixtures/ci/failing.yaml:6: layer 1 dense_forgot_bias b: FAIL "
                               "rel 1.0e+00 — db is all zeros but the numeric gradient is not")
    assert lines[1:] == ["failing: FAILED — 8 checks: 1 FAIL, 7 pass" + lines[1].split("pass", 1)[1],
                         "1 config: 0 passed, 1 failed"]


# -- internal errors ------------------------------------------------------------------------------

@pytest.fixture
def broken_checker(monkeypatch):
    def boom(path, options=None):
        raise ZeroDivisionError("planted")

    monkeypatch.setattr("gradcheck_cli.run.parallel.check_file", boom)
    monkeypatch.chdir(ROOT)


def test_internal_error_exits_2_with_a_report_line_and_no_traceback(broken_checker):
    result = CliRunner().invoke(app, ["check", PASSING, PASSING.replace("passing", "invalid")])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[:2] == [
        f"error: {PASSING}: internal error: ZeroDivisionError: planted",
        "This is a bug in gradcheck; please report it with the config and the output of the same "
        "command with --debug."]
    assert "Traceback" not in result.stderr
    # one broken config does not stop the others: both are listed
    assert result.stdout.splitlines()[-1] == "2 configs: 0 passed, 0 failed, 2 could not be checked"


def test_internal_error_traceback_with_debug(broken_checker):
    result = CliRunner().invoke(app, ["check", PASSING, "--debug"])
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "ZeroDivisionError: planted" in result.stderr


def test_internal_error_outside_a_config(monkeypatch):
    def boom():
        raise KeyError("planted")

    monkeypatch.setattr("gradcheck_cli.layers.reference.layer_reference", boom)
    result = CliRunner().invoke(app, ["layers"])
    assert result.exit_code == 2
    assert result.stderr.startswith("internal error: KeyError: 'planted'\nThis is a bug in "
                                    "gradcheck; please report it")
    result = CliRunner().invoke(app, ["layers", "--debug"])
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-2] == "internal error: KeyError: 'planted'"


# -- streams and colors ---------------------------------------------------------------------------

def test_results_on_stdout_diagnostics_on_stderr():
    run = gradcheck("check", PASSING, INVALID, "--format", "json")
    doc = json.loads(run.stdout)              # stdout is only the JSON document
    assert [c["status"] for c in doc["configs"]] == ["pass", "error"]
    assert run.stderr == f"error: {INVALID}:5:19: layers[0].units: must be > 0, got 0\n"


COLOR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;[0-9;]+)m")


def _on_a_terminal(*args: str, **env: str) -> str:
    """stdout of gradcheck run with a pseudo-terminal as stdout."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "gradcheck_cli", "check", *args], cwd=ROOT,
                              stdout=follower, stderr=subprocess.PIPE, env=clean_env(**env),
                              timeout=120)
    finally:
        os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:       # the terminal is closed once the child is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.returncode == 1
    return b"".join(chunks).decode()


def test_colors_on_a_terminal_and_no_color_respected():
    args = (FAILING, "--plugin", PLUGIN, "-q")
    assert COLOR.search(_on_a_terminal(*args))
    assert not COLOR.search(_on_a_terminal(*args, NO_COLOR="1"))


def test_no_ansi_when_not_a_terminal_unless_forced():
    args = ("check", FAILING, "--plugin", PLUGIN)
    plain = gradcheck(*args)
    assert ANSI not in plain.stdout + plain.stderr
    forced = gradcheck(*args, env=clean_env(FORCE_COLOR="1"))
    assert COLOR.search(forced.stdout)


# -- Ctrl-C -----------------------------------------------------------------------------------------

# about half a second per config, so that the interrupt lands while configs are still running
SLOW = """\
input: {shape: [120], batch: 8}
layers:
  - {type: dense, units: 120, activation: tanh}
  - {type: dense, units: 120, activation: tanh}
  - {type: dense, units: 4}
loss: mse
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_prints_the_summary_writes_the_output_and_exits_130(tmp_path, jobs):
    configs = tmp_path / "configs"
    configs.mkdir()
    for i in range(60):
        (configs / f"net{i:02d}.yaml").write_text(SLOW)
    proc = subprocess.Popen([sys.executable, "-m", "gradcheck_cli", "check", "configs", "-q",
                             "--jobs", jobs, "--output", "out.json"], cwd=tmp_path,
                            env=clean_env(PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_ctrl_c)
    lines = [proc.stdout.readline() for _ in range(2)]     # two configs finished
    assert all("passed" in ln for ln in lines), lines
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    doc = json.loads((tmp_path / "out.json").read_text())
    finished = len(doc["configs"])
    # the interrupt may land between a config's result and its line: the result still counts
    shown = len(lines) + sum(ln.startswith("net") for ln in out.splitlines())
    assert 2 <= shown <= finished < 60
    assert out.splitlines()[-1] == f"{finished} configs: {finished} passed, 0 failed"
    assert err.splitlines()[-1] == f"interrupted: {finished} of 60 configs finished"
    assert "Traceback" not in err
    assert (doc["interrupted"], doc["exit_code"]) == (True, 130)
    assert [c["path"] for c in doc["configs"]] == [f"configs/net{i:02d}.yaml" for i in range(finished)]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_ctrl_c_during_validate(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    for i in range(2000):
        (configs / f"net{i:04d}.yaml").write_text(SLOW)
    proc = subprocess.Popen([sys.executable, "-m", "gradcheck_cli", "validate", "configs"],
                            cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_ctrl_c)
    assert proc.stdout.readline().startswith("ok  configs/net0000.yaml")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    done = int(err.splitlines()[-1].split()[1])
    assert err.splitlines()[-1] == f"interrupted: {done} of 2000 configs validated"
    assert out.splitlines()[-1] == f"{done} config{'s' * (done != 1)}: {done} valid, 0 invalid"
    assert "Traceback" not in err


# -- exit codes, in a folder of the test's own ----------------------------------------------------------------------------------

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
    assert error_of(result) == "nope.yaml: no such file or folder"


def test_folder_without_configs_is_an_error(run, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("check", "empty")
    assert result.exit_code == 2
    assert error_of(result) == "empty: no config files (*.yaml, *.yml, *.toml) in this folder"


def test_bad_step_option_is_a_usage_error(run):
    result = run("check", "good.yaml", "--eps", "abc", files={"good.yaml": GOOD})
    assert result.exit_code == 2
    assert "Invalid value for '--eps': expected a number or 'auto', got 'abc'" in result.output
