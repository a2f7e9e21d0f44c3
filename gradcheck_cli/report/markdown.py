"""Markdown for pull-request comments and ``$GITHUB_STEP_SUMMARY``: a summary table of configs,
then, for each config that did not simply pass, the rows that did not pass and every row inside
a collapsed <details>. Passing configs get only their summary line, which keeps a run over
hundreds of configs well under the size GitHub accepts for a step summary."""
from __future__ import annotations

from .junit import rel_text
from ..results import ConfigResult, RunResult, Status
from .categories import category, fmt_number

_ICON = {"pass": "✅", "failure": "❌", "error": "💥", "warning": "⚠️", "note": "ℹ️", "skipped": "⏭️"}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(run: RunResult, interrupted: bool = False) -> str:
    configs = run.configs
    n_bad = sum(category(c.status, run.strict) in ("failure", "error") for c in configs)
    noun = f"config{'s' if len(configs) != 1 else ''}"
    title = f"{len(configs)} {noun} passed" if not n_bad else f"{n_bad} of {len(configs)} {noun} failed"
    out = [f"## gradcheck: {title}", "",
           "| config | status | checks | not passing |", "|---|---|---:|---|"]
    for c in configs:
        kind = category(c.status, run.strict)
        if c.status is Status.ERROR:
            detail = _cell(c.error)
        else:
            counts = c.counts()
            detail = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()) if k != Status.PASS.value) or "—"
        out.append(f"| `{_cell(c.path)}` | {_ICON[kind]} {c.status.value} | {len(c.rows)} | {detail} |")
    out.append("")
    if interrupted:
        out += ["**interrupted** before every config was checked", ""]
    for c in configs:
        if category(c.status, run.strict) not in ("pass", "skipped", "error") and c.rows:
            out.extend(_config_section(c, run.strict))
    return "\n".join(out) + "\n"


def _config_section(c: ConfigResult, strict: bool) -> list[str]:
    bad = [r for r in c.rows if category(r.status, strict) not in ("pass", "skipped")]
    out = [f"### `{_cell(c.path)}` — {c.name}: {c.status.value}", ""]
    header = ["| # | layer | line | tensor | shape | layer err | net err | status | reason |",
              "|---:|---|---:|---|---|---:|---:|---|---|"]

    def lines(rows):
        return [f"| {r.label} | {r.layer_type} | {r.line or ''} | {r.tensor} | {fmt_number(r.tensor_shape)} "
                f"| {rel_text(r.isolated)} | {rel_text(r.network)} | {r.status.value} | {_cell(r.reason)} |"
                for r in rows]

    if bad:
        out += header + lines(bad) + [""]
    out += ["<details><summary>all rows</summary>", ""] + header + lines(c.rows) + ["", "</details>", ""]
    return out
