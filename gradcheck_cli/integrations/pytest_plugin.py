"""pytest plugin (a ``pytest11`` entry point): gradcheck config files collected as tests.

Enabled by ``--gradcheck`` (files matching ``gradcheck_patterns``, by default
``*.gradcheck.yaml``, ``*.gradcheck.yml`` and ``*.gradcheck.toml``) or by the ini option
``gradcheck_paths`` (every config file under those paths). One test per config, or one per layer
with ``--gradcheck-per-layer``. Plugin layers come from ``--gradcheck-plugin PATH`` (repeatable)
or the ini option ``gradcheck_plugins``. Items are plain pytest items, so ``pytest -n auto``
(pytest-xdist) spreads them over cores unchanged.

Imports of numpy and the checker wait until a config is collected: the plugin is loaded in every
pytest run of an environment where gradcheck is installed.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import io
from pathlib import Path
from typing import Any, Iterator

import pytest

DEFAULT_PATTERNS = ["*.gradcheck.yaml", "*.gradcheck.yml", "*.gradcheck.toml"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradcheck", "gradient checks of network configs")
    group.addoption("--gradcheck", action="store_true", default=False,
                    help="collect gradcheck config files (gradcheck_patterns) as tests")
    group.addoption("--gradcheck-plugin", action="append", default=[], metavar="PATH",
                    help="plugin file with layer classes for the configs (repeatable)")
    group.addoption("--gradcheck-per-layer", action="store_true", default=False,
                    help="one test per layer instead of one per config")
    group.addoption("--gradcheck-allow-plugins", action="store_true", default=False,
                    help="load the plugin files configs outside the rootdir list under `plugins:` "
                         "(they are code; configs inside the rootdir may always use theirs, as "
                         "conftest.py may)")
    group.addoption("--gradcheck-strict", action="store_true", default=False,
                    help="treat warnings as failures")
    parser.addini("gradcheck_paths", type="paths", default=[],
                  help="files or folders whose config files are collected as gradcheck tests")
    parser.addini("gradcheck_patterns", type="args", default=DEFAULT_PATTERNS,
                  help="file name patterns collected under --gradcheck")
    parser.addini("gradcheck_plugins", type="paths", default=[],
                  help="plugin files with layer classes for the configs")
    parser.addini("gradcheck_per_layer", type="bool", default=False,
                  help="one test per layer instead of one per config")


def pytest_configure(config: pytest.Config) -> None:
    paths = config.getini("gradcheck_paths")
    if not paths:
        return
    # With no paths on the command line pytest walks only `testpaths`: add the config folders,
    # so that setting gradcheck_paths is enough. Only those that exist: pytest stops the whole
    # run at a missing one, and a path that names no config is one failing test of its own.
    source = getattr(config, "args_source", None)
    if source is not None and source == pytest.Config.ArgsSource.TESTPATHS:
        config.stash[_ADDED] = True
        config.args.extend(str(p) for p in paths if Path(p).exists() and str(p) not in config.args)


#: set when the gradcheck paths were added to the run's arguments (no paths on the command line)
_ADDED = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect items
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """A gradcheck path that names nothing, or a folder with no configs, is a failing test of its
    own (the command line's rule for its PATHs): the other configs are still checked."""
    items.extend(GradcheckPathItem.from_parent(session, name=problem.arg, nodeid=problem.arg,
                                               message=problem.message)
                 for problem in _path_problems(config))


def _path_problems(config: pytest.Config) -> list:
    from ..run.pipeline import PathProblem, discover_entries

    here = Path(config.invocation_params.dir)
    # only the paths this run collects from: `pytest tests/test_x.py` says nothing of them
    roots = [(here / str(a).split("::")[0]).resolve() for a in config.args]
    ini = config.inipath.name if config.inipath else "the ini file"
    problems = []
    for path in map(Path, config.getini("gradcheck_paths")):
        target = path.resolve()
        if not (config.stash.get(_ADDED, False) or any(r == target or r in target.parents for r in roots)):
            continue
        shown = _shown(path)
        problems.extend(dataclasses.replace(e, message=f"{e.message} (gradcheck_paths in {ini})")
                        for e in discover_entries([shown]) if isinstance(e, PathProblem))
    return problems


def _shown(path: Path) -> str:
    """Relative to the working folder when inside it, as messages then name it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("gradcheck") or config.getini("gradcheck_paths"))


def _wanted(config: pytest.Config, path: Path) -> bool:
    from ..run.pipeline import CONFIG_SUFFIXES

    if config.getoption("gradcheck") and any(fnmatch.fnmatch(path.name, pat)
                                              for pat in config.getini("gradcheck_patterns")):
        return True
    if not path.name.lower().endswith(CONFIG_SUFFIXES):
        return False
    resolved = path.resolve()
    for root in config.getini("gradcheck_paths"):
        root = Path(root).resolve()
        if resolved == root or root in resolved.parents:
            return True
    return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    config = parent.config
    if _enabled(config) and _wanted(config, file_path):
        return GradcheckFile.from_parent(parent, path=file_path)
    return None


def _load_plugins(config: pytest.Config) -> None:
    from ..run.pipeline import load_plugins

    paths = [*config.getoption("gradcheck_plugin"), *map(str, config.getini("gradcheck_plugins"))]
    load_plugins(paths)


def _options(config: pytest.Config, path: Path):
    from ..run.pipeline import RunOptions

    # pytest already imports and runs the Python files under its rootdir (conftest.py, test
    # modules): refusing a config's own `plugins:` there would protect nothing, so a config
    # inside the rootdir may use them; one outside it needs --gradcheck-allow-plugins.
    root = Path(config.rootpath).resolve()
    inside = root == path.resolve() or root in path.resolve().parents
    return RunOptions.build(plugins=[*config.getoption("gradcheck_plugin"),
                                     *map(str, config.getini("gradcheck_plugins"))],
                            allow_plugins=config.getoption("gradcheck_allow_plugins") or inside,
                            allow_hint="--gradcheck-allow-plugins (the config is outside pytest's "
                                       "rootdir), or name them with --gradcheck-plugin or "
                                       "`gradcheck_plugins` in the ini file",
                            load_hint="load its file: --gradcheck-plugin FILE or `gradcheck_plugins` "
                                      "in the ini file, or list it under the config's `plugins:`")


class GradcheckFailure(Exception):
    """A config that failed its check or could not be checked; the message is the report."""


class GradcheckFile(pytest.File):
    """One config file: checked once, shared by its items."""

    _result: Any = None

    def config_path(self) -> Path:
        """Relative to the working folder when inside it, as messages then name it."""
        try:
            return self.path.relative_to(Path.cwd())
        except ValueError:
            return self.path

    def collect(self) -> Iterator[pytest.Item]:
        per_layer = self.config.getoption("gradcheck_per_layer") or self.config.getini("gradcheck_per_layer")
        if not per_layer:
            yield GradcheckItem.from_parent(self, name="gradcheck", label=None, line=None)
            return
        from ..errors import GradcheckError
        from ..run.pipeline import plan_file

        _load_plugins(self.config)
        try:
            plan = plan_file(self.config_path(), _options(self.config, self.path))
        except GradcheckError as exc:
            # An invalid config is one failing test, not a collection error that stops the run.
            yield GradcheckItem.from_parent(self, name="gradcheck", label=None, line=None,
                                            error=str(exc))
            return
        for node in [*plan.nodes, plan.loss]:
            yield GradcheckItem.from_parent(self, name=f"{node.label} {node.type_name}",
                                            label=node.label, line=node.line)

    def result(self):
        if self._result is None:
            from ..run.parallel import check_one

            _load_plugins(self.config)
            self._result = check_one(self.config_path(), _options(self.config, self.path))
        return self._result


class _Reported(pytest.Item):
    """An item whose GradcheckFailure shows as its message alone (no traceback)."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> Any:
        if isinstance(excinfo.value, GradcheckFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)


class GradcheckPathItem(_Reported):
    """A gradcheck path that names no config: it fails with the located message."""

    def __init__(self, *, message: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message

    def runtest(self) -> None:
        raise GradcheckFailure(self.message)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name


class GradcheckItem(_Reported):
    def __init__(self, *, label: str | None, line: int | None, error: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.label, self.line, self.error = label, line, error

    def runtest(self) -> None:
        from ..results import Status
        from ..report.categories import category

        if self.error is not None:
            raise GradcheckFailure(self.error)
        result = self.parent.result()
        if result.status is Status.ERROR:
            raise GradcheckFailure(result.error)
        rows = [r for r in result.rows if self.label is None or r.label == self.label]
        strict = self.config.getoption("gradcheck_strict")
        if any(category(r.status, strict) in ("failure", "error") for r in rows):
            raise GradcheckFailure(_report(dataclasses.replace(result, rows=rows), strict))
        skipped = [r for r in rows if r.status is Status.SKIPPED]
        if rows and len(skipped) == len(rows):
            pytest.skip(skipped[0].reason or "skipped")

    def reportinfo(self) -> tuple[Path, int | None, str]:
        # pytest turns dots of the domain into "::" in -v output: the item name has none.
        return self.path, (self.line - 1 if self.line else None), self.name


def _report(result, strict: bool) -> str:
    """The config's table and the details of rows that did not pass, as plain text."""
    from rich.console import Console

    from ..report.table import render_config

    from ..report.categories import category

    bad = [f"{r.label} {r.layer_type} {r.tensor} ({r.status.value})" for r in result.rows
           if category(r.status, strict) in ("failure", "error")]
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, no_color=True, color_system=None, highlight=False,
                      force_terminal=False)
    render_config(console, result, verbose=False)
    # The first line is what pytest's short summary shows.
    return f"gradcheck {result.name}: wrong gradient in {', '.join(bad)}\n" + buffer.getvalue().rstrip()
