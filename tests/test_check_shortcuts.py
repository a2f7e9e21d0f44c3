"""The batched path (stacked copies, column, row and rank-1 shortcuts, chunks) against the
one-copy-at-a-time path: numeric gradients agree to rounding, verdicts are identical."""
from pathlib import Path

import numpy as np
import pytest

from gradcheck_cli import build_network, check_network, load_spec, spec_from_text
from gradcheck_cli.check.engine import CheckSettings

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted(p for p in (ROOT / "configs").iterdir() if p.suffix in (".yaml", ".toml"))

MLP = """
input: {shape: [12], batch: 6}
layout: %s
layers:
  - {type: dense, units: 10, activation: relu}
  - {type: dense, units: 9, activation: tanh}
  - {type: dense, units: 4, activation: softmax}
loss: mse
l2: 0.3
"""


RELU_MLP = """
input: {shape: [7], batch: 5}
check: {eps: %s}
layers:
  - {type: dense, units: 9, activation: relu}
  - {type: dense, units: 8, activation: {type: leaky_relu, alpha: 0.2}}
  - {type: dense, units: 6, activation: relu}
  - {type: dense, units: 3}
loss: softmax_cross_entropy
l2: 0.1
"""


def _compare(spec_a, spec_b, settings_a: CheckSettings):
    a = check_network(build_network(spec_a), settings_a)
    b = check_network(build_network(spec_b), CheckSettings(keep_arrays=True, batched=False,
                                                           mode=settings_a.mode))
    assert [(r.label, r.tensor, r.status) for r in a.rows] == [(r.label, r.tensor, r.status) for r in b.rows]
    assert_agree_within_noise(a, b)


def assert_agree_within_noise(a, b):
    """Every numeric gradient of run a equals run b's to within the finite-difference noise that
    both estimate (rounding ≈ ε·Σ|terms|/h: more for a convolution than for a dense layer)."""
    rows_a = {(r.label, r.tensor): r for r in a.rows}
    rows_b = {(r.label, r.tensor): r for r in b.rows}
    for key, value in a.arrays.items():
        if key.endswith("numeric"):
            other = b.arrays[key]
            check, label, tensor = key.split("/")[:3]
            cmp_a, cmp_b = (getattr(rows[(label, tensor)], "isolated" if check == "isolated" else "network")
                            for rows in (rows_a, rows_b))
            noise = max(cmp_a.noise or 0.0, cmp_b.noise or 0.0)
            size = float(np.linalg.norm(value) + np.linalg.norm(other))
            scale = max(1.0, float(np.abs(other).max()))
            assert np.linalg.norm(value - other) <= 4 * noise * size + 1e-9 * scale, key


@pytest.mark.parametrize("path", [p for p in CONFIGS if "transformer" not in p.name and "lenet" not in p.name],
                         ids=lambda p: p.name)
def test_bundled_configs_batched_equals_one_at_a_time(path):
    _compare(load_spec(path), load_spec(path), CheckSettings(keep_arrays=True))


@pytest.mark.parametrize("layout", ["rows", "columns"])
@pytest.mark.parametrize("memory", [256 << 20, 4096])   # 4 KiB forces many small chunks
def test_dense_shortcuts_and_chunks_equal_one_at_a_time(layout, memory):
    _compare(spec_from_text(MLP % layout), spec_from_text(MLP % layout),
             CheckSettings(keep_arrays=True, max_memory=memory))


@pytest.mark.parametrize("eps", ["auto", "3e-2"])   # a large step moves units across their kinks
def test_piecewise_linear_shortcut_equals_one_at_a_time(eps):
    """dense → relu → dense: copies whose change stays on one side of every kink use the linear
    piece; the others (many at a large step) are computed in full. Both must equal the forward."""
    _compare(spec_from_text(RELU_MLP % eps), spec_from_text(RELU_MLP % eps), CheckSettings(keep_arrays=True))
