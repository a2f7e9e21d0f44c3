"""report/table.py in a terminal of 80 and 120 columns, run in a real pseudo-terminal: columns are left
out or folded by priority, and no number, status or shape is ever cut."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STATUS = r"(pass|warn|FAIL|inherited|kink|skipped)"
NUMBER = re.compile(r"\d\.\de[-+]\d\d|—")
SHAPE = re.compile(r"\((?:\d+,?)*\)(?:≠\((?:\d+,?)*\))?")
CONFIGS = ["configs/course_columns.yaml", "configs/lenet.yaml", "configs/transformer_block.yaml",
           "examples/broken/missing_transpose.yaml", "examples/broken/sign_error.yaml"]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "GITHUB_ACTIONS")}
    env.update(NO_COLOR="1", TERM="xterm", **extra)
    return env


def in_terminal(args: list[str], columns: int, rows: int = 50) -> str:
    """The command's output in a pseudo-terminal of this size, escape codes removed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "gradcheck_cli", *args], cwd=ROOT, env=_env(),
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        proc.wait(timeout=60)
    text = ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")
    # a progress bar (a slow machine) redraws its line after "\r": keep what the terminal shows
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def piped(args: list[str], columns: int | None = None) -> str:
    env = _env(**({"COLUMNS": str(columns)} if columns else {}))
    return subprocess.run([sys.executable, "-m", "gradcheck_cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120).stdout


def table_rows(text: str) -> list[str]:
    """The lines of the table that end with a status (a folded layer name adds lines without)."""
    return [line.rstrip() for line in text.splitlines() if re.search(rf"\s{STATUS}\s*$", line)]


@pytest.fixture(scope="module")
def wide():
    return piped(["check", *CONFIGS, "--allow-plugins"], columns=250)


@pytest.mark.parametrize("columns", [80, 120])
def test_no_cell_is_cut(wide, columns):
    narrow = in_terminal(["check", *CONFIGS, "--allow-plugins"], columns)
    lines = narrow.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= columns, narrow
    wide_rows, narrow_rows = table_rows(wide), table_rows(narrow)
    assert len(narrow_rows) == len(wide_rows) == 95
    for w, n in zip(wide_rows, narrow_rows):
        assert n.split()[-1] == w.split()[-1]  # the status
        numbers = NUMBER.findall(w)
        assert len(numbers) == 4  # layer err, noise, net err, max abs
        kept = NUMBER.findall(n)
        assert kept == numbers[:len(kept)] and len(kept) >= 3, (w, n)
        shape, grad = SHAPE.findall(re.sub(r"\S+→\S+", "", w))[:2]  # in → out aside
        assert re.search(rf"\s{re.escape(shape)}(\s|≠)", n) and grad in n, (w, n)
    # the header's fields never break in the middle
    for field in ("batch m = 8", "193 parameters", "h = 6.1e-06·max(1, |θ|)", "columns layout"):
        assert field in narrow


def test_80_columns_leave_out_the_repeating_columns():
    text = in_terminal(["check", "configs/course_columns.yaml"], 80)
    assert "   # layer                line tensor shape  layer err   noise net err status" in text
    # the errors are rounding-level (at the noise): their digits depend on the BLAS kernel
    assert re.search(r"loss binary_cross_entropy   12 x      \(1,8\)    \d\.\de-\d\d \d\.\de-\d\d "
                     r"\d\.\de-\d\d pass", text), text
    assert "(max abs and in → out left out to fit 80 columns)" in text
    # a gradient of the wrong shape stays visible when the grad column is merged into shape
    text = in_terminal(["check", "examples/broken/missing_transpose.yaml", "--allow-plugins"], 80)
    # rounding-level figures (any e-10 or smaller): their last digits depend on evaluation order
    assert re.search(r" W +\(3,5\)≠\(5,3\) +\d\.\de-1\d +— +\d\.\de-1\d +FAIL", text), text


def test_120_columns_keep_in_out_whole():
    text = in_terminal(["check", "configs/lenet.yaml"], 120)
    for io in ("(1,1,28,28)→(1,3,24,24)", "(1,3,24,24)→(1,3,12,12)", "(1,4,4,4)→(1,64)"):
        assert io in text
    assert "(max abs left out to fit 120 columns)" in text


def test_a_wide_terminal_shows_every_column():
    text = in_terminal(["check", "configs/course_columns.yaml"], 160)
    assert ("   #  layer                 line  tensor  in → out      shape   grad    layer err    "
            "noise  net err  max abs  status") in text
    assert "left out" not in text


def test_piped_header_wraps_between_fields():
    text = piped(["check", "configs/course_columns.yaml"], columns=80)
    assert text.splitlines()[:2] == [
        "configs/course_columns.yaml  course-4-layer · seed 1 · float64 · columns layout",
        "· central differences, h = 6.1e-06·max(1, |θ|) · 193 parameters · batch m = 8"]
    # without COLUMNS a pipe is 160 wide: a long header breaks before a field, not inside it
    text = piped(["check", "configs/transformer_block.yaml"])
    assert text.splitlines()[1] == "· batch m = 2"


def test_quiet_gives_each_failing_row_one_located_line():
    text = piped(["check", "--quiet", "--allow-plugins", "examples/broken/sign_error.yaml",
                  "configs/mlp.yaml"])
    lines = text.splitlines()
    assert lines[0].startswith(
        "examples/broken/sign_error.yaml:10: layer 2 leaky_relu_sign_error x: FAIL rel 1.7e-01 — "
        "right only where the activation is active (Z > 0): wrong at the 9 entries where Z ≤ 0")
    because = "right in isolation; wrong end to end because layer 2 (leaky_relu_sign_error) returns a wrong dx"
    assert lines[1:4] == [
        f"examples/broken/sign_error.yaml:9: layer 1 dense x: inherited rel 1.0e-01 end to end — {because}",
        f"examples/broken/sign_error.yaml:9: layer 1 dense W: inherited rel 1.1e-01 end to end — {because}",
        f"examples/broken/sign_error.yaml:9: layer 1 dense b: inherited rel 1.4e-01 end to end — {because}"]
    assert re.fullmatch(r"sign-error: FAILED — 9 checks: 1 FAIL, 3 inherited, 5 pass \(\d+\.\d\d s\)", lines[4])
    # a passing config keeps its one summary line
    assert re.fullmatch(r"tiny-mlp: passed — 8 checks: 8 pass \(\d+\.\d\d s\)", lines[5])
    assert lines[6:] == ["2 configs: 1 passed, 1 failed"]


def test_quiet_names_the_loss_row():
    text = piped(["check", "-q", "--allow-plugins", "examples/broken/missing_mean.yaml"])
    assert text.startswith("examples/broken/missing_mean.yaml:11: loss cross_entropy_missing_mean x: "
                           "FAIL rel 6.7e-01 — missing 1/m (analytic = m·numeric, m = 5)")
    # an input row checked only in isolation has no end-to-end error to show
    assert ("examples/broken/missing_mean.yaml:9: layer 1a tanh x: inherited — right in isolation; "
            "its end-to-end dL/dx is wrong because the loss") in text
