"""layers/recurrent.py: what one forward of a recurrent layer holds, as held_entries says it to
the memory model, against what a forward of a stack of copies holds (tracemalloc)."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from gradcheck_cli import build_network, spec_from_text


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("T, H", [(16, 64), (5, 8)])
def test_a_forward_holds_what_held_entries_says(cell, T, H):
    text = (f"input: {{shape: [{T}, 12], batch: 6}}\nlayers:\n  - {{type: {cell}, hidden: {H}}}\n"
            "loss: mse\n")
    layer = build_network(spec_from_text(text)).nodes[0].layer
    x = np.random.default_rng(0).standard_normal((6, T, 12))
    copies = 10
    stack = np.repeat(x[None], copies, axis=0)
    tracemalloc.start()
    try:
        out, cache = layer.forward(stack)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    said = 8 * copies * layer.held_entries(x.shape)
    # every step's cache and state, and one step's temporaries: a batch of copies is sized by it,
    # so a figure too low lets a batch over the budget, and one too high cuts batches for nothing
    assert 0.75 * said <= peak <= 1.15 * said, peak / said
