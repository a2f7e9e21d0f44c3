"""The resource guard: estimates against what a check really does, and refusals before allocation."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gradcheck_cli.check.tensor as check_module
from gradcheck_cli.check.engine import CheckSettings, check_network
from gradcheck_cli.cli import app
from gradcheck_cli.check.budget import DEFAULT_MAX_EVALS, default_max_memory, estimate, format_bytes, guard, parse_size
from gradcheck_cli.errors import SpecError, UsageError
from gradcheck_cli.check.network import build_network
from gradcheck_cli.config.plan import plan_network
from gradcheck_cli.results import Status
from gradcheck_cli.config.models import spec_from_text

NET = """
input: {shape: [6], batch: 3}
dtype: DTYPE
layers:
  - {type: dense, units: 7, activation: tanh}
  - {type: dense, units: 5, activation: sigmoid}
  - {type: dense, units: 3}
loss: softmax_cross_entropy
"""


def _plan(text: str, name: str = "net.yaml"):
    return plan_network(spec_from_text(text, "yaml", name))


@pytest.fixture
def counted(monkeypatch):
    """The number of function evaluations the checker really makes."""
    count = [0]
    for name in ("entry_differences", "direction_differences"):
        real = getattr(check_module, name)

        def wrapped(*args, _real=real, **kwargs):
            d = _real(*args, **kwargs)
            count[0] += d.evaluations
            return d

        monkeypatch.setattr(check_module, name, wrapped)
    return count


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("mode,method", [("full", "central"), ("full", "forward"),
                                         ("sample", "central"), ("directional", "central"),
                                         ("full", "richardson")])
def test_estimated_evaluations_are_the_evaluations_made(counted, mode, method, dtype):
    plan = _plan(NET.replace("DTYPE", dtype))
    settings = CheckSettings.from_spec(plan.spec, mode=mode, method=method, samples=4)
    settings, cost = guard(plan, settings)
    result = check_network(build_network(plan), settings)
    assert result.status in (Status.PASS, Status.WARN)
    assert cost.evaluations == counted[0]
    assert cost.parameters == plan.n_params == 6 * 7 + 7 + 7 * 5 + 5 + 5 * 3 + 3


def test_estimated_peak_memory_bounds_the_measured_peak():
    plan = _plan(NET.replace("DTYPE", "float64").replace("units: 7", "units: 60")
                 .replace("batch: 3", "batch: 8"))
    settings, cost = guard(plan, CheckSettings.from_spec(plan.spec))
    tracemalloc.start()
    try:
        check_network(build_network(plan), settings)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= cost.peak_bytes


def test_sample_and_directional_cost_less_than_full():
    plan = _plan(NET.replace("DTYPE", "float64"))
    full = estimate(plan, CheckSettings.from_spec(plan.spec))
    sample = estimate(plan, CheckSettings.from_spec(plan.spec, mode="sample", samples=2))
    directional = estimate(plan, CheckSettings.from_spec(plan.spec, mode="directional", directions=1))
    assert directional.evaluations < sample.evaluations < full.evaluations


def test_a_directional_check_of_33m_parameters_fits_a_small_machine():
    """Why a directional check fits any network: its evaluations do not grow with the parameter
    count, and its memory is a few copies of the network, never one per entry. Shown on the
    estimate (the tests above hold the estimate to what a check really does); running the check
    of these 33M parameters takes half a minute."""
    def wide(width):
        return _plan(f"input: {{shape: [{width}], batch: 8}}\nlayers:\n  - {{type: dense, units: {width}}}\n"
                     f"  - {{type: dense, units: {width}}}\nloss: mse\n")

    huge, small = wide(4096), wide(64)
    full = estimate(huge, CheckSettings.from_spec(huge.spec))
    assert full.evaluations > DEFAULT_MAX_EVALS                   # refused in full mode
    _, cost = guard(huge, CheckSettings.from_spec(huge.spec, mode="directional"), max_memory=2 * 1024**3)
    assert cost.parameters == 2 * (4096 * 4096 + 4096)
    assert cost.evaluations == estimate(small, CheckSettings.from_spec(small.spec, mode="directional")).evaluations
    assert cost.peak_bytes < 5 * 8 * cost.parameters


def test_a_tight_memory_limit_shrinks_batches_rather_than_refusing():
    plan = _plan(NET.replace("DTYPE", "float64").replace("units: 7", "units: 400"))
    settings = CheckSettings.from_spec(plan.spec)
    loose = estimate(plan, settings)
    fitted, cost = guard(plan, settings, max_memory=loose.peak_bytes // 2)
    assert fitted.max_memory < settings.max_memory
    assert cost.peak_bytes <= loose.peak_bytes // 2
    assert settings.max_memory == CheckSettings().max_memory  # the input is not modified


def test_a_shortcut_batch_is_not_sized_for_copies_of_the_tensor_it_never_makes(monkeypatch):
    """A dense layer's shortcuts update one column per probe and make no copy of W, in the
    isolated check as end to end: their batches are sized without W's 8 bytes an entry, so a
    tight --max-memory does not cut them to a handful of probes (the 93k-parameter MLP of
    bench_memory.py took 7.9 s under 24M for 0.9 s under 48M)."""
    net = build_network(spec_from_text("input: {shape: [300], batch: 4}\nlayers:\n"
                                       "  - {type: dense, units: 300}\nloss: mse\n", "yaml", "w.yaml"))
    sizes = []
    chunk_for = check_module.chunk_for
    monkeypatch.setattr(check_module, "chunk_for", lambda per, budget: sizes.append(per) or chunk_for(per, budget))
    check_network(net)
    assert sizes and max(sizes) < 8 * 300 * 300


def test_over_the_eval_limit_is_refused_before_any_array_exists():
    # 16 million parameters: a valid network, but a full check would take hours
    text = "input: {shape: [4000], batch: 2}\nlayers:\n  - {type: dense, units: 4000}\nloss: mse\n"
    tracemalloc.start()
    try:
        plan = _plan(text, "wide.yaml")
        with pytest.raises(SpecError) as info:
            guard(plan, CheckSettings.from_spec(plan.spec))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024**2
    assert str(info.value) == (
        "wide.yaml: this check would need 64,064,000 function evaluations (limit --max-evals "
        f"{DEFAULT_MAX_EVALS:,}): use --mode sample (a few entries per tensor) or --mode "
        "directional (a few random directions per tensor), use smaller sizes, or raise the limit")
    plan = _plan(text, "wide.yaml")
    _, cost = guard(plan, CheckSettings.from_spec(plan.spec, mode="sample"))
    assert cost.evaluations < 1000


def test_absurd_sizes_fail_validation_without_allocating(tmp_path):
    (tmp_path / "absurd.yaml").write_text(
        "input: {shape: [4], batch: 2}\nlayers:\n  - {type: dense, units: 10000000000}\nloss: mse\n")
    tracemalloc.start()
    try:
        result = CliRunner().invoke(app, ["validate", str(tmp_path / "absurd.yaml")])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 2
    assert "10,000,000,000 values per example" in result.stderr
    assert peak < 50 * 1024**2


MLP = "input: {shape: [4], batch: 3}\nlayers:\n  - {type: dense, units: 5}\nloss: mse\n"


def test_cli_refuses_over_max_memory_and_suggests_lighter_modes(tmp_path, monkeypatch):
    (tmp_path / "mlp.yaml").write_text(MLP)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["check", "--max-memory", "1K", "mlp.yaml"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: mlp.yaml: this check would need about ")
    assert "of memory (limit --max-memory 1.0 KiB; largest batch: layer 1 (dense) " in result.stderr
    assert "use --mode sample" in result.stderr and "--mode directional" in result.stderr


def test_cli_refuses_over_max_evals(tmp_path, monkeypatch):
    (tmp_path / "mlp.yaml").write_text(MLP)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["check", "--max-evals", "10", "mlp.yaml"])
    assert result.exit_code == 2
    plan = _plan(MLP)
    evals = estimate(plan, CheckSettings.from_spec(plan.spec)).evaluations
    assert result.stderr == (
        f"error: mlp.yaml: this check would need {evals:,} function evaluations (limit --max-evals "
        "10): use --mode sample (a few entries per tensor) or --mode directional (a few random "
        "directions per tensor), use smaller sizes, or raise the limit\n")
    sampled = CliRunner().invoke(app, ["check", "--max-evals", "10", "--mode", "directional",
                                       "--directions", "1", "mlp.yaml"])
    assert sampled.exit_code == 2
    assert "use fewer --samples or --directions" in sampled.stderr
    ok = CliRunner().invoke(app, ["check", "--max-evals", str(evals), "mlp.yaml"])
    assert ok.exit_code == 0, ok.stderr


def test_verbose_prints_the_estimate(tmp_path, monkeypatch):
    (tmp_path / "mlp.yaml").write_text(MLP)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["check", "-v", "mlp.yaml"])
    assert result.exit_code == 0
    plan = _plan(MLP)
    _, cost = guard(plan, CheckSettings.from_spec(plan.spec))
    assert cost.describe() + "\n" in result.stderr
    assert cost.describe().startswith("estimate: 25 parameters, 4 tensors, ")
    quiet = CliRunner().invoke(app, ["check", "mlp.yaml"])
    assert "estimate:" not in quiet.stderr + quiet.stdout


def test_the_estimate_is_in_the_json_output(tmp_path, monkeypatch):
    import json

    (tmp_path / "mlp.yaml").write_text(MLP)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["check", "--format", "json", "mlp.yaml"])
    assert result.exit_code == 0
    cost = json.loads(result.stdout)["configs"][0]["cost"]
    assert cost["parameters"] == 25 and cost["mode"] == "full"


@pytest.mark.parametrize("text,expected", [("1000", 1000), ("512K", 512 * 1024), ("2M", 2 * 1024**2),
                                           ("1.5G", int(1.5 * 1024**3)), ("3 GiB", 3 * 1024**3),
                                           ("1tb", 1024**4)])
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "G", "12X", "-1M", "0", "1e9", "nan"])
def test_bad_sizes(text):
    with pytest.raises(UsageError, match="expected a size such as 512M|at least 1 byte"):
        parse_size(text)


def test_cli_bad_size_is_a_usage_error(tmp_path, monkeypatch):
    (tmp_path / "mlp.yaml").write_text(MLP)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["check", "--max-memory", "lots", "mlp.yaml"])
    assert result.exit_code == 2
    assert result.stderr == ("error: --max-memory 'lots': expected a size such as 512M, 2G or "
                             "1.5GiB (a plain number is bytes)\n")


def test_default_memory_limit_is_a_share_of_ram():
    limit = default_max_memory()
    assert 64 * 1024**2 <= limit
    assert format_bytes(3 * 1024**3) == "3.0 GiB" and format_bytes(10) == "10 B"


def test_a_refusal_does_not_import_the_checker(tmp_path):
    """The guard refuses from the plan alone: the engine, its shortcuts, the isolated and
    end-to-end checks and the diagnoses are not imported for a check that never runs."""
    import json
    import subprocess
    import sys

    (tmp_path / "huge.yaml").write_text("input: {shape: [20000], batch: 2}\n"
                                        "layers:\n  - {type: dense, units: 2000}\nloss: mse\n")
    code = ("import json, runpy, sys\nsys.argv = ['gradcheck', 'check', 'huge.yaml']\n"
            "try:\n    runpy.run_module('gradcheck_cli', run_name='__main__')\n"
            "except SystemExit as exc:\n    code = exc.code\n"
            "print(json.dumps([code, sorted(sys.modules)]))")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    code, modules = json.loads(run.stdout.splitlines()[-1])
    assert code == 2 and "--max-evals" in run.stderr, run.stderr
    loaded = {m for m in modules if m.startswith("gradcheck_cli.check.")}
    assert not loaded & {"gradcheck_cli.check.engine", "gradcheck_cli.check.shortcuts",
                         "gradcheck_cli.check.isolated", "gradcheck_cli.check.end_to_end",
                         "gradcheck_cli.check.diagnose", "gradcheck_cli.check.judge",
                         "gradcheck_cli.check.tensor"}, loaded


#: a check whose batches of perturbed copies, not the network, take the memory: a convolution's
#: input (column grouping per example) and filters, the loss's input, the upstream gradient
CONV = """\
input: {shape: [3, 16, 16], batch: 4}
layers:
  - {type: conv2d, filters: 8, kernel: 3, padding: 1}
