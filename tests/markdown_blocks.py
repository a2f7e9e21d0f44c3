"""The command examples of the repository's Markdown files: finding them, running them, refreshing
their samples. tests/test_docs.py runs them; `python tests/test_docs.py --update` refreshes.

The convention, for everyone writing a Markdown file in this repository (README.md, docs/*.md, any
other *.md outside virtual environments and build folders):

- A ```console block holds commands only: each line starts with "$ ". Each command runs with
  bash, from a fresh copy of the repository root (one copy per block, so files a block writes
  never land in the checkout and a later command of the same block may use them), with the
  installed `gradcheck` and `python` first on PATH, no color, and a 160-column terminal width.
- A command must exit 0 unless the line ends with a comment "# exits N" naming its exit code.
- The ```text block right after it (blank lines between are allowed) is the output of the
  block's commands, one after the other, each command's stdout then its stderr. A console block
  without one must print nothing.
- The output is compared with the sample as text, line by line, except for timings and for
  numbers at rounding level, which change with the CPU and its BLAS kernel (tests/rounding.py
  says exactly how). A line "..." alone in a sample stands for any number of output lines.
- Show install steps and commands that are not meant to run in ```bash blocks, not ```console.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: folders that are not part of the repository's own documentation
SKIP_DIRS = {".git", ".venv", "venv", "env", "node_modules", "build", "dist", "site",
             "__pycache__", ".pytest_cache", ".hypothesis", ".tox", ".nox", ".mypy_cache"}
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[^\s`]*)\s*$")
EXPECT = re.compile(r"#\s*exits\s+(\d+)\s*$")
WIDTH = 160
ELLIPSIS = "..."


def markdown_files(root: Path = ROOT) -> list[Path]:
    """Every *.md of the repository, sorted, outside virtual environments and build output."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")
                         and not (Path(folder, d) / "pyvenv.cfg").exists())
        found += [Path(folder, f) for f in files if f.endswith(".md")]
    return sorted(found)


@dataclass
class Command:
    line: int          # 1-based line in the Markdown file
    text: str          # without the "$ "
    exit_code: int     # what "# exits N" says, else 0


@dataclass
class Block:
    path: Path
    line: int                                   # the ```console fence
    commands: list[Command] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    end: int = 0                                # the line after the console block's closing fence
    sample: str | None = None                   # the ```text block's content
    sample_span: tuple[int, int] | None = None  # its content's lines, [first, last) 0-based

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path}:{self.line}"


def parse(text: str, path: Path = ROOT / "README.md") -> list[Block]:
    """The ```console blocks of one Markdown text, each with its sample."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        lang, start = fence["lang"], i
        i += 1
        while i < len(lines) and not FENCE.match(lines[i]):
            i += 1
        body = lines[start + 1:i]
        i += 1                                   # past the closing fence
        if lang != "console":
            continue
        block = Block(path, start + 1, end=i)
        indent = fence["indent"]
        for offset, raw in enumerate(body):
            line = raw[len(indent):] if raw.startswith(indent) else raw
            if line.startswith("$ "):
                command = line[2:].strip()
                found = EXPECT.search(command)
                block.commands.append(Command(start + 2 + offset, command,
                                              int(found.group(1)) if found else 0))
            elif line.strip():
                block.problems.append(f"line {start + 2 + offset} is not a `$ ` command: a console "
                                      "block holds commands only; put their output in a ```text "
                                      "block after it")
        j = i
        while j < len(lines) and not lines[j].strip():
            j += 1
        sample = FENCE.match(lines[j]) if j < len(lines) else None
        if sample and sample["lang"] == "text":
            k = j + 1
            while k < len(lines) and not FENCE.match(lines[k]):
                k += 1
            block.sample_span = (j + 1, k)
            block.sample = "\n".join(lines[j + 1:k])
            i = k + 1
        blocks.append(block)
    return blocks


def all_blocks(root: Path = ROOT) -> list[Block]:
    return [b for p in markdown_files(root) for b in parse(p.read_text(encoding="utf-8"), p)]


def workdir(base: Path) -> Path:
    """A fresh copy of the repository, so that files a command writes never land in the checkout."""
    copy = base / "repo"
    shutil.copytree(ROOT, copy, symlinks=True, ignore=lambda folder, names: [
        n for n in names if n in SKIP_DIRS or n.endswith(".egg-info") or n.endswith(".npz")
        or (Path(folder, n) / "pyvenv.cfg").exists()])
    return copy


def environment() -> dict[str, str]:
    """The environment a reader's terminal would have, fixed where output depends on it."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("GITHUB_ACTIONS", "GITHUB_WORKSPACE", "GITHUB_STEP_SUMMARY", "FORCE_COLOR",
                        "LINES", "TERM", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER",
                        "PYTEST_XDIST_WORKER_COUNT", "PYTEST_CURRENT_TEST")}
    env.update(NO_COLOR="1", COLUMNS=str(WIDTH))
    # the interpreter running the tests has gradcheck installed: its scripts go first on PATH
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass
class Ran:
    command: Command
    exit_code: int
    output: str


