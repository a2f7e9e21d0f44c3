"""The layer protocol: what a built-in or plugin layer provides, and nothing the checker keeps on it.

A layer is configured by keyword options (validated from its ``__init__`` signature), then
``build(input_shape, rng) -> output_shape`` creates ``self.params`` (shapes per example, without the
batch axis). After that, ``forward`` and ``backward`` are pure functions of their arguments and
``self.params``: nothing from a forward pass is stored on ``self``, because the checker calls forward
thousands of times with perturbed inputs and parameters.

Batch axis convention (``self.layout``):
  rows     x is (m, *shape), as in NumPy/PyTorch;
  columns  x is (*shape, m) with a 1-D shape, as in the deeplearning.ai course (a is a column vector).
Built-in layers (``probe_axes = True``) also accept any extra leading axes, ``(*probe, m, ...)``,
on their input and on their parameters, which lets the checker push many perturbed copies through
one call.
"""
from __future__ import annotations

from typing import Any, ClassVar

from ..errors import ShapeError

__all__ = ["Layer", "Loss", "ShapeError"]


class Layer:
    """Base class of every layer. Subclasses set options in ``__init__`` and implement forward/backward."""

    kind: ClassVar[str] = "layer"
    type_name: ClassVar[str] = ""
    #: forward accepts (*probe, m, ...) inputs and parameters with the same leading probe axes.
    probe_axes: ClassVar[bool] = False
    #: forward stays analytic for complex inputs (comparisons on x.real, no abs/maximum), so the
    #: complex-step method may differentiate it.
    complex_safe: ClassVar[bool] = False
    #: layouts the layer implements.
    layouts: ClassVar[tuple[str, ...]] = ("rows", "columns")
    #: parameter names the network's L2 penalty applies to.
    decay: ClassVar[tuple[str, ...]] = ()
    layout: str = "rows"

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    # -- shapes ---------------------------------------------------------------------------------
    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-example output shape; raise ShapeError when the input cannot feed this layer."""
        raise NotImplementedError

    def param_shapes(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """Per-tensor parameter shapes, known before anything is allocated."""
        return {}

    def init_params(self, input_shape: tuple[int, ...], rng: Any) -> dict[str, Any]:
        return {}

    def build(self, input_shape: tuple[int, ...], rng: Any) -> tuple[int, ...]:
        """Create ``self.params`` for this per-example input shape; return the output shape."""
        self.params = self.init_params(tuple(input_shape), rng)
        return tuple(self.output_shape(tuple(input_shape)))

    # -- computation ------------------------------------------------------------------------------
    def forward(self, x: Any) -> tuple[Any, Any]:
        """Return ``(out, cache)``; the cache holds whatever backward needs."""
        raise NotImplementedError

    def backward(self, dout: Any, cache: Any) -> tuple[Any, dict[str, Any]]:
        """Return ``(dx, grads)``: the vector-Jacobian products, ``grads`` keyed exactly like ``params``."""
        raise NotImplementedError

    # -- helpers for built-ins ---------------------------------------------------------------------
    def feature_axis(self) -> int:
        return -1 if self.layout == "rows" else -2

    def __repr__(self) -> str:
        return f"<{self.type_name or type(self).__name__} layer>"


class Loss(Layer):
    """Base class of losses: a scalar per probe, the mean over the batch of a per-example loss.

    ``forward(x, y) -> (value, cache)`` with value of shape ``x.shape[:-(rank+1)]`` (the probe axes);
    ``backward(dvalue, cache) -> dx``. The loss's backward carries the 1/m of the batch mean: every
    backward in the network returns the exact vector-Jacobian product.
    """

    kind: ClassVar[str] = "loss"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return ()

    def targets(self, input_shape: tuple[int, ...], batch: int, rng: Any) -> Any:
        """Targets that suit this loss for a batch, laid out like the network output."""
        raise NotImplementedError

    def batch_size(self, x: Any) -> int:
        rank = len(self.input_shape)
        return x.shape[-1] if self.layout == "columns" else x.shape[-(rank + 1)]

    def build(self, input_shape: tuple[int, ...], rng: Any) -> tuple[int, ...]:
        self.input_shape = tuple(input_shape)
        self.check_input(self.input_shape)
        self.params = {}
        return ()

    def check_input(self, input_shape: tuple[int, ...]) -> None:
        """Raise ShapeError when the network output cannot feed this loss."""

    def forward(self, x: Any, y: Any) -> tuple[Any, Any]:  # type: ignore[override]
        raise NotImplementedError

    def backward(self, dvalue: Any, cache: Any) -> Any:  # type: ignore[override]
        raise NotImplementedError


def infer_output_shape(layer: Layer, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The layer's output shape: from ``output_shape`` when it has one, else by building it."""
    if overrides(layer, "output_shape"):
        out = layer.output_shape(tuple(in_shape))
    else:
        import numpy as np  # a plugin that only says its shape by building

        out = layer.build(tuple(in_shape), np.random.default_rng(0))
    if not isinstance(out, (tuple, list)) or not all(isinstance(d, int) and d > 0 for d in out):
        raise ShapeError(f"{layer.type_name}: the output shape must be a tuple of positive ints, got {out!r}")
    return tuple(out)


def overrides(layer: Layer, method: str) -> bool:
    """Whether the layer's class defines ``method`` itself rather than inheriting the protocol's."""
    impl = getattr(type(layer), method, None)
    return impl is not None and impl is not getattr(Layer, method)


def full_shape(layout: str, shape: tuple[int, ...], batch: int) -> tuple[int, ...]:
    """A per-example shape with the batch axis where the layout puts it: last in columns
    (the course's (n, m)), first in rows ((m, n))."""
    return (*shape, batch) if layout == "columns" else (batch, *shape)
