"""The checker: repeatable, pure, right in corner cases, and a broken backward is a FAIL row, not a crash."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from gradcheck_cli.check.engine import CheckSettings, check_network
from gradcheck_cli.check.forward import clean_forward
from gradcheck_cli.errors import GradcheckError, SpecError
from gradcheck_cli.check.network import build_network
from gradcheck_cli.layers.registry import _REGISTRY, register
from gradcheck_cli.results import Status
from gradcheck_cli.run.pipeline import RunOptions, check_file
from gradcheck_cli.config.models import load_spec, spec_from_text

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "configs" / "course_columns.yaml"


def _net(text: str):
    return build_network(spec_from_text(text, "yaml", "net.yaml"))


def _rows(result) -> dict[tuple[str, str], object]:
    return {(r.label, r.tensor): r for r in result.rows}


def _plain(result) -> dict:
    d = asdict(result)
    d.pop("seconds")
    d.pop("peak_memory")  # the process's high-water mark, which only grows
    return d


# -- repeatable and pure ---------------------------------------------------------------------------

def test_runs_are_bit_for_bit_repeatable():
    first = _plain(check_file(COURSE))
    second = _plain(check_file(COURSE))
    assert first == second  # exact floats, not approximately
    assert first["rows"] and all(r["isolated"]["rel_error"] is not None for r in first["rows"])


def test_same_seed_same_arrays_other_seed_other_arrays():
    spec = load_spec(COURSE)
    a, b = build_network(spec), build_network(load_spec(COURSE))
    assert np.array_equal(a.x, b.x)
    other = spec.model_copy(update={"seed": spec.seed + 1})
    other._doc = spec.doc
    assert not np.array_equal(build_network(other).x, a.x)


def _freeze(net) -> dict[str, np.ndarray]:
    """Make every array the check receives read-only; return copies to compare with afterwards."""
    arrays = {"x": net.x, "targets": np.asarray(net.targets)}
    for node in net.nodes:
        for k, v in node.layer.params.items():
            arrays[f"{node.label}.{k}"] = v
    copies = {k: v.copy() for k, v in arrays.items()}
    for v in arrays.values():
        v.flags.writeable = False
    return copies


@pytest.mark.parametrize("config", ["course_columns.yaml", "mlp.yaml", "activations.toml"])
def test_no_input_array_is_mutated(config):
    net = build_network(load_spec(ROOT / "configs" / config))
    copies = _freeze(net)
    params_before = [dict(n.layer.params) for n in net.nodes]
    result = check_network(net)  # a write into a read-only array would raise here
    assert result.status is Status.PASS
    assert np.array_equal(net.x, copies["x"]) and net.x.flags.writeable is False
    for node, before in zip(net.nodes, params_before):
        assert node.layer.params.keys() == before.keys()
        for k, v in node.layer.params.items():
            assert v is before[k]  # the network keeps its own arrays
            assert np.array_equal(v, copies[f"{node.label}.{k}"])


# -- corner cases of the course ---------------------------------------------------------------------

def test_batch_of_one_in_columns_layout():
    """The single-example derivation the course starts from: a is a column vector (n, 1)."""
    text = COURSE.read_text().replace("batch: 8", "batch: 1")
    result = check_network(_net(text))
    assert result.status is Status.PASS, [(r.label, r.tensor, r.reason) for r in result.rows]
    rows = _rows(result)
    assert rows[("1", "x")].input_shape == (20, 1) and rows[("1", "x")].output_shape == (7, 1)
    assert rows[("1", "b")].tensor_shape == (7, 1) and rows[("1", "b")].grad_shape == (7, 1)
    assert rows[("loss", "x")].input_shape == (1, 1)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_float32_networks_pass(seed, layout):
    text = f"""\
seed: {seed}
dtype: float32
layout: {layout}
input: {{shape: [6], batch: 5}}
layers:
  - {{type: dense, units: 5, activation: tanh}}
  - {{type: dense, units: 4, activation: gelu}}
  - {{type: dense, units: 3, activation: softplus}}
  - {{type: dense, units: 3}}
