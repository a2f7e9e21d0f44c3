"""The layer reference (docs/layers.md) as Markdown, generated from the registry so that it cannot drift.

``python benchmarks/layer_reference.py`` rewrites the block in docs/layers.md; a test checks that
the file holds exactly what ``markdown_reference()`` generates.
"""
from __future__ import annotations

import re
from pathlib import Path

from .reference import LayerDoc, layer_reference

BEGIN = "<!-- begin generated layer reference: python benchmarks/layer_reference.py -->"
END = "<!-- end generated layer reference -->"


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("|", "\\|").strip()


def _options(entry: LayerDoc) -> str:
    if not entry.options:
        return "—"
    return "<br>".join(f"`{o}`: {t}" + ("" if d == "required" else f" = {d}") for o, t, d in entry.options)


def markdown_reference() -> str:
    """A Markdown table of every built-in layer and loss: options, shapes, layouts, formula."""
    lines = ["| type | kind | options | shapes (per example) | layouts | what it computes |",
             "|---|---|---|---|---|---|"]
    for e in layer_reference():
        if e.origin != "built-in":
            continue
        lines.append("| " + " | ".join([f"`{e.name}`", e.kind, _cell(_options(e)), _cell(e.shapes or f"see `gradcheck layers {e.name}`"),
                                        ", ".join(e.layouts), _cell(e.summary)]) + " |")
    return "\n".join(lines)


def generated_block() -> str:
    return f"{BEGIN}\n{markdown_reference()}\n{END}"


def readme_block(readme_text: str) -> str | None:
    """The generated block as it currently stands in a README, or None if it has none."""
    start, end = readme_text.find(BEGIN), readme_text.find(END)
    if start < 0 or end < 0:
        return None
    return readme_text[start: end + len(END)]


def update_readme(path: str | Path) -> bool:
    """Rewrite the generated block in place (inserted under ``<!-- section: layers -->`` the first
    time); return True if the file changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    old = readme_block(text)
    if old is not None:
        new_text = text.replace(old, generated_block())
    else:
        marker = "<!-- section: layers -->\n"
        if marker not in text:
            raise ValueError(f"{path} has no `<!-- section: layers -->` marker")
        new_text = text.replace(marker, marker + "\n" + generated_block() + "\n", 1)
    if new_text != text:
        path.write_text(new_text, encoding="utf-8")
    return new_text != text
