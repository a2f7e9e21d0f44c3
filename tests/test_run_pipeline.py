"""The runner's time limit: a layer that never returns cannot hang a CI job."""
import subprocess
import sys
from pathlib import Path

import pytest

HANGING = '''
from gradcheck_cli import Layer, register


@register("test_hangs")
class Hangs(Layer):
    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        while True:
            pass

    def backward(self, dout, cache):
        return dout, {}
'''


def test_a_layer_that_never_returns_is_stopped_by_the_time_limit(tmp_path):
    (tmp_path / "hang.py").write_text(HANGING)
    (tmp_path / "net.yaml").write_text("input: {shape: [3], batch: 2}\nlayers: [{type: test_hangs}]\nloss: mse\n")
    gradcheck = Path(sys.executable).parent / "gradcheck"
    run = subprocess.run([str(gradcheck), "check", "net.yaml", "--plugin", "hang.py", "--timeout", "0.5"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr == ("error: net.yaml: the check took longer than --timeout 0.5 s (a layer that never "
                          "returns? a network too large for a full check? try --mode sample or --mode "
                          "directional)\n")
    assert run.stdout == "1 config: 0 passed, 0 failed, 1 could not be checked\n"


def test_no_time_limit_with_zero(tmp_path):
    gradcheck = Path(sys.executable).parent / "gradcheck"
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([str(gradcheck), "check", str(root / "configs" / "mlp.yaml"), "--timeout", "0", "-q"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("given, limit", [(["--timeout", "0"], None), (["--timeout", "2.5"], 2.5), ([], 600.0)])
def test_the_timeout_option_reaches_the_check(monkeypatch, given, limit):
    """--timeout 0 means no limit at all (not the 600 s default, not a zero-second limit)."""
    from typer.testing import CliRunner

    from gradcheck_cli.cli import app
    from gradcheck_cli.run import parallel

    seen = []
    real = parallel.check_file

    def recording(path, options=None):
        seen.append(options.timeout)
        return real(path, options)

    monkeypatch.setattr(parallel, "check_file", recording)
    root = Path(__file__).resolve().parent.parent
    result = CliRunner().invoke(app, ["check", str(root / "configs" / "mlp.yaml"), "-q", *given])
    assert result.exit_code == 0, result.output
    assert seen == [limit]


def test_verbose_prints_the_estimate_and_the_measured_cost_which_agree():
    gradcheck = Path(sys.executable).parent / "gradcheck"
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([str(gradcheck), "check", str(root / "configs" / "mlp.yaml"), "-v"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    import re
    estimated = re.search(r"estimate: .*?([\d,]+) evaluations", run.stderr).group(1)
    # the rise of the process's data over what it held before the network was built: measured
    # on Linux only; then the memory model's figure for the batches made
    size = r"[\d.]+ (?:B|KiB|MiB)"
    rise = rf" \(data: {size} above the {size} before the network was built\)"
    found = re.search(r"measured: ([\d,]+) evaluations without shortcuts, made as ([\d,]+) "
                      r"evaluations in [\d.]+ s \([\d,]+/s\), peak resident memory of the process "
                      rf"{size}" + (rise if sys.platform == "linux" else f"(?:{rise})?") +
                      rf"; modelled: {size} \(the network's arrays and the largest tensor check, "
                      r"isolated check, layer 1 W, with the estimate's margin\)$", run.stderr, re.M)
    measured, made = (int(g.replace(",", "")) for g in found.groups())
    assert int(estimated.replace(",", "")) == measured
    assert made > 0