loss: softmax_cross_entropy
l2: 0.1
"""
    net = _net(text)
    assert net.x.dtype == np.float32 and net.nodes[0].layer.params["W"].dtype == np.float32
    result = check_network(net)
    assert result.status is Status.PASS, [(r.label, r.tensor, r.reason) for r in result.rows]
    assert result.reference.startswith("float64")


# -- plugin layers with a broken backward -------------------------------------------------------------

class _Scale:
    """y = x ⊙ w with w per feature (rows layout); dx = dout ⊙ w, dw = Σ_m dout ⊙ x."""

    def build(self, input_shape, rng):
        self.params = {"w": rng.standard_normal(tuple(input_shape))}
        return tuple(input_shape)

    def forward(self, x):
        return x * self.params["w"], x

    def backward(self, dout, cache):
        return dout * self.params["w"], {"w": (dout * cache).sum(axis=0)}


class _MissingKey(_Scale):
    def backward(self, dout, cache):
        return dout * self.params["w"], {}


class _ExtraKey(_Scale):
    def backward(self, dout, cache):
        dx, grads = super().backward(dout, cache)
        return dx, {**grads, "v": np.zeros(3)}


class _NaNGrad(_Scale):
    def backward(self, dout, cache):
        dx, grads = super().backward(dout, cache)
        grads["w"] = grads["w"].copy()
        grads["w"][1] = np.nan
        return dx, grads


class _NaNdx(_Scale):
    def backward(self, dout, cache):
        dx, grads = super().backward(dout, cache)
        return np.full_like(dx, np.nan), grads


class _Raises(_Scale):
    def backward(self, dout, cache):
        raise ValueError("operands could not be broadcast together")


class _NotSummed(_Scale):
    def backward(self, dout, cache):
        return dout * self.params["w"], {"w": dout * cache}


class _NotATuple(_Scale):
    def backward(self, dout, cache):
        return dout * self.params["w"]


class _SquareTransposed:
    """y = x·W with W square (rows layout); dW returned as (xᵀ·dout)ᵀ."""

    def build(self, input_shape, rng):
        n = input_shape[0]
        self.params = {"W": rng.standard_normal((n, n))}
        return (n,)

    def forward(self, x):
        return x @ self.params["W"], x

    def backward(self, dout, cache):
        return dout @ self.params["W"].T, {"W": (cache.T @ dout).T}


BROKEN = {"t_missing_key": _MissingKey, "t_extra_key": _ExtraKey, "t_nan_grad": _NaNGrad,
          "t_nan_dx": _NaNdx, "t_raises": _Raises, "t_not_summed": _NotSummed,
          "t_not_a_tuple": _NotATuple, "t_square_transposed": _SquareTransposed, "t_scale": _Scale}


@pytest.fixture(scope="module", autouse=True)
def broken_layers():
    """Register the broken layers for this module only, so other tests see the registry as it was."""
    for name, cls in BROKEN.items():
        register(name)(type(cls.__name__, (cls,), {"__module__": __name__}))
    yield
    for name in BROKEN:
        _REGISTRY.pop(name, None)


def _check_broken(name: str):
    text = f"""\
input: {{shape: [3], batch: 4}}
layers:
  - {{type: dense, units: 3}}
  - {{type: {name}}}
  - {{type: tanh}}
