"""Memory of a check against --max-memory and -v's estimate.

    python benchmarks/bench_memory.py

For a few networks and budgets, one fresh process each: after every module the check uses is
imported, `gradcheck check CONFIG --max-memory SIZE -v` runs; the script prints -v's peak-memory
estimate, the traced peak (tracemalloc: numpy's arrays and Python's objects) and the rise of the
resident memory that -v measures (its peak above what the process held before the network was
built; it also holds BLAS buffers and the allocator's slack), each as a ratio to the estimate.
Linux only.
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
}
BUDGETS = ("16M", "48M")
#: a dense W of 90,000 entries holds about 10 MiB of differences and verdict at once: under 16M
#: the check is refused ("would need about 20.8 MiB")
BUDGETS_OF = {"MLP [300, 300, 10], m=16": ("24M", "48M")}

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
                          "--max-memory", budget], cwd=folder, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    mib = 2**20
    print(f"{'network':<26} {'budget':>7} {'estimate':>9} {'traced':>9} {'ratio':>6} "
          f"{'-v rise':>9} {'ratio':>6}")
    for name, text in NETWORKS.items():
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "net.yaml").write_text(text)
            for budget in BUDGETS_OF.get(name, BUDGETS):
                # the rise without tracemalloc (its own bookkeeping would count), traced in another run
                plain, traced = run(Path(tmp), budget, False), run(Path(tmp), budget, True)
                estimate = float(re.search(r"peak memory ≈ ([\d.]+) MiB", plain["stderr"])[1]) * mib
                rise = float(re.search(r"\(([\d.]+) MiB above the", plain["stderr"])[1]) * mib
                print(f"{name:<26} {budget:>7} {estimate / mib:>6.1f} MiB {traced['traced'] / mib:>5.1f} MiB "
                      f"{traced['traced'] / estimate:>5.2f}x {rise / mib:>5.1f} MiB {rise / estimate:>5.2f}x")


if __name__ == "__main__":
    main()
