"""The layer reference, generated from the registry (so it cannot drift from the code)."""
from __future__ import annotations

import inspect
from dataclasses import dataclass

from .options import option_table
from .catalog import is_builtin, registered


@dataclass
class LayerDoc:
    name: str
    kind: str
    summary: str
    doc: str
    options: list[tuple[str, str, str]]
    layouts: tuple[str, ...]
    origin: str
    shapes: str = ""          # per-example input → output, e.g. "(C, H, W) → (filters, H', W')"


def shapes_text(cls: type) -> str:
    """Per-example input → output shapes: the class's ``shapes`` attribute when it has one."""
    text = getattr(cls, "shapes", "")
    if text:
        return text
    if getattr(cls, "kind", "layer") == "loss":
        return "(*S) → scalar"
    try:  # option-free layers that keep any shape (the elementwise activations)
        layer = cls()
        if tuple(layer.output_shape((4, 3))) == (4, 3) and tuple(layer.output_shape((5,))) == (5,):
            return "any → same"
    except Exception:  # noqa: BLE001 - a layer that needs options, or refuses these shapes
        pass
    return ""


def layer_reference() -> list[LayerDoc]:
    out = []
    for name, cls in registered().items():
        doc = inspect.cleandoc(cls.__doc__ or "")
        origin = "built-in" if is_builtin(cls) else (inspect.getsourcefile(cls) or cls.__module__)
        out.append(LayerDoc(name, getattr(cls, "kind", "layer"), doc.split("\n\n")[0].replace("\n", " "),
                            doc, option_table(cls), tuple(getattr(cls, "layouts", ("rows", "columns"))),
                            origin, shapes_text(cls)))
    return out


def layer_entries(name: str | None = None) -> list[LayerDoc]:
    """Every registered layer's entry, or the one named ``name`` (a UsageError that names the
    right ones when there is none)."""
    entries = layer_reference()
    if name is None:
        return entries
    match = [e for e in entries if e.name == name]
    if not match:
        from ..errors import UsageError

        raise UsageError(no_such_layer(name, [e.name for e in entries]))
    return match


def no_such_layer(name: str, names: list[str]) -> str:
    """Did-you-mean by spelling (`dens`), else by a part of a name (`cross` → the cross-entropies),
    else every name: a user who typed a wrong name always learns a right one."""
    import difflib

    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    close = close or [n for n in names if name.lower() in n][:5]
    if close:
        return f"no layer named `{name}`: did you mean {' or '.join(f'`{c}`' for c in close)}?"
    return f"no layer named `{name}`; the layers and losses are: {', '.join(names)}"


def render_layer(console, entries: list[LayerDoc], full: bool = False) -> None:
    from rich.table import Table
    from rich.text import Text

    if full:
        for e in entries:
            console.print(f"[bold]{e.name}[/bold]  ({e.kind}, {e.origin}; layouts: {', '.join(e.layouts)})")
            if e.shapes:
                console.print(f"shapes per example: {e.shapes}", markup=False)
            console.print(e.doc or "(no docstring)", markup=False)
            if e.options:
                console.print("\noptions:")
                for opt, typ, default in e.options:
                    console.print(f"  {opt}: {typ} = {default}", markup=False)
            else:
                console.print("\noptions: none")
        return
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("type", "kind", "options", "shapes", "what it computes"):
        t.add_column(col, overflow="fold")
    for e in entries:
        opts = ", ".join(f"{o}={d}" if d != "required" else f"{o} (required)" for o, _, d in e.options)
        # Text, not markup: formulas such as "Σ [y·log p + ...]" are not rich tags.
        t.add_row(Text(e.name), e.kind, Text(opts or "—"), Text(e.shapes or "—"), Text(e.summary))
    console.print(t)
