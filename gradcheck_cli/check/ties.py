"""Tie groups: entries at a kink that share it, judged together.

Each entry alone at a kink is accepted when its analytic value lies between its one-sided
derivatives. Where several entries share kinks, that test is both too weak and too strict.
Too weak: the tied maxima of a max-pool window each lie between their one-sided derivatives
when the window's gradient goes to only one of them, and also when it goes to all of them,
which is wrong. Too strict: with overlapping windows an entry can be tied in two windows
whose upstream gradients g₁ > 0 > g₂ have opposite signs; moved up alone it becomes the
maximum of both (D+ = g₁ + g₂), moved down of neither (D− = 0), while first-maximum routing
gives it g₁ alone, outside [D−, D+] and still a valid (Clarke) subgradient: the limit of the
gradients at θ − ε·(0, 1, 2, ...), where every window's first tied entry is its strict maximum.

Near θ, f(θ + d) = f(θ) + ⟨s, d⟩ + Σ_k g_k·max_{i ∈ T_k} d_i + o(d), one term per kink k with
tied set T_k; the valid subgradients are s + Σ_k g_k·λ_k with λ_k a distribution over T_k. Along
a direction d that is constant on every T_k, each term is linear, f is smooth, and every valid
subgradient gives the same ⟨a, d⟩: the derivative along d, exactly. The indicator of ALL the
entries of θ with one value is such a direction for ties between entries (a tied set holds
equal values, and an entry that is not a window's maximum does not move it): its group must
add up to that derivative, whatever the signs of the g_k. That test rejects a backward that
sends the gradient to every tied entry (its sum is Σ_k g_k·|T_k|, not Σ_k g_k), and accepts
every valid one, including the entries tied in mixed-sign windows, which it excuses.

Where the group's direction is not smooth (a tie with a constant, such as relu's max(x, 0) at
x = 0: the constant does not move with the group), the sum must lie between the one-sided
directional derivatives D−(u) ≤ ⟨a, u⟩ ≤ D+(u) for u = the group's indicator. That bracket holds
for every valid subgradient when the kinks' upstream gradients share a sign (a convex or
concave piece), and for the usual one-mask-for-all conventions (x > 0, x ≥ 0) whatever the
signs; a group that violates it at h and at h/2 by about the same amount is inconsistent.
Pure: θ is never modified, nothing is printed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .differences import F64_EPS, EvaluateStack

#: a violation counts when it is this many noise estimates outside the bracket
SAFETY = 4.0
#: entries named in a message
SHOWN = 2


@dataclass
class TieVerdict:
    """The kink entries (positions into the arrays given) whose tie group is inconsistent, and
    those a consistent smooth group excuses."""

    bad: np.ndarray
    reason: str
    diagnosis: str
    excused: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))


#: (probe positions at a kink, their analytic values, noise, one-sided D+ and D−, whether each
#: lies within its own [D−, D+], measured noise of one evaluation of f) -> verdict
TieCheck = Callable[..., "TieVerdict | None"]


def tie_groups(values: np.ndarray) -> list[np.ndarray]:
    """Positions into ``values`` grouped by exactly equal value; only groups of two or more."""
    values = np.asarray(values)
    if values.size < 2:
        return []
    order = np.argsort(values, kind="stable")
    cuts = np.flatnonzero(np.diff(values[order]) != 0) + 1
    return [np.sort(g) for g in np.split(order, cuts) if g.size >= 2]


def tie_directions(theta: np.ndarray, directions: np.ndarray) -> np.ndarray | None:
    """The directional check's directions made constant on every group of equal entries of θ
    (each u averaged over each group, then normalized), or None when θ has no equal entries.

    A random direction through a tie crosses its kink, and the one-sided bracket along it is
    weak: the analytic value of a backward that sends the gradient to every tied entry often
    lies inside it. Along a direction constant on the tied entries, f is smooth where the ties
    are between entries (the max-pool's), so the analytic directional derivative must equal the
    numeric one exactly, the tie-group test of the full check (``check_ties``) for a direction."""
    flat = np.asarray(theta).reshape(-1)
    groups = tie_groups(flat.real if np.iscomplexobj(flat) else flat)
    if not groups:
        return None
    out = np.array(directions, dtype=np.float64, copy=True)
    for g in groups:
        out[:, g] = out[:, g].mean(axis=1, keepdims=True)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    keep = norms[:, 0] > 0
    return out[keep] / norms[keep] if keep.any() else None


def check_ties(theta: np.ndarray, entries: np.ndarray, analytic: np.ndarray, noise: np.ndarray,
               one_sided: tuple[np.ndarray, np.ndarray], stack: EvaluateStack, eps: float, f0: float,
               f_scale: float, chunk: int, bracketed: np.ndarray | None = None,
               delta: float = 0.0) -> TieVerdict | None:
    """The tie-group test for the kink entries ``entries`` (flat indices into θ), given the
    whole analytic gradient (θ's size), their noise estimates and one-sided derivatives (each
    entry moved alone), whether each lies within its own [D−, D+] (default: all), and the
    measured noise ``delta`` of one evaluation of f. A group is every entry of θ with the
    value of a kink entry (when there are two or more). None when no group has anything to say."""
    theta = np.asarray(theta, dtype=np.float64)
    flat = theta.reshape(-1)
    grad = np.asarray(analytic, dtype=np.float64).reshape(-1)
    entries = np.asarray(entries, dtype=np.intp)
    bracketed = np.ones(entries.size, dtype=bool) if bracketed is None else np.asarray(bracketed, dtype=bool)
    kinked = flat[entries]
    groups, members = [], []
    for value in np.unique(kinked):
        everyone = np.flatnonzero(flat == value)
        if everyone.size >= 2:
            groups.append(np.flatnonzero(kinked == value))
            members.append(everyone)
    if not groups:
        return None
    values = np.array([flat[m[0]] for m in members])
    h = eps * np.maximum(1.0, np.abs(values))
    scales = (1.0, -1.0, 0.5, -0.5)
    steps = np.array([(values + c * h) - values for c in scales])   # the changes actually made
    f = _evaluate(stack, flat, theta.shape, members, values, steps, chunk)
    d_plus = (f[[0, 2]] - f0) / steps[[0, 2]]            # (2 scales, groups)
    d_minus = (f0 - f[[1, 3]]) / (-steps[[1, 3]])
    central = (f[[0, 2]] - f[[1, 3]]) / (steps[[0, 2]] - steps[[1, 3]])
    fmax = np.maximum(np.abs(f).max(axis=0), max(abs(f0), f_scale))
    # f's evaluation noise, from ε·|f| or as measured (whichever is larger), over the step
    noise_f = np.maximum(8.0 * F64_EPS * fmax, 4.0 * delta)
    rounding = noise_f / np.abs(steps[[0, 2]])
    gap = d_plus - d_minus
    # a kink along the group's direction keeps its gap at h/2 (2·gap(h/2) − gap(h) cancels the
    # curvature, leaving the jump); smooth: the gap is curvature and noise
    jump = 2.0 * gap[1] - gap[0]
    kink_along = (np.abs(jump) > SAFETY * np.sqrt(70.0) / 4.0 * rounding[0]) & \
        (np.abs(gap[1]) > 0.75 * np.abs(gap[0])) & (np.sign(gap[1]) == np.sign(gap[0]))
    total = np.array([grad[m].sum() for m in members])
    typical = float(np.median(noise)) if noise.size else 0.0
    own = np.array([float(np.sqrt((noise[g] ** 2).sum() + (m.size - g.size) * typical ** 2))
                    for g, m in zip(groups, members)])
    # smooth along the group: ⟨a, u⟩ must be the derivative, Richardson-extrapolated from the
    # central differences at h and h/2, whose difference bounds its truncation
    rate = (4.0 * central[1] - central[0]) / 3.0
    smooth_slack = own + 2.0 * rounding[1] + np.abs(central[0] - central[1])
    smooth_bad = np.abs(total - rate) > SAFETY * smooth_slack
    # not smooth: the bracket, violated by about the same amount at h and at h/2
    truncation = 2.0 * np.maximum(np.abs(d_plus[0] - d_plus[1]), np.abs(d_minus[0] - d_minus[1]))
    slack = rounding + own + truncation
    lo, hi = np.minimum(d_plus, d_minus), np.maximum(d_plus, d_minus)
    excess = np.maximum(lo - total, total - hi)                   # > 0 outside the bracket
    bracket_bad = (excess[0] > SAFETY * slack[0]) & (excess[1] > SAFETY * slack[1]) & \
        (excess[1] >= 0.5 * excess[0])
    bad = np.where(kink_along, bracket_bad, smooth_bad)
    excused = [groups[k][~bracketed[groups[k]]] for k in np.flatnonzero(~kink_along & ~smooth_bad)]
    excused = np.concatenate(excused) if excused else np.zeros(0, dtype=np.intp)
    if not bad.any():
        return TieVerdict(np.zeros(0, dtype=np.intp), "", "", excused) if excused.size else None
    # moved up alone, a tied entry becomes the maximum of every window it is tied in (D+); a
    # backward that gives each tied entry every such window's gradient returns D+ for each (an
    # entry whose D+ is 0, such as b in relu(a − b) at a = b, gets nothing from that bug)
    every = []
    for g in groups:
        alone = [one_sided[0][g], one_sided[1][g]]
        every.append(any(bool(np.all(np.abs(grad[entries[g]] - side) <= 1e-6 * np.abs(side) + SAFETY * noise[g])
                              and np.all(np.abs(side) > SAFETY * noise[g])) for side in alone))
    chosen = [k for k in np.flatnonzero(bad)]
    return TieVerdict(np.concatenate([groups[k] for k in chosen]),
                      _reason(groups, members, chosen, every, kink_along, entries, theta.shape, values,
                              d_plus, d_minus, rate, total),
                      "gradient sent to every tied entry" if all(every[k] for k in chosen)
                      else "tied entries' gradients do not add up", excused)


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


def _reason(groups, members, chosen, every, kink_along, entries, shape, values, d_plus, d_minus,
            rate, total) -> str:
    n_entries = sum(members[k].size for k in chosen)
    k = chosen[0]
    shown = list(entries[groups[k]][:SHOWN])
    shown += [i for i in members[k] if i not in shown][:SHOWN - len(shown)]
    where = [tuple(int(i) for i in np.unravel_index(int(p), shape)) for p in shown]
    more = members[k].size - len(where)
    named = " and ".join(str(w) for w in where) + (f" and {more} more" if more else "")
    groups_text = (f"{len(chosen)} group{'s' if len(chosen) > 1 else ''} of tied entries "
                   f"(equal values, {n_entries} entries)")
    moved = rate[k] if not kink_along[k] else 0.5 * (d_plus[1, k] + d_minus[1, k])
    example = (f"e.g. entries {named} are all {values[k]:.6g}: moving them together changes f at "
               f"rate {moved:.6g}, but their analytic values add up to {total[k]:.6g}")
    if all(every[j] for j in chosen):
        return (f"gradient sent to every tied entry: in {groups_text} each entry gets the whole "
                f"gradient, which only one of them (or a share of it) may take; {example}")
    if not kink_along[k]:
        return (f"the gradients of tied entries do not add up: in {groups_text} the sum of the "
                f"analytic values is not the derivative along the direction that moves the group "
                f"together; {example}")
    return (f"the gradients of tied entries do not add up: in {groups_text} the sum of the "
            f"analytic values lies outside the one-sided derivatives along the direction that "
            f"moves the group together ({min(d_plus[1, k], d_minus[1, k]):.6g} .. "
            f"{max(d_plus[1, k], d_minus[1, k]):.6g}); {example}")
