"""Composite layers: residual blocks and a transformer block, built from other registered layers.

A composite keeps its children's parameters in one flat dict of its own ("1.W", "2.gamma",
"proj.W"), so the checker perturbs them through the composite like any parameter; forward builds
views of the children with their parameters taken from ``self.params`` at call time. ``inner``
hands the checker those views and the inputs they received, so each child also gets its own
isolated rows (labels 3.1, 3.2, ...) and a bug inside a block is located inside it.
"""
from __future__ import annotations

import copy
from typing import Annotated, Any, ClassVar, Literal, Optional

import numpy as np
from annotated_types import Gt, MinLen

from . import activations  # noqa: F401  (registers the activations a transformer block names)
from .protocol import Layer, ShapeError, infer_output_shape
from .registry import lookup, register
from ._shapes import ShapedLayer, lift
from .attention import Attention
from .linear import Linear
from .norm import LayerNorm


class Composite(ShapedLayer):
    """Children run in residual blocks: each block maps h to skip(h) + f_k(...f_1(h)), where skip
    is the identity, or h·P (P = "proj.W") when the block changes the last axis.
    VJP per block: d through the children in reverse, plus dskip = dout (or dout·Pᵀ, dP = hᵀ·dout)."""

    layouts = ("rows",)
    #: as safe as the children: every child a transformer block builds is; a residual block
    #: around a child that is not says so when its children are set (see ``set_inner``)
    complex_safe = True
    inner_layers: list[Layer]
    blocks: list[list[int]]

    def __init__(self) -> None:
        super().__init__()
        self.inner_layers, self.blocks = [], []
        self.labels: list[str] = []

    def label(self, j: int) -> str:
        """The j-th child's row label suffix and parameter prefix: "1", "2", or "1a" for the
        `activation:` shorthand of inner entry 1, as at the top level."""
        return self.labels[j] if j < len(self.labels) else str(j + 1)

    @property
    def decay(self) -> tuple[str, ...]:
        """The weight tensors the network's L2 penalty covers: each child's (under its prefix)
        and the projections."""
        names = [f"{self.label(j)}.{name}" for j, child in enumerate(self.inner_layers)
                 for name in getattr(child, "decay", ())]
        names += [k for k in self.params if k.startswith("proj") and k.endswith(".W")]
        return tuple(names)

    # -- shapes --------------------------------------------------------------------------------
    def _walk(self, input_shape, visit=None):
        """Shapes through every block; ``visit(j, child, in_shape)`` sees each child in order.
        Returns (output shape, {block index: (in, out)} of blocks that need a projection)."""
        shape, projections = tuple(input_shape), {}
        for k, block in enumerate(self.blocks):
            s = shape
            for j in block:
                if visit is not None:
                    visit(j, self.inner_layers[j], s)
                s = infer_output_shape(self.inner_layers[j], s)
            if s != shape:
                if s[:-1] != shape[:-1]:
                    raise ShapeError(f"{self.type_name}: the block maps {shape} to {s}; a projection "
                                     "can only change the last axis")
                projections[k] = (shape[-1], s[-1])
            shape = s
        return shape, projections

    def output_shape(self, input_shape):
        return self._walk(input_shape)[0]

    def _proj_key(self, k):
        return "proj.W" if len(self.blocks) == 1 else f"proj{k + 1}.W"

    def param_shapes(self, input_shape):
        shapes: dict[str, tuple[int, ...]] = {}

        def visit(j, child, s):
            child.layout = self.layout
            for name, shp in child.param_shapes(s).items():
                shapes[f"{self.label(j)}.{name}"] = tuple(shp)

        _, projections = self._walk(input_shape, visit)
        for k, (n_in, n_out) in projections.items():
            shapes[self._proj_key(k)] = (n_in, n_out)
        return shapes

    def build(self, input_shape, rng):
        self.in_shape = tuple(input_shape)
        params: dict[str, Any] = {}

        def visit(j, child, s):
            child.layout = self.layout
            child.build(s, np.random.default_rng(int(rng.integers(2**62))))
            params.update({f"{self.label(j)}.{name}": v for name, v in child.params.items()})

        out, projections = self._walk(input_shape, visit)
        for k, (n_in, n_out) in projections.items():
            params[self._proj_key(k)] = rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)
        self.params = params
        return out

    # -- computation ---------------------------------------------------------------------------
    def views(self) -> list[Layer]:
        """The children with the parameters this composite holds now (perhaps perturbed)."""
        out = []
        for j, child in enumerate(self.inner_layers):
            view = copy.copy(child)
            prefix = f"{self.label(j)}."
            view.params = {k[len(prefix):]: v for k, v in self.params.items() if k.startswith(prefix)}
            out.append(view)
        return out

    def forward(self, x):
        views, steps, h = self.views(), [], x
        r = len(self.in_shape)
        for k, block in enumerate(self.blocks):
            block_in = h
            for j in block:
                out, c = views[j].forward(h)
                steps.append((j, h, c))
                h = out
            key = self._proj_key(k)
            skip = block_in @ lift(self.params[key], 2, r - 1) if key in self.params else block_in
            h = skip + h
        return h, (views, steps)

    def backward(self, dout, cache):
        views, steps = cache
        grads: dict[str, Any] = {}
        by_child = {j: (h, c) for j, h, c in steps}
        d = dout
        for k in reversed(range(len(self.blocks))):
            block = self.blocks[k]
            block_in = by_child[block[0]][0]
            key = self._proj_key(k)
            if key in self.params:
                P = self.params[key]
                n = P.shape[0]
                grads[key] = block_in.reshape(-1, n).T @ d.reshape(-1, P.shape[1])
                dskip = d @ P.T
            else:
                dskip = d
            for j in reversed(block):
                d, g = views[j].backward(d, by_child[j][1])
                grads.update({f"{self.label(j)}.{name}": v for name, v in g.items()})
            d = d + dskip
        return d, grads

    def inner(self, cache) -> list[tuple[str, Layer, np.ndarray]]:
        """(label suffix, child view with the parameters of this forward, the input it received)."""
        views, steps = cache
        return [(self.label(j), views[j], h) for j, h, _ in steps]


