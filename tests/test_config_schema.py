"""`gradcheck schema`: a JSON Schema generated from the validation models and the registry, that
accepts every bundled config and template and rejects what the validator rejects."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from ci_helpers import PLUGIN, ROOT, gradcheck
from conftest import plugin_layers_hidden
from gradcheck_cli.cli import app
from gradcheck_cli.layers.options import options_model
from gradcheck_cli.layers.catalog import registered
from gradcheck_cli.config.schema import json_schema
from gradcheck_cli.config.document import load_document, parse_text

TEMPLATES = ROOT / "gradcheck_cli" / "cli" / "templates"


@pytest.fixture(scope="module", autouse=True)
def _builtins_only():
    # the schema lists every registered type: the plugin layers other tests of this process
    # registered (hundreds, with the mutant corpus) would join it and make it slow to generate
    with plugin_layers_hidden():
        yield


@pytest.fixture(scope="module")
def schema():
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.stderr
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


@pytest.fixture(scope="module")
def validator(schema):
    return jsonschema.Draft202012Validator(schema)


def test_schema_is_the_generated_one(schema):
    assert schema == json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_registered_layer_and_loss_is_an_entry_with_its_options(schema):
    mapping = schema["properties"]["layers"]["items"]["discriminator"]["mapping"]
    assert sorted(mapping) == sorted(registered("layer"))
    for name, cls in registered("layer").items():
        entry = schema["$defs"][mapping[name].split("/")[-1]]
        model = options_model(cls)
        assert entry["properties"]["type"]["const"] == name
        assert set(entry["properties"]) == {"type", "activation", *model.model_fields}
        required = {k for k, f in model.model_fields.items() if f.is_required()}
        assert set(entry.get("required", [])) == required | {"type"}
    loss = schema["properties"]["loss"]["anyOf"]
    assert loss[0]["enum"] == sorted(registered("loss"))


def _data(path: Path):
    return load_document(path).data


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.*")) + sorted(
    p for p in TEMPLATES.glob("*.yaml") if p.stem != "custom-layer"), ids=lambda p: p.name)
def test_bundled_configs_and_templates_are_valid(validator, path):
    errors = [e.message for e in validator.iter_errors(_data(path))]
    assert errors == []


@pytest.mark.parametrize("text", [
    "input: {shape: [3]}\nlayers: [{type: dense}]\nloss: mse\n",                    # units missing
    "input: {shape: [3]}\nlayers: [{type: dense, units: 2, unit: 3}]\nloss: mse\n",  # unknown option
    "input: {shape: [3]}\nlayers: [{type: dens, units: 2}]\nloss: mse\n",            # unknown type
    "input: {shape: [3]}\nlayers: [{type: dense, units: 0}]\nloss: mse\n",           # bound
    "input: {shape: [3]}\nlayers: [{type: dense, units: 2}]\nloss: relu\n",          # not a loss
    "input: {shape: [3]}\nlayers: [{type: dense, units: 2, activation: mse}]\nloss: mse\n",
    "input: {shape: [3]}\nlayers: []\nloss: mse\n",
    "input: {shape: [3]}\nlayers: [{type: dense, units: 2}]\nloss: mse\ndtype: float16\n",
])
def test_schema_rejects_what_validation_rejects(validator, text, tmp_path):
    data = parse_text(text, "yaml", "bad.yaml").data
    assert list(validator.iter_errors(data)), text
    (tmp_path / "bad.yaml").write_text(text)
    run = CliRunner().invoke(app, ["validate", str(tmp_path / "bad.yaml")])  # validation agrees
    assert run.exit_code == 2 and run.stderr.startswith(f"error: {tmp_path / 'bad.yaml'}:"), run.stderr


def test_plugin_layers_join_the_schema(tmp_path):
    out = tmp_path / "schema.json"
    run = gradcheck("schema", "--plugin", PLUGIN, "--output", str(out))
    assert run.returncode == 0, run.stderr
    schema = json.loads(out.read_text())
    mapping = schema["properties"]["layers"]["items"]["discriminator"]["mapping"]
    assert {"dense_forgot_bias", "dense_bias_off", "dense"} <= set(mapping)
    failing = load_document(ROOT / "tests" / "fixtures" / "ci" / "failing.yaml").data
    assert not list(jsonschema.Draft202012Validator(schema).iter_errors(failing))


def test_editor_schema_lines_are_plain_comments_to_gradcheck(tmp_path, monkeypatch):
    """docs/spec.md's `# yaml-language-server: $schema=` and TOML `#:schema` lines."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text("# yaml-language-server: $schema=./gradcheck.schema.json\n"
                                       "input: {shape: [4], batch: 3}\nlayers:\n"
                                       "  - {type: dense, units: 5, activation: relu}\nloss: mse\n")
    (tmp_path / "net.toml").write_text('#:schema ./gradcheck.schema.json\nloss = "mse"\n'
                                       '[input]\nshape = [4]\n[[layers]]\ntype = "dense"\nunits = 2\n')
    result = CliRunner().invoke(app, ["validate", "net.yaml", "net.toml"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "2 configs: 2 valid, 0 invalid"


class Opaque:
    pass


class Odd:
    """A plugin-like layer (never registered) whose option has no JSON Schema."""

    def __init__(self, units: int, thing: Opaque = None) -> None:
        pass


def test_an_option_without_a_json_schema_accepts_anything():
    """A plugin option typed with an arbitrary class must not break the whole schema."""
    from gradcheck_cli.config.schema import _Lenient, _entry

    schema = _entry("odd", Odd, "Layer").model_json_schema(schema_generator=_Lenient)
    assert schema["properties"]["units"]["type"] == "integer"
    assert schema["required"] == ["units", "type"]
    assert "type" not in schema["properties"]["thing"]
