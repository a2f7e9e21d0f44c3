"""How a check runs: the frozen settings, from a config's `check:` and a caller's choices.

Kept apart from the check state (state.py), which needs numpy and the forward passes: the run
pipeline makes settings, and the resource guard reads them, before any of that is imported.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Collection

DEFAULT_MEMORY = 256 * 1024 * 1024

#: The settings a config's `check:` may give (setting -> its key under `check:`); a caller's
#: choice of one wins over the config's.
SPEC_FIELDS = {"method": "method", "eps": "eps", "mode": "mode", "samples": "samples",
               "directions": "directions", "pass_rtol": "pass_rtol", "warn_rtol": "warn_rtol",
               "batched": "shortcuts"}


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
        """The config's `check:`, with the overrides that are not None."""
        chosen = {k: v for k, v in overrides.items() if v is not None}
        return cls(**chosen).under_spec(spec, keep=chosen.keys())

    def under_spec(self, spec, keep: Collection[str]) -> "CheckSettings":
        """These settings with the config's `check:` in the fields of SPEC_FIELDS not in ``keep``
        (the ones a caller chose)."""
        c = spec.check
        return dataclasses.replace(self, **{k: getattr(c, key) for k, key in SPEC_FIELDS.items()
                                            if k not in keep and hasattr(c, key)})
