"""Layer options: a validation model generated from each layer class's ``__init__`` signature."""
from __future__ import annotations

import inspect
import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

_CACHE: dict[type, type[BaseModel]] = {}


def options_model(cls: type) -> type[BaseModel]:
    """A strict pydantic model of the keyword options ``cls(**options)`` accepts."""
    if cls in _CACHE:
        return _CACHE[cls]
    init = cls.__init__
    sig = inspect.signature(init)
    try:
        hints = typing.get_type_hints(init, include_extras=True)
    except Exception:  # unresolvable annotations in a plugin: validate presence only
        hints = {}
    fields: dict[str, Any] = {}
    extra = "forbid"
    # A plugin class without __init__ inherits object's (*args, **kwargs): it takes no options.
    parameters = [] if init is object.__init__ else list(sig.parameters.items())[1:]
    for name, p in parameters:
        if p.kind is p.VAR_KEYWORD:
            extra = "allow"
            continue
        if p.kind is p.VAR_POSITIONAL:
            continue
        ann = hints.get(name, Any)
        fields[name] = (ann, ... if p.default is p.empty else p.default)
    model = create_model(f"{cls.__name__}Options",
                         __config__=ConfigDict(strict=True, extra=extra, allow_inf_nan=False,
                                               arbitrary_types_allowed=True),
                         **fields)
    _CACHE[cls] = model
    return model


def option_table(cls: type) -> list[tuple[str, str, str]]:
    """(name, type, default) for each option, for `gradcheck layers` and the README."""
    rows = []
    for name, field in options_model(cls).model_fields.items():
        ann = field.annotation
        text = type_text(ann, field.metadata)
        default = "required" if field.is_required() else repr(field.default)
        rows.append((name, text, default))
    return rows


def type_text(ann: Any, metadata: list) -> str:
    """An option's type and bounds as a reader writes them (`int ≥ 1`, `'same' | 'valid'`)."""
    origin = typing.get_origin(ann)
    if origin is typing.Literal:
        text = " | ".join(repr(a) for a in typing.get_args(ann))
    elif origin is typing.Annotated:  # nested constraints, e.g. inside `int | list[int > 0]`
        inner, *extra = typing.get_args(ann)
        text = type_text(inner, list(extra))
    elif origin in (typing.Union, types.UnionType):
        text = " | ".join("null" if a is type(None) else type_text(a, []) for a in typing.get_args(ann))
    elif origin is list:
        text = f"list[{', '.join(type_text(a, []) for a in typing.get_args(ann))}]"
    elif isinstance(ann, type):
        text = ann.__name__
    else:
        text = str(ann).replace("typing.", "")
    for m in metadata:
        for attr, op in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            if getattr(m, attr, None) is not None:
                text += f" {op} {getattr(m, attr)}"
    return text
