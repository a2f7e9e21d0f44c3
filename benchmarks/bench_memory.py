"""Memory of a check against --max-memory and -v's estimate.

    python benchmarks/bench_memory.py

For a few networks and budgets, one fresh process each: after every module the check uses is
imported, `gradcheck check CONFIG --max-memory SIZE -v` runs. The script prints -v's figures: the
estimate before the check (a bound, from the plan), the memory model's figure for the batches
the check made, and the rise of the process's data that -v measures (resident memory that maps
no file, at its peak, above what the process held before the network was built); and, from a
second run of the same command, the traced peak (tracemalloc: numpy's arrays and Python's
objects, the parsing and the table's rendering included). The measured figures are given as
ratios to the model. Linux only.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

NETWORKS = {
    "conv 3x16x16, m=4": "input: {shape: [3, 16, 16], batch: 4}\nlayers:\n"
                         "  - {type: conv2d, filters: 8, kernel: 3, padding: 1}\nloss: mse\n",
    "MLP [300, 300, 10], m=16": "input: {shape: [300], batch: 16}\nlayers:\n"
                                "  - {type: dense, units: 300, activation: tanh}\n"
                                "  - {type: dense, units: 10}\nloss: mse\n",
    "LSTM 64 over 16x32, m=8": "input: {shape: [16, 32], batch: 8}\nlayers:\n"
                               "  - {type: lstm, hidden: 64}\n  - {type: linear, units: 4}\nloss: mse\n",
    # the same written as a learner's plugins (plugins/vectorised.py): their caches are measured
    "conv, plugins": "plugins: [vectorised.py]\ninput: {shape: [3, 16, 16], batch: 4}\nlayers:\n"
                     "  - {type: my_conv, filters: 8, kernel: 3, padding: 1}\nloss: mse\n",
    "MLP (relu), plugins": "plugins: [vectorised.py]\ninput: {shape: [300], batch: 16}\nlayers:\n"
                           "  - {type: my_affine, units: 300}\n  - {type: my_relu}\n"
                           "  - {type: my_affine, units: 10}\nloss: mse\n",
    "LSTM, plugins": "plugins: [vectorised.py]\ninput: {shape: [16, 32], batch: 8}\nlayers:\n"
                     "  - {type: my_lstm, hidden: 64}\n  - {type: my_affine, units: 4}\nloss: mse\n",
}
PLUGINS = Path(__file__).resolve().parent / "plugins" / "vectorised.py"
BUDGETS = ("16M", "48M")
#: a dense W of 90,000 entries holds about 10 MiB of differences and verdict at once: under 16M
#: the check is refused ("would need about 20.8 MiB")
BUDGETS_OF = {"MLP [300, 300, 10], m=16": ("24M", "48M"), "MLP (relu), plugins": ("24M", "48M")}

MEASURE = """\
import json, sys, tracemalloc
import numpy
import gradcheck_cli.check.engine, gradcheck_cli.run.pipeline, gradcheck_cli.layers.catalog
import gradcheck_cli.report.table, gradcheck_cli.report.evaluations, gradcheck_cli.check.diagnose.hypotheses
from typer.testing import CliRunner
from gradcheck_cli.cli import app
trace = sys.argv[1] == "trace"
if trace:
    tracemalloc.start()
result = CliRunner().invoke(app, ["check", *sys.argv[2:], "-v"])
traced = tracemalloc.get_traced_memory()[1] if trace else None
print(json.dumps({"code": result.exit_code, "stderr": result.stderr, "traced": traced}))
"""


def run(folder: Path, budget: str, trace: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, "trace" if trace else "rss", "net.yaml",
                          "--max-memory", budget, "--allow-plugins"], cwd=folder, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def size(text: str) -> float:
    """'12.3 MiB', '524.0 KiB', '80 B' -> bytes."""
    number, unit = text.split()
    return float(number) * {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]


SIZE = r"([\d.]+ (?:B|KiB|MiB|GiB))"


def main() -> None:
    mib = 2**20
    print(f"{'network':<26} {'budget':>7} {'estimate':>9} {'model':>9} {'traced':>9} {'ratio':>6} "
          f"{'-v rise':>9} {'ratio':>6}")
    for name, text in NETWORKS.items():
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "net.yaml").write_text(text)
            (Path(tmp) / "vectorised.py").write_text(PLUGINS.read_text(encoding="utf-8"), encoding="utf-8")
            for budget in BUDGETS_OF.get(name, BUDGETS):
                # the rise without tracemalloc (its own bookkeeping would count), traced in another run
                plain, traced = run(Path(tmp), budget, False), run(Path(tmp), budget, True)
                said = plain["stderr"]
                estimate = size(re.search(r"peak memory ≈ " + SIZE, said)[1])
                model = size(re.search(r"modelled: " + SIZE, said)[1])
                rise = size(re.search(r"\(data: " + SIZE + " above the", said)[1])
                print(f"{name:<26} {budget:>7} {estimate / mib:>6.1f} MiB {model / mib:>6.1f} MiB "
                      f"{traced['traced'] / mib:>5.1f} MiB {traced['traced'] / model:>5.2f}x "
                      f"{rise / mib:>5.1f} MiB {rise / model:>5.2f}x")


if __name__ == "__main__":
    main()
