"""Results as plain data: what a check found, for any renderer (table, JSON, ...) to show."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class Status(str, Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "FAIL"
    #: wrong end to end only because a later layer's backward is wrong (that layer has the FAIL).
    INHERITED = "inherited"
    SKIPPED = "skipped"
    #: a mismatch only at non-differentiable points, where the analytic value is a valid subgradient
    KINK = "kink"
    #: could not run (bad config, a layer whose forward breaks): exit code 2.
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


#: The statuses that fail a run (warn too, under --strict); any other verdict is a note.
FAILING = frozenset({Status.FAIL, Status.INHERITED})

#: Worst first; a config's status is the worst of its rows.
SEVERITY = [Status.ERROR, Status.FAIL, Status.INHERITED, Status.WARN, Status.KINK, Status.PASS,
            Status.SKIPPED]


def worst(statuses) -> Status:
    statuses = list(statuses)
    for s in SEVERITY:
        if s in statuses:
            return s
    return Status.PASS


@dataclass
class Comparison:
    """An analytic gradient against its finite-difference reference, for one tensor."""

    status: Status
    rel_error: float | None = None
    max_abs_error: float | None = None
    worst_index: tuple[int, ...] | None = None
    analytic_shape: tuple[int, ...] | None = None
    noise: float | None = None        # estimated finite-difference error, relative like rel_error
    entries: int = 0                  # entries compared
    reason: str = ""
    diagnosis: str | None = None      # the common bug that explains a FAIL, if one does
    kinks: int = 0                    # entries excused as non-differentiable points
    #: the relative error of the other entries (what the verdict read; rel_error counts all)
    rel_error_excluding_kinks: float | None = None
    notes: str | None = None          # health notes (vanishing/exploding gradient)


@dataclass
class TensorCost:
    """The evaluations one check of one tensor made, against the fewest it needs (-v)."""

    what: str                         # "isolated check, layer 1 W", "upstream of layer 2", ...
    made: int                         # perturbed copies evaluated (calls of the function)
    #: the method's offsets per entry probed; for an input whose layers are verified to keep
    #: examples apart, per entry of one example (every example shares a call)
    minimum: int
    examples_per_call: int = 1        # examples that share each call in the minimum


@dataclass
class Row:
    """One (layer, tensor): its shapes and both checks."""

    label: str                        # "1", "1a", "loss"
    index: int                        # 1-based position in `layers:`; 0 for the loss
    layer_type: str
    line: int | None                  # config line of the layer entry
    tensor: str                       # "x" for the layer input, else a parameter name
    input_shape: tuple[int, ...]      # the layer's input, with the batch axis
    output_shape: tuple[int, ...]
    tensor_shape: tuple[int, ...]
    isolated: Comparison
    network: Comparison | None
    status: Status = Status.PASS
    reason: str = ""

    @property
    def grad_shape(self) -> tuple[int, ...] | None:
        return self.isolated.analytic_shape


@dataclass
class ConfigResult:
    """Everything checked for one config file."""

    path: str
    name: str
    status: Status
    error: str | None = None          # located message when status is ERROR
    seed: int | None = None
    dtype: str | None = None
    layout: str | None = None
    method: str | None = None
    eps: float | None = None
    reference: str | None = None      # how the numeric reference was computed
    n_params: int | None = None
    batch: int | None = None
    rows: list[Row] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    #: function evaluations the check made (perturbed copies), and the process's peak resident
    #: memory by its end (bytes; with --jobs, the worker's; the peak since the network was built
    #: where check_memory is measured)
    evaluations: int | None = None
    peak_memory: int | None = None
    #: how far the process's data (resident memory that maps no file) rose, at its peak, above
    #: what it held before the network was built, and that baseline (bytes; None where the OS
    #: does not say; run/memory.py)
    check_memory: int | None = None
    memory_before: int | None = None
    #: the memory model's figure for the batches the check made, by the sizes that cut them:
    #: the network's arrays (budget.base_bytes) and the largest tensor check (Ledger.held), in
    #: bytes, and that tensor check's label
    memory_model: int | None = None
    memory_largest: str | None = None
    #: entries probed times the method's offsets: the estimate's evaluations, what a check
    #: without shortcuts evaluates (shortcuts share one copy between several probes)
    probes: int | None = None
    #: per tensor check, the evaluations made against the minimum (-v; in the JSON as
    #: ``evaluations_by_check``)
    tensor_costs: list[TensorCost] | None = field(default=None, repr=False, compare=False)
    #: what the resource guard estimated before the check ran (cost.CostEstimate as a dict)
    cost: dict[str, Any] | None = None
    #: with CheckSettings(keep_arrays=True): every array checked, under documented keys
    #: (see check/engine.py); never serialized to JSON.
    arrays: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.status.value] = out.get(r.status.value, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("arrays", None)
        costs = out.pop("tensor_costs", None)
        out["evaluations_by_check"] = None if costs is None else [
            {"check": c["what"], "made": c["made"], "minimum": c["minimum"],
             "examples_per_call": c["examples_per_call"]} for c in costs]
        return out


@dataclass
class RunResult:
    """Several configs, in the order they were given."""

    configs: list[ConfigResult]
    strict: bool = False

    def exit_code(self) -> int:
        statuses = [c.status for c in self.configs]
        if Status.ERROR in statuses:
            return 2
        if any(s in FAILING for s in statuses):
            return 1
        if self.strict and Status.WARN in statuses:
            return 1
        return 0
