"""Measured verdict quality: every planted bug flagged at its row and nowhere else; no false
FAIL on correct networks full of kinks, pool ties, float32 and exactly-zero gradients."""
import pytest

from gradcheck_cli import build_network, check_network, spec_from_text
from gradcheck_cli.results import Status

from verdict_corpus import HARD, MUTANTS, hard_spec, mutant_spec

FAILING = (Status.FAIL,)


def test_the_corpus_is_as_large_as_promised():
    assert len(MUTANTS) >= 30
    assert len({m.category for m in MUTANTS}) >= 9


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_each_mutant_fails_at_its_row_and_nowhere_else(mutant, seed):
    result = check_network(build_network(spec_from_text(mutant_spec(mutant, seed))))
    failing = {(r.label, r.tensor) for r in result.rows if r.status in FAILING}
    assert failing == {mutant.row}, [(r.label, r.tensor, r.status.value, r.reason) for r in result.rows
                                     if r.status is not Status.PASS]
    isolated = {(r.label, r.tensor) for r in result.rows if r.isolated.status is Status.FAIL}
    assert isolated == {mutant.row}


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("hard", HARD, ids=lambda h: h.name)
def test_no_false_fail_on_correct_networks(hard, seed):
    result = check_network(build_network(spec_from_text(hard_spec(hard, seed))))
    bad = [(r.label, r.tensor, r.status.value, r.reason) for r in result.rows
           if r.status in (Status.FAIL, Status.INHERITED, Status.WARN)]
    assert not bad
