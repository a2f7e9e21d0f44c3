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

from . import localize
from .quantities import Quantity, matching
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
    #: gradients of the layer with a parameter transformed (a kernel flipped), by description;
    #: or a function returning them, called only when everything else explains nothing
    transformed: Mapping[str, Any] | Callable[[], Mapping[str, Any]] = field(default_factory=dict)

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


def _fit(a: np.ndarray, n: np.ndarray) -> float:
    """Least-squares c in a ≈ c·n."""
    return float((a * n).sum() / (n * n).sum())


def constant_factor(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """analytic = c · numeric for a constant c (fitted by least squares, the residual within the
    explain threshold), said together with every quantity of the config it equals, or none."""
    if a.shape != n.shape or not _fails(a, n, ctx) or not np.any(n) or not np.any(a):
        return None
    c = _fit(a, n)
    if not np.isfinite(c) or c == 0.0 or rel_error(a, c * n) > ctx.explain_rtol:
        return None
    m = ctx.batch
    # the plain cases keep their familiar wording when nothing else coincides with them
    names = matching(c, list(ctx.quantities)) if ctx.quantities else _legacy_names(c, m)
    sign = c < 0
    simple = [q for q in names if q not in ("2", "1/2")]
    if _close(c, -1.0):
        return "sign flipped (analytic = −numeric)"
    if names == ["2"] and not sign:
        return "extra factor 2"
    if names == ["1/2"] and not sign:
        return "missing factor 2 (analytic = numeric/2)"
    if len(simple) == 1 and len(names) == 1 and simple[0].startswith("m (") and m > 1:
        return (f"{'sign flipped and ' if sign else ''}missing 1/m (analytic = {'−' if sign else ''}m·numeric, m = {m})")
    if len(simple) == 1 and len(names) == 1 and simple[0].startswith("1/m (") and m > 1:
        return (f"{'sign flipped and ' if sign else ''}extra 1/m (analytic = {'−' if sign else ''}numeric/m, m = {m})")
    head = f"{'sign flipped and ' if sign else ''}a constant factor: analytic = {c:.4g}·numeric"
    names = [{"2": "a plain factor 2", "1/2": "a plain factor 1/2"}.get(q, q) for q in names]
    if not names:
        return f"{head}, and {abs(c):.4g} is none of the config's quantities"
    return f"{head}, and {abs(c):.4g} = " + " = ".join(names) + (
        "" if len(names) == 1 else " (all of these are equal here: one of them is missing or extra)")


def _legacy_names(c: float, m: int) -> list[str]:
    qs = [Quantity(2.0, "2", "2")]
    if m > 1:
        qs.append(Quantity(float(m), f"m (m = {m}, the batch size)", "m"))
    return matching(c, qs)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-4 * max(abs(a), abs(b))


def skip_path(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """dx off by exactly the upstream gradient (a skip path forgotten or counted twice), or dx
    equal to it in a layer with parameters (only the skip path, the branch forgotten)."""
    g = _arr(ctx.cotangent)
    if ctx.tensor != "x" or g is None or g.shape != a.shape or not _fails(a, n, ctx):
        return None
    if rel_error(a + g, n) <= ctx.explain_rtol:
        return ("analytic + dout = numeric: the skip (identity) path's dout is missing from dx "
                "(a residual's dx = dout + the branch's dx)")
    if rel_error(a - g, n) <= ctx.explain_rtol:
        return "analytic − dout = numeric: dout is added once too often (the skip path counted twice?)"
    if ctx.params and rel_error(a, g) <= ctx.explain_rtol:
        return ("dx = dout itself: only the skip (identity) path; the gradient through the layer's "
                "branch is missing")
    return None


def proportional_to_tensor(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """analytic = numeric + c·θ: a weight-decay term in the backward that the forward does not have."""
    theta = _arr(ctx.theta)
    if theta is None or theta.shape != a.shape or ctx.tensor == "x" or not np.any(theta):
        return None
    e = a - n
    c = float((e * theta).sum() / (theta * theta).sum())
    if c == 0.0 or rel_error(a, n + c * theta) > ctx.explain_rtol:
        return None
    names = matching(c, list(ctx.quantities))
    said = f", and {abs(c):.4g} = " + " = ".join(names) if names else ""
    op = "+" if c > 0 else "−"
    return (f"analytic = numeric {op} {abs(c):.4g}·{ctx.tensor}{said}: an L2 (weight-decay) term in the "
            f"backward that the forward does not have; the config's l2 is added by gradcheck, "
            f"the layer returns the data term only")


def equals_other(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The gradient returned is the layer's gradient of another tensor of the same shape."""
    for name, other in ctx.others.items():
        o = _arr(other)
        if o is None or o.shape != a.shape or not np.any(o) or name == ctx.tensor:
            continue
        if rel_error(a, o) <= ctx.explain_rtol:
            return (f"{_d(ctx)} equals d{name}, this layer's gradient of {name}: copied from the wrong "
                    f"tensor, or the factor that tells them apart is missing (x̂ for a norm's γ?)")
    return None


def per_slice_factor(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """analytic = numeric ⊙ v, with v one of the layer's parameters (or its inverse) broadcast
    along the last axis: a factor such as γ missing or extra."""
    if a.shape != n.shape or a.ndim < 2 or not _fails(a, n, ctx):
        return None
    for name, value in ctx.params.items():
        v = _arr(value)
        if v is None or v.ndim != 1 or v.shape[0] != a.shape[-1] or not np.all(v != 0):
            continue
        if np.allclose(v, v[0]):
            continue
        if rel_error(a, n / v) <= ctx.explain_rtol:
            return (f"analytic = numeric / {name} (per entry of the last axis): the factor {name} is "
                    f"missing in backward")
        if rel_error(a, n * v) <= ctx.explain_rtol:
            return f"analytic = numeric · {name} (per entry of the last axis): an extra factor {name}"
    return None


def _standardized(x: np.ndarray, axis: int) -> np.ndarray:
    mu = x.mean(axis=axis, keepdims=True)
    sd = x.std(axis=axis, keepdims=True)
    return (x - mu) / np.where(sd > 0, sd, 1.0)


def error_structure(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The error a − n constant along an axis (a term through a mean missing), or proportional to
    the input standardized along that axis (a term through a variance missing): the two terms of
    a normalization's backward."""
    x = _arr(ctx.layer_input)
    if ctx.tensor != "x" or x is None or x.shape != a.shape or a.ndim < 2 or not _fails(a, n, ctx):
        return None
    e = a - n
    tol = ctx.explain_rtol * max(float(np.abs(a).max()), float(np.abs(n).max()))
    axes = list(ctx.axes) if len(ctx.axes) == a.ndim else [("axis", str(k), a.shape[k]) for k in range(a.ndim)]
    order = [0, a.ndim - 1] + list(range(1, a.ndim - 1))
    for k in order:
        if a.shape[k] < 3:
            continue
        where = _axis_words(axes[k], k)
        spread = np.abs(e - e.mean(axis=k, keepdims=True)).max()
        if spread <= tol and np.abs(e).max() > tol:
            return (f"the error (analytic − numeric) is the same along {where}: a term through the "
                    f"mean over that axis (−Σ dx̂/n) is missing or wrong")
        z = _standardized(x, k)
        w = (e * z).sum(axis=k, keepdims=True) / np.maximum((z * z).sum(axis=k, keepdims=True), 1e-300)
        if np.abs(e - z * w).max() <= tol and np.abs(e).max() > tol:
            return (f"the error (analytic − numeric) is proportional to x̂, the input standardized "
                    f"along {where}: the term through the variance (−x̂·Σ dx̂·x̂/n) is missing or wrong")
    return None


def _axis_words(axis: tuple, k: int) -> str:
    word, symbol, length = axis
    if word == "batch":
        return f"the batch axis (axis {k}): the same for every example"
    return f"the {word} axis ({symbol} = {length}, axis {k})"


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
            (1 - z * z, "dZ = dA ⊙ (1 − Z²): tanh′ written as 1 − Z² (the pre-activation) instead of 1 − A²"),
            (z * (1 - z), "dZ = dA ⊙ Z(1 − Z): σ′ written as Z(1 − Z) (the pre-activation) instead of A(1 − A)"),
        ]


def _softmax_like(y: np.ndarray, axis: int) -> bool:
    return bool(np.all(y > 0) and np.allclose(y.sum(axis=axis), 1.0, rtol=1e-6, atol=1e-9))


def softmax_backward(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """A softmax layer's dx with its Jacobian cut to the diagonal, or the Σ over the wrong axis."""
    g, y = _arr(ctx.cotangent), _arr(ctx.layer_output)
    if g is None or y is None or ctx.tensor != "x" or ctx.params or not _fails(a, n, ctx):
        return None
    if not (a.shape == g.shape == y.shape) or y.ndim < 2:
        return None
    axis = y.ndim - 1 if ctx.layout != "columns" else y.ndim - 2
    if not _softmax_like(y, axis):
        return None
    if rel_error(g * y * (1 - y), a) <= ctx.explain_rtol:
        return ("dx = dout ⊙ p(1 − p): only the diagonal of the softmax Jacobian; the −p_i·p_j terms "
                "are missing (dx = p ⊙ (dout − Σ_j dout_j·p_j))")
    for k in range(y.ndim):
        if k != axis and rel_error(y * (g - (g * y).sum(axis=k, keepdims=True)), a) <= ctx.explain_rtol:
            return (f"softmax backward with its Σ over axis {k} (dx = p ⊙ (dout − Σ dout·p)) taken over "
                    f"axis {k} instead of axis {axis} (the axis the softmax normalizes)")
    return None


def activation_derivative(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """An elementwise layer's dZ computed with a recognizably wrong derivative factor."""
    g, z, y = _arr(ctx.cotangent), _arr(ctx.layer_input), _arr(ctx.layer_output)
    if g is None or z is None or y is None or ctx.tensor != "x" or ctx.params or not _fails(a, n, ctx):
        return None
    if not (a.shape == n.shape == g.shape == z.shape == y.shape):
        return None
    # the sigmoid's derivative is not a softmax's: a softmax output gets softmax_backward's words
    softmax = _softmax_like(y, y.ndim - 1 if ctx.layout != "columns" else y.ndim - 2) and y.ndim >= 2
    for h, text in _derivative_candidates(z, y):
        if softmax and "sigmoid" in text:
            continue
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


def transformed_parameter(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The analytic gradient is the one the layer would have with a parameter transformed
    (a kernel flipped): the backward uses the parameter in another form than the forward."""
    if not _fails(a, n, ctx):
        return None
    found = ctx.transformed() if callable(ctx.transformed) else ctx.transformed
    for name, candidate in found.items():
        c = _arr(candidate)
        if c is not None and c.shape == a.shape and np.any(c) and rel_error(a, c) <= ctx.explain_rtol:
            return (f"{_d(ctx)} is the gradient of the layer with {name}: the backward uses the kernel "
                    f"flipped (a convolution where the forward is a cross-correlation)")
    return None


HYPOTHESES: list[Hypothesis] = [
    all_zero, constant_factor, bias_axis, skip_path, softmax_backward, localize.triangle, activation_derivative,
    active_only, proportional_to_tensor, equals_other, per_slice_factor, error_structure,
    *localize.HYPOTHESES, neighbour, transformed_parameter, subset,
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


def _vjp_by_differences(forward: Callable[[np.ndarray, dict[str, np.ndarray]], np.ndarray],
                        x: np.ndarray, params: dict[str, np.ndarray], tensor: str, g: np.ndarray,
                        eps: float) -> np.ndarray:
    """Central differences of ⟨forward(x, params), g⟩ with respect to ``tensor`` (``x`` or a
    parameter), entry by entry in float64: the gradient a candidate backward would return."""
    theta = x if tensor == "x" else params[tensor]
    grad = np.zeros_like(theta)
    flat = grad.reshape(-1)
    for j in range(theta.size):
        h = eps * max(1.0, abs(float(theta.flat[j])))
        vals = []
        for sign in (1.0, -1.0):
            t = theta.copy()
            t.flat[j] += sign * h
            y = forward(t, params) if tensor == "x" else forward(x, {**params, tensor: t})
            vals.append(float((np.asarray(y, dtype=np.float64) * g).sum()))
        flat[j] = (vals[0] - vals[1]) / (2 * h)
    return grad


def wrong_cache_candidates(forward: Callable[[np.ndarray, dict[str, np.ndarray]], np.ndarray],
                           params: dict[str, np.ndarray], tensor: str, cotangent: np.ndarray,
                           inputs: Mapping[str, np.ndarray], eps: float = 1e-6) -> dict[str, np.ndarray]:
    """The gradient of ⟨forward(x', params), G⟩ with respect to ``tensor`` at other inputs x'
    (another layer's input or output of the same shape): what a backward that used the wrong
    cache returns. ``forward(x, params) -> out``; central differences in float64, inputs untouched."""
    g = np.asarray(cotangent, dtype=np.float64)
    base = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    return {f"d{tensor} with {name} as the cache":
            _vjp_by_differences(forward, np.asarray(x_alt, dtype=np.float64), base, tensor, g, eps)
            for name, x_alt in inputs.items()}


def transformed_candidates(forward: Callable[[np.ndarray, dict[str, np.ndarray]], np.ndarray],
                           params: dict[str, np.ndarray], tensor: str, cotangent: np.ndarray,
                           x: np.ndarray, eps: float = 1e-6) -> dict[str, np.ndarray]:
    """The gradient of ⟨forward(x, params'), G⟩ with respect to ``tensor`` where params' has a
    4-D kernel flipped in its last two axes: what a backward that flips the kernel returns."""
    g = np.asarray(cotangent, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    base = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    out: dict[str, np.ndarray] = {}
    for name, value in base.items():
        if value.ndim != 4 or value.shape[-1] < 2 or value.shape[-2] < 2:
            continue
        alt = {**base, name: value[..., ::-1, ::-1].copy()}
        out[f"{name} flipped in its last two axes"] = _vjp_by_differences(forward, x, alt, tensor, g, eps)
    return out


# -- shapes ----------------------------------------------------------------------------------------

def _fmt(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _phrase(axes: list[tuple[str, str, int]]) -> str:
    """'the time axis (T = 4)', 'the height and width axes (H = 5, W = 5)'."""
    if len(axes) == 1:
        word, symbol, length = axes[0]
        return f"the {word} axis ({'m' if word == 'batch' else symbol} = {length})"
    words = [w for w, _, _ in axes]
    values = ", ".join(f"{'m' if w == 'batch' else s} = {n}" for w, s, n in axes)
    return f"the {', '.join(words[:-1])} and {words[-1]} axes ({values})"


def _embed(small: tuple[int, ...], big: tuple[int, ...]) -> list[int] | None:
    """Axes of ``big`` that ``small``'s axes are, aligned from the right (shapes broadcast so)."""
    out: list[int] = []
    j = len(big) - 1
    for d in reversed(small):
        while j >= 0 and big[j] != d:
            j -= 1
        if j < 0:
            return None
        out.append(j)
        j -= 1
    return out[::-1]


def shape_hypothesis(a: np.ndarray, shape: tuple[int, ...], n: np.ndarray | None, ctx: Context,
                     explain_rtol: float) -> str | None:
    """Why an analytic gradient has the wrong shape, when its shape (and the numeric gradient)
    say it: the padding of a padded gradient not cropped, a sum left out over named axes, or the
    sum taken over the wrong axis."""
    t = ctx.tensor
    shape = tuple(shape)
    # padded: every axis longer by the same even amount 2p, or equal
    if a.ndim == len(shape) and a.shape != shape:
        diffs = [x - y for x, y in zip(a.shape, shape)]
        grown = [k for k, d in enumerate(diffs) if d != 0]
        if all(d >= 0 for d in diffs) and len({diffs[k] for k in grown}) == 1 and diffs[grown[0]] % 2 == 0:
            p = diffs[grown[0]] // 2
            crop = a[tuple(slice(p, p + shape[k]) if k in grown else slice(None) for k in range(a.ndim))]
            on = " and ".join(str(k) for k in grown)
            head = (f"padding not cropped: d{t} has shape {_fmt(a.shape)}, which is {t} {_fmt(shape)} "
                    f"padded by {p} on ax{'es' if len(grown) > 1 else 'is'} {on}")
            if n is not None:
                r = rel_error(crop, n)
                if r <= explain_rtol:
                    return f"{head}; cropped to [{p}:−{p}] it matches (rel err {r:.1e})"
                return f"{head}? (cropped, it does not match either: rel err {r:.1e})"
            return f"{head}?"
    out_axes = list(ctx.out_axes)
    cot = tuple(n for _, _, n in out_axes)
    if not out_axes:
        return None
    # not summed: the analytic gradient keeps axes of the upstream gradient that must be summed
    if a.ndim > len(shape):
        where_a = _embed(a.shape, cot)
        where_p = _embed(shape, a.shape)
        if where_a is not None and where_p is not None:
            kept = [k for k in range(a.ndim) if k not in where_p]
            names = [out_axes[where_a[k]] for k in kept]
            summed = a.sum(axis=tuple(kept))
            said = f"not summed over {_phrase(names)}"
            if n is not None and summed.shape == n.shape:
                r = rel_error(summed, n)
                if r <= explain_rtol:
                    return f"d{t} has shape {_fmt(a.shape)}, but {t} is {_fmt(shape)}: {said} (summed, it matches: rel err {r:.1e})"
                return None
            return f"d{t} has shape {_fmt(a.shape)}, but {t} is {_fmt(shape)}: {said}?"
    # summed over the wrong axis: one entry per index of another axis than the parameter's
    if a.ndim == len(shape) == 1 and a.shape != shape:
        own = [ax for ax in out_axes if ax[2] == shape[0]]
        wrong = [ax for ax in out_axes if ax[2] == a.shape[0]]
        if len(own) == 1 and len(wrong) == 1 and own[0] != wrong[0]:
            return (f"d{t} has shape {_fmt(a.shape)}, but {t} is {_fmt(shape)}: summed over "
                    f"{_phrase(own)} instead of {_phrase(wrong)} (it has one entry per "
                    f"{'example' if wrong[0][0] == 'batch' else wrong[0][0] + ' index'})")
    return None
