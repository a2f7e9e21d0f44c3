"""The runner's time limit: a layer that never returns cannot hang a CI job."""
import subprocess
import sys
from pathlib import Path

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


def test_verbose_prints_the_estimate_and_the_measured_cost_which_agree():
    gradcheck = Path(sys.executable).parent / "gradcheck"
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([str(gradcheck), "check", str(root / "configs" / "mlp.yaml"), "-v"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    import re
    estimated = re.search(r"estimate: .*?([\d,]+) evaluations", run.stderr).group(1)
    measured = re.search(r"measured: ([\d,]+) evaluations in [\d.]+ s \([\d,]+/s\), peak resident "
                         r"memory of the process \d+ MiB", run.stderr).group(1)
    assert estimated == measured
