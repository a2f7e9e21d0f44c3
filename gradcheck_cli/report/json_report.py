"""Machine-readable output: results as versioned JSON (NaN and Inf become null).

The JSON is deterministic: the same configs and seeds give the same bytes, whatever --jobs was.
So wall-clock timings (``seconds``) are left out; the table shows them.
"""
from __future__ import annotations

import json
import math
import platform
from typing import Any

from .. import __version__
from ..results import RunResult

SCHEMA_VERSION = 1

#: Fields that vary from run to run, left out of the JSON.
TIMING_FIELDS = ("seconds", "peak_memory", "check_memory", "memory_before")


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, (int, str)):
        return value.value
    return value


def run_to_dict(run: RunResult, interrupted: bool = False) -> dict[str, Any]:
    import numpy

    configs = []
    for c in run.configs:
        d = c.to_dict()
        for key in TIMING_FIELDS:
            d.pop(key, None)
        d["status"] = c.status.value
        d["counts"] = c.counts()
        for row in d["rows"]:
            row["status"] = row["status"].value if hasattr(row["status"], "value") else row["status"]
        configs.append(d)
    return _clean({
        "schema_version": SCHEMA_VERSION,
        "gradcheck_version": __version__,
        "numpy_version": numpy.__version__,
        "python_version": platform.python_version(),
        "exit_code": 130 if interrupted else run.exit_code(),
        "interrupted": interrupted,
        "strict": run.strict,
        "configs": configs,
    })


def to_json(run: RunResult, interrupted: bool = False) -> str:
    return json.dumps(run_to_dict(run, interrupted), indent=2, sort_keys=False, default=str)
