"""What a layer's forward lets the check share between perturbed copies, found on the real arrays.

A plugin layer says nothing about itself (no base class, no ``probe_axes``), and a claim it does
make is never trusted: each property below is tried on the layer's real input and parameters,
and used only where it held.

- stacks: ``tensor`` may carry a leading axis of copies (``x @ W + b`` in rows layout runs a stack
  of x or of W in one call, not a stack of b). Verified bit for bit: a stack of two perturbed copies
  gives exactly what each copy gives alone.
- concatenates: copies of x laid side by side along the batch axis run as one larger batch; the
  result agrees with separate calls to rounding (BLAS picks other kernels for other row counts, so
  bits may differ; a layer that mixes examples differs by far more).
- separable: each example's output depends on that example's input alone (batch statistics do
  not): perturb one example and every other example's output stays bit-identical.
- elementwise: each output entry depends on the same input entry alone.
- axes: a parameter's slice q along one axis reaches only the output's slice q along another.
- footprint: which part of the output each input entry reaches (a plugin convolution's or
  pooling layer's windows), measured slice by slice (footprint.py).

The last three are tried with index sets that split every pair of indices (the bits of the index):
perturbing θ at the set must leave every output slice outside it bit-identical.

Pure: the layer and its arrays are not modified (every call gets its own copy), nothing is printed.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .evaluators import with_params
from .footprint import Footprint, measure
from ..layers.registry import is_builtin

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
    #: the input entries' footprint boxes, where they let copies share more than examples do
    footprint: Footprint | None = None
    #: entries a plugin's forward holds for one copy, measured: its output and every array its
    #: cache keeps (a step-by-step layer keeps each step's gates); None for a built-in, whose
    #: figure is its own (held_entries) or the three arrays per activation budget.py assumes
    held: int | None = None

    def axes_of(self, tensor: str) -> tuple[int, int] | None:
        return dict(self.axes).get(tensor)

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
    if is_builtin(type(layer)) and getattr(layer, "probe_axes", False):
        stacked = frozenset(tensors)
    else:
        stacked = frozenset(t for t in tensors if stacks(layer, t, x, rng))
    axes = tuple((t, a) for t in layer.params if (a := parameter_axes(layer, t, x, layout, rng)))
    held = None if is_builtin(type(layer)) else held_by_forward(layer, x)
    if not differentiable:
        return Structure(stacked, axes=axes, held=held)
    st = Structure(stacked, concatenates(layer, x, layout, rng), separable(layer, x, layout, rng),
                   elementwise(layer, x, rng), axes, held=held)
    if st.elementwise or is_builtin(type(layer)):
        # built-in convolutions and pools have their windows by construction (grouping.py)
        return st
    found = footprint(layer, st, x, layout, rng)
    per_example = x.size // max(1, x.shape[batch_axis(layout, x.ndim)]) if st.separable else x.size
    if found is None or found.colors >= per_example:
        return st
    return dataclasses.replace(st, footprint=found)


def held_by_forward(layer: Any, x: np.ndarray) -> int | None:
    """Entries one forward of the layer holds at input x: its output and the arrays its cache
    keeps (through tuples, lists and dicts; a view counted at its own size, which may count
    memory twice but never misses it). None where the forward fails."""
    try:
        with np.errstate(all="ignore"):
            out, cache = layer.forward(x.copy())
    except (Exception, SystemExit):
        return None
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

    return entries(out, 4) + entries(cache, 4)


def footprint(layer: Any, st: Structure, x: np.ndarray, layout: str, rng: np.random.Generator
              ) -> Footprint | None:
    """The footprint boxes of the layer's input entries (footprint.py), run as the layer's
    verified structure allows."""
    clean = _forward(layer, x)
    if clean is None:
        return None

    def run(stack: np.ndarray) -> np.ndarray | None:
        try:
            with np.errstate(all="ignore"):
                return through(layer, st, stack.copy(), layout)
        except (Exception, SystemExit):
            return None

    if not st.separable:
        return measure(run, x, clean, rng)
    return measure(run, x, clean, rng, batch_axis(layout, x.ndim), batch_axis(layout, clean.ndim))


def through(layer: Any, st: Structure, stack: np.ndarray, layout: str,
            calls: Callable[[int], None] | None = None) -> np.ndarray:
    """(B, *x.shape) copies -> (B, *out.shape), in one call when the structure allows."""
    if "x" in st.stacks:
        out = layer.forward(stack)[0]
        n = 1
    elif st.concatenates:
        out = split(np.asarray(layer.forward(merge(stack, layout))[0]), stack.shape[0], layout)
        n = 1
    else:
        out = np.stack([np.asarray(layer.forward(c)[0]) for c in stack])
        n = stack.shape[0]
    if calls is not None:
        calls(n)
    return np.asarray(out)


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


def stacks(layer: Any, tensor: str, x: np.ndarray, rng: np.random.Generator) -> bool:
    """Whether a stack of two perturbed copies of ``tensor`` computes bit for bit what each copy
    computes alone."""
    theta = x if tensor == "x" else np.asarray(layer.params[tensor], dtype=np.float64)
    if not np.issubdtype(theta.dtype, np.inexact):
        return False
    call: Callable[[np.ndarray], np.ndarray | None]
    if tensor == "x":
        call = lambda v: _forward(layer, v)  # noqa: E731
    else:
        call = lambda v: _forward(with_params(layer, {tensor: v}), x)  # noqa: E731
    copies = [_near(theta, rng), _near(theta, rng)]
    together = call(np.stack(copies))
    if together is None:       # most plugins' parameters: no call of each copy alone is needed
        return False
    alone = [call(c) for c in copies]
    if any(a is None for a in alone):
        return False
    alone_stack = np.stack(alone) if len({a.shape for a in alone}) == 1 else None
    return alone_stack is not None and together.shape == alone_stack.shape \
        and np.array_equal(together, alone_stack, equal_nan=True)


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


def concatenates(layer: Any, x: np.ndarray, layout: str, rng: np.random.Generator) -> bool:
    """Whether two copies of x laid along the batch axis give each copy's own output."""
    copies = np.stack([_near(x, rng), _near(x, rng)])
    together = _forward(layer, merge(copies, layout))
    if together is None:
        return False
    alone = [_forward(layer, c) for c in copies]
    if any(a is None for a in alone) or len({a.shape for a in alone}) != 1:
        return False
    expected = np.stack(alone)
    if together.ndim != expected.ndim - 1 or together.size != expected.size:
        return False
    try:
        got = split(together, 2, layout)
    except ValueError:
        return False
    if got.shape != expected.shape:
        return False
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-300)
    return bool(np.all(np.abs(got - expected) <= CONCAT_RTOL * scale))


