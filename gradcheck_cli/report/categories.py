"""How a row or config status counts in reports (failure, warning, error, skip).

Kept apart from results.py so that reports classify any status the checker may add, the way
RunResult.exit_code does: only FAIL and inherited fail (and warn, under --strict); any other
verdict (kink, or one added later) is a note that does not fail the run.
"""
from __future__ import annotations

from ..results import FAILING, Status


def category(status: Status, strict: bool = False) -> str:
    """One of "pass", "failure", "warning", "note", "error", "skipped" for a status."""
    if status is Status.PASS:
        return "pass"
    if status is Status.ERROR:
        return "error"
    if status is Status.SKIPPED:
        return "skipped"
    if status in FAILING:
        return "failure"
    if status is Status.WARN:
        return "failure" if strict else "warning"
    return "note"


def fmt_number(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2e}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(str(v) for v in value) + (",)" if len(value) == 1 else ")")
    return str(value)
