"""One error hierarchy. Every user-facing failure is a GradcheckError; the CLI maps it to exit 2."""
from __future__ import annotations

import re


#: longest quotation of a user's value in a message: a config may hold a megabyte-long string
QUOTED = 80


def shorten(value: object, limit: int = QUOTED) -> str:
    """A value from a config as a message quotes it: the text of a string, else its repr, cut to
    ``limit`` characters with "…" so that no message echoes unbounded input."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def format_shape(shape) -> str:
    """``(5, 16)``, and ``(5,)`` for one axis, as messages and tables print a shape."""
    return "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def quote(value: object, limit: int = QUOTED) -> str:
    """repr() of a value, cut like ``shorten``."""
    return shorten(repr(value), limit)


class GradcheckError(Exception):
    """Base of every error gradcheck reports to a user (exit code 2)."""


class SpecError(GradcheckError):
    """A config file that cannot be read, parsed or validated, located by file, line, column and key path."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 col: int | None = None, key: str | None = None) -> None:
        # every quoted value is cut where the message is made; this bounds what one missed
        self.message = message if len(message) <= 20 * QUOTED else message[:20 * QUOTED - 1] + "…"
        self.file = file
        self.line = line
        self.col = col
        self.key = key
        super().__init__(self.located())

    def located(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.col is not None:
                    where += f":{self.col}"
            where += ": "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class SpecErrors(SpecError):
    """Every problem found in one config, each located, one per line (up to a cap, then a count)."""

    #: problems shown; beyond them one line says how many more there are
    SHOWN = 10

    def __init__(self, problems: list[SpecError]) -> None:
        assert len(problems) > 1  # one problem is a plain SpecError
        self.problems = problems
        first = problems[0]
        super().__init__(first.message, file=first.file, line=first.line, col=first.col, key=first.key)

    def located(self) -> str:
        lines = [p.located() for p in self.problems[:self.SHOWN]]
        more = len(self.problems) - self.SHOWN
        if more > 0:
            lines.append(f"{self.file + ': ' if self.file else ''}(and {more} more problem{'s' if more > 1 else ''})")
        return "\n".join(lines)


def error_lines(message: str) -> str:
    """``error: `` before a message, and before each further located problem it lists (the lines
    of a SpecErrors), so that every problem reads as a linter's line."""
    lines = message.split("\n")
    return "\n".join(f"error: {line}" if k == 0 or _PROBLEM_LINE.match(line) else line
                     for k, line in enumerate(lines))


#: a line of SpecErrors: file:line[:col]: ..., or file: (and N more problems)
_PROBLEM_LINE = re.compile(r"^\S[^\n]*?(?::\d+){1,2}: |^\S[^\n]*?: \(and \d+ more problem")


def spec_errors(problems: list[SpecError]) -> SpecError:
    """One error for a list of problems (at least one), in the order of their lines."""
    assert problems
    flat = [q for p in problems for q in (p.problems if isinstance(p, SpecErrors) else [p])]
    flat.sort(key=lambda p: (p.line is None, p.line or 0))  # stable: one line keeps its order
    return flat[0] if len(flat) == 1 else SpecErrors(flat)


class PluginError(GradcheckError):
    """A plugin file that cannot be found, imported, or that registers nothing usable."""


class RegistryError(GradcheckError):
    """A layer type registered twice under one name, or a class that does not follow the layer protocol."""


class UsageError(GradcheckError):
    """A command-line argument that cannot be used (missing path, bad option value)."""


class LayerRuntimeError(SpecError):
    """A layer whose build or forward pass raised or returned something unusable, so nothing can be checked."""


class ShapeError(GradcheckError, ValueError):
    """A layer cannot take the input shape it is given; the message says what it needs."""


class CheckTimeout(GradcheckError):
    """A config's check ran longer than its time limit (--timeout)."""