def _bit_masks(n: int) -> list[np.ndarray]:
    """Index sets such that any two distinct indices of range(n) are split by one of them (the
    bits of the index, and their complements): a dependence of slice q' on index q ≠ q' is then
    always seen, not only with some probability."""
    q = np.arange(n)
    masks = []
    for bit in range(max(1, int(n - 1).bit_length())):
        on = (q >> bit) & 1 == 1
        masks += [on, ~on]
    return [m for m in masks if m.any() and not m.all()]


def independent_slices(call: Callable[[np.ndarray], np.ndarray | None], theta: np.ndarray, axis: int,
                       clean: np.ndarray, out_axis: int, rng: np.random.Generator) -> bool:
    """Whether index q of θ along ``axis`` reaches slice q of the output along ``out_axis`` alone:
    for index sets that split every pair, perturbing θ at the set leaves every output slice
    outside it bit-identical."""
    n = theta.shape[axis]
    if clean.shape[out_axis] != n:
        return False
    scale = max(1.0, float(np.abs(theta).max(initial=0.0)))
    shape = [1] * theta.ndim
    shape[axis] = n
    # one draw serves every index set: each set is a question of its own about the same move
    away = theta + 0.1 * scale * rng.standard_normal(theta.shape)
    for mask in _bit_masks(n):
        moved = np.where(mask.reshape(shape), away, theta)
        out = call(moved)
        if out is None or out.shape != clean.shape:
            return False
        if not np.array_equal(np.compress(~mask, out, axis=out_axis),
                              np.compress(~mask, clean, axis=out_axis)):
            return False
    return True


def separable(layer: Any, x: np.ndarray, layout: str, rng: np.random.Generator) -> bool:
    """Whether each example's output depends on that example's input alone."""
    clean = _forward(layer, x)
    if clean is None or clean.ndim < 1:
        return False
    return independent_slices(lambda v: _forward(layer, v), x, batch_axis(layout, x.ndim),
                              clean, batch_axis(layout, clean.ndim), rng)


def elementwise(layer: Any, x: np.ndarray, rng: np.random.Generator) -> bool:
    """Whether each output entry depends on the same input entry alone."""
    clean = _forward(layer, x)
    if clean is None or clean.shape != x.shape or x.size < 2:
        return False

    def call(v: np.ndarray) -> np.ndarray | None:
        out = _forward(layer, v.reshape(x.shape))
        return None if out is None else out.reshape(-1)

    return independent_slices(call, x.reshape(-1), 0, clean.reshape(-1), 0, rng)


def parameter_axes(layer: Any, tensor: str, x: np.ndarray, layout: str, rng: np.random.Generator
                   ) -> tuple[int, int] | None:
    """(axis of the parameter, axis of the output) such that the parameter's entries at index q
    along the first reach only slice q of the output along the second (a dense layer's W[:, q]
    and b[q] reach output feature q; a convolution's filter f reaches output channel f)."""
    theta = np.asarray(layer.params[tensor], dtype=np.float64)
    clean = _forward(layer, x)
    if clean is None or theta.ndim == 0:
        return None
    skip = batch_axis(layout, clean.ndim)

    def call(v: np.ndarray) -> np.ndarray | None:
        return _forward(with_params(layer, {tensor: v}), x)

    for a in range(theta.ndim):
        for b in range(clean.ndim):
            if b != skip and theta.shape[a] == clean.shape[b] and theta.shape[a] > 1 \
                    and independent_slices(call, theta, a, clean, b, rng):
                return a, b
    return None
