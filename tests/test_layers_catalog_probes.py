"""Every registered built-in layer and loss passes the isolated check, over seeds, shapes, layouts
and batch sizes (including batch 1), and accepts leading probe axes when it says it does.

The cases are generated from the registry, so a new layer is covered as soon as it registers.
A layer that cannot run on default inputs (1-D features, no options) says what it needs in CASES;
only a layer listed in SKIP, with the reason, is left out here (its own test file covers it).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gradcheck_cli.check.engine import CheckSettings, check_network
from gradcheck_cli.check.network import build_network
from gradcheck_cli.layers.catalog import is_builtin, registered
from gradcheck_cli.results import Status
from gradcheck_cli.config.models import spec_from_text

#: type -> how to exercise it: required `options`, per-example input `shapes` (default: 1-D),
#: layers to put `before` it (a loss on probabilities needs a sigmoid in front).
CASES: dict[str, dict] = {
    "dense": {"options": {"units": 3}},
    "linear": {"options": {"units": 3}},
    "groupnorm": {"options": {"groups": 3}},
    "reshape": {"options": {"shape": [-1]}},
    "binary_cross_entropy": {"before": [{"type": "sigmoid"}]},
}

_OWN_TEST = "covered with suitable inputs by tests/test_layers_catalog.py"

#: type -> why this generic test (1-D feature inputs) cannot check it. Only these are skipped.
SKIP: dict[str, str] = {
    **{name: f"needs images or sequences (C, H, W) / (C, L) per example; {_OWN_TEST}"
       for name in ("conv1d", "conv2d", "maxpool2d", "avgpool2d", "global_avgpool")},
    **{name: f"needs a sequence (T, D) per example; {_OWN_TEST}"
       for name in ("rnn", "lstm", "gru", "attention", "transformer_block",
                    "temporal_softmax_cross_entropy")},
    "embedding": f"needs integer token ids as input; {_OWN_TEST}",
    "residual": f"needs inner layers whose output shape equals its input; {_OWN_TEST}",
}

#: (per-example shape, batch m) pairs; batch 1 is the course's single-example case
SHAPES = [((3,), 1), ((6,), 4)]
SEEDS = [0, 1, 2]


def _builtins(kind: str) -> list[str]:
    return [name for name, cls in registered(kind).items() if is_builtin(cls)]


def _cases(kind: str):
    for name in _builtins(kind):
        if name in SKIP:
            yield pytest.param(name, None, None, None, None, id=name,
                               marks=pytest.mark.skip(reason=f"{name}: {SKIP[name]}"))
            continue
        cls = registered()[name]
        case = CASES.get(name, {})
        for layout in getattr(cls, "layouts", ("rows", "columns")):
            for shape, batch in case.get("shapes", SHAPES):
                if layout == "columns" and len(shape) != 1:
                    continue
                for seed in SEEDS:
                    yield pytest.param(name, layout, shape, batch, seed,
                                       id=f"{name}-{layout}-{shape}-m{batch}-seed{seed}")


def _network(entries: list[dict], loss, layout: str, shape, batch: int, seed: int):
    data = {"seed": seed, "layout": layout, "input": {"shape": list(shape), "batch": batch},
            "layers": entries, "loss": loss}
    return build_network(spec_from_text(json.dumps(data), "yaml", path="registry.yaml"))


def _describe(rows) -> str:
    return "\n".join(f"{r.label} {r.layer_type} {r.tensor}: {r.status} {r.reason}" for r in rows)


@pytest.mark.parametrize("name, layout, shape, batch, seed", list(_cases("layer")))
def test_layer_passes_isolated_check(name, layout, shape, batch, seed):
    case = CASES.get(name, {})
    entry = {"type": name, **case.get("options", {})}
    net = _network([*case.get("before", []), entry], "mse", layout, shape, batch, seed)
    label = str(len(case.get("before", [])) + 1)
    # the probe-axes path, and (once per case) the one-copy-per-call path
    for batched in (True, False) if seed == 0 else (True,):
        result = check_network(net, CheckSettings(batched=batched))
        rows = [r for r in result.rows if r.label == label]
        assert rows, f"no rows for layer {label} ({name})"
        assert [r.tensor for r in rows] == ["x", *net.nodes[-1].layer.params]
        assert all(r.isolated.status is Status.PASS for r in rows), _describe(rows)
        # end to end too; a warning is allowed (batchnorm over a batch of 1 has dx = 0 by design)
        assert result.status in (Status.PASS, Status.WARN), _describe(result.rows)


@pytest.mark.parametrize("name, layout, shape, batch, seed", list(_cases("loss")))
def test_loss_passes_isolated_check(name, layout, shape, batch, seed):
    before = CASES.get(name, {}).get("before", [{"type": "identity"}])
    net = _network(before, {"type": name, **CASES.get(name, {}).get("options", {})},
                   layout, shape, batch, seed)
    result = check_network(net)
    loss_row = next(r for r in result.rows if r.label == "loss")
    assert loss_row.isolated.status is Status.PASS, loss_row.reason
    assert result.status is Status.PASS, _describe(result.rows)


def test_every_builtin_layer_and_loss_is_covered():
    names = _builtins("layer") + _builtins("loss")
    assert {"dense", "relu", "sigmoid", "softmax", "mse", "softmax_cross_entropy"} <= set(names)
    for name in names:
        cls = registered()[name]
        required = [k for k, f in _options(cls).items() if f.is_required()]
        missing = [k for k in required if k not in CASES.get(name, {}).get("options", {})]
        assert name in SKIP or not missing, (
            f"layer {name!r} requires options {missing}: add them to CASES in tests/test_layers_catalog_probes.py")


def test_skipped_types_are_covered_elsewhere():
    """SKIP says where a skipped type is tested; keep that true."""
    other = Path(__file__).with_name("test_layers_catalog.py")
    text = other.read_text() if other.exists() else ""
    for name in SKIP:
        if name in registered():
            assert f'"{name}"' in text, f"{name} is skipped here but not in {other.name}"


def _options(cls):
    from gradcheck_cli.layers.options import options_model

    return options_model(cls).model_fields


def _probe_cases():
    for name in _builtins("layer"):
        cls = registered()[name]
        if name in SKIP or not getattr(cls, "probe_axes", False):
            continue
        for layout in getattr(cls, "layouts", ("rows", "columns")):
            shape = CASES.get(name, {}).get("shapes", SHAPES)[-1][0]
            if layout == "columns" and len(shape) != 1:
                continue
            yield pytest.param(name, layout, shape, id=f"{name}-{layout}")


@pytest.mark.parametrize("name, layout, shape", list(_probe_cases()))
def test_probe_axes_match_one_copy_at_a_time(name, layout, shape):
    """A stack of P perturbed copies through one forward call equals P separate calls."""
    case = CASES.get(name, {})
    net = _network([{"type": name, **case.get("options", {})}], "mse", layout, shape, 3, 0)
    layer, x = net.nodes[0].layer, net.x
    rng = np.random.default_rng(7)
    P = 2
    xs = x + 0.1 * rng.standard_normal((P, *x.shape))
    ps = {k: v + 0.1 * rng.standard_normal((P, *v.shape)) for k, v in layer.params.items()}
    stacked = _with(layer, ps).forward(xs)[0]
    for p in range(P):
        single = _with(layer, {k: v[p] for k, v in ps.items()}).forward(xs[p])[0]
        np.testing.assert_allclose(stacked[p], single, rtol=1e-12, atol=1e-12)


def _with(layer, params):
    import copy

    new = copy.copy(layer)
    new.params = params
    return new
