"""Fuzzing specs with hypothesis: random valid specs build, check and pass (the built-in layers are
correct); random invalid ones give exit 2 and one located message, never an exception.

The normal suite runs a short, derandomized profile. For a long, random run:

    GRADCHECK_FUZZ_EXAMPLES=2000 python -m pytest tests/test_config_models_fuzz.py

A failing example found that way belongs in tests/fuzz_regressions/ (one file each; a first
line `# expect: N` gives the exit code, 2 when absent; a `# xfail: reason` line marks a known bug
not fixed yet), where every run checks it.
"""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gradcheck_cli.cli import app
from gradcheck_cli.results import Status
from gradcheck_cli.run.pipeline import RunOptions, check_file

LONG = int(os.environ.get("GRADCHECK_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=LONG or 20, deadline=None, derandomize=not LONG, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
REGRESSIONS = Path(__file__).resolve().parent / "fuzz_regressions"

#: built-in activations that take no options and work in both layouts
ACTIVATIONS = ["relu", "tanh", "sigmoid", "elu", "leaky_relu", "softplus", "gelu", "identity",
               "softsign", "silu"]


# -- writing specs as YAML or TOML text --------------------------------------------------------------

def _yaml_value(v) -> str:
    if isinstance(v, bool) or v is None:
        return {True: "true", False: "false", None: "null"}[v]
    if isinstance(v, float) and not math.isfinite(v):
        return ".nan" if v != v else (".inf" if v > 0 else "-.inf")
    if isinstance(v, (int, float, str)):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)}: {_yaml_value(x)}" for k, x in v.items()) + "}"


def to_yaml(spec: dict) -> str:
    lines = []
    for key, value in spec.items():
        if key == "layers" and isinstance(value, list):
            lines.append("layers:")
            lines += [f"  - {_yaml_value(entry)}" for entry in value]
        else:
            lines.append(f"{key}: {_yaml_value(value)}")
    return "\n".join(lines) + "\n"


def to_toml(spec: dict) -> str:
    scalars = [f"{k} = {json.dumps(v)}" for k, v in spec.items() if not isinstance(v, (dict, list))]
    tables = [f"\n[{k}]\n" + "\n".join(f"{kk} = {json.dumps(vv)}" for kk, vv in v.items())
              for k, v in spec.items() if isinstance(v, dict)]
    layers = ["\n[[layers]]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in e.items())
              for e in spec.get("layers", [])]
    return "\n".join(scalars) + "\n" + "\n".join(tables + layers) + "\n"


# -- strategies -----------------------------------------------------------------------------------

@st.composite
def layer_entries(draw, layout: str) -> list[dict]:
    entries = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            entry = {"type": "dense", "units": draw(st.integers(1, 6))}
            if draw(st.booleans()):
                entry["init"] = draw(st.sampled_from(["he", "xavier"]))
            if draw(st.booleans()):
                entry["activation"] = draw(st.sampled_from(ACTIVATIONS))
        else:
            entry = {"type": draw(st.sampled_from(ACTIVATIONS))}
        entries.append(entry)
    return entries


def _last_width(spec: dict) -> int:
    width = spec["input"]["shape"][0]
    for entry in spec["layers"]:
        width = entry.get("units", width)
    return width


@st.composite
def valid_specs(draw) -> dict:
    layout = draw(st.sampled_from(["rows", "columns"]))
    spec = {"name": "fuzz", "seed": draw(st.integers(0, 2**32)),
            "dtype": draw(st.sampled_from(["float64", "float64", "float32"])), "layout": layout,
            "input": {"shape": [draw(st.integers(1, 5))], "batch": draw(st.integers(1, 4))},
            "layers": draw(layer_entries(layout))}
    losses = ["mse", "binary_cross_entropy_with_logits"]
    if _last_width(spec) >= 2:
        losses.append("softmax_cross_entropy")
    spec["loss"] = draw(st.sampled_from(losses))
    if draw(st.booleans()):
        spec["check"] = {"mode": draw(st.sampled_from(["full", "sample", "directional"]))}
    return spec


