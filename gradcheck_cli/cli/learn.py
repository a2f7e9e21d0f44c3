"""The learner commands, `gradcheck explain` and `gradcheck show`: options in, library call, render.

Kept out of app.py so that the main command file stays small; app.py registers them on its app.
"""
from __future__ import annotations

from typing import Optional

import typer

from .options import AllowPlugins, Debug, ExplainFormat, Plugins


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
    plugin: Plugins = [],
    allow_plugins: AllowPlugins = False,
    debug: Debug = False,
) -> None:
    """Print each layer's forward and backward equations with this config's shapes.

    Examples:

      gradcheck explain configs/course_columns.yaml --layer 2

      gradcheck explain configs/course_columns.yaml --layer 3 --jacobian --tensor W
    """
    from ..run.pipeline import RunOptions, plan_config
    from .common import EXIT_OK, consoles, error_guard

    out, err = consoles()
    with error_guard(err, debug):
        plan = plan_config(config, RunOptions.build(plugins=plugin, allow_plugins=allow_plugins))
        _explain(out, plan, layer, jacobian, tensor, markdown=fmt is ExplainFormat.markdown)
        raise typer.Exit(EXIT_OK)


def _explain(out, plan, layer: Optional[str], jacobian: bool, tensor: Optional[str], markdown: bool) -> None:
    """The equations of the plan's layers, or (--jacobian) one layer's Jacobian, as text or
    Markdown."""
    from ..errors import UsageError

    if jacobian:
        if layer is None:
            raise UsageError("--jacobian needs --layer: the Jacobian of one layer")
        from ..check.network import build_network
        from ..learn.jacobian import jacobian_view
        from ..learn.explain_render import jacobian_markdown, render_jacobian

        view = jacobian_view(build_network(plan), layer, tensor)
        if markdown:
            out.file.write(jacobian_markdown(view))
        else:
            render_jacobian(out, view)
        return
    if tensor is not None:
        raise UsageError("--tensor goes with --jacobian")
    from ..learn.explain import explain_plan
    from ..learn.explain_render import explanation_markdown, render_explanation

    ex = explain_plan(plan, layer)
    if markdown:
        out.file.write(explanation_markdown(ex))
    else:
        render_explanation(out, ex)


def show(
    dump: str = typer.Argument(..., metavar="DUMP.npz", help="A .npz file written by `gradcheck check --dump`."),
    key: Optional[str] = typer.Argument(None, metavar="KEY", help="Which gradient: LAYER/TENSOR (e.g. 2/W), "
                                        "optionally prefixed with the config name; without it, "
                                        "a list of what the file holds."),
    check_kind: str = typer.Option("isolated", "--check", metavar="CHECK", help="isolated or network."),
    top: int = typer.Option(5, "--top", metavar="N", help="How many of the worst entries to list."),
    debug: Debug = False,
) -> None:
    """Show |analytic − numeric| per entry of one gradient in a dump, with the worst entries.

    Example: gradcheck show run.npz 2/W
    """
    from .common import EXIT_OK, consoles, error_guard
    from ..learn.dump import load_dump, summarize
    from ..learn.dump_render import render_contents, render_heatmap

    out, err = consoles()
    with error_guard(err, debug):
        dumped = load_dump(dump)
        if key is None:
            render_contents(out, dumped)
        else:
            render_heatmap(out, summarize(dumped, key, check_kind, top))
        raise typer.Exit(EXIT_OK)


def register_commands(app: typer.Typer) -> None:
    app.command()(explain)
    app.command()(show)
