"""The quantities of a config a constant factor in a gradient may be (the batch size, a pool's k²,
a dropout's 1/(1 − p), attention's √d, the L2 λ, ...), and the names of a tensor's axes.

A diagnosis that finds analytic = c·numeric says c together with every quantity it equals, or
none: naming one of several coincident quantities (k² = m = 4) would send the reader to the
wrong line. Pure functions; nothing here computes a gradient.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

#: option names (lower case) learners and built-ins use for each concept
KERNEL = ("kernel", "kernel_size", "k", "pool", "pool_size", "window", "size", "f")
STRIDE = ("stride", "s")
HEADS = ("heads", "n_heads", "num_heads", "nhead")
DROP = ("p", "rate", "drop", "drop_prob", "p_drop", "dropout")
KEEP = ("keep", "keep_prob", "p_keep")
LAMBDA = ("lam", "lambd", "lmbda", "reg", "l2", "weight_decay", "wd", "decay_rate")
HIDDEN = ("hidden", "hidden_size", "units", "n_h", "h")

#: relative tolerance for "c equals this quantity" (c is a least-squares fit, known far better)
MATCH_RTOL = 1e-4


@dataclass(frozen=True)
class Quantity:
    """A positive number of the config and how to say it, e.g. (4.0, "k² (kernel 2)")."""

    value: float
    name: str
    symbol: str


def layer_options(layer: Any) -> dict[str, float]:
    """The layer's numeric options as it stores them (plugins keep them as attributes)."""
    out: dict[str, float] = {}
    for key, value in vars(layer).items():
        if key.startswith("_") or key in ("params", "layout"):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[key.lower()] = float(value)
    return out


def _first(options: dict[str, float], names: Iterable[str]) -> tuple[str, float] | None:
    for n in names:
        if n in options and options[n] > 0:
            return n, options[n]
    return None


def _g(v: float) -> str:
    return f"{v:g}"


def config_quantities(options: dict[str, float], axes: list[tuple[str, str, int]], batch: int,
                      l2: float = 0.0) -> list[Quantity]:
    """Every quantity a factor may be, for a layer with these options, input axes
    ``[(word, symbol, length), ...]`` (batch axis included) and the config's batch size and l2."""
    qs: list[Quantity] = [Quantity(2.0, "2", "2")]  # the plain factor 2 (a ½ forgotten)
    if batch > 1:
        qs.append(Quantity(float(batch), f"m (m = {batch}, the batch size)", "m"))
    for word, symbol, length in axes:
        if word == "time" and length > 1:
            qs.append(Quantity(float(length), f"T (T = {length}, the time steps)", "T"))
        if word == "feature" and length > 1 and symbol == "D":
            qs.append(Quantity(float(length), f"D (D = {length}, the features)", "D"))
    spatial = [n for w, _, n in axes if w in ("height", "width")]
    if len(spatial) == 2 and math.prod(spatial) > 1:
        qs.append(Quantity(float(math.prod(spatial)), f"H·W (H·W = {math.prod(spatial)}, the spatial size)",
                           "H·W"))
    kernel = _first(options, KERNEL)
    if kernel:
        k = kernel[1]
        if k > 1:
            qs.append(Quantity(k, f"k (kernel {_g(k)})", "k"))
            qs.append(Quantity(k * k, f"k² (kernel {_g(k)}, the window size {_g(k * k)})", "k²"))
    stride = _first(options, STRIDE)
    if stride and stride[1] > 1:
        qs.append(Quantity(stride[1], f"the stride ({_g(stride[1])})", "s"))
    heads = _first(options, HEADS)
    d_model = next((n for w, s, n in axes if w == "feature"), None)
    if heads and heads[1] > 1:
        qs.append(Quantity(heads[1], f"heads (heads = {_g(heads[1])})", "heads"))
        qs.append(Quantity(math.sqrt(heads[1]), f"√heads (heads = {_g(heads[1])})", "√heads"))
    if d_model and any(n in options for n in HEADS):
        h = heads[1] if heads else 1.0
        d = d_model / h
        if d > 1 and d == int(d):
            qs.append(Quantity(math.sqrt(d), f"√d (d = {_g(d)}, the head size)", "√d"))
            qs.append(Quantity(d, f"d (d = {_g(d)}, the head size)", "d"))
    drop = _first(options, DROP)
    if drop and 0 < drop[1] < 1:
        p = drop[1]
        qs += [Quantity(p, f"p (p = {_g(p)})", "p"), Quantity(1 - p, f"1 − p (p = {_g(p)}, the keep probability)",
                                                            "1 − p")]
    keep = _first(options, KEEP)
    if keep and 0 < keep[1] < 1:
        q = keep[1]
        qs += [Quantity(q, f"the keep probability ({_g(q)})", "keep"),
               Quantity(1 - q, f"1 − keep (keep = {_g(q)})", "1 − keep")]
    lams = []
    lam = _first(options, LAMBDA)
    if lam:
        lams.append((lam[1], f"the layer's {lam[0]}"))
    if l2 > 0:
        lams.append((l2, "the config's l2"))
    for value, where in lams:
        qs.append(Quantity(value, f"λ (λ = {_g(value)}, {where})", "λ"))
        qs.append(Quantity(2 * value, f"2λ (λ = {_g(value)}, {where})", "2λ"))
        if batch > 1:
            qs.append(Quantity(value / batch, f"λ/m (λ = {_g(value)}, {where}; m = {batch})", "λ/m"))
    return _dedupe(qs)


