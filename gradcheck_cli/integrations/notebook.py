"""The checks one call away in a notebook, without a YAML file.

    from gradcheck_cli import check_layer, check_spec
    check_layer(affine_forward, affine_backward, input_shape=(4,), params={"w": (4, 5), "b": (5,)})
    check_layer(MyLayer, input_shape=(4,), units=3)        # a plugin-style class (or an instance)
    check_spec({"input": {"shape": [4]}, "layers": [...], "loss": "mse"})

Both return a ``Report``: the same table as the command line, rendered by report/table.py as HTML in
Jupyter and as text in a terminal, with the rows as data (``report.rows``, ``report.to_records()``).
"""
from __future__ import annotations

import copy
import inspect
import json
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..layers.protocol import full_shape
from ..errors import UsageError, error_lines
from ..layers.protocol import Layer
from ..layers.catalog import lookup, register, unregister
from ..results import FAILING, ConfigResult, Row, Status


class Report:
    """A checked config: ``status``, ``ok``, ``rows`` (plain dataclasses) and the full ``result``.
    Shows as the command line's table: HTML in Jupyter, text with ``print``."""

    def __init__(self, result: ConfigResult) -> None:
        self.result = result

    @property
    def status(self) -> Status:
        return self.result.status

    @property
    def ok(self) -> bool:
        return self.result.status not in FAILING and self.result.status is not Status.ERROR

    @property
    def rows(self) -> list[Row]:
        return self.result.rows

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per row (for pandas.DataFrame)."""
        out = []
        for r in self.rows:
            out.append({"label": r.label, "layer": r.layer_type, "tensor": r.tensor,
                        "shape": r.tensor_shape, "grad_shape": r.grad_shape,
                        "layer_rel_error": r.isolated.rel_error,
                        "net_rel_error": r.network.rel_error if r.network else None,
                        "max_abs_error": r.isolated.max_abs_error, "status": r.status.value,
                        "diagnosis": r.isolated.diagnosis, "reason": r.reason})
        return out

    def _render(self, console) -> None:
        from ..report.table import render_config

        if self.result.status is Status.ERROR:
            console.print(error_lines(self.result.error or ""), style="red", soft_wrap=True)
        else:
            render_config(console, self.result, verbose=False, quiet=False)

    def _console(self, width: int = 140, **kw):
        from rich.console import Console

        # force_jupyter=False: inside Jupyter rich would display every print as it goes
        return Console(width=width, highlight=False, force_jupyter=False, **kw)

    def __rich_console__(self, console, options):
        from rich.text import Text

        yield Text.from_ansi(self._ansi(options.max_width))

    def _ansi(self, width: int) -> str:
        import io

        from rich.console import Console

        buf = io.StringIO()
        self._render(Console(file=buf, width=width, force_terminal=True, color_system="standard",
                             highlight=False, force_jupyter=False))
        return buf.getvalue()

    def text(self, width: int = 140, color: bool = False) -> str:
        console = self._console(width=width, record=True, file=_Null())
        self._render(console)
        return console.export_text(styles=color)

    def _repr_html_(self) -> str:
        console = self._console(record=True, file=_Null())
        self._render(console)
        return console.export_html(inline_styles=True, code_format="<pre style=\"font-family:"
                                   "Menlo,'DejaVu Sans Mono',consolas,monospace;font-size:12px\">"
                                   "<code>{code}</code></pre>")

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()


class _Null:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        pass


# -- check_spec ---------------------------------------------------------------------------------------

def _load_plugins(plugins: Iterable[Any]) -> None:
    from ..layers.plugins import load_plugin

    for p in plugins:
        if isinstance(p, (str, Path)):
            load_plugin(p)
        elif isinstance(p, type):
            if lookup(getattr(p, "type_name", "") or "") is not p:
                register(_snake(p.__name__))(p)
        else:
            raise UsageError(f"plugins: expected file paths or layer classes, got {type(p).__name__}")


def check_spec(spec: Mapping[str, Any] | str, plugins: Sequence[Any] = (), *,
               allow_plugins: bool = False, **settings: Any) -> Report:
    """Check a network given as a dict or as YAML/TOML text. ``plugins``: plugin files or layer
    classes (registered under their ``@register`` name, else their snake_case class name).
    A spec's own `plugins:` (files relative to the working directory) are Python code, loaded
    only with ``allow_plugins=True`` or when named in ``plugins`` too, as on the command line.
    ``settings``: CheckSettings fields (method, eps, pass_rtol, ...)."""
    return _check_spec(spec, plugins, None, settings, allow_plugins)


def _check_spec(spec: Mapping[str, Any] | str, plugins: Sequence[Any], origin: str | None,
                settings: dict, allow_plugins: bool = False) -> Report:
    _load_plugins(plugins)
    named = [str(p) for p in plugins if isinstance(p, (str, Path))]
    if isinstance(spec, Mapping):
        text, fmt = json.dumps(dict(spec), indent=2, default=list), "yaml"  # JSON is YAML 1.2
    elif isinstance(spec, str):
        text = spec
        fmt = "toml" if re.search(r"^\s*\[\[?\w", spec, re.M) and "layers:" not in spec else "yaml"
    else:
        raise UsageError(f"check_spec takes a dict or YAML/TOML text, got {type(spec).__name__}")
    # Lines of a text the user wrote mean something; lines of our own JSON rendering of a dict
    # (or of check_layer's one-layer spec) do not, so they are not shown.
    result, exc = _check_text(text, fmt, settings, named, allow_plugins)
    return Report(result if isinstance(spec, str) else _unlocated(result, exc, origin))


def _unlocated(result: ConfigResult, exc: Exception | None, origin: str | None) -> ConfigResult:
    """The result without line numbers; named by ``origin`` (what was checked) when given."""
    import dataclasses

    from ..errors import SpecError

    error = result.error
    if isinstance(exc, SpecError):
        error = SpecError(exc.message, key=exc.key).located()
    return dataclasses.replace(result, path=origin or result.path, error=error,
                               rows=[dataclasses.replace(r, line=None) for r in result.rows])


def _check_text(text: str, fmt: str, settings: dict, named: Sequence[str] = (),
                allow_plugins: bool = False) -> tuple[ConfigResult, Exception | None]:
    from ..config.models import spec_from_text
    from ..config.plan import plan_network
    from ..errors import GradcheckError
    from ..run.pipeline import RunOptions, check_plan, load_config_plugins

    options = RunOptions.build(check=settings, plugins=tuple(named), allow_plugins=allow_plugins,
                               allow_hint="allow_plugins=True (or pass the files in plugins=[...])",
                               load_hint="pass its file or class in plugins=[...]")
    try:
        spec = spec_from_text(text, fmt, path="<config>")
        # a spec's `plugins:` are relative to the working directory (a notebook's folder)
        load_config_plugins(spec, Path.cwd() / "<config>", options)
        # the same guard, build and check as the command line: the resource guard too, so that a
        # typo'd size must not fill the kernel's RAM
        result = check_plan(plan_network(spec, options.load_hint), options)
    except GradcheckError as exc:
        return ConfigResult(path="<config>", name="network", status=Status.ERROR, error=str(exc)), exc
    return result, None


# -- check_layer --------------------------------------------------------------------------------------

def _snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    s = re.sub(r"\W", "_", s)
    return s if s.isidentifier() else f"layer_{s}"


def _param_names(forward: Callable) -> list[str]:
    try:
        sig = inspect.signature(forward)
    except (TypeError, ValueError):
        return []
    names = [p.name for p in sig.parameters.values()
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return names[1:]


def _function_layer(forward: Callable, backward: Callable, params: Mapping[str, Any],
                    layouts: tuple[str, ...]) -> type:
    """A layer class around cs231n-style functions: forward(x, *params) -> (out, cache),
    backward(dout, cache) -> dx or (dx, dparam1, dparam2, ...) in the order of forward's params."""
    import numpy as np

    fwd, bwd = forward, backward  # the class body below defines its own forward/backward
    names = _param_names(fwd)
    missing = [n for n in names if n not in params]
    extra = [n for n in params if n not in names]
    if missing or extra:
        raise UsageError(f"{getattr(forward, '__name__', 'forward')} takes parameters "
                         f"({', '.join(names) or 'none'}) after x; params= must give a shape or an "
                         f"array for each" + (f"; missing {', '.join(missing)}" if missing else "")
                         + (f"; not parameters: {', '.join(extra)}" if extra else ""))
    given = dict(params)

    class FunctionLayer(Layer):
        __doc__ = (inspect.getdoc(fwd) or "") + "\n\n" + (inspect.getdoc(bwd) or "")

        def build(self, input_shape, rng):
            self.params = {}
            for n in names:
                v = given[n]
                if isinstance(v, (tuple, list)) and all(isinstance(d, int) for d in v):
                    self.params[n] = rng.standard_normal(tuple(v)) * (1.0 / np.sqrt(max(1, v[0])))
                else:
                    self.params[n] = np.array(v, dtype=float)
            m = 2
            x = rng.standard_normal(full_shape(self.layout, input_shape, m))
            out = np.asarray(fwd(x, *(self.params[n] for n in names))[0])
            return tuple(out.shape[:-1] if self.layout == "columns" else out.shape[1:])

        def forward(self, x):
            return fwd(x, *(self.params[n] for n in names))

        def backward(self, dout, cache):
            result = bwd(dout, cache)
            if not names:
                return (result[0] if isinstance(result, tuple) and len(result) == 1 else result), {}
            if not isinstance(result, tuple) or len(result) != len(names) + 1:
                got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
                raise TypeError(f"backward must return (dx, {', '.join('d' + n for n in names)}), got {got}")
            return result[0], dict(zip(names, result[1:]))

    FunctionLayer.layouts = tuple(layouts)
    FunctionLayer.__qualname__ = FunctionLayer.__name__ = f"FunctionLayer[{getattr(forward, '__name__', 'f')}]"
    return FunctionLayer


