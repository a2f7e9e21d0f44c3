"""The reader's guards against hostile files: bounded memory and work, and no false alarms."""
from __future__ import annotations

import tracemalloc

import pytest

from gradcheck_cli.errors import SpecError
from gradcheck_cli.config.document import parse_text
from gradcheck_cli.config.guards import MAX_DEPTH, MAX_NODES

BASE = "input: {shape: [4], batch: 2}\nlayers:\n  - {type: dense, units: 3}\nloss: mse\n"


def _laughs(levels: int) -> str:
    text, prev = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n", "a"
    for i in range(1, levels):
        name = f"n{i}"
        text += f"{name}: &{name} [" + ", ".join(["*" + prev] * 9) + "]\n"
        prev = name
    return text + BASE


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("levels", [6, 9, 30])
def test_billion_laughs_is_refused_with_bounded_memory(levels):
    def load():
        with pytest.raises(SpecError, match=f"expands to more than {MAX_NODES:,} values"):
            parse_text(_laughs(levels), "yaml", "laughs.yaml")

    # 9**30 values if expanded; the refusal stays within a few megabytes whatever the depth
    assert _peak(load) < 8 * 1024**2


def test_aliases_that_do_not_multiply_are_fine():
    text = ("input: {shape: [4], batch: 2}\nlayers:\n  - &d {type: dense, units: 4, activation: tanh}\n"
            "  - *d\n  - *d\nloss: mse\n")
    doc = parse_text(text, "yaml", "alias.yaml")
    assert doc.data["layers"] == [{"type": "dense", "units": 4, "activation": "tanh"}] * 3


@pytest.mark.parametrize("fmt,text", [
    ("yaml", "x: " + "[" * 100_000 + "]" * 100_000 + "\n"),
    ("yaml", "x: " + "{a: " * 50_000 + "1" + "}" * 50_000 + "\n"),
    ("yaml", "".join("  " * i + f"k{i}:\n" for i in range(3000)) + "  " * 3000 + "v: 1\n"),
    ("yaml", "x:\n" + "".join("  " * i + "- \n" for i in range(1, 3000))),
    ("toml", "x = " + "[" * 100_000 + "]" * 100_000 + "\n"),
    ("toml", "x = " + "{a = " * 50_000 + "1" + "}" * 50_000 + "\n"),
])
def test_deep_nesting_is_refused_by_the_prescan_with_bounded_memory(fmt, text):
    def load():
        with pytest.raises(SpecError, match=f"nested more than {MAX_DEPTH} levels deep"):
            parse_text(text, fmt, f"deep.{fmt}")

    assert _peak(load) < 16 * 1024**2


@pytest.mark.parametrize("extra", [
    'name: "' + "[" * 200 + '"\n',
    "name: '" + "{" * 200 + "'\n",
    "# " + "[" * 200 + "\n",
    "name: |\n  " + "[" * 200 + "\n",
])
def test_brackets_in_strings_comments_and_block_text_are_not_nesting(extra):
    doc = parse_text(extra + BASE, "yaml", "ok.yaml")
    assert doc.data["loss"] == "mse"


def test_nesting_up_to_the_limit_is_read():
    depth = MAX_DEPTH - 4
    doc = parse_text(BASE + "name: x\n" + "l2: 0\n" + "check: {}\n", "yaml", "ok.yaml")
    assert doc.data["check"] == {}
    deep = parse_text("x: " + "[" * depth + "]" * depth + "\n" + BASE, "yaml", "ok.yaml")
    assert "x" in deep.data


def test_long_numbers_are_refused_before_conversion():
    with pytest.raises(SpecError, match="a number with 100000 digits"):
        parse_text(BASE + "seed: " + "1" * 100_000 + "\n", "yaml", "n.yaml")
    with pytest.raises(SpecError, match="a number with 100000 digits"):
        parse_text('loss = "mse"\nseed = ' + "1" * 100_000 + "\n", "toml", "n.toml")
