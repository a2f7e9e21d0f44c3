"""Where the wrong entries of a failing gradient are, when that names the bug: a mask missing
(nonzero where the function does not depend on the entry), the gradient sent to other entries,
a kernel flipped, an index or crop shifted, a causal triangle, repeated token ids, entries shared
by overlapping windows, a border reached by windows over the padding, the stride positions,
one gate's block of a recurrent weight, the time steps before the last; else one row, column
or channel, or a handful of entries.

Each hypothesis returns a message only when the pattern explains the failure exactly (the rest
of the tensor matches the numeric gradient to within the explain threshold), so none speaks for
a correct gradient. Tried in the order of hypotheses.HYPOTHESES.
"""
from __future__ import annotations

import itertools

import numpy as np

from .quantities import HIDDEN, KERNEL, STRIDE
from .context import Context, as_f64, fails, grad_name, matching_entries, near_zero, scale_of


def _plural(k: int, word: str = "entr") -> str:
    return f"{k} {word}{'y' if k == 1 else 'ies'}" if word == "entr" else f"{k} {word}{'' if k == 1 else 's'}"


def _edges(bad: np.ndarray) -> str:
    """Where a set of entries lies when it is the last (or first) rows/columns of the last two axes."""
    if bad.ndim < 2:
        return ""
    where = np.argwhere(bad)
    H, W = bad.shape[-2:]
    rows, cols = where[:, -2], where[:, -1]
    last = (rows == H - 1) | (cols == W - 1)
    if last.all() and (rows == H - 1).any() and (cols == W - 1).any():
        return f": all in the last row and column of axes {bad.ndim - 2} and {bad.ndim - 1}"
    first = (rows == 0) | (cols == 0)
    if first.all() and (rows == 0).any() and (cols == 0).any():
        return f": all in the first row and column of axes {bad.ndim - 2} and {bad.ndim - 1}"
    return ""


