"""Showing a dump: what it holds, and a heat-map of |analytic − numeric| for one gradient."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .dump import Dump, Heatmap
from ..report.table import STYLE
from ..results import Status

#: the cell glyph per error band (relative to max|numeric|): pass, warn, fail
BANDS = (("·", "green"), ("▒", "yellow"), ("█", "bold red"))


def _status_style(status: str) -> str:
    try:
        return STYLE[Status(status)]
    except ValueError:
        return ""


def render_contents(console: Console, dump: Dump) -> None:
    console.print(Text(f"{dump.path}: {len(dump.meta)} config{'s' if len(dump.meta) != 1 else ''}",
                       style="bold"))
    for config, meta in dump.meta.items():
        console.print(Text(f"\n{config}  ", style="bold").append(
            f"{meta.get('path')} · {meta.get('layout')} layout · batch m = {meta.get('batch')}",
            style="dim"))
        t = Table(box=None, pad_edge=False, header_style="bold")
        for col in ("key (for show)", "layer", "status", "isolated", "network"):
            t.add_column(col, no_wrap=True)
        for r in meta["rows"]:
            held = [c for c in ("isolated", "network")
                    if f"{config}/{c}/{r['label']}/{r['tensor']}/analytic" in dump.arrays]
            t.add_row(Text(f"{r['label']}/{r['tensor']}"), Text(r["layer"]),
                      Text(r["status"], style=_status_style(r["status"])),
                      "yes" if "isolated" in held else "—", "yes" if "network" in held else "—")
        console.print(t)
    console.print(Text("\ngradcheck show FILE LAYER/TENSOR draws one of them; np.load(FILE) reads "
                       "them all (keys: CONFIG/isolated/LAYER/TENSOR/analytic, .../numeric, ...)",
                       style="dim"))


def _band(value: float, h: Heatmap) -> tuple[str, str]:
    rel = value / h.scale if h.scale > 0 else value
    if rel <= h.pass_rtol:
        return BANDS[0]
    if rel <= h.warn_rtol:
        return BANDS[1]
    return BANDS[2]


def render_heatmap(console: Console, h: Heatmap) -> None:
    title = Text(f"{h.config} · {h.check} · layer {h.label} ({h.layer}) · d{h.tensor} {tuple(h.shape)}  ",
                 style="bold")
    title.append(h.status, style=_status_style(h.status))
    console.print(title)
    if h.reason:
        console.print(Text(h.reason), soft_wrap=True)
    if h.transposed:
        console.print(Text(f"the analytic gradient has shape {tuple(h.analytic_shape)}: compared "
                           "transposed below", style="dim"))
    if h.diff is not None:
        console.print(Text(f"|analytic − numeric| per entry, relative to max|numeric| = {h.scale:.3g}: "
                           f"{BANDS[0][0]} < {h.pass_rtol:.0e} (pass)  {BANDS[1][0]} < {h.warn_rtol:.0e} "
                           f"(warn)  {BANDS[2][0]} above", style="dim"))
        grid = h.diff.reshape(1, -1) if h.diff.ndim <= 1 else h.diff.reshape(-1, h.diff.shape[-1])
        lead = h.diff.shape[:-1] if h.diff.ndim > 1 else ()
        t = Table(box=None, pad_edge=False, show_header=True, header_style="dim", padding=(0, 0))
        t.add_column("", style="dim", no_wrap=True)
        for j in range(grid.shape[1]):
            t.add_column(str(j % 10), no_wrap=True, justify="center")
        import itertools

        names = ["[" + ",".join(map(str, idx)) + ",:]" for idx in itertools.product(*map(range, lead))] \
            if lead else ["[:]"]
        for name, row in zip(names, grid):
            cells = [Text(*_band(float(v), h)) for v in row]
            t.add_row(Text(name + " "), *cells)
        console.print(t)
    if h.too_big:
        console.print(Text(h.too_big, style="dim"))
    if h.worst:
        t = Table(title="worst entries", title_justify="left", title_style="bold", box=None,
                  pad_edge=False, header_style="bold")
        for col in ("index", "analytic", "numeric", "|a − n|", "a / n"):
            t.add_column(col, justify="right", no_wrap=True)
        for idx, a, n, d in h.worst:
            ratio = f"{a / n:.4g}" if n != 0 else "—"
            t.add_row(str(idx), f"{a:.6g}", f"{n:.6g}", f"{d:.2e}", ratio)
        console.print(t)
