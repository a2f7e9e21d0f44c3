"""The options and arguments the commands share, each declared once as a typer ``Annotated``
alias (a command's signature says ``plugin: Plugins = []``), and the choices they offer, read
from gradcheck_cli/names.py and the format registry."""
from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, List, Optional

import typer

from ..names import EXPLAIN_FORMATS, METHODS, MODES
from ..report.formats import FORMATS


def _choices(name: str, values) -> Any:
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[misc]


#: --format of check: the format registry's names (report/formats.py imports no numpy)
Format = _choices("Format", FORMATS)
Method = _choices("Method", METHODS)
Mode = _choices("Mode", MODES)
ExplainFormat = _choices("ExplainFormat", EXPLAIN_FORMATS)


def _eps(value: Optional[str]) -> Optional[object]:
    if value is None or value == "auto":
        return value
    try:
        eps = float(value)
    except ValueError:
        raise typer.BadParameter(f"expected a number or 'auto', got {value!r}") from None
    if not (0 < eps <= 1):
        raise typer.BadParameter(f"the step must be in (0, 1], got {value}")
    return eps


def _plugins(help: str) -> Any:
    return Annotated[List[str], typer.Option("--plugin", "-p", metavar="FILE", help=help)]


def _allow_plugins(help: str) -> Any:
    return Annotated[bool, typer.Option("--allow-plugins", help=help)]


Plugins = _plugins("Plugin file to load (repeatable).")
CheckPlugins = _plugins("Python file with layer classes to load (repeatable).")
SchemaPlugins = _plugins("Plugin file whose layers the schema should include (repeatable).")

AllowPlugins = _allow_plugins("Load the config's `plugins:`.")
AllowConfigsPlugins = _allow_plugins("Load configs' `plugins:`.")
CheckAllowPlugins = _allow_plugins("Load the plugin files that configs list under `plugins:` (they "
                                   "are code).")

Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")]
Exclude = Annotated[List[str], typer.Option("--exclude", metavar="GLOB",
                                            help="Skip files matching this glob.")]
Step = Annotated[Optional[str], typer.Option(callback=_eps, metavar="H", help="Step h (relative: "
                                              "h·max(1, |θ|)) or 'auto' [default: the config's, "
                                              "else auto].")]