def run_block(block: Block, cwd: Path, timeout: float = 300) -> list[Ran]:
    env, done = environment(), []
    for command in block.commands:
        run = subprocess.run(["bash", "-c", command.text], cwd=cwd, env=env, capture_output=True,
                             text=True, timeout=timeout)
        done.append(Ran(command, run.returncode, run.stdout + run.stderr))
    return done


def joined_output(ran: list[Ran]) -> str:
    """The block's output as a sample shows it: trailing spaces and blank lines at the end dropped."""
    text = "".join(r.output for r in ran)
    return "\n".join(line.rstrip() for line in text.rstrip("\n").splitlines())


def update_file(path: Path, base: Path, matches=None) -> list[str]:
    """Refresh the samples of one Markdown file from real output; returns what changed.

    A sample that still matches its output (see `rounding.compare`) is left as it is, so that a
    refresh on another machine does not churn rounding-level digits; any other is replaced by the
    output, with each of its "..." elisions kept where the lines around it are still in the
    output (see `elided`)."""
    if matches is None:
        from rounding import compare

        def matches(expected: str, actual: str) -> bool:
            return not compare(expected, actual)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    changes, edits = [], []
    for number, block in enumerate(parse(text, path)):
        cwd = workdir(base / f"b{number}")
        output = joined_output(run_block(block, cwd))
        shutil.rmtree(cwd.parent, ignore_errors=True)
        if block.sample is not None and matches(block.sample, output):
            continue
        if block.sample_span is not None:
            first, last = block.sample_span
            if output:
                shown = elided(block.sample, output) if block.sample is not None else output
                if not matches(shown, output):  # an elision that no longer fits: show it all
                    shown = output
                edits.append((first, last, shown.splitlines()))
            else:                               # drop the whole ```text block and the blank before
                edits.append((block.end, last + 1, []))
        elif output:
            edits.append((block.end, block.end, ["", "```text", *output.splitlines(), "```"]))
        else:
            continue
        changes.append(block.name)
    for first, last, new in sorted(edits, reverse=True):
        lines[first:last] = new
    if changes:
        path.write_text("\n".join(lines) + ("\n" if text.endswith("\n") else ""), encoding="utf-8")
    return changes


#: a number, as rounding and another BLAS kernel change it (digits, sign, exponent, separators)
_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*)?\.?\d+(?:e[-+]?\d+)?", re.IGNORECASE)


def _shape(line: str) -> str:
    """A line with its numbers and spacing masked: what a sample line and its output line share
    when only digits moved (and table columns widened or narrowed with them)."""
    return " ".join(_NUMBER.sub("#", line).split())


def elided(sample: str, output: str) -> str:
    """The output, with every "..." of the sample kept over the output lines it now stands for.

    The sample's other lines are matched to output lines in order (difflib, on lines with their
    numbers masked). An elision whose neighbouring lines (or the start or end of the sample) are
    matched covers the output lines between them; one whose neighbour changed is dropped, so
    that the lines it would hide are shown for review."""
    import difflib

    lines, out = sample.splitlines(), output.splitlines()
    kept = [line for line in lines if line.strip() != ELLIPSIS]
    #: where each elision sits among the kept lines: before kept[k]
    gaps = [sum(1 for other in lines[:i] if other.strip() != ELLIPSIS)
            for i, line in enumerate(lines) if line.strip() == ELLIPSIS]
    at: dict[int, int] = {}
    matcher = difflib.SequenceMatcher(None, [_shape(x) for x in kept], [_shape(x) for x in out],
                                      autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            at[block.a + k] = block.b + k
    at[-1], at[len(kept)] = -1, len(out)
    hidden = []
    for k in gaps:
        before, after = at.get(k - 1), at.get(k)
        if before is not None and after is not None and before < after:
            hidden.append((before + 1, after))
    shown, position = [], 0
    for start, stop in hidden:
        if start < position:        # two elisions with no matched line between them: one will do
            continue
        shown += out[position:start] + [ELLIPSIS]
        position = stop
    return "\n".join(shown + out[position:])
