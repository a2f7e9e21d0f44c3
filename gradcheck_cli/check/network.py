"""Building a planned network: parameters, inputs and targets drawn from the seed, in the spec's dtype."""
from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..layers.protocol import full_shape
from ..errors import GradcheckError, LayerRuntimeError
from ..config.plan import Plan, PlannedLayer, plan_network
from ..config.models import Spec

# Independent random streams per purpose, so that adding a layer never changes the input data.
STREAM_PARAMS, STREAM_INPUT, STREAM_TARGETS, STREAM_COTANGENT, STREAM_PROBES = range(5)


def rng_for(seed: int, stream: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, *key])


def cotangent(seed: int, key: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """The seeded upstream gradient G of the isolated check keyed ``key``: drawn here only, since
    the chain of upstream gradients reads its copies against the same G (factored.py)."""
    return rng_for(seed, STREAM_COTANGENT, *key).standard_normal(shape)


@dataclass
class Network:
    """A built network: configured layers with parameters, an input batch and targets."""

    plan: Plan
    x: np.ndarray
    targets: Any
    dtype: np.dtype

    @property
    def spec(self) -> Spec:
        return self.plan.spec

    @property
    def nodes(self) -> list[PlannedLayer]:
        return self.plan.nodes

    @property
    def loss(self) -> PlannedLayer:
        return self.plan.loss

    @property
    def batch(self) -> int:
        return self.spec.input.batch


def node_key(node: PlannedLayer) -> tuple[int, int]:
    """Seed key of a node: its `layers:` index, and 1 for an `activation:` shorthand."""
    return node.index, 1 if node.label.endswith("a") else 0


def build_network(spec_or_plan: Spec | Plan) -> Network:
    """Allocate parameters, input and targets for a spec (or an already resolved plan)."""
    plan = spec_or_plan if isinstance(spec_or_plan, Plan) else plan_network(spec_or_plan)
    spec = plan.spec
    dtype = np.dtype(spec.dtype)
    for node in plan.nodes:
        _build_node(plan, node, dtype)
    m = spec.input.batch
    shape = tuple(spec.input.shape)
    full = full_shape(spec.layout, shape, m)
    if spec.input.vocab is not None:  # token indices: integer, never cast to the float dtype
        x = rng_for(spec.seed, STREAM_INPUT).integers(0, spec.input.vocab, size=full)
    else:
        x = rng_for(spec.seed, STREAM_INPUT).standard_normal(full).astype(dtype)
    loss = plan.loss.layer
    loss.build(plan.loss.input_shape, rng_for(spec.seed, STREAM_PARAMS, 0, 0))
    targets = loss.targets(plan.loss.input_shape, m, rng_for(spec.seed, STREAM_TARGETS))
    if np.issubdtype(np.asarray(targets).dtype, np.floating):
        targets = np.asarray(targets, dtype=dtype)
    return Network(plan, x, targets, dtype)


def _build_node(plan: Plan, node: PlannedLayer, dtype: np.dtype) -> None:
    layer = node.layer
    rng = rng_for(plan.spec.seed, STREAM_PARAMS, *node_key(node))
    try:
        out = layer.build(node.input_shape, rng)
    except GradcheckError:
        raise
    except Exception as exc:
        raise runtime_error(plan, node, "build", exc) from None
    if out is not None and tuple(out) != node.output_shape:
        raise plan.spec.doc.error(f"{node.type_name}.build returned output shape {tuple(out)}, but "
                                  f"output_shape said {node.output_shape}", node.keypath)
    params = getattr(layer, "params", None)
    if not isinstance(params, dict):
        raise plan.spec.doc.error(f"{node.type_name}.build must set self.params to a dict of arrays, "
                                  f"got {type(params).__name__}", node.keypath)
    built = {}
    for name, value in params.items():
        arr = np.asarray(value)
        if not np.issubdtype(arr.dtype, np.number):
            raise plan.spec.doc.error(f"{node.type_name}.params[{name!r}] is not numeric "
                                      f"({arr.dtype})", node.keypath)
        built[name] = arr.astype(dtype)
    layer.params = built
    node.param_shapes = {k: v.shape for k, v in built.items()}


def runtime_error(plan: Plan, node: PlannedLayer, what: str, exc: BaseException) -> LayerRuntimeError:
    """A layer's exception as a located error, naming the line of the layer's code that raised."""
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        f = frames[-1]
        where = f" (at {f.filename}:{f.lineno})"
    doc = plan.spec.doc
    line, col = doc.locate(node.keypath)
    from ..config.document import format_keypath

    return LayerRuntimeError(f"{node.type_name}.{what} raised {type(exc).__name__}: {exc}{where}",
                             file=doc.path, line=line, col=col, key=format_keypath(node.keypath))