def mask_missing(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """Wrong only where the numeric gradient is 0 (entries the output does not depend on)."""
    s = scale_of(a, n)
    bad = ~matching_entries(a, n, ctx)
    nz = near_zero(n, s, ctx)
    if not bad.any() or not (bad <= nz).all() or nz.all():
        return None
    k = int(bad.sum())
    return (f"{grad_name(ctx)} is nonzero at {_plural(k)} where the numeric gradient is 0{_edges(bad)} "
            f"(entries the output does not depend on: dropped by a mask, not the maximum of their "
            f"pool window, outside every window); right everywhere else: a mask is not applied in backward")


def misrouted(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """Wrong exactly where one of the two is 0 and the other is not: the gradient goes elsewhere."""
    s = scale_of(a, n)
    bad = ~matching_entries(a, n, ctx)
    za, zn = near_zero(a, s, ctx), near_zero(n, s, ctx)
    xor = za ^ zn
    if not bad.any() or not (bad <= xor).all() or not (bad & zn).any() or not (bad & za).any():
        return None
    lost, extra = int((bad & za).sum()), int((bad & zn).sum())
    return (f"the gradient is sent to the wrong entries: 0 at {_plural(lost)} where the numeric "
            f"gradient is not, nonzero at {_plural(extra)} where it is 0, right elsewhere (a mask or "
            f"argmax different from the forward pass's?)")


def flipped(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """d is the true gradient flipped along some axes (a kernel flipped in backward)."""
    if a.ndim < 2:
        return None
    last = (a.ndim - 2, a.ndim - 1)
    for axes, words in ((last, "its last two axes"), ((a.ndim - 1,), "its last axis"),
                        ((a.ndim - 2,), f"axis {a.ndim - 2}")):
        if all(a.shape[k] > 1 for k in axes):
            f = np.flip(n, axis=axes)
            if not np.allclose(f, n) and matching_entries(a, f, ctx).all():
                return (f"{grad_name(ctx)} is the true {grad_name(ctx)} flipped in {words} (the kernel flipped in "
                        f"backward: convolution where the forward is a cross-correlation?)")
    return None


def shifted(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """d is the true gradient shifted by a few entries along one axis, or along the last two
    (an index or a crop off by one)."""
    candidates: list[tuple[int, ...]] = [(k,) for k in range(a.ndim)]
    if a.ndim >= 2:
        candidates.insert(0, (a.ndim - 2, a.ndim - 1))
    for axes in candidates:
        for s in (1, -1, 2, -2):
            if any(a.shape[k] <= abs(s) + 1 for k in axes):
                continue
            rolled = np.roll(n, s, axis=axes)
            if matching_entries(a, rolled, ctx).all() and not matching_entries(a, n, ctx).all():
                return _shift_text(ctx, axes, s, cyclic=True)
            dst = [slice(None)] * a.ndim
            src = [slice(None)] * a.ndim
            for k in axes:
                dst[k] = slice(s, None) if s > 0 else slice(None, s)
                src[k] = slice(None, -s) if s > 0 else slice(-s, None)
            aa, nn = a[tuple(dst)], n[tuple(src)]
            if np.any(nn) and matching_entries(aa, nn, ctx).all() and aa.size >= a.size // 2:
                return _shift_text(ctx, axes, s, cyclic=False)
    return None


def _shift_text(ctx: Context, axes: tuple[int, ...], s: int, cyclic: bool) -> str:
    where = f"axes {axes[0]} and {axes[1]}" if len(axes) == 2 else f"axis {axes[0]}"
    source = "i − " + str(s) if s > 0 else "i + " + str(-s)
    return (f"{grad_name(ctx)} is the true gradient shifted by {abs(s)} along {where} (entry i holds the "
            f"gradient of entry {source}{', wrapping around' if cyclic else ''}): an index or a "
            f"crop off by {abs(s)}?")


def triangle(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """Wrong only above (or below) the diagonal of the last two axes: a causal mask."""
    if a.ndim < 2 or a.shape[-1] != a.shape[-2] or a.shape[-1] < 3:
        return None
    T = a.shape[-1]
    bad = ~matching_entries(a, n, ctx)
    upper = np.broadcast_to(np.triu(np.ones((T, T), dtype=bool), 1), a.shape)
    for region, words in ((upper, "above the diagonal of the last two axes (j > i: the future positions)"),
                          (np.swapaxes(upper, -1, -2), "below the diagonal of the last two axes (j < i)")):
        # the masked positions are those the output does not depend on: numeric 0 there
        if bad.any() and (bad <= region).all() and bad.sum() >= 0.5 * region.sum() \
                and near_zero(n[region], scale_of(a, n), ctx).all():
            return (f"only entries {words} are wrong, where the numeric gradient is 0: a causal "
                    f"mask not applied in backward")
    return None


def repeated_ids(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """Wrong only at the rows of an embedding table whose id occurs more than once in the input."""
    x = ctx.layer_input_raw
    if ctx.tensor == "x" or x is None or not np.issubdtype(np.asarray(x).dtype, np.integer) or a.ndim < 1:
        return None
    ids = np.asarray(x).reshape(-1)
    if ids.size == 0 or ids.min() < 0 or ids.max() >= a.shape[0]:
        return None
    counts = np.bincount(ids, minlength=a.shape[0])
    bad_rows = (~matching_entries(a, n, ctx)).reshape(a.shape[0], -1).any(axis=1)
    repeated = counts >= 2
    if not bad_rows.any() or not (bad_rows <= repeated).all():
        return None
    # each wrong row must hold exactly one occurrence's upstream gradient (what `dW[idx] += g`
    # leaves), so that a bug wrong everywhere is not put down to repeated ids
    g = as_f64(ctx.cotangent)
    if g is None or g.shape[:len(np.shape(x))] != np.shape(x):
        return None
    rows = g.reshape(ids.size, -1)
    flat_a = a.reshape(a.shape[0], -1)
    tol = ctx.explain_rtol * scale_of(a, n)
    for v in np.flatnonzero(bad_rows):
        if not (np.abs(rows[ids == v] - flat_a[v]).max(axis=1) <= tol).any():
            return None
    listed = ", ".join(str(int(i)) for i in np.flatnonzero(bad_rows)[:6])
    return (f"only the rows of {grad_name(ctx)} whose id occurs more than once in the input are wrong "
            f"(ids {listed}): repeated indices overwrite instead of adding up (`dW[idx] += …` "
            f"keeps one occurrence; use np.add.at)")


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
            f"({_plural(int(bad.sum()))}): contributions overwritten (=) where they must add up (+=)")


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
            f"({_plural(int(bad.sum()))}), the interior is right: the border windows are computed "
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
                    f"entry per window of stride {s}), wrong at the other {_plural(int(bad.sum()))}{zeros}: "
                    f"the gradient reaches one entry of each window instead of every entry it covers "
                    f"(dout not spread over the window?)")
        if (bad <= on).all() and bad.sum() >= 0.5 * on.sum():
            return (f"only the entries at every {_nth(s)} position of {where} (indices {_positions(r, s)}: "
                    f"one per window of stride {s}) are wrong ({_plural(int(bad.sum()))}){zeros}, the "
                    f"others are right: the window origins are handled apart (an index s·i where i "
                    f"belongs, or the reverse?)")
    return None


def _block(bad: np.ndarray, axis: int) -> tuple[int, int] | None:
    """The index range [lo, hi) along ``axis`` holding every wrong entry, when it is not all of it."""
    other = tuple(k for k in range(bad.ndim) if k != axis)
    hit = bad.any(axis=other) if other else bad
    idx = np.flatnonzero(hit)
    if idx.size == 0:
        return None
    lo, hi = int(idx[0]), int(idx[-1]) + 1
    if hi - lo >= bad.shape[axis] or idx.size != hi - lo:
        return None
    return lo, hi


def block(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """Every wrong entry in one block along an axis: a gate of a recurrent weight, or the time
    steps before the last (the gradient not carried back through time)."""
    bad = ~matching_entries(a, n, ctx)
    if not bad.any():
        return None
    axes = ctx.axes if ctx.tensor == "x" and ctx.axes and len(ctx.axes) == a.ndim else None
    hidden = next((ctx.options[o] for o in HIDDEN if o in ctx.options), None)
    for axis in range(a.ndim):
        found = _block(bad, axis)
        if found is None:
            continue
        lo, hi = found
        L = a.shape[axis]
        if axes is not None and axes[axis][0] == "time":
            tail = (", the last one is right: the gradient carried back through time (from step "
                    "t to t − 1: dh_prev, dc_prev) is missing or wrong") if lo == 0 and hi == L - 1 else ""
            return f"only time steps {lo}:{hi} of {L} (axis {axis}) are wrong{tail}"
        w = hi - lo
        if hidden and w == hidden and L % w == 0 and lo % w == 0 and L // w in (2, 3, 4) and w > 1:
            what = "entries" if a.ndim == 1 else ("columns" if axis == a.ndim - 1 else f"indices along axis {axis}")
            return (f"only {what} {lo}:{hi} — gate {lo // w + 1} of {L // w} — are wrong: that gate's "
                    f"block of {grad_name(ctx)} (a copy-paste or a wrong factor in that gate's term?)")
    return None


def target_entries(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """A loss's dx wrong exactly at the target class of each example."""
    y = ctx.targets
    if y is None or a.ndim != 2:
        return None
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
        return None
    rows = ctx.layout != "columns"
    m = a.shape[0] if rows else a.shape[1]
    K = a.shape[1] if rows else a.shape[0]
    if y.size != m or y.min() < 0 or y.max() >= K:
        return None
    target = np.zeros(a.shape, dtype=bool)
    if rows:
        target[np.arange(m), y] = True
    else:
        target[y, np.arange(m)] = True
    bad = ~matching_entries(a, n, ctx)
    if not np.array_equal(bad, target):
        return None
    return ("only the target class's entry of each example is wrong: the −1 at the target class "
            "(dx = (p − onehot(y))/m) is missing or wrong")


def _slice_name(axis: int, k: int, ndim: int) -> str:
    index = ", ".join(str(k) if i == axis else ":" for i in range(ndim))
    word = {(2, 0): "row", (2, 1): "column"}.get((ndim, axis))
    return f"{word} {k} ([{index}])" if word else f"the slice [{index}] (index {k} along axis {axis})"


def subset(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """Correct except one row, column or channel (named), or a handful of entries (listed)."""
    if a.shape != n.shape or a.size < 2 or not fails(a, n, ctx):
        return None
    bad = ~matching_entries(a, n, ctx)
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
