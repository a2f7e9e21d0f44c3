"""The spec schema: top-level keys validated with pydantic, errors located in the source file.

Layer entries are validated later, against the option signature of their registered class
(see plan.py), so that plugin layers are checked exactly like built-ins.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from annotated_types import Ge, Gt, Le
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .source import Document, KeyPath, load_document, parse_text

#: Sizes beyond this are refused at validation, before anything is allocated.
MAX_DIM = 1 << 24

Dim = Annotated[int, Ge(1), Le(MAX_DIM)]


class _Model(BaseModel):
    # strict: "5" is not 5 and true is not 1; extra keys are errors; inf/nan are not numbers.
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class InputSpec(_Model):
    """The network input: per-example shape and batch size m."""

    shape: list[Dim] = Field(min_length=1, max_length=6,
                             description="Per-example shape, without the batch axis.")
    batch: Dim = Field(4, description="Batch size m.")
    vocab: Union[Dim, None] = Field(None, description="The input holds integer indices in "
                                                      "[0, vocab) (token ids for an embedding).")


class CheckSpec(_Model):
    """How the finite-difference check runs; command-line options override these."""

    eps: Union[Literal["auto"], Annotated[float, Gt(0), Le(1)]] = Field(
        "auto", description="Step h (scaled per coordinate by max(1, |θ|)), or auto for the "
                            "rounding-optimal step of the method and dtype.")
    method: Literal["central", "forward", "richardson", "complex"] = Field(
        "central", description="Difference method: central (default), forward, richardson "
                               "(central at h, h/2, h/4 combined), complex (complex step).")
    mode: Literal["full", "sample", "directional"] = Field(
        "full", description="Check every entry, a seeded sample of entries per tensor, or "
                            "random directions per tensor.")
    samples: Annotated[int, Ge(1), Le(1_000_000)] = Field(
        16, description="Entries per tensor in sample mode (the largest |analytic| always among them).")
    directions: Annotated[int, Ge(1), Le(1000)] = Field(
        4, description="Random unit directions per tensor in directional mode.")
    pass_rtol: Union[Annotated[float, Gt(0), Le(1)], None] = Field(
        None, description="Relative error below which a check passes (default: per dtype).")
    warn_rtol: Union[Annotated[float, Gt(0), Le(1)], None] = Field(
        None, description="Relative error below which a check warns instead of failing.")


class Spec(_Model):
    """A network to check: input, layers, loss, and how to check it."""

    name: Union[str, None] = Field(None, description="Defaults to the file stem.")
    seed: Annotated[int, Ge(0), Le(2**63 - 1)] = 0
    dtype: Literal["float64", "float32"] = "float64"
    layout: Literal["rows", "columns"] = "rows"
    input: InputSpec
    layers: list[dict[str, Any]] = Field(min_length=1)
    loss: Union[str, dict[str, Any]]
    l2: Annotated[float, Ge(0)] = 0.0
    check: CheckSpec = CheckSpec()
    plugins: list[str] = Field(default_factory=list,
                               description="Plugin files, relative to the config; loaded only "
                                           "with --allow-plugins.")

    # Not part of the schema: where this spec came from, for locating later errors.
    _doc: Document | None = None

    @property
    def doc(self) -> Document:
        assert self._doc is not None
        return self._doc


def load_spec(path: str | Path, display: str | None = None) -> Spec:
    """Read, parse and validate one config file; raise SpecError located in it."""
    doc = load_document(path, display)
    spec = validate_document(doc)
    if spec.name is None:
        spec.name = Path(path).stem
    return spec


def spec_from_text(text: str, fmt: str = "yaml", path: str = "<config>") -> Spec:
    spec = validate_document(parse_text(text, fmt, path))
    if spec.name is None:
        spec.name = Path(path).stem if path != "<config>" else "network"
    return spec


def validate_document(doc: Document) -> Spec:
    try:
        spec = Spec.model_validate(doc.data)
    except ValidationError as exc:
        raise pydantic_error(doc, exc, model=Spec) from None
    spec._doc = doc
    return spec


def pydantic_error(doc: Document, exc: ValidationError, model: type[BaseModel] | None = None,
                   prefix: KeyPath = (), valid_keys: list[str] | None = None):
    """The first validation error, as a located SpecError with a message that says what is valid."""
    # On one line, an unknown key first: `unitz: 3` is a typo of the `units` reported missing.
    base = _data_at(doc.data, prefix)
    groups: dict[KeyPath, list[dict]] = {}
    for e in exc.errors():
        groups.setdefault(_real_loc(base, e), []).append(e)
    # First in file order; a key that is missing has no line, and its cause is often a typo'd
    # key elsewhere (`layer:` for `layers:`), so that typo is reported first.
    loc, errs = sorted(groups.items(), key=lambda kv: (kv[1][0]["type"] == "missing",
                                                       doc.locate(prefix + kv[0])[0] or 0,
                                                       kv[1][0]["type"] != "extra_forbidden"))[0]
    keypath = prefix + loc
    # Several errors at one key are the alternatives of a union (eps: 'auto' or a number):
    # say all that would be valid, not only the first alternative pydantic tried.
    message = describe(errs[0], model, valid_keys, loc) if len(errs) == 1 else _alternatives(errs)
    more = len(groups) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return doc.error(message, keypath)


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
    return f"expected {' or '.join(alts)}, got {_kind(value)} ({value!r:.40})"


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
            from .options import _type_text  # a layer option: say its type and bounds

            hint = f"`{loc[-1]}` takes {_type_text(field.annotation, field.metadata)}"
        return "required key is missing" + (f": {hint}" if hint else "")
    if kind == "extra_forbidden":
        keys = valid_keys if valid_keys is not None else _fields_at(model, loc[:-1])
        name = str(loc[-1]) if loc else "?"
        close = difflib.get_close_matches(name, keys, n=1)
        hint = f"did you mean `{close[0]}`? " if close else ""
        return f"unknown key `{name}`: {hint}valid keys: {', '.join(keys)}"
    if kind in _TYPE_NAMES:
        wanted = _TYPE_NAMES[kind]
        if kind == "dict_type" and len(loc) == 2 and loc[0] == "layers":
            wanted = "a mapping with a `type` key, e.g. `{type: dense, units: 10}`"
        got = _kind(value) if value is None else f"{_kind(value)} ({value!r:.40})"
        hint = _MISSING_HINTS.get(str(loc[-1])) if len(loc) == 1 or loc[-1] == "shape" else None
        return f"expected {wanted}, got {got}" + (f": {hint}" if hint else "")
    if kind == "finite_number":
        return f"expected a finite number, got {value!r}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        ctx = err.get("ctx", {})
        bound = next(iter(ctx.values()), "?")
        op = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<",
              "less_than_equal": "≤"}[kind]
        return f"must be {op} {bound}, got {value!r}"
    if kind == "literal_error":
        return f"{err['msg'].replace('Input should be', 'expected')}, got {value!r:.40}"
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
