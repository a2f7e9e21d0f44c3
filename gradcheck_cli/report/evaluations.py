"""-v's lines on the work a check did: per tensor, the evaluations made against the minimum a full
check needs (rendering only; the counts are in ConfigResult.tensor_costs)."""
from __future__ import annotations

from ..results import ConfigResult

#: what the minimum means, said where the figures are shown (and in docs/performance.md)
MINIMUM = ("the method's evaluations per entry probed, 2 for central differences; for an input "
           "whose layers are verified to keep examples apart, per entry of one example, every "
           "example sharing each evaluation")


def evaluation_lines(result: ConfigResult) -> list[str]:
    """A header saying what the minimum is, then one line per tensor check: made, minimum, and
    how many times the minimum the check made."""
    costs = result.tensor_costs or []
    if not costs:
        return []
    width = max(len(c.what) for c in costs)
    made_w = max(len(f"{c.made:,}") for c in costs)
    min_w = max(len(f"{c.minimum:,}") for c in costs)
    lines = [f"evaluations per tensor, made against the minimum a full check needs ({MINIMUM}):"]
    for c in costs:
        ratio = f"{c.made / c.minimum:.2f}×" if c.minimum else "—"
        shared = f", {c.examples_per_call} examples per evaluation" if c.examples_per_call > 1 else ""
        lines.append(f"  {c.what:<{width}}  {c.made:>{made_w},} made, minimum {c.minimum:>{min_w},} "
                     f"({ratio}{shared})")
    made, minimum = sum(c.made for c in costs), sum(c.minimum for c in costs)
    lines.append(f"  {'all':<{width}}  {made:>{made_w},} made, minimum {minimum:>{min_w},} "
                 f"({made / minimum:.2f}×)" if minimum else f"  all  {made:,} made")
    return lines
