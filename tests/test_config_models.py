"""The spec: YAML and TOML are one schema, YAML 1.1 traps do not bite, errors are located."""
from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck_cli.check.engine import check_network
from gradcheck_cli.errors import SpecError
from gradcheck_cli.check.network import build_network
from gradcheck_cli.config.plan import plan_network
from gradcheck_cli.results import Status
from gradcheck_cli.config.models import CheckSpec, Spec, spec_from_text

YAML = """\
name: same-net
seed: 5
dtype: float64
layout: columns
input: {shape: [4], batch: 3}
layers:
  - {type: dense, units: 5, activation: tanh, init: xavier}
  - {type: leaky_relu, alpha: 0.2}
  - {type: dense, units: 2}
loss: softmax_cross_entropy
l2: 0.3
check: {eps: 1e-5, method: central}
"""

TOML = """\
name = "same-net"
seed = 5
dtype = "float64"
layout = "columns"
l2 = 0.3
loss = "softmax_cross_entropy"

[input]
shape = [4]
batch = 3

[[layers]]
type = "dense"
units = 5
activation = "tanh"
init = "xavier"

[[layers]]
type = "leaky_relu"
alpha = 0.2

[[layers]]
type = "dense"
units = 2

[check]
eps = 1e-5
method = "central"
"""


def _numbers(result) -> list[dict]:
    rows = []
    for r in result.rows:
        d = asdict(r)
        d.pop("line")  # the only thing allowed to differ: where each layer is written
        rows.append(d)
    return rows


def test_yaml_and_toml_forms_give_identical_numbers():
    a = spec_from_text(YAML, "yaml", "net.yaml")
    b = spec_from_text(TOML, "toml", "net.toml")
    assert a.model_dump() == b.model_dump()
    net_a, net_b = build_network(a), build_network(b)
    assert np.array_equal(net_a.x, net_b.x) and np.array_equal(net_a.targets, net_b.targets)
    for na, nb in zip(net_a.nodes, net_b.nodes):
        for k in na.layer.params:
            assert np.array_equal(na.layer.params[k], nb.layer.params[k])
    ra, rb = check_network(net_a), check_network(net_b)
    assert ra.status == rb.status
    assert _numbers(ra) == _numbers(rb)
    assert [r.line for r in ra.rows] != [r.line for r in rb.rows]  # both located in their own file


def test_defaults():
    spec = spec_from_text("input: {shape: [3]}\nlayers: [{type: relu}]\nloss: mse\n", "yaml", "my_net.yaml")
    assert spec.name == "my_net"
    assert (spec.seed, spec.dtype, spec.layout, spec.input.batch, spec.l2) == (0, "float64", "rows", 4, 0.0)
    assert (spec.check.eps, spec.check.method, spec.check.pass_rtol, spec.check.warn_rtol) == \
        ("auto", "central", None, None)
    assert spec.plugins == []
    assert spec.check.shortcuts is True


def test_check_shortcuts_false_turns_the_shortcuts_off_unless_the_caller_chose():
    """`check: {shortcuts: false}` is what --no-shortcuts is, for one config; a caller's choice
    (CheckSettings(batched=...) through RunOptions) wins over the config's, as for every key."""
    from gradcheck_cli.check.settings import CheckSettings
    from gradcheck_cli.run.pipeline import RunOptions

    off = spec_from_text("input: {shape: [3]}\nlayers: [{type: relu}]\nloss: mse\n"
                         "check: {shortcuts: false}\n", "yaml", "net.yaml")
    on = spec_from_text("input: {shape: [3]}\nlayers: [{type: relu}]\nloss: mse\n", "yaml", "net.yaml")
    assert CheckSettings.from_spec(off).batched is False
    assert CheckSettings.from_spec(on).batched is True
    assert RunOptions.build({"batched": None}).settings_for(off).batched is False
    assert RunOptions.build({"batched": False}).settings_for(on).batched is False
    assert RunOptions.build({"batched": True}).settings_for(off).batched is True


@pytest.mark.parametrize("text, value", [("1e-5", 1e-5), ("1E-8", 1e-8), ("5e-1", 0.5), (".5e-3", 5e-4),
                                         ("1.0e-6", 1e-6), ("+1e-3", 1e-3)])
def test_yaml_11_exponent_trap_reads_numbers(text, value):
    """PyYAML (YAML 1.1) reads `1e-5` as the string '1e-5'; gradcheck must read a number."""
    spec = spec_from_text(f"input: {{shape: [3]}}\nlayers: [{{type: relu}}]\nloss: mse\n"
                          f"check: {{eps: {text}, pass_rtol: {text}}}\nl2: {text}\n", "yaml", "n.yaml")
    assert spec.check.eps == value and spec.check.pass_rtol == value and spec.l2 == value
    assert isinstance(spec.check.eps, float)


@pytest.mark.parametrize("word", ["no", "yes", "on", "off", "y", "n"])
def test_yaml_11_boolean_trap_keeps_words_as_strings(word):
    spec = spec_from_text(f"name: {word}\ninput: {{shape: [3]}}\nlayers: [{{type: relu}}]\nloss: mse\n",
                          "yaml", "n.yaml")
    assert spec.name == word


