"""isolated.py: the isolated check never lets a layer's forward corrupt the activations that the
rest of the check reuses, so a layer that writes into its input FAILs its own x row and the
layers before it are judged on the real network (not `kink` on every entry)."""
from __future__ import annotations

from pathlib import Path

from gradcheck_cli import build_network, check_network, spec_from_text
from gradcheck_cli.layers.plugins import load_plugin
from gradcheck_cli.results import Status

load_plugin(Path(__file__).parent / "mutants" / "kinks.py")

SPEC = """name: inplace
seed: {seed}
input: {{shape: [4], batch: 3}}
layers:
  - {{type: dense, units: 4}}
  - {{type: kinks_relu_dense_inplace, units: 4}}
  - {{type: dense, units: 3}}
loss: softmax_cross_entropy
"""


def test_a_forward_that_writes_into_its_input_fails_its_own_row_only():
    for seed in range(5):
        result = check_network(build_network(spec_from_text(SPEC.format(seed=seed))))
        not_pass = {(r.label, r.tensor): (r.status, r.reason) for r in result.rows if r.status is not Status.PASS}
        assert not_pass == {("2", "x"): (Status.FAIL, "forward modifies its input x in place")}
        assert result.rows[3].isolated.diagnosis == "forward writes into its input"
        # every entry of the layers before it was compared (none excused as a kink)
        assert all(r.network.kinks == 0 for r in result.rows if r.label == "1")
