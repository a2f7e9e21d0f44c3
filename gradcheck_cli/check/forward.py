"""The forward passes a check starts from: the network's own, in its dtype (every layer's output
checked), and the float64 reference through float64 copies of the layers. Nothing here mutates
the network."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config.plan import PlannedLayer
from ..errors import GradcheckError, LayerRuntimeError
from ..layers.protocol import full_shape
from ..layers.registry import is_builtin
from .evaluators import verify_probe_axes, with_params
from .network import STREAM_PROBES, Network, rng_for, runtime_error


def differentiable(x: Any) -> bool:
    return np.issubdtype(np.asarray(x).dtype, np.inexact)


def as_f64(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) if differentiable(x) else x


@dataclass
class Forward:
    acts: list[np.ndarray]          # input of node i is acts[i]; acts[-1] feeds the loss
    caches: list[Any]
    loss_value: float = 0.0
    loss_cache: Any = None
    mutated: dict[str, str] = field(default_factory=dict)   # label -> what a layer overwrote
    #: label -> how a layer of a float32 network computed in a wider dtype
    upcast: dict[str, str] = field(default_factory=dict)


def clean_forward(net: Network) -> Forward:
    """The network's own forward in its dtype, checking what every layer returns."""
    plan, m = net.plan, net.batch
    acts, caches, mutated, upcast = [net.x], [], {}, {}
    for node in net.nodes:
        # each layer gets its own copy, so that one that writes into its input cannot corrupt
        # the previous layer's output or cache (and so the verdict stays on the right row)
        given = acts[-1].copy()
        try:
            result = node.layer.forward(given)
        except GradcheckError:  # ours (a time limit, a located error): as it is
            raise
        except (Exception, SystemExit) as exc:  # plugin code may call sys.exit
            raise runtime_error(plan, node, "forward", exc) from None
        if not np.array_equal(given, acts[-1], equal_nan=True):
            mutated[node.label] = "forward modifies its input x in place"
        out = _unpack(plan, node, result, full_shape(net.spec.layout, node.output_shape, m))
        if net.dtype == np.float32 and given.dtype == np.float32 and out.dtype.itemsize > 4:
            upcast[node.label] = upcast_note(out.dtype)
        acts.append(out)
        caches.append(result[1])
    loss = net.loss.layer
    if hasattr(loss, "validate_input"):
        try:
            loss.validate_input(acts[-1])
        except LayerRuntimeError as exc:
            raise net.spec.doc.error(exc.message, ("loss",)) from None
    try:
        value, lcache = loss.forward(acts[-1], net.targets)
    except GradcheckError:  # ours (a time limit, a located error): as it is
        raise
    except (Exception, SystemExit) as exc:  # plugin code may call sys.exit
        raise runtime_error(plan, net.loss, "forward", exc) from None
    if np.ndim(value) != 0 or not np.isfinite(value):
        raise net.spec.doc.error(f"{net.loss.type_name}.forward returned {value!r:.60} for the loss; "
                                 "expected one finite number", ("loss",))
    return Forward(acts, caches, float(value), lcache, mutated, upcast)


def upcast_note(dtype: np.dtype) -> str:
    """Why a float32 check of a layer that computes in a wider dtype is not a float32 check."""
    return (f"the check ran in {dtype}: forward returns {dtype} from a float32 input, so this layer "
            "(and every layer after it) was not checked in float32; return out.astype(x.dtype) "
            "if float32 is what you mean to test")


def _unpack(plan, node: PlannedLayer, result: Any, expected: tuple[int, ...]) -> np.ndarray:
    doc = plan.spec.doc
    if not (isinstance(result, tuple) and len(result) == 2):
        raise doc.error(f"{node.type_name}.forward must return (out, cache), got "
                        f"{type(result).__name__}", node.keypath)
    out = result[0]
    if not isinstance(out, np.ndarray):
        raise doc.error(f"{node.type_name}.forward returned out of type {type(out).__name__}; "
                        "expected a numpy array", node.keypath)
    if out.shape != expected:
        raise doc.error(f"{node.type_name}.forward returned out of shape {out.shape}; expected "
                        f"{expected}", node.keypath)
    if not np.issubdtype(out.dtype, np.inexact):
        raise doc.error(f"{node.type_name}.forward returned an array of dtype {out.dtype}; expected "
                        "floating point numbers", node.keypath)
    if not np.all(np.isfinite(out)):
        raise doc.error(f"{node.type_name}.forward returned NaN or Inf "
                        f"({int(np.count_nonzero(~np.isfinite(out)))} entries): the first layer "
                        "where the forward pass stops being finite", node.keypath)
    return out


@dataclass(frozen=True)
class Reference:
    """The float64 side: copies of every layer in float64, their clean forward, the loss value.
    Plugin layers whose probe_axes claim failed are evaluated one copy at a time (``untrusted``)."""

    layers: list[Any]
    acts: list[np.ndarray]
    loss_value: float
    targets: Any
    untrusted: list[str]


def reference_forward(net: Network, clean: Forward) -> Reference:
    """float64 copies of every layer, and the clean float64 forward through them."""
    layers = [with_params(n.layer, {k: as_f64(v) for k, v in n.layer.params.items()})
              for n in net.nodes]
    untrusted = []
    rng = rng_for(net.spec.seed, STREAM_PROBES, 999)
    for k, (node, layer) in enumerate(zip(net.nodes, layers)):
        if getattr(layer, "probe_axes", False) and not is_builtin(type(layer)) \
                and not verify_probe_axes(layer, as_f64(clean.acts[k]), rng):
            layer.probe_axes = False  # this copy only: evaluate it one perturbed copy at a time
            untrusted.append(node.label)
    targets = as_f64(np.asarray(net.targets))
    acts = [as_f64(net.x)]
    for layer in layers:
        acts.append(layer.forward(acts[-1].copy())[0])  # a copy: see clean_forward
    loss_value = float(np.real(net.loss.layer.forward(acts[-1], targets)[0]))
    return Reference(layers, acts, loss_value, targets, untrusted)
