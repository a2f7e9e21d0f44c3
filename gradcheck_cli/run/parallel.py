"""Checking many configs, serially or in a process pool, always yielding results in input order.

Workers ignore SIGINT (the parent owns Ctrl-C and terminates the pool), and each limits its BLAS
library to one thread: N workers × all cores of threads would oversubscribe the machine. The
command line limits its own process the same way before numpy loads, because a BLAS with another
thread count splits sums differently, and results must be bit-identical whatever --jobs is.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Iterator

from ..results import ConfigResult, Status
from .pipeline import PathProblem, RunOptions, check_file, in_place

#: Environment variables that cap the thread pools of the BLAS builds numpy ships with.
BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

REPORT_LINE = ("This is a bug in gradcheck; please report it with the config and the output of "
               "the same command with --debug.")


def check_one(path: Path, options: RunOptions, debug: bool = False) -> ConfigResult:
    """check_file, with an unexpected exception turned into an ERROR result for this config only
    (so one broken config does not stop the others); under debug the traceback is kept."""
    try:
        return check_file(path, options)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001  (a bug, reported as such)
        detail = "\n" + traceback.format_exc() if debug else ""
        return ConfigResult(path=str(path), name=path.stem, status=Status.ERROR,
                            error=f"{path}: internal error: {type(exc).__name__}: {exc}\n"
                                  f"{REPORT_LINE}{detail}")


def limit_blas_threads() -> None:
    """One BLAS thread, unless the user chose a count (then every process uses that one).
    Takes effect only before numpy is imported."""
    for var in BLAS_THREAD_VARS:
        os.environ.setdefault(var, "1")


#: glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: the largest mmap threshold glibc accepts on 64-bit systems
MMAP_THRESHOLD_MAX = 32 * 2**20


def keep_freed_memory() -> bool:
    """Let glibc's malloc reuse freed blocks of up to 32 MiB instead of handing each back to the
    system. A batch of perturbed copies makes temporaries of a few MiB in every layer; by default
    each is a fresh mmap whose pages are faulted in and zeroed one by one on every call, which
    measured as half the time of elementwise layers (sigmoid on a 400 KiB array: 14.9 → 6.2 µs
    per copy). No effect on any number computed. Returns whether the allocator took the settings
    (False off glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # trim only above 1 GiB of free heap: else the top of the heap goes back, and faults again
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, 2**30))


def _init_worker(plugins: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_blas_threads()
    keep_freed_memory()
    from .pipeline import load_plugins

    load_plugins(plugins)


def check_task(args: tuple[Path, RunOptions, bool]) -> ConfigResult:
    """check_one in a pool's worker (Pool.map passes one argument)."""
    return check_one(*args)


def check_files(files: list[Path], options: RunOptions, jobs: int = 1,
                debug: bool = False) -> Iterator[ConfigResult]:
    """Results for ``files`` in their order. ``jobs > 1`` runs them in that many processes; the
    results are the same as a serial run's (each config seeds its own generator)."""
    jobs = max(1, min(jobs, len(files)))
    if jobs == 1:
        for path in files:
            yield check_one(path, options, debug)
        return
    import multiprocessing

    # spawn: a fresh interpreter reads the BLAS variables set in the initializer before numpy is
    # imported (a forked child would inherit the parent's already started BLAS threads).
    context = multiprocessing.get_context("spawn")
    pool = start_pool(context, jobs, list(options.plugins))
    try:
        yield from interruptible(pool.imap(check_task, [(path, options, debug) for path in files],
                                            chunksize=1))
        pool.close()
    finally:
        # On Ctrl-C, an early stop (--fail-fast) or an error: stop the workers now.
        pool.terminate()
        pool.join()


#: how often the parent looks for a Ctrl-C while it waits for a worker's result
POLL_SECONDS = 0.1


def interruptible(results) -> Iterator[ConfigResult]:
    """The pool's results, with Ctrl-C raised here, between two waits. Python runs a signal
    handler at any bytecode: a KeyboardInterrupt raised while the pool's result condition is being
    re-acquired (a result has just woken the parent) leaves the lock released, and leaving its
    `with` block then raises RuntimeError("release unlocked lock") instead of the interrupt. So
    the handler only notes the signal; the wait wakes every POLL_SECONDS to look, and a Ctrl-C
    while the caller handles a result is raised when it asks for the next one."""
    import multiprocessing
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield from results  # signals reach the main thread only
        return
    interrupted = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    try:
        while True:
            if interrupted:
                raise KeyboardInterrupt
            try:
                result = results.next(timeout=POLL_SECONDS)
            except multiprocessing.TimeoutError:
                continue
            except StopIteration:
                return
            yield result
    finally:
        signal.signal(signal.SIGINT, previous)


def check_entries(entries: list[Path | PathProblem], options: RunOptions, jobs: int = 1,
                  debug: bool = False) -> Iterator[ConfigResult]:
    """check_files over the config files among ``entries`` (discover_entries'), with each
    PathProblem's error result in its place."""
    files = [e for e in entries if isinstance(e, Path)]
    stream = check_files(files, options, jobs, debug)
    try:
        yield from in_place(entries, stream)
    finally:
        stream.close()  # an early stop (--fail-fast, Ctrl-C) terminates the workers now


def start_pool(context, jobs: int, plugins: list[str]):
    """Workers start with SIGINT ignored (an ignored signal stays ignored across exec), so a
    Ctrl-C while they boot cannot print their tracebacks; the parent's handler is restored."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return context.Pool(jobs, initializer=_init_worker, initargs=(plugins,))
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return context.Pool(jobs, initializer=_init_worker, initargs=(plugins,))
    finally:
        signal.signal(signal.SIGINT, previous)
