"""Regenerate the layer reference table in docs/layers.md from the layer registry.

    python benchmarks/layer_reference.py [docs/layers.md]
"""
from __future__ import annotations

import sys
from pathlib import Path

from gradcheck_cli.layers.readme_table import update_readme

if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "docs" / "layers.md"
    print(f"{target}: {'updated' if update_readme(target) else 'already up to date'}")
