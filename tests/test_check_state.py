"""state.py's Ledger: what each batch of copies costs, in evaluations and, by the memory model,
in bytes; and the largest tensor check, the figure -v holds against the measured memory."""
from __future__ import annotations

import numpy as np

from gradcheck_cli.check.budget import ENTRY_BYTES, PROBE_BYTES, VALUE_BYTES
from gradcheck_cli.check.copies import Kept
from gradcheck_cli.check.factored import recalled
from gradcheck_cli.check.state import Ledger


def _plain(idx: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=float) * 2.0


class _Grouped:
    """An evaluator that puts four probes in one copy, and says how many copies it made."""

    def __init__(self) -> None:
        self.copies = 0

    def __call__(self, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        self.copies += -(-idx.size // 4)
        return _plain(idx, values)


def test_a_batch_costs_its_copies_and_by_the_model_its_probes_bytes():
    ledger = Ledger(per_probe=2)
    evaluate = ledger.metered(_plain, "t", per_probe=100, probed=True)
    out = evaluate(np.arange(6), np.ones(6))
    assert np.array_equal(out, np.full(6, 2.0))
    assert (ledger.evaluations, ledger.probes, ledger.made["t"], ledger.batches["t"]) == (6, 6, 6, 600)
    # probes shared four to a copy: the copies made are counted, and the bytes are the probes'
    # (the per-probe figure of a shared evaluator is a copy's bytes over its share)
    grouped = ledger.metered(_Grouped(), "g", per_probe=25)
    grouped(np.arange(8), np.ones(8))
    assert (ledger.made["g"], ledger.batches["g"]) == (2, 200)
    # the largest batch of a check is kept, not the sum
    grouped(np.arange(4), np.ones(4))
    assert (ledger.made["g"], ledger.batches["g"]) == (3, 200)


def test_probes_recalled_from_another_checks_copies_cost_no_bytes():
    theta = np.arange(4.0)
    kept = Kept(theta)
    kept.keep(np.array([0, 1]), np.array([0.5, 1.5]), np.array([7.0, 8.0]))
    ledger = Ledger(per_probe=2)
    evaluate = ledger.metered(recalled(_plain, kept), "r", per_probe=100)
    out = evaluate(np.array([0, 1, 2]), np.array([0.5, 1.5, 2.5]))
    assert np.array_equal(out, [7.0, 8.0, 5.0])
    assert ledger.batches["r"] == 100          # the one probe evaluated anew


def test_an_evaluator_that_holds_more_than_its_copies_in_a_call_says_so():
    class Scanning:
        def __init__(self) -> None:
            self.copies, self.extra_bytes = 0, 0

        def __call__(self, idx, values):
            self.copies += idx.size
            self.extra_bytes = 10_000 if self.copies == idx.size else 0   # its first call only
            return _plain(idx, values)

    ledger = Ledger(per_probe=2)
    evaluate = ledger.metered(Scanning(), "s", per_probe=10)
    evaluate(np.arange(4), np.ones(4))
    evaluate(np.arange(4), np.ones(4))
    assert ledger.batches["s"] == 10_000


def test_the_largest_tensor_check_is_its_batch_with_the_values_or_its_verdict():
    ledger = Ledger(per_probe=2)
    ledger.needs("small batch, many entries", 100)
    ledger.count(2, "small batch, many entries", 10)
    ledger.needs("large batch", 10)
    ledger.count(20, "large batch", 50_000)
    assert ledger.held() == (50_000 + 10 * (2 * VALUE_BYTES + PROBE_BYTES), "large batch")
    ledger.needs("wide", 10_000)
    ledger.count(2, "wide", 10)
    assert ledger.held() == (ENTRY_BYTES * 10_000, "wide")
    assert Ledger(per_probe=2).held() == (0, "")
