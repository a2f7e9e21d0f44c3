"""The mutant corpus: plugin layers written the way learners write them (tests/mutants/*.py), each
family with its correct twin and its planted bugs, and a table per family (tests/mutants/*.toml)
saying where each bug must FAIL and what its diagnosis must name.

Shared by tests/test_check_mutant_corpus.py and the README's corpus table (``python tests/mutant_corpus.py``
prints each case). The format is described in tests/mutants/README.md.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

HERE = Path(__file__).resolve().parent / "mutants"
SLOT = "@"


@dataclass(frozen=True)
class Network:
    family: str
    name: str
    plugin: Path
    spec: dict[str, Any]           # with "@" where the layer under test goes
    correct: str | None
    seeds: int
    dtypes: tuple[str, ...]


@dataclass(frozen=True)
class Case:
    family: str
    layer: str
    network: Network
    fail: tuple[tuple[str, str], ...]
    diagnosis: str
    bug: str
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    dtype: str = "float64"
    status: str = "FAIL"
    generic: bool = False

    @property
    def id(self) -> str:
        return self.layer

    def spec(self) -> dict[str, Any]:
        return place(self.network.spec, self.layer, self.options, self.seed, self.dtype)


def place(spec: dict[str, Any], layer: str, options: dict[str, Any], seed: int, dtype: str) -> dict[str, Any]:
    """The network's spec with ``layer`` (and its extra options) where "@" stands."""
    def sub(node):
        if isinstance(node, dict):
            if node.get("type") == SLOT:
                return {**{k: sub(v) for k, v in node.items()}, "type": layer, **options}
            return {k: sub(v) for k, v in node.items()}
        if isinstance(node, list):
            return [sub(v) for v in node]
        return layer if node == SLOT else node
    out = sub(spec)
    return {"name": layer, "seed": seed, "dtype": dtype, **out}


def _row(text: str) -> tuple[str, str]:
    label, tensor = text.split()
    return label, tensor


def load(folder: Path = HERE) -> tuple[list[Network], list[Case]]:
    networks: list[Network] = []
    cases: list[Case] = []
    for table in sorted(folder.glob("*.toml")):
        data = tomllib.loads(table.read_text(encoding="utf-8"))
        family = table.stem
        plugin = table.with_name(data.get("plugin", f"{family}.py"))
        nets = {}
        for name, entry in data.get("networks", {}).items():
            entry = dict(entry)
            correct = entry.pop("correct", None)
            seeds = int(entry.pop("seeds", 20))
            dtypes = tuple(entry.pop("dtypes", ("float64", "float32")))
            nets[name] = Network(family, name, plugin, entry, correct, seeds, dtypes)
        networks.extend(nets.values())
        for entry in data.get("cases", []):
            entry = dict(entry)
            net = nets[entry.pop("network")]
            fail = tuple(_row(r) for r in entry.pop("fail"))
            cases.append(Case(family, entry.pop("layer"), net, fail, entry.pop("diagnosis"),
                              entry.pop("bug"), **entry))
    return networks, cases


def load_plugin_for(net: Network) -> None:
    from gradcheck_cli.layers.plugins import load_plugin
    load_plugin(net.plugin)


def run_spec(spec: dict[str, Any], plugin: Path):
    from gradcheck_cli.check.engine import check_network
    from gradcheck_cli.check.network import build_network
    from gradcheck_cli.layers.plugins import load_plugin
    from gradcheck_cli.config.models import spec_from_text

    load_plugin(plugin)
    return check_network(build_network(spec_from_text(json.dumps(spec))))


@dataclass
class Outcome:
    case: Case
    fails_at_own_row: bool          # every row of case.fail has the expected status
    stray: list[str]                # other rows that FAIL
    reason: str                     # what fail[0]'s row says
    diagnosis: str | None           # the diagnosis the checker gave fail[0], if any
    matches: bool                   # reason matches case.diagnosis

    @property
    def named(self) -> bool:
        return self.matches and not self.case.generic and self.fails_at_own_row

    @property
    def misleading(self) -> bool:
        """A diagnosis that names something other than the planted bug."""
        return self.diagnosis is not None and not self.matches


def run_case(case: Case) -> Outcome:
    result = run_spec(case.spec(), case.network.plugin)
    rows = {(r.label, r.tensor): r for r in result.rows}
    expected = set(case.fail)
    own = all(k in rows and rows[k].status.value == case.status for k in case.fail)
    stray = [f"{r.label} {r.tensor}: {r.reason}" for r in result.rows
             if r.status.value == "FAIL" and (r.label, r.tensor) not in expected]
    first = rows.get(case.fail[0])
    if first is None:
        return Outcome(case, False, stray, f"no row {case.fail[0]}", None, False)
    reason = " | ".join(filter(None, [first.reason, first.isolated.reason]))
    diagnosis = first.isolated.diagnosis
    return Outcome(case, own, stray, reason, diagnosis, re.search(case.diagnosis, reason) is not None)


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    """Figures of a run: mutants, how many FAIL at their own row (and nowhere else), how many get
    a diagnosis that names the bug, which stay generic, which get a misleading one."""
    mutants = [o for o in outcomes if o.case.status == "FAIL"]
    return {
        "mutants": len(mutants),
        "fail_at_own_row": sum(o.fails_at_own_row and not o.stray for o in mutants),
        "named": sum(o.named for o in mutants),
        "generic": [o.case.layer for o in mutants if not o.named],
        "misleading": [o.case.layer for o in outcomes if o.misleading],
    }


def table(cases: list[Case]) -> str:
    """The README's corpus table, from the cases as declared (tests/test_check_mutant_corpus.py checks each
    declaration against a run): per family, bugs planted, named, generic."""
    fams: dict[str, list[Case]] = {}
    for c in cases:
        if c.status == "FAIL":
            fams.setdefault(c.family, []).append(c)
    lines = ["| family | bugs | named | generic |", "|---|---|---|---|"]
    for fam, cs in sorted(fams.items()):
        named = sum(not c.generic for c in cs)
        lines.append(f"| {fam} | {len(cs)} | {named} | {len(cs) - named} |")
    total = [c for cs in fams.values() for c in cs]
    named = sum(not c.generic for c in total)
    lines.append(f"| **all** | **{len(total)}** | **{named}** | **{len(total) - named}** |")
    return "\n".join(lines)


if __name__ == "__main__":
    _, all_cases = load()
    only = sys.argv[1:]
    outs = []
    for c in all_cases:
        if only and not any(s in c.layer or s == c.family for s in only):
            continue
        o = run_case(c)
        outs.append(o)
        mark = "named" if o.named else ("MISLEADING" if o.misleading else "generic")
        own = "ok" if o.fails_at_own_row and not o.stray else "ROW?"
        print(f"{own:4} {mark:10} {c.layer}: {o.reason[:300]}")
        for s in o.stray:
            print(f"        stray FAIL {s[:200]}")
    print(json.dumps(summary(outs), indent=1))
    print(table([o.case for o in outs]))
