"""Where the wrong entries of a failing gradient are, for a layer of sliding windows (a pool, a
convolution): only entries that several overlapping windows share (= where += belongs), only
what windows over the zero padding cover (the border windows treated differently), only or all
but the stride positions (one entry per window). The geometry comes from the layer's kernel,
stride and padding options; like localize.py, each speaks only when its pattern explains the
failure exactly.
"""
from __future__ import annotations

import itertools

import numpy as np

from .context import Context, matching_entries, plural
from .quantities import KERNEL, STRIDE


def _coverage(length: int, k: int, s: int, p: int) -> np.ndarray:
    """How many windows (kernel k, stride s, padding p) cover each index of an axis."""
    cov = np.zeros(length + 2 * p, dtype=int)
    for start in range(0, length + 2 * p - k + 1, s):
        cov[start:start + k] += 1
    return cov[p:p + length]


def overlapping_windows(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """A pool's dx wrong only at entries that several overlapping windows share (= where += is
    needed)."""
    return None if ctx.params else _overlapping(a, n, ctx)


def overlapping_windows_with_parameters(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The same for a layer with parameters (a strided convolution), tried after the candidates:
    a kernel flipped in backward leaves the unshared entries right too (only the kernel's centre
    reaches them, and it is its own flip)."""
    return _overlapping(a, n, ctx) if ctx.params else None


def _overlapping(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    opts = ctx.options
    k = next((opts[o] for o in KERNEL if o in opts), None)
    s = next((opts[o] for o in STRIDE if o in opts), k)
    # (a convolution's dx at stride 1 has nearly every entry shared, which would make the
    # pattern say nothing: a quarter of the entries must be unshared, as at stride 2)
    if ctx.tensor != "x" or a.ndim != 4 or k is None or s is None or not s < k:
        return None
    p = int(opts.get("padding", 0))
    ch = _coverage(a.shape[2], int(k), int(s), p)
    cw = _coverage(a.shape[3], int(k), int(s), p)
    shared = np.broadcast_to((ch[:, None] * cw[None, :]) >= 2, a.shape)
    bad = ~matching_entries(a, n, ctx)
    if not bad.any() or not (bad <= shared).all() or (~shared).sum() < 0.25 * shared.size:
        return None
    return (f"only entries shared by overlapping windows (kernel {k:g}, stride {s:g}) are wrong "
            f"({plural(int(bad.sum()))}): contributions overwritten (=) where they must add up (+=)")


def _spatial(a: np.ndarray, ctx: Context) -> tuple[int, ...]:
    """The axes windows slide over: named height, width or length, else the last two of an
    (m, C, H, W) tensor or the last of an (m, C, L) one."""
    if ctx.axes and len(ctx.axes) == a.ndim:
        named = tuple(k for k, (word, _, _) in enumerate(ctx.axes) if word in ("height", "width", "length"))
        if named:
            return named
    return {4: (2, 3), 3: (2,)}.get(a.ndim, ())


def _axes_words(axes: tuple[int, ...], ctx: Context) -> str:
    if ctx.axes and len(ctx.axes) > max(axes):
        words = [ctx.axes[k][0] for k in axes]
        if all(w != "axis" for w in words):
            return f"the {' and '.join(words)} ax{'es' if len(axes) > 1 else 'is'}"
    return f"ax{'es' if len(axes) > 1 else 'is'} {' and '.join(str(k) for k in axes)}"


def _broadcast(masks: list[np.ndarray], axes: tuple[int, ...], shape: tuple[int, ...], any_: bool) -> np.ndarray:
    """Per-axis masks combined over the tensor (any of them, or all of them)."""
    out = np.zeros(shape, dtype=bool) if any_ else np.ones(shape, dtype=bool)
    for mask, k in zip(masks, axes):
        view = mask.reshape([-1 if i == k else 1 for i in range(len(shape))])
        out = (out | view) if any_ else (out & view)
    return out


def _padding_band(length: int, k: int, s: int, p: int) -> np.ndarray:
    """The indices of an axis that a window reaching into the zero padding covers."""
    band = np.zeros(length, dtype=bool)
    for start in range(0, length + 2 * p - k + 1, s):
        if start < p or start + k > p + length:
            band[max(0, start - p):max(0, start + k - p)] = True
    return band


def border(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """Wrong only at entries that windows reaching into the padding cover, the interior right:
    the border windows are treated differently in backward than in forward."""
    opts = ctx.options
    k = next((opts[o] for o in KERNEL if o in opts), None)
    s = next((opts[o] for o in STRIDE if o in opts), 1)
    p = opts.get("padding", 0)
    axes = _spatial(a, ctx)
    if ctx.tensor != "x" or not axes or k is None or not p > 0 or a.shape != n.shape:
        return None
    k, s, p = int(k), int(s), int(p)
    bands = [_padding_band(a.shape[ax], k, max(1, s), p) for ax in axes]
    band = _broadcast(bands, axes, a.shape, any_=True)
    bad = ~matching_entries(a, n, ctx)
    # the interior must be large enough to say something, the wrong entries most of the band
    if not bad.any() or not (bad <= band).all() or (~band).sum() < 0.2 * band.size \
            or bad.sum() < 0.25 * band.sum():
        return None
    widths = sorted({int(b[:len(b) // 2].sum()) for b in bands})
    within = " or ".join(str(w) for w in widths)
    return (f"only entries that windows reaching into the zero padding cover (padding {p}, kernel "
            f"{k}: within {within} of the border of {_axes_words(axes, ctx)}) are wrong "
            f"({plural(int(bad.sum()))}), the interior is right: the border windows are computed "
            f"differently in backward than in forward (the padding counted in one and not in the other?)")


def _nth(s: int) -> str:
    return f"{s}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(s if s < 20 else s % 10, 'th')}"


def _positions(r: tuple[int, ...], s: int) -> str:
    return ", ".join(f"{i}, {i + s}, …" for i in r) if len(set(r)) > 1 else f"{r[0]}, {r[0] + s}, …"


def stride_lattice(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """A pool's dx right only at the entries at the stride positions (one per window), or wrong
    only there: the gradient reaches one entry of each window where the window covers more, or
    the entries at the window origins are handled apart."""
    return None if ctx.params else _lattice(a, n, ctx)


def stride_lattice_with_parameters(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The same for a layer with parameters, tried after the candidates and the overlapping
    windows: in a strided convolution the entries off the stride positions are those that
    windows share, and a kernel flipped in backward leaves the others right."""
    return _lattice(a, n, ctx) if ctx.params else None


def _lattice(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    opts = ctx.options
    k = next((opts[o] for o in KERNEL if o in opts), None)
    s = next((opts[o] for o in STRIDE if o in opts), k)      # a pool's stride defaults to its kernel
    axes = _spatial(a, ctx)
    if ctx.tensor != "x" or not axes or s is None or s != int(s) or s < 2 or a.shape != n.shape \
            or any(a.shape[ax] <= s for ax in axes):
        return None
    s = int(s)
    bad = ~matching_entries(a, n, ctx)
    if not bad.any():
        return None
    where = _axes_words(axes, ctx)
    for r in itertools.product(range(s), repeat=len(axes)):
        on = _broadcast([np.arange(a.shape[ax]) % s == ri for ax, ri in zip(axes, r)], axes, a.shape,
                        any_=False)
        if on.all() or not on.any():
            continue
        zeros = " (0 there)" if not np.any(a[bad]) else ""
        if (bad <= ~on).all() and bad.sum() >= 0.5 * (~on).sum():
            return (f"right only at every {_nth(s)} position of {where} (indices {_positions(r, s)}: one "
                    f"entry per window of stride {s}), wrong at the other {plural(int(bad.sum()))}{zeros}: "
                    f"the gradient reaches one entry of each window instead of every entry it covers "
                    f"(dout not spread over the window?)")
        if (bad <= on).all() and bad.sum() >= 0.5 * on.sum():
            return (f"only the entries at every {_nth(s)} position of {where} (indices {_positions(r, s)}: "
                    f"one per window of stride {s}) are wrong ({plural(int(bad.sum()))}){zeros}, the "
                    f"others are right: the window origins are handled apart (an index s·i where i "
                    f"belongs, or the reverse?)")
    return None
