"""What every part of the check shares: the settings, the forward passes, the float64 reference."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .network import Network
from .tolerance import Tolerance

DEFAULT_MEMORY = 256 * 1024 * 1024


@dataclass
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


def full_shape(layout: str, shape: tuple[int, ...], batch: int) -> tuple[int, ...]:
    return (*shape, batch) if layout == "columns" else (batch, *shape)


@dataclass
class Forward:
    acts: list[np.ndarray]          # input of node i is acts[i]; acts[-1] feeds the loss
    caches: list[Any]
    loss_value: float = 0.0
    loss_cache: Any = None
    mutated: dict[str, str] = field(default_factory=dict)   # label -> what a layer overwrote
    #: label -> how a layer of a float32 network computed in a wider dtype
    upcast: dict[str, str] = field(default_factory=dict)


@dataclass
class CheckContext:
    net: Network
    settings: CheckSettings
    tol: Tolerance
    eps: float
    clean: Forward = field(init=False)
    ref_layers: list[Any] = field(init=False)
    ref_acts: list[np.ndarray] = field(init=False)
    ref_loss_value: float = field(init=False)
    ref_targets: Any = field(init=False)
    arrays: dict[str, np.ndarray] | None = None
    untrusted: list[str] = field(default_factory=list)
    evaluations: int = 0   # plugin layers whose probe_axes claim failed

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


def differentiable(x: Any) -> bool:
    return np.issubdtype(np.asarray(x).dtype, np.inexact)


def as_f64(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) if differentiable(x) else x

