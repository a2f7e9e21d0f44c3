"""Starter configs written by ``gradcheck init``, shipped as package data.

Each template is a config (with ``{config}`` and ``{plugin}`` placeholders in its comments) and,
for a custom layer, a plugin skeleton written next to it.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Template:
    name: str
    config: str                 # resource name of the config
    plugin: str | None = None   # resource name of a plugin skeleton, if any
    plugin_name: str = "my_layers.py"

    def read(self, resource: str) -> str:
        return resources.files(__name__).joinpath(resource).read_text(encoding="utf-8")


TEMPLATES: dict[str, Template] = {t.name: t for t in [
    Template("mlp", "mlp.yaml"),
    Template("convnet", "convnet.yaml"),
    Template("rnn", "rnn.yaml"),
    Template("custom-layer", "custom-layer.yaml", plugin="custom_layer.py.tmpl"),
]}
