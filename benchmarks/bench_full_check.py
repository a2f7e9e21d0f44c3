"""Full central-difference check of the same networks with gradcheck and its peers, in one run.

    python benchmarks/bench_full_check.py            # all networks, every tool that is installed
    python benchmarks/bench_full_check.py --quick    # the two small networks only

Tools: gradcheck (library call, both of its checks: isolated per layer and end to end); a naive
NumPy loop in the style of cs231n's eval_numerical_gradient (two full forward passes per
parameter); torch.autograd.gradcheck with fast_mode=False and True, and jax's check_grads, when
installed (pip install ".[bench]"). Every tool must agree that the gradients are right.
Also prints the FLOP floor: the GEMM work of the layers after each perturbed one, two
evaluations per parameter, at this machine's measured float64 GEMM rate.

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, when set, slow numpy's GEMM on some machines: this
script re-runs itself without them, and with OPENBLAS_NUM_THREADS=1 unless you set it (as the
gradcheck command does), and says so. Timings are medians of --repeat (gradcheck) and
--peer-repeat (the others) runs.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

NETWORKS = {
    # name: (input, hidden sizes, activation, loss, batch)
    "course [64,20,7,5,1]": (64, [20, 7, 5, 1], "relu", "bce", 16),
    "mlp [100,100,100,10]": (100, [100, 100, 10], "relu", "sce", 32),
    "mlp [256,256,256,10]": (256, [256, 256, 10], "relu", "sce", 32),
}
CONVNET = "configs/cs231n_convnet.yaml"


def spec_text(name: str) -> str:
    n_in, sizes, act, loss, m = NETWORKS[name]
    layers = []
    for k, units in enumerate(sizes):
        last = k == len(sizes) - 1
        a = ("sigmoid" if loss == "bce" else None) if last else act
        layers.append(f"  - {{type: dense, units: {units}{', activation: ' + a if a else ''}}}")
    loss_name = "binary_cross_entropy" if loss == "bce" else "softmax_cross_entropy"
    return (f"name: bench\nseed: 0\ninput: {{shape: [{n_in}], batch: {m}}}\nlayers:\n"
            + "\n".join(layers) + f"\nloss: {loss_name}\n")


def timed(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


# -- the networks as plain arrays, shared by the peers ----------------------------------------

def arrays(net):
    import numpy as np

    Ws = [n.layer.params["W"].astype(np.float64) for n in net.nodes if "W" in n.layer.params]
    bs = [n.layer.params["b"].astype(np.float64) for n in net.nodes if "b" in n.layer.params]
    return net.x.astype(np.float64), net.targets, Ws, bs


def numpy_loss(x, y, Ws, bs, act, loss):
    import numpy as np

    a = x
    for k, (W, b) in enumerate(zip(Ws, bs)):
        z = a @ W + b
        last = k == len(Ws) - 1
        a = z if last else np.maximum(z, 0)
    m = x.shape[0]
    if loss == "bce":
        p = 1 / (1 + np.exp(-a))
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).sum() / m)
    s = a - a.max(axis=1, keepdims=True)
    return float((np.log(np.exp(s).sum(axis=1)) - s[np.arange(m), y]).sum() / m)


def naive_loop(x, y, Ws, bs, act, loss, h=1e-6):
    """cs231n's eval_numerical_gradient: perturb one entry in place, two full forwards."""
    grads = []
    for p in [*Ws, *bs]:
        g = p.copy()
        it = p.reshape(-1)
        gflat = g.reshape(-1)
        for i in range(it.size):
            old = it[i]
            it[i] = old + h
            fp = numpy_loss(x, y, Ws, bs, act, loss)
            it[i] = old - h
            fm = numpy_loss(x, y, Ws, bs, act, loss)
            it[i] = old
            gflat[i] = (fp - fm) / (2 * h)
        grads.append(g)
    return grads


