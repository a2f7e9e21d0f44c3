"""Tie groups: entries at a kink that share it, judged together.

Each entry at a kink is accepted when its analytic value lies between its one-sided
derivatives. That is not enough where several entries share one kink: the tied maxima of a
max-pool window (exactly equal values, common after an overlapping pool or a relu) each lie
between their one-sided derivatives when the whole window gradient goes to only one of them,
and also when it goes to all of them, which is wrong. Along the direction that moves the whole
group together the tie is kept, so f is smooth there, and a valid subgradient must agree with
that directional derivative: Σ_group analytic ∈ [D−(u), D+(u)] for u = the group's indicator.
(For a convex or concave piece, ⟨g, u⟩ ∈ [D−(u), D+(u)] holds for every subgradient g and every
u, so the test never rejects a valid subgradient there; a subset of a tie gives a valid test too.)

Groups are found without knowing the layer: kink entries of the tensor with exactly the same
value (a tie is an equality). A group violates only when the sum lies outside the bracket at h
and at h/2 by about the same amount: the violation of a real tie does not depend on h, while
a line through several unrelated kinks close to θ gives brackets that move with h.
Pure: θ is never modified, nothing is printed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .differences import F64_EPS, EvaluateStack

#: a violation counts when it is this many noise estimates outside the bracket
SAFETY = 4.0
#: entries named in a message
SHOWN = 2


@dataclass
class TieVerdict:
    """The kink entries (positions into the arrays given) whose tie group is inconsistent."""

    bad: np.ndarray
    reason: str
    diagnosis: str


#: (probe positions at a kink, their analytic values, noise, one-sided D+ and D−) -> verdict
TieCheck = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], "TieVerdict | None"]


def tie_groups(values: np.ndarray) -> list[np.ndarray]:
    """Positions into ``values`` grouped by exactly equal value; only groups of two or more."""
    values = np.asarray(values)
    if values.size < 2:
        return []
    order = np.argsort(values, kind="stable")
    cuts = np.flatnonzero(np.diff(values[order]) != 0) + 1
    return [np.sort(g) for g in np.split(order, cuts) if g.size >= 2]


def check_ties(theta: np.ndarray, entries: np.ndarray, analytic: np.ndarray, noise: np.ndarray,
               one_sided: tuple[np.ndarray, np.ndarray], stack: EvaluateStack, eps: float, f0: float,
               f_scale: float, chunk: int) -> TieVerdict | None:
    """The tie-group test for the kink entries ``entries`` (flat indices into θ), with their
    analytic values, noise estimates and one-sided derivatives (each entry moved alone);
    None when every group is consistent."""
    theta = np.asarray(theta, dtype=np.float64)
    flat = theta.reshape(-1)
    groups = tie_groups(flat[entries])
    if not groups:
        return None
    values = np.array([flat[entries[g[0]]] for g in groups])
    h = eps * np.maximum(1.0, np.abs(values))
    scales = (1.0, -1.0, 0.5, -0.5)
    steps = np.array([(values + c * h) - values for c in scales])   # the changes actually made
    f = _evaluate(stack, flat, theta.shape, [entries[g] for g in groups], values, steps, chunk)
    d_plus = (f[[0, 2]] - f0) / steps[[0, 2]]            # (2 scales, groups)
    d_minus = (f0 - f[[1, 3]]) / (-steps[[1, 3]])
    fmax = np.maximum(np.abs(f).max(axis=0), max(abs(f0), f_scale))
    rounding = 8.0 * F64_EPS * fmax / np.abs(steps[[0, 2]])
    truncation = 2.0 * np.maximum(np.abs(d_plus[0] - d_plus[1]), np.abs(d_minus[0] - d_minus[1]))
    total = np.array([analytic[g].sum() for g in groups])
    own = np.array([float(np.sqrt((noise[g] ** 2).sum())) for g in groups])
    slack = rounding + own + truncation
    lo, hi = np.minimum(d_plus, d_minus), np.maximum(d_plus, d_minus)
    excess = np.maximum(lo - total, total - hi)                   # > 0 outside the bracket
    bad = (excess[0] > SAFETY * slack[0]) & (excess[1] > SAFETY * slack[1]) & (excess[1] >= 0.5 * excess[0])
    if not bad.any():
        return None
    # moved alone, a tied entry takes its window's whole gradient on one side (it becomes the
    # only maximum) and none on the other: a backward that gives every tied entry that side
    alone = np.where(np.abs(one_sided[0]) >= np.abs(one_sided[1]), one_sided[0], one_sided[1])
    every = [bool(np.all(np.abs(analytic[g] - alone[g]) <= 1e-6 * np.abs(alone[g]) + SAFETY * noise[g])
                  and np.all(np.abs(alone[g]) > SAFETY * noise[g])) for g in groups]
    chosen = [k for k in np.flatnonzero(bad)]
    return TieVerdict(np.concatenate([groups[k] for k in chosen]),
                      _reason(groups, chosen, every, entries, theta.shape, values, d_plus, d_minus, total),
                      "gradient sent to every tied entry" if all(every[k] for k in chosen)
                      else "tied entries' gradients do not add up")


def _evaluate(stack: EvaluateStack, flat: np.ndarray, shape: tuple[int, ...], members: list[np.ndarray],
              values: np.ndarray, steps: np.ndarray, chunk: int) -> np.ndarray:
    """f with every entry of a group moved by the same step, for each step and group: (4, groups)."""
    probes = [(j, k) for j in range(steps.shape[0]) for k in range(len(members))]
    out = np.empty(len(probes))
    chunk = max(1, int(chunk))
    for start in range(0, len(probes), chunk):
        part = probes[start:start + chunk]
        copies = np.repeat(flat[None], len(part), axis=0)
        for row, (j, k) in enumerate(part):
            copies[row, members[k]] = values[k] + steps[j, k]
        out[start:start + len(part)] = np.asarray(stack(copies.reshape((len(part),) + shape))).real
    return out.reshape(steps.shape[0], len(members))


def _reason(groups, chosen, every, entries, shape, values, d_plus, d_minus, total) -> str:
    n_entries = sum(groups[k].size for k in chosen)
    k = chosen[0]
    where = [tuple(int(i) for i in np.unravel_index(int(entries[p]), shape)) for p in groups[k][:SHOWN]]
    more = groups[k].size - len(where)
    named = " and ".join(str(w) for w in where) + (f" and {more} more" if more else "")
    groups_text = (f"{len(chosen)} group{'s' if len(chosen) > 1 else ''} of tied entries "
                   f"(equal values, {n_entries} entries)")
    rate = 0.5 * (d_plus[1, k] + d_minus[1, k])
    example = (f"e.g. entries {named} are all {values[k]:.6g}: moving them together changes f at "
               f"rate {rate:.6g}, but their analytic values add up to {total[k]:.6g}")
    if all(every[j] for j in chosen):
        return (f"gradient sent to every tied entry: in {groups_text} each entry gets the whole "
                f"gradient, which only one of them (or a share of it) may take; {example}")
    return (f"the gradients of tied entries do not add up: in {groups_text} the sum of the "
            f"analytic values lies outside the one-sided derivatives along the direction that "
            f"moves the group together ({min(d_plus[1, k], d_minus[1, k]):.6g} .. "
            f"{max(d_plus[1, k], d_minus[1, k]):.6g}); {example}")
