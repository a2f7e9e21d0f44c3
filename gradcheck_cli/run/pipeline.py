"""Running checks on files: discovery, plugins, errors turned into results. No printing here."""
from __future__ import annotations

import dataclasses
import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ..errors import CheckTimeout, GradcheckError, PluginError, UsageError
from ..results import ConfigResult, Status
from ..check.settings import CheckSettings
from ..config.document import TOML_SUFFIXES, YAML_SUFFIXES, Document
from .memory import ResidentPeak

CONFIG_SUFFIXES = YAML_SUFFIXES + TOML_SUFFIXES


@dataclass(frozen=True)
class RunOptions:
    """What a front end (the command line, the notebook API, the pytest plugin) chose for every
    config of a run: how to check, and how to run the checks."""

    #: how to check; a config's `check:` gives the fields of SPEC_FIELDS that are not in ``chosen``
    settings: CheckSettings = CheckSettings()
    #: the settings the caller chose (they win over a config's `check:`)
    chosen: frozenset[str] = frozenset()
    plugins: Sequence[str] = ()
    allow_plugins: bool = False
    #: resource guard (see check/budget.py): None means the defaults
    max_memory: int | None = None
    max_evals: int | None = None
    #: seconds one config's check may take (None: no limit); a plugin that never returns
    #: must not hang a CI job
    timeout: float | None = None
    #: whether each check's resident memory is measured (run/memory.py), which resets the
    #: process's peak: the command line's processes are its own, a notebook's or pytest's not
    measure_memory: bool = False
    #: a progress display (progress.ProgressReporter), serial runs only: not picklable
    progress: Any = field(default=None, repr=False, compare=False)
    #: how this front end lets a config's `plugins:` run, and loads a plugin file, for the
    #: messages that need it (the pytest plugin and a pre-commit hook have their own words)
    allow_hint: str = "--allow-plugins (or name them with --plugin)"
    load_hint: str = "load its file: --plugin FILE, or list it under `plugins:` and pass --allow-plugins"

    @classmethod
    def build(cls, check: Mapping[str, Any] | None = None, **run: Any) -> "RunOptions":
        """The one place a front end's inputs become options: ``check`` holds CheckSettings
        fields, None meaning "the config's" (an option not given); ``run`` the other fields."""
        chosen = {k: v for k, v in (check or {}).items() if v is not None}
        return cls(settings=CheckSettings(**chosen), chosen=frozenset(chosen), **run)

    def settings_for(self, spec: Any) -> CheckSettings:
        """How to check this config: its `check:` under the caller's choices."""
        return self.settings.under_spec(spec, keep=self.chosen)


@dataclass(frozen=True)
class PathProblem:
    """A PATH argument that names no config: nothing there, or a folder or pattern without one."""

    arg: str
    message: str

    def result(self) -> ConfigResult:
        return ConfigResult(path=self.arg, name=self.arg, status=Status.ERROR, error=self.message)


def discover_entries(paths: list[str], exclude: list[str] | None = None) -> list[Path | PathProblem]:
    """Config files named by paths, in argument order: files as given, folders searched
    recursively for *.yaml, *.yml and *.toml (hidden folders skipped), shell globs expanded,
    sorted per argument, no file twice. A path that names nothing, or a folder or pattern with no
    config (after --exclude), is a PathProblem in its place, so that the others are still checked."""
    entries: list[Path | PathProblem] = []
    seen: set[Path] = set()
    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            found, problem = sorted(_walk(p)), f"{arg}: no config files (*.yaml, *.yml, *.toml) in this folder"
        elif p.exists() or p.is_symlink():
            found, problem = [p], None
        elif glob.has_magic(arg):
            found = []
            for m in sorted(Path(m) for m in glob.glob(arg, recursive=True)):
                found.extend(sorted(_walk(m)) if m.is_dir() else [m])
            problem = f"{arg}: no file matches this pattern"
        else:
            found, problem = [], f"{arg}: no such file or folder"
        if exclude:
            found = [f for f in found if not any(f.match(pat) or Path(f.as_posix()).match(pat)
                                                  for pat in exclude)]
        if not found and problem:
            entries.append(PathProblem(arg, problem))
        for f in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                entries.append(f)
    return entries