def analytic_grads(net):
    import numpy as np

    from gradcheck_cli.learn.tensor_function import tensor_function

    out = []
    for tensor in ("W", "b"):
        for n in net.nodes:
            if tensor in n.layer.params:
                out.append(tensor_function(net, n.label, tensor).analytic)
    return [np.asarray(g) for g in out]


def torch_check(x, y, Ws, bs, loss, fast):
    import torch

    # one thread, like the others: with two, torch's thread pool fights itself on these tiny
    # operations (measured 70x slower on this machine)
    torch.set_num_threads(1)

    tx = torch.tensor(x)
    ty = torch.tensor(y)
    params = [torch.tensor(p, requires_grad=True) for p in [*Ws, *bs]]
    k = len(Ws)

    def f(*ps):
        a = tx
        for i in range(k):
            z = a @ ps[i] + ps[k + i]
            a = z if i == k - 1 else torch.relu(z)
        if loss == "bce":
            return torch.nn.functional.binary_cross_entropy_with_logits(a, ty)
        return torch.nn.functional.cross_entropy(a, ty)

    return torch.autograd.gradcheck(f, tuple(params), eps=1e-6, atol=1e-5, rtol=1e-3,
                                    fast_mode=fast)


def jax_check(x, y, Ws, bs, loss):
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads

    jax.config.update("jax_enable_x64", True)
    k = len(Ws)

    def f(*ps):
        a = jnp.asarray(x)
        for i in range(k):
            z = a @ ps[i] + ps[k + i]
            a = z if i == k - 1 else jax.nn.relu(z)
        if loss == "bce":
            return jnp.mean(jax.nn.softplus(a) - y * a)
        return jnp.mean(jax.nn.logsumexp(a, axis=1) - a[jnp.arange(a.shape[0]), y])

    try:
        # JAX's default step (1e-4 in float64) crosses relu kinks; the same step as the others
        check_grads(f, tuple(jnp.asarray(p) for p in [*Ws, *bs]), order=1, modes=["rev"], eps=1e-6)
    except AssertionError:
        return False
    return True


MEASURE_PEAK = """
import sys, tracemalloc
from gradcheck_cli import build_network, check_network, spec_from_text
net = build_network(spec_from_text(sys.stdin.read()))
tracemalloc.start()   # numpy reports its array memory to tracemalloc
result = check_network(net)
print(tracemalloc.get_traced_memory()[1])
"""


def peak_memory(text: str) -> int:
    """Peak memory allocated during one full check, in a fresh process (the built network and the
    interpreter excluded): what the check itself adds."""
    out = subprocess.run([sys.executable, "-c", MEASURE_PEAK], input=text, capture_output=True,
                         text=True, check=True).stdout
    return int(out.split()[-1])


def gemm_rate() -> float:
    import numpy as np

    a, b = np.random.rand(8192, 256), np.random.rand(256, 256)
    a @ b
    t, _ = timed(lambda: a @ b, 5)
    return 2 * 8192 * 256 * 256 / t


