"""The command line: parse options, call the library, render, choose the exit code.

Heavy modules (numpy, pydantic, the layers) are imported inside the commands, so that
``gradcheck --help`` starts fast.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .. import __version__
from .common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, consoles, error_guard, hook_hints, metavars_only
from .options import (AllowConfigsPlugins, AllowPlugins, CheckAllowPlugins, CheckPlugins, Debug,
                      Exclude, Format, Method, Mode, Plugins, SchemaPlugins, Step)

metavars_only()

app = typer.Typer(add_completion=True, no_args_is_help=True, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Check hand-written backpropagation against finite differences, layer by layer.",
                  epilog="Exit codes: 0 all checks passed, 1 a check failed, 2 a usage or config "
                         "error (or an internal error), 130 interrupted. Start with: gradcheck init "
                         "&& gradcheck check mlp.gradcheck.yaml")


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
    paths: List[str] = typer.Argument(..., metavar="PATH", help="Config files, folders (searched for *.yaml, *.yml, "
                                                "*.toml) or glob patterns."),
    plugin: CheckPlugins = [],
    allow_plugins: CheckAllowPlugins = False,
    method: Optional[Method] = typer.Option(None, help="Finite-difference method [default: the "
                                            "config's, else central]."),
    eps: Step = None,
    mode: Optional[Mode] = typer.Option(None, help="Check every entry, a sample of entries per "
                                        "tensor, or random directions per tensor [default: the "
                                        "config's, else full]."),
    samples: Optional[int] = typer.Option(None, min=1, metavar="N", help="Entries per tensor with --mode sample "
                                          "[default: 16]."),
    directions: Optional[int] = typer.Option(None, min=1, metavar="N", help="Directions per tensor with --mode "
                                             "directional [default: 4]."),
    no_shortcuts: bool = typer.Option(False, "--no-shortcuts", help="Evaluate every perturbed copy "
                                      "on its own through the rest of the network: no stacking of "
                                      "copies, sharing across examples, column grouping or "
                                      "factoring through a layer's output. Slower; the verdicts are "
                                      "the same (a way to rule the shortcuts out)."),
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as failures."),
    exclude: Exclude = [],
    fail_fast: bool = typer.Option(False, "--fail-fast", "-x", help="Stop after the first config "
                                   "that fails or cannot be checked."),
    fmt: Optional[Format] = typer.Option(None, "--format", "-f", help="Results format on stdout "
                                         "[default: table]; with --output, the format of output "
                                         "files whose suffix does not name one."),
    output: List[str] = typer.Option([], "--output", "-o", metavar="FILE", help="Also write the "
                                     "results to FILE (repeatable; written whole or not at all). "
                                     "The suffix picks the format: .json, .xml (junit), .md "
                                     "(markdown), .txt (table); else --format."),
    dump: Optional[str] = typer.Option(None, "--dump", metavar="FILE.npz", help="Also write every "
                                       "array checked (inputs, parameters, cotangents, analytic and "
                                       "numeric gradients) to FILE.npz; see `gradcheck show`."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=0, metavar="N", help="Check this many configs at once, in "
                             "separate processes (0: one per CPU). Results keep the input order."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the summary line of each config."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Details for every row."),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", metavar="SIZE", help="Refuse a "
                                             "config's check estimated to need more memory, e.g. "
                                             "512M or 2G [default: half the RAM, shared by --jobs]."),
    max_evals: Optional[int] = typer.Option(None, "--max-evals", min=1, metavar="N", help="Refuse a check "
                                            "estimated to need more function evaluations "
                                            "[default: 10,000,000]."),
    timeout: float = typer.Option(600.0, "--timeout", min=0, metavar="SECONDS", help="Seconds one config's check "
                                  "may take; 0 for no limit."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Check again whenever a config or a "
                               "plugin file changes (clearing the screen; rows whose status "
                               "changed are marked); Ctrl-C stops."),
    debug: Debug = False,
) -> None:
    """Check the gradients of every network in PATHS.

    Results go to stdout, diagnostics to stderr. Exit code 0: all passed, 1: a check failed
    (or warned, with --strict), 2: a usage or config error, 130: interrupted.

    Examples:

      gradcheck check configs/

      gradcheck check my_net.yaml --plugin my_layers.py

      gradcheck check configs/ --jobs 4 --output report.xml --output summary.md

      gradcheck check configs/ --format json > results.json

      gradcheck check my_net.yaml --plugin my_layers.py --watch
    """
    from ..report.formats import output_formats
    from ..results import RunResult
    from ..run.parallel import check_entries, keep_freed_memory, limit_blas_threads
    from .render import CheckView, watch as watch_runs

    limit_blas_threads()  # before numpy loads: the same BLAS threads as --jobs workers
    keep_freed_memory()
    out, err = consoles()
    with error_guard(err, debug):
        outputs = output_formats(output, fmt.value if fmt else None)
        shown = "table" if fmt is None or output else fmt.value
        if watch:
            _watch_alone(paths, exclude, fmt, output, dump, jobs, fail_fast)
        entries = [] if watch else _discover(paths, exclude, plugin)
        workers = jobs or os.cpu_count() or 1
        view = CheckView(out, err, shown, verbose=verbose, quiet=quiet, strict=strict,
                         progress=min(workers, sum(isinstance(e, Path) for e in entries)) == 1)
        options = _run_options(plugin, allow_plugins, workers, max_memory, max_evals, timeout,
                               view.reporter, method=method.value if method else None, eps=eps,
                               mode=mode.value if mode else None, samples=samples,
                               directions=directions, keep_arrays=dump is not None or None,
                               batched=False if no_shortcuts else None)
        if watch:
            watch_runs(out, err, paths, exclude, options, verbose, quiet, strict, debug)
        results, interrupted = view.stream(check_entries(entries, options, workers, debug), fail_fast)
        run = RunResult(results, strict=strict)
        view.finish(run, interrupted, outputs, dump, len(entries))
        raise typer.Exit(EXIT_INTERRUPTED if interrupted else run.exit_code())


def _watch_alone(paths, exclude, fmt, output, dump, jobs, fail_fast) -> None:
    """--watch shows the table alone; a path that names nothing is an error before watching."""
    from ..errors import UsageError
    from ..run.pipeline import discover

    if fmt not in (None, Format.table) or output or dump or jobs != 1 or fail_fast:
        raise UsageError("--watch shows the table: it goes without --format, --output, "
                         "--dump, --jobs and --fail-fast")
    discover(paths, exclude)


def _run_options(plugin, allow_plugins, workers, max_memory, max_evals, timeout, progress, **check):
    from ..check.budget import default_max_memory, parse_size
    from ..run.pipeline import RunOptions

    # configs checked at once share the default; an explicit limit is per config
    memory = parse_size(max_memory) if max_memory is not None else default_max_memory() // workers
    return RunOptions.build(check, plugins=plugin, allow_plugins=allow_plugins, **hook_hints(),
                            max_memory=memory, max_evals=max_evals, timeout=timeout or None,
                            progress=progress, measure_memory=True)


@app.command()
def validate(
    paths: List[str] = typer.Argument(..., metavar="PATH", help="Config files, folders or glob patterns."),
    plugin: Plugins = [],
    allow_plugins: AllowConfigsPlugins = False,
    exclude: Exclude = [],
    debug: Debug = False,
) -> None:
    """Validate schema and shapes only, without any numerics (fast; for pre-commit).

    Example: gradcheck validate configs/
    """
    from ..run.pipeline import RunOptions, validate_entries
    from .render import show_validation

    out, err = consoles()
    with error_guard(err, debug):
        entries = _discover(paths, exclude, plugin)
        options = RunOptions.build(plugins=plugin, allow_plugins=allow_plugins, **hook_hints())
        bad = show_validation(out, err, validate_entries(entries, options), len(entries))
        raise typer.Exit(EXIT_USAGE if bad else EXIT_OK)


def _complete_layer(incomplete: str) -> List[str]:
    from ..layers.catalog import registered

    return [name for name in registered() if name.startswith(incomplete)]


@app.command()
def layers(
    name: Optional[str] = typer.Argument(None, metavar="NAME", autocompletion=_complete_layer,
                                      help="Show one layer in full."),
    plugin: Plugins = [],
    debug: Debug = False,
) -> None:
    """List the registered layers and losses, with their options and shapes.

    Example: gradcheck layers dense
    """
    from ..layers.reference import layer_entries, render_layer
    from ..run.pipeline import load_plugins

    out, err = consoles()
    with error_guard(err, debug):
        load_plugins(plugin)
        render_layer(out, layer_entries(name), full=name is not None)


@app.command()
def schema(
    plugin: SchemaPlugins = [],
    output: Optional[str] = typer.Option(None, "--output", "-o", metavar="FILE",
                                         help="Write the schema to FILE instead of stdout."),
    debug: Debug = False,
) -> None:
    """Print the JSON Schema of config files, for editors to complete and validate them.

    Generated from the validation models and the layer registry (with --plugin layers).

    Examples:

      gradcheck schema > gradcheck.schema.json

      gradcheck schema --plugin my_layers.py --output gradcheck.schema.json
    """
    out, err = consoles()
    with error_guard(err, debug):
        from ..config.schema import schema_text
        from ..run.pipeline import load_plugins

        load_plugins(plugin)
        _write(out, err, output, schema_text())


def _write(out, err, output: Optional[str], text: str) -> None:
    """The text on stdout, or written whole to the file ``output``."""
    if output is None:
        out.file.write(text)
        return
    from ..report.formats import write_atomic

    write_atomic(output, text)
    err.print(f"wrote {output}")


@app.command()
def sweep(
    config: str = typer.Argument(..., metavar="CONFIG", help="One config file."),
    layer: Optional[str] = typer.Option(None, "--layer", "-l", metavar="LABEL", help="Row label (1, 1a, 3.1, loss) "
                                        "[default: the first layer with parameters]."),
    tensor: Optional[str] = typer.Option(None, "--tensor", "-t", metavar="TENSOR", help="x or a parameter name "
                                         "[default: the layer's first parameter, else x]."),
    isolated: bool = typer.Option(False, "--isolated", help="Sweep the isolated check's function "
                                  "⟨forward(x), G⟩ instead of the loss."),
    plot_path: Optional[str] = typer.Option(None, "--plot", metavar="FILE.png", help="Also draw a "
                                            "log-log figure (needs the `plot` extra: matplotlib)."),
    plugin: Plugins = [],
    allow_plugins: AllowPlugins = False,
    debug: Debug = False,
) -> None:
    """Error of each difference method for steps 1e-1 ... 1e-12, and the Taylor test.

    The V-shaped curves show which step resolves a gradient; the Taylor remainder's slope (2 for
    a right gradient, 1 for a wrong one) tells a real bug from rounding noise.

    Examples:

      gradcheck sweep configs/mlp.yaml

      gradcheck sweep configs/mlp.yaml --layer 2 --tensor W --plot sweep.png
    """
    from ..run.pipeline import RunOptions, plan_config

    out, err = consoles()
    with error_guard(err, debug):
        from ..learn.sweep import sweep_plan
        from ..learn.sweep_render import render_sweep

        plan = plan_config(config, RunOptions.build(plugins=plugin, allow_plugins=allow_plugins))
        result = sweep_plan(plan, layer, tensor, isolated)
        render_sweep(out, result)
        if plot_path:
            _plot(err, result, plot_path)


def _plot(err, result, path: str) -> None:
    from ..errors import UsageError
    from ..learn.sweep_render import plot

    try:
        plot(result, path)
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'gradcheck-cli[plot]'") from None
    err.print(f"wrote {path}")


def _template_names() -> List[str]:
    from .templates import TEMPLATES

    return list(TEMPLATES)


def _complete_template(incomplete: str) -> List[str]:
    return [name for name in _template_names() if name.startswith(incomplete)]


@app.command()
def init(
    path: Optional[str] = typer.Argument(None, metavar="FILE", help="Config file to write [default: "
                                         "TEMPLATE.gradcheck.yaml in the current folder]."),
    template: str = typer.Option("mlp", "--template", "-t", metavar="TEMPLATE",
                                 autocompletion=_complete_template, help="One of: "
                                 + ", ".join(_template_names()) + "."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
    debug: Debug = False,
) -> None:
    """Write a starter config that passes (and a plugin skeleton for custom-layer).

    Examples:

      gradcheck init

      gradcheck init --template custom-layer
    """
    from .templates import write_template

    out, err = consoles()
    with error_guard(err, debug):
        targets, command = write_template(template, path, force)
        err.print(f"wrote {', '.join(str(t) for t in targets)}; now run: {command}", soft_wrap=True)


def _discover(paths, exclude, plugins):
    """The entries of PATHS (plugins loaded first): in argument order, the config files and a
    PathProblem for each PATH that names no config, reported in its place (the others are still
    checked)."""
    from ..run.pipeline import discover_entries, load_plugins

    load_plugins(plugins)
    return discover_entries(paths, exclude)


def _register_learner_commands() -> None:
    from .learn import register_commands

    register_commands(app)


_register_learner_commands()


def main() -> None:
    app()
