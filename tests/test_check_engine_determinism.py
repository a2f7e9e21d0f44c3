"""Determinism and integrity: the same config and seed give bit-identical JSON across runs,
processes and --jobs values, and no entry is reported as passing unless it was evaluated."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from typer.testing import CliRunner

from gradcheck_cli import __version__
from gradcheck_cli.cli import app

ROOT = Path(__file__).resolve().parent.parent

MLP = """name: {name}
seed: {seed}
dtype: {dtype}
input: {{shape: [5], batch: 3}}
layers:
  - {{type: dense, units: 6, activation: tanh}}
  - {{type: dense, units: 4}}
loss: softmax_cross_entropy
check: {{mode: {mode}, samples: 5, directions: 3}}
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("det")
    for src in ("mlp.yaml", "activations.toml", "course_columns.yaml"):
        shutil.copy(ROOT / "configs" / src, d / src)
    variants = [("full", "float64", 0), ("sample", "float64", 7), ("directional", "float64", 3),
                ("full", "float32", 11), ("sample", "float32", 2**40)]
    for mode, dtype, seed in variants:
        name = f"{mode}_{dtype}_{seed}"
        (d / f"{name}.yaml").write_text(MLP.format(name=name, seed=seed, dtype=dtype, mode=mode))
    return d


def _json(args: list[str], folder: Path) -> str:
    result = CliRunner().invoke(app, ["check", "--format", "json", *args, str(folder)])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_same_config_and_seed_give_identical_json(folder):
    first = _json([], folder)
    assert _json([], folder) == first
    assert _json(["--jobs", "2"], folder) == first


def test_identical_json_in_a_fresh_process_with_other_hash_seeds(folder):
    first = _json([], folder)
    env = {**os.environ, "PYTHONHASHSEED": "12345", "COLUMNS": "120"}
    out = subprocess.run([sys.executable, "-m", "gradcheck_cli", "check", "--format", "json", str(folder)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == first


def test_another_seed_gives_other_numbers(folder, tmp_path):
    (tmp_path / "a.yaml").write_text(MLP.format(name="n", seed=1, dtype="float64", mode="full"))
    (tmp_path / "b.yaml").write_text(MLP.format(name="n", seed=2, dtype="float64", mode="full"))
    a = json.loads(_json([], tmp_path / "a.yaml"))["configs"][0]["rows"]
    b = json.loads(_json([], tmp_path / "b.yaml"))["configs"][0]["rows"]
    assert [r["isolated"]["rel_error"] for r in a] != [r["isolated"]["rel_error"] for r in b]


def test_json_says_how_to_reproduce(folder):
    run = json.loads(_json([], folder))
    assert run["gradcheck_version"] == __version__
    assert run["numpy_version"] == numpy.__version__
    for config in run["configs"]:
        assert config["seed"] is not None and config["dtype"] in ("float32", "float64")
        for key in ("method", "eps", "mode", "samples", "directions", "pass_rtol", "warn_rtol"):
            assert key in config["settings"], key
        assert config["cost"]["evaluations"] > 0


def test_no_pass_for_an_entry_not_evaluated(folder):
    run = json.loads(_json([], folder))
    seen_sample = False
    for config in run["configs"]:
        mode = config["settings"]["mode"]
        for row in config["rows"]:
            size = math.prod(row["tensor_shape"])
            for check in (row["isolated"], row["network"]):
                if check is None or check["status"] != "pass":
                    continue
                # a pass is a number of entries (or directions) actually compared
                assert check["entries"] > 0, (config["name"], row["label"], row["tensor"])
                if mode == "full":
                    assert check["entries"] == size
                elif mode == "sample":
                    assert check["entries"] == min(size, config["settings"]["samples"])
                    seen_sample = seen_sample or size > config["settings"]["samples"]
            if row["status"] == "pass":
                assert row["isolated"]["status"] == "pass"
    assert seen_sample


BROKEN = '''"""A layer whose backward forgets one gradient and returns None for another."""
import numpy as np

from gradcheck_cli import register
from gradcheck_cli.layers.protocol import Layer


@register("forgetful")
class Forgetful(Layer):
    """out = x·w + c (w, c per feature); backward returns no gradient for c, None for w."""
    def output_shape(self, input_shape):
        return input_shape

    def init_params(self, input_shape, rng):
        return {"w": rng.standard_normal(input_shape), "c": rng.standard_normal(input_shape)}

    def forward(self, x):
        return x * self.params["w"] + self.params["c"], x

    def backward(self, dout, cache):
        return dout * self.params["w"], {"w": None}
'''


def test_a_gradient_not_returned_is_never_a_pass(tmp_path, monkeypatch):
    (tmp_path / "forgetful.py").write_text(BROKEN)
    (tmp_path / "net.yaml").write_text("plugins: [forgetful.py]\ninput: {shape: [3], batch: 2}\n"
                                       "layers:\n  - {type: forgetful}\nloss: mse\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["check", "--allow-plugins", "--format", "json", "net.yaml"])
    assert result.exit_code == 1, result.stderr
    rows = {r["tensor"]: r for r in json.loads(result.stdout)["configs"][0]["rows"] if r["label"] == "1"}
    assert rows["x"]["status"] == "pass"
    assert rows["w"]["status"] == "FAIL" and rows["c"]["status"] == "FAIL"
