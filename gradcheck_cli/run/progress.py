"""A progress display for long checks: on stderr, only on a terminal, only after about a second,
gone when the config's result is printed."""
from __future__ import annotations

import time
from typing import Any

#: a check that finishes sooner than this never shows a bar
DELAY = 1.0


class ProgressReporter:
    """Receives the checker's evaluation counts (CheckSettings.progress) for one config at a time."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.progress: Any = None
        self.task: Any = None
        self.started = 0.0
        self.done = 0
        self.total = 0
        self.path = ""

    def start(self, path: str, total: int) -> None:
        self.path, self.total, self.done = path, max(1, int(total)), 0
        self.started = time.monotonic()

    def advance(self, evaluations: int, what: str) -> None:
        self.done += evaluations
        if self.progress is None:
            if time.monotonic() - self.started < DELAY:
                return
            self._show()
        self.progress.update(self.task, completed=min(self.done, self.total),
                             description=f"{self.path}: {what}")

    def _show(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 _Rate(), TimeRemainingColumn(), console=self.console, transient=True)
        self.progress.start()
        self.task = self.progress.add_task(self.path, total=self.total)

    def stop(self) -> None:
        """Remove the bar (before a result is printed, and at the end)."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _rate_column():
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        """Evaluations per second."""

        def render(self, task):
            speed = task.speed
            return Text("" if speed is None else f"{speed:,.0f} evaluations/s", style="progress.data.speed")

    return Rate()


def _Rate():  # noqa: N802  (reads as a column class at the call site)
    return _rate_column()
