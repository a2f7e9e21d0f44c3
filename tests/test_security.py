"""No code runs unless asked: plugins only with --allow-plugins or --plugin, only from inside the
config's folder, and YAML never builds Python objects.

Every plugin here proves whether it ran by writing a marker file when imported.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradcheck_cli.cli import app

NET = "input: {shape: [4], batch: 2}\nlayers:\n  - {type: marked}\nloss: mse\n"


def _plugin(path: Path, marker: Path, name: str = "marked") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'''"""Writes a marker when imported, then registers an identity layer."""
from pathlib import Path

from gradcheck_cli import register
from gradcheck_cli.layers.protocol import Layer

Path({str(marker)!r}).write_text("ran")


@register({name!r})
class Marked(Layer):
    """out = x; dx = dout."""
    def output_shape(self, input_shape):
        return input_shape

    def forward(self, x):
        return x, None

    def backward(self, dout, cache):
        return dout, {{}}
''')
    return path


def _run(args: list[str], cwd: Path, monkeypatch):
    monkeypatch.chdir(cwd)
    return CliRunner().invoke(app, args)


@pytest.mark.parametrize("command", [["check"], ["validate"]])
def test_a_config_plugin_does_not_run_without_allow_plugins(tmp_path, monkeypatch, command):
    marker = tmp_path / "marker"
    _plugin(tmp_path / "layers_a.py", marker, "marked_a")
    (tmp_path / "net.yaml").write_text("plugins: [layers_a.py]\n" + NET.replace("marked", "marked_a"))
    result = _run([*command, "net.yaml"], tmp_path, monkeypatch)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: net.yaml:1:1: plugins: this config names plugins, which are Python code; gradcheck "
        "runs them only with --allow-plugins (or name them with --plugin)\n")
    assert not marker.exists()


def test_allow_plugins_runs_a_plugin_inside_the_config_folder(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    _plugin(tmp_path / "sub" / "layers_b.py", marker, "marked_b")
    (tmp_path / "net.yaml").write_text("plugins: [sub/layers_b.py]\n" + NET.replace("marked", "marked_b"))
    result = _run(["check", "--allow-plugins", "net.yaml"], tmp_path, monkeypatch)
    assert result.exit_code == 0, result.stderr
    assert marker.read_text() == "ran"


@pytest.mark.parametrize("entry,message", [
    ("../outside/layers_c.py", "plugin path '../outside/layers_c.py' resolves outside the config's "
                               "folder; name it with --plugin instead"),
    ("sub/../../outside/layers_c.py", "plugin path 'sub/../../outside/layers_c.py' resolves outside "
                                      "the config's folder; name it with --plugin instead"),
    ("{abs}", "absolute plugin path '{abs}' is not allowed in a config; name it with --plugin instead"),
    ("link.py", "plugin path 'link.py' resolves outside the config's folder; name it with --plugin "
                "instead"),
])
def test_a_config_cannot_reach_a_plugin_outside_its_folder(tmp_path, monkeypatch, entry, message):
    marker = tmp_path / "marker"
    outside = _plugin(tmp_path / "outside" / "layers_c.py", marker, "marked_c")
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    if entry == "link.py":
        try:
            (project / "link.py").symlink_to(outside)
        except OSError:
            pytest.skip("no symlinks here")
    entry = entry.replace("{abs}", str(outside))
    (project / "net.yaml").write_text(f"plugins: [{entry!r}]\n" + NET.replace("marked", "marked_c"))
    result = _run(["check", "--allow-plugins", "net.yaml"], project, monkeypatch)
    assert result.exit_code == 2
    assert result.stderr == f"error: net.yaml:1:11: plugins[0]: {message.replace('{abs}', str(outside))}\n"
    assert not marker.exists()


def test_plugin_named_on_the_command_line_may_live_anywhere(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    plugin = _plugin(tmp_path / "elsewhere" / "layers_d.py", marker, "marked_d")
    project = tmp_path / "project"
    project.mkdir()
    (project / "net.yaml").write_text(NET.replace("marked", "marked_d"))
    result = _run(["check", "--plugin", str(plugin), "net.yaml"], project, monkeypatch)
    assert result.exit_code == 0, result.stderr
    assert marker.exists()


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/object:builtins.dict {{}}",
])
def test_python_tags_are_refused_and_build_nothing(tmp_path, monkeypatch, tag):
    marker = tmp_path / "marker"
    text = "input: {shape: [4], batch: 2}\nlayers:\n  - {type: dense, units: 3}\nloss: mse\n"
    (tmp_path / "net.yaml").write_text(text + "name: " + tag.format(marker=marker) + "\n")
    result = _run(["check", "net.yaml"], tmp_path, monkeypatch)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: net.yaml:5:1: name: YAML tag tag:yaml.org,2002:python/")
    assert result.stderr.endswith(" is not allowed: configs hold plain data only\n")
    assert not marker.exists()


def test_strings_that_look_like_code_stay_strings(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    text = ("name: \"__import__('os').system('touch {m}')\"\nseed: 1\n"
            "input: {{shape: [4], batch: 2}}\nlayers:\n  - {{type: dense, units: 3}}\nloss: mse\n")
    (tmp_path / "net.yaml").write_text(text.format(m=marker))
    result = _run(["check", "--format", "json", "net.yaml"], tmp_path, monkeypatch)
    assert result.exit_code == 0, result.stderr
    assert "__import__('os')" in result.stdout
    assert not marker.exists()


def test_validate_and_layers_import_no_config_plugin(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    _plugin(tmp_path / "layers_e.py", marker, "marked_e")
    (tmp_path / "net.yaml").write_text("plugins: [layers_e.py]\n" + NET.replace("marked", "marked_e"))
    assert _run(["validate", "."], tmp_path, monkeypatch).exit_code == 2
    assert _run(["layers"], tmp_path, monkeypatch).exit_code == 0
    assert not marker.exists()


def test_the_security_section_of_the_readme_exists():
    section = (Path(__file__).resolve().parent.parent / "docs" / "security.md").read_text(encoding="utf-8")
    for phrase in ("--allow-plugins", "--plugin", "python/object", "--max-memory", "--max-evals"):
        assert phrase in section, phrase
