"""Where the wrong entries of a failing gradient are, when that names the bug: a mask missing
(nonzero where the function does not depend on the entry), the gradient sent to other entries,
a kernel flipped, an index or crop shifted, a causal triangle, repeated token ids, one gate's
block of a recurrent weight, the time steps before the last; else one row, column or channel,
or a handful of entries. (Patterns of sliding windows are in windows.py.)

Each hypothesis returns a message only when the pattern explains the failure exactly (the rest
of the tensor matches the numeric gradient to within the explain threshold), so none speaks for
a correct gradient. Tried in the order of hypotheses.HYPOTHESES.
"""
from __future__ import annotations

import numpy as np

from .quantities import HIDDEN
from .context import Context, as_f64, fails, grad_name, matching_entries, near_zero, plural, scale_of


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
    return (f"{grad_name(ctx)} is nonzero at {plural(k)} where the numeric gradient is 0{_edges(bad)} "
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
    return (f"the gradient is sent to the wrong entries: 0 at {plural(lost)} where the numeric "
            f"gradient is not, nonzero at {plural(extra)} where it is 0, right elsewhere (a mask or "
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
