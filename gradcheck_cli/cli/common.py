"""What every command shares: the exit codes, the consoles, and how errors become exit code 2."""
from __future__ import annotations

import os
import sys

import typer

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def metavars_only() -> None:
    """Help names an argument by its metavar alone: typer also prints the Python type beside it
    (`PATH <list[str]>`), which tells a user of the command nothing."""
    from typer.core import TyperArgument

    if getattr(TyperArgument, "_gradcheck_metavars", False):
        return
    shown = TyperArgument.display_type_rich

    def display_type_rich(self, ctx):
        return None if self.metavar else shown(self, ctx)

    TyperArgument.display_type_rich = display_type_rich
    TyperArgument._gradcheck_metavars = True


def hook_hints() -> dict:
    """Under a pre-commit hook (which sets PRE_COMMIT=1), messages say how to allow plugins in
    the hook's `args:`, not on a command line the user never typed."""
    if os.environ.get("PRE_COMMIT") != "1":
        return {}
    from ..run.pipeline import PRE_COMMIT_HINTS

    return dict(PRE_COMMIT_HINTS)


def consoles():
    """The consoles of stdout (results) and stderr (messages)."""
    from rich.console import Console

    # not a terminal (a CI log, a file): wide enough that no table column is cut
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", 0)) or 160
    # stderr carries messages quoting config text, so "[/red]" in a key must print as written
    return Console(width=width, highlight=False), Console(stderr=True, width=width, highlight=False,
                                                          markup=False)


class error_guard:
    """Turn user-facing errors into one line and exit 2; anything else into a report request."""

    def __init__(self, err, debug: bool) -> None:
        self.err, self.debug = err, debug

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        from ..errors import GradcheckError, error_lines

        if exc is None or isinstance(exc, (typer.Exit, typer.Abort, SystemExit)):
            return False
        if isinstance(exc, KeyboardInterrupt):
            self.err.print("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED)
        if isinstance(exc, GradcheckError):
            self.err.print(error_lines(str(exc)), style="red", soft_wrap=True)
            raise typer.Exit(EXIT_USAGE)
        if self.debug:  # the traceback, and still the documented exit code
            import traceback

            self.err.file.write("".join(traceback.format_exception(kind, exc, tb)))
            self.err.file.flush()
        self.err.print(f"internal error: {type(exc).__name__}: {exc}\n"
                       "This is a bug in gradcheck; please report it with the config and the output "
                       "of the same command with --debug.", style="red", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE)
