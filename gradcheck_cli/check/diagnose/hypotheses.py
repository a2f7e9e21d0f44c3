"""The hypotheses in the order they are tried, and the diagnosis: the first one that explains a
failing gradient. Specific patterns come before general ones (a constant factor before a block
of wrong entries, a block before "correct except these entries"), and the candidates that cost
finite differences come last."""
from __future__ import annotations

import numpy as np

from . import localize, windows
from .candidates import neighbour, repaired_by_cache, transformed_layer
from .context import Context, Hypothesis, fails
from .derivatives import active_only, activation_derivative, softmax_backward
from .factors import all_zero, constant_factor, per_slice_factor, proportional_to_tensor
from .shapes import bias_axis
from .terms import equals_other, error_structure, skip_path

HYPOTHESES: list[Hypothesis] = [
    all_zero, constant_factor, bias_axis, skip_path, softmax_backward, localize.triangle, activation_derivative,
    active_only, proportional_to_tensor, equals_other, per_slice_factor, error_structure,
    localize.target_entries, localize.mask_missing, localize.misrouted, localize.flipped, localize.shifted,
    localize.repeated_ids, windows.overlapping_windows, localize.block, windows.border,
    windows.stride_lattice, neighbour, transformed_layer, repaired_by_cache, windows.overlapping_windows_with_parameters,
    windows.stride_lattice_with_parameters, localize.subset,
]


def diagnose(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The first hypothesis that explains a failing gradient, or None. Shape-mismatched gradients
    are only tried by the hypotheses that can say something about them (a bias not summed)."""
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(n))) or not fails(a, n, ctx):
        return None
    for hypothesis in HYPOTHESES:
        if a.shape != n.shape and hypothesis is not bias_axis:
            continue
        found = hypothesis(a, n, ctx)
        if found:
            return found
    return None
