"""JUnit XML: one <testsuite> per config, one <testcase> per (layer, tensor) row.

Follows the schema CI systems read (the Surefire/Jenkins junit-10.xsd that pytest's xunit2 output
also follows): <testsuites name tests failures errors time> of <testsuite name tests failures
errors skipped time file>, each holding <testcase classname name time> (no file or line
attributes: that schema has none, so the location leads the failure message instead) with an
optional <failure message type>, <error>, <skipped> or <system-out>.
"""
from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET

from ..results import ConfigResult, Row, RunResult, Status
from .categories import category, fmt_number


def to_junit(run: RunResult) -> str:
    root = ET.Element("testsuites", name="gradcheck")
    totals = dict(tests=0, failures=0, errors=0)
    for config in run.configs:
        suite = _suite(config, run.strict)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _seconds(sum(c.seconds or 0.0 for c in run.configs)))
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + _NOT_XML.sub("\ufffd", text) + "\n"


#: Characters XML 1.0 cannot hold even escaped (a plugin's error text may carry them).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _seconds(value: float | None) -> str:
    return f"{value or 0.0:.3f}"


def _suite(config: ConfigResult, strict: bool) -> ET.Element:
    suite = ET.Element("testsuite", name=config.name or config.path, tests="0", failures="0",
                       errors="0", skipped="0", time=_seconds(config.seconds), file=config.path)
    counts = dict(failure=0, error=0, skipped=0)
    if config.status is Status.ERROR:
        case = ET.SubElement(suite, "testcase", classname=_classname(config), name="config",
                             time="0.000")
        ET.SubElement(case, "error", message=config.error or "error", type="error").text = config.error
        counts["error"] = 1
        tests = 1
    else:
        props = ET.SubElement(suite, "properties")
        for key in ("seed", "dtype", "layout", "method", "eps", "n_params", "batch"):
            value = getattr(config, key, None)
            if value is not None:
                ET.SubElement(props, "property", name=key, value=str(value))
        for row in config.rows:
            kind = category(row.status, strict)
            _case(suite, config, row, kind)
            if kind in counts:
                counts[kind] += 1
        tests = len(config.rows)
    suite.set("tests", str(tests))
    suite.set("failures", str(counts["failure"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skipped"]))
    return suite


def _classname(config: ConfigResult) -> str:
    return f"gradcheck.{config.name or config.path}"


def _case(suite: ET.Element, config: ConfigResult, row: Row, kind: str) -> None:
    case = ET.SubElement(suite, "testcase", classname=_classname(config), name=case_name(row),
                         time="0.000")
    where = f"{config.path}:{row.line}: " if row.line is not None else f"{config.path}: "
    if kind in ("failure", "error"):
        ET.SubElement(case, kind, message=where + row_message(row),
                      type=row.status.value).text = row_details(row)
    elif kind == "skipped":
        ET.SubElement(case, "skipped", message=row.reason or "skipped")
    elif kind in ("warning", "note"):
        ET.SubElement(case, "system-out").text = f"{row.status.value}: {row_message(row)}\n{row_details(row)}"


def case_name(row: Row) -> str:
    return f"{row.label} {row.layer_type} {row.tensor}"


def row_message(row: Row) -> str:
    """One line: the verdict, its reason and the two errors."""
    parts = [f"layer {row.label} {row.layer_type}, tensor {row.tensor}: {row.status.value}"]
    if row.reason:
        parts.append(row.reason)
    parts.append(f"layer err {rel_text(row.isolated)}, net err {rel_text(row.network)}")
    return "; ".join(parts)


def rel_text(comparison) -> str:
    """The relative error; where entries were excused as kinks, that of the other entries."""
    kinks = getattr(comparison, "kinks", 0) if comparison is not None else 0
    rest = getattr(comparison, "rel_error_excluding_kinks", None)
    if kinks and rest is not None:
        return f"{rest:.2e} ({kinks} entr{'y' if kinks == 1 else 'ies'} at a kink left out)"
    value = getattr(comparison, "rel_error", None) if comparison is not None else None
    return "—" if value is None else f"{value:.2e}"


def row_details(row: Row) -> str:
    """Every field of both comparisons, whatever fields the checker records."""
    lines = [f"shapes: in {fmt_number(row.input_shape)}, out {fmt_number(row.output_shape)}, "
             f"tensor {fmt_number(row.tensor_shape)}"]
    for name in ("isolated", "network"):
        comparison = getattr(row, name)
        if comparison is None:
            continue
        fields = ", ".join(f"{k}={fmt_number(v.value if isinstance(v, Status) else v)}"
                           for k, v in dataclasses.asdict(comparison).items()
                           if v not in (None, "", ()))
        lines.append(f"{name}: {fields}")
    return "\n".join(lines)
