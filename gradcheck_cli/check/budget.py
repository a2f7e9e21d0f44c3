"""The resource guard: what a check will cost, estimated from the plan alone (no array exists yet).

A config that anyone can put in a pull request must not be able to eat the CI machine's memory
or keep it busy for hours. Before building a network, the runner estimates its parameters, the
function evaluations both checks will make, and the peak memory, and refuses (exit 2) a check
over ``--max-memory`` or ``--max-evals``. The figures mirror the checker (isolated.py,
end_to_end.py): every tensor (each layer's input and parameters) is probed in isolation (one
layer), and the parameters and the network input once more end to end (the rest of the network
and the loss); each probe costs one evaluation per offset of the difference method; perturbed
copies are evaluated in batches that fit the settings' memory budget.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from ..errors import SpecError, UsageError

#: Fraction of the machine's RAM a check may use by default; the rest stays for everything else.
DEFAULT_RAM_FRACTION = 0.5
#: When the RAM size cannot be read: a budget any CI runner has.
FALLBACK_MEMORY = 2 * 1024**3
#: Function evaluations allowed by default: a full check of a network with about a million
#: parameters; beyond this, a full check takes hours, and a sample or directional check is the tool.
DEFAULT_MAX_EVALS = 10_000_000
#: Measured peaks stay below the modelled figure times this.
PEAK_MARGIN = 1.25
#: Bytes an entry that copies.Kept holds (two probes' values and f, float64).
KEPT_BYTES = 32
#: Bytes per entry of the tensor being checked that its differences and verdict hold at once
#: (per offset the value and the step, the base, h, the derivative and its one-sided halves,
#: the rounding, the error and noise of the verdict; float64), measured on a dense W of 90,000
#: entries. A tensor is checked whole, so the largest one sets the figure.
ENTRY_BYTES = 112
#: Bytes per evaluation that a tensor's differencing keeps while its batches run: the value of
#: f at each perturbed copy and the step made (float64), gathered for the differences.
VALUE_BYTES = 16
#: Bytes per entry probed that it keeps beside them: the entry's index, value and h, and the
#: analytic entry it is read against.
PROBE_BYTES = 32
#: Bytes per parameter of the gradients the check holds: a layer's own in its isolated check,
#: every layer's, chained from the loss, in the end-to-end one (float64).
GRADIENT_BYTES = 8
#: Bytes per parameter of the maps of entries that share copies (each entry's cell and colour,
#: int64), which the memo keeps for the end-to-end rows.
GROUPING_BYTES = 16
#: Batches of perturbed copies are never cut below this, so a tight limit still makes progress.
MIN_BATCH_BUDGET = 1024**2

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2,
          "mib": 1024**2, "g": 1024**3, "gb": 1024**3, "gib": 1024**3, "t": 1024**4, "tb": 1024**4,
          "tib": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


@dataclass
class CostEstimate:
    """What a check of one config will take, before it runs."""

    parameters: int
    tensors: int            # tensors probed (layer inputs and parameters, and the loss input)
    probes: int             # entries (or directions) perturbed, over both checks
    evaluations: int        # function evaluations (perturbed copies), over both checks
    peak_bytes: int         # network arrays plus the largest batch of perturbed copies
    batch_bytes: int        # the largest batch of perturbed copies alone
    largest: str            # the tensor whose batch is largest, e.g. "layer 2 (dense) W"
    mode: str
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (f"estimate: {self.parameters:,} parameters, {self.tensors} tensors, "
                f"{self.evaluations:,} evaluations without shortcuts ({self.mode} mode, {self.method}), "
                f"peak memory ≈ {format_bytes(self.peak_bytes)} "
                f"(largest batch: {self.largest}, {format_bytes(self.batch_bytes)})")


def estimate(plan: Any, settings: Any) -> CostEstimate:
    """Parameters, evaluations and peak memory of checking ``plan`` with ``settings``.

    Uses shapes only. Caches are assumed to be about as large as activations; composite layers'
    inner rows (a small share of the work) are not counted.
    """
    from .differences import chunk_for, evaluations_per_probe

    spec = plan.spec
    m = spec.input.batch
    item = item_bytes(spec.dtype)
    per_probe = evaluations_per_probe(settings.method)
    shapes = [(m, *spec.input.shape)] + [(m, *n.output_shape) for n in plan.nodes]
    acts = [math.prod(s) for s in shapes]
    layers = [n.layer for n in plan.nodes]
    params = sum(math.prod(s) for n in plan.nodes for s in n.param_shapes.values())
    base = base_bytes(params, layers, shapes, item, settings)

    tensors = probes = evals = widest = 0
    batch, largest = 0, ""
    # the batches of the tensors the exact shortcuts serve are sized as the check sizes them
    shortcuts = getattr(settings, "batched", True)

    def account(size: int, activation_sizes: list[int], label: str, served: list[Any] | None,
                tensor: str, isolated: bool) -> None:
        nonlocal probes, evals, batch, largest, widest
        n = _probes(settings, size)
        widest = max(widest, n)
        per_copy = bytes_per_probe(size, activation_sizes, settings.method) if served is None else \
            served_bytes(served, tensor, size, activation_sizes, m, settings.method, isolated)
        per_batch = max(1, chunk_for(per_copy, settings.max_memory) // per_probe) * per_probe
        copies = min(per_batch, n * per_probe)
        probes += n
        evals += n * per_probe
        if copies * per_copy > batch:
            batch, largest = copies * per_copy, label

    for i, node in enumerate(plan.nodes):
        sizes = {"x": acts[i], **{k: math.prod(s) for k, s in node.param_shapes.items()}}
        name = f"layer {node.label} ({node.type_name})"
        tensors += len(sizes)
        for tensor, size in sizes.items():
            account(size, copy_sizes(layers[i:i + 1], shapes[i:i + 2]), f"{name} {tensor}",
                    layers[i:i + 1] if shortcuts else None, tensor, True)           # isolated
            if tensor != "x" or i == 0:
                # end to end: parameters and the network input (a hidden dx only in isolation)
                account(size, copy_sizes(layers[i:], shapes[i:]), f"{name} {tensor}",
                        layers[i:] if shortcuts else None, tensor, False)
    account(acts[-1], [acts[-1]], "loss x", None, "x", True)
    tensors += 1
    # the largest batch and the widest tensor's differences are added, though they are of
    # different rows and a row's differences are made after its batches: a check refining many
    # entries at kinks holds both
    peak = modelled_peak(base, ENTRY_BYTES * widest + batch)
    return CostEstimate(parameters=params, tensors=tensors, probes=probes, evaluations=evals,
                        peak_bytes=peak, batch_bytes=batch, largest=largest,
                        mode=settings.mode, method=settings.method)


def base_bytes(params: int, layers: list[Any], shapes: list[tuple[int, ...]], item: int,
               settings: Any, measured: Iterable[int | None] = ()) -> int:
    """What a check of ``layers`` holds from start to end (``shapes``, ``measured`` as for
    copy_sizes; ``item``: the config dtype's bytes): the network in its dtype, the float64
    reference copy, the clean forward's outputs and caches (held_sizes), the gradients, a
    recurrent layer's trajectory and adjoints (scanned_entries), and what one check's copies
    keep for another. The estimate calls it with the plan's shapes, the check with its arrays'
    and the caches it measured."""
    activation_sizes = [math.prod(s) for s in shapes]
    caches = activation_sizes[0] + sum(held_sizes(layers, shapes, measured))
    base = (params + activation_sizes[0]) * (item + 8) + sum(activation_sizes) * (item + 8) \
        + caches * item + GRADIENT_BYTES * params + 8 * scanned_entries(layers, shapes)
    if settings.method in ("central", "richardson") and settings.mode != "directional":
        # what the end-to-end rows take from the isolated ones: copies.Kept, 32 bytes an entry
        # (parameters against the chained g, the network input and the hidden layers' inputs
        # against the isolated G), and the maps of the entries that share copies
        base += KEPT_BYTES * (params + sum(activation_sizes[:-1])) + GROUPING_BYTES * params
    return base


def item_bytes(dtype: str) -> int:
    """Bytes of one number in the config's dtype (the network's own arrays)."""
    return 4 if dtype == "float32" else 8


def modelled_peak(base: int, held: int) -> int:
    """The peak by the model: what the whole check holds and the largest tensor check, with a
    margin for what the model leaves out (refinements, temporaries, the allocator's slack,
    measured at 1.01-1.36x of the model alone by bench_memory.py): better to refuse a check that
    would just fit than to let one through that does not."""
    return int(PEAK_MARGIN * (base + held))


def tensor_check_bytes(batch: int, entries: int, evaluations: int) -> int:
    """What one tensor check of ``entries`` probed holds at its peak beyond the base, by the
    model: its largest batch of copies (``batch`` bytes) with the values gathered so far, or,
    once its batches are done, its differences and verdict, whichever is larger."""
    return max(batch + VALUE_BYTES * evaluations + PROBE_BYTES * entries, ENTRY_BYTES * entries)


def bytes_per_probe(size: int, activation_sizes: Iterable[int], method: str, copies: int = 1) -> int:
    """Bytes one perturbed copy of a tensor of ``size`` entries takes while it is evaluated: the
    copy itself in the reference dtype (complex for the complex step; ``copies``: held twice
    where the copies are laid side by side anew, structure.widened, and not at all where the
    shortcuts make none), about three arrays per
    activation it passes through (output, cache, a temporary), and a little bookkeeping. The
    check sizes its batches with it, and the estimate above models the peak with it."""
    item = 16 if method == "complex" else 8
    return item * (copies * size + 3 * sum(activation_sizes) + 16)


def served_bytes(layers: list[Any], tensor: str, size: int, sizes: list[int], batch: int,
                 method: str, isolated: bool) -> int:
    """bytes_per_probe of ``tensor`` of layers[0] (``size`` entries; ``sizes``: copy_sizes of
    ``layers``), lower where the exact shortcuts serve it (served.py), which copy no tensor:
    they update the clean output where a probe changes it. A probe of a dense layer's W or b
    changes one feature column of its output (``batch`` entries, held with the clean ones)
    through the elementwise layers after it, and only the dense layer's rank-1 update after
    them holds whole copies. A probe of an input changes one entry of an elementwise layer's
    output and one example's row of a dense layer's: in isolation ⟨out, G⟩ is read off that
    row, and end to end the row is carried through the layers that keep examples apart (rows
    layout), whole copies only from the first that does not (the last output counted whole
    for the loss, which may take copies)."""
    from ..layers.activations import Elementwise
    from .served import columns_through, is_, rows_through, supports

    if not supports(layers[0], tensor, isolated):
        return bytes_per_probe(size, sizes, method)
    if tensor == "x" and isolated:
        return bytes_per_probe(0, [1 if is_(layers[0], Elementwise) else sizes[1] // batch], method, 0)
    if tensor == "x":
        k = rows_through(layers)
        whole = list(sizes[1 + k:]) or [sizes[-1]]
        return bytes_per_probe(0, [n // batch for n in sizes[1:1 + k]] + whole, method, copies=0)
    columns = columns_through(layers, isolated)
    return bytes_per_probe(batch, [0] + [2 * batch] * columns + list(sizes[1 + columns:]), method)


def shared_bytes(entries: Any, per_copy: int, share: int, budget: int) -> int:
    """Bytes per probe of an evaluator whose copies hold up to ``share`` probes each
    (copies.grouped_entries and the evaluators built on it), which is told how many copies of
    ``per_copy`` bytes fit the budget at once (``max_copies``)."""
    from .differences import chunk_for

    entries.max_copies = chunk_for(per_copy, budget)
    return max(1, per_copy // share)


def copy_sizes(layers: Iterable[Any], shapes: list[tuple[int, ...]],
               measured: Iterable[int | None] = ()) -> list[int]:
    """The activation sizes a copy passes through (``shapes``: the input of layers[0], then each
    layer's output, batch axis first), each output raised to a third of what one forward of its
    layer holds, where that is known: measured for a plugin (Structure.held: its cache, in
    entries), or said by a built-in (held_entries: a recurrent layer's cache holds every step's
    gates). bytes_per_probe counts three arrays per activation."""
    sizes = [math.prod(s) for s in shapes]
    return sizes[:1] + [max(out, -(-held // 3)) for out, held in
                        zip(sizes[1:], held_sizes(layers, shapes, measured))]


def scanned_entries(layers: Iterable[Any], shapes: list[tuple[int, ...]]) -> int:
    """Entries the step-by-step differences of the built-in recurrent layers keep while their
    rows run (recurrence.py): the trajectory of states, T + 1 of them, and the adjoints λ
    against the isolated G and against the chained g, T each; ``shapes`` as for copy_sizes.
    A plugin's step is known only once measured, and is not counted."""
    from ..layers.registry import is_builtin

    total = 0
    for layer, shape in zip(layers, shapes):
        states, hidden = getattr(layer, "n_states", None), getattr(layer, "hidden", None)
        if is_builtin(type(layer)) and isinstance(states, int) and isinstance(hidden, int) \
                and len(shape) == 3 and callable(getattr(layer, "step", None)):
            m, T = shape[0], shape[1]
            total += (3 * T + 1) * states * m * hidden
    return total


def held_sizes(layers: Iterable[Any], shapes: list[tuple[int, ...]],
               measured: Iterable[int | None] = ()) -> list[int]:
    """Entries one forward of each layer holds, its output and its cache (``shapes`` as for
    copy_sizes): measured for a plugin, said by a built-in that holds more than its output
    (held_entries), else the output's size."""
    out, measured = [], list(measured)
    for k, layer in enumerate(layers):
        if k + 1 >= len(shapes):
            break
        said = getattr(layer, "held_entries", None)
        held = measured[k] if k < len(measured) and measured[k] is not None else \
            said(tuple(shapes[k])) if callable(said) else None
        out.append(math.prod(shapes[k + 1]) if held is None else max(int(held), math.prod(shapes[k + 1])))
    return out


def _probes(settings: Any, size: int) -> int:
    mode = getattr(settings, "mode", "full")
    if mode == "sample":
        return min(size, settings.samples)
    if mode == "directional":
        return settings.directions if size else 0
    return size


def fit_batches(plan: Any, settings: Any, max_memory: int) -> Any:
    """Settings whose batch budget fits in what ``max_memory`` leaves beside the network."""
    first = estimate(plan, settings)
    room = int(max_memory / PEAK_MARGIN) - (int(first.peak_bytes / PEAK_MARGIN) - first.batch_bytes)
    budget = max(MIN_BATCH_BUDGET, min(settings.max_memory, room))
    return dataclasses.replace(settings, max_memory=budget)


def guard(plan: Any, settings: Any, max_memory: int | None = None,
          max_evals: int | None = None) -> tuple[Any, CostEstimate]:
    """Settings fitted to the memory limit and the estimate, or a SpecError naming the config
    when the check would still be over a limit."""
    max_memory = default_max_memory() if max_memory is None else max_memory
    settings = fit_batches(plan, settings, max_memory)
    cost = estimate(plan, settings)
    max_evals = DEFAULT_MAX_EVALS if max_evals is None else max_evals
    over = []
    if cost.peak_bytes > max_memory:
        over.append(f"about {format_bytes(cost.peak_bytes, up=True)} of memory (limit --max-memory "
                    f"{format_bytes(max_memory)}; largest batch: {cost.largest})")
    if cost.evaluations > max_evals:
        over.append(f"{cost.evaluations:,} function evaluations (limit --max-evals {max_evals:,})")
    if over:
        lighter = ("use --mode sample (a few entries per tensor) or --mode directional (a few "
                   "random directions per tensor)" if cost.mode == "full" else
                   "use fewer --samples or --directions")
        raise SpecError(f"this check would need {' and '.join(over)}: {lighter}, use smaller "
                        "sizes, or raise the limit", file=plan.spec.doc.path)
    return settings, cost


def default_max_memory() -> int:
    """A safe share of the machine's physical RAM."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return FALLBACK_MEMORY
    return int(total * DEFAULT_RAM_FRACTION) if total > 0 else FALLBACK_MEMORY


def parse_size(text: str) -> int:
    """'512M', '2G', '1.5GiB', '1000000' (bytes) -> bytes; units are powers of 1024."""
    m = _SIZE.match(str(text))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise UsageError(f"--max-memory {text!r}: expected a size such as 512M, 2G or 1.5GiB "
                         "(a plain number is bytes)")
    value = float(m.group(1)) * _UNITS[unit]
    if value < 1 or not math.isfinite(value):
        raise UsageError(f"--max-memory {text!r}: must be at least 1 byte")
    return int(value)


def format_bytes(n: int, up: bool = False) -> str:
    """'12.3 MiB'; ``up``: rounded up, for a figure to pass back as a limit."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{math.ceil(n / size * 10) / 10 if up else n / size:.1f} {unit}"
    return f"{n} B"