def _instance_class(instance: Any) -> type:
    """A class whose instances start as copies of ``instance``, so the planner can make one."""
    cls = type(instance)
    state = copy.deepcopy(instance.__dict__)

    def __init__(self) -> None:
        self.__dict__.update(copy.deepcopy(state))

    sub = type(cls.__name__, (cls,), {"__init__": __init__, "__module__": cls.__module__,
                                      "__qualname__": cls.__qualname__})
    return sub


def check_layer(layer_or_forward: Any, backward: Callable | None = None, *,
                input_shape: Sequence[int], batch: int = 4, layout: str = "rows",
                params: Mapping[str, Any] | None = None, loss: str = "mse", seed: int = 0,
                dtype: str = "float64", **options: Any) -> Report:
    """Check one layer: a plugin-style class (``options`` are its constructor's), an instance, or
    cs231n-style functions ``forward(x, *params) -> (out, cache)`` and ``backward(dout, cache) ->
    (dx, *dparams)`` with ``params={"w": shape or array, ...}``. ``input_shape`` is per example
    (without the batch axis); the loss after the layer (``mse``) only feeds the end-to-end check."""
    if isinstance(layer_or_forward, (tuple, list)) and len(layer_or_forward) == 2 and backward is None:
        layer_or_forward, backward = layer_or_forward
    if backward is not None:
        if options:
            raise UsageError(f"options {', '.join(options)} are for layer classes; functions take params=")
        cls = _function_layer(layer_or_forward, backward, params or {}, ("rows", "columns"))
        base = _snake(getattr(layer_or_forward, "__name__", "function"))
        name = "my_" + (base[:-len("_forward")] if base.endswith("_forward") else base)
    elif isinstance(layer_or_forward, type):
        if params:
            raise UsageError("params= is for a pair of functions; a class creates its own in build()")
        cls = type(layer_or_forward.__name__, (layer_or_forward,),
                   {"__module__": layer_or_forward.__module__,
                    "__qualname__": layer_or_forward.__qualname__})
        name = "my_" + _snake(layer_or_forward.__name__)
    elif callable(getattr(layer_or_forward, "forward", None)):
        if options or params:
            raise UsageError("an instance is already configured: pass no options or params")
        cls = _instance_class(layer_or_forward)
        name = "my_" + _snake(type(layer_or_forward).__name__)
    else:
        raise UsageError("check_layer takes a layer class or instance, or forward and backward functions")
    _force_register(name, cls)
    entry = {"type": name, **options}
    spec = {"name": name.removeprefix("my_"), "seed": seed, "dtype": dtype, "layout": layout,
            "input": {"shape": list(input_shape), "batch": batch}, "layers": [entry], "loss": loss}
    what = (f"{getattr(layer_or_forward, '__name__', 'forward')}, {getattr(backward, '__name__', 'backward')}"
            if backward is not None else getattr(layer_or_forward, "__name__", type(layer_or_forward).__name__))
    return _check_spec(spec, (), f"check_layer({what})", {})


def _force_register(name: str, cls: type) -> None:
    # A notebook cell is re-run with an edited layer: the newest definition wins under its name,
    # but only over an earlier one of ours, never over a built-in or a plugin.
    if getattr(lookup(name), "_from_notebook", False):
        unregister(name)
    cls._from_notebook = True
    register(name)(cls)
