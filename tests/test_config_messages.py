"""The hostile-config corpus: every file in tests/bad_configs/ must give exit 2 and one exact,
located message on stderr, never a traceback.

Each config NAME has a sidecar NAME.expected: its first line is the command (`$ gradcheck ...`,
run in tests/bad_configs/), the rest is the exact stderr. Placeholders keep the sidecars stable
while the layer library grows: {dir} is the corpus folder, {layer_types} and {loss_types} the
registered names. After a deliberate change of wording, rewrite the sidecars with
GRADCHECK_UPDATE_CORPUS=1 and review the diff.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradcheck_cli.cli import app
from gradcheck_cli.layers.catalog import registered
from gradcheck_cli.run.pipeline import CONFIG_SUFFIXES

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
    expected = "\n".join(lines[1:]) + "\n"
    for token, value in _placeholders():
        expected = expected.replace(token, value)
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
    expected = "\n".join(lines[1:]) + "\n"
    for token, value in _placeholders():
        expected = expected.replace(token, value)
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
