"""The package's layout, read from its imports (ast, nothing imported): no module imports another
that imports it back, a stage imports only the stages below it, and no chain of imports inside one
subpackage climbs more than 8 modules. Imports inside functions count: they break no cycle for a
reader, only for the interpreter."""
from __future__ import annotations

import ast
import pathlib
from functools import cache

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "gradcheck_cli"

# The pipeline from the bottom up; a stage may import only stages of a lower rank. The package's own
# __init__ imports nothing at import time (its names load on first use), so it sits at the bottom
# with the errors and results: modules read ``__version__`` from it.
RANKS = {
    "": 0, "errors": 0, "results": 0, "names": 0, "files": 0,
    "layers": 1, "config": 2, "check": 3, "report": 3, "run": 4, "learn": 5,
    "integrations": 6, "cli": 7, "__main__": 8,
}
MAX_LEVELS = 8


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _resolve(dotted: str) -> str | None:
    while dotted not in MODULES:
        if not dotted:
            return None
        dotted = dotted.rpartition(".")[0]
    return dotted


@cache
def imports_of(module: str) -> frozenset[str]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(_resolve(a.name.removeprefix("gradcheck_cli").lstrip("."))
                         for a in node.names if a.name.split(".")[0] == "gradcheck_cli")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "gradcheck_cli":
                target = node.module.removeprefix("gradcheck_cli").lstrip(".")
            else:
                continue
            # ``from pkg import name`` imports the submodule pkg.name when there is one.
            found.update(_resolve(f"{target}.{a.name}".lstrip(".")) for a in node.names)
    found.discard(None)
    found.discard(module)
    return frozenset(found)


def stage(module: str) -> str:
    return module.split(".")[0]


def test_the_modules_are_found():
    assert len(MODULES) > 50
    assert imports_of("check.engine") >= {"check.state", "check.network", "results"}
    assert "check.diagnose" in imports_of("check.judge")  # a subpackage, through its __init__


def test_no_import_cycle():
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            pytest.fail("import cycle: " + " -> ".join(path[path.index(module):] + (module,)))
        if module not in done:
            for target in sorted(imports_of(module)):
                visit(target, path + (module,))
            done.add(module)

    for module in sorted(MODULES):
        visit(module, ())


def test_a_stage_imports_only_the_stages_below_it():
    assert set(map(stage, MODULES)) <= set(RANKS), "a new stage needs its rank here"
    upward = [f"{source} -> {target}" for source in sorted(MODULES) for target in sorted(imports_of(source))
              if stage(source) != stage(target) and RANKS[stage(target)] >= RANKS[stage(source)]]
    assert upward == []


@pytest.mark.parametrize("folder", sorted({stage(m) for m in MODULES if "." in m}))
def test_imports_inside_a_subpackage_climb_at_most_8_levels(folder):
    inside = {m for m in MODULES if stage(m) == folder}

    @cache
    def level(module: str) -> int:
        # A package's __init__ only hands names on: it adds no level of its own.
        own = 0 if MODULES[module].name == "__init__.py" else 1
        return own + max((level(t) for t in imports_of(module) if t in inside), default=0)

    assert max(map(level, inside)) <= MAX_LEVELS
