"""The README's learners section runs as shown: every `$ ` command of its ```console blocks is run
from the repository root, with the exit code its `# exits N` comment gives (0 without one), and
the ```text block after it is its output (timings aside).

After a deliberate change of output, refresh the section with
``python tests/test_readme_learners.py --update``.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START, END = "<!-- section: learners -->", "<!-- section: ci -->"
BLOCK = re.compile(r"```console\n(?P<cmds>(?:\$ [^\n]*\n)+)```\n(?:\n```text\n(?P<out>.*?)```\n)?", re.S)
TIMING = re.compile(r"\(\d+\.\d+ s\)")


def section(text: str) -> tuple[int, int]:
    start = text.index(START)
    return start, text.index(END, start)


def blocks(text: str):
    start, end = section(text)
    for match in BLOCK.finditer(text, start, end):
        yield match


def workdir(tmp: Path) -> Path:
    """A folder that sees the repository's examples and configs, for commands that write files."""
    for name in ("examples", "configs"):
        if not (tmp / name).exists():
            (tmp / name).symlink_to(ROOT / name, target_is_directory=True)
    return tmp


def run(command: str, cwd: Path) -> tuple[int, str]:
    argv = shlex.split(command, comments=True)
    assert argv[0] == "gradcheck", command
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR")}
    env["NO_COLOR"] = "1"
    done = subprocess.run([sys.executable, "-m", "gradcheck_cli", *argv[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


def expected_code(command: str) -> int:
    found = re.search(r"#\s*exits (\d+)", command)
    return int(found.group(1)) if found else 0


def normalize(text: str) -> str:
    """Timings aside, and the header of each checked config (its settings line belongs to the
    check command's own documentation): the table, the details and the summaries must match."""
    out, in_header = [], False
    for line in text.strip("\n").splitlines():
        line = TIMING.sub("(… s)", line.rstrip())
        if re.match(r"^\S+\.(ya?ml|toml)  ", line) and " seed " in line:
            out.append("<config header>")
            in_header = True
            continue
        if in_header:
            if not line.lstrip().startswith("#  layer"):
                continue
            in_header = False
        out.append(line)
    return "\n".join(out)


CASES = [(m.group("cmds"), m.group("out")) for m in blocks(README.read_text(encoding="utf-8"))]


def test_section_has_the_tutorial():
    text = README.read_text(encoding="utf-8")
    start, end = section(text)
    body = text[start:end]
    assert "Find the bug in this backprop" in body
    assert len(CASES) >= 6


@pytest.mark.parametrize("cmds,out", CASES, ids=[c.splitlines()[0][2:60] for c, _ in CASES])
def test_command_runs_as_shown(cmds, out, tmp_path):
    outputs = []
    for line in cmds.splitlines():
        command = line[2:]
        code, output = run(command, workdir(tmp_path))
        assert code == expected_code(command), f"{command}\n{output}"
        outputs.append(output)
    if out is not None:
        assert normalize("".join(outputs)) == normalize(out)


def update() -> None:
    import tempfile

    text = README.read_text(encoding="utf-8")
    pieces, last = [], 0
    for match in blocks(text):
        if match.group("out") is None:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            cwd = workdir(Path(tmp))
            outputs = "".join(run(line[2:], cwd)[1] for line in match.group("cmds").splitlines())
        outputs = "\n".join(line.rstrip() for line in outputs.rstrip("\n").splitlines()) + "\n"
        pieces += [text[last:match.start("out")], outputs]
        last = match.end("out")
    pieces.append(text[last:])
    README.write_text("".join(pieces), encoding="utf-8")


if __name__ == "__main__" and "--update" in sys.argv:
    update()
