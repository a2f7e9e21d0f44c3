"""The command line: parse options, call the library, render, choose the exit code.

Heavy modules (numpy, pydantic, the layers) are imported inside the commands, so that
``gradcheck --help`` starts fast.
"""
from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from .. import __version__
from ..report.formats import FORMATS

from .common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, _consoles, _errors, hook_hints, metavars_only
from ..errors import error_lines

metavars_only()

app = typer.Typer(add_completion=True, no_args_is_help=True, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Check hand-written backpropagation against finite differences, layer by layer.",
                  epilog="Exit codes: 0 all checks passed, 1 a check failed, 2 a usage or config "
                         "error (or an internal error), 130 interrupted. Start with: gradcheck init "
                         "&& gradcheck check mlp.gradcheck.yaml")


#: --format choices, from the format registry (report/formats.py imports no numpy).
Format = Enum("Format", {name: name for name in FORMATS}, type=str)  # type: ignore[misc]


class Method(str, Enum):
    central = "central"
    forward = "forward"
    richardson = "richardson"
    complex = "complex"


class Mode(str, Enum):
    full = "full"
    sample = "sample"
    directional = "directional"


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
    paths: List[str] = typer.Argument(..., metavar="PATH", help="Config files, folders (searched for *.yaml, *.yml, "
                                                "*.toml) or glob patterns."),
    plugin: List[str] = typer.Option([], "--plugin", "-p", metavar="FILE", help="Python file with layer classes "
                                     "to load (repeatable)."),
    allow_plugins: bool = typer.Option(False, "--allow-plugins", help="Load the plugin files that "
                                       "configs list under `plugins:` (they are code)."),
    method: Optional[Method] = typer.Option(None, help="Finite-difference method [default: the "
                                            "config's, else central]."),
    eps: Optional[str] = typer.Option(None, callback=_eps, metavar="H", help="Step h (relative: h·max(1, |θ|)) "
                                      "or 'auto' [default: the config's, else auto]."),
    mode: Optional[Mode] = typer.Option(None, help="Check every entry, a sample of entries per "
                                        "tensor, or random directions per tensor [default: the "
                                        "config's, else full]."),
    samples: Optional[int] = typer.Option(None, min=1, metavar="N", help="Entries per tensor with --mode sample "
                                          "[default: 16]."),
    directions: Optional[int] = typer.Option(None, min=1, metavar="N", help="Directions per tensor with --mode "
                                             "directional [default: 4]."),
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as failures."),
    exclude: List[str] = typer.Option([], "--exclude", metavar="GLOB", help="Skip files matching this glob."),
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
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
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
    from contextlib import closing

    from ..report.formats import write_atomic
    from ..run.parallel import check_files, keep_freed_memory, limit_blas_threads
    from ..results import RunResult
    from ..run.pipeline import RunOptions
    from ..report.categories import category

    limit_blas_threads()  # before numpy loads: the same BLAS threads as --jobs workers
    keep_freed_memory()
    out, err = _consoles()
    with _errors(err, debug):
        outputs = _output_formats(output, fmt.value if fmt else None)
        shown = "table" if fmt is None or output else fmt.value
        if watch:
            if fmt not in (None, Format.table) or output or dump or jobs != 1 or fail_fast:
                from ..errors import UsageError

                raise UsageError("--watch shows the table: it goes without --format, --output, "
                                 "--dump, --jobs and --fail-fast")
            from ..run.pipeline import discover

            discover(paths, exclude)  # a path that names nothing is an error before watching
        files, entries = ([], []) if watch else _discover(paths, exclude, plugin)
        from ..check.budget import default_max_memory, parse_size

        workers = jobs or os.cpu_count() or 1
        reporter = None
        if not watch and shown == "table" and err.is_terminal and min(workers, len(files)) == 1:
            from ..run.progress import ProgressReporter

            reporter = ProgressReporter(err)
        options = RunOptions.build(
            check=dict(method=method.value if method else None, eps=eps, mode=mode.value if mode else None,
                       samples=samples, directions=directions, keep_arrays=dump is not None or None),
            plugins=plugin, allow_plugins=allow_plugins, **hook_hints(),
            # configs checked at once share the default; an explicit limit is per config
            max_memory=(parse_size(max_memory) if max_memory is not None else
                        default_max_memory() // max(1, jobs or os.cpu_count() or 1)),
            max_evals=max_evals, timeout=timeout or None, progress=reporter)
        if watch:
            _watch(out, err, paths, exclude, options, verbose, quiet, strict, debug)
        # In a GitHub Actions job the table gains annotations on the failing config lines.
        annotate = shown == "table" and os.environ.get("GITHUB_ACTIONS") == "true"
        results, interrupted = [], False
        try:
            with closing(check_files(files, options, workers, debug)) as stream:
                for result in _in_place(entries, stream):
                    results.append(result)
                    if reporter is not None:
                        reporter.stop()
                    if shown == "table":
                        _show(out, err, result, verbose, quiet, annotate, strict)
                    elif result.error is not None:  # stdout holds only the document
                        err.print(error_lines(result.error), style="red", soft_wrap=True)
                    if fail_fast and category(result.status, strict) in ("failure", "error"):
                        break
        except KeyboardInterrupt:
            interrupted = True
            if reporter is not None:
                reporter.stop()
            # Fresh consoles: an interrupt inside a print leaves rich's buffer full, and the old
            # console would print that text a second time.
            out, err = _consoles()
        run = RunResult(results, strict=strict)
        if shown == "table":
            from ..report.table import render_run

            render_run(out, run)
        else:
            out.file.write(FORMATS[shown].render(run, interrupted))
            out.file.flush()
        for path, name in outputs:
            write_atomic(path, FORMATS[name].render(run, interrupted))
        if dump is not None:
            from ..learn.dump import write_dump

            write_dump(dump, results)
        if interrupted:
            err.print(f"interrupted: {len(results)} of {len(entries)} configs finished", style="red")
            raise typer.Exit(EXIT_INTERRUPTED)
        raise typer.Exit(run.exit_code())


def _output_formats(outputs: List[str], fmt: Optional[str]) -> list:
    """(path, format) for each --output, checked before any work is done."""
    from pathlib import Path

    from ..errors import UsageError
    from ..report.formats import format_for_path

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


@app.command()
def validate(
    paths: List[str] = typer.Argument(..., metavar="PATH", help="Config files, folders or glob patterns."),
    plugin: List[str] = typer.Option([], "--plugin", "-p", metavar="FILE", help="Plugin file to load (repeatable)."),
    allow_plugins: bool = typer.Option(False, "--allow-plugins", help="Load configs' `plugins:`."),
    exclude: List[str] = typer.Option([], "--exclude", metavar="GLOB", help="Skip files matching this glob."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
) -> None:
    """Validate schema and shapes only, without any numerics (fast; for pre-commit).

    Example: gradcheck validate configs/
    """
    from ..results import Status
    from ..run.pipeline import RunOptions, validate_file

    out, err = _consoles()
    with _errors(err, debug):
        _, entries = _discover(paths, exclude, plugin)
        options = RunOptions(plugins=plugin, allow_plugins=allow_plugins, **hook_hints())
        bad = done = 0
        try:
            for entry in entries:
                result = entry.result() if not isinstance(entry, Path) else validate_file(entry, options)
                done += 1
                if result.status is Status.ERROR:
                    bad += 1
                    err.print(error_lines(result.error), style="red", soft_wrap=True)
                    if os.environ.get("GITHUB_ACTIONS") == "true":  # marked on the line in the PR
                        from ..report.github import config_commands

                        out.file.write("".join(line + "\n" for line in config_commands(result)))
                        out.file.flush()
                else:
                    out.print(f"ok  {result.path}  ({result.n_params:,} parameters)", soft_wrap=True)
        except KeyboardInterrupt:
            out, err = _consoles()  # as in check: a print cut short leaves rich's buffer full
            out.print(f"{done} config{'s' if done != 1 else ''}: {done - bad} valid, {bad} invalid")
            err.print(f"interrupted: {done} of {len(entries)} configs validated", style="red")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        out.print(f"{len(entries)} config{'s' if len(entries) != 1 else ''}: {len(entries) - bad} valid, {bad} invalid")
        raise typer.Exit(EXIT_USAGE if bad else EXIT_OK)


def _complete_layer(incomplete: str) -> List[str]:
    from ..layers.catalog import registered

    return [name for name in registered() if name.startswith(incomplete)]


@app.command()
def layers(
    name: Optional[str] = typer.Argument(None, metavar="NAME", autocompletion=_complete_layer,
                                      help="Show one layer in full."),
    plugin: List[str] = typer.Option([], "--plugin", "-p", metavar="FILE", help="Plugin file to load (repeatable)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
) -> None:
    """List the registered layers and losses, with their options and shapes.

    Example: gradcheck layers dense
    """
    from ..errors import UsageError
    from ..layers.reference import layer_reference, render_layer

    out, err = _consoles()
    with _errors(err, debug):
        from ..run.pipeline import load_plugins

        load_plugins(plugin)
        entries = layer_reference()
        if name is not None:
            match = [e for e in entries if e.name == name]
            if not match:
                raise UsageError(_no_such_layer(name, [e.name for e in entries]))
            entries = match
        render_layer(out, entries, full=name is not None)


def _no_such_layer(name: str, names: list[str]) -> str:
    """Did-you-mean by spelling (`dens`), else by a part of a name (`cross` → the cross-entropies),
    else every name: a user who typed a wrong name always learns a right one."""
    import difflib

    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    close = close or [n for n in names if name.lower() in n][:5]
    if close:
        return f"no layer named `{name}`: did you mean {' or '.join(f'`{c}`' for c in close)}?"
    return f"no layer named `{name}`; the layers and losses are: {', '.join(names)}"


@app.command()
def schema(
    plugin: List[str] = typer.Option([], "--plugin", "-p", metavar="FILE", help="Plugin file whose layers the "
                                     "schema should include (repeatable)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", metavar="FILE",
                                         help="Write the schema to FILE instead of stdout."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
) -> None:
    """Print the JSON Schema of config files, for editors to complete and validate them.

    Generated from the validation models and the layer registry (with --plugin layers).

    Examples:

      gradcheck schema > gradcheck.schema.json

      gradcheck schema --plugin my_layers.py --output gradcheck.schema.json
    """
    out, err = _consoles()
    with _errors(err, debug):
        from ..run.pipeline import load_plugins
        from ..config.schema import schema_text

        load_plugins(plugin)
        text = schema_text()
        if output is None:
            out.file.write(text)
        else:
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
    plugin: List[str] = typer.Option([], "--plugin", "-p", metavar="FILE", help="Plugin file to load (repeatable)."),
    allow_plugins: bool = typer.Option(False, "--allow-plugins", help="Load the config's `plugins:`."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
) -> None:
    """Error of each difference method for steps 1e-1 ... 1e-12, and the Taylor test.

    The V-shaped curves show which step resolves a gradient; the Taylor remainder's slope (2 for
    a right gradient, 1 for a wrong one) tells a real bug from rounding noise.

    Examples:

      gradcheck sweep configs/mlp.yaml

      gradcheck sweep configs/mlp.yaml --layer 2 --tensor W --plot sweep.png
    """
    from pathlib import Path

    from ..errors import UsageError
    from ..run.pipeline import RunOptions, load_plugins, plan_file

    out, err = _consoles()
    with _errors(err, debug):
        import numpy as np

        from ..learn.tensor_function import tensor_function
        from ..check.network import build_network
        from ..learn.sweep_render import plot, render_sweep
        from ..learn.sweep import sweep as run_sweep

        load_plugins(plugin)
        path = Path(config)
        if not path.is_file():
            raise UsageError(f"{config}: no such file")
        net = build_network(plan_file(path, RunOptions(plugins=plugin, allow_plugins=allow_plugins)))
        if layer is None:
            node = next((n for n in net.nodes if n.layer.params), net.nodes[0])
            layer = node.label
        node = next((n for n in net.nodes if n.label == layer), None)
        if tensor is None:
            tensor = next(iter(node.layer.params), "x") if node is not None else "x"
        fn = tensor_function(net, layer, tensor, network=not isolated)
        complex_ok = all(getattr(type(n.layer), "complex_safe", False) for n in [*net.nodes, net.loss])
        result = run_sweep(fn, np.random.default_rng(net.spec.seed), complex_ok=complex_ok)
        result.check = "isolated check" if isolated else "end to end"
        render_sweep(out, result)
        if plot_path:
            try:
                plot(result, plot_path)
            except ImportError:
                raise UsageError("--plot needs matplotlib: pip install 'gradcheck-cli[plot]'") from None
            err.print(f"wrote {plot_path}")


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
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
) -> None:
    """Write a starter config that passes (and a plugin skeleton for custom-layer).

    Examples:

      gradcheck init

      gradcheck init --template custom-layer
    """
    from pathlib import Path

    from ..errors import UsageError
    from ..report.formats import write_atomic
    from .templates import TEMPLATES

    out, err = _consoles()
    with _errors(err, debug):
        chosen = TEMPLATES.get(template)
        if chosen is None:
            raise UsageError(f"no template named `{template}`: choose one of {', '.join(TEMPLATES)}")
        config = Path(path or f"{template}.gradcheck.yaml")
        plugin = config.parent / chosen.plugin_name if chosen.plugin else None
        targets = [config] + ([plugin] if plugin else [])
        existing = [str(t) for t in targets if t.exists()]
        if existing and not force:
            raise UsageError(f"{', '.join(existing)} already exists; use --force to overwrite")
        if not config.parent.is_dir():
            raise UsageError(f"folder {config.parent} does not exist")
        fill = {"{config}": str(config), "{plugin}": str(plugin or ""),
                "{plugin_file}": plugin.name if plugin else ""}
        text = chosen.read(chosen.config)
        for key, value in fill.items():
            text = text.replace(key, value)
        write_atomic(config, text)
        if plugin:
            write_atomic(plugin, chosen.read(chosen.plugin))
        command = f"gradcheck check {config}" + (f" --plugin {plugin}" if plugin else "")
        err.print(f"wrote {', '.join(str(t) for t in targets)}; now run: {command}", soft_wrap=True)


def _discover(paths, exclude, plugins):
    """(config files, entries): the entries keep, in argument order, a PathProblem for each PATH
    that names no config; it is reported in its place and the others are still checked."""
    from ..run.pipeline import discover_entries, load_plugins

    load_plugins(plugins)
    entries = discover_entries(paths, exclude)
    return [e for e in entries if isinstance(e, Path)], entries


def _in_place(entries, results):
    """The results of the config files, with a PathProblem's error result in its place."""
    from ..run.pipeline import PathProblem

    results = iter(results)
    for entry in entries:
        yield entry.result() if isinstance(entry, PathProblem) else next(results)


def _watch(out, err, paths, exclude, options, verbose, quiet, strict, debug) -> None:
    """Check, then check again after every change, until Ctrl-C (exit 130)."""
    import time

    from ..report.table import render_run
    from ..results import RunResult
    from ..run.watch import runs

    number = 0
    try:
        for trigger, results, changes in runs(paths, exclude, options, debug):
            number += 1
            if out.is_terminal:
                out.clear()
            why = (f" after a change of {', '.join(p.name for p in trigger)}" if trigger else "")
            out.print(f"── run {number}{why}, {time.strftime('%H:%M:%S')} · watching for changes, "
                      "Ctrl-C to stop ──", style="dim", soft_wrap=True)
            for result in results:
                was = {(label, tensor): status for (path, label, tensor), status in changes.rows.items()
                       if path == result.path}
                _show(out, err, result, verbose, quiet, strict=strict, was=was)
            if number > 1:
                n = len(changes.rows)
                out.print(f"{n} row{'s' if n != 1 else ''} changed status since the last run"
                          if n else "no row changed status since the last run", style="bold" if n else "dim")
            render_run(out, RunResult(results, strict=strict))
            out.file.flush()
    except KeyboardInterrupt:
        _consoles()[1].print("stopped watching", style="dim")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _show(out, err, result, verbose, quiet, annotate=False, strict=False, was=None):
    from ..report.table import render_config
    from ..results import Status

    if annotate:
        from ..report.github import config_commands

        for line in config_commands(result, strict):
            out.file.write(line + "\n")
        out.file.flush()
    if result.status is Status.ERROR:
        err.print(error_lines(result.error), style="red", soft_wrap=True)
        return
    if verbose and result.cost:
        from ..check.budget import CostEstimate

        err.print(CostEstimate(**result.cost).describe(), soft_wrap=True)
    if verbose and result.evaluations is not None:
        rate = result.evaluations / result.seconds if result.seconds else 0.0
        memory = (f", peak resident memory of the process {result.peak_memory / 2**20:.0f} MiB"
                  if result.peak_memory else "")
        probes = (f"{result.probes:,} evaluations without shortcuts, made as "
                  if result.probes is not None else "")
        err.print(f"measured: {probes}{result.evaluations:,} evaluations in {result.seconds:.2f} s "
                  f"({rate:,.0f}/s){memory}", soft_wrap=True)
    render_config(out, result, verbose=verbose, quiet=quiet, was=was)


def _register_learner_commands() -> None:
    from .learn import register_commands

    register_commands(app)


_register_learner_commands()


def main() -> None:
    app()
