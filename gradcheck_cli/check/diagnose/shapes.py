"""Hypotheses about shapes and sums: why an analytic gradient has the wrong shape (the padding
of a padded gradient not cropped, a sum left out over named axes, the sum taken over the wrong
axis), and a bias gradient summed over the wrong axes of the upstream gradient."""
from __future__ import annotations

import itertools

import numpy as np

from ..tolerance import rel_error
from .context import Context, as_f64, fails, grad_name


def _axis_names(layout: str, ndim: int) -> dict[int, str]:
    """What the axes of an upstream gradient are, in words (batch axis first in rows, last in columns)."""
    if layout == "columns":
        return {ndim - 1: "the examples (columns)", **{k: f"feature axis {k}" for k in range(ndim - 1)}} \
            if ndim > 1 else {0: "the examples"}
    return {0: "the examples (rows, axis 0)", **{k: f"feature axis {k}" for k in range(1, ndim)}}


def bias_axis(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """A bias gradient summed over the wrong axes of the upstream gradient, or not summed at all."""
    g = as_f64(ctx.cotangent)
    if g is None or ctx.tensor == "x" or not fails(a, n, ctx) or g.ndim < 2:
        return None
    batch_axis = g.ndim - 1 if ctx.layout == "columns" else 0
    names = _axis_names(ctx.layout, g.ndim)
    # Only a tensor that *is* a bias-like reduction of dZ is in scope: the numeric gradient must be
    # Σ over the batch axis (possibly with kept dims), or this hypothesis has nothing to say.
    right = g.sum(axis=batch_axis)
    if right.size != n.size or rel_error(right.reshape(n.shape), n) > ctx.explain_rtol:
        return None
    if a.shape != n.shape and a.shape == g.shape and rel_error(a, g) <= ctx.explain_rtol:
        return (f"{grad_name(ctx)} is dZ itself, shape {a.shape}: not summed over {names[batch_axis]} "
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
                return (f"bias gradient summed over the wrong axis: {grad_name(ctx)} = Σ over {over} "
                        f"(axis={axes[0] if len(axes) == 1 else axes}) of dZ; it should be summed "
                        f"over {names[batch_axis]} only (axis={batch_axis})")
    return None


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
