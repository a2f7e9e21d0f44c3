"""Loading plugin files: Python modules that register layer classes with ``@register``.

A plugin is code; it runs only when the user asked for it on the command line (``--plugin``),
or allowed a config's ``plugins:`` list with ``--allow-plugins``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from pathlib import Path

from ..errors import GradcheckError, PluginError
from .catalog import registered

#: a plugin is Python source someone wrote; more than this is not a layer file
MAX_PLUGIN_BYTES = 10 * 1024 * 1024

_LOADED: dict[Path, list[str]] = {}


def load_plugin(path: str | Path, shown: str | None = None) -> list[str]:
    """Import one plugin file (once per process); return the layer names it registered.
    Messages name the file as ``shown`` (as the user wrote it) when given."""
    p = Path(path)
    path = shown or path
    from ..files import FileRefused, check_regular

    try:
        check_regular(p, MAX_PLUGIN_BYTES, "plugin file")
    except FileRefused as exc:
        message = "plugin file not found" if str(exc) == "no such file" else str(exc)
        raise PluginError(f"{path}: {message}") from None
    resolved = p.resolve()
    if resolved in _LOADED:
        return _LOADED[resolved]
    before = registered()
    name = "gradcheck_plugin_" + hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: not a Python file that can be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except GradcheckError as exc:
        sys.modules.pop(name, None)
        raise PluginError(f"{path}: {exc}") from None
    except BaseException as exc:  # noqa: BLE001  (a plugin may raise anything, even SystemExit)
        sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise PluginError(f"{_plugin_location(exc, resolved, path)}: importing the plugin raised "
                          f"{type(exc).__name__}: {exc}") from None
    added = sorted(k for k, v in registered().items() if before.get(k) is not v)
    if not added:
        raise PluginError(f"{path}: the plugin registers no layer: decorate a class with "
                          "@register(\"name\") (from gradcheck_cli import register)")
    _LOADED[resolved] = added
    return added


def _plugin_location(exc: BaseException, resolved: Path, shown: str | Path) -> str:
    """file:line of the plugin line that raised (a SyntaxError carries its own)."""
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f"{shown}:{exc.lineno}" + (f":{exc.offset}" if exc.offset else "")
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename).resolve() == resolved:
            return f"{shown}:{frame.lineno}"
    return str(shown)

