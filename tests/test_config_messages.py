"""The hostile-config corpus: every file in tests/bad_configs/ must give exit 2 and one exact,
located message on stderr, never a traceback (and so must the bad specs at the end, written in
the test).

Each config NAME has a sidecar NAME.expected: its first line is the command (`$ gradcheck ...`,
run in tests/bad_configs/), the rest is the exact stderr. Placeholders keep the sidecars stable
while the layer library grows: {dir} is the corpus folder, {layer_types} and {loss_types} the
registered names. After a deliberate change of wording, rewrite the sidecars with
GRADCHECK_UPDATE_CORPUS=1 and review the diff.
"""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradcheck_cli.cli import app
from gradcheck_cli.errors import QUOTED
from gradcheck_cli.layers.catalog import registered
from gradcheck_cli.run.pipeline import CONFIG_SUFFIXES

from ci_helpers import error_of
from conftest import plugin_layers_hidden

CORPUS = Path(__file__).resolve().parent / "bad_configs"
UPDATE = os.environ.get("GRADCHECK_UPDATE_CORPUS") == "1"

#: configs that are valid as far as `validate` can tell: the problem shows only when a layer runs
RUNTIME_ONLY = {
    "loss_needs_probabilities.yaml", "plugin_forward_raises.yaml", "plugin_forward_wrong_type.yaml",
    "plugin_forward_not_a_pair.yaml", "plugin_forward_nan.yaml", "plugin_forward_wrong_shape.yaml",
    "plugin_forward_exits.yaml", "plugin_forward_objects.yaml",
}


@pytest.fixture(autouse=True)
def _corpus_layers_only():
    # the messages list and suggest layer types: only the built-ins and the corpus's own plugins
    with plugin_layers_hidden(keep_from=CORPUS):
        yield


def _configs() -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir()
                  if p.is_file() and p.name.lower().endswith(CONFIG_SUFFIXES))


def _placeholders() -> list[tuple[str, str]]:
    # longest value first, so that a list is replaced before any name inside it
    return [("{dir}", str(CORPUS)),
            ("{layer_types}", ", ".join(registered("layer"))),
            ("{loss_types}", ", ".join(registered("loss")))]


def _expected(lines: list[str]) -> str:
    """The sidecar's message with its placeholders filled in, each message cut where SpecError
    cuts it (20 × QUOTED characters): the list of valid types grows with the plugin layers other
    tests of the same process registered, and past the cap the product shows it cut."""
    out = []
    for line in lines:
        filled = line
        for token, value in _placeholders():
            filled = filled.replace(token, value)
        if filled != line:
            located = re.match(r"error: \S+?:\d+:\d+: [^\s:]+: ", filled)
            if located:
                head, message = filled[:located.end()], filled[located.end():]
                limit = 20 * QUOTED
                filled = head + (message if len(message) <= limit else message[:limit - 1] + "…")
        out.append(filled)
    return "\n".join(out) + "\n"


def _default_command(name: str) -> str:
    plugins = name.startswith("plugin_") or name == "plugins_not_a_list.yaml"
    return f"$ gradcheck check {'--allow-plugins ' if plugins else ''}{name}"


def _run(args: list[str], monkeypatch) -> tuple[int, str, str]:
    monkeypatch.chdir(CORPUS)
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.stdout, result.stderr


def test_the_corpus_is_large_and_every_config_has_a_sidecar():
    names = _configs()
    assert len(names) >= 60
    missing = [n for n in names if not (CORPUS / (n + ".expected")).exists()]
    assert UPDATE or not missing, f"configs without a .expected sidecar: {missing}"
    orphans = [p.name for p in CORPUS.glob("*.expected") if p.name[: -len(".expected")] not in names]
    assert not orphans


