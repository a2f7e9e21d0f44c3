"""layers/composite.py: the L2 penalty covers the weight tensors inside `residual` and
`transformer_block` (checked against the closed form (λ/m)·W), and a transformer block's own
`activation` option is set from the spec (not taken as the shorthand for a layer after it)."""
from __future__ import annotations

import numpy as np
import pytest

from gradcheck_cli import build_network, check_network, spec_from_text
from gradcheck_cli.check.engine import CheckSettings
from gradcheck_cli.layers.activations import GELU, ReLU, Tanh
from gradcheck_cli.results import Status

NET = """seed: 2
l2: {l2}
input: {{shape: [4, 8], batch: 3}}
layers:
  - {{type: transformer_block, heads: 2, hidden: 8}}
  - {{type: flatten}}
  - {{type: residual, layers: [{{type: dense, units: 6, activation: tanh}}, {{type: dense, units: 5}}]}}
  - {{type: dense, units: 3}}
loss: softmax_cross_entropy
"""


def test_decay_names_every_weight_tensor_inside_a_block():
    net = build_network(spec_from_text(NET.format(l2=0.0)))
    assert net.nodes[0].layer.decay == ("2.Wq", "2.Wk", "2.Wv", "2.Wo", "4.W", "6.W")
    assert net.nodes[2].layer.decay == ("1.W", "2.W", "proj.W")


def test_l2_inside_blocks_matches_the_closed_form():
    lam = 0.7
    runs = {}
    for l2 in (0.0, lam):
        net = build_network(spec_from_text(NET.format(l2=l2)))
        result = check_network(net, CheckSettings(keep_arrays=True))
        assert result.status is Status.PASS, [(r.label, r.tensor, r.reason) for r in result.rows
                                              if r.status is not Status.PASS]
        runs[l2] = (net, result.arrays)
    net, arrays = runs[lam]
    _, plain = runs[0.0]
    m = net.batch
    weights = {(0, "2.Wq"), (0, "6.W"), (2, "1.W"), (2, "proj.W")}
    for node, tensor in [*sorted(weights), (0, "1.gamma"), (2, "1.b")]:
        label = net.nodes[node].label
        key = f"network/{label}/{tensor}/numeric"
        W = net.nodes[node].layer.params[tensor]
        # d/dW [loss + λ/(2m)·ΣW²] = d loss/dW + (λ/m)·W for a weight; a gain or a bias is not penalized
        expected = (lam / m) * W if (node, tensor) in weights else np.zeros_like(W)
        np.testing.assert_allclose(arrays[key] - plain[key], expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("activation", "cls"), [("relu", ReLU), ("tanh", Tanh), (None, GELU)])
def test_a_transformer_block_takes_its_own_activation(activation, cls):
    option = f", activation: {activation}" if activation else ""
    net = build_network(spec_from_text(
        f"input: {{shape: [4, 8], batch: 2}}\nlayers: [{{type: transformer_block, heads: 2{option}}}, "
        "{type: linear, units: 3}]\nloss: temporal_softmax_cross_entropy\n"))
    assert [n.label for n in net.nodes] == ["1", "2"]          # no `1a` layer after the block
    assert type(net.nodes[0].layer.inner_layers[4]) is cls
    assert check_network(net).status is Status.PASS


def test_other_layers_keep_the_activation_shorthand():
    net = build_network(spec_from_text(
        "input: {shape: [4], batch: 2}\nlayers: [{type: dense, units: 3, activation: relu}]\nloss: mse\n"))
    assert [(n.label, n.type_name) for n in net.nodes] == [("1", "dense"), ("1a", "relu")]
