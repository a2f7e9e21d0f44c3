"""Every layer type a spec may name: importing this module registers the built-ins, so that
``lookup`` and ``registered`` from here see them (and any plugin loaded since)."""
from __future__ import annotations

from . import (activations, attention, classification_losses, composite, conv,  # noqa: F401
               dense, dropout, embedding, linear, norm, pool, recurrent, regression_losses,
               reshape, softmax)
from .registry import is_builtin, lookup, register, registered, unregister

__all__ = ["is_builtin", "lookup", "register", "registered", "unregister"]
