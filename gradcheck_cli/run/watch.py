"""Watch mode: check again whenever a config or a plugin file changes. No printing here.

Each run is a fresh interpreter (one spawned worker), so an edited plugin is imported anew; this
process never imports plugin code, and keeps only the results, to tell what changed.

Changes are found by polling (mtime and size, twice a second), which needs no dependency and
works the same on every platform and file system (network mounts and containers included, where
inotify-style events are often missing). A change is acted on once the files have stayed the same
for a moment, so an editor's save in several writes (or by rename) starts one run, not two.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ..results import ConfigResult, Status
from .pipeline import RunOptions, discover

#: seconds between polls, and how long the files must stay unchanged before a run starts
POLL, SETTLE = 0.5, 0.2

Snapshot = dict[Path, tuple[int, int] | None]


def watched_files(paths: list[str], exclude: list[str], plugins: list[str]) -> list[Path]:
    """The configs PATHS name now (folders are searched again each time, so a new file counts),
    the --plugin files, and the plugin files the configs list under `plugins:`."""
    from ..config.models import load_spec
    from ..errors import GradcheckError
    from .pipeline import config_plugin_paths

    try:
        configs = discover(paths, exclude)
    except GradcheckError:
        configs = []  # a path that is gone for a moment (an editor's rename): watch the rest
    files = [*configs, *map(Path, plugins)]
    for config in configs:
        try:  # parsing only: no plugin code runs here
            spec = load_spec(config)
            files += config_plugin_paths(spec.doc, config, spec.plugins)
        except GradcheckError:
            pass  # an invalid config: its error is in the run's output
    return sorted({f.resolve() for f in files})


def snapshot(files: list[Path]) -> Snapshot:
    out: Snapshot = {}
    for f in files:
        try:
            st = f.stat()
            out[f] = (st.st_mtime_ns, st.st_size)
        except OSError:
            out[f] = None
    return out


def changed(before: Snapshot, after: Snapshot) -> list[Path]:
    return sorted(f for f in before.keys() | after.keys() if before.get(f) != after.get(f))


def wait_for_change(files: Callable[[], list[Path]], seen: Snapshot,
                    sleep: Callable[[float], None] = time.sleep) -> tuple[list[Path], Snapshot]:
    """Block until a watched file changes and then stays unchanged for SETTLE seconds; return
    the files that changed and the new snapshot."""
    while True:
        sleep(POLL)
        now = snapshot(files())
        if now == seen:
            continue
        while True:  # let the save finish
            sleep(SETTLE)
            later = snapshot(files())
            if later == now:
                return changed(seen, now), now
            now = later


def check_fresh(files: list[Path], options: RunOptions, debug: bool = False) -> list[ConfigResult]:
    """The results of ``files`` from a new interpreter, which imports the plugins as they are now."""
    import multiprocessing

    from .parallel import check_task, interruptible, start_pool

    pool = start_pool(multiprocessing.get_context("spawn"), 1, list(options.plugins))
    try:
        return list(interruptible(pool.imap(check_task, [(path, options, debug) for path in files])))
    finally:
        pool.terminate()
        pool.join()


RowKey = tuple[str, str, str]  # config path, row label, tensor


@dataclass
class Changes:
    """What one run changed against the one before: statuses per row, and per config."""

    rows: dict[RowKey, Status] = field(default_factory=dict)      # the previous status of a changed row
    configs: dict[str, Status | None] = field(default_factory=dict)  # previous config status (None: new)

    def was(self, config: str, label: str, tensor: str) -> Status | None:
        return self.rows.get((config, label, tensor))


def statuses(results: list[ConfigResult]) -> dict[RowKey, Status]:
    return {(c.path, r.label, r.tensor): r.status for c in results for r in c.rows}


def compare(previous: list[ConfigResult] | None, current: list[ConfigResult]) -> Changes:
    if previous is None:
        return Changes()
    before, after = statuses(previous), statuses(current)
    rows = {k: before[k] for k in after if k in before and before[k] is not after[k]}
    old = {c.path: c.status for c in previous}
    configs = {c.path: old.get(c.path) for c in current if old.get(c.path) is not c.status}
    return Changes(rows, configs)


def runs(paths: list[str], exclude: list[str], options: RunOptions,
         debug: bool = False) -> Iterator[tuple[list[Path], list[ConfigResult], Changes]]:
    """(files that changed, results, changes) for the first run and every run after a change;
    endless: the caller stops it (Ctrl-C)."""
    def files() -> list[Path]:
        return watched_files(paths, exclude, list(options.plugins))

    seen = snapshot(files())
    previous, trigger = None, []
    while True:
        configs = discover(paths, exclude)
        results = check_fresh(configs, options, debug) if configs else []
        yield trigger, results, compare(previous, results)
        previous = results
        trigger, seen = wait_for_change(files, seen)
