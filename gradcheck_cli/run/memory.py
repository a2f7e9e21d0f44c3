"""The resident memory one check takes, measured: the process's high-water mark is reset before
the network is built and read once the check is done, against what the process held before.

Linux only (/proc/self/clear_refs, since 4.0); elsewhere nothing is measured, since the peak a
process reaches over its whole life says nothing of one check among several. In a fresh
process the rise is what the check took, interpreter and modules left out, the figure to hold
against -v's estimate; after an earlier check in the same process it is only what the check
added, since malloc reuses the memory that check freed (run/parallel.keep_freed_memory).
"""
from __future__ import annotations

from pathlib import Path

_PROC = Path("/proc/self")


class ResidentPeak:
    """Made where the check starts; ``growth()`` once it is done."""

    def __init__(self) -> None:
        self.before: int | None = None
        try:
            # "5" resets the peak resident size to the current one and clears nothing else
            (_PROC / "clear_refs").write_text("5")
        except OSError:
            return
        self.before = _status_bytes("VmRSS")

    def growth(self) -> int | None:
        """How far the resident memory rose above ``before`` at its peak since, in bytes."""
        peak = _status_bytes("VmHWM") if self.before is not None else None
        return None if peak is None or self.before is None else max(0, peak - self.before)


def _status_bytes(field: str) -> int | None:
    try:
        for line in (_PROC / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024     # the kernel writes kB
    except (OSError, ValueError, IndexError):
        return None
    return None