def test_yaml_11_sexagesimal_and_octal_are_not_integers():
    # YAML 1.1 reads 1:30 as 90 and 010 as 8; 1.2 reads a string and decimal 10.
    with pytest.raises(SpecError) as info:
        spec_from_text("seed: 1:30\ninput: {shape: [3]}\nlayers: [{type: relu}]\nloss: mse\n", "yaml", "n.yaml")
    assert str(info.value) == "n.yaml:1:1: seed: expected an integer, got a string ('1:30')"
    spec = spec_from_text("seed: 010\ninput: {shape: [3]}\nlayers: [{type: relu}]\nloss: mse\n", "yaml", "n.yaml")
    assert spec.seed == 10


def _error(text: str, fmt: str = "yaml", path: str = "n.yaml") -> str:
    with pytest.raises(SpecError) as info:
        plan_network(spec_from_text(text, fmt, path))
    return str(info.value)


def test_errors_are_located_by_line_and_column_in_yaml():
    text = "input: {shape: [3]}\nlayers:\n  - {type: relu}\n  - {type: dense, units: 2, init: uniform}\nloss: mse\n"
    assert _error(text) == ("n.yaml:4:29: layers[1].init: expected 'he', 'xavier' or 'normal', "
                            "got 'uniform'")


def test_errors_are_located_in_toml():
    text = TOML.replace('alpha = 0.2', 'alpha = "0.2"')
    assert _error(text, "toml", "n.toml") == \
        "n.toml:20:1: layers[1].alpha: expected a number, got a string ('0.2')"


def test_error_in_the_activation_shorthand_is_located_at_it():
    text = "input: {shape: [3]}\nlayers:\n  - {type: dense, units: 2, activation: relux}\nloss: mse\n"
    assert _error(text).startswith("n.yaml:3:29: layers[0].activation: unknown layer type `relux`: "
                                   "did you mean `relu`? valid types: ")


def test_shorthand_equals_explicit_activation_layer():
    short = spec_from_text("input: {shape: [3]}\nlayers:\n  - {type: dense, units: 2, activation: tanh}\n"
                           "loss: mse\n", "yaml", "n.yaml")
    long = spec_from_text("input: {shape: [3]}\nlayers:\n  - {type: dense, units: 2}\n  - {type: tanh}\n"
                          "loss: mse\n", "yaml", "n.yaml")
    rs, rl = check_network(build_network(short)), check_network(build_network(long))
    assert [r.label for r in rs.rows] == ["1", "1", "1", "1a", "loss"]
    assert [r.label for r in rl.rows] == ["1", "1", "1", "2", "loss"]
    # same seed, same numbers: the shorthand is only a way of writing the same network
    assert [r.isolated.rel_error for r in rs.rows[:3]] == [r.isolated.rel_error for r in rl.rows[:3]]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**63 - 1), batch=st.integers(1, 64), units=st.integers(1, 64),
       l2=st.floats(0, 10, allow_nan=False), dtype=st.sampled_from(["float64", "float32"]),
       layout=st.sampled_from(["rows", "columns"]))
def test_valid_specs_read_the_same_from_yaml_and_toml(seed, batch, units, l2, dtype, layout):
    yaml = (f"seed: {seed}\ndtype: {dtype}\nlayout: {layout}\nl2: {l2!r}\n"
            f"input: {{shape: [3], batch: {batch}}}\nlayers:\n  - {{type: dense, units: {units}}}\nloss: mse\n")
    toml = (f'seed = {seed}\ndtype = "{dtype}"\nlayout = "{layout}"\nl2 = {l2!r}\n'
            f'loss = "mse"\n[input]\nshape = [3]\nbatch = {batch}\n[[layers]]\ntype = "dense"\n'
            f'units = {units}\n')
    a, b = spec_from_text(yaml, "yaml", "n.yaml"), spec_from_text(toml, "toml", "n.toml")
    assert a.model_dump() == b.model_dump()
    assert a.l2 == l2 and a.seed == seed


# -- the spec reference (docs/spec.md) stays true --------------------------------------------------

def _readme_section(name: str) -> str:
    text = (Path(__file__).resolve().parent.parent / "docs" / "spec.md").read_text()
    start = text.index(f"<!-- section: {name} -->")
    end = text.find("<!-- section:", start + 1)
    return text[start:end if end != -1 else None]


def _blocks(section: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.S)


def test_readme_yaml_and_toml_examples_are_the_same_network_and_pass():
    section = _readme_section("spec")
    (yaml,), (toml,) = _blocks(section, "yaml"), _blocks(section, "toml")
    a, b = spec_from_text(yaml, "yaml", "tiny-mlp.yaml"), spec_from_text(toml, "toml", "tiny-mlp.toml")
    assert a.model_dump() == b.model_dump()
    assert check_network(build_network(a)).status is Status.PASS


def test_readme_documents_every_spec_key_with_its_default():
    section = _readme_section("spec")
    models = {"": Spec, "input.": Spec.model_fields["input"].annotation,
              "check.": CheckSpec}
    for prefix, model in models.items():
        for name, field in model.model_fields.items():
            if prefix == "" and name in ("input", "check"):
                continue  # documented key by key below
            row = next((ln for ln in section.splitlines() if ln.startswith(f"| `{prefix}{name}` |")), None)
            assert row is not None, f"docs/spec.md's table has no row for `{prefix}{name}`"
            if not field.is_required() and isinstance(field.default, (int, float, str)):
                default = field.default
                shown = f"`{str(default).lower()}`" if isinstance(default, bool) else \
                    f"`{default!r}`".replace("'", "") if not isinstance(default, str) else f"`{default}`"
                assert shown in row or "per dtype" in row or prefix + name == "name", (row, shown)
