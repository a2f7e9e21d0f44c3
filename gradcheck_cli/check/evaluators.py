"""Evaluators for the finite differences: f of many perturbed copies at once.

The checker perturbs one tensor of one layer (its input x, or a parameter), runs the layers
after it, and reduces each copy to a scalar (⟨out, G⟩ for the isolated check, the loss for the
network check). Layers before the perturbed one are never re-run: their outputs are cached.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np

from .differences import EvaluateEntries, EvaluateStack, stack_entries
from ..layers.registry import is_builtin

Tail = Callable[[np.ndarray], np.ndarray]


def with_params(layer: Any, params: dict[str, np.ndarray]) -> Any:
    """A shallow copy of a layer with some parameters replaced; the original is untouched."""
    new = copy.copy(layer)
    new.params = {**layer.params, **params}
    return new


def probe_capable(layers: list[Any]) -> bool:
    """Whether every layer accepts leading probe axes (so a whole stack runs in one call).
    An instance attribute overrides the class's claim (see ``verify_probe_axes``)."""
    return all(getattr(layer, "probe_axes", False) for layer in layers)


def verify_probe_axes(layer: Any, x: np.ndarray, rng: np.random.Generator) -> bool:
    """Whether a layer that claims probe axes computes a stack of two copies exactly as it
    computes each copy alone. A false claim would silently corrupt every finite difference."""
    other = x + 1e-3 * rng.standard_normal(x.shape)
    try:
        stacked = np.asarray(layer.forward(np.stack([x, other]))[0])
        alone = np.stack([np.asarray(layer.forward(x)[0]), np.asarray(layer.forward(other)[0])])
    except (Exception, SystemExit):
        return False
    if stacked.shape != alone.shape:
        return False
    scale = max(float(np.abs(alone).max(initial=0.0)), 1e-300)
    return bool(np.all(np.abs(stacked - alone) <= 1e-10 * scale))


def run(layers: list[Any], x: np.ndarray) -> np.ndarray:
    for layer in layers:
        x = layer.forward(x)[0]
    return x


def stack_evaluator(first: Any, tensor: str, x: np.ndarray, rest: list[Any], tail: Tail,
                    batched: bool) -> EvaluateStack:
    """f(stack): perturb ``tensor`` of ``first`` (its input when tensor is "x") to each copy of the
    stack, run ``rest``, reduce with ``tail``. One call for the stack when ``batched``, else a
    loop over copies (plugin layers that do not accept probe axes)."""

    # a plugin's forward gets its own copy of the clean input, which it might write into
    fresh = (lambda: x) if is_builtin(type(first)) else (lambda: x.copy())

    def one(value: np.ndarray) -> np.ndarray:
        out = first.forward(value)[0] if tensor == "x" else with_params(first, {tensor: value}).forward(fresh())[0]
        return tail(run(rest, out))

    def evaluate(stack: np.ndarray) -> np.ndarray:
        if batched:
            return np.asarray(one(stack)).reshape(stack.shape[0])
        return np.array([np.asarray(one(s)).reshape(()) for s in stack])

    return evaluate


def entries_from_stack(evaluate: EvaluateStack, theta: np.ndarray) -> EvaluateEntries:
    """Entry probes by materializing one perturbed copy of θ per probe."""
    return lambda idx, values: evaluate(stack_entries(theta, idx, values))
