"""Every command example in README.md runs, so the README cannot rot.

The convention, for everyone writing the README:
- Lines that start with "$ " inside ```console blocks are commands. Each runs with bash, from a
  copy of the repository root (so files a command writes never land in the checkout), with the
  installed `gradcheck` on PATH. Lines in the block without "$ " are not run.
- A command must exit 0, unless the line ends with a comment "# exits N" naming its exit code
  (the comment also tells a reader what to expect).
- The first code block of the README (the two install commands at the top) is not a console
  block and is not run. Show other install steps in ```bash blocks, not ```console.
- Commands run in order, each in a fresh shell, in one copy per test session: a later command
  may use a file an earlier one wrote.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
EXPECT = re.compile(r"#\s*exits\s+(\d+)\s*$")
FENCE = re.compile(r"^```(\S*)\s*$")


def console_commands(text: str) -> list[tuple[int, str, int]]:
    """(line number, command, expected exit code) of every "$ " line in ```console blocks."""
    found, language, first_block = [], None, True
    for number, line in enumerate(text.splitlines(), 1):
        fence = FENCE.match(line)
        if fence:
            if language is None:
                language = fence.group(1) or "text"
                if first_block:
                    language, first_block = "skip", False
            else:
                language = None
            continue
        if language == "console" and line.startswith("$ "):
            command = line[2:].strip()
            match = EXPECT.search(command)
            found.append((number, command, int(match.group(1)) if match else 0))
    return found


COMMANDS = console_commands(README.read_text(encoding="utf-8"))


def test_the_convention_finds_commands():
    assert any(cmd.startswith("gradcheck check") for _, cmd, _ in COMMANDS)
    sample = "```\npip install .\n```\n```console\n$ gradcheck layers\n$ false  # exits 1\nout\n```\n"
    assert console_commands(sample) == [(5, "gradcheck layers", 0), (6, "false  # exits 1", 1)]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    copy = tmp_path_factory.mktemp("readme") / "repo"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", "*.egg-info", "build", "dist"))
    return copy


@pytest.mark.parametrize("number, command, expected", COMMANDS,
                         ids=[f"README.md:{n}" for n, _, _ in COMMANDS])
def test_readme_command(workdir, number, command, expected):
    env = {k: v for k, v in os.environ.items()
           if k not in ("GITHUB_ACTIONS", "FORCE_COLOR", "NO_COLOR", "GITHUB_STEP_SUMMARY")}
    # the interpreter running the tests has gradcheck installed: put its scripts first on PATH
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    run = subprocess.run(["bash", "-c", command], cwd=workdir, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == expected, (
        f"README.md:{number}: `{command}` exited {run.returncode}, expected {expected}\n"
        f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}")


def _section(text: str, name: str) -> str:
    start = text.index(f"<!-- section: {name} -->")
    following = text.find("<!-- section: ", start + 1)
    return text[start:following if following != -1 else len(text)]


def test_ci_section_blocks_parse():
    """The workflow, the JSON example, the pytest and pre-commit configs are what they claim."""
    import json

    from ruamel.yaml import YAML

    try:
        import tomllib
    except ImportError:  # Python 3.10: the tomli backport, a dependency there
        import tomli as tomllib

    blocks: dict[str, list[str]] = {}
    language, lines = None, []
    for line in _section(README.read_text(encoding="utf-8"), "ci").splitlines():
        fence = FENCE.match(line)
        if fence and language is None:
            language, lines = fence.group(1), []
        elif fence:
            blocks.setdefault(language, []).append("\n".join(lines))
            language = None
        elif language is not None:
            lines.append(line)
    workflow, *others = [YAML(typ="safe").load(b) for b in blocks["yaml"]]
    steps = workflow["jobs"]["gradcheck"]["steps"]
    assert any("gradcheck check" in step.get("run", "") for step in steps)
    assert any(step.get("uses", "").startswith("actions/upload-artifact") for step in steps)
    assert any("GITHUB_STEP_SUMMARY" in step.get("run", "") for step in steps)
    hooks = [h["id"] for o in others if isinstance(o, dict) and "repos" in o
             for r in o["repos"] for h in r["hooks"]]
    assert hooks == ["gradcheck-validate", "gradcheck-check"]
    doc = json.loads(blocks["json"][0])
    assert doc["schema_version"] == 1
    for block in blocks["toml"]:
        tomllib.loads(block)
    # the example has the fields a real document has (so adding one means documenting it)
    from gradcheck_cli.report import run_to_dict
    from gradcheck_cli.results import RunResult
    from gradcheck_cli.runner import check_file

    real = run_to_dict(RunResult([check_file(ROOT / "configs" / "mlp.yaml")]))
    assert set(doc) == set(real)
    assert set(doc["configs"][0]) == set(real["configs"][0])
    row, real_row = doc["configs"][0]["rows"][0], real["configs"][0]["rows"][0]
    assert set(row) == set(real_row)
    assert set(row["isolated"]) - {"..."} <= set(real_row["isolated"])
