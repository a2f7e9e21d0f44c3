"""Reading a file a user named (a config, a plugin) without trusting it: a folder, a device, a
FIFO or a socket is refused before anything is read, and a read stops at a size cap, so that
`/dev/zero` or a FIFO nobody writes to can neither exhaust memory nor hang a run."""
from __future__ import annotations

import os
import stat
from pathlib import Path


class FileRefused(Exception):
    """A named file that is not a readable regular file within the size cap; str() says why."""


def _mib(size: int) -> str:
    return f"{size / 2**20:g} MiB"


def check_regular(path: str | Path, limit: int, what: str) -> os.stat_result:
    """stat() the path (symlinks followed) and refuse anything but a regular file up to limit."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileRefused("no such file") from None
    except OSError as exc:
        raise FileRefused(f"cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise FileRefused(f"is a folder, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(info.st_mode) else
                "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else
                "a socket" if stat.S_ISSOCK(info.st_mode) else "not a regular file")
        raise FileRefused(f"is {kind}, not a regular file")
    if info.st_size > limit:
        raise FileRefused(f"is {info.st_size:,} bytes; a {what} may be at most {_mib(limit)}")
    return info


def read_bounded(path: str | Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (else FileRefused, nothing read)."""
    check_regular(path, limit, what)
    # O_NONBLOCK: should the path be swapped for a FIFO after the stat, open() must not wait
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise FileRefused(f"cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileRefused("is not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(f"is over {_mib(limit)}; a {what} may be at most {_mib(limit)}")
    return data
