"""The verdict-quality table of the README: planted bugs detected at their row, false alarms
on correct but hard networks, per category.

    python benchmarks/verdict_quality.py [--seeds 20]
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from gradcheck_cli import build_network, check_network, spec_from_text  # noqa: E402
from gradcheck_cli.results import Status  # noqa: E402
from verdict_corpus import HARD, MUTANTS, hard_spec, mutant_spec  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=20, help="seeds per correct network")
    parser.add_argument("--mutant-seeds", type=int, default=3, help="seeds per planted bug")
    args = parser.parse_args()
    found, total = defaultdict(int), defaultdict(int)
    for m in MUTANTS:
        for seed in range(args.mutant_seeds):
            r = check_network(build_network(spec_from_text(mutant_spec(m, seed))))
            failing = {(row.label, row.tensor) for row in r.rows if row.status is Status.FAIL}
            total[m.category] += 1
            found[m.category] += failing == {m.row}
    alarms, runs, kinks = defaultdict(int), defaultdict(int), defaultdict(int)
    for h in HARD:
        for seed in range(args.seeds):
            r = check_network(build_network(spec_from_text(hard_spec(h, seed))))
            runs[h.category] += 1
            alarms[h.category] += any(row.status in (Status.FAIL, Status.INHERITED, Status.WARN)
                                       for row in r.rows)
            kinks[h.category] += sum(row.isolated.kinks + (row.network.kinks if row.network else 0)
                                     for row in r.rows)
    print("| planted bug | flagged at its row, nowhere else |")
    print("|---|---|")
    for c in total:
        print(f"| {c} | {found[c]} / {total[c]} |")
    print(f"| **all** | **{sum(found.values())} / {sum(total.values())}** |")
    print()
    print("| correct network | false alarms (FAIL or warn) | entries passed as kinks |")
    print("|---|---|---|")
    for c in runs:
        print(f"| {c} | {alarms[c]} / {runs[c]} | {kinks[c]} |")
    print(f"| **all** | **{sum(alarms.values())} / {sum(runs.values())}** | {sum(kinks.values())} |")


if __name__ == "__main__":
    main()
