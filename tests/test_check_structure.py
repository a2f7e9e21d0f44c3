"""check/structure.py, check/copies.py, check/factored.py: what the engine shares between
perturbed copies is found on the real arrays, never taken from a plugin's word, and every verdict
is the same with and without the shortcuts."""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from gradcheck_cli import build_network, check_network, load_spec, spec_from_text
from gradcheck_cli.check.state import CheckSettings
from gradcheck_cli.check.structure import structure_of
from gradcheck_cli.layers.plugins import load_plugin
from gradcheck_cli.layers.registry import lookup
from gradcheck_cli.results import Status

from test_check_shortcuts import assert_agree_within_noise

ROOT = Path(__file__).resolve().parent.parent
PLAIN = ROOT / "tests" / "fixtures" / "plain" / "plain_layers.py"
CONFIGS = sorted(p for p in (ROOT / "configs").iterdir() if p.suffix in (".yaml", ".toml"))
BROKEN = sorted((ROOT / "examples" / "broken").glob("*.yaml"))
MUTANTS = sorted((ROOT / "tests" / "mutants").glob("*.toml"))

PLAIN_MLP = """
input: {shape: [6], batch: 5}
seed: SEED
layers:
  - {type: DENSE, units: 7}
  - {type: plain_relu}
  - {type: plain_dense, units: 4}
  - {type: plain_batch_center}
  - {type: plain_dense, units: 3}
loss: softmax_cross_entropy
l2: 0.2
"""


@pytest.fixture(scope="module", autouse=True)
def plain_layers():
    load_plugin(PLAIN)


def _layer(name, input_shape, **options):
    layer = lookup(name)(**options)
    layer.build(input_shape, np.random.default_rng(0))
    layer.params = {k: np.asarray(v, dtype=np.float64) for k, v in layer.params.items()}
    return layer


def test_rows_layout_dense_stacks_x_and_w_not_b():
    rng = np.random.default_rng(1)
    st = structure_of(_layer("plain_dense", (5,), units=4), rng.standard_normal((3, 5)), "rows", rng)
    assert st.stacks == {"x", "W"}
    assert st.separable and st.concatenates and not st.elementwise
    assert st.axes_of("W") == (1, 1) and st.axes_of("b") == (0, 1)


def test_relu_is_elementwise_and_batch_centering_is_not_separable():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 6))
    relu = structure_of(_layer("plain_relu", (6,)), x, "rows", rng)
    assert relu.elementwise and relu.separable
    center = structure_of(_layer("plain_batch_center", (6,)), x, "rows", rng)
    assert not center.separable and not center.concatenates and not center.stacks


def test_a_loop_layer_is_batched_along_the_batch_axis_only():
    rng = np.random.default_rng(3)
    st = structure_of(_layer("loop_dense", (5,), units=2), rng.standard_normal((3, 5)), "rows", rng)
    assert st.stacks == set() and st.concatenates and st.separable


def _statuses(result):
    # a diagnosis quotes a rounding-level error (rel err 2.8e-11): its digits are not part of it
    return [(r.label, r.tensor, r.status, r.isolated.status, r.network.status if r.network else None,
             re.sub(r"\d\.\de-\d+", "~", r.isolated.diagnosis or "")) for r in result.rows]


def _both(spec, **settings):
    on = check_network(build_network(spec), CheckSettings(keep_arrays=True, **settings))
    off = check_network(build_network(spec), CheckSettings(keep_arrays=True, batched=False, **settings))
    return on, off


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dense", ["plain_dense", "loop_dense"])
def test_plugin_network_same_verdicts_and_numbers_with_and_without_shortcuts(dense, seed):
    on, off = _both(spec_from_text(PLAIN_MLP.replace("DENSE", dense).replace("SEED", str(seed))))
    assert _statuses(on) == _statuses(off)
    assert_agree_within_noise(on, off)
    # batch centring keeps the layers before it from sharing copies between examples
    assert on.evaluations < 0.6 * off.evaluations


def test_a_planted_1e5_error_in_a_plugin_is_still_found():
    spec = PLAIN_MLP.replace("DENSE", "plain_dense_off").replace("SEED", "0")
    on, off = _both(spec_from_text(spec))
    row = next(r for r in on.rows if (r.label, r.tensor) == ("1", "W"))
    assert row.status is Status.FAIL
    assert _statuses(on) == _statuses(off)


@pytest.mark.parametrize("path", [p for p in CONFIGS if "lenet" not in p.name] + BROKEN,
                         ids=lambda p: p.name)
def test_bundled_and_broken_configs_same_verdicts_with_and_without_shortcuts(path):
    spec = load_spec(path)
    for plugin in spec.plugins:
        load_plugin(path.parent / plugin)
    on, off = _both(spec)
    assert _statuses(on) == _statuses(off)
    # the end-to-end column may come from the factored route: the same numbers to the noise
    assert_agree_within_noise(on, off)


def _mutant_specs():
    for table in MUTANTS:
        data = tomllib.loads(table.read_text(encoding="utf-8"))
        plugin = table.parent / data.get("plugin", table.with_suffix(".py").name)
        for k, case in enumerate(data.get("cases", [])):
            net = dict(data["networks"][case["network"]])
            for drop in ("correct", "seeds", "dtypes"):
                net.pop(drop, None)
            entry = {"type": case["layer"], **case.get("options", {})}
            net["layers"] = [{**layer, **entry} if layer.get("type") == "@" else layer
                             for layer in net["layers"]]
            if net.get("loss") == "@":
                net["loss"] = entry
            net["seed"], net["dtype"] = case.get("seed", 0), case.get("dtype", "float64")
            yield pytest.param(plugin, json.dumps(net), id=f"{table.stem}-{k}-{case['layer']}")


@pytest.mark.parametrize("plugin,text", list(_mutant_specs()))
def test_mutant_corpus_same_verdicts_with_and_without_shortcuts(plugin, text):
    load_plugin(plugin)
    on, off = _both(spec_from_text(text, "yaml", "mutant.yaml"))
    assert _statuses(on) == _statuses(off)
