"""The user's layer that computes what a built-in layer computes, found on the real arrays.

A plugin whose parameters are W (n_in, units) and b (units,) and whose forward gives x·W + b
(rows layout) to rounding, on the real input, on a perturbed input, weights and bias, and on one
example alone, is differenced through its twin: the built-in dense layer holding the same arrays.
The dense layer's exact shortcuts then serve it (shortcuts.py: a probe of W, b or x in O(m), where
a black box needs a whole copy of W or of the batch per probe). Only the forward is the twin's;
the backward checked is the user's, and so is everything the check verifies of it (in-place
writes, state kept on self, determinism). A forward that differs from x·W + b at any point tried
(a forgotten bias, a wrong reshape) keeps its own. Off with the shortcuts (--no-shortcuts), and for
the complex step, where the twin is analytic and the user's forward need not be.

Pure: the user's layer and its arrays are not modified (every call gets its own copy).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..layers.dense import Dense
from ..layers.registry import is_builtin
from .evaluators import with_params
from .forward import Reference
from .network import STREAM_PROBES, Network, rng_for

#: the twin's output must agree with the user's to this fraction of the output's scale
TWIN_RTOL = 1e-10


def dense_twin(layer: Any, x: np.ndarray, rng: np.random.Generator) -> Dense | None:
    """The built-in dense layer with ``layer``'s W and b where ``layer``'s forward computes what
    it computes (module docstring), at its float64 input ``x`` (m, n_in); None otherwise."""
    params = getattr(layer, "params", None)
    if is_builtin(type(layer)) or not isinstance(params, dict) or set(params) != {"W", "b"}:
        return None
    W, b = (np.asarray(params[k]) for k in ("W", "b"))
    if x.ndim != 2 or W.ndim != 2 or W.shape[0] != x.shape[1] or b.shape != (W.shape[1],) \
            or not all(np.issubdtype(a.dtype, np.floating) for a in (x, W, b)):
        return None
    twin = Dense(units=W.shape[1])
    twin.layout = "rows"
    twin.params = {"W": W, "b": b}

    def near(a: np.ndarray) -> np.ndarray:
        return a + 0.1 * max(1.0, float(np.abs(a).max(initial=0.0))) * rng.standard_normal(a.shape)

    points = [(x, {}), (near(x), {}), (x, {"W": near(W)}), (x, {"b": near(b)}), (x[:1], {})]
    for xs, changed in points:
        try:
            with np.errstate(all="ignore"):
                got = np.asarray(with_params(layer, changed).forward(xs.copy())[0])
        except (Exception, SystemExit):
            return None
        want = with_params(twin, changed).forward(xs)[0]
        scale = max(float(np.abs(want).max(initial=0.0)), 1e-300)
        if got.shape != want.shape or not np.all(np.abs(got - want) <= TWIN_RTOL * scale):
            return None
    return twin


def with_twins(ref: Reference, net: Network) -> Reference:
    """``ref`` with each user layer that has a dense twin replaced by it, and the clean forward
    and the loss run again from the first one replaced (the twin's output agrees with the
    user's to rounding, and every difference starts from the clean point of what it runs).
    Rows layout only: the twin's shortcuts take the first axis for the examples."""
    if net.spec.layout != "rows":
        return ref
    rng = rng_for(net.spec.seed, STREAM_PROBES, 998)
    layers, first = list(ref.layers), None
    for k, layer in enumerate(ref.layers):
        twin = dense_twin(layer, ref.acts[k], rng)
        if twin is not None:
            layers[k] = twin
            first = k if first is None else first
    if first is None:
        return ref
    acts = list(ref.acts[:first + 1])
    for layer in layers[first:]:
        acts.append(layer.forward(acts[-1].copy())[0])
    loss_value = float(np.real(net.loss.layer.forward(acts[-1], ref.targets)[0]))
    return dataclasses.replace(ref, layers=layers, acts=acts, loss_value=loss_value)