HOSTILE = [0, -1, -2.5, 2.5, "4", "", True, None, [], {}, [1, 2], float("inf"), float("nan"),
           10**30, -(10**30), "dense", "é", "\t"]
_IDENT = st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True)


@st.composite
def invalid_specs(draw) -> tuple[dict, str]:
    """A valid spec with one change that makes it invalid; returns (spec, what was changed)."""
    spec = draw(valid_specs())
    layers = spec["layers"]
    dense = [e for e in layers if e["type"] == "dense"]
    kind = draw(st.sampled_from(["batch", "shape", "units", "eps", "dtype", "layout", "loss",
                                 "drop", "unknown_key", "unknown_type", "seed", "layers"]))
    if kind == "batch":
        spec["input"]["batch"] = draw(st.sampled_from([v for v in HOSTILE if not _is_dim(v)]))
    elif kind == "shape":
        spec["input"]["shape"] = draw(st.sampled_from([[0], [-3], [2.5], ["4"], [], 4, None,
                                                       [10**12], [float("nan")]]))
    elif kind == "units" and dense:
        draw(st.sampled_from(dense))["units"] = draw(st.sampled_from(
            [v for v in HOSTILE if not _is_dim(v)] + [10**10]))
    elif kind == "eps":
        spec["check"] = {"eps": draw(st.sampled_from([0, -1, 2, "small", None, float("nan"), []]))}
    elif kind == "dtype":
        spec["dtype"] = draw(_IDENT.filter(lambda s: s not in ("float32", "float64")))
    elif kind == "layout":
        spec["layout"] = draw(st.sampled_from(["cols", "ROWS", 1, None]))
    elif kind == "loss":
        spec["loss"] = draw(st.sampled_from(["relu", "dense", "cross_entropy", 5, None, []]))
    elif kind == "drop":
        path = draw(st.sampled_from(["input", "layers", "loss", "shape", "type"]))
        if path == "shape":
            del spec["input"]["shape"]
        elif path == "type":
            del draw(st.sampled_from(layers))["type"]
        else:
            del spec[path]
    elif kind == "unknown_key":
        where = draw(st.sampled_from(["top", "input", "layer"]))
        target = {"top": spec, "input": spec["input"], "layer": draw(st.sampled_from(layers))}[where]
        key = draw(_IDENT.filter(lambda k: k not in ("name", "seed", "dtype", "layout", "input",
                                                      "layers", "loss", "l2", "check", "plugins",
                                                      "shape", "batch", "vocab", "type", "units",
                                                      "init", "std", "activation", "alpha")))
        target[key] = 1
    elif kind == "unknown_type":
        draw(st.sampled_from(layers))["type"] = draw(_IDENT.filter(lambda s: s not in _registered()))
    elif kind == "seed":
        spec["seed"] = draw(st.sampled_from([-1, 2.5, "x", 2**70, None]))
    else:
        spec["layers"] = draw(st.sampled_from([[], None, "dense", {"type": "dense"}, [5]]))
        kind = "layers"
    if kind == "units" and not dense:
        spec["input"]["batch"] = 0
    return spec, kind