loss: mse
"""

#: the process, after every module the check uses is imported, runs `gradcheck check` and, with
#: "trace" first, says numpy's traced peak (tracemalloc's own bookkeeping is resident memory too,
#: so -v's rise is read from a run without it)
MEASURE = """\
import json, sys, tracemalloc
import numpy
import gradcheck_cli.check.engine, gradcheck_cli.run.pipeline, gradcheck_cli.layers.catalog
import gradcheck_cli.report.json_report, gradcheck_cli.report.table, gradcheck_cli.report.evaluations
import gradcheck_cli.check.diagnose.hypotheses
from typer.testing import CliRunner
from gradcheck_cli.cli import app
trace = sys.argv[1] == "trace"
if trace:
    tracemalloc.start()
result = CliRunner().invoke(app, ["check", *sys.argv[2:], "-v"])
traced = tracemalloc.get_traced_memory()[1] if trace else None
print(json.dumps({"code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr,
                  "traced": traced}))
"""


LSTM = """\
input: {shape: [16, 32], batch: 8}
layers:
  - {type: lstm, hidden: 64}
  - {type: linear, units: 4}
loss: mse
"""


#: the same LSTM as a learner's plugin (benchmarks/plugins/vectorised.py)
PLUGIN_LSTM = LSTM.replace("layers:", "plugins: [vectorised.py]\nlayers:").replace(
    "type: lstm", "type: my_lstm").replace("type: linear", "type: my_affine")
PLUGINS = Path(__file__).resolve().parent.parent / "benchmarks" / "plugins" / "vectorised.py"


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
@pytest.mark.parametrize("config", [CONV, LSTM, PLUGIN_LSTM], ids=["conv", "lstm", "plugin-lstm"])
def test_memory_stays_within_the_budget_and_the_verbose_estimate(tmp_path, config):
    """A small --max-memory bounds what the check allocates, and -v says it: the traced peak
    (numpy's arrays and Python's objects, the table's rendering included) within 1.25x of the
    estimate made before the check and above a quarter of it (the estimate is no wild
    overstatement); the memory model's figure for the batches made within the estimate (but for
    what the plan cannot know of a plugin's cache, measured once the arrays exist); and the rise
    of the process's data that -v measures within 0.7-1.15x of that figure and within the
    budget. The LSTM's forward holds every step's gates in its cache, far more than
    its output, which the model is told (held_entries), and its step-by-step differences keep
    within the budget too. A plugin's cache is measured (Structure.held), since it says
    nothing."""
    (tmp_path / "conv.yaml").write_text(config)
    (tmp_path / "vectorised.py").write_text(PLUGINS.read_text(encoding="utf-8"), encoding="utf-8")
    budget = 16 * 1024**2
    out, plain = (json.loads(subprocess.run(
        [sys.executable, "-c", MEASURE, how, "conv.yaml", "--max-memory", "16M", "--allow-plugins"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300).stdout.splitlines()[-1])
        for how in ("trace", "plain"))
    assert out["code"] == 0 and plain["code"] == 0, out["stderr"] + plain["stderr"]
    shown = re.search(r"^estimate: .*, peak memory ≈ ([\d.]+) MiB", out["stderr"], re.M)
    assert shown, out["stderr"]
    estimate = float(shown[1]) * 2**20       # -v's figure, to its 0.1 MiB
    assert estimate <= budget + 0.05 * 2**20
    assert estimate / 4 <= out["traced"] <= 1.25 * estimate, out["traced"] / estimate
    rise = _size(r"\(data: (\S+ \S+) above the \S+ \S+ before the network was built\)", plain["stderr"])
    modelled = _size(r"; modelled: (\S+ \S+) \(the network's arrays", plain["stderr"])
    assert modelled <= 1.05 * estimate, modelled / estimate
    assert 0.7 * modelled <= rise <= 1.15 * modelled, rise / modelled
    assert rise <= budget, rise / budget


def _size(pattern: str, text: str) -> float:
    """Bytes of the size ``pattern``'s group says ('12.3 MiB', '524.0 KiB')."""
    found = re.search(pattern, text)
    assert found, text
    number, unit = found[1].split()
    return float(number) * {"B": 1, "KiB": 2**10, "MiB": 2**20}[unit]


#: a dense W of 90,000 entries: its differences and verdict hold about 100 bytes an entry at once,
#: more than its batches of copies need under a small budget
WIDE_MLP = """\
input: {shape: [300], batch: 16}
layers:
  - {type: dense, units: 300, activation: tanh}
  - {type: dense, units: 10}
loss: mse
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_a_budget_below_what_a_check_needs_is_refused_with_a_figure_the_check_keeps_to(tmp_path):
    (tmp_path / "mlp.yaml").write_text(WIDE_MLP)

    def measure(budget: str) -> dict:
        run = subprocess.run([sys.executable, "-c", MEASURE, "trace", "mlp.yaml", "--max-memory", budget],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
        return json.loads(run.stdout.splitlines()[-1])

    refused = measure("16M")
    assert refused["code"] == 2, refused["stderr"]
    needed = re.search(r"would need about ([\d.]+) MiB of memory \(limit --max-memory 16.0 MiB", refused["stderr"])
    assert needed, refused["stderr"]
    figure = float(needed[1])
    out = measure(f"{figure}M")
    assert out["code"] == 0, out["stderr"]
    assert figure / 4 * 2**20 <= out["traced"] <= figure * 2**20, out["traced"] / 2**20


def test_a_recurrent_layers_trajectory_and_adjoints_are_counted_for_the_built_ins_only():
    from gradcheck_cli.check.budget import scanned_entries

    plan = _plan(LSTM)
    shapes = [(8, 16, 32)] + [(8, *n.output_shape) for n in plan.nodes]
    # T + 1 states and λ against two weights, T each; two state parts (h, c) of 64 units
    assert scanned_entries([n.layer for n in plan.nodes], shapes) == (3 * 16 + 1) * 2 * 8 * 64
    conv = _plan(CONV)
    assert scanned_entries([n.layer for n in conv.nodes], [(4, 3, 16, 16), (4, 8, 16, 16)]) == 0


def test_a_refused_budget_names_a_figure_rounded_up():
    assert format_bytes(int(22.34 * 2**20)) == "22.3 MiB"
    assert format_bytes(int(22.34 * 2**20), up=True) == "22.4 MiB"
    assert format_bytes(22 * 2**20, up=True) == "22.0 MiB"
