"""What every part of the check shares: the state built from the frozen settings (settings.py):
the forward passes, the float64 reference, the tolerance and step."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..results import TensorCost
from .differences import evaluations_per_probe, resolve_step
from .forward import Forward, clean_forward, reference_forward
from .network import Network
from .settings import CheckSettings
from .structure import Structure, network_structures
from .tolerance import Tolerance, tolerance_for


class CheckContext:
    """The state every part of a check shares, complete when built: the settings, the tolerance
    and step they imply, the clean forward pass and the float64 reference. What grows during the
    check: the evaluations counted, the arrays kept for --dump."""

    def __init__(self, net: Network, settings: CheckSettings) -> None:
        self.net, self.settings = net, settings
        self.tol: Tolerance = tolerance_for(net.spec.dtype, settings.pass_rtol, settings.warn_rtol)
        self.eps: float = resolve_step(settings.eps, settings.method)
        self.arrays: dict[str, np.ndarray] | None = {} if settings.keep_arrays else None
        self.evaluations = 0
        self.clean: Forward = clean_forward(net)
        ref = reference_forward(net, self.clean)
        self.ref_layers, self.ref_acts = ref.layers, ref.acts
        self.ref_loss_value, self.ref_targets = ref.loss_value, ref.targets
        #: plugin layers whose probe_axes claim failed
        self.untrusted: list[str] = ref.untrusted
        #: perturbed copies evaluated (the measured cost), and entries (or directions) probed
        #: times the method's offsets: what the estimate counts, what a check without shortcuts
        #: evaluates
        self.probes = 0
        #: per tensor check (its progress label): evaluations made, and the minimum with the
        #: examples that share a call in it
        self.made: dict[str, int] = {}
        self.minimum: dict[str, tuple[int, int]] = {}
        #: what each layer lets perturbed copies share, found on the real arrays (structure.py);
        #: empty when shortcuts are off
        self.structures: list[Structure] = network_structures(net, self.ref_layers, self.ref_acts) \
            if settings.batched else []
        #: numeric d loss/d a_k from the top down (factored.chained_upstream), once computed
        self.upstream: dict[int, np.ndarray] | None = None
        #: (layer index, tensor) -> {(entry, value): ⟨layer output, g⟩}: what the isolated check's
        #: copies of a parameter give against the chained g, for the factored end-to-end row
        self.twins: dict[tuple[int, str], dict] = {}
        self.keep("input", net.x)
        self.keep("targets", net.targets)
        for node in net.nodes:
            for name, value in node.layer.params.items():
                self.keep(f"params/{node.label}/{name}", value)

    def count(self, evaluations: int, what: str) -> None:
        """Every batch of perturbed copies evaluated: the measured cost of the check."""
        self.evaluations += evaluations
        self.made[what] = self.made.get(what, 0) + evaluations

    def needs(self, what: str, probes: int, examples_per_call: int = 1) -> None:
        """The fewest evaluations the check ``what`` needs: the method's offsets for each of
        ``probes`` entries (or directions), of one example where ``examples_per_call`` examples
        are verified to be independent (one call serves them all)."""
        per_call = max(1, examples_per_call)
        self.minimum[what] = (evaluations_per_probe(self.settings.method) * -(-probes // per_call),
                              per_call)

    def tensor_costs(self) -> list[TensorCost]:
        return [TensorCost(what, self.made.get(what, 0), minimum, per_call)
                for what, (minimum, per_call) in self.minimum.items()]

    def count_and_report(self, progress: Callable[[int, str], None]) -> Callable[[int, str], None]:
        def both(evaluations: int, what: str) -> None:
            self.count(evaluations, what)
            progress(evaluations, what)
        return both

    def keep(self, key: str, value: Any) -> None:
        if self.arrays is not None and value is not None:
            self.arrays[key] = np.array(value)
