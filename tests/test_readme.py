"""The README's CI section: its workflow, JSON, pytest and pre-commit blocks are what they claim.

(Its commands run, and their output is compared, with every other Markdown file's: tests/test_docs.py.)
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
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
    from gradcheck_cli.report.json_report import run_to_dict
    from gradcheck_cli.results import RunResult
    from gradcheck_cli.run.pipeline import check_file

    real = run_to_dict(RunResult([check_file(ROOT / "configs" / "mlp.yaml")]))
    assert set(doc) == set(real)
    assert set(doc["configs"][0]) == set(real["configs"][0])
    row, real_row = doc["configs"][0]["rows"][0], real["configs"][0]["rows"][0]
    assert set(row) == set(real_row)
    assert set(row["isolated"]) - {"..."} <= set(real_row["isolated"])
