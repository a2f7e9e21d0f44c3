"""The memory one check takes, measured: the process's high-water mark of resident memory is reset
before the network is built and read once the check is done, less the pages that hold files.

Linux only (/proc/self/clear_refs, since 4.0); elsewhere nothing is measured, since the peak a
process reaches over its whole life says nothing of one check among several. Pages that map
files are left out: they are the code of numpy and the BLAS, which a first check faults in as
it runs it (3.6 MiB for a network of 43 parameters), shared, and dropped by the kernel when it
needs the room; the rest, the process's data, is what --max-memory bounds. The file pages are
read at the end (they only grow), so the figure is at least the data's rise at the peak. In a
fresh process the rise is what the check's data took, to hold against -v's figures; after an
earlier check in the same process only what this one added, since malloc reuses the memory that
check freed (run/parallel.keep_freed_memory).
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
        self.before = _data(_status())

    def growth(self) -> int | None:
        """How far the process's data rose above ``before`` at its peak since, in bytes."""
        now = _status() if self.before is not None else {}
        if self.before is None or "VmHWM" not in now or "RssFile" not in now:
            return None
        return max(0, now["VmHWM"] - now["RssFile"] - now.get("RssShmem", 0) - self.before)


def _data(status: dict[str, int]) -> int | None:
    """Resident pages that map no file (the kernel's RssAnon)."""
    return status.get("RssAnon")


def _status() -> dict[str, int]:
    """The memory lines of /proc/self/status, in bytes (the kernel writes kB)."""
    out: dict[str, int] = {}
    try:
        for line in (_PROC / "status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.startswith(("Vm", "Rss")):
                out[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return {}
    return out
