"""Rendering results for a terminal with rich. Computes nothing: it only shows ConfigResults."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..results import Comparison, ConfigResult, RunResult, Status

STYLE = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red",
         Status.INHERITED: "red", Status.SKIPPED: "dim", Status.ERROR: "bold red",
         Status.KINK: "cyan"}


def shape_text(shape) -> str:
    if shape is None:
        return "—"
    return "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def err_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.1e}"


def comparison_err(c: Comparison | None) -> str:
    """A row's error; where entries were excused as kinks, the error of the others and the
    number of kinks (``3.9e-11 k28``): the error over all entries would read like a bug."""
    if c is None:
        return "—"
    if c.kinks and c.rel_error_excluding_kinks is not None:
        return f"{c.rel_error_excluding_kinks:.1e} k{c.kinks}"
    return err_text(c.rel_error)


def compact(shape) -> str:
    """(2,4,8,8): shapes without spaces, so that the table fits a terminal."""
    if shape is None:
        return "—"
    return "(" + ",".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def mode_text(result: ConfigResult) -> str:
    s = result.settings
    entries = sum(r.isolated.entries + (r.network.entries if r.network else 0) for r in result.rows)
    mode = s.get("mode", "full")
    what = {"full": "full check (every entry)",
            "sample": f"sample mode ({s.get('samples')} entries per tensor)",
            "directional": f"directional mode ({s.get('directions')} directions per tensor)"}.get(mode, mode)
    return f"{what}, {entries:,} comparisons"


def header(result: ConfigResult) -> Text:
    text = Text()
    text.append(result.path, style="bold")
    if result.status is Status.ERROR:
        return text
    parts = [result.name, f"seed {result.seed}", result.dtype, f"{result.layout} layout",
             f"{result.method} differences, h = {result.eps:.1e}·max(1, |θ|)",
             f"{result.n_params:,} parameters", f"batch m = {result.batch}"]
    text.append("  " + " · ".join(str(p) for p in parts), style="dim")
    text.append(f"\n{mode_text(result)}", style="dim")
    if result.dtype == "float32":
        text.append(f"\nnumeric reference computed in {result.reference}", style="dim")
    return text


def table(result: ConfigResult) -> Table:
    t = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    # numbers and statuses never wrap; shapes fold onto a second line in a narrow terminal
    for name, justify, wrap in [("#", "right", False), ("layer", "left", True), ("line", "right", False),
                                ("tensor", "left", False), ("in → out", "left", True),
                                ("shape", "left", True), ("grad", "left", True),
                                ("layer err", "right", False), ("noise", "right", False),
                                ("net err", "right", False), ("max abs", "right", False),
                                ("status", "left", False)]:
        t.add_column(name, justify=justify, no_wrap=not wrap, overflow="fold")
    previous = None
    for row in result.rows:
        first = row.label != previous
        previous = row.label
        io = f"{compact(row.input_shape)}→{compact(row.output_shape) if row.output_shape else 'scalar'}"
        grad = compact(row.grad_shape)
        grad_style = "bold red" if row.grad_shape is not None and tuple(row.grad_shape) != tuple(row.tensor_shape) else ""
        t.add_row(row.label if first else "", row.layer_type if first else "",
                  str(row.line or "") if first else "", row.tensor, io if first else "",
                  compact(row.tensor_shape), Text(grad, style=grad_style),
                  comparison_err(row.isolated), err_text(row.isolated.noise),
                  comparison_err(row.network),
                  err_text(row.isolated.max_abs_error),
                  Text(row.status.value, style=STYLE[row.status]))
    return t


def details(result: ConfigResult, verbose: bool = False) -> list[Text]:
    out = []
    for row in result.rows:
        if row.status in (Status.PASS, Status.SKIPPED) and not verbose:
            continue
        line = Text(f"  {row.label} {row.layer_type} {row.tensor}: ", style=STYLE[row.status])
        line.append(row.reason or "ok", style="")
        if verbose:
            iso = row.isolated
            line.append(f"  [entries {iso.entries}, worst at {iso.worst_index}, noise {err_text(iso.noise)}]",
                        style="dim")
        out.append(line)
    return out


def summary_line(result: ConfigResult) -> Text:
    if result.status is Status.ERROR:
        return Text(f"error: {result.error}", style="bold red")
    counts = result.counts()
    order = [s.value for s in (Status.FAIL, Status.INHERITED, Status.WARN, Status.KINK, Status.PASS,
                               Status.SKIPPED)]
    parts = [f"{counts[k]} {k}" for k in order if k in counts]
    verdict = {Status.PASS: "passed", Status.WARN: "passed with warnings", Status.FAIL: "FAILED",
               Status.INHERITED: "FAILED", Status.SKIPPED: "passed",
               Status.KINK: "passed (kinks)"}[result.status]
    text = Text(f"{result.name}: {verdict}", style=STYLE[result.status])
    text.append(f" — {len(result.rows)} checks: {', '.join(parts)}")
    if result.seconds is not None:
        text.append(f" ({result.seconds:.2f} s)", style="dim")
    return text


def render_config(console: Console, result: ConfigResult, verbose: bool = False, quiet: bool = False) -> None:
    if quiet:
        console.print(summary_line(result))
        return
    console.print(header(result))
    if result.status is not Status.ERROR:
        console.print(table(result))
        for line in details(result, verbose):
            console.print(line)
    console.print(summary_line(result))
    console.print()


def render_run(console: Console, run: RunResult) -> None:
    configs = run.configs
    n_err = sum(c.status is Status.ERROR for c in configs)
    n_fail = sum(c.status in (Status.FAIL, Status.INHERITED) for c in configs)
    n_warn = sum(c.status is Status.WARN for c in configs)
    n_pass = len(configs) - n_err - n_fail - n_warn
    style = "bold red" if n_err or n_fail else ("yellow" if n_warn else "bold green")
    parts = [f"{n_pass} passed"]
    if n_warn:
        parts.append(f"{n_warn} with warnings{' (failures under --strict)' if run.strict else ''}")
    parts.append(f"{n_fail} failed")
    if n_err:
        parts.append(f"{n_err} could not be checked")
    console.print(Text(f"{len(configs)} config{'s' if len(configs) != 1 else ''}: {', '.join(parts)}",
                       style=style))
