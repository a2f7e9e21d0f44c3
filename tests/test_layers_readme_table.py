"""The layer reference (docs/layers.md) is exactly what the registry generates, so it cannot drift."""
from __future__ import annotations

from pathlib import Path

from gradcheck_cli.layers.readme_table import generated_block, markdown_reference, readme_block, update_readme
from gradcheck_cli.layers.catalog import is_builtin, registered

LAYERS_DOC = Path(__file__).resolve().parent.parent / "docs" / "layers.md"


def test_readme_layer_table_matches_the_registry():
    block = readme_block(LAYERS_DOC.read_text(encoding="utf-8"))
    assert block is not None, "docs/layers.md has no generated layer reference"
    assert block == generated_block(), "run: python benchmarks/layer_reference.py"


def test_table_lists_every_builtin_with_options_and_shapes():
    table = markdown_reference()
    rows = {line.split(" | ")[0].strip("| `"): line for line in table.splitlines()[2:]}
    assert set(rows) == {n for n, c in registered().items() if is_builtin(c)}
    assert "`kernel`: int > 0 \\| list[int > 0]" in rows["conv2d"]
    assert "(C, H, W) → (filters, H', W')" in rows["conv2d"]
    assert "any → same" in rows["relu"]


def test_update_inserts_under_the_marker_then_is_idempotent(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- section: layers -->\nintro\n\n<!-- section: next -->\n", encoding="utf-8")
    assert update_readme(readme)
    text = readme.read_text(encoding="utf-8")
    assert text.index("<!-- section: layers -->") < text.index(generated_block()) < text.index("next")
    assert not update_readme(readme)