loss: mse
"""
    return _rows(check_network(_net(text)))


def test_a_correct_plugin_passes():
    assert {r.status for r in _check_broken("t_scale").values()} == {Status.PASS}


@pytest.mark.parametrize("name, tensor, reason", [
    ("t_missing_key", "w", "grads has no w"),
    ("t_nan_grad", "w", "analytic dw has 1 NaN/Inf entry"),
    ("t_nan_dx", "x", "analytic dx has 12 NaN/Inf entries"),
    ("t_not_summed", "w", "dw has shape (4, 3), but w is (3,): not summed over the batch axis (m = 4) (summed, it matches"),
    ("t_square_transposed", "W", "dW is transposed? its transpose matches"),
])
def test_broken_backward_fails_its_row_with_the_reason(name, tensor, reason):
    rows = _check_broken(name)
    bad = rows[("2", tensor)]
    assert bad.status is Status.FAIL and bad.isolated.status is Status.FAIL
    assert bad.reason.startswith(reason), bad.reason
    # the layers after it are untouched
    assert rows[("3", "x")].status is Status.PASS and rows[("loss", "x")].status is Status.PASS
    others = {k: r for k, r in rows.items() if k[0] == "2" and k != ("2", tensor)}
    assert all(r.status is Status.PASS for r in others.values()), others


def test_extra_gradient_key_fails_with_its_name():
    rows = _check_broken("t_extra_key")
    assert rows[("2", "w")].status is Status.FAIL
    assert "grads has keys that are not parameters: v" in rows[("2", "w")].reason


@pytest.mark.parametrize("name, reason", [
    ("t_raises", "backward raised ValueError: operands could not be broadcast together (at "),
    ("t_not_a_tuple", "backward must return (dx, grads) with grads a dict, got ndarray"),
])
def test_backward_that_cannot_be_used_fails_every_row_of_its_layer(name, reason):
    rows = _check_broken(name)
    for tensor in ("x", "w"):
        assert rows[("2", tensor)].status is Status.FAIL
        assert rows[("2", tensor)].reason.startswith(reason), rows[("2", tensor)].reason
    assert rows[("3", "x")].status is Status.PASS
    # the layers before it cannot be checked end to end: never a pass
    assert all(rows[("1", t)].status is not Status.PASS for t in ("x", "W", "b"))
    assert all(rows[("1", t)].isolated.status is Status.PASS for t in ("x", "W", "b"))


def test_raising_forward_is_a_located_error_not_a_crash():
    class Boom(_Scale):
        def forward(self, x):
            raise RuntimeError("bad forward")

    register("t_boom")(Boom)
    try:
        with pytest.raises(SpecError) as info:
            check_network(_net("input: {shape: [3]}\nlayers:\n  - {type: t_boom}\nloss: mse\n"))
        assert str(info.value).startswith("net.yaml:3:5: layers[0]: t_boom.forward raised RuntimeError: "
                                          "bad forward (at ")
    finally:
        _REGISTRY.pop("t_boom", None)


def test_check_file_turns_errors_into_an_error_result(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: {shape: [3]}\nlayers: [{type: nope}]\nloss: mse\n")
    result = check_file(bad, RunOptions())
    assert result.status is Status.ERROR and "unknown layer type `nope`" in result.error


def test_batched_and_one_copy_at_a_time_agree():
    net = build_network(load_spec(COURSE))
    a = check_network(net, CheckSettings(batched=True))
    b = check_network(net, CheckSettings(batched=False))
    for ra, rb in zip(a.rows, b.rows):
        assert ra.status == rb.status
        # both are rounding noise (~1e-11); evaluation order may change the noise, not the
        # verdict: the two errors differ by less than the finite differences' estimated noise
        ea, eb = ra.isolated.rel_error, rb.isolated.rel_error
        assert (ea is None) == (eb is None)
        if ea is not None:
            assert abs(ea - eb) <= max(ra.isolated.noise, rb.isolated.noise)


# -- plugin defects that must not mislead the verdict -------------------------------------------

class _DoubleInPlace(_Scale):
    """y = 2x computed in place: it modifies its input, which the protocol forbids."""

    def build(self, input_shape, rng):
        self.params = {}
        return tuple(input_shape)

    def forward(self, x):
        x *= 2
        return x, None

    def backward(self, dout, cache):
        return 2 * dout, {}


class _SoftmaxClaimingProbes:
    """A softmax over features (columns layout) with a WRONG backward (the Σ term is missing),
    that claims probe_axes but reduces over axis 0, the probe axis when a stack comes in."""

    probe_axes = True
    layouts = ("columns",)

    def build(self, input_shape, rng):
        self.params = {}
        return tuple(input_shape)

    def forward(self, z):
        e = np.exp(z - z.max(axis=0, keepdims=True))
        a = e / e.sum(axis=0, keepdims=True)
        return a, a

    def backward(self, da, a):
        return a * da, {}  # wrong: a * (da - Σ da·a)


@pytest.fixture
def registered_known():
    register("t_double_in_place")(_DoubleInPlace)
    register("t_softmax_claiming_probes")(_SoftmaxClaimingProbes)
    yield
    _REGISTRY.pop("t_double_in_place", None)
    _REGISTRY.pop("t_softmax_claiming_probes", None)


def test_a_forward_that_modifies_its_input_is_not_blamed_on_the_next_layer(registered_known):
    rows = _check_broken("t_double_in_place")
    assert rows[("3", "x")].status is Status.PASS  # tanh, a correct built-in
    assert Status.FAIL in {rows[("2", "x")].status}


def test_a_false_probe_axes_claim_cannot_hide_a_wrong_backward(registered_known):
    net = _net("layout: columns\ninput: {shape: [3], batch: 2}\nlayers:\n  - {type: dense, units: 3}\n"
               "  - {type: t_softmax_claiming_probes}\nloss: mse\n")
    try:
        status = check_network(net).status
    except GradcheckError:
        return  # refusing the false claim is fine too
    assert status is Status.FAIL


def test_rows_before_a_raising_backward_say_they_were_not_checked():
    rows = _check_broken("t_raises")
    assert "wrong dx" not in rows[("1", "W")].reason


def test_a_float32_layer_that_computes_in_float64_gets_a_warning():
    from gradcheck_cli.layers.plugins import load_plugin

    load_plugin(ROOT / "tests" / "mutants" / "kinks.py")
    spec = spec_from_text("name: t\nseed: 0\ndtype: float32\ninput: {shape: [4], batch: 3}\nlayers: "
                          "[{type: dense, units: 4, activation: tanh}, {type: kinks_dense_upcast, "
                          "units: 4}, {type: dense, units: 3}]\nloss: softmax_cross_entropy\n")
    result = check_network(build_network(spec))
    assert result.status is Status.WARN
    assert {(r.label, r.tensor): (r.status, r.reason) for r in result.rows if r.status is not Status.PASS} == {
        ("2", "x"): (Status.WARN, "the check ran in float64: forward returns float64 from a float32 "
                     "input, so this layer (and every layer after it) was not checked in float32; "
                     "return out.astype(x.dtype) if float32 is what you mean to test")}


def test_a_float32_backward_that_returns_float64_gets_a_warning():
    from gradcheck_cli.layers.plugins import load_plugin

    load_plugin(ROOT / "tests" / "mutants" / "kinks.py")
    spec = spec_from_text("name: t\nseed: 0\ndtype: float32\ninput: {shape: [4], batch: 3}\nlayers: "
                          "[{type: dense, units: 4, activation: tanh}, {type: kinks_dense_upcast_backward, "
                          "units: 4}, {type: dense, units: 3}]\nloss: softmax_cross_entropy\n")
    result = check_network(build_network(spec))
    assert {(r.label, r.tensor): (r.status, r.reason) for r in result.rows if r.status is not Status.PASS} == {
        ("2", "W"): (Status.WARN, "the check ran in float64: backward returns float64 dW from float32 "
                     "inputs, so its float32 rounding was not checked; return dW.astype(np.float32) "
                     "if float32 is what you mean to test")}


@pytest.mark.parametrize("config", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
def test_built_in_layers_stay_in_float32(config):
    # a NumPy float64 scalar (np.sqrt of a Python number) silently upcasts a float32 array
    text = "dtype: float32\n" + "".join(line for line in (ROOT / "configs" / config).read_text().splitlines(True)
                                        if not line.startswith("dtype:"))
    net = build_network(spec_from_text(text))
    assert clean_forward(net).upcast == {}
    # and their backward too (np.prod of a shape is an int64 scalar, which upcasts as well)
    result = check_network(net)
    assert not [r.reason for r in result.rows if "the check ran in" in r.reason]
