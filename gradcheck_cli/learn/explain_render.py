"""Showing explanations and Jacobians: rich for a terminal, Markdown for notes. Computes nothing."""
from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .explain import Explanation, LayerExplanation
from .jacobian import JacobianView, entries_label


def _title(e: LayerExplanation) -> str:
    where = f", line {e.line}" if e.line else ""
    opts = f"({e.options})" if e.options else ""
    return f"{'layer ' + e.label if e.label != 'loss' else 'loss'} · {e.layer_type}{opts}{where}"


def _layer_table(e: LayerExplanation) -> Table:
    t = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
    t.add_column("section", style="dim", no_wrap=True)
    t.add_column("equation", no_wrap=True)
    t.add_column("shapes", style="cyan", no_wrap=True)
    for section, lines in _sections(e):
        for k, (eq, shapes) in enumerate(lines):
            # Text, not markup: layer formulas are full of brackets such as [x > 0]
            t.add_row(section if k == 0 else "", Text(eq), Text(shapes))
    return t


def _sections(e: LayerExplanation):
    if e.from_docstring:
        return (("shapes", e.forward),)
    return (("forward", e.forward), ("backward", e.backward))


def render_explanation(console: Console, ex: Explanation) -> None:
    head = Text(ex.path, style="bold")  # Text throughout: paths and formulas are not markup
    head.append(f"  {ex.name} · {ex.layout} layout · batch m = {ex.m}", style="dim")
    console.print(head)
    for e in ex.layers:
        console.print()
        console.print(Text(_title(e), style="bold"))
        console.print(_layer_table(e))
        if e.doc:
            from rich.padding import Padding

            console.print(Padding(Text(e.doc), (0, 0, 0, 10)))
        for note in e.notes:
            console.print(Text(f"note: {note}", style="dim"), soft_wrap=True)
    for note in ex.notes:
        console.print()
        console.print(Text(f"note: {note}", style="dim"), soft_wrap=True)


def explanation_markdown(ex: Explanation) -> str:
    out = [f"## {ex.name} — {ex.layout} layout, batch m = {ex.m}", "", f"`{ex.path}`", ""]
    for e in ex.layers:
        out += [f"### {_title(e)}", "", "| | equation | shapes |", "|---|---|---|"]
        for section, lines in _sections(e):
            for k, (eq, shapes) in enumerate(lines):
                cell = f"`{shapes}`" if shapes else ""
                out.append(f"| {section if k == 0 else ''} | `{eq}` | {cell} |")
        out.append("")
        if e.doc:
            out += ["```text", e.doc, "```", ""]
        out += [f"> {note}" for note in e.notes]
        if e.notes:
            out.append("")
    out += [f"> {note}" for note in ex.notes]
    return "\n".join(out).rstrip() + "\n"


# -- Jacobians ----------------------------------------------------------------------------------------

def _num(v: float) -> str:
    return "·" if v == 0 else f"{v:.3g}"


def _matrix(values, row_names, col_names, title: str) -> Group:
    # the title is a line of its own: as a table title rich would wrap it to the table's width
    t = Table(box=None, pad_edge=False, header_style="bold")
    t.add_column("", style="dim", no_wrap=True)
    for c in col_names:
        t.add_column(c, justify="right", no_wrap=True)
    for name, row in zip(row_names, values):
        t.add_row(name, *(_num(float(v)) for v in row))
    return Group(Text(title, style="bold"), t)


def _as_2d(a):
    import numpy as np

    a = np.asarray(a, dtype=float)
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(1, -1)
    return a.reshape(-1, a.shape[-1])


def _names_2d(shape: tuple[int, ...]) -> tuple[list[str], list[str]]:
    if len(shape) <= 1:
        return [""], [str(i) for i in range(shape[0] if shape else 1)]
    rows = entries_label(shape[:-1])
    return rows, [str(i) for i in range(shape[-1])]


def jacobian_renderables(v: JacobianView) -> list:
    out: list = []
    sym, y = v.tensor_symbol, v.out_symbol
    out.append(Text(f"layer {v.label} · {v.layer_type}: Jacobian of {y} {tuple(v.out_shape)} with "
                    f"respect to {sym} {tuple(v.tensor_shape)}", style="bold"))
    if v.too_big:
        out.append(Text(v.too_big))
        return out
    out.append(Text(f"J[r, c] = ∂{y}[r]/∂{sym}[c] (central differences): rows are entries of {y}, "
                    f"columns entries of {sym}", style="dim"))
    out.append(_matrix(v.jacobian, entries_label(v.out_shape), entries_label(v.tensor_shape),
                       f"J  ({v.jacobian.shape[0]} × {v.jacobian.shape[1]})"))
    rows, cols = _names_2d(v.out_shape)
    out.append(_matrix(_as_2d(v.upstream), rows, cols, f"G = d{y}, the upstream gradient"))
    rows, cols = _names_2d(v.tensor_shape)
    out.append(_matrix(_as_2d(v.product), rows, cols,
                       f"Gᵀ·J reshaped to {sym}'s shape {tuple(v.tensor_shape)}"))
    if v.vjp is not None and v.vjp_error is None:
        out.append(_matrix(_as_2d(v.vjp), rows, cols, f"the layer's VJP: backward(G) → d{sym}"))
        out.append(_matrix(_as_2d(v.vjp - v.product), rows, cols, "difference VJP − Gᵀ·J"))
        out.append(Text(f"relative error {v.rel_error:.1e}: the VJP is Gᵀ·J without ever forming J "
                        f"({v.jacobian.size} entries here; for a real layer, millions)"))
    else:
        out.append(Text(f"the layer's VJP cannot be compared: {v.vjp_error}", style="red"))
    return out


def render_jacobian(console: Console, v: JacobianView) -> None:
    for item in jacobian_renderables(v):
        console.print(item)
        console.print()


def jacobian_markdown(v: JacobianView) -> str:
    import io

    buf = io.StringIO()
    console = Console(file=buf, width=200, color_system=None, highlight=False)
    console.print(Group(*jacobian_renderables(v)))
    return "```text\n" + buf.getvalue().rstrip() + "\n```\n"
