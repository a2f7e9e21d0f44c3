"""gradcheck: check hand-written backpropagation against finite differences, layer by layer.

The library API is importable without the command line::

    from gradcheck_cli import load_spec, build_network, check_network
    result = check_network(build_network(load_spec("configs/mlp.yaml")))

Names are imported on first use, so that ``gradcheck --help`` does not pay for numpy.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "register": "registry", "Layer": "layer", "Loss": "layer", "ShapeError": "errors",
    "load_spec": "spec", "spec_from_text": "spec", "Spec": "spec", "plan_network": "plan",
    "build_network": "network", "Network": "network",
    "check_network": "check", "CheckSettings": "check",
    "ConfigResult": "results", "Row": "results", "Comparison": "results", "Status": "results",
    "GradcheckError": "errors", "SpecError": "errors", "PluginError": "errors",
    "load_plugin": "plugins", "check_file": "runner",
    "check_layer": "notebook", "check_spec": "notebook", "Report": "notebook",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gradcheck_cli' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
