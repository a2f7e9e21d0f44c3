"""Which tensors of which built-in layers the exact shortcuts (shortcuts.py) serve, decided from
the layers alone: the resource guard (budget.py) sizes those tensors' batches by it before any
array exists, and the checker by the same rule, so that the estimate is what the check does."""
from __future__ import annotations

from typing import Any

from ..layers.activations import Elementwise
from ..layers.dense import Dense
from ..layers.softmax import Softmax


def is_(layer: Any, cls: type) -> bool:
    """Whether ``layer`` computes what ``cls`` does (a subclass that keeps the forward, e.g. a
    plugin overriding only backward, qualifies)."""
    return isinstance(layer, cls) and type(layer).forward is cls.forward


def supports(layer: Any, tensor: str, isolated: bool = False) -> bool:
    """Whether the shortcuts serve ``tensor`` of ``layer`` (``isolated``: its isolated check,
    where f is ⟨out, G⟩; else the layer and all after it, then the loss)."""
    if is_(layer, Elementwise):
        return isolated and tensor == "x"
    return is_(layer, Dense) and tensor in ("x", "W", "b") and layer.layout in ("rows", "columns")


def columns_through(layers: list[Any], isolated: bool) -> int:
    """How many activations after a dense layer's input a probe of its W or b holds as one
    changed feature column, not whole (shortcuts._through): its output and the outputs of the
    elementwise layers after it, unless what follows them takes whole copies: a layer other than
    a dense one of the same layout, or the loss, which gets the copies materialized. In
    isolation (``layers`` the dense layer alone), ⟨out, G⟩ is read off the column itself."""
    k = 1
    while k < len(layers) and is_(layers[k], Elementwise):
        k += 1
    if k == len(layers):
        return k if isolated else k - 1
    rank_one = is_(layers[k], Dense) and layers[k].layout == layers[0].layout
    return k if rank_one else k - 1


def per_example(layer: Any) -> bool:
    """Whether output row s of ``layer`` depends on input row s alone, computed the same way for
    a batch of one (rows layout): a perturbed input then stays in one example's row."""
    return any(is_(layer, cls) for cls in (Dense, Elementwise, Softmax)) and layer.layout == "rows"


def rows_through(layers: list[Any]) -> int:
    """How many outputs, from layers[0]'s on, a probe of the dense layer layers[0]'s input holds
    as one changed row (shortcuts._start_input, Rows.through): none in columns layout, where the
    first output is a whole copy already."""
    if layers[0].layout != "rows":
        return 0
    k = 1
    while k < len(layers) and per_example(layers[k]):
        k += 1
    return k
