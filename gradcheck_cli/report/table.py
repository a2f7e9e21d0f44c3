"""Rendering results for a terminal with rich. Computes nothing: it only shows ConfigResults."""
from __future__ import annotations

from dataclasses import dataclass, field

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import error_lines, format_shape
from ..results import FAILING, Comparison, ConfigResult, RunResult, Status

STYLE = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red",
         Status.INHERITED: "red", Status.SKIPPED: "dim", Status.ERROR: "bold red",
         Status.KINK: "cyan"}


def shape_text(shape) -> str:
    if shape is None:
        return "—"
    return format_shape(shape)


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


def header(result: ConfigResult, width: int | None = None) -> Text:
    """The config's path and settings; wrapped at the " · " between fields, never inside one."""
    text = Text()
    text.append(result.path, style="bold")
    if result.status is Status.ERROR:
        return text
    parts = [result.name, f"seed {result.seed}", result.dtype, f"{result.layout} layout",
             f"{result.method} differences, h = {result.eps:.1e}·max(1, |θ|)",
             f"{result.n_params:,} parameters", f"batch m = {result.batch}"]
    used = cell_len(result.path)
    for i, part in enumerate(str(p) for p in parts):
        sep = "  " if i == 0 else " · "
        if width is not None and used + len(sep) + cell_len(part) > width and used > 0:
            text.append("\n")
            sep, used = ("· " if i else ""), 0
        text.append(sep + part, style="dim")
        used += len(sep) + cell_len(part)
    text.append(f"\n{mode_text(result)}", style="dim")
    if result.dtype == "float32":
        text.append(f"\nnumeric reference computed in {result.reference}", style="dim")
    return text


#: (name, justify) of every table column, in order.
COLUMNS = [("#", "right"), ("layer", "left"), ("line", "right"), ("tensor", "left"),
           ("in → out", "left"), ("shape", "left"), ("grad", "left"), ("layer err", "right"),
           ("noise", "right"), ("net err", "right"), ("max abs", "right"), ("status", "left")]

#: The layouts a narrower terminal falls back to, most preferred first: (grad merged into shape,
#: columns left out, gap between columns, layer names folded). Merging loses nothing (a gradient
#: of another shape still shows, as shape≠grad); max abs and in → out only repeat what other
#: columns and rows say. Numbers, statuses and labels are never cut.
FALLBACKS = [(False, (), 2, False), (True, (), 2, False), (True, ("max abs",), 2, False),
             (True, ("max abs",), 1, False), (True, ("max abs", "in → out"), 2, False),
             (True, ("max abs", "in → out"), 1, False), (True, ("max abs", "in → out"), 2, True),
             (True, ("max abs", "in → out"), 1, True)]


def _cells(result: ConfigResult, was: dict[tuple[str, str], Status] | None = None) -> list[dict[str, Text]]:
    rows, previous = [], None
    for row in result.rows:
        first = row.label != previous
        previous = row.label
        io = f"{compact(row.input_shape)}→{compact(row.output_shape) if row.output_shape else 'scalar'}"
        mismatch = row.grad_shape is not None and tuple(row.grad_shape) != tuple(row.tensor_shape)
        cells = {"#": row.label if first else "", "layer": row.layer_type if first else "",
                 "line": str(row.line or "") if first else "", "tensor": row.tensor,
                 "in → out": io if first else "", "shape": compact(row.tensor_shape),
                 "grad": compact(row.grad_shape),
                 "layer err": comparison_err(row.isolated), "noise": err_text(row.isolated.noise),
                 "net err": comparison_err(row.network),
                 "max abs": err_text(row.isolated.max_abs_error), "status": row.status.value}
        out = {k: Text(v) for k, v in cells.items()}
        out["status"].stylize(STYLE[row.status])
        before = (was or {}).get((row.label, row.tensor))
        if before is not None:  # --watch: the status of the run before, where it was another
            out["status"].append(f" (was {before.value})", style="bold")
        if mismatch:
            out["grad"].stylize("bold red")
        out["_merged"] = (Text(f"{cells['shape']}≠{cells['grad']}", style="bold red") if mismatch
                          else Text(cells["shape"]))
        rows.append(out)
    return rows


@dataclass
class _Layout:
    """Which columns a table shows and how, chosen by ``fit``."""

    columns: list[str]
    merged: bool = False     # one "shape" column; a gradient of another shape shows as shape≠grad
    layer_width: int | None = None  # long layer names folded at "_" to this width
    gap: int = 2
    dropped: list[str] = field(default_factory=list)


def _fold_name(name: str, width: int | None) -> str:
    """binary_cross_entropy at width 13: "binary_cross_" / "entropy" (broken after an "_")."""
    if width is None or cell_len(name) <= width:
        return name
    lines, line = [], ""
    for piece in name.replace("_", "_\0").split("\0"):
        if line and cell_len(line + piece) > width:
            lines.append(line)
            line = ""
        line += piece
    return "\n".join([*lines, line])


