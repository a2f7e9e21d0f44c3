"""Guards against hostile config files: size, alias expansion ("billion laughs"), absurd nesting
and absurdly long numbers, each refused with a located SpecError before a parser spends time on it.
No numpy here."""
from __future__ import annotations

import re
from typing import Any

from ..errors import SpecError

MAX_NODES = 100_000
MAX_DEPTH = 64
MAX_BYTES = 10 * 1024 * 1024

#: Longest run of digits accepted in a number (Python refuses to convert > 4300 digits anyway).
MAX_DIGITS = 400

_LONG_NUMBER = re.compile(r"[0-9][0-9_]{%d,}" % MAX_DIGITS)


def guard_numbers(text: str, path: str) -> None:
    """Refuse absurdly long numbers before a parser spends time (or fails) converting them."""
    m = _LONG_NUMBER.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
        raise SpecError(f"a number with {len(m.group(0))} digits: numbers in a config may have at "
                        f"most {MAX_DIGITS} digits", file=path, line=line, col=col)


_BLOCK_SCALAR = re.compile(r"(?:^|[:-])[ ]+[|>][-+0-9]*[ ]*(?:#.*)?$")


def guard_nesting(text: str, fmt: str, path: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH in one linear scan, before the parser recurses.

    Counts open flow brackets ([ and {, outside quotes and comments) plus, for YAML, the
    indentation levels and "- " markers of block collections. A crude count suffices: a real
    spec is a few levels deep, and the parsers themselves would recurse thousands of frames
    (slowly, or until RecursionError) on a hostile file.
    """
    flow = 0
    indents: list[int] = []
    block_text = None  # indentation of the key that opened a `|` or `>` block of plain text
    for lineno, line in enumerate(text.split("\n"), start=1):
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        if block_text is not None and (not stripped or indent > block_text):
            continue
        block_text = None
        if fmt != "toml" and flow == 0 and _BLOCK_SCALAR.search(line):
            block_text = indent
        if fmt != "toml" and flow == 0 and stripped and not stripped.startswith("#"):
            while indents and indents[-1] >= indent:
                indents.pop()
            indents.append(indent)
            dashes = len(re.match(r"(?:-[ ]+)*", stripped).group(0).split("-")) - 1
            if len(indents) + dashes > MAX_DEPTH:
                raise SpecError(f"nested more than {MAX_DEPTH} levels deep: a spec needs only a "
                                "few levels", file=path, line=lineno, col=indent + 1)
        quote = ""
        for col, ch in enumerate(line, start=1):
            if quote:
                if ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == "#":
                break
            elif ch in "[{":
                flow += 1
                if flow + len(indents) > MAX_DEPTH:
                    raise SpecError(f"nested more than {MAX_DEPTH} levels deep: a spec needs only "
                                    "a few levels", file=path, line=lineno, col=col)
            elif ch in "]}":
                flow = max(0, flow - 1)


def check_depth(node: Any, depth: int, path: str) -> None:
    """Refuse parsed data nested deeper than MAX_DEPTH (TOML's parser has no such limit)."""
    if depth > MAX_DEPTH:
        raise SpecError(f"nested more than {MAX_DEPTH} levels deep", file=path)
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        check_depth(child, depth + 1, path)
