"""What `check`, `check --watch` and `validate` print as their results arrive: the table (with a
progress display, GitHub annotations), errors on stderr, the documents of --format and --output.
The rendering itself is report/'s; this module decides what goes where and when."""
from __future__ import annotations

import os
import time
from contextlib import closing
from typing import Any, Iterator

import typer

from ..errors import error_lines
from ..results import ConfigResult, RunResult, Status
from .common import EXIT_INTERRUPTED, consoles


class CheckView:
    """The output of one `gradcheck check` run, shown as the results come."""

    def __init__(self, out: Any, err: Any, shown: str, *, verbose: bool, quiet: bool, strict: bool,
                 progress: bool) -> None:
        self.out, self.err, self.shown = out, err, shown
        self.verbose, self.quiet, self.strict = verbose, quiet, strict
        # In a GitHub Actions job the table gains annotations on the failing config lines.
        self.annotate = shown == "table" and os.environ.get("GITHUB_ACTIONS") == "true"
        self.reporter = None
        if progress and shown == "table" and err.is_terminal:
            from ..run.progress import ProgressReporter

            self.reporter = ProgressReporter(err)

    def stream(self, results: Iterator[ConfigResult], fail_fast: bool) -> tuple[list[ConfigResult], bool]:
        """Show each result as it comes; (the results, whether Ctrl-C stopped the run)."""
        from ..report.categories import category

        done: list[ConfigResult] = []
        try:
            with closing(results) as stream:
                for result in stream:
                    done.append(result)
                    if self.reporter is not None:
                        self.reporter.stop()
                    if self.shown == "table":
                        show_config(self.out, self.err, result, self.verbose, self.quiet,
                                    self.annotate, self.strict)
                    elif result.error is not None:  # stdout holds only the document
                        self.err.print(error_lines(result.error), style="red", soft_wrap=True)
                    elif self.verbose:
                        show_costs(self.err, result)
                    if fail_fast and category(result.status, self.strict) in ("failure", "error"):
                        break
        except KeyboardInterrupt:
            if self.reporter is not None:
                self.reporter.stop()
            # Fresh consoles: an interrupt inside a print leaves rich's buffer full, and the old
            # console would print that text a second time.
            self.out, self.err = consoles()
            return done, True
        return done, False

    def finish(self, run: RunResult, interrupted: bool, outputs: list[tuple[str, str]],
               dump: str | None, total: int) -> None:
        """The summary (or the --format document), the --output files and the --dump file."""
        from ..report.formats import FORMATS, write_atomic

        if self.shown == "table":
            from ..report.table import render_run

            render_run(self.out, run)
        else:
            self.out.file.write(FORMATS[self.shown].render(run, interrupted))
            self.out.file.flush()
        for path, name in outputs:
            write_atomic(path, FORMATS[name].render(run, interrupted))
        if dump is not None:
            from ..learn.dump import write_dump

            write_dump(dump, run.configs)
        if interrupted:
            self.err.print(f"interrupted: {len(run.configs)} of {total} configs finished", style="red")


def show_validation(out: Any, err: Any, results: Iterator[ConfigResult], total: int) -> int:
    """One line per validated config (errors on stderr, GitHub annotations in a workflow), then
    the count; the number of invalid configs. Ctrl-C: the count so far, exit 130."""
    bad = done = 0
    try:
        for result in results:
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
        out, err = consoles()  # as in check: a print cut short leaves rich's buffer full
        out.print(f"{done} config{'s' if done != 1 else ''}: {done - bad} valid, {bad} invalid")
        err.print(f"interrupted: {done} of {total} configs validated", style="red")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    out.print(f"{total} config{'s' if total != 1 else ''}: {total - bad} valid, {bad} invalid")
    return bad


def watch(out, err, paths, exclude, options, verbose, quiet, strict, debug) -> None:
    """Check, then check again after every change, until Ctrl-C (exit 130)."""
    from ..report.table import render_run
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
                show_config(out, err, result, verbose, quiet, strict=strict, was=was)
            if number > 1:
                n = len(changes.rows)
                out.print(f"{n} row{'s' if n != 1 else ''} changed status since the last run"
                          if n else "no row changed status since the last run", style="bold" if n else "dim")
            render_run(out, RunResult(results, strict=strict))
            out.file.flush()
    except KeyboardInterrupt:
        consoles()[1].print("stopped watching", style="dim")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def show_config(out, err, result, verbose, quiet, annotate=False, strict=False, was=None):
    """One config's table (its error on stderr), with -v's cost lines before it."""
    from ..report.table import render_config

    if annotate:
        from ..report.github import config_commands

        for line in config_commands(result, strict):
            out.file.write(line + "\n")
        out.file.flush()
    if result.status is Status.ERROR:
        err.print(error_lines(result.error), style="red", soft_wrap=True)
        return
    if verbose:
        show_costs(err, result)
    render_config(out, result, verbose=verbose, quiet=quiet, was=was)


def show_costs(err, result):
    """-v's cost lines on stderr: the estimate made before the check, what it measured, and the
    evaluations per tensor check against the minimum (with any --format too: stdout then holds
    only the document)."""
    if result.cost:
        from ..check.budget import CostEstimate

        err.print(CostEstimate(**result.cost).describe(), soft_wrap=True)
    if result.evaluations is not None:
        rate = result.evaluations / result.seconds if result.seconds else 0.0
        probes = (f"{result.probes:,} evaluations without shortcuts, made as "
                  if result.probes is not None else "")
        err.print(f"measured: {probes}{result.evaluations:,} evaluations in {result.seconds:.2f} s "
                  f"({rate:,.0f}/s){memory_words(result)}", soft_wrap=True)
        from ..report.evaluations import evaluation_lines

        for line in evaluation_lines(result):
            err.print(line, soft_wrap=True, markup=False, highlight=False)


def memory_words(result) -> str:
    """The process's peak resident memory, how far the process's data rose above what it held
    before the network was built (run/memory.py: in a fresh process, what the check's data took),
    and the memory model's figure for that data, by the batches the check made (the estimate
    before the check bounds both, from the plan alone)."""
    from ..check.budget import format_bytes

    words = f", peak resident memory of the process {format_bytes(result.peak_memory)}" \
        if result.peak_memory else ""
    if result.check_memory is not None and result.memory_before is not None:
        words += (f" (data: {format_bytes(result.check_memory)} above the "
                  f"{format_bytes(result.memory_before)} before the network was built)")
    if result.memory_model:
        largest = f" and the largest tensor check, {result.memory_largest}" if result.memory_largest else ""
        words += (f"; modelled: {format_bytes(result.memory_model)} (the network's arrays{largest}, "
                  "with the estimate's margin)")
    return words
