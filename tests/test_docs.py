"""Every command example of the repository's Markdown files runs as shown, so the docs cannot rot.

The convention is in tests/markdown_blocks.py; the comparison up to rounding in tests/rounding.py.
After a deliberate change of output, refresh the samples (all files, or the ones named):

    python tests/test_docs.py --update [README.md docs/x.md ...]
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest
from markdown_blocks import (ROOT, all_blocks, elided, joined_output, markdown_files, parse, run_block,
                             update_file, workdir)
from rounding import compare

BLOCKS = all_blocks()


def test_the_convention_finds_the_examples():
    assert ROOT / "README.md" in markdown_files()
    assert not [p for p in markdown_files() if ".venv" in p.parts or "site-packages" in p.parts]
    assert any(c.text.startswith("gradcheck check") for b in BLOCKS for c in b.commands)
    sample = ("```\npip install .\n```\n```console\n$ gradcheck layers\n$ false  # exits 1\n```\n\n"
              "```text\nout\n```\n```console\n$ true\nnot a command\n```\n")
    first, second = parse(sample)
    assert [(c.line, c.text, c.exit_code) for c in first.commands] == [
        (5, "gradcheck layers", 0), (6, "false  # exits 1", 1)]
    assert first.sample == "out" and first.problems == []
    assert second.sample is None and second.problems and "line 14" in second.problems[0]


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_command_block_runs_as_shown(block, tmp_path):
    assert not block.problems, f"{block.name}: {block.problems}"
    ran = run_block(block, workdir(tmp_path))
    for r in ran:
        assert r.exit_code == r.command.exit_code, (
            f"{block.path.name}:{r.command.line}: `{r.command.text}` exited {r.exit_code}, "
            f"expected {r.command.exit_code}\n{r.output[-3000:]}")
    output = joined_output(ran)
    if block.sample is None:
        assert output == "", (f"{block.name} prints output but shows none: add a ```text block "
                              f"(python tests/test_docs.py --update)\n{output[:3000]}")
        return
    problems = compare(block.sample, output)
    assert not problems, (f"{block.name}: the sample is not the output (refresh: python "
                          f"tests/test_docs.py --update {block.path.relative_to(ROOT)})\n"
                          + "\n".join(problems) + f"\n--- output ---\n{output}")


def test_elisions_are_kept_where_the_lines_around_them_still_match():
    sample = "head\n...\nerr 1.5e-11\nold line\n...\ntail"
    output = "head\nb\nc\nerr 2.25e-11\nnew line\ne\nf\ntail"
    # the first elision's neighbours are in the output (a number moved): it covers b, c again;
    # the second's neighbour changed: the lines it hid are shown for review
    assert elided(sample, output) == "head\n...\nerr 2.25e-11\nnew line\ne\nf\ntail"
    assert elided("...\nx\n...", "q\nx\nr") == "...\nx\n..."
    assert elided("a\n...", "a\nb\nc") == "a\n..."
    assert elided("a\n...\ngone\nz", "a\nb\nc\nz") == "a\nb\nc\nz"


def test_update_keeps_an_elided_sample_elided(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```console\n$ printf 'one\\ntwo\\nthree\\nfour\\nfive\\n'\n```\n\n"
                    "```text\none\n...\nfour\nsix\n```\n", encoding="utf-8")
    assert update_file(page, tmp_path / "work") == [f"{page}:1"]
    assert page.read_text(encoding="utf-8").endswith("```text\none\n...\nfour\nfive\n```\n")
    assert update_file(page, tmp_path / "work") == []   # and it now matches


def main(argv: list[str]) -> None:
    files = [Path(a).resolve() for a in argv if not a.startswith("-")] or markdown_files()
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            for name in update_file(path, Path(tmp)):
                print(f"updated {name}")


if __name__ == "__main__" and "--update" in sys.argv:
    main(sys.argv[1:])
