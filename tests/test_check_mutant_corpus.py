"""The mutant corpus (tests/mutants/): every planted bug FAILs at its own row and nowhere else,
with the diagnosis its table declares; the correct twin of every family never FAILs or warns,
over many seeds, in float64 and float32, at real kinks and ties."""
from __future__ import annotations

from pathlib import Path

import pytest

import mutant_corpus as corpus

NETWORKS, CASES = corpus.load()
README = Path(__file__).resolve().parents[1] / "README.md"
LEARNERS = Path(__file__).resolve().parents[1] / "docs" / "learners.md"
#: bad statuses for a correct layer: a FAIL, a warn, or a row blamed on it end to end
ALARMS = {"FAIL", "warn", "inherited", "error"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_mutant_fails_at_its_row_with_its_diagnosis(case):
    out = corpus.run_case(case)
    assert out.fails_at_own_row, (case.fail, out.reason)
    assert not out.stray, out.stray
    assert out.matches, f"expected /{case.diagnosis}/, got: {out.reason}"
    if case.generic:
        # a generic case has no diagnosis at all: one that did not match would mislead
        assert out.diagnosis is None, out.diagnosis
    assert not out.misleading, out.diagnosis


def _false_alarm_runs():
    for net in NETWORKS:
        if net.correct:
            for dtype in net.dtypes:
                yield pytest.param(net, dtype, id=f"{net.family}-{net.name}-{dtype}")


@pytest.mark.parametrize("net,dtype", list(_false_alarm_runs()))
def test_correct_twin_never_fails_or_warns(net, dtype):
    alarms = []
    for seed in range(net.seeds):
        result = corpus.run_spec(corpus.place(net.spec, net.correct, {}, seed, dtype), net.plugin)
        alarms += [f"seed {seed} {r.label} {r.tensor}: {r.status.value}: {r.reason}"
                   for r in result.rows if r.status.value in ALARMS]
    assert not alarms, alarms


def test_every_family_has_its_mutants_and_its_correct_twin():
    families = {"dense", "conv", "pool", "norm", "softmax", "activations", "recurrent", "attention",
                "embedding", "dropout", "l2", "residual"}
    mutants = [c for c in CASES if c.status == "FAIL"]
    assert families <= {c.family for c in mutants}
    assert families <= {n.family for n in NETWORKS if n.correct}
    assert len(mutants) >= 60
    # every network's correct twin is registered by the family's plugin file and is no mutant
    assert not {n.correct for n in NETWORKS} & {c.layer for c in CASES}


def test_summary_names_most_bugs_and_the_docs_show_the_corpus():
    mutants = [c for c in CASES if c.status == "FAIL"]
    named = sum(not c.generic for c in mutants)
    assert named / len(mutants) >= 0.8
    assert corpus.table(CASES) in LEARNERS.read_text(encoding="utf-8")
    named_line = (f"Measured on {len(mutants)} planted bugs in learner-style plugin layers across "
                  f"{len({c.family for c in mutants})} families")
    assert named_line in " ".join(README.read_text(encoding="utf-8").split())
    assert named == len(mutants) or "every one gets a diagnosis that names the bug" not in \
        README.read_text(encoding="utf-8")
