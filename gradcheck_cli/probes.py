"""Evaluators for the finite differences: f of many perturbed copies at once.

The checker perturbs one tensor of one layer (its input x, or a parameter), runs the layers
after it, and reduces each copy to a scalar (⟨out, G⟩ for the isolated check, the loss for the
network check). Layers before the perturbed one are never re-run: their outputs are cached.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np

from .numeric import EvaluateEntries, EvaluateStack, stack_entries

Tail = Callable[[np.ndarray], np.ndarray]


def with_params(layer: Any, params: dict[str, np.ndarray]) -> Any:
    """A shallow copy of a layer with some parameters replaced; the original is untouched."""
    new = copy.copy(layer)
    new.params = {**layer.params, **params}
    return new


def probe_capable(layers: list[Any]) -> bool:
    """Whether every layer accepts leading probe axes (so a whole stack runs in one call)."""
    return all(getattr(type(layer), "probe_axes", False) for layer in layers)


def run(layers: list[Any], x: np.ndarray) -> np.ndarray:
    for layer in layers:
        x = layer.forward(x)[0]
    return x


def stack_evaluator(first: Any, tensor: str, x: np.ndarray, rest: list[Any], tail: Tail,
                    batched: bool) -> EvaluateStack:
    """f(stack): perturb ``tensor`` of ``first`` (its input when tensor is "x") to each copy of the
    stack, run ``rest``, reduce with ``tail``. One call for the stack when ``batched``, else a
    loop over copies (plugin layers that do not accept probe axes)."""

    def one(value: np.ndarray) -> np.ndarray:
        out = first.forward(value)[0] if tensor == "x" else with_params(first, {tensor: value}).forward(x)[0]
        return tail(run(rest, out))

    def evaluate(stack: np.ndarray) -> np.ndarray:
        if batched:
            return np.asarray(one(stack)).reshape(stack.shape[0])
        return np.array([np.asarray(one(s)).reshape(()) for s in stack])

    return evaluate


def entries_from_stack(evaluate: EvaluateStack, theta: np.ndarray) -> EvaluateEntries:
    """Entry probes by materializing one perturbed copy of θ per probe."""
    return lambda idx, values: evaluate(stack_entries(theta, idx, values))