@pytest.mark.parametrize("name", _configs())
def test_bad_config_exits_2_with_its_exact_message(name, monkeypatch):
    sidecar = CORPUS / (name + ".expected")
    lines = sidecar.read_text(encoding="utf-8").splitlines() if sidecar.exists() else []
    command = lines[0] if lines else _default_command(name)
    assert command.startswith("$ gradcheck "), f"{sidecar.name}: first line must be the command"
    code, stdout, stderr = _run(shlex.split(command)[2:], monkeypatch)
    if UPDATE:
        text = stderr
        for token, value in _placeholders():
            text = text.replace(value, token)
        sidecar.write_text(f"{command}\n{text}", encoding="utf-8")
        return
    expected = _expected(lines[1:])
    assert code == 2, stdout + stderr
    assert stderr == expected
    assert "Traceback" not in stdout + stderr
    assert "internal error" not in stderr
    # One message per problem, each located: each line starts with the file name it is about.
    assert all(line.startswith(f"error: {name}") for line in stderr.splitlines())
    assert stderr.count("error: ") == 1 or "mistakes" in name


@pytest.mark.parametrize("name", _configs())
def test_validate_agrees_with_check(name, monkeypatch):
    """`gradcheck validate` finds the same problem, except those that need a forward pass."""
    sidecar = CORPUS / (name + ".expected")
    if UPDATE or not sidecar.exists():
        pytest.skip("sidecars are being written")
    lines = sidecar.read_text(encoding="utf-8").splitlines()
    args = shlex.split(lines[0])[2:]
    assert args[0] == "check"
    code, stdout, stderr = _run(["validate", *args[1:]], monkeypatch)
    if name in RUNTIME_ONLY:
        assert code == 0 and stderr == "", stderr
        return
    expected = _expected(lines[1:])
    assert code == 2
    assert stderr == expected
    assert "1 invalid" in stdout


def test_bom_and_crlf_are_accepted(tmp_path, monkeypatch):
    text = "input: {shape: [4], batch: 2}\nlayers:\n  - {type: dense, units: 3}\nloss: mse\n"
    toml = 'loss = "mse"\n[input]\nshape = [4]\nbatch = 2\n[[layers]]\ntype = "dense"\nunits = 3\n'
    variants = {"bom.yaml": b"\xef\xbb\xbf" + text.encode(),
                "crlf.yaml": text.replace("\n", "\r\n").encode(),
                "bom_crlf.yaml": b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode(),
                "bom_crlf.toml": b"\xef\xbb\xbf" + toml.replace("\n", "\r\n").encode()}
    for name, raw in variants.items():
        (tmp_path / name).write_bytes(raw)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["check", *sorted(variants)])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stderr == ""


def test_the_whole_corpus_at_once_reports_every_file(monkeypatch):
    """One run over the folder: every config is reported as an error, the run exits 2."""
    code, stdout, stderr = _run(["validate", "."], monkeypatch)
    # without --allow-plugins, a config naming plugins is refused before its layers run
    valid = {n for n in RUNTIME_ONLY if not n.startswith("plugin")}
    names = _configs()
    assert code == 2
    assert sorted({line[len("error: "):].split(":")[0] for line in stderr.splitlines()}) == \
        sorted(set(names) - valid)
    assert f"{len(names)} configs: {len(valid)} valid, {len(names) - len(valid)} invalid" in stdout


# -- bad specs written in the test: exact, located messages, exit 2 ---------------------------------------------------

