"""`--dump FILE.npz`: every array a check compared, under documented keys, for a notebook or a bug
report; and reading it back for `gradcheck show`.

Keys, for each config (``<config>`` is its name, made unique with ``-2``, ``-3`` ... when two
configs share one):

  <config>/input                                  the network input x
  <config>/targets                                the loss targets
  <config>/params/<label>/<name>                   parameters (label as in the table: 1, 1a, 2, ...)
  <config>/isolated/<label>/cotangent             the upstream gradient G of the isolated check
  <config>/isolated/<label>/<tensor>/analytic     backward(G) for tensor (x, W, b, ...)
  <config>/isolated/<label>/<tensor>/numeric      finite differences of ⟨forward(·), G⟩
  <config>/network/<label>/<tensor>/analytic      end to end: the chained backward
  <config>/network/<label>/<tensor>/numeric       end to end: finite differences of the loss
  <config>/meta                                   JSON text: path, seed, dtype, layout, batch,
                                                  thresholds and each row's status and errors

A numeric gradient is absent where it was not computed entry by entry (sample or directional
modes), an analytic one where the backward returned none. Plain arrays only: ``np.load(path)``
needs no pickle.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from ..results import ConfigResult, Status

#: the largest tensor `gradcheck show` draws entry by entry
MAX_HEATMAP_ENTRIES = 2048


def _unique(name: str, taken: set[str]) -> str:
    name = (name or "config").replace("/", "_")
    out, k = name, 2
    while out in taken:
        out, k = f"{name}-{k}", k + 1
    taken.add(out)
    return out


def _meta(result: ConfigResult) -> dict[str, Any]:
    def comp(c):
        if c is None:
            return None
        return {"status": str(c.status), "rel_error": c.rel_error, "max_abs_error": c.max_abs_error,
                "worst_index": list(c.worst_index) if c.worst_index is not None else None,
                "reason": c.reason, "diagnosis": c.diagnosis}

    return {"path": result.path, "name": result.name, "status": str(result.status),
            "seed": result.seed, "dtype": result.dtype, "layout": result.layout, "batch": result.batch,
            "method": result.method, "eps": result.eps, "settings": result.settings,
            "rows": [{"label": r.label, "layer": r.layer_type, "tensor": r.tensor,
                      "shape": list(r.tensor_shape),
                      "grad_shape": list(r.grad_shape) if r.grad_shape is not None else None,
                      "status": str(r.status), "reason": r.reason,
                      "isolated": comp(r.isolated), "network": comp(r.network)} for r in result.rows]}


def dump_arrays(results: list[ConfigResult]) -> dict[str, np.ndarray]:
    """The arrays of every checked config under their documented keys (see the module docstring)."""
    out: dict[str, np.ndarray] = {}
    taken: set[str] = set()
    for result in results:
        if result.status is Status.ERROR:
            continue
        prefix = _unique(result.name, taken)
        for key, value in (result.arrays or {}).items():
            out[f"{prefix}/{key}"] = np.asarray(value)
        out[f"{prefix}/meta"] = np.array(json.dumps(_meta(result), default=_json_default))
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "value"):
        return value.value
    return str(value)


def write_dump(path: str | Path, results: list[ConfigResult]) -> list[str]:
    """Write the arrays of ``results`` (checked with keep_arrays) to a compressed .npz; return the keys."""
    arrays = dump_arrays(results)
    target = Path(path)
    try:
        with open(target, "wb") as fh:  # a file object: numpy would otherwise append .npz
            np.savez_compressed(fh, **arrays)
    except OSError as exc:
        raise UsageError(f"--dump {path}: cannot write: {exc.strerror}") from None
    return sorted(arrays)


# -- reading back ---------------------------------------------------------------------------------

@dataclass
class Dump:
    path: str
    arrays: dict[str, np.ndarray]
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)   # config -> meta

    def configs(self) -> list[str]:
        return list(self.meta)

    def gradients(self, config: str) -> list[tuple[str, str, str]]:
        """(check, label, tensor) for every gradient pair the dump holds for one config."""
        found = []
        for key in self.arrays:
            parts = key.split("/")
            if parts[0] == config and len(parts) == 5 and parts[4] == "analytic" \
                    and parts[1] in ("isolated", "network"):
                found.append((parts[1], parts[2], parts[3]))
        return found


def load_dump(path: str | Path) -> Dump:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a gradcheck dump (.npz): {exc}") from None
    meta = {}
    for key, value in arrays.items():
        if key.endswith("/meta"):
            meta[key[:-len("/meta")]] = json.loads(str(value))
    if not meta:
        raise UsageError(f"{path}: no gradcheck metadata in it; write one with gradcheck check --dump")
    return Dump(str(path), arrays, meta)


@dataclass
class Heatmap:
    """|analytic − numeric| per entry of one gradient, and what it is."""

    config: str
    check: str
    label: str
    layer: str
    tensor: str
    status: str
    reason: str
    shape: tuple[int, ...]
    analytic_shape: tuple[int, ...]
    pass_rtol: float
    warn_rtol: float
    scale: float                                  # max |numeric|, what the errors are relative to
    diff: np.ndarray | None = None                # |a − n|, None when shapes differ
    worst: list[tuple[tuple[int, ...], float, float, float]] = field(default_factory=list)
    too_big: str | None = None
    transposed: bool = False                      # the analytic gradient was compared transposed


def _split_key(dump: Dump, key: str) -> tuple[str, str, str]:
    parts = key.split("/")
    configs = dump.configs()
    if len(parts) == 3:
        config, label, tensor = parts
    elif len(parts) == 2 and len(configs) == 1:
        config, (label, tensor) = configs[0], parts
    elif len(parts) == 2:
        raise UsageError(f"{dump.path} holds several configs ({', '.join(configs)}): "
                         f"name one, as CONFIG/{key}")
    else:
        raise UsageError(f"{key!r}: expected LAYER/TENSOR (e.g. 2/W) or CONFIG/LAYER/TENSOR")
    if config not in dump.meta:
        raise UsageError(f"no config {config!r} in {dump.path}: it holds {', '.join(configs)}")
    return config, label, tensor


def summarize(dump: Dump, key: str, check: str = "isolated", top: int = 5) -> Heatmap:
    """The error map of one gradient from a dump, with its ``top`` worst entries."""
    if check not in ("isolated", "network"):
        raise UsageError(f"--check must be isolated or network, not {check!r}")
    config, label, tensor = _split_key(dump, key)
    meta = dump.meta[config]
    base = f"{config}/{check}/{label}/{tensor}"
    if f"{base}/analytic" not in dump.arrays:
        held = ", ".join(f"{lb}/{t}" for c, lb, t in dump.gradients(config) if c == check)
        raise UsageError(f"no {check} gradient {label}/{tensor} in {dump.path} for {config}: "
                         f"it holds {held or 'none'}")
    a = dump.arrays[f"{base}/analytic"].astype(np.float64)
    n = dump.arrays.get(f"{base}/numeric")
    row = next((r for r in meta["rows"] if r["label"] == label and r["tensor"] == tensor), {})
    comp = row.get(check) or {}
    settings = meta.get("settings", {})
    shape = tuple(row.get("shape") or (n.shape if n is not None else a.shape))
    out = Heatmap(config, check, label, row.get("layer", "?"), tensor, comp.get("status", "?"),
                  comp.get("reason", ""), shape, tuple(a.shape), settings.get("pass_rtol", 1e-7),
                  settings.get("warn_rtol", 1e-5), 0.0)
    if n is None:
        out.too_big = ("the dump holds no entry-by-entry numeric gradient for it (sample or "
                       "directional mode, or a gradient of the wrong shape)")
        return out
    n = n.astype(np.float64)
    out.scale = float(np.abs(n).max()) if n.size else 0.0
    if a.ndim == 2 and a.shape != n.shape and a.shape == n.shape[::-1]:
        a = a.T
        out.transposed = True
    if a.shape != n.shape:
        out.too_big = (f"the analytic gradient has shape {tuple(a.shape)} but the tensor is "
                       f"{tuple(n.shape)}: no entry-by-entry comparison")
        return out
    diff = np.abs(a - n)
    order = np.argsort(diff, axis=None)[::-1][:max(0, top)]
    out.worst = [(tuple(int(i) for i in np.unravel_index(int(k), diff.shape)), float(a.flat[k]),
                  float(n.flat[k]), float(diff.flat[k])) for k in order]
    if diff.size > MAX_HEATMAP_ENTRIES:
        out.too_big = (f"{diff.size:,} entries: more than the {MAX_HEATMAP_ENTRIES} drawn entry by "
                       "entry; the worst are listed")
    else:
        out.diff = diff
    return out
