"""Fixtures, and the hypothesis profile, shared by the test modules."""
from __future__ import annotations

import contextlib
import inspect
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from typer.testing import CliRunner

from gradcheck_cli.cli import app
from gradcheck_cli.layers.catalog import registered
from gradcheck_cli.layers.registry import is_builtin, register, unregister

# The suite is deterministic: every hypothesis test draws the same examples on every run and
# machine (no example database), and a slow, shared CI machine is no reason to fail one. For a
# random search: GRADCHECK_HYPOTHESIS=random python -m pytest ...
settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("random", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("GRADCHECK_HYPOTHESIS", "ci"))


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


@contextlib.contextmanager
def layers_registered(classes: dict[str, type]) -> Iterator[None]:
    """The test's own layer classes registered under these names, for as long as it runs."""
    for name, cls in classes.items():
        register(name)(cls)
    try:
        yield
    finally:
        for name in classes:
            unregister(name)


@pytest.fixture
def builtins_only() -> Iterator[None]:
    """These messages are those of the built-ins alone."""
    with plugin_layers_hidden():
        yield


@pytest.fixture
def run(tmp_path, monkeypatch):
    """Write files into an empty folder, run `gradcheck ARGS` there; paths show as written."""
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str, files: dict[str, str] | None = None):
        for name, text in (files or {}).items():
            (tmp_path / name).write_text(textwrap.dedent(text))
        return CliRunner().invoke(app, list(args))

    return invoke
