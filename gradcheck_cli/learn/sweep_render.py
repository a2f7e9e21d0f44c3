"""Showing a step sweep: a table, a text chart of the V-shaped error curves, an optional figure."""
from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .sweep import SweepResult

MARKS = {"central": "c", "forward": "f", "richardson": "r", "complex": "i"}


def _e(v: float | None) -> str:
    return "—" if v is None else f"{v:.1e}"


def render_sweep(console: Console, result: SweepResult) -> None:
    console.print(Text(f"step sweep of {result.label} {result.tensor} "
                       f"({result.entries} entries, {result.check})", style="bold"))
    if result.note:
        console.print(result.note)
        return
    t = Table(box=None, header_style="bold", pad_edge=False)
    t.add_column("h", justify="right")
    for m in result.errors:
        t.add_column(f"{m} ({MARKS[m]})", justify="right")
    t.add_column("Taylor r(h)", justify="right")
    for k, h in enumerate(result.steps):
        t.add_row(f"{h:.0e}", *[_e(v[k]) for v in result.errors.values()], _e(result.taylor[k]))
    console.print(t)
    console.print(chart(result))
    best = {m: min(((v, h) for v, h in zip(errs, result.steps) if v is not None), default=(None, None))
            for m, errs in result.errors.items()}
    for m, (v, h) in best.items():
        if v is not None:
            console.print(f"  {m}: smallest error {v:.1e} at h = {h:.0e}")
    if result.order is not None:
        verdict = ("the gradient is right (slope 2)" if result.order > 1.6 else
                   "the gradient is wrong (slope 1: the first-order term does not cancel)"
                   if result.order < 1.4 else "unclear")
        console.print(f"  Taylor test: r(h) shrinks as h^{result.order:.2f}: {verdict}")
    else:
        console.print("  Taylor test: the remainder stays at rounding level at every step: f is "
                      "linear in this tensor (nothing to fit)")


def chart(result: SweepResult, height: int = 17) -> str:
    """A log-log text chart: columns are steps (large to small), rows are decades of error."""
    top = 0
    cols = len(result.steps)
    grid = [[" "] * (cols * 3) for _ in range(height)]
    for m, errs in result.errors.items():
        for k, v in enumerate(errs):
            if v is None or v <= 0:
                continue
            row = min(height - 1, max(0, top - math.floor(math.log10(v))))
            cell = grid[row][k * 3 + 1]
            grid[row][k * 3 + 1] = MARKS[m] if cell == " " else "*"
    lines = [f"1e{top - r:+03d} |" + "".join(grid[r]) for r in range(height)]
    lines.append("       +" + "-" * (cols * 3))
    lines.append("        " + "".join(f"{int(round(math.log10(h))):>3d}" for h in result.steps)
                 + "   log10 h   (" + ", ".join(f"{v}={k}" for k, v in MARKS.items()) + ", *=several)")
    return "\n".join(lines)


def plot(result: SweepResult, path: str) -> None:
    """A log-log figure of the sweep (needs matplotlib: pip install 'gradcheck-cli[plot]')."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for m, errs in result.errors.items():
        pts = [(h, v) for h, v in zip(result.steps, errs) if v is not None and v > 0]
        if pts:
            ax.loglog(*zip(*pts), marker="o", label=m)
    ax.loglog(result.steps, [max(r, 1e-300) for r in result.taylor], "k--", label="Taylor r(h)")
    ax.set_xlabel("step h")
    ax.set_ylabel("relative error; Taylor remainder (absolute)")
    ax.set_title(f"step sweep: layer {result.label}, tensor {result.tensor} ({result.check})")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
