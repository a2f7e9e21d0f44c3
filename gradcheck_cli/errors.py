"""One error hierarchy. Every user-facing failure is a GradcheckError; the CLI maps it to exit 2."""
from __future__ import annotations


class GradcheckError(Exception):
    """Base of every error gradcheck reports to a user (exit code 2)."""


class SpecError(GradcheckError):
    """A config file that cannot be read, parsed or validated, located by file, line, column and key path."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 col: int | None = None, key: str | None = None) -> None:
        self.message = message
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