def _widths(cells: list[dict[str, Text]], layout: _Layout) -> dict[str, int]:
    widths = {}
    for name in layout.columns:
        key = "_merged" if name == "shape" and layout.merged else name
        texts = [r[key].plain for r in cells]
        if name == "layer":
            texts = [_fold_name(t, layout.layer_width) for t in texts]
        widths[name] = max([cell_len(name)] + [cell_len(line) for t in texts for line in t.split("\n")])
    return widths


def _total(cells: list[dict[str, Text]], layout: _Layout) -> int:
    return sum(_widths(cells, layout).values()) + layout.gap * (len(layout.columns) - 1)


def fit(cells: list[dict[str, Text]], width: int | None) -> _Layout:
    """The most preferred layout that fits ``width`` (all columns when it is None or wide enough)."""
    # a network checked from a dict (check_layer, check_spec) has no config lines to show
    unlined = not any(r["line"].plain for r in cells)
    for merged, dropped, gap, fold in FALLBACKS:
        layout = _Layout([n for n, _ in COLUMNS if n not in dropped and not (merged and n == "grad")
                          and not (unlined and n == "line")],
                         merged=merged, gap=gap, dropped=list(dropped))
        if fold and width is not None:
            pieces = [p for r in cells for p in r["layer"].plain.replace("_", "_\0").split("\0")]
            room = width - (_total(cells, layout) - _widths(cells, layout)["layer"])
            layout.layer_width = max([room, cell_len("layer")] + [cell_len(p) for p in pieces])
        if width is None or _total(cells, layout) <= width:
            break
    return layout


def table(result: ConfigResult, width: int | None = None) -> Table:
    """The per-row table; in fewer than its natural width of columns, narrowed as ``fit`` says."""
    return fitted_table(result, width)[0]


def fitted_table(result: ConfigResult, width: int | None = None,
                 was: dict[tuple[str, str], Status] | None = None) -> tuple[Table, list[str]]:
    """The table and the names of the columns left out to fit ``width``; ``was`` marks the rows
    whose status changed since a previous run, (label, tensor) → the status then."""
    cells = _cells(result, was)
    layout = fit(cells, width)
    t = Table(show_edge=False, pad_edge=False, box=None, header_style="bold",
              padding=(0, 1) if layout.gap == 2 else (0, 1, 0, 0))
    justify = dict(COLUMNS)
    for name in layout.columns:
        # Nothing wraps but the folded layer names: a number or status cut in two is unreadable.
        t.add_column(name, justify=justify[name], no_wrap=True, overflow="fold")
    for r in cells:
        row = []
        for name in layout.columns:
            cell = r["_merged"] if name == "shape" and layout.merged else r[name]
            if name == "layer" and layout.layer_width is not None:
                cell = Text(_fold_name(cell.plain, layout.layer_width), style=cell.style)
            row.append(cell)
        t.add_row(*row)
    return t, layout.dropped


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
        return Text(error_lines(result.error or ""), style="bold red")
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


#: The order of --quiet's lines: the row to fix first, then warnings, then the rows that only
#: inherit a wrong gradient from further on.
_QUIET_ORDER = {Status.FAIL: 0, Status.WARN: 1, Status.INHERITED: 2}


def quiet_lines(result: ConfigResult) -> list[Text]:
    """One located line per row that did not pass, as a linter prints it:
    ``file:line: layer 2 dense W: FAIL rel 3.3e-01 — extra factor 2``."""
    rows = sorted((r for r in result.rows if r.status in _QUIET_ORDER),
                  key=lambda r: _QUIET_ORDER[r.status])  # stable: table order within a status
    out = []
    for row in rows:
        where = f"{result.path}:{row.line}" if row.line else result.path
        layer = f"loss {row.layer_type}" if row.label == "loss" else f"layer {row.label} {row.layer_type}"
        # the error behind the status: an inherited row is wrong end to end, not in isolation
        inherited = row.status is Status.INHERITED
        comparison = row.network if inherited else row.isolated
        line = Text(f"{where}: {layer} {row.tensor}: ")
        line.append(row.status.value, style=STYLE[row.status])
        if comparison is not None and comparison.rel_error is not None:
            line.append(f" rel {comparison_err(comparison)}" + (" end to end" if inherited else ""))
        if row.reason:
            line.append(f" — {row.reason}")
        out.append(line)
    return out


def render_config(console: Console, result: ConfigResult, verbose: bool = False, quiet: bool = False,
                  was: dict[tuple[str, str], Status] | None = None) -> None:
    if quiet:
        for line in quiet_lines(result):
            console.print(line, soft_wrap=True)
        console.print(summary_line(result))
        return
    console.print(header(result, console.width))
    if result.status is not Status.ERROR:
        rows, dropped = fitted_table(result, console.width, was)
        console.print(rows)
        if dropped:
            console.print(Text(f"({' and '.join(dropped)} left out to fit {console.width} "
                               "columns)", style="dim"))
        for line in details(result, verbose):
            console.print(line)
    console.print(summary_line(result))
    console.print()


def render_run(console: Console, run: RunResult) -> None:
    configs = run.configs
    n_err = sum(c.status is Status.ERROR for c in configs)
    n_fail = sum(c.status in FAILING for c in configs)
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
