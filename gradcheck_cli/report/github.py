"""GitHub Actions workflow commands: ``::error file=…,line=…::message`` on the config line of
each failing layer, so that failures show in the pull request's diff.

Escaping follows the runner's rules: in the message %, CR and LF are percent-encoded; in
property values also ``:`` and ``,``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from .junit import row_message
from ..results import ConfigResult, RunResult, Status
from .categories import category

_LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+)(?::(?P<col>\d+))?: (?P<message>.*)$", re.S)

_LEVEL = {"failure": "error", "error": "error", "warning": "warning", "note": "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(level: str, message: str, **props: object) -> str:
    fields = ",".join(f"{k}={escape_property(str(v))}" for k, v in props.items() if v is not None)
    return f"::{level} {fields}::{escape_data(message)}" if fields else f"::{level}::{escape_data(message)}"


def workspace_path(path: str) -> str:
    """GitHub places annotations by paths relative to the checkout ($GITHUB_WORKSPACE), whatever
    folder gradcheck ran in or however the path was written."""
    root = os.environ.get("GITHUB_WORKSPACE")
    if not root:
        return path
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except (ValueError, OSError):
        return path


def to_github(run: RunResult) -> str:
    lines: list[str] = []
    for config in run.configs:
        lines.extend(config_commands(config, run.strict))
    return "".join(line + "\n" for line in lines)


def config_commands(config: ConfigResult, strict: bool = False) -> list[str]:
    if config.status is Status.ERROR:
        return _error_commands(config)
    out = []
    for row in config.rows:
        # An inherited row is a symptom of the FAIL further on; a notice keeps the diff's error
        # marks on the layer to fix.
        level = "notice" if row.status is Status.INHERITED else _LEVEL.get(category(row.status, strict))
        if level is None:
            continue
        out.append(command(level, row_message(row), file=workspace_path(config.path), line=row.line,
                           title=f"gradcheck {config.name}: {row.status.value}"))
    return out


def _error_commands(config: ConfigResult) -> list[str]:
    """One annotation per problem of an invalid config (a SpecErrors message holds one per line,
    each starting with file:line:col: reuse it); a message without a location is one annotation."""
    message = config.error or "error"
    file = workspace_path(config.path)
    title = f"gradcheck {config.name}: invalid config"
    lines = message.split("\n")
    matches = [_LOCATED.match(line) for line in lines]
    if len(lines) > 1 and not all(m and m["file"] == config.path for m in matches[:-1]):
        matches, lines = [_LOCATED.match(message)], [message]  # one message over several lines
    out = []
    for line, match in zip(lines, matches):
        if match and match["file"] == config.path:
            out.append(command("error", match["message"], file=file, line=match["line"],
                               col=match["col"], title=title))
        else:
            out.append(command("error", line, file=file, title=title))
    return out
