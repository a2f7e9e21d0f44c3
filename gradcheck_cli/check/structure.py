"""What a layer's forward lets the check share between perturbed copies, found on the real arrays.

A plugin layer says nothing about itself (no base class, no ``probe_axes``), and a claim it does
make is never trusted: each property below is tried on the layer's real input and parameters,
and used only where it held.

- stacks: ``tensor`` may carry a leading axis of copies (``x @ W + b`` in rows layout runs a stack
  of x or of W in one call, not a stack of b). Verified bit for bit: a stack of the tensor as it is
  and a perturbed copy gives exactly what each gives alone.
- concatenates: copies of x laid side by side along the batch axis run as one larger batch; the
  result agrees with separate calls to rounding (BLAS picks other kernels for other row counts, so
  bits may differ; a layer that mixes examples differs by far more).
- separable: each example's output depends on that example's input alone (batch statistics do
  not): perturb one example and every other example's output stays bit-identical.
- elementwise: each output entry depends on the same input entry alone.
- axes: a parameter's slice q along one axis reaches only the output's slice q along another.
- widens: copies of such a parameter laid side by side along that axis (its companions, the
  other parameters indexed by the same output slices, repeated) run in one call whose output
  holds each copy's slices side by side: B filter copies of a convolution as one layer of B·F
  filters. Verified like concatenates, to rounding (a wider GEMM may round otherwise).
- footprint: which part of the output each input entry reaches (a plugin convolution's or
  pooling layer's windows), measured slice by slice (footprint.py).

The last three are tried with index sets that split every pair of indices (separating_sets):
perturbing θ at the set must leave every output slice outside it bit-identical.

Pure: the layer and its arrays are not modified (every call gets its own copy), nothing is printed.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .evaluators import with_params
from .footprint import Footprint, measure
from .known import windows_known
from ..layers.registry import is_builtin

#: a plugin's copies go through its forward in calls that hold about this many bytes (its output
#: and cache for one copy, measured: Structure.held), two copies at least, so that the call's own
#: set-up is shared: a learner's im2col of two copies stays in a core's cache, that of thirty runs
#: at memory speed (0.31 against 0.55 ms a copy on bench_networks' second convolution). Built-ins
#: block their own temporaries (conv.py).
CALL_BYTES = 2 * 2**20
#: copies that concatenate must agree with separate calls to this fraction of the output's scale
CONCAT_RTOL = 1e-10


@dataclass(frozen=True)
class Structure:
    """What the check may share for one layer (see the module docstring)."""

    stacks: frozenset[str] = frozenset()
    concatenates: bool = False
    separable: bool = False
    elementwise: bool = False
    #: parameter -> (its axis, the output's axis) that index the same slices (parameter_axes)
    axes: tuple[tuple[str, tuple[int, int]], ...] = ()
    #: parameters whose copies run side by side along their axis in one call (widened)
    widens: frozenset[str] = frozenset()
    #: the input entries' footprint boxes, where they let copies share more than examples do
    footprint: Footprint | None = None
    #: entries a plugin's forward holds for one copy, measured: its output and every array its
    #: cache keeps (a step-by-step layer keeps each step's gates); None for a built-in, whose
    #: figure is its own (held_entries) or the three arrays per activation budget.py assumes
    held: int | None = None

    def axes_of(self, tensor: str) -> tuple[int, int] | None:
        return dict(self.axes).get(tensor)

    def copies_held(self, tensor: str) -> int:
        """Copies of ``tensor`` a probe holds at once: two where its copies run side by side
        (the stack and the wide parameter laid out from it), else one."""
        return 2 if tensor in self.widens else 1

    @classmethod
    def none(cls) -> "Structure":
        return cls()


def batch_axis(layout: str, ndim: int) -> int:
    """The batch axis of an (unstacked) array in this layout."""
    return ndim - 1 if layout == "columns" else 0


def structure_of(layer: Any, x: np.ndarray, layout: str, rng: np.random.Generator) -> Structure:
    """Every property of ``layer`` at its real input ``x`` (float64), each tried on the arrays.

    A built-in layer's declared ``probe_axes`` is ours and tested with every layer
    (test_layers_registry); a plugin's is verified like everything else."""
    differentiable = np.issubdtype(x.dtype, np.inexact)
    tensors = ["x", *layer.params] if differentiable else list(layer.params)
    # one clean forward serves every comparison below: a layer whose forward is not
    # deterministic differs from it under every perturbation and so shares nothing
    clean, held = _clean_forward(layer, x)
    if is_builtin(type(layer)):
        held = None
    if is_builtin(type(layer)) and getattr(layer, "probe_axes", False):
        stacked = frozenset(tensors)
    else:
        stacked = frozenset(t for t in tensors if stacks(layer, t, x, clean, rng))
    axes = tuple((t, a) for t in layer.params if (a := parameter_axes(layer, t, x, clean, layout, rng)))
    # a parameter with one entry a slice needs two copies in all: nothing to gain from widening
    wide = frozenset(t for t, (a, _) in axes if t not in stacked
                     and np.size(layer.params[t]) > np.shape(layer.params[t])[a]
                     and widens(layer, t, x, clean, axes, rng))
    if not differentiable:
        return Structure(stacked, axes=axes, widens=wide, held=held)
    st = Structure(stacked, concatenates(layer, x, clean, layout, rng),
                   separable(layer, x, clean, layout, rng), elementwise(layer, x, clean, rng), axes,
                   wide, held=held)
    if st.elementwise or windows_known(layer, st):
        # built-in convolutions and pools have their windows by construction; every other
        # layer, built-in or not (a flatten, a global pool), is measured
        return st
    found = footprint(layer, st, x, clean, layout, rng)
    per_example = x.size // max(1, x.shape[batch_axis(layout, x.ndim)]) if st.separable else x.size
    if found is None or found.colors >= per_example:
        return st
    return dataclasses.replace(st, footprint=found)


