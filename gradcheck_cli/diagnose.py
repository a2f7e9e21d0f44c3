"""Diagnosis of a failing gradient: which common backprop bug explains the numbers, if any.

Each hypothesis is a small function of (analytic, numeric, context) that returns a message only
when the hypothesis, applied to the numeric gradient, reproduces the analytic one to within the
pass threshold; so no hypothesis is ever reported for a correct gradient or one it does not explain.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Context:
    """What the hypotheses may know about the tensor."""

    tensor: str
    batch: int
    layout: str
    pass_rtol: float


def _rel(a: np.ndarray, n: np.ndarray) -> float:
    denom = float(np.linalg.norm(a) + np.linalg.norm(n))
    return 0.0 if denom == 0.0 else float(np.linalg.norm(a - n)) / denom


def constant_factor(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """analytic = c · numeric for a recognizable c (sign, 2, 1/2, m, 1/m)."""
    m = ctx.batch
    named = [(-1.0, "sign flipped (analytic = −numeric)"), (2.0, "extra factor 2"),
             (0.5, "missing factor 2 (analytic = numeric/2)")]
    if m > 1:
        named += [(float(m), f"missing 1/m (analytic = m·numeric, m = {m})"),
                  (1.0 / m, f"extra 1/m (analytic = numeric/m, m = {m})")]
    for c, text in named:
        if _rel(a, c * n) <= ctx.pass_rtol * 10:
            return text
    return None


def all_zero(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The analytic gradient is zero while the numeric one is not: never written, or a term forgotten."""
    if not np.any(a) and np.any(n):
        return f"d{ctx.tensor} is all zeros but the numeric gradient is not: never computed or not returned?"
    return None


HYPOTHESES: list[Callable[[np.ndarray, np.ndarray, Context], str | None]] = [
    all_zero, constant_factor,
]


def diagnose(a: np.ndarray, n: np.ndarray, ctx: Context) -> str | None:
    """The first hypothesis that explains a same-shaped failing gradient, or None."""
    if a.shape != n.shape:
        return None
    for hypothesis in HYPOTHESES:
        found = hypothesis(a, n, ctx)
        if found:
            return found
    return None
