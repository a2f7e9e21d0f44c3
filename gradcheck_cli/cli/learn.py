"""The learner commands, `gradcheck explain` and `gradcheck show`: options in, library call, render.

Kept out of app.py so that the main command file stays small; app.py registers them on its app.
"""
from __future__ import annotations

from enum import Enum
from typing import List, Optional

import typer


class ExplainFormat(str, Enum):
    text = "text"
    markdown = "markdown"


def explain(
    config: str = typer.Argument(..., metavar="CONFIG", help="Config file."),
    layer: Optional[str] = typer.Option(None, "--layer", "-l", metavar="LABEL", help="Only this layer: a label "
                                        "from the table (2, 2a, loss) or an index (its layer and "
                                        "activation)."),
    jacobian: bool = typer.Option(False, "--jacobian", help="Print the layer's full Jacobian, "
                                  "G, Gᵀ·J and its VJP (small layers; needs --layer)."),
    tensor: Optional[str] = typer.Option(None, "--tensor", "-t", metavar="TENSOR", help="With --jacobian: the tensor "
                                         "(x, W, b, ...) [default: the first parameter]."),
    fmt: ExplainFormat = typer.Option(ExplainFormat.text, "--format", "-f", help="text (rich) or "
                                      "markdown (for notes)."),
    plugin: List[str] = typer.Option([], "--plugin", "-p", metavar="FILE", help="Plugin file to load (repeatable)."),
    allow_plugins: bool = typer.Option(False, "--allow-plugins", help="Load the config's `plugins:`."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
) -> None:
    """Print each layer's forward and backward equations with this config's shapes.

    Examples:

      gradcheck explain configs/course_columns.yaml --layer 2

      gradcheck explain configs/course_columns.yaml --layer 3 --jacobian --tensor W
    """
    from pathlib import Path

    from .common import EXIT_OK, _consoles, _errors
    from ..errors import UsageError
    from ..run.pipeline import RunOptions, load_plugins, plan_file

    out, err = _consoles()
    with _errors(err, debug):
        load_plugins(plugin)
        if not Path(config).is_file():
            raise UsageError(f"{config}: no such file")
        plan = plan_file(Path(config), RunOptions(plugins=plugin, allow_plugins=allow_plugins))
        if jacobian:
            if layer is None:
                raise UsageError("--jacobian needs --layer: the Jacobian of one layer")
            from ..learn.explain import jacobian_view
            from ..learn.explain_render import jacobian_markdown, render_jacobian
            from ..check.network import build_network

            view = jacobian_view(build_network(plan), layer, tensor)
            if fmt is ExplainFormat.markdown:
                out.file.write(jacobian_markdown(view))
            else:
                render_jacobian(out, view)
        else:
            if tensor is not None:
                raise UsageError("--tensor goes with --jacobian")
            from ..learn.explain import explain_plan
            from ..learn.explain_render import explanation_markdown, render_explanation

            ex = explain_plan(plan, layer)
            if fmt is ExplainFormat.markdown:
                out.file.write(explanation_markdown(ex))
            else:
                render_explanation(out, ex)
        raise typer.Exit(EXIT_OK)


def show(
    dump: str = typer.Argument(..., metavar="DUMP.npz", help="A .npz file written by `gradcheck check --dump`."),
    key: Optional[str] = typer.Argument(None, metavar="KEY", help="Which gradient: LAYER/TENSOR (e.g. 2/W), "
                                        "optionally prefixed with the config name; without it, "
                                        "a list of what the file holds."),
    check_kind: str = typer.Option("isolated", "--check", metavar="CHECK", help="isolated or network."),
    top: int = typer.Option(5, "--top", metavar="N", help="How many of the worst entries to list."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
) -> None:
    """Show |analytic − numeric| per entry of one gradient in a dump, with the worst entries.

    Example: gradcheck show run.npz 2/W
    """
    from .common import EXIT_OK, _consoles, _errors
    from ..learn.dump import load_dump, summarize
    from ..learn.dump_render import render_contents, render_heatmap

    out, err = _consoles()
    with _errors(err, debug):
        dumped = load_dump(dump)
        if key is None:
            render_contents(out, dumped)
        else:
            render_heatmap(out, summarize(dumped, key, check_kind, top))
        raise typer.Exit(EXIT_OK)


def register_commands(app: typer.Typer) -> None:
    app.command()(explain)
    app.command()(show)