def _is_dim(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 2**24


def _registered() -> set[str]:
    from gradcheck_cli.layers.catalog import registered

    return set(registered())


# -- properties -----------------------------------------------------------------------------------

@FUZZ
@given(spec=valid_specs(), fmt=st.sampled_from(["yaml", "toml"]))
def test_random_valid_specs_build_check_and_pass(spec, fmt):
    text = to_yaml(spec) if fmt == "yaml" else to_toml(spec)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"fuzz.{fmt}"
        path.write_text(text, encoding="utf-8")
        result = check_file(path, RunOptions())
    assert result.status is not Status.ERROR, f"{result.error}\n{text}"
    # A correct gradient may still warn about its size (a dead relu gives exactly 0): a health
    # note, not a verdict on the backward pass.
    bad = [(r.label, r.tensor, r.status.value, r.reason) for r in result.rows
           if r.status not in (Status.PASS, Status.KINK)
           and not (r.status is Status.WARN and re.match(r"(vanishing|exploding) gradient", r.reason))]
    assert not bad, text
    assert result.rows and all(r.isolated.entries > 0 for r in result.rows)


_LOCATED = re.compile(r"^error: fuzz\.yaml(:\d+(:\d+)?)?: \S")


def _cli_error(text: str | bytes, name: str = "fuzz.yaml"):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        cwd = os.getcwd()
        os.chdir(d)
        try:
            result = CliRunner().invoke(app, ["check", name])
        finally:
            os.chdir(cwd)
    assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stderr, result.stderr
    return result


@FUZZ
@given(case=invalid_specs())
def test_random_invalid_specs_exit_2_with_one_located_message(case):
    spec, kind = case
    text = to_yaml(spec)
    result = _cli_error(text)
    assert result.exit_code == 2, f"{kind}: {text}\n{result.stdout}"
    assert _LOCATED.match(result.stderr), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


@FUZZ
@given(data=st.data())
def test_damaged_files_never_escape_as_exceptions(data):
    """Cut, spliced or garbled text: whatever the outcome, it is a clean one."""
    spec = data.draw(valid_specs())
    raw = to_yaml(spec).encode()
    how = data.draw(st.sampled_from(["truncate", "insert", "replace", "bytes"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif how == "bytes":
        raw = data.draw(st.binary(max_size=200))
    else:
        at = data.draw(st.integers(0, len(raw)))
        junk = data.draw(st.sampled_from([b":", b"-", b"[", b"{", b"}", b"]", b"&a", b"*a", b"!!",
                                          b"\t", b"\"", b"'", b"#", b"\n  ", b"---\n", b"\xff",
                                          b"\x00", b"? ", b"|", b">", b"%YAML 1.1\n", b"<<: *a\n"]))
        raw = raw[:at] + junk + raw[at + (1 if how == "replace" else 0):]
    result = _cli_error(raw)
    assert result.exit_code in (0, 2), result.stdout + result.stderr
    if result.exit_code == 2:
        assert _LOCATED.match(result.stderr), result.stderr


def _regressions() -> list[Path]:
    return sorted(p for p in REGRESSIONS.iterdir() if p.is_file()) if REGRESSIONS.is_dir() else []


def _regression_params() -> list:
    """Each file, marked xfail (strict) when a `# xfail: reason` line says it is a known bug."""
    params = []
    for path in _regressions():
        m = re.search(rb"^# xfail: (.*)$", path.read_bytes(), re.M)
        marks = [pytest.mark.xfail(strict=True, reason=m.group(1).decode())] if m else []
        params.append(pytest.param(path, marks=marks, id=path.name))
    return params


@pytest.mark.parametrize("path", _regression_params())
def test_fuzz_regressions(path):
    raw = path.read_bytes()
    m = re.match(rb"# expect: (\d)", raw)
    expected = int(m.group(1)) if m else 2
    result = _cli_error(raw, "fuzz" + "".join(path.suffixes))
    assert result.exit_code == expected, result.stdout + result.stderr
    if expected == 2:
        assert result.stderr.startswith("error: fuzz"), result.stderr


def test_the_writers_produce_specs_gradcheck_reads():
    spec = {"name": "w", "seed": 1, "input": {"shape": [3], "batch": 2},
            "layers": [{"type": "dense", "units": 2, "activation": "tanh"}], "loss": "mse"}
    from gradcheck_cli.config.models import spec_from_text

    for fmt, text in (("yaml", to_yaml(spec)), ("toml", to_toml(spec))):
        parsed = spec_from_text(text, fmt)
        assert parsed.doc.data == spec
