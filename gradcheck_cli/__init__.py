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
    "register": "layers.registry", "Layer": "layers.protocol", "Loss": "layers.protocol",
    "ShapeError": "errors", "load_spec": "config.models", "spec_from_text": "config.models",
    "Spec": "config.models", "plan_network": "config.plan",
    "build_network": "check.network", "Network": "check.network",
    "check_network": "check.engine", "CheckSettings": "check.engine",
    "ConfigResult": "results", "Row": "results", "Comparison": "results", "Status": "results",
    "GradcheckError": "errors", "SpecError": "errors", "PluginError": "errors",
    "load_plugin": "layers.plugins", "check_file": "run.pipeline",
    "check_layer": "integrations.notebook", "check_spec": "integrations.notebook",
    "Report": "integrations.notebook",
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
