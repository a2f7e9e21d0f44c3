"""Output formats by name: each turns a RunResult into text. The CLI and the pytest plugin look
formats up here; adding one is one entry, never a branch in the command line."""
from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..results import RunResult


@dataclass(frozen=True)
class Format:
    name: str
    #: render(run, interrupted) -> text; interrupted: the run stopped on Ctrl-C before the end
    render: Callable[[RunResult, bool], str]
    suffixes: tuple[str, ...]


def _table(run: RunResult, interrupted: bool = False) -> str:
    from rich.console import Console

    from ..errors import error_lines
    from .table import render_config, render_run

    buffer = io.StringIO()
    console = Console(file=buffer, width=120, no_color=True, color_system=None, highlight=False,
                      force_terminal=False)
    for config in run.configs:
        if config.error is not None:
            # markup off: messages quote config text, where "[/red]" is just text
            console.print(error_lines(config.error or ""), soft_wrap=True, markup=False)
        else:
            render_config(console, config)
    render_run(console, run)
    if interrupted:
        console.print("interrupted")
    return buffer.getvalue()


def _json(run: RunResult, interrupted: bool = False) -> str:
    from .json_report import to_json

    return to_json(run, interrupted) + "\n"


def _junit(run: RunResult, interrupted: bool = False) -> str:
    from .junit import to_junit

    return to_junit(run)


def _markdown(run: RunResult, interrupted: bool = False) -> str:
    from .markdown import to_markdown

    return to_markdown(run, interrupted)


def _github(run: RunResult, interrupted: bool = False) -> str:
    from .github import to_github

    return to_github(run)


FORMATS: dict[str, Format] = {f.name: f for f in [
    Format("table", _table, (".txt",)),
    Format("json", _json, (".json",)),
    Format("junit", _junit, (".xml",)),
    Format("markdown", _markdown, (".md", ".markdown")),
    Format("github", _github, ()),
]}


def format_for_path(path: str) -> str | None:
    """The format a file name implies by its suffix, or None."""
    suffix = Path(path).suffix.lower()
    for f in FORMATS.values():
        if suffix in f.suffixes:
            return f.name
    return None


def output_formats(outputs: list[str], fmt: str | None) -> list[tuple[str, str]]:
    """(path, format) for each --output, checked before any work is done: the suffix names the
    format, else ``fmt``."""
    from ..errors import UsageError

    chosen = []
    for path in outputs:
        by_suffix = format_for_path(path)
        if by_suffix and fmt not in (None, "table", by_suffix):  # stdout is the table anyway
            raise UsageError(f"--output {path}: the suffix means {by_suffix} but --format says "
                             f"{fmt}; rename the file or drop --format")
        name = by_suffix or fmt
        if name is None:
            raise UsageError(f"--output {path}: cannot tell the format from the suffix; use .json, "
                             ".xml, .md or .txt, or give --format")
        folder = Path(path).parent
        if not folder.is_dir():
            raise UsageError(f"--output {path}: folder {folder} does not exist")
        if Path(path).is_dir():
            raise UsageError(f"--output {path}: is a folder")
        chosen.append((path, name))
    return chosen


def write_atomic(path: str | Path, text: str) -> None:
    """Write text so that readers see the old file or the whole new one, never a part: a temporary
    file in the same folder, flushed to disk, then renamed over the target."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
