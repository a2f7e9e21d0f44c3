"""Golden output of every --format on a passing config, a failing one (a planted bug: a dense
layer whose backward forgets db) and an invalid one: JSON parsed and compared, JUnit parsed and
checked against the elements and attributes of junit-10.xsd, GitHub workflow commands exact; then the renderers on their own: formats by suffix, atomic
--output files, annotation levels, any message in JUnit, NaN in JSON."""
from __future__ import annotations

import json
import os
import stat
import xml.etree.ElementTree as ET

import pytest

from ci_helpers import ANSI, FAILING, INVALID, PASSING, PLUGIN, ROOT, gradcheck
from gradcheck_cli.report.formats import FORMATS, format_for_path, write_atomic

PASSING_ROWS = [("1", "dense", 6, "x"), ("1", "dense", 6, "W"), ("1", "dense", 6, "b"),
                ("1a", "tanh", 6, "x"), ("2", "dense", 7, "x"), ("2", "dense", 7, "W"),
                ("2", "dense", 7, "b"), ("loss", "mse", 8, "x")]
FAILING_ROWS = [("1", "dense_forgot_bias", *r[2:]) if r[0] == "1" else r for r in PASSING_ROWS]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Each scenario once: every file format via --output, and github lines on stdout."""
    runs = {}
    for name, config in (("passing", PASSING), ("failing", FAILING), ("invalid", INVALID)):
        folder = tmp_path_factory.mktemp(name)
        files = {"json": folder / "r.json", "junit": folder / "r.xml", "markdown": folder / "r.md",
                 "table": folder / "r.txt"}
        args = [config, "--plugin", PLUGIN]
        table = gradcheck("check", *args, *[a for f in files.values() for a in ("--output", str(f))])
        github = gradcheck("check", *args, "--format", "github")
        runs[name] = dict(stdout=table, github=github,
                          **{k: f.read_text(encoding="utf-8") for k, f in files.items()})
    return runs


# -- JSON -----------------------------------------------------------------------------------------

def _rows(config):
    return [(r["label"], r["layer_type"], r["line"], r["tensor"]) for r in config["rows"]]


def test_json_passing(outputs):
    doc = json.loads(outputs["passing"]["json"])
    assert doc["schema_version"] == 1
    assert {"gradcheck_version", "numpy_version", "python_version"} <= set(doc)
    assert (doc["exit_code"], doc["interrupted"], doc["strict"]) == (0, False, False)
    [config] = doc["configs"]
    assert {k: config[k] for k in ("path", "name", "status", "error", "seed", "dtype", "layout",
                                   "n_params", "batch")} == {
        "path": PASSING, "name": "passing", "status": "pass", "error": None, "seed": 0,
        "dtype": "float64", "layout": "rows", "n_params": 26, "batch": 2}
    assert _rows(config) == PASSING_ROWS
    assert config["counts"] == {"pass": 8}
    assert "seconds" not in config, "timings would make the JSON differ from run to run"
    for row in config["rows"]:
        assert row["status"] == "pass"
        assert 0 <= row["isolated"]["rel_error"] < 1e-6
        assert row["isolated"]["status"] == "pass"
        assert row["network"] is None or row["network"]["status"] == "pass"   # null: not run


def test_json_failing_names_the_forgotten_bias(outputs):
    doc = json.loads(outputs["failing"]["json"])
    assert doc["exit_code"] == 1
    [config] = doc["configs"]
    assert config["status"] == "FAIL"
    assert _rows(config) == FAILING_ROWS
    assert config["counts"] == {"FAIL": 1, "pass": 7}
    bad = [(r["label"], r["tensor"]) for r in config["rows"] if r["status"] != "pass"]
    assert bad == [("1", "b")]
    row = config["rows"][2]
    assert row["isolated"]["rel_error"] == pytest.approx(1.0)
    assert row["tensor_shape"] == [4]


def test_json_invalid(outputs):
    doc = json.loads(outputs["invalid"]["json"])
    assert doc["exit_code"] == 2
    [config] = doc["configs"]
    assert (config["status"], config["rows"]) == ("error", [])
    assert config["error"] == f"{INVALID}:5:19: layers[0].units: must be > 0, got 0"


def test_json_is_deterministic(outputs, tmp_path):
    again = tmp_path / "again.json"
    gradcheck("check", FAILING, "--plugin", PLUGIN, "--output", str(again))
    assert again.read_text() == outputs["failing"]["json"]


# -- JUnit (junit-10.xsd: the elements and attributes it allows) ----------------------------------

ALLOWED = {
    "testsuites": {"name", "time", "tests", "failures", "errors"},
    "testsuite": {"name", "tests", "failures", "errors", "group", "time", "skipped", "timestamp",
                  "hostname", "id", "package", "file", "log", "url", "version"},
    "testcase": {"name", "time", "classname", "group"},
    "failure": {"type", "message"}, "error": {"type", "message"}, "skipped": {"type", "message"},
    "properties": set(), "property": {"name", "value"}, "system-out": set(), "system-err": set(),
}
REQUIRED = {"testsuite": {"name", "tests", "failures", "errors"}, "testcase": {"name"},
            "property": {"name", "value"}}
CHILDREN = {"testsuites": {"testsuite"}, "testsuite": {"testsuite", "properties", "testcase",
                                                       "system-out", "system-err"},
            "testcase": {"skipped", "error", "failure", "system-out", "system-err"},
            "properties": {"property"}}


def _check_schema(element):
    assert element.tag in ALLOWED, element.tag
    assert set(element.attrib) <= ALLOWED[element.tag], (element.tag, element.attrib)
    assert REQUIRED.get(element.tag, set()) <= set(element.attrib), (element.tag, element.attrib)
    for child in element:
        assert child.tag in CHILDREN.get(element.tag, set()), (element.tag, child.tag)
        _check_schema(child)
    for key in ("time",):
        if key in element.attrib:
            float(element.attrib[key])


def _junit(outputs, name):
    root = ET.fromstring(outputs[name]["junit"].encode())
    _check_schema(root)
    return root


def test_junit_passing(outputs):
    root = _junit(outputs, "passing")
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("8", "0", "0")
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "passing" and suite.get("file") == PASSING
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [f"{l} {t} {x}" for l, t, _, x in PASSING_ROWS]
    assert all(c.get("classname") == "gradcheck.passing" and len(c) == 0 for c in cases)
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["seed"] == "0" and props["dtype"] == "float64"


def test_junit_failing(outputs):
    root = _junit(outputs, "failing")
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("8", "1", "0")
    [suite] = root.findall("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("8", "1", "0")
    failed = [c for c in suite.findall("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["1 dense_forgot_bias b"]
    failure = failed[0].find("failure")
    assert failure.get("type") == "FAIL"
    message = failure.get("message")
    assert message.startswith(f"{FAILING}:6: layer 1 dense_forgot_bias, tensor b: FAIL; ")
    assert message.endswith("layer err 1.00e+00, net err 1.00e+00")
    assert "rel_error=1.00e+00" in failure.text and "tensor (4,)" in failure.text


def test_junit_invalid(outputs):
    root = _junit(outputs, "invalid")
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("1", "0", "1")
    error = root.find("testsuite/testcase/error")
    assert error.get("message") == f"{INVALID}:5:19: layers[0].units: must be > 0, got 0"


# -- GitHub workflow commands ----------------------------------------------------------------------

def test_github_passing_prints_nothing(outputs):
    run = outputs["passing"]["github"]
    assert (run.returncode, run.stdout) == (0, "")


def test_github_failing_line_is_exact(outputs):
    run = outputs["failing"]["github"]
    reason = json.loads(outputs["failing"]["json"])["configs"][0]["rows"][2]["reason"]
    assert run.returncode == 1
    assert run.stdout == (
        f"::error file={FAILING},line=6,title=gradcheck failing%3A FAIL::layer 1 "
        f"dense_forgot_bias, tensor b: FAIL; {reason}; layer err 1.00e+00, net err 1.00e+00\n")


def test_github_invalid_line_is_exact(outputs):
    run = outputs["invalid"]["github"]
    assert run.returncode == 2
    assert run.stdout == (f"::error file={INVALID},line=5,col=19,title=gradcheck invalid%3A "
                          "invalid config::layers[0].units: must be > 0, got 0\n")


def test_github_escaping():
    from gradcheck_cli.report.github import command

    assert command("error", "50% a\nb", file="a,b:c.yaml", line=3) == \
        "::error file=a%2Cb%3Ac.yaml,line=3::50%25 a%0Ab"


def test_github_annotations_added_to_the_table_in_actions(tmp_path):
    from ci_helpers import clean_env

    run = gradcheck("check", FAILING, "--plugin", PLUGIN, env=clean_env(GITHUB_ACTIONS="true"))
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"::error file={FAILING},line=6,")
    assert "failing: FAILED" in run.stdout and run.returncode == 1


# -- Markdown and table ------------------------------------------------------------------------------

def test_markdown_passing(outputs):
    text = outputs["passing"]["markdown"]
    assert text.splitlines()[:5] == [
        "## gradcheck: 1 config passed", "",
        "| config | status | checks | not passing |", "|---|---|---:|---|",
        f"| `{PASSING}` | ✅ pass | 8 | — |"]
    assert "<details>" not in text and text.endswith(" | 8 | — |\n\n")   # no row tables


def test_markdown_failing(outputs):
    lines = outputs["failing"]["markdown"].splitlines()
    assert lines[0] == "## gradcheck: 1 of 1 config failed"
    assert lines[4] == f"| `{FAILING}` | ❌ FAIL | 8 | 1 FAIL |"
    assert lines[6] == f"### `{FAILING}` — failing: FAIL"
    bad = [ln for ln in lines if "| FAIL |" in ln]
    # once in the table of rows that did not pass, once in the collapsed table of all rows
    assert len(bad) == 2 and all(ln.startswith("| 1 | dense_forgot_bias | 6 | b | (4,) | 1.00e+00 | 1.00e+00 | FAIL |")
                                 for ln in bad)


def test_markdown_invalid(outputs):
    lines = outputs["invalid"]["markdown"].splitlines()
    assert lines[4] == (f"| `{INVALID}` | 💥 error | 0 | {INVALID}:5:19: layers[0].units: "
                        "must be > 0, got 0 |")


def test_table_file_and_stdout_are_plain_text(outputs):
    for name in ("passing", "failing", "invalid"):
        run = outputs[name]
        assert ANSI not in run["table"] and ANSI not in run["stdout"].stdout + run["stdout"].stderr
    assert "failing: FAILED — 8 checks: 1 FAIL, 7 pass" in outputs["failing"]["table"]
    assert outputs["failing"]["stdout"].stdout.splitlines()[-1] == "1 config: 0 passed, 1 failed"


def test_validate_annotates_invalid_configs_in_actions(monkeypatch):
    from typer.testing import CliRunner

    from gradcheck_cli.cli import app

    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["validate", INVALID, PASSING], env={"GITHUB_ACTIONS": "true"})
    assert result.exit_code == 2
    assert result.stdout.splitlines()[0] == (
        f"::error file={INVALID},line=5,col=19,title=gradcheck invalid%3A invalid config::"
        "layers[0].units: must be > 0, got 0")


def test_github_paths_are_relative_to_the_workspace():
    from ci_helpers import clean_env

    run = gradcheck("check", f"../{FAILING}", "--plugin", f"../{PLUGIN}", "--format", "github",
                    cwd=ROOT / "tests", env=clean_env(GITHUB_WORKSPACE=str(ROOT)))
    assert run.stdout.startswith(f"::error file={FAILING},line=6,")


# -- the renderers on their own, and --output files -----------------------------------------------------------------------------------

def test_formats_by_suffix():
    assert [format_for_path(p) for p in ("a.json", "a.XML", "a.md", "a.txt", "a.out", "a")] == \
        ["json", "junit", "markdown", "table", None, None]
    assert set(FORMATS) == {"table", "json", "junit", "markdown", "github"}


def test_write_atomic_replaces_whole_files_and_keeps_the_mode(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    os.chmod(target, 0o640)
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_write_atomic_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")

    with pytest.raises(TypeError):
        write_atomic(target, 42)  # type: ignore[arg-type]  (write() refuses it midway)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_annotation_levels_follow_the_exit_code():
    from gradcheck_cli.report.github import config_commands
    from gradcheck_cli.results import Comparison, ConfigResult, Row, Status

    def row(label, status):
        return Row(label, 1, "dense", 4, "W", (2, 3), (2, 4), (3, 4),
                   Comparison(status, rel_error=0.5), None, status=status, reason="r")

    config = ConfigResult("n.yaml", "n", Status.FAIL, rows=[
        row("1", Status.INHERITED), row("2", Status.FAIL), row("3", Status.WARN), row("4", Status.PASS),
        row("5", Status.KINK), row("6", Status.SKIPPED)])
    levels = [line.split(" ", 1)[0] for line in config_commands(config)]
    assert levels == ["::notice", "::error", "::warning", "::notice"]
    # --strict fails warnings, as the exit code does, and nothing else
    assert [line.split(" ", 1)[0] for line in config_commands(config, strict=True)] == \
        ["::notice", "::error", "::error", "::notice"]

    import xml.etree.ElementTree as ET

    from gradcheck_cli.report.junit import to_junit
    from gradcheck_cli.results import RunResult

    for strict, failures in ((False, "2"), (True, "3")):
        root = ET.fromstring(to_junit(RunResult([config], strict=strict)))
        assert (root.get("tests"), root.get("failures")) == ("6", failures)
        assert len(root.findall(".//skipped")) == 1


def test_junit_is_well_formed_whatever_a_message_holds():
    import xml.etree.ElementTree as ET

    from gradcheck_cli.report.junit import to_junit
    from gradcheck_cli.results import ConfigResult, RunResult, Status

    config = ConfigResult("n.yaml", "n\x01", Status.ERROR, error="plugin said \x00\x1b[31mno\x07 <&>")
    root = ET.fromstring(to_junit(RunResult([config])))
    assert root.find("testsuite/testcase/error").get("message") == "plugin said \ufffd\ufffd[31mno\ufffd <&>"


def test_table_file_prints_messages_as_written():
    from gradcheck_cli.results import ConfigResult, RunResult, Status

    config = ConfigResult("n.yaml", "n", Status.ERROR, error="n.yaml:1:1: key `[/red]`: unknown")
    text = FORMATS["table"].render(RunResult([config]), False)
    assert text.splitlines()[0] == "error: n.yaml:1:1: key `[/red]`: unknown"


def test_json_writes_nan_and_inf_as_null_and_keeps_the_status():
    import json

    from gradcheck_cli.report.json_report import to_json
    from gradcheck_cli.results import Comparison, ConfigResult, Row, RunResult, Status

    comparison = Comparison(Status.FAIL, rel_error=float("nan"), max_abs_error=float("inf"),
                            reason="numeric gradient is NaN")
    row = Row("1", 1, "dense", 4, "W", (2, 3), (2, 4), (3, 4), comparison, None,
              status=Status.FAIL, reason="numeric gradient is NaN")
    config = ConfigResult("n.yaml", "n", Status.FAIL, rows=[row], seconds=1.5)
    text = to_json(RunResult([config]))
    doc = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    iso = doc["configs"][0]["rows"][0]["isolated"]
    assert (iso["rel_error"], iso["max_abs_error"], iso["status"]) == (None, None, "FAIL")
    assert "seconds" not in doc["configs"][0]


def test_every_problem_of_an_invalid_config_is_its_own_annotation():
    corpus = ROOT / "tests" / "bad_configs"
    run = gradcheck("check", "five_mistakes.yaml", "--format", "github", cwd=corpus)
    assert run.returncode == 2
    lines = run.stdout.splitlines()
    assert [line.split("::")[1] for line in lines] == [
        f"error file=five_mistakes.yaml,line={n},col={c},title=gradcheck five_mistakes%3A invalid config"
        for n, c in [(3, 1), (6, 47), (7, 6), (8, 19), (9, 5)]]
    assert lines[3].endswith("::layers[2].units: must be > 0, got -2")
