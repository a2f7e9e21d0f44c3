"""The windows of the built-in convolutions and pools, known by construction: grouping.py reads
each input entry from its windows, and structure.py measures no footprint for these layers (it
does for every other layer, built-in or not)."""
from __future__ import annotations

from typing import Any


def pool_windows(layer: Any) -> tuple[int, int] | None:
    """The kernel of a built-in pooling layer whose windows do not overlap (stride = kernel)."""
    from ..layers.pool import AvgPool2D, MaxPool2D

    for cls in (MaxPool2D, AvgPool2D):
        if isinstance(layer, cls) and type(layer).forward is cls.forward \
                and tuple(layer.stride) == tuple(layer.kernel) and layer.layout == "rows":
            return tuple(layer.kernel)
    return None


def conv_geometry(layer: Any) -> tuple | None:
    """(kernel, stride, dilation, padding) of a built-in convolution whose forward is the
    built-in's (a subclass that overrides only backward qualifies)."""
    from ..layers.conv import _Conv

    if isinstance(layer, _Conv) and type(layer).forward is _Conv.forward \
            and type(layer)._filter is _Conv._filter:
        return layer.kernel, layer.stride, layer.dilation, layer.padding
    return None


def windows_known(layer: Any, st: Any) -> bool:
    """Whether grouping.grouped_input groups the layer's input by windows it knows by construction
    (a built-in convolution that takes a stack of inputs, a built-in pool), so that structure.py
    measures no footprint for it (``st``: the layer's Structure)."""
    return pool_windows(layer) is not None or (conv_geometry(layer) is not None and "x" in st.stacks)
