"""What a diagnosis hypothesis is given (the Context), and the few tests every hypothesis shares:
does the gradient fail, which entries match, how a tensor's gradient is named."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ..tolerance import rel_error

#: a hypothesis explains the analytic gradient when it reproduces it to within this many pass thresholds
EXPLAIN_FACTOR = 10.0


@dataclass(frozen=True)
class Context:
    """What the hypotheses may know about the tensor. Arrays default to None (unknown): a
    hypothesis that needs one is then simply not tried."""

    tensor: str
    batch: int
    layout: str
    pass_rtol: float
    #: the upstream gradient the backward was given (dZ for a dense layer), of the layer output's shape
    cotangent: Any = None
    #: the layer's input and output in the checked forward pass (Z and A for an activation)
    layer_input: Any = None
    layer_output: Any = None
    #: other gradients the analytic one may have been taken from by mistake, by description,
    #: e.g. {"dW of layer 2": ..., "dW with layer 1's input as the cache": ...}; or a function
    #: returning them, called only when the earlier hypotheses explain nothing (they may cost
    #: extra finite differences, see candidates.wrong_cache_candidates)
    neighbours: Mapping[str, Any] | Callable[[], Mapping[str, Any]] = field(default_factory=dict)
    #: the config's quantities a constant factor may be (quantities.config_quantities)
    quantities: tuple = ()
    #: (word, symbol, length) of each axis of the layer input, batch included (quantities.tensor_axes)
    axes: tuple = ()
    #: the same for the layer output (the upstream gradient's axes)
    out_axes: tuple = ()
    #: the tensor's own value (x, or the parameter), and the layer's parameters
    theta: Any = None
    params: Mapping[str, Any] = field(default_factory=dict)
    #: this layer's analytic gradients of its other tensors, by tensor name
    others: Mapping[str, Any] = field(default_factory=dict)
    #: the layer's numeric options (quantities.layer_options)
    options: Mapping[str, float] = field(default_factory=dict)
    #: a loss's targets (class indices or arrays)
    targets: Any = None
    #: the layer input as given (integer token ids stay integer)
    layer_input_raw: Any = None
    #: gradients of the layer transformed (a kernel flipped, stride 1), by what to say when the
    #: analytic gradient is one of them; or a function returning them, called only when
    #: everything else explains nothing
    transformed: Mapping[str, Any] | Callable[[], Mapping[str, Any]] = field(default_factory=dict)
    #: gradients the layer's own backward returns with part of its cache changed (a matrix
    #: transposed), by what to say when one of them is the right gradient; lazy like the above
    repairs: Mapping[str, Any] | Callable[[], Mapping[str, Any]] = field(default_factory=dict)
    #: per entry (the tensor's shape), the largest error (analytic − numeric) the finite
    #: differences' noise explains: the verdict's own estimate (rounding, truncation, the
    #: analytic side's rounding) times its safety factor; None when unknown
    noise: Any = None

    @property
    def explain_rtol(self) -> float:
        return self.pass_rtol * EXPLAIN_FACTOR


Hypothesis = Callable[[np.ndarray, np.ndarray, Context], "str | None"]


def fails(a: np.ndarray, n: np.ndarray, ctx: Context) -> bool:
    """Whether the analytic gradient fails at all: no hypothesis speaks for one that passes."""
    return a.shape != n.shape or rel_error(a, n) > ctx.pass_rtol


def as_f64(value: Any) -> np.ndarray | None:
    return None if value is None else np.asarray(value, dtype=np.float64)


def scale_of(a: np.ndarray, n: np.ndarray) -> float:
    """The tensor's scale: what an entry's error is relative to."""
    return max(float(np.abs(n).max(initial=0.0)), float(np.abs(a).max(initial=0.0)), 1e-300)


def matching_entries(a: np.ndarray, n: np.ndarray, ctx: Context) -> np.ndarray:
    """Per entry: does a equal n to within the explain threshold (relative to the tensor's scale)?"""
    return np.abs(a - n) <= ctx.explain_rtol * scale_of(a, n)


def explained(a: np.ndarray, guess: np.ndarray, ctx: Context, gain: "float | np.ndarray" = 1.0) -> bool:
    """Whether ``guess`` reproduces ``a`` up to the noise: every entry within ``gain`` (a number,
    or per entry) times the check's per-entry noise where it is known (a fit is then claimed
    only where its residual is at noise level, in float32 as in float64), else within the
    explain threshold overall."""
    noise = as_f64(ctx.noise)
    if noise is None or noise.shape != a.shape:
        return rel_error(a, guess) <= ctx.explain_rtol
    return bool(np.all(np.abs(a - guess) <= gain * noise))


def near_zero(v: np.ndarray, scale: float, ctx: Context) -> np.ndarray:
    return np.abs(v) <= ctx.explain_rtol * scale


def grad_name(ctx: Context) -> str:
    return f"d{ctx.tensor}"


def resolved(found: Mapping[str, Any] | Callable[[], Mapping[str, Any]]) -> Mapping[str, Any]:
    """A lazy mapping of candidates, computed now."""
    return found() if callable(found) else found


def plural(k: int, word: str = "entr") -> str:
    """'1 entry', '3 entries'; '2 columns' for another word."""
    return f"{k} {word}{'y' if k == 1 else 'ies'}" if word == "entr" else f"{k} {word}{'' if k == 1 else 's'}"
