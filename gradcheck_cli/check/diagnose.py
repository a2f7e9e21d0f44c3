"""Diagnosis of a failing gradient: which common backprop bug explains the numbers, if any.

Each hypothesis is a small function of (analytic, numeric, context) that returns a message only
when the gradient fails and the hypothesis, applied to the numeric gradient (and what the context
knows: the upstream gradient, the layer's input and output, neighbouring gradients), reproduces
the analytic one to within ``EXPLAIN_FACTOR`` times the pass threshold. So no hypothesis is ever
reported for a correct gradient, or for one it does not explain.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .tolerance import rel_error

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
    #: extra finite differences, see wrong_cache_candidates)
    neighbours: Mapping[str, Any] | Callable[[], Mapping[str, Any]] = field(default_factory=dict)

    @property
    def explain_rtol(self) -> float:
        return self.pass_rtol * EXPLAIN_FACTOR


Hypothesis = Callable[[np.ndarray, np.ndarray, Context], "str | None"]


def _fails(a: np.ndarray, n: np.ndarray, ctx: Context) -> bool:
    return a.shape != n.shape or rel_error(a, n) > ctx.pass_rtol


def _arr(value: Any) -> np.ndarray | None:
    return None if value is None else np.asarray(value, dtype=np.float64)


def _matching(a: np.ndarray, n: np.ndarray, ctx: Context) -> np.ndarray:
    """Per entry: does a equal n to within the explain threshold (relative to the tensor's scale)?"""
    scale = max(float(np.abs(n).max(initial=0.0)), float(np.abs(a).max(initial=0.0)), 1e-300)
    return np.abs(a - n) <= ctx.explain_rtol * scale


def _d(ctx: Context) -> str:
    return f"d{ctx.tensor}"


# -- hypotheses ------------------------------------------------------------------------------------

def all_zero(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The analytic gradient is zero while the numeric one is not: never written, or a term forgotten."""
    if a.shape == n.shape and not np.any(a) and np.any(n):
        return f"{_d(ctx)} is all zeros but the numeric gradient is not: never computed or not returned?"
    return None


def constant_factor(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """analytic = c · numeric for a recognizable c (sign, 2, 1/2, m, 1/m)."""
    if a.shape != n.shape or not _fails(a, n, ctx) or not np.any(n):
        return None
    m = ctx.batch
    named = [(-1.0, "sign flipped (analytic = −numeric)"), (2.0, "extra factor 2"),
             (0.5, "missing factor 2 (analytic = numeric/2)")]
    if m > 1:
        named += [(float(m), f"missing 1/m (analytic = m·numeric, m = {m})"),
                  (1.0 / m, f"extra 1/m (analytic = numeric/m, m = {m})"),
                  (-float(m), f"sign flipped and missing 1/m (analytic = −m·numeric, m = {m})"),
                  (-1.0 / m, f"sign flipped and extra 1/m (analytic = −numeric/m, m = {m})")]
    for c, text in named:
        if rel_error(a, c * n) <= ctx.explain_rtol:
            return text
    return None


def _axis_names(layout: str, ndim: int) -> dict[int, str]:
    """What the axes of an upstream gradient are, in words (batch axis first in rows, last in columns)."""
    if layout == "columns":
        return {ndim - 1: "the examples (columns)", **{k: f"feature axis {k}" for k in range(ndim - 1)}} \
            if ndim > 1 else {0: "the examples"}
    return {0: "the examples (rows, axis 0)", **{k: f"feature axis {k}" for k in range(1, ndim)}}


def bias_axis(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """A bias gradient summed over the wrong axes of the upstream gradient, or not summed at all."""
    g = _arr(ctx.cotangent)
    if g is None or ctx.tensor == "x" or not _fails(a, n, ctx) or g.ndim < 2:
        return None
    batch_axis = g.ndim - 1 if ctx.layout == "columns" else 0
    names = _axis_names(ctx.layout, g.ndim)
    # Only a tensor that *is* a bias-like reduction of dZ is in scope: the numeric gradient must be
    # Σ over the batch axis (possibly with kept dims), or this hypothesis has nothing to say.
    right = g.sum(axis=batch_axis)
    if right.size != n.size or rel_error(right.reshape(n.shape), n) > ctx.explain_rtol:
        return None
    if a.shape != n.shape and a.shape == g.shape and rel_error(a, g) <= ctx.explain_rtol:
        return (f"{_d(ctx)} is dZ itself, shape {a.shape}: not summed over {names[batch_axis]} "
                f"(it should be Σ over axis {batch_axis}, shape {n.shape})")
    candidates = []
    for r in range(1, g.ndim + 1):
        for axes in itertools.combinations(range(g.ndim), r):
            if axes != (batch_axis,):
                candidates.append(axes)
    for axes in candidates:
        for keep in (False, True):
            s = g.sum(axis=axes, keepdims=keep)
            if s.shape != a.shape and not (s.size == a.size and a.shape == n.shape):
                continue
            if rel_error(s.reshape(a.shape), a) <= ctx.explain_rtol:
                over = " and ".join(names[k] for k in axes)
                return (f"bias gradient summed over the wrong axis: {_d(ctx)} = Σ over {over} "
                        f"(axis={axes[0] if len(axes) == 1 else axes}) of dZ; it should be summed "
                        f"over {names[batch_axis]} only (axis={batch_axis})")
    return None


def _derivative_candidates(z: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """Factors h for a wrong dZ = dA ⊙ h, each with what writing it means."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        sig_y = 1.0 / (1.0 + np.exp(-y))
        return [
            (np.ones_like(z), "dZ = dA: the activation's derivative g'(Z) is missing"),
            (y, "dZ = dA ⊙ A: the activation g(Z) where its derivative g'(Z) belongs "
                "(e.g. sigmoid' written as σ instead of σ(1 − σ))"),
            (z, "dZ = dA ⊙ Z: multiplied by Z where g'(Z) belongs"),
            (y * (1 - y), "dZ = dA ⊙ A(1 − A): the sigmoid's derivative, which is not this activation's"),
            (1 - y, "dZ = dA ⊙ (1 − A): σ' = A(1 − A) without its factor A, or tanh' written "
                    "as 1 − A instead of 1 − A²"),
            (1 - y * y, "dZ = dA ⊙ (1 − A²): the tanh's derivative, which is not this activation's"),
            (sig_y * (1 - sig_y), "dZ = dA ⊙ σ'(A): the derivative applied to A instead of Z"),
            (1 - np.tanh(y) ** 2, "dZ = dA ⊙ tanh'(A): the derivative applied to A instead of Z"),
        ]


def activation_derivative(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """An elementwise layer's dZ computed with a recognizably wrong derivative factor."""
    g, z, y = _arr(ctx.cotangent), _arr(ctx.layer_input), _arr(ctx.layer_output)
    if g is None or z is None or y is None or ctx.tensor != "x" or not _fails(a, n, ctx):
        return None
    if not (a.shape == n.shape == g.shape == z.shape == y.shape):
        return None
    for h, text in _derivative_candidates(z, y):
        guess = g * h
        if np.all(np.isfinite(guess)) and rel_error(guess, a) <= ctx.explain_rtol:
            return f"wrong activation derivative: {text}"
    return None


def active_only(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """Right exactly where the unit is active (Z > 0) and wrong elsewhere: the derivative's inactive
    branch is wrong (relu' not applied, leaky slope forgotten, mask taken from the wrong tensor)."""
    z = _arr(ctx.layer_input)
    if z is None or ctx.tensor != "x" or a.shape != n.shape or z.shape != a.shape or not _fails(a, n, ctx):
        return None
    ok = _matching(a, n, ctx)
    active = z > 0
    if not active.any() or active.all():
        return None
    if np.array_equal(ok, active):
        inactive = int((~active).sum())
        where = (f"right only where the activation is active (Z > 0): wrong at the {inactive} "
                 f"entr{'y' if inactive == 1 else 'ies'} where Z ≤ 0")
        g = _arr(ctx.cotangent)
        g_in = g[~active] if g is not None and g.shape == a.shape else None
        return f"{where}, {_inactive_branch(a[~active], n[~active], g_in, ctx)}"
    return None


def _inactive_branch(a: np.ndarray, n: np.ndarray, g: np.ndarray | None, ctx: Context) -> str:
    """What the wrong entries of the inactive branch look like, when that is recognizable."""
    if rel_error(a, -n) <= ctx.explain_rtol:
        return "where analytic = −numeric: the inactive branch's derivative has its sign flipped"
    if not np.any(a):
        return "where the analytic gradient is 0: the inactive branch's derivative (a leaky slope?) is missing"
    if g is not None and rel_error(a, g) <= ctx.explain_rtol:
        return "where dZ = dA: the derivative is not applied there (relu' missing?)"
    return "so the derivative's inactive branch is wrong (mask taken from the wrong tensor? wrong slope?)"


def _slice_name(axis: int, k: int, ndim: int) -> str:
    index = ", ".join(str(k) if i == axis else ":" for i in range(ndim))
    word = {(2, 0): "row", (2, 1): "column"}.get((ndim, axis))
    return f"{word} {k} ([{index}])" if word else f"the slice [{index}] (index {k} along axis {axis})"


def subset(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """Correct except one row, column or channel (named), or a handful of entries (listed)."""
    if a.shape != n.shape or a.size < 2 or not _fails(a, n, ctx):
        return None
    bad = ~_matching(a, n, ctx)
    count = int(bad.sum())
    if count == 0 or count == bad.size:
        return None
    where = np.argwhere(bad)
    zeros = " (all zeros there)" if not np.any(a[bad]) else ""
    for axis in range(a.ndim):
        ks = np.unique(where[:, axis])
        if len(ks) == 1 and a.ndim > 1 and a.shape[axis] > 1:
            k = int(ks[0])
            return (f"correct except {_slice_name(axis, k, a.ndim)}{zeros}: {count} of {a.size} "
                    f"entries wrong, all in that slice")
    if count <= max(3, a.size // 10):
        listed = ", ".join(str(tuple(int(i) for i in w)) for w in where[:5])
        return (f"correct except {count} of {a.size} entr{'y' if count == 1 else 'ies'}: {listed}"
                f"{zeros}")
    return None


def neighbour(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The analytic gradient is one that belongs elsewhere: a neighbouring layer's, or this one's
    computed from the wrong cache."""
    if not _fails(a, n, ctx):
        return None
    found = ctx.neighbours() if callable(ctx.neighbours) else ctx.neighbours
    for name, candidate in found.items():
        c = _arr(candidate)
        if c is not None and c.shape == a.shape and np.any(c) and rel_error(a, c) <= ctx.explain_rtol:
            return f"{_d(ctx)} equals {name}: a neighbouring layer's gradient, or the wrong cache?"
    return None


HYPOTHESES: list[Hypothesis] = [
    all_zero, constant_factor, bias_axis, activation_derivative, active_only, neighbour, subset,
]


def diagnose(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The first hypothesis that explains a failing gradient, or None. Shape-mismatched gradients
    are only tried by the hypotheses that can say something about them (a bias not summed)."""
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(n))) or not _fails(a, n, ctx):
        return None
    for hypothesis in HYPOTHESES:
        if a.shape != n.shape and hypothesis is not bias_axis:
            continue
        found = hypothesis(a, n, ctx)
        if found:
            return found
    return None


def wrong_cache_candidates(forward: Callable[[np.ndarray, dict[str, np.ndarray]], np.ndarray],
                           params: dict[str, np.ndarray], tensor: str, cotangent: np.ndarray,
                           inputs: Mapping[str, np.ndarray], eps: float = 1e-6) -> dict[str, np.ndarray]:
    """The gradient of ⟨forward(x', params), G⟩ with respect to ``tensor`` at other inputs x'
    (another layer's input or output of the same shape): what a backward that used the wrong
    cache returns. ``forward(x, params) -> out``; central differences in float64, inputs untouched."""
    g = np.asarray(cotangent, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    base = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    for name, x_alt in inputs.items():
        x_alt = np.asarray(x_alt, dtype=np.float64)
        theta = x_alt if tensor == "x" else base[tensor]
        grad = np.zeros_like(theta)
        flat = grad.reshape(-1)
        for j in range(theta.size):
            h = eps * max(1.0, abs(float(theta.flat[j])))
            vals = []
            for sign in (1.0, -1.0):
                t = theta.copy()
                t.flat[j] += sign * h
                if tensor == "x":
                    y = forward(t, base)
                else:
                    y = forward(x_alt, {**base, tensor: t})
                vals.append(float((np.asarray(y, dtype=np.float64) * g).sum()))
            flat[j] = (vals[0] - vals[1]) / (2 * h)
        out[f"d{tensor} with {name} as the cache"] = grad
    return out
