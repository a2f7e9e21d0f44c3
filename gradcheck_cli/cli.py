"""The command line: parse options, call the library, render, choose the exit code.

Heavy modules (numpy, pydantic, the layers) are imported inside the commands, so that
``gradcheck --help`` starts fast.
"""
from __future__ import annotations

import os
import sys
from enum import Enum
from typing import List, Optional

import typer

from . import __version__

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

app = typer.Typer(add_completion=True, no_args_is_help=True, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Check hand-written backpropagation against finite differences, layer by layer.")


class Format(str, Enum):
    table = "table"
    json = "json"


class Method(str, Enum):
    central = "central"
    forward = "forward"


def _consoles():
    from rich.console import Console

    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", 0)) or 120
    return Console(width=width, highlight=False), Console(stderr=True, width=width, highlight=False)


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


def _version(value: bool) -> None:
    if value:
        import numpy

        typer.echo(f"gradcheck {__version__} (numpy {numpy.__version__}, Python {sys.version.split()[0]})")
        raise typer.Exit()


@app.callback()
def main_options(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                              help="Show the version and exit.")) -> None:
    """Check hand-written backpropagation against finite differences, layer by layer.

    Exit codes: 0 all checks pass, 1 a check failed, 2 a usage or config error.
    """


@app.command()
def check(
    paths: List[str] = typer.Argument(..., help="Config files, folders (searched for *.yaml, *.yml, "
                                                "*.toml) or glob patterns."),
    plugin: List[str] = typer.Option([], "--plugin", "-p", help="Python file with layer classes "
                                     "to load (repeatable)."),
    allow_plugins: bool = typer.Option(False, "--allow-plugins", help="Load the plugin files that "
                                       "configs list under `plugins:` (they are code)."),
    method: Optional[Method] = typer.Option(None, help="Finite-difference method [default: the "
                                            "config's, else central]."),
    eps: Optional[str] = typer.Option(None, callback=_eps, help="Step h (relative: h·max(1, |θ|)) "
                                      "or 'auto' [default: the config's, else auto]."),
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as failures."),
    exclude: List[str] = typer.Option([], "--exclude", help="Skip files matching this glob."),
    fail_fast: bool = typer.Option(False, "--fail-fast", "-x", help="Stop after the first config "
                                   "that fails or cannot be checked."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the summary line of each config."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Details for every row."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
) -> None:
    """Check the gradients of every network in PATHS.

    Examples:

      gradcheck check configs/

      gradcheck check my_net.yaml --plugin my_layers.py
    """
    from .results import RunResult, Status
    from .runner import RunOptions, check_file

    out, err = _consoles()
    with _errors(err, debug):
        files = _discover(paths, exclude, plugin)
        options = RunOptions(plugins=plugin, allow_plugins=allow_plugins,
                             method=method.value if method else None, eps=eps)
        results = []
        for path in files:
            result = check_file(path, options)
            results.append(result)
            if fmt is Format.table:
                _show(out, err, result, verbose, quiet)
            if fail_fast and result.status in (Status.FAIL, Status.INHERITED, Status.ERROR):
                break
        run = RunResult(results, strict=strict)
        if fmt is Format.json:
            from .report import to_json

            out.file.write(to_json(run) + "\n")
        else:
            from .render import render_run

            render_run(out, run)
        raise typer.Exit(run.exit_code())


@app.command()
def validate(
    paths: List[str] = typer.Argument(..., help="Config files, folders or glob patterns."),
    plugin: List[str] = typer.Option([], "--plugin", "-p", help="Plugin file to load (repeatable)."),
    allow_plugins: bool = typer.Option(False, "--allow-plugins", help="Load configs' `plugins:`."),
    exclude: List[str] = typer.Option([], "--exclude", help="Skip files matching this glob."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
) -> None:
    """Validate schema and shapes only, without any numerics (fast; for pre-commit).

    Example: gradcheck validate configs/
    """
    from .results import Status
    from .runner import RunOptions, validate_file

    out, err = _consoles()
    with _errors(err, debug):
        files = _discover(paths, exclude, plugin)
        options = RunOptions(plugins=plugin, allow_plugins=allow_plugins)
        bad = 0
        for path in files:
            result = validate_file(path, options)
            if result.status is Status.ERROR:
                bad += 1
                err.print(f"error: {result.error}", style="red", soft_wrap=True)
            else:
                out.print(f"ok  {result.path}  ({result.n_params:,} parameters)", soft_wrap=True)
        out.print(f"{len(files)} config{'s' if len(files) != 1 else ''}: {len(files) - bad} valid, {bad} invalid")
        raise typer.Exit(EXIT_USAGE if bad else EXIT_OK)


@app.command()
def layers(
    name: Optional[str] = typer.Argument(None, help="Show one layer in full."),
    plugin: List[str] = typer.Option([], "--plugin", "-p", help="Plugin file to load (repeatable)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
) -> None:
    """List the registered layers and losses, with their options and shapes.

    Example: gradcheck layers dense
    """
    from .errors import UsageError
    from .layer_docs import layer_reference, render_layer

    out, err = _consoles()
    with _errors(err, debug):
        from .runner import load_plugins

        load_plugins(plugin)
        entries = layer_reference()
        if name is not None:
            match = [e for e in entries if e.name == name]
            if not match:
                import difflib

                close = difflib.get_close_matches(name, [e.name for e in entries], n=1)
                hint = f" did you mean `{close[0]}`?" if close else ""
                raise UsageError(f"no layer named `{name}`.{hint}")
            entries = match
        render_layer(out, entries, full=name is not None)


def _discover(paths, exclude, plugins):
    from .errors import UsageError
    from .runner import discover, load_plugins

    load_plugins(plugins)
    files = discover(paths, exclude)
    if not files:
        raise UsageError(f"no config files (*.yaml, *.yml, *.toml) in {', '.join(paths)}")
    return files


def _show(out, err, result, verbose, quiet):
    from .render import render_config
    from .results import Status

    if result.status is Status.ERROR:
        err.print(f"error: {result.error}", style="red", soft_wrap=True)
        return
    render_config(out, result, verbose=verbose, quiet=quiet)


class _errors:
    """Turn user-facing errors into one line and exit 2; anything else into a report request."""

    def __init__(self, err, debug: bool) -> None:
        self.err, self.debug = err, debug

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        from .errors import GradcheckError

        if exc is None or isinstance(exc, (typer.Exit, typer.Abort, SystemExit)):
            return False
        if isinstance(exc, KeyboardInterrupt):
            self.err.print("interrupted")
            raise typer.Exit(130)
        if isinstance(exc, GradcheckError):
            self.err.print(f"error: {exc}", style="red", soft_wrap=True)
            raise typer.Exit(EXIT_USAGE)
        if self.debug:
            return False
        self.err.print(f"internal error: {type(exc).__name__}: {exc}\n"
                       "This is a bug in gradcheck; please report it with the config and the output "
                       "of the same command with --debug.", style="red", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE)


def main() -> None:
    app()
