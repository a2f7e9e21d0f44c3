"""A layer's backward, called and validated once (exceptions, the return value, missing or extra
keys, writing into dout, nondeterminism, state kept on self), since every row of a layer depends
on it. What is wrong with it is a typed value (BackwardFailure), not a message to search."""
from __future__ import annotations

import enum
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import GradcheckError


class Defect(enum.Enum):
    """One way a backward can be unusable or wrong as a whole."""

    RAISED = "raised"                  # backward raised: nothing it returns exists
    UNUSABLE = "unusable"              # it returned something that is not (dx, grads-dict)
    IN_PLACE = "in place"              # it wrote into the caller's dout
    MISSING = "missing"                # grads lacks a parameter
    EXTRA = "extra"                    # grads has keys that are not parameters
    NONDETERMINISTIC = "nondeterministic"
    NOT_COMPUTED = "not computed"      # end to end: a backward after it broke the chain


@dataclass(frozen=True)
class BackwardFailure:
    """Why a layer's backward cannot be trusted: the message a row shows, and what is wrong."""

    message: str
    defects: frozenset[Defect]

    @classmethod
    def of(cls, message: str, *defects: Defect) -> "BackwardFailure":
        return cls(message, frozenset(defects))

    def has(self, *defects: Defect) -> bool:
        return bool(self.defects & set(defects))

    def __str__(self) -> str:
        return self.message


def dx_none(theta: np.ndarray) -> str:
    """Why dx = None fails for a float input."""
    return (f"backward returned dx = None, but x is {theta.dtype} (shape {tuple(theta.shape)}): None "
            "says that no gradient flows into x, which only integer inputs (token indices) may "
            "say; the layers before this one get no gradient. Return an array of x's shape")


def run_backward(layer: Any, dout: np.ndarray, cache: Any) -> tuple[dict[str, Any], BackwardFailure | None]:
    """The layer's backward as {tensor: gradient}, or the reason it cannot be used."""
    before = np.array(dout, copy=True)
    try:
        result = layer.backward(dout, cache)
    except GradcheckError:  # ours (a time limit, a located error): as it is
        raise
    except (Exception, SystemExit) as exc:  # plugin code may call sys.exit
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
        return {}, BackwardFailure.of(f"backward raised {type(exc).__name__}: {exc}{where}", Defect.RAISED)
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        return {}, BackwardFailure.of("backward must return (dx, grads) with grads a dict, got "
                                      f"{type(result).__name__}", Defect.UNUSABLE)
    dx, grads = result
    if not np.array_equal(before, dout, equal_nan=True):
        return {"x": dx, **grads}, BackwardFailure.of(
            "backward modifies its upstream gradient dout in place (the caller's array): copy it "
            "before changing it", Defect.IN_PLACE)
    params = set(layer.params)
    missing, extra = sorted(params - set(grads)), sorted(set(map(str, grads)) - params)
    out = {"x": dx, **{k: v for k, v in grads.items() if k in params}}
    notes, defects = [], []
    if missing:
        notes.append(f"grads has no {', '.join(missing)}")
        defects.append(Defect.MISSING)
    if extra:
        notes.append(f"grads has keys that are not parameters: {', '.join(extra)}")
        defects.append(Defect.EXTRA)
    return out, BackwardFailure.of("; ".join(notes), *defects) if notes else None


def nondeterministic(layer: Any, dout: np.ndarray, cache: Any,
                     first: dict[str, Any]) -> BackwardFailure | None:
    """Backward called twice on the same inputs must give the same numbers."""
    again, failure = run_backward(layer, dout, cache)
    if failure:
        return None
    for k, v in first.items():
        if v is None or again.get(k) is None:
            if v is None and again.get(k) is None:   # dx = None (token input) both times
                continue
            return _differs(k)
        try:
            same = np.array_equal(np.asarray(v), np.asarray(again.get(k)), equal_nan=True)
        except (TypeError, ValueError):
            same = False
        if not same:
            return _differs(k)
    return None


def state_on_self(layer: Any, x: np.ndarray, dout: np.ndarray, cache: Any, first: dict[str, Any],
                  rng: np.random.Generator) -> dict[str, str]:
    """{tensor: why} for the gradients that change when forward runs on another input between
    the forward that made ``cache`` and the backward: backward then reads something forward
    keeps on ``self`` (the cs231n habit), and in training it would use the wrong batch.
    The layer's state is restored by a last forward on ``x``."""
    x = np.asarray(x)
    other = rng.permutation(x.reshape(-1)).reshape(x.shape)
    if x.size < 2 or np.array_equal(other, x):
        return {}
    try:
        layer.forward(other)
        again, failure = run_backward(layer, dout, cache)
    except GradcheckError:  # ours (a time limit): as it is
        raise
    except (Exception, SystemExit):  # not ours to judge here: the checks themselves run forward
        return {}
    finally:
        try:
            layer.forward(x.copy())
        except (Exception, SystemExit):
            pass
    if failure:
        return {}
    out = {}
    for k, v in first.items():
        w = again.get(k)
        try:
            same = (v is None and w is None) or np.array_equal(np.asarray(v), np.asarray(w), equal_nan=True)
        except (TypeError, ValueError):
            same = False
        if not same:
            out[k] = (f"backward reads state that forward left on the layer (self), not only its "
                      f"cache: after a forward with another input, backward with the first "
                      f"forward's cache gives a different d{k}; keep everything backward needs in "
                      f"the cache forward returns")
    return out




def _differs(k: str) -> BackwardFailure:
    return BackwardFailure.of(f"backward is not deterministic: a second call with the same inputs "
                              f"gives a different d{k}", Defect.NONDETERMINISTIC)