def _clean_forward(layer: Any, x: np.ndarray) -> tuple[np.ndarray | None, int | None]:
    """The layer's output at x (None where the forward fails or gives no floats) and the entries
    one forward holds: its output and the arrays its cache keeps (through tuples, lists and
    dicts; a view counted at its own size, which may count memory twice but never misses it;
    None where the forward fails)."""
    try:
        with np.errstate(all="ignore"):
            out, cache = layer.forward(x.copy())
    except (Exception, SystemExit):
        return None, None
    seen: set[int] = set()

    def entries(obj: Any, depth: int) -> int:
        if isinstance(obj, np.ndarray):
            if id(obj) in seen:
                return 0
            seen.add(id(obj))
            return obj.size
        if depth and isinstance(obj, (tuple, list)):
            return sum(entries(o, depth - 1) for o in obj)
        if depth and isinstance(obj, dict):
            return sum(entries(o, depth - 1) for o in obj.values())
        return 0

    held = entries(out, 4) + entries(cache, 4)
    out = np.asarray(out)
    return (out if np.issubdtype(out.dtype, np.inexact) else None), held


def footprint(layer: Any, st: Structure, x: np.ndarray, clean: np.ndarray | None, layout: str,
              rng: np.random.Generator) -> Footprint | None:
    """The footprint boxes of the layer's input entries (footprint.py) at input x (output
    ``clean``), run as the layer's verified structure allows."""
    if clean is None:
        return None

    def run(stack: np.ndarray) -> np.ndarray | None:
        try:
            with np.errstate(all="ignore"):
                return through(layer, st, stack, layout)     # a fresh stack (footprint.measure)
        except (Exception, SystemExit):
            return None

    if not st.separable:
        return measure(run, x, clean, rng)
    return measure(run, x, clean, rng, batch_axis(layout, x.ndim), batch_axis(layout, clean.ndim))


