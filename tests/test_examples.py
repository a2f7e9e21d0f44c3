"""Bundled configs and planted-bug examples: each bug is flagged at its row and nowhere else.

Mutation tests: every file in examples/broken/ plants one known bug in a plugin layer. The isolated
check must FAIL exactly the planted (layer, tensor); when the bug is in a dx, every row before it
is wrong end to end only, so it must be "inherited"; every other row must pass.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gradcheck_cli.check.engine import check_network
from gradcheck_cli.cli import app
from gradcheck_cli.check.network import build_network
from gradcheck_cli.layers.plugins import load_plugin
from gradcheck_cli.results import Status
from gradcheck_cli.run.pipeline import RunOptions, check_file, discover
from gradcheck_cli.config.models import spec_from_text

ROOT = Path(__file__).resolve().parent.parent
BROKEN = ROOT / "examples" / "broken"

#: config stem -> (label, tensor) of the planted bug, and a phrase its reason must contain
PLANTED = {
    "missing_transpose": (("2", "W"), "transposed? its transpose matches"),
    "missing_mean": (("loss", "x"), "dx does not match"),
    "wrong_sigmoid_derivative": (("2a", "x"), "dx does not match"),
    "sign_error": (("2", "x"), "dx does not match"),
    "forgotten_bias": (("1", "b"), "db does not match"),
}


def _configs(folder: str) -> list[Path]:
    return discover([str(ROOT / folder)])


def test_every_broken_example_has_an_expectation():
    assert sorted(p.stem for p in _configs("examples/broken")) == sorted(PLANTED)


@pytest.mark.parametrize("stem", sorted(PLANTED))
def test_planted_bug_fails_at_its_row_and_nowhere_else(stem):
    result = check_file(BROKEN / f"{stem}.yaml", RunOptions(allow_plugins=True))
    assert result.status is Status.FAIL, result.error
    _assert_only_planted_row_fails(stem, result)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("stem", sorted(PLANTED))
def test_planted_bug_is_found_for_other_seeds_and_float32(stem, seed, dtype):
    """Not the luck of one seed: other weights and inputs, and float32, give the same verdicts."""
    load_plugin(BROKEN / f"{stem}.py")
    text = (BROKEN / f"{stem}.yaml").read_text().replace("seed: 0", f"seed: {seed}\ndtype: {dtype}")
    assert f"seed: {seed}" in text
    spec = spec_from_text(text.replace("plugins:", "# plugins:"), "yaml", f"{stem}.yaml")
    result = check_network(build_network(spec))
    _assert_only_planted_row_fails(stem, result)


def _assert_only_planted_row_fails(stem, result):
    (label, tensor), phrase = PLANTED[stem]
    keys = [(r.label, r.tensor) for r in result.rows]
    bug = keys.index((label, tensor))
    for k, row in enumerate(result.rows):
        if k == bug:
            assert row.status is Status.FAIL
            assert row.isolated.status is Status.FAIL
            assert phrase in row.reason
        elif tensor == "x" and k < bug:
            # upstream of a wrong dx: right in isolation, wrong end to end
            assert row.status is Status.INHERITED, (row.label, row.tensor, row.reason)
            assert row.isolated.status is Status.PASS
            assert (f"layer {label} " if label != "loss" else "the loss (") in row.reason
        else:
            assert row.status is Status.PASS, (row.label, row.tensor, row.reason)


def test_missing_transpose_reports_both_shapes():
    result = check_file(BROKEN / "missing_transpose.yaml", RunOptions(allow_plugins=True))
    row = next(r for r in result.rows if (r.label, r.tensor) == ("2", "W"))
    assert row.tensor_shape == (3, 5) and row.grad_shape == (5, 3)
    assert row.reason.startswith("dW has shape (5, 3), but W is (3, 5): transposed?")


def test_broken_folder_through_the_cli_exits_1():
    result = CliRunner().invoke(app, ["check", str(BROKEN), "--allow-plugins", "--quiet"])
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[-1] == "5 configs: 0 passed, 5 failed"


def test_broken_example_runs_with_plugin_named_on_the_command_line():
    result = CliRunner().invoke(app, ["check", str(BROKEN / "forgotten_bias.yaml"),
                                      "--plugin", str(BROKEN / "forgotten_bias.py"), "--quiet"])
    assert result.exit_code == 1, result.output
    assert "forgotten-bias: FAILED — 9 checks: 1 FAIL, 8 pass" in result.stdout


@pytest.mark.parametrize("config", _configs("configs"), ids=lambda p: p.name)
def test_bundled_config_passes_with_exit_0(config):
    result = CliRunner().invoke(app, ["check", str(config)])
    assert result.exit_code == 0, result.output + result.stderr
    assert result.stdout.splitlines()[-1] == "1 config: 1 passed, 0 failed"


def test_every_config_below_configs_is_covered():
    """`gradcheck check configs/` checks exactly the files tested one by one above."""
    on_disk = {p for suffix in ("yaml", "yml", "toml") for p in (ROOT / "configs").rglob(f"*.{suffix}")}
    assert set(_configs("configs")) == on_disk and on_disk


def test_example_plugin_passes():
    result = CliRunner().invoke(app, ["check", str(ROOT / "examples" / "plugins"), "--allow-plugins"])
    assert result.exit_code == 0, result.output + result.stderr
    assert "my-dense: passed — 8 checks: 8 pass" in result.stdout


def test_readme_plugin_example_is_the_tested_file():
    """docs/plugins.md shows examples/plugins/my_dense.py and its config verbatim, so it runs as shown."""
    readme = (ROOT / "docs" / "plugins.md").read_text()
    start = readme.index("<!-- section: plugins -->")
    end = readme.find("<!-- section:", start + 1)
    section = readme[start:end if end != -1 else None]
    plugin_dir = ROOT / "examples" / "plugins"
    assert f"```python\n{(plugin_dir / 'my_dense.py').read_text()}```" in section
    assert f"```yaml\n{(plugin_dir / 'my_dense.yaml').read_text()}```" in section


@settings(max_examples=25, deadline=None)
@given(n_in=st.integers(1, 6), units=st.integers(1, 6), batch=st.integers(1, 5),
       seed=st.integers(0, 2**32 - 1))
def test_missing_transpose_is_flagged_for_any_shape(n_in, units, batch, seed):
    """The classic dW = A_prev·dZᵀ bug says "transposed?" at its W, whatever the sizes (W square
    or not), and no other row fails."""
    load_plugin(BROKEN / "missing_transpose.py")
    text = (f"seed: {seed}\nlayout: columns\ninput: {{shape: [{n_in}], batch: {batch}}}\nlayers:\n"
            f"  - {{type: dense_missing_transpose, units: {units}, activation: tanh}}\n"
            f"  - {{type: dense, units: 2}}\nloss: mse\n")
    result = check_network(build_network(spec_from_text(text, "yaml", "t.yaml")))
    failing = [(r.label, r.tensor) for r in result.rows if r.status is Status.FAIL]
    if n_in == 1 or units == 1:
        # a vector: its transpose has the same entries, so only the shape can be wrong
        assert failing == ([("1", "W")] if n_in != units else []), failing
        return
    assert failing == [("1", "W")]
    w = next(r for r in result.rows if (r.label, r.tensor) == ("1", "W"))
    assert "transposed?" in w.reason, w.reason
