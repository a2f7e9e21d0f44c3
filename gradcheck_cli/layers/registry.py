"""The layer registry: type names in a spec map to layer classes here, never through if/elif chains.

Kept free of numpy, and of the layer library: the built-ins import ``register`` from here, and
``layers/catalog.py`` imports them all, so that what asks the catalog sees every built-in.
"""
from __future__ import annotations

import inspect
from typing import Callable, TypeVar

from ..errors import RegistryError

T = TypeVar("T", bound=type)

_REGISTRY: dict[str, type] = {}


def register(name: str) -> Callable[[T], T]:
    """Class decorator: make a layer (or loss) class available to specs as ``type: name``."""
    if not isinstance(name, str) or not name.isidentifier():
        raise RegistryError(f"layer names must be identifiers, got {name!r}")

    def decorate(cls: T) -> T:
        for method in ("forward", "backward"):
            if not callable(getattr(cls, method, None)):
                raise RegistryError(f"layer {name!r} ({cls.__qualname__}) has no {method}() method")
        old = _REGISTRY.get(name)
        if old is not None and old is not cls and not _same_definition(old, cls):
            raise RegistryError(
                f"layer type {name!r} is already registered by {_origin(old)}; "
                f"{_origin(cls)} cannot register it again: choose another name")
        cls.type_name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _origin(cls: type) -> str:
    try:
        return f"{cls.__qualname__} in {inspect.getsourcefile(cls)}"
    except (TypeError, OSError):
        return f"{cls.__module__}.{cls.__qualname__}"


def _same_definition(a: type, b: type) -> bool:
    # Loading the same plugin file twice (tests, or two configs naming it) re-creates its
    # classes; that is a reload, not a clash.
    return a.__qualname__ == b.__qualname__ and _origin(a) == _origin(b)


def lookup(name: str) -> type | None:
    return _REGISTRY.get(name)


def registered(kind: str | None = None) -> dict[str, type]:
    """The registry as a name-sorted dict, optionally only layers (``"layer"``) or losses (``"loss"``)."""
    return {k: v for k, v in sorted(_REGISTRY.items())
            if kind is None or getattr(v, "kind", "layer") == kind}


def unregister(name: str) -> None:
    """Forget a layer type (a notebook cell that redefines its class replaces the old one)."""
    _REGISTRY.pop(name, None)


def is_builtin(cls: type) -> bool:
    return cls.__module__.startswith("gradcheck_cli.layers")