def flop_floor(net) -> float:
    """GEMM FLOPs of the layers after each perturbed one: 2 evaluations per parameter."""
    dense = [n for n in net.nodes if "W" in n.layer.params]
    m = net.batch
    total = 0.0
    for k, n in enumerate(dense):
        after = sum(2 * m * d.layer.params["W"].size for d in dense[k + 1:])
        total += 2 * n.n_params * after
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the two small networks")
    parser.add_argument("--repeat", type=int, default=5, help="runs of gradcheck (median)")
    parser.add_argument("--peer-repeat", type=int, default=3, help="runs of each peer (median)")
    parser.add_argument("--no-naive-above", type=int, default=200_000,
                        help="skip the naive loop above this many parameters")
    args = parser.parse_args()
    if any(v in os.environ for v in BLAS_VARS) or "OPENBLAS_NUM_THREADS" not in os.environ:
        env = {k: v for k, v in os.environ.items() if k not in BLAS_VARS}
        # one BLAS thread, as the gradcheck command runs: the stacked products here are tall and
        # skinny, where OpenBLAS's second thread costs more than it brings (measured 3x)
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        dropped = [v for v in BLAS_VARS if v in os.environ]
        print(f"note: running with OPENBLAS_NUM_THREADS={env['OPENBLAS_NUM_THREADS']}"
              + (f", without {', '.join(dropped)} (they slow numpy's GEMM here)" if dropped else ""),
              flush=True)
        sys.exit(subprocess.call([sys.executable, *sys.argv], env=env))

    import numpy as np

    from gradcheck_cli import build_network, check_network, spec_from_text
    from gradcheck_cli.check.engine import CheckSettings
    from gradcheck_cli.config.models import load_spec

    rate = gemm_rate()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}; float64 GEMM {rate / 1e9:.1f} GFLOP/s")
    names = list(NETWORKS)[:2] if args.quick else list(NETWORKS)
    rows = []
    for name in names:
        net = build_network(spec_from_text(spec_text(name)))
        act, loss = NETWORKS[name][2], NETWORKS[name][3]
        P = sum(n.n_params for n in net.nodes)
        t_gc, result = timed(lambda: check_network(net, CheckSettings()), args.repeat)
        row = {"network": name, "params": P, "gradcheck": t_gc, "verdict": result.status.value,
               "floor": flop_floor(net) / rate}
        x, y, Ws, bs = arrays(net)
        if P <= args.no_naive_above:
            t_naive, grads = timed(lambda: naive_loop(x, y, [W.copy() for W in Ws], [b.copy() for b in bs],
                                                      act, loss), args.peer_repeat)
            ref = analytic_grads(net)
            worst = max(float(np.abs(g - r).max() / max(np.abs(r).max(), 1e-12)) for g, r in zip(grads, ref))
            row["naive"] = t_naive
            row["naive_agrees"] = worst < 1e-5
        for fast in (False, True):
            try:
                import torch  # noqa: F401
                yt = y.astype(np.float64) if loss == "bce" else y
                t, ok = timed(lambda: torch_check(x, yt, Ws, bs, loss, fast), args.peer_repeat)
                row[f"torch_fast={fast}"] = t
                row[f"torch_fast={fast}_agrees"] = bool(ok)
            except ImportError:
                pass
        try:
            t, ok = timed(lambda: jax_check(x, y, Ws, bs, loss), args.peer_repeat)
            row["jax"] = t
            row["jax_agrees"] = ok
        except ImportError:
            pass
        rows.append(row)
        print(row, flush=True)
    print(f"peak memory of the full check of {names[-1]}: "
          f"{peak_memory(spec_text(names[-1])) / 2**20:.1f} MiB allocated at the peak, above the "
          "built network", flush=True)
    if not args.quick:
        net = build_network(load_spec(CONVNET))
        t, result = timed(lambda: check_network(net, CheckSettings()), args.repeat)
        rows.append({"network": "cs231n convnet", "params": sum(n.n_params for n in net.nodes),
                     "gradcheck": t, "verdict": result.status.value})
        print(rows[-1], flush=True)
    print()
    print(f"{'network':24} {'params':>8} {'gradcheck':>10} {'floor':>8} {'naive':>8} "
          f"{'torch full':>11} {'torch fast':>11} {'jax':>8}  naive/gc  torch/gc")
    for r in rows:
        def s(k):
            return f"{r[k]:.2f}s" if k in r else "—"
        ratio_n = f"{r['naive'] / r['gradcheck']:.0f}×" if "naive" in r else "—"
        ratio_t = f"{r['torch_fast=False'] / r['gradcheck']:.0f}×" if "torch_fast=False" in r else "—"
        print(f"{r['network']:24} {r['params']:>8,} {s('gradcheck'):>10} {s('floor'):>8} {s('naive'):>8} "
              f"{s('torch_fast=False'):>11} {s('torch_fast=True'):>11} {s('jax'):>8}  {ratio_n:>8}  {ratio_t:>8}")


if __name__ == "__main__":
    main()
