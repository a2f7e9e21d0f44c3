"""Comparing gradcheck's output with a sample up to rounding: the text exactly, the numbers that
rounding moves to within what rounding can do.

A run on another CPU, or under another BLAS kernel, sums in another order, so every number made of
rounding changes in its last digits or entirely (2.8e-11 here, 4.4e-11 there). Everything else must
not change: words, statuses, shapes, labels, diagnoses, and every number above the noise. The rules:

- Timings are masked; trailing spaces, a trailing blank line and the width of column padding are
  layout, not content; so is where rich wrapped a long line at the terminal width (a number that
  grows by a digit may move a wrap).
- A row of the check table (ending in four error columns and a status) compares every column as
  text, except the errors: `layer err` and `net err` must agree to within twice the row's noise
  (or 1e-9 where the noise is smaller or shown as —), `noise` to within a factor of 2, and
  `max abs` to within a factor of 10 when the row's layer err is within that noise, else exactly.
- "N× the noise" compares N to within a factor of 2 (its magnitude is the point).
- Anywhere else, a number written with a mantissa (1.3e-11, -4.54e-13) whose size is below 1e-9
  matches any other such number (rounding, in relative terms); any other number must be equal.
- The step sweep (`gradcheck sweep`): in each method's column the entries from the best step on,
  where rounding dominates, agree to within a factor of 3; the others exactly. The best-step lines
  agree in error to a factor of 3 and in step to one decade; the Taylor test's slope to 0.1; each
  mark of the figure is within one row of its place in the sample.

`compare(expected, actual)` returns the differences found (empty: the output matches), and
`json_differences(expected, actual)` does the same for two JSON documents of `--format json`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

WIDTH = 160
ELLIPSIS = "..."
ROUNDING = 1e-9
STATUSES = ("pass", "warn", "FAIL", "inherited", "kink", "skipped")

TIMINGS = [
    (re.compile(r"\(\d+(\.\d+)? s\)"), "(… s)"),                  # gradcheck's per-config time
    (re.compile(r"\bin \d+(\.\d+)?s\b"), "in …s"),                # pytest's summary line
    (re.compile(r"\(\d+:\d\d:\d\d\)"), "(…)"),                    # pytest's long-run form
]
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
MANTISSA = re.compile(r"[-+]?\d+\.\d+[eE][-+]?\d+")
ERROR = re.compile(r"^(?:[-+]?\d\.\d+e[-+]\d+|—)$")
TIMES_NOISE = re.compile(r"(\d+)× the noise")
SWEEP_ROW = re.compile(r"^\s*\d+e[-+]\d+(?:\s+(?:[-+]?\d\.\de[-+]\d+|—|nan|inf))+\s*$")
PLOT_ROW = re.compile(r"^(\d+e[-+]\d+ \|)(.*)$")
BEST_STEP = re.compile(r"^(\s*\w+: smallest error )(\S+)( at h = )(\S+)$")
SLOPE = re.compile(r"h\^(-?\d+(?:\.\d+)?)")


@dataclass
class Unit:
    """One line, or a run of lines compared together (a sweep table, a sweep figure)."""
    kind: str            # "line", "sweep", "plot", "..."
    lines: list[str]
    number: int          # the first line's number (1-based) in its text


def prepare(text: str, unwrap: bool = False) -> list[str]:
    lines = []
    for line in text.rstrip("\n").splitlines():
        for pattern, mask in TIMINGS:
            line = pattern.sub(mask, line)
        lines.append(line.rstrip())
    while lines and not lines[-1]:
        lines.pop()
    return _unwrap(lines) if unwrap else lines


def _unwrap(lines: list[str]) -> list[str]:
    """Join the lines rich wrapped: a line whose continuation's first word would not have fit."""
    out: list[str] = []
    for line in lines:
        if out and line and line.strip() and out[-1].strip() and not _structured(out[-1]) \
                and not _structured(line):
            first = line.split()[0]
            if len(out[-1]) + 1 + len(first) > WIDTH:
                out[-1] = f"{out[-1]} {line}"
                continue
        out.append(line)
    return out


