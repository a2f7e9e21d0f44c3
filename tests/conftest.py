"""Fixtures shared by the test modules."""
from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gradcheck_cli.layers.catalog import registered
from gradcheck_cli.layers.registry import is_builtin, register, unregister


@contextlib.contextmanager
def plugin_layers_hidden(keep_from: Path | None = None) -> Iterator[None]:
    """Unregister the plugin layers other tests of this process registered (they change the
    suggestions and the list of valid types in messages), except those defined under keep_from:
    a plugin file is imported once per process, so its layers would not come back."""
    def kept(cls: type) -> bool:
        if keep_from is None:
            return False
        try:
            return Path(inspect.getfile(cls)).resolve().is_relative_to(keep_from)
        except (TypeError, OSError):
            return False

    hidden = {n: c for n, c in registered().items() if not is_builtin(c) and not kept(c)}
    for name in hidden:
        unregister(name)
    try:
        yield
    finally:
        for name, cls in hidden.items():
            if name not in registered():
                register(name)(cls)


@pytest.fixture
def builtins_only() -> Iterator[None]:
    """These messages are those of the built-ins alone."""
    with plugin_layers_hidden():
        yield
