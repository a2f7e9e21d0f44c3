"""Benchmark: `gradcheck validate` over a folder of many generated configs, with its peak memory.

    python benchmarks/validate_many.py              # 1,000 then 10,000 configs
    python benchmarks/validate_many.py --count 50000

Generates varied configs (YAML and TOML, rows and columns, 1-6 layers; one in ten invalid, so
the error path is measured too) in a temporary folder, runs the real command in a child process
for a tenth of the count and for the full count, and prints the time and the child's peak
resident memory for each. Memory is flat when the two peaks are about equal: validating a file
keeps nothing once its line is printed.
"""
from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ACTIVATIONS = ["relu", "tanh", "sigmoid", "elu", "gelu", "softplus", "identity"]
INVALID = ["  - {type: dens, units: 3}\n", "  - {type: dense, units: -1}\n",
           "  - {type: dense, units: 10000000000}\n", "  - {type: dense, unit: 3}\n"]


def config_text(rng: random.Random, index: int) -> tuple[str, str]:
    """(suffix, text) of one generated config; every tenth is invalid."""
    layout = rng.choice(["rows", "columns"])
    width = rng.randint(1, 64)
    layers = []
    for _ in range(rng.randint(1, 6)):
        units = rng.randint(1, 64)
        act = rng.choice(ACTIVATIONS)
        layers.append((units, act))
    loss = rng.choice(["mse", "softmax_cross_entropy"]) if layers[-1][0] >= 2 else "mse"
    if index % 2:
        text = (f'name = "net{index}"\nseed = {index}\nlayout = "{layout}"\nloss = "{loss}"\n\n'
                f"[input]\nshape = [{width}]\nbatch = {rng.randint(1, 32)}\n")
        for units, act in layers:
            text += f'\n[[layers]]\ntype = "dense"\nunits = {units}\nactivation = "{act}"\n'
        if index % 10 == 1:
            text += '\n[[layers]]\ntype = "dens"\nunits = 3\n'
        return ".toml", text
    text = (f"# generated config {index}\nname: net{index}\nseed: {index}\nlayout: {layout}\n"
            f"input: {{shape: [{width}], batch: {rng.randint(1, 32)}}}\nlayers:\n")
    text += "".join(f"  - {{type: dense, units: {u}, activation: {a}}}\n" for u, a in layers)
    if index % 10 == 0:
        text += rng.choice(INVALID)
    return ".yaml", text + f"loss: {loss}\n"


def generate(folder: Path, count: int, seed: int = 0) -> int:
    """Write ``count`` configs in subfolders of 1,000; return how many are invalid."""
    rng = random.Random(seed)
    for i in range(count):
        sub = folder / f"part{i // 1000:03d}"
        sub.mkdir(exist_ok=True)
        suffix, text = config_text(rng, i)
        (sub / f"net{i:06d}{suffix}").write_text(text)
    return sum(1 for i in range(count) if i % 10 in (0, 1))


def run_validate(folder: Path) -> tuple[float, int, int, str]:
    """(seconds, peak RSS in bytes, exit code, summary line) of `gradcheck validate folder`."""
    code = ("import resource, subprocess, sys\n"
            "p = subprocess.run([sys.executable, '-m', 'gradcheck_cli', 'validate', sys.argv[1]],"
            " stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)\n"
            "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
            "print(p.returncode, peak, p.stdout.strip().splitlines()[-1])\n")
    start = time.perf_counter()
    # a fresh parent per run, so that RUSAGE_CHILDREN is the peak of this run's child alone
    out = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True,
                         check=True).stdout.split(maxsplit=2)
    seconds = time.perf_counter() - start
    kib = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return seconds, int(out[1]) * kib, int(out[0]), out[2].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="configs in the large run")
    args = parser.parse_args()
    peaks = []
    for count in (max(1, args.count // 10), args.count):
        with tempfile.TemporaryDirectory() as d:
            invalid = generate(Path(d), count)
            seconds, peak, code, summary = run_validate(Path(d))
        assert code == (2 if invalid else 0), f"unexpected exit code {code}"
        peaks.append(peak)
        print(f"{count:>7,} configs: {seconds:6.1f} s, {count / seconds:6.0f} configs/s, "
              f"peak RSS {peak / 2**20:6.1f} MiB  ({summary})")
    print(f"peak memory grew {peaks[1] / peaks[0]:.2f}x for {args.count / max(1, args.count // 10):.0f}x "
          "the configs")


if __name__ == "__main__":
    main()
