"""Running the installed `gradcheck` on the CI fixtures (tests/fixtures/ci), from the repo root.

Subprocesses, not CliRunner: the failing fixture loads a plugin, and a plugin loaded in the test
process would stay registered for every later test.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path("tests/fixtures/ci")          # relative: paths show in output as written
PASSING = str(FIXTURES / "passing.yaml")
FAILING = str(FIXTURES / "failing.yaml")
INVALID = str(FIXTURES / "invalid.yaml")
WARNING = str(FIXTURES / "warning.yaml")
PLUGIN = str(FIXTURES / "forgot_bias.py")
ANSI = "\x1b["
#: a config that passes, to write into a test's folder
GOOD = """\
input: {shape: [3], batch: 2}
layers:
  - {type: dense, units: 2, activation: tanh}
loss: mse
"""


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GITHUB_ACTIONS", "GITHUB_WORKSPACE", "NO_COLOR", "FORCE_COLOR", "COLUMNS",
                        "TERM")}
    env.update(extra)
    return env


def gradcheck(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT,
              timeout: float = 120) -> subprocess.CompletedProcess:
    """`gradcheck ARGS` (as `python -m gradcheck_cli`, the same entry point) with output captured."""
    return subprocess.run([sys.executable, "-m", "gradcheck_cli", *args], cwd=cwd,
                          env=env or clean_env(), capture_output=True, text=True, timeout=timeout)


def error_of(result) -> str:
    """The one `error: ` line of a CliRunner result, without its prefix."""
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0][len("error: "):]


def default_ctrl_c() -> None:
    """preexec_fn of a child that a test interrupts: Ctrl-C acts as in a terminal even when the
    suite runs with SIGINT ignored (started in the background by a non-interactive shell, or
    under nohup), which the child would inherit, and then rightly keep ignoring."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