def _structured(line: str) -> bool:
    return bool(_table_row(line) or SWEEP_ROW.match(line) or PLOT_ROW.match(line)) or line == ELLIPSIS


def units(text: str, unwrap: bool = False) -> list[Unit]:
    found: list[Unit] = []
    for number, line in enumerate(prepare(text, unwrap), 1):
        kind = ("..." if line.strip() in (ELLIPSIS, "…") else "sweep" if SWEEP_ROW.match(line)
                else "plot" if PLOT_ROW.match(line) else "line")
        if kind in ("sweep", "plot") and found and found[-1].kind == kind:
            found[-1].lines.append(line)
        else:
            found.append(Unit(kind, [line], number))
    return found


# -- numbers -----------------------------------------------------------------------------------------

def _value(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _within_factor(a: float, b: float, factor: float) -> bool:
    if a == b:
        return True
    if a <= 0 or b <= 0:
        return False
    return abs(math.log(a / b)) <= math.log(factor) + 1e-12


def _rounding_pair(a: str, b: str) -> bool:
    """Both written with a mantissa and both below 1e-9 in size: rounding, whatever their digits."""
    if not (MANTISSA.fullmatch(a) and MANTISSA.fullmatch(b)):
        return False
    return abs(float(a)) < ROUNDING and abs(float(b)) < ROUNDING


def _tokens_differ(expected: str, actual: str) -> str | None:
    """Compare two whitespace-separated tokens: text exactly, numbers by the rules above."""
    if expected == actual:
        return None
    e_parts, a_parts = NUMBER.split(expected), NUMBER.split(actual)
    e_nums, a_nums = NUMBER.findall(expected), NUMBER.findall(actual)
    if e_parts != a_parts or len(e_nums) != len(a_nums):
        return f"`{expected}` ≠ `{actual}`"
    for e, a in zip(e_nums, a_nums):
        if e != a and not _rounding_pair(e, a):
            return f"{e} ≠ {a} (in `{actual}`)"
    return None


def _text_differs(expected: str, actual: str) -> str | None:
    """Two lines of text: the same words (padding aside), numbers by the rules."""
    e, a = expected, actual
    e_times, a_times = TIMES_NOISE.findall(e), TIMES_NOISE.findall(a)
    if len(e_times) == len(a_times):
        for x, y in zip(e_times, a_times):
            if not _within_factor(float(x), float(y), 2):
                return f"{x}× the noise ≠ {y}× the noise (more than a factor 2 apart)"
        e, a = TIMES_NOISE.sub("N× the noise", e), TIMES_NOISE.sub("N× the noise", a)
    e_slope, a_slope = SLOPE.findall(e), SLOPE.findall(a)
    if "Taylor test" in e and len(e_slope) == len(a_slope):
        for x, y in zip(e_slope, a_slope):
            if abs(float(x) - float(y)) > 0.1 + 1e-9:
                return f"slope h^{x} ≠ h^{y}"
        e, a = SLOPE.sub("h^s", e), SLOPE.sub("h^s", a)
    best_e, best_a = BEST_STEP.match(e), BEST_STEP.match(a)
    if best_e and best_a:
        if best_e[1] != best_a[1]:
            return f"`{expected}` ≠ `{actual}`"
        err_e, err_a, h_e, h_a = (_value(best_e[2]), _value(best_a[2]), _value(best_e[4]),
                                  _value(best_a[4]))
        if None in (err_e, err_a, h_e, h_a):
            return None if e == a else f"`{expected}` ≠ `{actual}`"
        if not (_within_factor(err_e, err_a, 3) or max(err_e, err_a) < ROUNDING):
            return f"smallest error {best_e[2]} ≠ {best_a[2]}"
        if not _within_factor(h_e, h_a, 10):
            return f"best step {best_e[4]} ≠ {best_a[4]} (more than a decade apart)"
        return None
    e_words, a_words = e.split(), a.split()
    if len(e_words) != len(a_words):
        return f"different words:\n    sample: {expected}\n    output: {actual}"
    for x, y in zip(e_words, a_words):
        problem = _tokens_differ(x, y)
        if problem:
            return problem
    return None


# -- the check table ----------------------------------------------------------------------------------

def _table_row(line: str) -> tuple[list[str], list[str], str] | None:
    """(leading columns, [layer err, noise, net err, max abs], status) of a check-table row."""
    words = line.split()
    if len(words) < 6 or words[-1] not in STATUSES or not all(ERROR.match(w) for w in words[-5:-1]):
        return None
    return words[:-5], words[-5:-1], words[-1]


def _row_differs(expected: str, actual: str) -> str | None:
    e_row, a_row = _table_row(expected), _table_row(actual)
    if e_row is None or a_row is None:
        return _text_differs(expected, actual)
    (e_lead, e_err, e_status), (a_lead, a_err, a_status) = e_row, a_row
    if e_lead != a_lead or e_status != a_status:
        return f"row differs:\n    sample: {expected}\n    output: {actual}"
    names = ("layer err", "noise", "net err", "max abs")
    e_val = [_value(x) for x in e_err]
    a_val = [_value(x) for x in a_err]
    for name, x, y, u, v in zip(names, e_err, a_err, e_val, a_val):
        if (x == "—") != (y == "—"):
            return f"{name} {x} ≠ {y} in row `{actual}`"
    noise = max([n for n in (e_val[1], a_val[1]) if n is not None] + [ROUNDING])
    tolerance = 2 * noise
    if e_val[1] is not None and not _within_factor(e_val[1], a_val[1], 2):
        return f"noise {e_err[1]} ≠ {a_err[1]} (more than a factor 2 apart) in row `{actual}`"
    quiet = True                                        # the layer err is within the noise
    for index in (0, 2):
        x, y = e_val[index], a_val[index]
        if x is None:
            continue
        if abs(x - y) > tolerance:
            return (f"{names[index]} {e_err[index]} ≠ {a_err[index]} (more than 2 × noise "
                    f"{tolerance / 2:.1e} apart) in row `{actual}`")
        if index == 0:
            quiet = max(x, y) <= tolerance
    x, y = e_val[3], a_val[3]
    if x is not None and x != y:
        if not (quiet and _within_factor(x, y, 10)) and not max(x, y) < ROUNDING:
            return f"max abs {e_err[3]} ≠ {a_err[3]} in row `{actual}`"
    return None


# -- the step sweep -----------------------------------------------------------------------------------

def _sweep_differs(expected: list[str], actual: list[str]) -> str | None:
    if len(expected) != len(actual):
        return f"the sweep table has {len(actual)} rows, the sample {len(expected)}"
    e_rows = [line.split() for line in expected]
    a_rows = [line.split() for line in actual]
    if [r[0] for r in e_rows] != [r[0] for r in a_rows] or {len(r) for r in e_rows + a_rows} != {
            len(e_rows[0])}:
        return "the sweep table's steps or columns differ"
    for column in range(1, len(e_rows[0])):
        e_col = [_value(r[column]) for r in e_rows]
        a_col = [_value(r[column]) for r in a_rows]
        finite = [i for i, v in enumerate(e_col) if v is not None and math.isfinite(v)]
        best = min(finite, key=lambda i: e_col[i]) if finite else 0
        a_finite = [i for i, v in enumerate(a_col) if v is not None and math.isfinite(v)]
        best = min(best, min(a_finite, key=lambda i: a_col[i]) if a_finite else best)
        for i, (x, y) in enumerate(zip(e_col, a_col)):
            xs, ys = e_rows[i][column], a_rows[i][column]
            if xs == ys or _rounding_pair(xs, ys):
                continue
            if x is not None and y is not None and i >= best and _within_factor(x, y, 3):
                continue
            return f"sweep at h = {e_rows[i][0]}, column {column}: {xs} ≠ {ys}"
    return None


def _plot_differs(expected: list[str], actual: list[str]) -> str | None:
    def grid(lines):
        labels, marks = [], {}
        for row, line in enumerate(lines):
            match = PLOT_ROW.match(line)
            labels.append(match[1])
            for col, char in enumerate(match[2]):
                if char != " ":
                    marks.setdefault(col, []).append((row, char))
        return labels, marks

    e_labels, e_marks = grid(expected)
    a_labels, a_marks = grid(actual)
    if e_labels != a_labels:
        return "the sweep figure's rows differ"

    def near(mark, others):
        return any(abs(mark[0] - o[0]) <= 1 and (mark[1] == o[1] or "*" in (mark[1], o[1]))
                   for o in others)

    for col in sorted(set(e_marks) | set(a_marks)):
        es, as_ = e_marks.get(col, []), a_marks.get(col, [])
        for mark in es:
            if not near(mark, as_):
                return f"the sweep figure's `{mark[1]}` in column {col} moved more than a row"
        for mark in as_:
            if not near(mark, es):
                return f"the sweep figure has a new `{mark[1]}` in column {col}"
    return None


# -- whole outputs ----------------------------------------------------------------------------------

def _unit_differs(expected: Unit, actual: Unit) -> str | None:
    if expected.kind != actual.kind:
        return f"`{expected.lines[0]}` ≠ `{actual.lines[0]}`"
    if expected.kind == "sweep":
        return _sweep_differs(expected.lines, actual.lines)
    if expected.kind == "plot":
        return _plot_differs(expected.lines, actual.lines)
    return _row_differs(expected.lines[0], actual.lines[0])


def compare(expected: str, actual: str) -> list[str]:
    """What differs between a sample and an output beyond rounding (empty when they match).

    A line "..." in the sample matches any number of output lines. Lines are compared as they
    are and, failing that, with rich's wraps undone on both sides (a line long enough that its
    continuation's first word could not fit is joined to it): a wrap moves when a number on the
    line grows by a digit, and undoing wraps always would also join lines that merely end near
    the width, which an elided sample cannot mirror."""
    problems = _compare(units(expected), units(actual))
    if problems and not _compare(units(expected, True), units(actual, True)):
        return []
    return problems


def _compare(e_units: list[Unit], a_units: list[Unit]) -> list[str]:
    segments: list[list[Unit]] = [[]]
    for unit in e_units:
        if unit.kind == "...":
            segments.append([])
        else:
            segments[-1].append(unit)
    if len(segments) == 1:
        problems = [f"sample line {e.number}: {p}" for e, a in zip(e_units, a_units)
                    if (p := _unit_differs(e, a))]
        if len(e_units) != len(a_units):
            problems.append(f"the output has {len(a_units)} lines or tables, the sample "
                            f"{len(e_units)}")
        return problems[:8]

    def fits(segment, at):
        return at + len(segment) <= len(a_units) and all(
            _unit_differs(e, a) is None for e, a in zip(segment, a_units[at:]))

    first, *middle, last = segments
    if not fits(first, 0):
        return [f"the output does not start like the sample (sample line {first[0].number})"]
    position = len(first)
    for segment in middle:
        at = next((i for i in range(position, len(a_units) - len(segment) + 1)
                   if fits(segment, i)), None)
        if at is None:
            return [f"sample lines from {segment[0].number} (`{segment[0].lines[0]}`) are not "
                    "in the output after the lines before them"]
        position = at + len(segment)
    end = len(a_units) - len(last)
    if end < position or not fits(last, end):
        return [f"the output does not end like the sample (sample line "
                f"{last[0].number if last else len(e_units)})"]
    return []


# -- JSON documents -----------------------------------------------------------------------------------

#: numbers of a check ("isolated" or "network") that rounding moves when the check is at the noise;
#: where the largest error sits is left out always: a tie between entries (a max-pool's, a kink's)
#: is broken by rounding, and a failure's reason, compared as text, names its worst entry
CHECK_NUMBERS = ("rel_error", "noise", "max_abs_error", "worst_index")


def json_differences(expected, actual, path: str = "$") -> list[str]:
    """What differs between two `--format json` documents beyond rounding (empty when they match):
    text through `compare`, integers and everything else exactly, other numbers to 1e-9 relative,
    except in a check (a mapping with `rel_error` and `noise`): its errors (`rel_error`,
    `rel_error_*`) to within twice the noise, the noise to a factor of 2, its largest absolute error to a factor of 10 when the error
    is within the noise (else to 1e-9 relative), and not where that largest error is."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if set(expected) != set(actual):
            return [f"{path}: keys {sorted(set(expected) ^ set(actual))} in one only"]
        problems = []
        skip: set[str] = set()
        if {"rel_error", "noise"} <= set(expected):
            problems += _check_differences(expected, actual, path)
            skip = set(CHECK_NUMBERS)
            for key in expected:                    # other relative errors of the same check
                if key.startswith("rel_error_") and key in actual:
                    skip.add(key)
                    problems += _error_difference(expected, actual, key, path)
        for key in expected:
            if key not in skip:
                problems += json_differences(expected[key], actual[key], f"{path}.{key}")
        return problems
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(expected)} items ≠ {len(actual)}"]
        return [p for i, (e, a) in enumerate(zip(expected, actual))
                for p in json_differences(e, a, f"{path}[{i}]")]
    if isinstance(expected, str) and isinstance(actual, str):
        return [f"{path}: {p}" for p in compare(expected, actual)]
    if isinstance(expected, float) and isinstance(actual, float):
        return [] if _close(expected, actual) else [f"{path}: {expected!r} ≠ {actual!r}"]
    if expected != actual or type(expected) is not type(actual):
        return [f"{path}: {expected!r} ≠ {actual!r}"]
    return []


def _error_difference(expected: dict, actual: dict, key: str, path: str) -> list[str]:
    """A relative error of a check, to within twice its noise (like `rel_error`)."""
    e, a = expected[key], actual[key]
    if e is None or a is None or isinstance(e, bool) or not isinstance(e, (int, float)):
        return [] if e == a else [f"{path}.{key}: {e!r} ≠ {a!r}"]
    tolerance = 2 * max(expected.get("noise") or 0, actual.get("noise") or 0, ROUNDING)
    return [] if abs(e - a) <= tolerance else [f"{path}.{key}: {e!r} ≠ {a!r} (more than 2 × noise apart)"]


def _close(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= ROUNDING * max(abs(a), abs(b))


def _check_differences(expected: dict, actual: dict, path: str) -> list[str]:
    e_noise, a_noise = expected.get("noise"), actual.get("noise")
    if (e_noise is None) != (a_noise is None):
        return [f"{path}.noise: {e_noise!r} ≠ {a_noise!r}"]
    if e_noise is not None and not _within_factor(e_noise, a_noise, 2):
        return [f"{path}.noise: {e_noise!r} ≠ {a_noise!r} (more than a factor 2 apart)"]
    e_err, a_err = expected.get("rel_error"), actual.get("rel_error")
    tolerance = 2 * max(e_noise or 0, a_noise or 0, ROUNDING)
    quiet = False
    if e_err is None or a_err is None:
        if e_err != a_err:
            return [f"{path}.rel_error: {e_err!r} ≠ {a_err!r}"]
    else:
        if abs(e_err - a_err) > tolerance:
            return [f"{path}.rel_error: {e_err!r} ≠ {a_err!r} (more than 2 × noise apart)"]
        quiet = max(e_err, a_err) <= tolerance
    e_abs, a_abs = expected.get("max_abs_error"), actual.get("max_abs_error")
    if e_abs is None or a_abs is None:
        return [] if e_abs == a_abs else [f"{path}.max_abs_error: {e_abs!r} ≠ {a_abs!r}"]
    if quiet and (_within_factor(e_abs, a_abs, 10) or max(e_abs, a_abs) < ROUNDING):
        return []
    return [] if _close(e_abs, a_abs) else [f"{path}.max_abs_error: {e_abs!r} ≠ {a_abs!r}"]
