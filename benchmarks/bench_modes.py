"""Cost of --mode full, sample and directional against the number of parameters P.

    python benchmarks/bench_modes.py

An MLP [n, n, 10] on a batch of 16 for n = 30, 100, 300, 1000 (P ≈ 1k to 1M). Sample and
directional checks evaluate a fixed number of perturbed copies per tensor (16 entries, 4
directions), so their evaluation count does not grow with P; their time grows only with the cost
of one forward pass. The full check is skipped above 200k parameters.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def main() -> None:
    if any(v in os.environ for v in BLAS_VARS):
        print(f"note: re-running without {', '.join(v for v in BLAS_VARS if v in os.environ)}")
        env = {k: v for k, v in os.environ.items() if k not in BLAS_VARS}
        sys.exit(subprocess.call([sys.executable, *sys.argv], env=env))
    from gradcheck_cli import build_network, check_network, spec_from_text
    from gradcheck_cli.check.engine import CheckSettings

    print(f"{'n':>6} {'P':>10} {'mode':>12} {'evaluations':>12} {'seconds':>8} {'verdict':>8}")
    for n in (30, 100, 300, 1000):
        text = (f"input: {{shape: [{n}], batch: 16}}\nlayers: [{{type: dense, units: {n}, activation: tanh}}, "
                f"{{type: dense, units: 10}}]\nloss: softmax_cross_entropy\n")
        net = build_network(spec_from_text(text))
        P = sum(node.n_params for node in net.nodes)
        for mode in ("full", "sample", "directional"):
            if mode == "full" and P > 200_000:
                continue
            count = [0]

            def progress(k, what, count=count):
                count[0] += k

            t = time.perf_counter()
            r = check_network(net, CheckSettings(mode=mode, progress=progress))
            dt = time.perf_counter() - t
            print(f"{n:>6} {P:>10,} {mode:>12} {count[0]:>12,} {dt:>8.2f} {r.status.value:>8}", flush=True)


if __name__ == "__main__":
    main()