def through(layer: Any, st: Structure, stack: np.ndarray, layout: str,
            calls: Callable[[int], None] | None = None) -> np.ndarray:
    """(B, *x.shape) copies -> (B, *out.shape), in as few calls as the structure allows."""
    if "x" not in st.stacks and not st.concatenates:
        out = np.stack([np.asarray(layer.forward(c)[0]) for c in stack])
        if calls is not None:
            calls(stack.shape[0])
        return out
    per_call = stack.shape[0] if st.held is None else \
        max(2, CALL_BYTES // max(1, st.held * stack.itemsize))
    parts = []
    for start in range(0, stack.shape[0], per_call):
        block = stack[start:start + per_call]
        if "x" in st.stacks:
            parts.append(np.asarray(layer.forward(block)[0]))
        else:
            parts.append(split(np.asarray(layer.forward(merge(block, layout))[0]), block.shape[0], layout))
    if calls is not None:
        calls(len(parts))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def network_structures(net: Any, layers: list[Any], acts: list[np.ndarray]) -> list[Structure]:
    """Every layer's structure at its real float64 input (seeded: the same on every run)."""
    rng = np.random.default_rng([net.spec.seed, 4, 999])
    return [structure_of(layer, acts[k], net.spec.layout, rng) for k, layer in enumerate(layers)]


def _forward(layer: Any, x: np.ndarray) -> np.ndarray | None:
    try:
        with np.errstate(all="ignore"):
            out = layer.forward(x.copy())[0]
    except (Exception, SystemExit):
        return None
    out = np.asarray(out)
    return out if np.issubdtype(out.dtype, np.inexact) else None


def _near(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    scale = max(1.0, float(np.abs(theta).max(initial=0.0)))
    return theta + 1e-3 * scale * rng.standard_normal(theta.shape)


def stacks(layer: Any, tensor: str, x: np.ndarray, clean: np.ndarray | None, rng: np.random.Generator
           ) -> bool:
    """Whether a stack of ``tensor`` as it is and a perturbed copy computes bit for bit what each
    computes alone (``clean``: the layer's output as it is)."""
    theta = x if tensor == "x" else np.asarray(layer.params[tensor], dtype=np.float64)
    if clean is None or not np.issubdtype(theta.dtype, np.inexact):
        return False
    call = _caller(layer, tensor, x)
    near = _near(theta, rng)
    together = call(np.stack([theta, near]))
    if together is None:       # most plugins' parameters: no call of the copy alone is needed
        return False
    alone = call(near)
    if alone is None or alone.shape != clean.shape:
        return False
    expected = np.stack([clean, alone])
    return together.shape == expected.shape and np.array_equal(together, expected, equal_nan=True)


def _caller(layer: Any, tensor: str, x: np.ndarray) -> Callable[[np.ndarray], np.ndarray | None]:
    """The layer's output as a function of ``tensor`` (the others as they are)."""
    if tensor == "x":
        return lambda v: _forward(layer, v)
    return lambda v: _forward(with_params(layer, {tensor: v}), x)


def merge(stack: np.ndarray, layout: str) -> np.ndarray:
    """(B, *x.shape) copies as one batch of B·m examples, copy by copy along the batch axis."""
    if layout == "columns":
        moved = np.moveaxis(stack, 0, -2)
        return moved.reshape(*moved.shape[:-2], -1)
    return stack.reshape(-1, *stack.shape[2:])


def split(out: np.ndarray, copies: int, layout: str) -> np.ndarray:
    """The inverse of ``merge`` on a layer's output: (B, *out.shape) copies."""
    if layout == "columns":
        return np.moveaxis(out.reshape(*out.shape[:-1], copies, -1), -2, 0)
    return out.reshape(copies, -1, *out.shape[1:])


def concatenates(layer: Any, x: np.ndarray, clean: np.ndarray | None, layout: str,
                 rng: np.random.Generator) -> bool:
    """Whether x and a perturbed copy laid along the batch axis give each its own output
    (``clean``: the output at x)."""
    if clean is None:
        return False
    near = _near(x, rng)
    together = _forward(layer, merge(np.stack([x, near]), layout))
    if together is None:
        return False
    alone = _forward(layer, near)
    if alone is None or alone.shape != clean.shape:
        return False
    expected = np.stack([clean, alone])
    if together.ndim != expected.ndim - 1 or together.size != expected.size:
        return False
    try:
        got = split(together, 2, layout)
    except ValueError:
        return False
    return _to_rounding(got, expected)


def _to_rounding(got: np.ndarray, expected: np.ndarray) -> bool:
    """Whether copies run together gave what each gave alone, to CONCAT_RTOL of the output's
    scale (a product of another size may round otherwise; a layer that mixes copies is far off)."""
    if got.shape != expected.shape:
        return False
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-300)
    return bool(np.all(np.abs(got - expected) <= CONCAT_RTOL * scale))


def widened(layer: Any, axes: tuple[tuple[str, tuple[int, int]], ...], tensor: str,
            stack: np.ndarray) -> dict[str, np.ndarray]:
    """The parameters of one call that runs each copy of ``tensor`` in the (B, *θ.shape) stack:
    the copies side by side along θ's axis (copy b's slice q at index b·n + q), and each
    companion (a parameter whose axis of the same length reaches the same output axis, such as
    a convolution's bias beside its filters) repeated B times along its own."""
    a, o = dict(axes)[tensor]
    copies, n = stack.shape[0], stack.shape[1 + a]
    moved = np.moveaxis(stack, 0, a)
    params = {tensor: moved.reshape(*moved.shape[:a], copies * n, *moved.shape[a + 2:])}
    for other, (b, p) in axes:
        value = np.asarray(layer.params[other])
        if other != tensor and p == o and value.shape[b] == n:
            params[other] = np.concatenate([value] * copies, axis=b)
    return params


def narrowed(out: np.ndarray, copies: int, axis: int) -> np.ndarray:
    """The inverse of ``widened`` on the layer's output: (B, *out.shape), from slices laid side
    by side along ``axis``."""
    n = out.shape[axis] // copies
    parted = out.reshape(*out.shape[:axis], copies, n, *out.shape[axis + 1:])
    return np.moveaxis(parted, axis, 0)


def widens(layer: Any, tensor: str, x: np.ndarray, clean: np.ndarray | None,
           axes: tuple[tuple[str, tuple[int, int]], ...], rng: np.random.Generator) -> bool:
    """Whether ``tensor`` as it is and a perturbed copy, side by side along its axis (widened),
    give each its own output side by side along the output's axis (``clean``: the output as
    it is)."""
    theta = np.asarray(layer.params[tensor], dtype=np.float64)
    if clean is None or not np.issubdtype(theta.dtype, np.inexact):
        return False
    o = dict(axes)[tensor][1]
    near = _near(theta, rng)
    together = _forward(with_params(layer, widened(layer, axes, tensor, np.stack([theta, near]))), x)
    wide = (*clean.shape[:o], 2 * clean.shape[o], *clean.shape[o + 1:])
    if together is None or together.shape != wide:
        return False
    alone = _caller(layer, tensor, x)(near)
    if alone is None or alone.shape != clean.shape:
        return False
    return _to_rounding(narrowed(together, 2, o), np.stack([clean, alone]))


#: indices coded directly by separating_sets; longer axes are split in two (cheap to code)
CODED = 1 << 16


def separating_sets(n: int) -> np.ndarray:
    """(sets, n) index sets such that for any two distinct indices q, q' of range(n) some set
    holds q and not q': a dependence of slice q' on index q is then always seen, not only with
    some probability. Index q is in the sets of its code, the q-th choice of w = k // 2 of k
    (combinatorial number system); no such code lies inside another (Sperner), and k is the
    fewest with n codes: 5 sets for 8 indices, 18 for 32,768, where the bits of the index and
    their complements take 6 and 30. Past CODED indices, q = (q // CODED, q % CODED) and each
    part's sets are taken over the whole axis: q and q' differ in one part, and its sets split
    them. Read-only, and kept up to CODED indices (1.2 MiB at most each): every check of a layer
    asks again for the same n."""
    if n <= CODED:
        return _coded_sets(n)
    high, low = separating_sets(-(-n // CODED)), separating_sets(CODED)
    member = np.concatenate([np.repeat(high, CODED, axis=1)[:, :n],
                             np.tile(low, (1, -(-n // CODED)))[:, :n]])
    return _proper(member)


@functools.lru_cache(maxsize=32)
def _coded_sets(n: int) -> np.ndarray:
    k = 1
    while math.comb(k, k // 2) < n:
        k += 1
    w = k // 2
    rest, left = np.arange(n), np.full(n, w)
    member = np.zeros((k, n), dtype=bool)
    for j in range(k - 1, -1, -1):
        below = np.array([math.comb(j, i) for i in range(w + 1)])[left]    # C(j, left)
        take = np.greater_equal(rest, below, out=left > 0, where=left > 0)
        member[j] = take
        rest -= below * take
        left -= take
    return _proper(member)


def _proper(member: np.ndarray) -> np.ndarray:
    """The sets that are neither empty nor the whole axis (those split no pair)."""
    count = np.count_nonzero(member, axis=1)
    member = member[(count > 0) & (count < member.shape[1])]
    member.flags.writeable = False
    return member


def independent_slices(call: Callable[[np.ndarray], np.ndarray | None], theta: np.ndarray, axis: int,
                       clean: np.ndarray, out_axis: int, rng: np.random.Generator) -> bool:
    """Whether index q of θ along ``axis`` reaches slice q of the output along ``out_axis`` alone:
    for index sets that split every pair, perturbing θ at the set leaves every output slice
    outside it bit-identical. One call a set, each like the call of ``clean``: a stack of sets
    in one call would put an example's rows elsewhere in a BLAS product, and some kernels round
    the rows at its edges otherwise (seen: OpenBLAS's Nehalem kernel on a dense layer)."""
    n = theta.shape[axis]
    if clean.shape[out_axis] != n:
        return False
    scale = max(1.0, float(np.abs(theta).max(initial=0.0)))
    shape = [1] * theta.ndim
    shape[axis] = n
    # one draw serves every index set: each set is a question of its own about the same move
    away = theta + 0.1 * scale * rng.standard_normal(theta.shape)
    others = tuple(d for d in range(clean.ndim) if d != out_axis)
    for mask in separating_sets(n):
        out = call(np.where(mask.reshape(shape), away, theta))
        if out is None or out.shape != clean.shape:
            return False
        changed = out != clean
        changed = changed.any(axis=others) if others else changed        # along out_axis
        if np.any(changed & ~mask):
            return False
    return True


def separable(layer: Any, x: np.ndarray, clean: np.ndarray | None, layout: str,
              rng: np.random.Generator) -> bool:
    """Whether each example's output depends on that example's input alone."""
    if clean is None or clean.ndim < 1:
        return False
    return independent_slices(lambda v: _forward(layer, v), x, batch_axis(layout, x.ndim),
                              clean, batch_axis(layout, clean.ndim), rng)


def elementwise(layer: Any, x: np.ndarray, clean: np.ndarray | None, rng: np.random.Generator) -> bool:
    """Whether each output entry depends on the same input entry alone."""
    if clean is None or clean.shape != x.shape or x.size < 2:
        return False

    def call(v: np.ndarray) -> np.ndarray | None:
        out = _forward(layer, v.reshape(x.shape))
        return None if out is None or out.size != v.size else out.reshape(-1)

    return independent_slices(call, x.reshape(-1), 0, clean.reshape(-1), 0, rng)


def parameter_axes(layer: Any, tensor: str, x: np.ndarray, clean: np.ndarray | None, layout: str,
                   rng: np.random.Generator) -> tuple[int, int] | None:
    """(axis of the parameter, axis of the output) such that the parameter's entries at index q
    along the first reach only slice q of the output along the second (a dense layer's W[:, q]
    and b[q] reach output feature q; a convolution's filter f reaches output channel f)."""
    theta = np.asarray(layer.params[tensor], dtype=np.float64)
    if clean is None or theta.ndim == 0:
        return None
    skip = batch_axis(layout, clean.ndim)
    call = _caller(layer, tensor, x)
    for a in range(theta.ndim):
        for b in range(clean.ndim):
            if b != skip and theta.shape[a] == clean.shape[b] and theta.shape[a] > 1 \
                    and independent_slices(call, theta, a, clean, b, rng):
                return a, b
    return None
