"""Pydantic's validation errors in the words of a config's author: the first error, located in
the file, saying what would be valid (the alternatives of a union, the keys a mapping takes, a
close match for a typo). No numpy here."""
from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import QUOTED, SpecError, SpecErrors, quote, shorten
from .document import Document, KeyPath


def pydantic_error(doc: Document, exc: ValidationError, model: type[BaseModel] | None = None,
                   prefix: KeyPath = (), valid_keys: list[str] | None = None) -> SpecError:
    """Every validation error, each a located SpecError with a message that says what is valid."""
    # On one line, an unknown key first: `unitz: 3` is a typo of the `units` reported missing.
    base = _data_at(doc.data, prefix)
    groups: dict[KeyPath, list[dict]] = {}
    for e in exc.errors():
        groups.setdefault(_real_loc(base, e), []).append(e)
    # In file order; a key that is missing has no line, and its cause is often a typo'd key
    # elsewhere (`layer:` for `layers:`), so that typo comes first.
    ordered = sorted(groups.items(), key=lambda kv: (kv[1][0]["type"] == "missing",
                                                     doc.locate(prefix + kv[0])[0] or 0,
                                                     kv[1][0]["type"] != "extra_forbidden"))
    # `unitz: 2` with `units` missing is one mistake: the unknown key's did-you-mean names the
    # missing one, so the missing key is not reported again.
    meant = set()
    for loc, errs in ordered:
        if errs[0]["type"] == "extra_forbidden" and loc:
            keys = valid_keys if valid_keys is not None else _fields_at(model, loc[:-1])
            meant.update(loc[:-1] + (close,) for close in difflib.get_close_matches(str(loc[-1]), keys, n=1))
    ordered = [(loc, errs) for loc, errs in ordered if not (errs[0]["type"] == "missing" and loc in meant)]
    problems = []
    for loc, errs in ordered:
        # Several errors at one key are the alternatives of a union (eps: 'auto' or a number):
        # say all that would be valid, not only the first alternative pydantic tried.
        message = describe(errs[0], model, valid_keys, loc) if len(errs) == 1 else _alternatives(errs)
        problems.append(doc.error(message, prefix + loc))
    return problems[0] if len(problems) == 1 else SpecErrors(problems)


_MISSING = object()


def _data_at(data: Any, keypath: KeyPath) -> Any:
    for part in keypath:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return _MISSING
    return data


def _real_loc(data: Any, err: dict) -> KeyPath:
    """The error's location without pydantic's union-member tags (``literal['auto']``, ``str``):
    a part is real when the data has it, or when it names the missing key itself."""
    loc = tuple(err["loc"])
    if data is _MISSING:  # layer entries written as a bare name: drop the tag-like parts
        return tuple(p for p in loc if not (isinstance(p, str) and not p.isidentifier()))
    out: list = []
    for k, part in enumerate(loc):
        if isinstance(data, dict) and part in data:
            data = data[part]
            out.append(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
            out.append(part)
        elif k == len(loc) - 1 and err["type"] == "missing" and isinstance(data, dict):
            out.append(part)
    return tuple(out)


def _alternative(err: dict) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "literal_error":
        return ctx.get("expected", "").replace("'", "`")
    if kind in _BOUNDS:
        return f"a number {_BOUNDS[kind]} {next(iter(ctx.values()), '?')}"
    if kind == "finite_number":
        return "a finite number"
    return _TYPE_NAMES.get(kind, err["msg"].replace("Input should be ", ""))


def _alternatives(errs: list[dict]) -> str:
    value = errs[0].get("input")
    alts = list(dict.fromkeys(_alternative(e) for e in errs))
    return f"expected {' or '.join(alts)}, got {_kind(value)} ({quote(value)})"


_BOUNDS = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<", "less_than_equal": "≤"}

_TYPE_NAMES = {"int_type": "an integer", "float_type": "a number", "string_type": "a string",
               "bool_type": "true or false", "list_type": "a list", "dict_type": "a mapping",
               "model_type": "a mapping", "int_from_float": "an integer"}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "a mapping",
            type(None): "nothing (null)"}.get(type(value), type(value).__name__)


def describe(err: dict, model: type[BaseModel] | None, valid_keys: list[str] | None,
             loc: KeyPath) -> str:
    kind, value = err["type"], err.get("input")
    if kind == "missing":
        hint = _MISSING_HINTS.get(str(loc[-1])) if loc else None
        field = model.model_fields.get(str(loc[-1])) if model is not None and loc else None
        if hint is None and field is not None and len(loc) == 1:
            from ..layers.options import type_text  # a layer option: say its type and bounds

            hint = f"`{loc[-1]}` takes {type_text(field.annotation, field.metadata)}"
        return "required key is missing" + (f": {hint}" if hint else "")
    if kind == "extra_forbidden":
        keys = valid_keys if valid_keys is not None else _fields_at(model, loc[:-1])
        name = str(loc[-1]) if loc else "?"
        close = difflib.get_close_matches(name, keys, n=1) if len(name) <= QUOTED else []
        hint = f"did you mean `{close[0]}`? " if close else ""
        return f"unknown key `{shorten(name)}`: {hint}valid keys: {', '.join(keys)}"
    if kind in _TYPE_NAMES:
        wanted = _TYPE_NAMES[kind]
        if kind == "dict_type" and len(loc) == 2 and loc[0] == "layers":
            wanted = "a mapping with a `type` key, e.g. `{type: dense, units: 10}`"
        got = _kind(value) if value is None else f"{_kind(value)} ({quote(value)})"
        hint = _MISSING_HINTS.get(str(loc[-1])) if len(loc) == 1 or loc[-1] == "shape" else None
        return f"expected {wanted}, got {got}" + (f": {hint}" if hint else "")
    if kind == "finite_number":
        return f"expected a finite number, got {quote(value)}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        ctx = err.get("ctx", {})
        bound = next(iter(ctx.values()), "?")
        op = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<",
              "less_than_equal": "≤"}[kind]
        return f"must be {op} {bound}, got {quote(value)}"
    if kind == "literal_error":
        return f"{err['msg'].replace('Input should be', 'expected')}, got {quote(value)}"
    if kind in ("too_short", "too_long"):
        ctx = err.get("ctx", {})
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        word = "at least" if kind == "too_short" else "at most"
        if bound is None:
            return err["msg"].replace("List should", "must").replace("Value should", "must")
        return (f"must have {word} {bound} entr{'y' if bound == 1 else 'ies'}, got "
                f"{ctx.get('actual_length', len(value) if hasattr(value, '__len__') else '?')}"
                + (f": {_MISSING_HINTS[str(loc[-1])]}" if loc and str(loc[-1]) in _MISSING_HINTS else ""))
    return err["msg"]


_MISSING_HINTS = {
    "input": "the per-example input, e.g. `input: {shape: [10], batch: 4}`",
    "shape": "the per-example shape without the batch axis, e.g. `shape: [10]`",
    "layers": "a list of layer entries, e.g. `layers: [{type: dense, units: 10}]` "
              "(`gradcheck layers` lists the types)",
    "loss": "a loss name or mapping, e.g. `loss: mse` (`gradcheck layers` lists the losses)",
}


def _fields_at(model: type[BaseModel] | None, loc: KeyPath) -> list[str]:
    for part in loc:
        if model is None:
            return []
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        ann = field.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return list(model.model_fields) if model is not None else []
