"""The one tolerance policy: thresholds per dtype, and the verdict on a single comparison."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def rel_error(a: np.ndarray, n: np.ndarray) -> float:
    """‖a − n‖₂ / (‖a‖₂ + ‖n‖₂), 0 when both are 0: in [0, 1], 1/3 for a factor 2, 1 for a sign flip."""
    denom = float(np.linalg.norm(a) + np.linalg.norm(n))
    return 0.0 if denom == 0.0 else float(np.linalg.norm(a - n)) / denom


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
