"""What every part of the check shares: the frozen settings, and the state built from them (the
forward passes, the float64 reference, the tolerance and step)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .differences import resolve_step
from .forward import Forward, clean_forward, reference_forward
from .network import Network
from .structure import Structure, network_structures
from .tolerance import Tolerance, tolerance_for

DEFAULT_MEMORY = 256 * 1024 * 1024


@dataclass(frozen=True)
class CheckSettings:
    """How to check; built from the spec's `check:` and any command-line overrides."""

    method: str = "central"
    eps: float | str = "auto"
    mode: str = "full"               # full | sample | directional
    samples: int = 16                # entries per tensor in sample mode
    directions: int = 4              # random directions per tensor in directional mode
    pass_rtol: float | None = None
    warn_rtol: float | None = None
    #: bytes one batch of perturbed copies may take; larger tensors are checked in chunks
    max_memory: int = DEFAULT_MEMORY
    #: False evaluates one perturbed copy per call, even for layers that accept probe axes
    batched: bool = True
    #: keep every array checked in ConfigResult.arrays (for --dump)
    keep_arrays: bool = False
    #: called as progress(evaluations, what) after each batch of perturbed copies (for a
    #: progress display); never part of the results
    progress: Callable[[int, str], None] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_spec(cls, spec, **overrides: Any) -> "CheckSettings":
        c = spec.check
        values = {k: getattr(c, k) for k in ("method", "eps", "mode", "samples", "directions",
                                             "pass_rtol", "warn_rtol") if hasattr(c, k)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


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
        #: what each layer lets perturbed copies share, found on the real arrays (structure.py);
        #: empty when shortcuts are off
        self.structures: list[Structure] = network_structures(net, self.ref_layers, self.ref_acts) \
            if settings.batched else []
        self.keep("input", net.x)
        self.keep("targets", net.targets)
        for node in net.nodes:
            for name, value in node.layer.params.items():
                self.keep(f"params/{node.label}/{name}", value)

    def count(self, evaluations: int, what: str) -> None:
        """Every batch of perturbed copies evaluated: the measured cost of the check."""
        self.evaluations += evaluations

    def count_and_report(self, progress: Callable[[int, str], None]) -> Callable[[int, str], None]:
        def both(evaluations: int, what: str) -> None:
            self.count(evaluations, what)
            progress(evaluations, what)
        return both

    def keep(self, key: str, value: Any) -> None:
        if self.arrays is not None and value is not None:
            self.arrays[key] = np.array(value)