def _dedupe(qs: list[Quantity]) -> list[Quantity]:
    seen: dict[tuple[str, float], Quantity] = {}
    for q in qs:
        seen.setdefault((q.symbol, round(q.value, 12)), q)
    return list(seen.values())


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= MATCH_RTOL * max(abs(a), abs(b))


def matching(c: float, quantities: list[Quantity]) -> list[str]:
    """Names of every quantity q with c = q or c = 1/q (|c| compared, the sign is said apart)."""
    a = abs(c)
    names = []
    for q in quantities:
        if _close(a, q.value):
            names.append(q.name)
        elif q.value != 0 and _close(a, 1.0 / q.value) and not _close(q.value, 1.0):
            names.append("1/" + (q.name if " " not in q.symbol and "/" not in q.symbol
                                 and "−" not in q.symbol else f"({q.symbol}) " + q.name[len(q.symbol) + 1:]))
    return names


# -- axes ------------------------------------------------------------------------------------------

_WORDS = {"T": "time", "L": "length", "D": "feature", "N": "feature", "C": "channel", "H": "height",
          "W": "width", "F": "feature"}


def example_axes(shapes_text: str, shape: tuple[int, ...]) -> list[tuple[str, str]]:
    """(word, symbol) of each per-example axis: from a layer's ``shapes`` text such as
    "(T, D) → (T, D)" when it names them, else by rank (features; time, features; channel,
    height, width), the conventions of sequence and image layers."""
    match = re.match(r"\s*\(([^)]*)\)", shapes_text or "")
    if match:
        names = [n.strip() for n in match.group(1).split(",") if n.strip()]
        if len(names) == len(shape) and all(re.fullmatch(r"[A-Za-z]", n) for n in names):
            return [(_WORDS.get(n.upper(), "feature"), n if n.upper() != "N" else "D") for n in names]
    by_rank = {1: [("feature", "D")], 2: [("time", "T"), ("feature", "D")],
               3: [("channel", "C"), ("height", "H"), ("width", "W")]}
    return by_rank.get(len(shape), [("axis", f"n{i}") for i in range(len(shape))])


def tensor_axes(shapes_text: str, shape: tuple[int, ...], layout: str) -> list[tuple[str, str, int]]:
    """(word, symbol, length) of every axis of an activation (the batch axis included)."""
    if layout == "columns":
        per = example_axes(shapes_text, shape[:-1])
        return [(w, s, n) for (w, s), n in zip(per, shape[:-1])] + [("batch", "m", shape[-1])]
    per = example_axes(shapes_text, shape[1:])
    return [("batch", "m", shape[0])] + [(w, s, n) for (w, s), n in zip(per, shape[1:])]


def axis_phrase(axis: tuple[str, str, int]) -> str:
    word, symbol, length = axis
    if word == "batch":
        return f"the batch axis (m = {length})"
    if word == "time":
        return f"the time axis (T = {length})"
    if word == "feature":
        return f"the feature axis ({symbol} = {length})"
    return f"the {word} axis ({symbol} = {length})"
