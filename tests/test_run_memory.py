"""run/memory.py: the resident memory one check takes, and how -v says it."""
from __future__ import annotations

import mmap
import sys

import pytest

from gradcheck_cli.cli.render import memory_words
from gradcheck_cli.results import ConfigResult, Status
from gradcheck_cli.run import memory
from gradcheck_cli.run.memory import ResidentPeak

MIB = 2**20


def _touched(size: int) -> mmap.mmap:
    """``size`` bytes of fresh private pages, every one written: malloc could hand back memory
    an earlier test freed and kept, already resident (and shared pages are not the process's
    data)."""
    pages = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    for at in range(0, size, mmap.PAGESIZE):
        pages[at] = 1
    return pages


@pytest.mark.skipif(sys.platform != "linux", reason="the high-water mark is reset through /proc")
def test_the_peak_is_reset_where_the_check_starts_and_counts_what_it_touches():
    _touched(40 * MIB).close()              # an earlier peak, given back: not the next check's
    peak = ResidentPeak()
    assert peak.before is not None and peak.before > 0
    held = _touched(24 * MIB)
    grown = peak.growth()
    held.close()
    # the pages, and not the earlier peak; the interpreter adds a little
    assert 24 * MIB <= grown <= 32 * MIB, grown / MIB


def test_where_the_system_does_not_say_nothing_is_claimed(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "_PROC", tmp_path / "missing")
    peak = ResidentPeak()
    assert peak.before is None and peak.growth() is None


def _result(**memory_fields) -> ConfigResult:
    return ConfigResult(path="n.yaml", name="n", status=Status.PASS, **memory_fields)


def test_verbose_says_the_peak_what_the_checks_data_added_and_the_models_figure():
    measured = _result(peak_memory=60 * MIB, check_memory=4 * MIB + 100 * 1024,
                       memory_before=31 * MIB + 512 * 1024, memory_model=4 * MIB,
                       memory_largest="isolated check, layer 1 W")
    assert memory_words(measured) == (
        ", peak resident memory of the process 60.0 MiB (data: 4.1 MiB above the 31.5 MiB before "
        "the network was built); modelled: 4.0 MiB (the network's arrays and the largest tensor "
        "check, isolated check, layer 1 W, with the estimate's margin)")
    # where the rise is not measured, the process's own peak, which may be an earlier check's
    assert memory_words(_result(peak_memory=60 * MIB)) == ", peak resident memory of the process 60.0 MiB"
    assert memory_words(_result()) == ""