@register("residual")
class Residual(Composite):
    """Residual block y = x + f(x) around the inner `layers:` list, projected when widths differ.

    f = the inner `layers:` in sequence (any registered layers, written like the top-level
    ones); y = x·P + f(x) with a learned projection P (n_in, n_out), "proj.W", when f
    changes the last axis. Parameters are named by inner position: "1.W", "2.gamma", "1a.alpha"
(the `activation:` shorthand of entry 1), ...
    VJP: dx = dout (or dout·Pᵀ) + (backward through f of dout); dP = xᵀ·dout.
    The table shows the inner layers as rows 3.1, 3.2, ... under the block."""

    #: the option whose entries the planner resolves as inner layers (see config/plan.py)
    inner_option: ClassVar[str] = "layers"
    shapes = "(..., n) → (..., n')"

    def __init__(self, layers: Annotated[list[dict[str, Any]], MinLen(1)]) -> None:
        super().__init__()
        self.entries = layers

    def set_inner(self, children: list[Layer], labels: list[str]) -> None:
        """Called by the planner with the configured inner layers and their labels (it also sets
        ``inner_keypaths``, where each was written, to locate errors in them)."""
        for child in children:
            if not getattr(type(child), "probe_axes", False):
                raise ShapeError(f"`{child.type_name}` cannot sit inside a residual block: its "
                                 "forward does not accept leading probe axes (set probe_axes = True)")
        self.inner_layers, self.labels = list(children), list(labels)
        self.blocks = [list(range(len(children)))]
        if type(self).complex_safe and not all(getattr(type(c), "complex_safe", False) for c in children):
            self.__class__ = _refusing_complex_steps(type(self))


_REFUSING: dict[type, type] = {}


def _refusing_complex_steps(cls: type) -> type:
    """``cls`` with ``complex_safe = False`` and nothing else changed. The checker asks a layer's
    class whether complex steps may go through it, so a block that holds, say, a plugin taking
    np.abs must be an instance of a class that says no."""
    if cls not in _REFUSING:
        _REFUSING[cls] = type(cls.__name__, (cls,), {
            "complex_safe": False, "__doc__": cls.__doc__, "__module__": cls.__module__,
            "__qualname__": cls.__qualname__})
    return _REFUSING[cls]


@register("transformer_block")
class TransformerBlock(Composite):
    """Pre-norm transformer block: layernorm → attention → residual → layernorm → MLP → residual.

    h = x + attention(layernorm(x));
    y = h + linear₂(act(linear₁(layernorm(h)))). x (m, T, D) → (m, T, D); inner rows
    1 layernorm, 2 attention, 3 layernorm, 4 linear (hidden), 5 activation, 6 linear (D).
    Parameters "1.gamma", "2.Wq", ..., "6.b"; VJP: each residual block as in `residual`."""

    shapes = "(T, D) → (T, D)"

    def __init__(self, heads: Annotated[int, Gt(0)] = 1, hidden: Optional[Annotated[int, Gt(0)]] = None,
                 causal: bool = False, activation: Literal["gelu", "relu", "tanh", "swish"] = "gelu",
                 eps: Annotated[float, Gt(0)] = 1e-5) -> None:
        super().__init__()
        self.heads, self.hidden, self.causal, self.activation, self.eps = heads, hidden, causal, activation, eps
        self.blocks = [[0, 1], [2, 3, 4, 5]]

    def output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ShapeError(f"transformer_block needs a sequence (T, D) per example, got "
                             f"{tuple(input_shape)}")
        d = input_shape[1]
        if not self.inner_layers or self.inner_layers[-1].units != d:  # keep built children
            act = lookup(self.activation)
            self.inner_layers = [LayerNorm(self.eps), Attention(self.heads, self.causal),
                                 LayerNorm(self.eps), Linear(self.hidden or 4 * d), act(), Linear(d)]
        return super().output_shape(input_shape)

    def build(self, input_shape, rng):
        self.inner_layers = []
        self.output_shape(input_shape)
        return super().build(input_shape, rng)
