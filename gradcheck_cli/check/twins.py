"""The user's layer that computes what a built-in layer computes, found on the real arrays.

A plugin is differenced through its twin, the built-in layer holding the same arrays, where its
forward gives the twin's output to rounding at its real input, at a perturbed input (and each
parameter perturbed), at a random input of the same shape, and for one example alone:

- a dense layer: parameters W (n_in, units) and b (units,), out = x·W + b (rows layout). The
  dense layer's exact shortcuts then serve it (shortcuts.py: a probe of W, b or x in O(m), where
  a black box needs a whole copy of W or of the batch per probe);
- a pooling layer without parameters: x (m, C, H, W) to (m, C, H/k, W/k), the maximum or the
  mean of each k×k window. Its windows are then known by construction (grouping.py), where a
  black box's are measured slice by slice (footprint.py).

Only the forward is the twin's: the backward checked is the user's, and so is everything the
check verifies of it (in-place writes, state kept on self, determinism). A forward that differs
from its twin's at any point tried (a forgotten bias, a wrong reshape, a window off by one)
keeps its own. Off with the shortcuts (--no-shortcuts), for the complex step, where the twin is
analytic and the user's forward need not be, and in columns layout.

Pure: the user's layer and its arrays are not modified (every call gets its own copy).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..layers.dense import Dense
from ..layers.pool import AvgPool2D, MaxPool2D
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
    return twin if _agrees(layer, twin, x, rng) else None


def pool_twin(layer: Any, x: np.ndarray, out: np.ndarray, rng: np.random.Generator
              ) -> MaxPool2D | AvgPool2D | None:
    """The built-in max- or mean-pool of k×k windows, stride k, where ``layer`` (no parameters)
    computes what it computes at its float64 input ``x`` (m, C, H, W), whose output is ``out``;
    None otherwise."""
    if is_builtin(type(layer)) or getattr(layer, "params", None) != {} or x.ndim != 4:
        return None
    if out.ndim != 4 or out.shape[:2] != x.shape[:2] or min(out.shape[2:]) < 1:
        return None
    k = x.shape[2] // out.shape[2]
    if k < 2 or x.shape[3] // out.shape[3] != k or (x.shape[2] // k, x.shape[3] // k) != out.shape[2:]:
        return None
    for cls in (MaxPool2D, AvgPool2D):
        twin = cls(kernel=k)
        twin.layout = "rows"
        twin.build(x.shape[1:], rng)
        if _agrees(layer, twin, x, rng):
            return twin
    return None


def _agrees(layer: Any, twin: Any, x: np.ndarray, rng: np.random.Generator) -> bool:
    """Whether ``layer``'s forward gives ``twin``'s output to TWIN_RTOL of its scale at x, at a
    perturbed x, at x with each parameter perturbed, at a random input and at x's first example."""
    def near(a: np.ndarray) -> np.ndarray:
        return a + 0.1 * max(1.0, float(np.abs(a).max(initial=0.0))) * rng.standard_normal(a.shape)

    points = [(x, {}), (near(x), {}), (rng.standard_normal(x.shape), {}), (x[:1], {})]
    points += [(x, {name: near(np.asarray(value))}) for name, value in twin.params.items()]
    for xs, changed in points:
        try:
            with np.errstate(all="ignore"):
                got = np.asarray(with_params(layer, changed).forward(xs.copy())[0])
        except (Exception, SystemExit):
            return False
        want = with_params(twin, changed).forward(xs)[0]
        scale = max(float(np.abs(want).max(initial=0.0)), 1e-300)
        if got.shape != want.shape or not np.all(np.abs(got - want) <= TWIN_RTOL * scale):
            return False
    return True


def with_twins(ref: Reference, net: Network) -> Reference:
    """``ref`` with each user layer that has a twin replaced by it, and the clean forward
    and the loss run again from the first one replaced (the twin's output agrees with the
    user's to rounding, and every difference starts from the clean point of what it runs).
    Rows layout only: the twin's shortcuts take the first axis for the examples."""
    if net.spec.layout != "rows":
        return ref
    rng = rng_for(net.spec.seed, STREAM_PROBES, 998)
    layers, first = list(ref.layers), None
    for k, layer in enumerate(ref.layers):
        x, out = ref.acts[k], ref.acts[k + 1]
        twin = dense_twin(layer, x, rng) or pool_twin(layer, x, out, rng)
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
