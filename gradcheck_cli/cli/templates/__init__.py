"""Starter configs written by ``gradcheck init``, shipped as package data.

Each template is a config (with ``{config}`` and ``{plugin}`` placeholders in its comments) and,
for a custom layer, a plugin skeleton written next to it.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path


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


def write_template(name: str, path: str | None = None, force: bool = False) -> tuple[list[Path], str]:
    """Write template ``name`` (its config at ``path``, default NAME.gradcheck.yaml, and a plugin
    skeleton beside it); return the files written and the command that checks them."""
    from ...errors import UsageError
    from ...report.formats import write_atomic

    chosen = TEMPLATES.get(name)
    if chosen is None:
        raise UsageError(f"no template named `{name}`: choose one of {', '.join(TEMPLATES)}")
    config = Path(path or f"{name}.gradcheck.yaml")
    plugin = config.parent / chosen.plugin_name if chosen.plugin else None
    targets = [config] + ([plugin] if plugin else [])
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise UsageError(f"{', '.join(existing)} already exists; use --force to overwrite")
    if not config.parent.is_dir():
        raise UsageError(f"folder {config.parent} does not exist")
    fill = {"{config}": str(config), "{plugin}": str(plugin or ""),
            "{plugin_file}": plugin.name if plugin else ""}
    text = chosen.read(chosen.config)
    for key, value in fill.items():
        text = text.replace(key, value)
    write_atomic(config, text)
    if plugin:
        write_atomic(plugin, chosen.read(chosen.plugin))
    return targets, f"gradcheck check {config}" + (f" --plugin {plugin}" if plugin else "")