def discover(paths: list[str], exclude: list[str] | None = None) -> list[Path]:
    """The config files of ``discover_entries``; the first path that names none is a UsageError."""
    entries = discover_entries(paths, exclude)
    for entry in entries:
        if isinstance(entry, PathProblem):
            raise UsageError(entry.message)
    return entries


def _walk(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.lower().endswith(CONFIG_SUFFIXES) and not name.startswith("."):
                yield Path(root) / name


def plan_config(config: str, options: RunOptions):
    """One named config file planned, with the options' plugin files loaded (sweep, explain)."""
    load_plugins(options.plugins)
    if not Path(config).is_file():
        raise UsageError(f"{config}: no such file")
    return plan_file(Path(config), options)


def validate_entries(entries: list[Path | PathProblem], options: RunOptions) -> Iterator[ConfigResult]:
    """validate_file's result for each config file, a PathProblem's error result in its place."""
    for entry in entries:
        yield entry.result() if isinstance(entry, PathProblem) else validate_file(entry, options)


def in_place(entries: list[Path | PathProblem], results: Iterable[ConfigResult]) -> Iterator[ConfigResult]:
    """The results of the config files among ``entries``, with a PathProblem's error result in
    its place."""
    results = iter(results)
    for entry in entries:
        yield entry.result() if isinstance(entry, PathProblem) else next(results)


def load_plugins(paths: Iterable[str]) -> None:
    from ..layers.plugins import load_plugin

    for p in paths:
        load_plugin(p)


def check_file(path: Path, options: RunOptions | None = None) -> ConfigResult:
    """Validate, build and check one config; a user-facing error becomes an ERROR result."""
    options = options or RunOptions()
    try:
        return _check_file(path, options)
    except GradcheckError as exc:
        return ConfigResult(path=str(path), name=path.stem, status=Status.ERROR, error=str(exc))


def _check_file(path: Path, options: RunOptions) -> ConfigResult:
    return check_plan(plan_file(path, options), options)


def check_plan(plan: Any, options: RunOptions) -> ConfigResult:
    """Guard, build and check one planned config (a GradcheckError propagates): the steps every
    front end shares after its own loading (a file, or a notebook's dict or text)."""
    # the engine is imported only once the guard lets the check run: a refusal needs the plan
    # and the estimate alone, and returns without paying for the rest of the checker's imports
    from ..check.budget import guard

    where = plan.spec.doc.path
    settings, cost = guard(plan, options.settings_for(plan.spec), options.max_memory, options.max_evals)
    from ..check.engine import check_network
    from ..check.network import build_network

    if options.progress is not None:
        options.progress.start(where, cost.evaluations)
        settings = dataclasses.replace(settings, progress=options.progress.advance)
    peak = ResidentPeak() if options.measure_memory else None
    with _time_limit(options.timeout, where):
        result = check_network(build_network(plan), settings)
    result.cost = cost.to_dict()
    if peak is not None:
        result.check_memory, result.memory_before = peak.growth(), peak.before
    return result


class _time_limit:
    """Raise a located error when the block runs longer than ``seconds`` (main thread only:
    elsewhere, e.g. inside a test runner's worker thread, no limit is set)."""

    def __init__(self, seconds: float | None, path: str) -> None:
        self.seconds, self.path = seconds, path

    def __enter__(self):
        import signal
        import threading

        self.active = bool(self.seconds) and threading.current_thread() is threading.main_thread() \
            and hasattr(signal, "setitimer")
        if self.active:
            def expired(signum, frame):
                raise CheckTimeout(f"{self.path}: the check took longer than --timeout {self.seconds:g} s "
                                   "(a layer that never returns? a network too large for a full "
                                   "check? try --mode sample or --mode directional)")
            self.previous = signal.signal(signal.SIGALRM, expired)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.active:
            import signal

            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False


def plan_file(path: Path, options: RunOptions):
    """Parse, load the plugins the config may use, and resolve the network (no numerics)."""
    from ..config.document import load_document
    from ..config.models import validate_document
    from ..config.plan import entry_problems, plan_network
    from ..errors import SpecError, spec_errors

    doc = load_document(path)
    try:
        spec = validate_document(doc)
    except SpecError as exc:
        # The layer entries' own problems too, so that one run shows all of a file's mistakes;
        # not when the config names plugins: they are not loaded, and their layer types would
        # read as unknown.
        plugins = isinstance(doc.data, dict) and "plugins" in doc.data
        raise spec_errors([exc, *([] if plugins else entry_problems(doc, options.load_hint))]) from None
    if spec.name is None:
        spec.name = Path(path).stem
    load_config_plugins(spec, Path(path), options)
    return plan_network(spec, options.load_hint)


def load_config_plugins(spec: Any, path: Path, options: RunOptions) -> None:
    """Load the files a config lists under `plugins:` (relative to ``path``'s folder), if the
    front end allowed them; a located error otherwise."""
    from ..layers.plugins import load_plugin

    if not spec.plugins:
        return
    targets = config_plugin_paths(spec.doc, path, spec.plugins)
    # Files the user named with --plugin were already allowed on the command line.
    named = {Path(p).resolve() for p in options.plugins}
    if not options.allow_plugins and not all(t in named for t in targets):
        raise spec.doc.error("this config names plugins, which are Python code; gradcheck runs "
                             f"them only with {options.allow_hint}", ("plugins",))
    for i, (entry, target) in enumerate(zip(spec.plugins, targets)):
        try:
            # named as the config wrote it, relative to the config's folder
            load_plugin(target, shown=str(path.parent / entry))
        except PluginError as exc:
            raise spec.doc.error(str(exc), ("plugins", i)) from None


#: The words of the messages above for a command run by a pre-commit hook (pre-commit sets
#: PRE_COMMIT=1 in a hook's environment): options go into the hook's `args:`.
PRE_COMMIT_HINTS = dict(
    allow_hint="--allow-plugins: add `args: [--allow-plugins]` to the hook in .pre-commit-config.yaml "
               "(or `args: [--plugin, FILE]`)",
    load_hint="load its file: add `args: [--plugin, FILE]` to the hook in .pre-commit-config.yaml, "
              "or list it under `plugins:` and add `args: [--allow-plugins]`")


def validate_file(path: Path, options: RunOptions | None = None) -> ConfigResult:
    """Schema and shape validation only: no arrays beyond what plugin shapes need."""
    options = options or RunOptions()
    try:
        plan = plan_file(path, options)
    except GradcheckError as exc:
        return ConfigResult(path=str(path), name=path.stem, status=Status.ERROR, error=str(exc))
    spec = plan.spec
    return ConfigResult(path=str(path), name=spec.name or path.stem, status=Status.PASS,
                        seed=spec.seed, dtype=spec.dtype, layout=spec.layout,
                        n_params=plan.n_params, batch=spec.input.batch)


def config_plugin_paths(doc: Document, config: Path, entries: list[str]) -> list[Path]:
    """Paths of a config's `plugins:`, which must stay inside the config's folder."""
    base = config.resolve().parent
    out = []
    for i, entry in enumerate(entries):
        candidate = Path(entry)
        if candidate.is_absolute():
            raise doc.error(f"absolute plugin path {entry!r} is not allowed in a config; "
                            "name it with --plugin instead", ("plugins", i))
        target = (base / candidate).resolve()
        if base not in target.parents:
            raise doc.error(f"plugin path {entry!r} resolves outside the config's folder; "
                            "name it with --plugin instead", ("plugins", i))
        if not target.is_file():
            raise doc.error(f"plugin file {entry!r} not found (looked for {target})", ("plugins", i))
        out.append(target)
    return out
