"""The config's JSON Schema, generated from the validation models: the top-level pydantic Spec,
with ``layers`` and ``loss`` narrowed to a discriminated union (on ``type``) of one entry model
per registered class, each built from that class's option model. Plugins loaded before the call
appear too. Nothing here is written by hand, so the schema cannot drift from the validation.
"""
from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, Field, create_model
from pydantic.json_schema import GenerateJsonSchema

from ..layers.options import options_model
from ..layers.catalog import registered
from .models import Spec

DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _Lenient(GenerateJsonSchema):
    # A plugin option typed with an arbitrary class has no JSON Schema: accept any value there
    # rather than refusing to describe the whole config.
    def handle_invalid_for_json_schema(self, schema, error_info):
        return {}


def _entry(name: str, cls: type, suffix: str, **extra: Any) -> type[BaseModel]:
    doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    model = create_model(f"{name}{suffix}", __base__=options_model(cls), __doc__=doc or None,
                         type=(Literal[name], Field(description=f"`{name}`")), **extra)
    return model


def _union(models: list[type[BaseModel]]) -> Any:
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator="type")]


def spec_model() -> type[BaseModel]:
    """Spec with typed layer and loss entries for every registered class."""
    layers = registered("layer")
    losses = registered("loss")
    names = Literal[tuple(layers)]
    # An `activation:` is a layer name or a layer entry (without its own activation).
    shorthand = _union([_entry(n, c, "Entry") for n, c in layers.items()])
    activation = (Optional[Union[names, shorthand]],
                  Field(None, description="A layer applied after this one: a name or an entry."))
    layer_entry = _union([_entry(n, c, "Layer", activation=activation) for n, c in layers.items()])
    loss_entry = _union([_entry(n, c, "Loss") for n, c in losses.items()])
    return create_model(
        "GradcheckConfig", __base__=Spec, __doc__=Spec.__doc__,
        layers=(list[layer_entry], Field(min_length=1, description="The layers, input to output.")),
        loss=(Union[Literal[tuple(losses)], loss_entry],
              Field(description="A loss name, or an entry with its options.")))


def json_schema() -> dict[str, Any]:
    schema = spec_model().model_json_schema(schema_generator=_Lenient)
    schema["title"] = "gradcheck config"
    return {"$schema": DIALECT, **schema}


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
