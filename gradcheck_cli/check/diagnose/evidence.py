"""What the diagnosis of a failing gradient may use, gathered from the check state: the upstream
gradient, the layer's input and output, the config's quantities and axes, the layer's other
gradients, and the candidates that cost finite differences or extra backward calls (lazily:
only a gradient that nothing cheaper explains pays for them)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...layers.reference import shapes_text
from ..evaluators import with_params
from .candidates import (stride_candidates, transformed_candidates, transposed_cache_candidates,
                         wrong_cache_candidates)
from .quantities import config_quantities, layer_options, tensor_axes

@dataclass(frozen=True)
class Setting:
    """What a diagnosis reads of the check around one gradient: the network's float64
    activations (other layers' inputs are the wrong-cache candidates), its targets, the step and
    method of the differences, the layout, the batch size and the L2 coefficient."""

    acts: tuple[np.ndarray, ...]
    targets: Any
    step: float
    method: str
    layout: str
    batch: int
    l2: float


def layer_evidence(at: Setting, ref_layer: Any, tensor: str, x64: np.ndarray,
                   out64: np.ndarray, g64: np.ndarray, analytic: dict[str, Any] | None = None,
                   layer: Any = None) -> dict[str, Any]:
    """The Context fields for a failing isolated gradient of one layer's ``tensor``; the
    wrong-cache candidates (gradients at other layers' inputs of the same shape), the
    flipped-kernel and stride-1 ones cost differences, the repairs backward calls: all lazy. Differences take the checker's step
    and method (the float64 reference's, whatever the config's dtype)."""
    others = {f"layer input {j}": a for j, a in enumerate(at.acts)
              if a.shape == x64.shape and not np.array_equal(a, x64)}
    float_x = np.issubdtype(x64.dtype, np.floating)
    step, method = at.step, at.method

    def forward(xx, pp):
        return with_params(ref_layer, pp).forward(xx)[0]

    def neighbours():
        return wrong_cache_candidates(forward, ref_layer.params, tensor, g64, others, step,
                                      method) if float_x else {}

    def transformed():
        if not float_x:
            return {}
        return {**transformed_candidates(forward, ref_layer.params, tensor, g64, x64, step, method),
                **stride_candidates(ref_layer, tensor, g64, x64, step, method)}

    def repairs():
        try:
            cache = ref_layer.forward(x64)[1]
        except Exception:  # plugin code: a forward that breaks now has no repairs to offer
            return {}
        return transposed_cache_candidates(ref_layer.backward, cache, tensor, g64)

    source = layer if layer is not None else ref_layer
    options = layer_options(source)
    text = shapes_text(type(source))
    layout = at.layout
    axes = tuple(tensor_axes(text, x64.shape, layout)) if x64.ndim else ()
    out_text = text.split("→", 1)[1] if "→" in text else ""
    out_axes = tuple(tensor_axes(out_text, out64.shape, layout)) if out64.ndim else ()
    quantities = tuple(config_quantities(options, list(axes), at.batch, at.l2))
    theta = x64 if tensor == "x" else ref_layer.params[tensor]
    grads = {k: v for k, v in (analytic or {}).items() if k != tensor and v is not None}
    return dict(cotangent=g64, layer_input=x64 if float_x else None, layer_output=out64,
                neighbours=neighbours, quantities=quantities, axes=axes, out_axes=out_axes,
                theta=theta, params=dict(ref_layer.params), others=grads, options=options,
                layer_input_raw=x64, transformed=transformed, repairs=repairs)


def loss_evidence(at: Setting, loss: Any, x64: np.ndarray) -> dict[str, Any]:
    """The Context fields for a failing loss gradient: its input, targets and quantities."""
    options = layer_options(loss)
    axes = tuple(tensor_axes("", x64.shape, at.layout))
    return dict(layer_input=x64, targets=at.targets, options=options, axes=axes, theta=x64,
                quantities=tuple(config_quantities(options, list(axes), at.batch, at.l2)))
