"""The one tolerance policy: thresholds per dtype, and the verdict on a single comparison."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    pass_rtol: float   # relative error below this passes
    warn_rtol: float   # below this warns; above it fails


#: The numeric reference is always computed in float64 (float32 parameters cast exactly), so
#: these bound the analytic gradient's own rounding: ~1e-16·cond in float64, ~1e-7·cond in
#: float32. A planted bug (transpose, factor, sign, dropped term) gives 0.1–1.
TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(pass_rtol=1e-7, warn_rtol=1e-5),
    "float32": Tolerance(pass_rtol=1e-4, warn_rtol=1e-2),
}

#: unit roundoff of each dtype
UNIT_ROUNDOFF: dict[str, float] = {"float64": 2.0**-53, "float32": 2.0**-24}


def tolerance_for(dtype: str, pass_rtol: float | None = None, warn_rtol: float | None = None) -> Tolerance:
    base = TOLERANCES[dtype]
    p = pass_rtol if pass_rtol is not None else base.pass_rtol
    w = warn_rtol if warn_rtol is not None else max(base.warn_rtol, p)
    return Tolerance(p, max(w, p))
