"""What the parts of a check share, each part complete when built, and passed only to the code that
reads it:

- ``Differencing``: how a tensor is differenced and judged (the frozen settings, the step and
  tolerance they imply, the seed, dtype, layout and batch);
- ``Reference``: the float64 reference network at its clean point (layers, activations, targets,
  loss value) and what each layer lets perturbed copies share (structure.py);
- ``Ledger``: what the check counts as it goes (evaluations, the minimum per tensor) and the
  arrays it keeps for --dump;
- ``Memo``: what one check computes for another (the chained numeric dL/da of the layer outputs,
  the parameter copies' values against it).

``CheckContext`` builds them all from the network and the settings.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..results import TensorCost
from .budget import tensor_check_bytes
from .copies import Kept
from .differences import EvaluateEntries, evaluations_per_probe, resolve_step
from .forward import Forward, clean_forward, reference_forward
from .network import Network
from .settings import CheckSettings
from .structure import Structure, network_structures
from .tolerance import Tolerance, tolerance_for
from .twins import with_twins


@dataclass(frozen=True)
class Differencing:
    """How one tensor is differenced and judged."""

    settings: CheckSettings
    eps: float                       # the step h of the method (scaled per entry by max(1, |θ|))
    tol: Tolerance
    seed: int
    dtype: str                       # the config's dtype (the reference is float64)
    layout: str
    batch: int

    @classmethod
    def of(cls, net: Network, settings: CheckSettings) -> "Differencing":
        return cls(settings, resolve_step(settings.eps, settings.method),
                   tolerance_for(net.spec.dtype, settings.pass_rtol, settings.warn_rtol),
                   net.spec.seed, net.spec.dtype, net.spec.layout, net.batch)


@dataclass(frozen=True)
class Reference:
    """The float64 reference network at its clean point, and each layer's verified structure
    (empty when shortcuts are off)."""

    net: Network
    layers: list[Any]
    acts: list[np.ndarray]
    targets: Any
    loss_value: float
    structures: list[Structure]


class Ledger:
    """What a check counts as it runs, and the arrays it keeps for --dump."""

    def __init__(self, per_probe: int, keep_arrays: bool = False,
                 progress: Callable[[int, str], None] | None = None) -> None:
        #: the method's evaluations per entry probed (2 for central differences)
        self.per_probe = per_probe
        #: perturbed copies evaluated (the measured cost), and entries (or directions) probed
        #: times the method's offsets: what the estimate counts, what a check without shortcuts
        #: evaluates
        self.evaluations = 0
        self.probes = 0
        #: per tensor check (its progress label): evaluations made, and the minimum with the
        #: examples that share a call in it
        self.made: dict[str, int] = {}
        self.minimum: dict[str, tuple[int, int]] = {}
        #: per tensor check, the entries (or directions) it probes and its largest batch of
        #: copies by the memory model (bytes: the copies made times what one takes), the
        #: figures the batches were cut by
        self.probed: dict[str, int] = {}
        self.batches: dict[str, int] = {}
        self.progress = progress
        self.arrays: dict[str, np.ndarray] | None = {} if keep_arrays else None

    def count(self, evaluations: int, what: str, nbytes: int = 0) -> None:
        """Every batch of perturbed copies evaluated: the measured cost of the check, and what
        the batch holds by the memory model (``nbytes``)."""
        self.evaluations += evaluations
        self.made[what] = self.made.get(what, 0) + evaluations
        self.batches[what] = max(self.batches.get(what, 0), nbytes)

    def metered(self, evaluate: EvaluateEntries, what: str, per_probe: int,
                probed: bool = False) -> EvaluateEntries:
        """``evaluate`` counting each batch: the copies it made (an evaluator that puts several
        probes in one copy says how many, ``copies``), what they hold by the memory model
        (``per_probe`` for each probe evaluated: one that recalls probes from another check's
        copies says how many it did not, ``evaluated``, and one that holds more than its copies
        in a call says how much, ``extra_bytes``), and with ``probed`` the entries probed and
        the progress display."""
        def counted(idx: np.ndarray, values: np.ndarray) -> np.ndarray:
            before = getattr(evaluate, "copies", None)
            fresh = getattr(evaluate, "evaluated", None)
            out = evaluate(idx, values)
            made = idx.size if before is None else evaluate.copies - before
            probes = idx.size if fresh is None else evaluate.evaluated - fresh
            self.count(made, what, max(probes * per_probe, getattr(evaluate, "extra_bytes", 0)))
            if probed:
                self.advance(idx.size, what)
            return out

        if hasattr(evaluate, "schedule"):
            counted.schedule = evaluate.schedule  # type: ignore[attr-defined]
        return counted

    def advance(self, probes: int, what: str) -> None:
        """``probes`` entries probed by the check ``what``: what the estimate and the progress
        display count."""
        self.probes += probes
        if self.progress is not None:
            self.progress(probes, what)

    def held(self) -> tuple[int, str]:
        """The largest tensor check by the memory model (budget.tensor_check_bytes, in bytes)
        and its label: what the batches the check made hold, with the values gathered, or the
        differences and verdict of its entries."""
        return max(((tensor_check_bytes(self.batches.get(what, 0), n, n * self.per_probe), what)
                    for what, n in self.probed.items()), default=(0, ""))

    def needs(self, what: str, probes: int, examples_per_call: int = 1) -> None:
        """The fewest evaluations the check ``what`` needs: the method's offsets for each of
        ``probes`` entries (or directions), of one example where ``examples_per_call`` examples
        are verified to be independent (one call serves them all)."""
        per_call = max(1, examples_per_call)
        self.minimum[what] = (self.per_probe * -(-probes // per_call), per_call)
        self.probed[what] = probes

    def tensor_costs(self) -> list[TensorCost]:
        return [TensorCost(what, self.made.get(what, 0), minimum, per_call)
                for what, (minimum, per_call) in self.minimum.items()]

    def keep(self, key: str, value: Any) -> None:
        if self.arrays is not None and value is not None:
            self.arrays[key] = np.array(value)


@dataclass
class Memo:
    """What one check computes for another."""

    #: numeric d loss/d a_k from the top down (factored.chained_upstream), once computed
    upstream: dict[int, np.ndarray] | None = None
    #: (layer index, tensor) -> copies.Kept: what one check's copies of a tensor gave against the
    #: weights of the check that comes later: a parameter's and the network input's isolated
    #: copies against the chained g (for the factored end-to-end row), a hidden layer's input's
    #: copies in the chain against that layer's isolated G (for its isolated row)
    twins: dict[tuple[int, str], Kept] = field(default_factory=dict)
    #: layer index -> the recurrent layer's scan against the chained g (recurrence.Scan), or None
    scans: dict[int, Any] = field(default_factory=dict)

    def kept(self, i: int, tensor: str, theta: np.ndarray) -> Kept:
        """The copies.Kept of layer i's tensor, made on first use."""
        if (i, tensor) not in self.twins:
            self.twins[(i, tensor)] = Kept(theta)
        return self.twins[(i, tensor)]


class CheckContext:
    """Every part of one check, built from the network and the settings: the clean forward pass
    (in the config's dtype), the float64 reference, how to difference, the ledger and the memo."""

    def __init__(self, net: Network, settings: CheckSettings) -> None:
        self.net, self.settings = net, settings
        self.how = Differencing.of(net, settings)
        self.clean: Forward = clean_forward(net)
        ref = reference_forward(net, self.clean)
        if settings.batched and settings.method != "complex":
            ref = with_twins(ref, net)
        structures = network_structures(net, ref.layers, ref.acts) if settings.batched else []
        self.ref = Reference(net, ref.layers, ref.acts, ref.targets, ref.loss_value, structures)
        #: plugin layers whose probe_axes claim failed
        self.untrusted: list[str] = ref.untrusted
        self.ledger = Ledger(evaluations_per_probe(settings.method), settings.keep_arrays,
                             settings.progress)
        self.memo = Memo()
        self.ledger.keep("input", net.x)
        self.ledger.keep("targets", net.targets)
        for node in net.nodes:
            for name, value in node.layer.params.items():
                self.ledger.keep(f"params/{node.label}/{name}", value)

