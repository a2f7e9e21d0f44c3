"""The CI documentation (docs/ci.md) and the README's CI snippets are what they claim; the
README is a short first screen; every Markdown file's relative links resolve.

(Their commands run, and their output is compared, with every other Markdown file's: tests/test_docs.py.)
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CI_DOC = ROOT / "docs" / "ci.md"
FENCE = re.compile(r"^```(\S*)\s*$")


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
    for line in _section(CI_DOC.read_text(encoding="utf-8"), "ci").splitlines():
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
    from gradcheck_cli.report.json_report import run_to_dict
    from gradcheck_cli.results import RunResult
    from gradcheck_cli.run.pipeline import check_file

    real = run_to_dict(RunResult([check_file(ROOT / "configs" / "mlp.yaml")]))
    assert set(doc) == set(real)
    assert set(doc["configs"][0]) == set(real["configs"][0])
    row, real_row = doc["configs"][0]["rows"][0], real["configs"][0]["rows"][0]
    assert set(row) == set(real_row)
    assert set(row["isolated"]) - {"..."} <= set(real_row["isolated"])


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_is_a_short_first_screen_with_the_two_commands_first():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    assert text.split("\n")[2:6] == ["```", "pip install . && gradcheck check configs/",
                                     'pip install ".[test]" && python -m pytest', "```"]
    for heading in ("## A first check", "## A planted bug, found", "## A first spec",
                    "## A first plugin layer, and a bug found in it", "## In CI", "## Exit codes"):
        assert f"\n{heading}\n" in text, heading


def test_readme_ci_snippets_parse():
    from ruamel.yaml import YAML

    workflow, pre_commit = [YAML(typ="safe").load(b) for b in _blocks(README.read_text(encoding="utf-8"), "yaml")
                            if "runs-on" in b or "repos:" in b]
    steps = workflow["jobs"]["gradcheck"]["steps"]
    assert any("gradcheck check" in step.get("run", "") for step in steps)
    hooks = [h["id"] for r in pre_commit["repos"] for h in r["hooks"]]
    assert hooks == ["gradcheck-validate", "gradcheck-check"]
    assert len(pre_commit["repos"][0]["rev"]) == 40  # a commit sha until a release is tagged


def test_relative_links_of_every_markdown_file_resolve():
    """README.md and docs/*.md link each other and the repository's files by relative paths,
    which is what renders as working links on GitHub."""
    files = [README, *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for md in files:
        text = re.sub(r"^```.*?^```", "", md.read_text(encoding="utf-8"), flags=re.S | re.M)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target) or target.startswith("#"):
                continue
            path, _, anchor = target.partition("#")
            resolved = (md.parent / path).resolve()
            if not resolved.exists():
                broken.append(f"{md.relative_to(ROOT)}: {target}")
            elif anchor and resolved.suffix == ".md":
                headings = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                            for h in re.findall(r"^#+ (.*)$", resolved.read_text(encoding="utf-8"), re.M)}
                if anchor not in headings:
                    broken.append(f"{md.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken
