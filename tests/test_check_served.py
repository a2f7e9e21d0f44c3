"""check/served.py: which tensors the exact shortcuts serve and what a probe of one holds, the
same rule for the resource guard's estimate (before any array exists) and for the check."""
from __future__ import annotations

import math

import pytest

import gradcheck_cli.check.tensor as check_module
from gradcheck_cli.check.budget import bytes_per_probe, copy_sizes, served_bytes
from gradcheck_cli.check.engine import check_network
from gradcheck_cli.check.network import build_network
from gradcheck_cli.check.served import columns_through, supports
from gradcheck_cli.config.models import spec_from_text
from gradcheck_cli.config.plan import plan_network


def _layers(layers: str, shape="[6]", layout="rows"):
    text = f"input: {{shape: {shape}, batch: 4}}\nlayout: {layout}\nlayers:\n{layers}loss: mse\n"
    return [n.layer for n in plan_network(spec_from_text(text, "yaml", "n.yaml")).nodes]


DENSE_TANH_DENSE = "  - {type: dense, units: 5}\n  - {type: tanh}\n  - {type: dense, units: 3}\n"


@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_a_dense_probe_stays_one_column_through_elementwise_layers_up_to_the_next_dense(layout):
    layers = _layers(DENSE_TANH_DENSE, layout=layout)
    # isolated: ⟨out, G⟩ straight from the changed column
    assert columns_through(layers[:1], isolated=True) == 1
    # end to end: the loss gets whole copies of the last activation
    assert columns_through(layers[:1], isolated=False) == 0
    assert columns_through(layers[:2], isolated=False) == 1
    # the dense layer after the tanh takes the column as a rank-1 update of its whole output
    assert columns_through(layers, isolated=False) == 2


def test_a_layer_other_than_a_dense_one_takes_whole_copies():
    layers = _layers("  - {type: dense, units: 8}\n  - {type: relu}\n  - {type: layernorm}\n")
    assert columns_through(layers, isolated=False) == 1
    assert supports(layers[0], "W") and not supports(layers[1], "x") and supports(layers[1], "x", True)
    assert not supports(layers[2], "gamma", True)


def test_the_check_sizes_a_served_tensors_batches_as_the_estimate_models_them(monkeypatch):
    text = "input: {shape: [300], batch: 16}\nlayers:\n  - {type: dense, units: 300}\nloss: mse\n"
    layer = plan_network(spec_from_text(text, "yaml", "w.yaml")).nodes[0].layer
    sizes = copy_sizes([layer], [(16, 300), (16, 300)])
    modelled = served_bytes([layer], "W", 300 * 300, sizes, 16, "central", True)
    # one changed column of 16 entries, not a copy of W and three whole activations
    assert modelled < bytes_per_probe(300 * 300, sizes, "central") / 100
    assert modelled == bytes_per_probe(16, [0, 32], "central")
    seen = []
    chunk_for = check_module.chunk_for
    monkeypatch.setattr(check_module, "chunk_for", lambda per, budget: seen.append(per) or chunk_for(per, budget))
    check_network(build_network(spec_from_text(text, "yaml", "w.yaml")))
    assert modelled in seen
    assert math.prod((300, 300)) * 8 > max(seen)


@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_a_probe_of_a_dense_layers_input_holds_one_row_of_its_output(layout):
    layers = _layers(DENSE_TANH_DENSE, layout=layout)       # input 6, dense 5, tanh, dense 3; m = 4
    sizes = [4 * 6, 4 * 5, 4 * 5, 4 * 3]
    # in isolation ⟨out, G⟩ is read off the changed row of 5 units, and off one entry of a tanh
    assert served_bytes(layers[:1], "x", 24, sizes[:2], 4, "central", True) == \
        bytes_per_probe(0, [5], "central", copies=0)
    assert served_bytes(layers[1:2], "x", 20, sizes[1:3], 4, "central", True) == \
        bytes_per_probe(0, [1], "central", copies=0)
    # end to end the row is carried through the layers that keep examples apart (rows layout),
    # and the loss may take the last output whole; in columns layout a probe is a whole copy
    rows = [5, 5, 3, 12] if layout == "rows" else [20, 20, 12]
    assert served_bytes(layers, "x", 24, sizes, 4, "central", False) == \
        bytes_per_probe(0, rows, "central", copies=0)


def test_the_isolated_figure_of_a_dense_input_is_what_its_batches_hold():
    import tracemalloc

    import numpy as np

    from gradcheck_cli.check import shortcuts

    layer = _layers("  - {type: dense, units: 300}\n", shape="[300]")[0]
    rng = np.random.default_rng(0)
    layer.params = {"W": rng.standard_normal((300, 300)), "b": rng.standard_normal(300)}
    x = rng.standard_normal((4, 300))
    out, G = layer.forward(x)[0], rng.standard_normal((4, 300))
    evaluate = shortcuts.entries_evaluator(layer, "x", [x, out], [], lambda o: o, True, contraction=G)
    idx = rng.integers(0, x.size, 4096)
    values = x.reshape(-1)[idx] + 1e-6
    figure = served_bytes([layer], "x", x.size, [x.size, out.size], 4, "central", True)
    tracemalloc.start()
    try:
        evaluate(idx, values)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the index arrays and the inputs of the call come on top of the rows: within 1.5x
    assert 0.5 * idx.size * figure <= peak <= 1.5 * idx.size * figure, peak / (idx.size * figure)