BAD_SPECS = {
    "unknown top-level key": (
        "bad.yaml", "input: {shape: [3]}\nlayers: [{type: dense, units: 2}]\nloss: mse\nepochs: 3\n",
        "bad.yaml:4:1: epochs: unknown key `epochs`: valid keys: name, seed, dtype, layout, input, "
        "layers, loss, l2, check, plugins"),
    "unknown layer option, with a suggestion": (
        "bad.yaml", "input: {shape: [3]}\nlayers:\n  - {type: dense, units: 2, activaton: relu}\nloss: mse\n",
        "bad.yaml:3:29: layers[0].activaton: unknown key `activaton`: did you mean `activation`? "
        "valid keys: type, units, init, std, activation"),
    "typo of a required option": (
        "bad.yaml", "input: {shape: [3]}\nlayers:\n  - {type: dense, unitz: 2}\nloss: mse\n",
        "bad.yaml:3:19: layers[0].unitz: unknown key `unitz`: did you mean `units`? valid keys: "
        "type, units, init, std, activation"),
    "wrong type (a quoted number)": (
        "bad.yaml", "input: {shape: [3], batch: \"4\"}\nlayers: [{type: dense, units: 2}]\nloss: mse\n",
        "bad.yaml:1:21: input.batch: expected an integer, got a string ('4')"),
    "wrong type of a layer option": (
        "bad.yaml", "input: {shape: [3]}\nlayers:\n  - {type: dense, units: 2.5}\nloss: mse\n",
        "bad.yaml:3:19: layers[0].units: expected an integer, got a number (2.5)"),
    "missing required option": (
        "bad.yaml", "input: {shape: [3]}\nlayers:\n  - {type: dense}\nloss: mse\n",
        "bad.yaml:3:5: layers[0].units: required key is missing: `units` takes int > 0"),
    "out of range": (
        "bad.yaml", "input: {shape: [3], batch: 0}\nlayers: [{type: relu}]\nloss: mse\n",
        "bad.yaml:1:21: input.batch: must be ≥ 1, got 0"),
    "bad dtype": (
        "bad.yaml", "dtype: float16\ninput: {shape: [3]}\nlayers: [{type: relu}]\nloss: mse\n",
        "bad.yaml:1:1: dtype: expected 'float64' or 'float32', got 'float16'"),
    "softmax_cross_entropy after a 1-unit layer": (
        "bad.yaml", "input: {shape: [3]}\nlayers:\n  - {type: dense, units: 1}\nloss: softmax_cross_entropy\n",
        "bad.yaml:4:1: loss: softmax_cross_entropy needs class scores of shape (C,) with C ≥ 2, "
        "got (1,) (the last layer outputs (1,) per example)"),
    "dense after a 3-D input": (
        "bad.yaml", "input: {shape: [2, 3, 4]}\nlayers:\n  - {type: dense, units: 2}\nloss: mse\n",
        "bad.yaml:3:5: layers[0]: dense needs a 1-D input per example, got (2, 3, 4): add a "
        "flatten layer before it"),
    "columns layout with a 2-D input": (
        "bad.yaml", "layout: columns\ninput: {shape: [2, 3]}\nlayers:\n  - {type: relu}\nloss: mse\n",
        "bad.yaml:2:9: input.shape: columns layout holds 1-D feature vectors (x is (n, m)); got "
        "shape [2, 3]: use layout: rows for images and sequences"),
    "loss used as a layer": (
        "bad.yaml", "input: {shape: [3]}\nlayers:\n  - {type: mse}\nloss: mse\n",
        "bad.yaml:3:6: layers[0].type: `mse` is a loss, so it belongs under `loss:`"),
    "duplicate key": (
        "bad.yaml", "input: {shape: [3]}\ninput: {shape: [4]}\nlayers: [{type: relu}]\nloss: mse\n",
        "bad.yaml:2:1: invalid YAML: found duplicate key \"input\" (each key may appear once)"),
    "TOML, wrong type": (
        "bad.toml", '[input]\nshape = [3]\nbatch = "2"\n[[layers]]\ntype = "relu"\n[loss]\ntype = "mse"\n',
        "bad.toml:3:1: input.batch: expected an integer, got a string ('2')"),
    "plugins without --allow-plugins": (
        "bad.yaml", "input: {shape: [3]}\nplugins: [mine.py]\nlayers: [{type: relu}]\nloss: mse\n",
        "bad.yaml:2:1: plugins: this config names plugins, which are Python code; gradcheck runs "
        "them only with --allow-plugins (or name them with --plugin)"),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_bad_spec_gives_exact_located_error_and_exit_2(run, case):
    name, text, expected = BAD_SPECS[case]
    files = {name: text, "mine.py": "raise SystemExit('must not run')\n"}
    result = run("check", name, files=files)
    assert result.exit_code == 2, result.output
    assert error_of(result) == expected
    assert result.stdout.splitlines()[-1] == "1 config: 0 passed, 0 failed, 1 could not be checked"
    assert "Traceback" not in result.output + result.stderr
