"""`--dump FILE.npz` round-trips the arrays that were checked, under the documented keys, and
`gradcheck show` draws one gradient from it."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli.cli import app
from gradcheck_cli.learn.dump import load_dump, summarize, write_dump
from gradcheck_cli.check.settings import CheckSettings
from gradcheck_cli.run.pipeline import RunOptions, check_file

ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "configs" / "mlp.yaml"
COURSE = ROOT / "configs" / "course_columns.yaml"
SIGN = ROOT / "examples" / "broken" / "sign_error.yaml"
ENV = {"COLUMNS": "160"}

#: the key families of a dump, as docs/learners.md documents them
FAMILIES = ["input", "targets", "params/<label>/<name>", "isolated/<label>/cotangent",
            "isolated/<label>/<tensor>/analytic", "isolated/<label>/<tensor>/numeric",
            "network/<label>/<tensor>/analytic", "network/<label>/<tensor>/numeric", "meta"]


def family(key: str) -> str:
    parts = key.split("/")[1:]
    if parts[0] in ("input", "targets", "meta"):
        return parts[0]
    if parts[0] == "params":
        return "params/<label>/<name>"
    if parts[-1] == "cotangent":
        return f"{parts[0]}/<label>/cotangent"
    return f"{parts[0]}/<label>/<tensor>/{parts[-1]}"


def test_round_trip_equals_the_arrays_checked(tmp_path):
    results = [check_file(p, RunOptions(settings=CheckSettings(keep_arrays=True))) for p in (MLP, COURSE)]
    assert all(r.arrays for r in results)
    keys = write_dump(tmp_path / "run.npz", results)
    with np.load(tmp_path / "run.npz", allow_pickle=False) as data:
        assert sorted(data.files) == keys
        for result in results:
            for key, value in result.arrays.items():
                loaded = data[f"{result.name}/{key}"]
                assert loaded.dtype == np.asarray(value).dtype
                np.testing.assert_array_equal(loaded, value)
    assert {family(k) for k in keys} == set(FAMILIES)


def test_every_row_has_its_arrays_and_they_agree_with_the_row(tmp_path):
    result = check_file(COURSE, RunOptions(settings=CheckSettings(keep_arrays=True)))
    write_dump(tmp_path / "run.npz", [result])
    dump = load_dump(tmp_path / "run.npz")
    name = result.name
    for row in result.rows:
        for check, comp in (("isolated", row.isolated), ("network", row.network)):
            if comp is None or comp.rel_error is None or (check == "network" and row.label == "loss"):
                continue  # the loss row's end-to-end check is its isolated one
            a = dump.arrays[f"{name}/{check}/{row.label}/{row.tensor}/analytic"]
            n = dump.arrays[f"{name}/{check}/{row.label}/{row.tensor}/numeric"]
            rel = np.linalg.norm(a - n) / (np.linalg.norm(a) + np.linalg.norm(n))
            assert rel == pytest.approx(comp.rel_error, rel=1e-6, abs=1e-15)
    # parameters are those of the network the check built: the dense W of layer 1 is (7, 20)
    assert dump.arrays[f"{name}/params/1/W"].shape == (7, 20)
    assert dump.arrays[f"{name}/input"].shape == (20, 8)


def test_cli_dump_is_repeatable_and_names_stay_unique(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["check", str(MLP), str(MLP.parent / "mlp.yaml"), "-q", "--dump",
                            str(tmp_path / "a.npz")], env=ENV)
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["check", str(MLP), "-q", "--dump", str(tmp_path / "b.npz")], env=ENV)
    a, b = load_dump(tmp_path / "a.npz"), load_dump(tmp_path / "b.npz")
    assert a.configs() == ["tiny-mlp"]   # the same file twice is checked once
    for key, value in b.arrays.items():
        if not key.endswith("/meta"):
            np.testing.assert_array_equal(a.arrays[key], value)
    from gradcheck_cli.learn.dump import dump_arrays

    result = check_file(MLP, RunOptions(settings=CheckSettings(keep_arrays=True)))
    twice = dump_arrays([result, result])
    assert {k.split("/")[0] for k in twice} == {"tiny-mlp", "tiny-mlp-2"}


def test_show_heatmap_marks_the_wrong_entries(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["check", str(SIGN), "--allow-plugins", "-q", "--dump",
                            str(tmp_path / "s.npz")], env=ENV)
    assert r.exit_code == 1, r.output
    h = summarize(load_dump(tmp_path / "s.npz"), "2/x", "isolated", top=3)
    assert h.status == "FAIL" and h.diff is not None and h.diff.shape == (6, 4)
    assert len(h.worst) == 3 and h.worst[0][3] == pytest.approx(float(h.diff.max()))
    r = runner.invoke(app, ["show", str(tmp_path / "s.npz"), "2/x", "--top", "3"], env=ENV)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "sign-error · isolated · layer 2 (leaky_relu_sign_error) · dx (6, 4)  FAIL"
    grid = [line for line in lines if re.match(r"^\[\d,:\] ", line)]
    assert len(grid) == 6
    marks = np.array([[c == "█" for c in line.split(" ", 1)[1].strip()] for line in grid])
    bad = h.diff / h.scale > h.warn_rtol
    np.testing.assert_array_equal(marks, bad)
    assert "worst entries" in r.output


def test_show_contents_and_errors(tmp_path):
    runner = CliRunner()
    runner.invoke(app, ["check", str(MLP), "-q", "--dump", str(tmp_path / "m.npz")], env=ENV)
    r = runner.invoke(app, ["show", str(tmp_path / "m.npz")], env=ENV)
    assert r.exit_code == 0 and "1/W" in r.output and "loss/x" in r.output
    r = runner.invoke(app, ["show", str(tmp_path / "m.npz"), "7/W"], env=ENV)
    assert r.exit_code == 2
    assert "error: no isolated gradient 7/W in" in r.output
    r = runner.invoke(app, ["show", str(tmp_path / "nothing.npz")], env=ENV)
    assert r.exit_code == 2 and "nothing.npz: no such file" in r.output


def test_readme_documents_every_key_family():
    section = (ROOT / "docs" / "learners.md").read_text(encoding="utf-8")
    for fam in FAMILIES:
        assert f"`<config>/{fam}`" in section, fam
