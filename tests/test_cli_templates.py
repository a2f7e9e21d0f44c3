"""`gradcheck init`: every template writes a config (and, for custom-layer, a plugin) that passes."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ci_helpers import gradcheck
from gradcheck_cli.cli import app
from gradcheck_cli.cli.templates import TEMPLATES


@pytest.fixture
def init(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def run(*args: str):
        return CliRunner().invoke(app, ["init", *args])

    return run


def test_every_template_passes_its_check(tmp_path, init):
    for name in TEMPLATES:
        (tmp_path / name).mkdir()
        result = init("--template", name, f"{name}/{name}.gradcheck.yaml")
        assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        [f"{n}.gradcheck.yaml" for n in TEMPLATES] + ["my_layers.py"])
    # one subprocess: the custom-layer plugin must not register inside the test process
    run = gradcheck("check", ".", "--plugin", "custom-layer/my_layers.py", "-q", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1] == f"{len(TEMPLATES)} configs: {len(TEMPLATES)} passed, 0 failed"


def test_default_name_and_next_step(init, tmp_path):
    result = init()
    assert result.exit_code == 0
    assert result.stderr == "wrote mlp.gradcheck.yaml; now run: gradcheck check mlp.gradcheck.yaml\n"
    text = (tmp_path / "mlp.gradcheck.yaml").read_text()
    assert "# Run:  gradcheck check mlp.gradcheck.yaml" in text
    result = init("-t", "custom-layer")
    assert result.stderr == ("wrote custom-layer.gradcheck.yaml, my_layers.py; now run: gradcheck "
                             "check custom-layer.gradcheck.yaml --plugin my_layers.py\n")


def test_refuses_to_overwrite_without_force(init, tmp_path):
    (tmp_path / "mlp.gradcheck.yaml").write_text("mine\n")
    result = init()
    assert result.exit_code == 2
    assert result.stderr == "error: mlp.gradcheck.yaml already exists; use --force to overwrite\n"
    assert (tmp_path / "mlp.gradcheck.yaml").read_text() == "mine\n"
    assert init("--force").exit_code == 0
    assert (tmp_path / "mlp.gradcheck.yaml").read_text() != "mine\n"


def test_unknown_template(init):
    result = init("-t", "gan")
    assert result.exit_code == 2
    assert result.stderr == ("error: no template named `gan`: choose one of "
                             "mlp, convnet, rnn, custom-layer\n")


def test_the_custom_layer_config_lists_its_plugin_and_passes_in_ci(tmp_path, init):
    """The template's config names its plugin under `plugins:`, so that `--allow-plugins`, the
    pytest plugin (for configs inside its rootdir) and a pre-commit hook with `args:
    [--allow-plugins]` all find the layer type without being told the file."""
    (tmp_path / "nets").mkdir()
    result = init("--template", "custom-layer", "nets/mine.gradcheck.yaml")
    assert result.exit_code == 0, result.stderr
    text = (tmp_path / "nets" / "mine.gradcheck.yaml").read_text()
    assert "plugins: [my_layers.py]" in text and "{plugin" not in text
    run = gradcheck("check", "nets/mine.gradcheck.yaml", "--allow-plugins", "-q", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    import subprocess
    import sys

    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # the rootdir
    run = subprocess.run([sys.executable, "-m", "pytest", "--gradcheck", "-q", "-p", "no:cacheprovider"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
