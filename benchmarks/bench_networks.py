"""Full checks of an MLP, a convnet and an LSTM, each written three ways, against torch and a naive loop.

    python benchmarks/bench_networks.py                   # every workload, every variant
    python benchmarks/bench_networks.py --only convnet    # one workload (mlp, convnet, lstm, loops)
    python benchmarks/bench_networks.py --repeat 1 --peer-repeat 1   # one run of each, for a quick look

Workloads (float64, central differences, the arrays gradcheck draws from the seed):
  mlp      dense [100, 100, 100, 10] + relu, softmax cross-entropy, m = 32
  convnet  3×32×32, batch 4: conv2d 8 (3×3, pad 1) + relu, maxpool 2, conv2d 16 + relu, maxpool 2,
           flatten, dense 10, softmax cross-entropy
  lstm     (8 steps, 16 features), batch 4: lstm 32, linear 10, mse
  loops    the convnet's layers at 3×8×8, batch 2: the loop-written convolution and max-pool make one
           forward call cost milliseconds, so the full-size convnet would take an hour
Variants: gradcheck's built-in layers; the same network as the user's own vectorised plugins
(benchmarks/plugins/vectorised.py: `x @ W + b`, an im2col convolution, a step-by-step LSTM, no
base class, no probe_axes; the LSTM's step a method of its own, forward_step, as cs231n's
lstm_forward runs lstm_step_forward); for `lstm`, also the same plugin with its step hidden inside
forward; for `loops`, cs231n-style loop layers (benchmarks/plugins/loops.py). A plugin found to
compute what a built-in computes (its dense and pooling layers here) is differenced through that
built-in, its twin (gradcheck_cli/check/twins.py); for `convnet`, "plugins, black box" is the same
network with no twin, as are the loop plugins, whose calls the floor table counts.
Every variant gets the built-in network's parameter values, input and targets.

Peers: torch.autograd.gradcheck(fast_mode=False) on the same function and arrays (parameters
only, as one would call it), when torch is installed (pip install ".[bench]"); the naive loop of
cs231n's eval_numerical_gradient (every parameter entry perturbed in place, two full forwards of
the built-in layers, h = 1e-6). gradcheck's figure is its full check: every entry of every
tensor, parameters and inputs, the isolated check of every layer and the end-to-end check.

For loop plugins the script counts the forward calls each plugin layer receives and compares them
with the fewest a full check needs, 2 × (parameter entries + input entries per example) per
layer (NUMERICS.md, "a floor for slow layers"), and the total time with (that minimum × the
measured cost of one call on the layer's real input).

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, when set, slow numpy's GEMM on some machines: the script
re-runs itself without them, with OPENBLAS_NUM_THREADS=1 unless set, and says so; like the
gradcheck command, it lets malloc reuse freed memory (gradcheck_cli.run.parallel.keep_freed_memory). Timings are
medians of --repeat (gradcheck) and --peer-repeat (torch, naive loop) runs; ratios are taken
within one run of this script, so that a busy machine slows every column alike, and a
workload's gradcheck variants (all but the loop plugins) take turns run by run; "time /
built-in" gives, in parentheses, the smallest and largest of the ratios run by run.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
HERE = Path(__file__).resolve().parent
PLUGINS = HERE / "plugins"


def _spec(name, input_shape, batch, layers, loss, seed=0):
    lines = "\n".join(f"  - {layer}" for layer in layers)
    return (f"name: {name}\nseed: {seed}\ninput: {{shape: {list(input_shape)}, batch: {batch}}}\n"
            f"layers:\n{lines}\nloss: {loss}\n")


def _convnet_layers(filters, conv, relu, pool, flatten, dense):
    f1, f2 = filters
    return [f"{{type: {conv}, filters: {f1}, kernel: 3, padding: 1}}", f"{{type: {relu}}}",
            f"{{type: {pool}, kernel: 2}}",
            f"{{type: {conv}, filters: {f2}, kernel: 3, padding: 1}}", f"{{type: {relu}}}",
            f"{{type: {pool}, kernel: 2}}", f"{{type: {flatten}}}", f"{{type: {dense}, units: 10}}"]


BUILTIN = dict(conv="conv2d", relu="relu", pool="maxpool2d", flatten="flatten", dense="dense")
VECTORISED = dict(conv="my_conv", relu="my_relu", pool="my_maxpool", flatten="my_flatten", dense="my_affine")
LOOPS = dict(VECTORISED, conv="naive_conv", pool="naive_maxpool")

WORKLOADS = {
    # name: {variant: spec text}, torch function name
    "mlp": ({"built-in": _spec("mlp", [100], 32, ["{type: dense, units: 100}", "{type: relu}",
                                                  "{type: dense, units: 100}", "{type: relu}",
                                                  "{type: dense, units: 10}"], "softmax_cross_entropy"),
             "vectorised plugins": _spec("mlp", [100], 32, ["{type: my_affine, units: 100}", "{type: my_relu}",
                                                            "{type: my_affine, units: 100}", "{type: my_relu}",
                                                            "{type: my_affine, units: 10}"],
                                         "softmax_cross_entropy")},
            "mlp"),
    "convnet": ({"built-in": _spec("convnet", [3, 32, 32], 4, _convnet_layers((8, 16), **BUILTIN),
                                   "softmax_cross_entropy"),
                 "vectorised plugins": _spec("convnet", [3, 32, 32], 4, _convnet_layers((8, 16), **VECTORISED),
                                             "softmax_cross_entropy"),
                 "plugins, black box": _spec("convnet", [3, 32, 32], 4, _convnet_layers((8, 16), **VECTORISED),
                                             "softmax_cross_entropy")},
                "convnet"),
    "lstm": ({"built-in": _spec("lstm", [8, 16], 4, ["{type: lstm, hidden: 32}", "{type: linear, units: 10}"],
                                "mse"),
              "vectorised plugins": _spec("lstm", [8, 16], 4, ["{type: my_lstm, hidden: 32}",
                                                               "{type: my_affine, units: 10}"], "mse"),
              "plugins, step hidden": _spec("lstm", [8, 16], 4, ["{type: my_lstm_no_step, hidden: 32}",
                                                                 "{type: my_affine, units: 10}"], "mse")},
             "lstm"),
    "loops": ({"built-in": _spec("convnet-small", [3, 8, 8], 2, _convnet_layers((8, 16), **BUILTIN),
                                 "softmax_cross_entropy"),
               "vectorised plugins": _spec("convnet-small", [3, 8, 8], 2, _convnet_layers((8, 16), **VECTORISED),
                                           "softmax_cross_entropy"),
               "loop plugins": _spec("convnet-small", [3, 8, 8], 2, _convnet_layers((8, 16), **LOOPS),
                                     "softmax_cross_entropy")},
              "convnet"),
}
LABELS = {"mlp": "MLP [100,100,100,10], m=32", "convnet": "convnet 3×32×32, batch 4",
          "lstm": "LSTM (8×16) → lstm 32 → linear 10, batch 4", "loops": "convnet 3×8×8, batch 2"}


@contextlib.contextmanager
def black_box(variant: str):
    """The check of a "black box" variant, and of the loop plugins, whose calls the floor table
    counts: no built-in twin (gradcheck_cli/check/twins.py) stands in for a user's layer, so
    that what is measured is what the check makes of layers it only verifies."""
    from gradcheck_cli.check import state

    keep = state.with_twins
    if variant in ("plugins, black box", "loop plugins"):
        state.with_twins = lambda ref, net: ref
    try:
        yield
    finally:
        state.with_twins = keep


def timed(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


# -- the network as plain layers: a loss, its gradient, the naive loop --------------------------

def param_layers(net):
    return [n.layer for n in net.nodes if n.layer.params]


def loss_of(net) -> float:
    a = net.x
    for n in net.nodes:
        a = n.layer.forward(a)[0]
    return float(net.loss.layer.forward(a, net.targets)[0])


def backprop(net) -> list:
    """Analytic gradients of every parameter tensor, in network order, by the layers' own backward."""
    import numpy as np

    a, caches = net.x, []
    for n in net.nodes:
        a, c = n.layer.forward(a)
        caches.append(c)
    _, lc = net.loss.layer.forward(a, net.targets)
    d = net.loss.layer.backward(np.float64(1.0), lc)
    grads = []
    for n, c in zip(reversed(net.nodes), reversed(caches)):
        d, g = n.layer.backward(d, c)
        grads[:0] = [g[k] for k in n.layer.params]
    return grads


def naive_loop(net, h: float = 1e-6) -> list:
    """cs231n's eval_numerical_gradient over every parameter entry: two full forwards each."""
    import numpy as np

    grads = []
    for layer in param_layers(net):
        for p in layer.params.values():
            flat, g = p.reshape(-1), np.empty(p.size)
            for i in range(p.size):
                old = flat[i]
                flat[i] = old + h
                fp = loss_of(net)
                flat[i] = old - h
                fm = loss_of(net)
                flat[i] = old
                g[i] = (fp - fm) / (2 * h)
            grads.append(g.reshape(p.shape))
    return grads


def copy_params(src, dst) -> None:
    """Give the plugin network the built-in network's parameter values (same shapes by design)."""
    for a, b in zip(param_layers(src), param_layers(dst)):
        assert list(a.params) == list(b.params), (a, b)
        for k in a.params:
            assert a.params[k].shape == b.params[k].shape, (k, a.params[k].shape, b.params[k].shape)
            b.params[k] = a.params[k].copy()


# -- torch, on the same arrays ---------------------------------------------------------------------

def torch_function(kind: str, net):
    import torch
    import torch.nn.functional as F

    x = torch.tensor(net.x)
    y = torch.tensor(net.targets)
    m = net.x.shape[0]

    if kind == "mlp":
        def f(*ps):
            a = x
            for k in range(0, len(ps), 2):
                a = a @ ps[k] + ps[k + 1]
                if k + 2 < len(ps):
                    a = torch.relu(a)
            return F.cross_entropy(a, y)
    elif kind == "convnet":
        def f(W1, b1, W2, b2, W3, b3):
            a = F.max_pool2d(torch.relu(F.conv2d(x, W1, b1, padding=1)), 2)
            a = F.max_pool2d(torch.relu(F.conv2d(a, W2, b2, padding=1)), 2)
            return F.cross_entropy(a.reshape(m, -1) @ W3 + b3, y)
    else:
        def f(Wx, Wh, b, W, bo):
            H = Wh.shape[0]
            h = c = torch.zeros(m, H, dtype=torch.float64)
            hs = []
            for t in range(x.shape[1]):
                a = x[:, t] @ Wx + h @ Wh + b
                i, fg, o = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:2 * H]), torch.sigmoid(a[:, 2 * H:3 * H])
                c = fg * c + i * torch.tanh(a[:, 3 * H:])
                h = o * torch.tanh(c)
                hs.append(h)
            d = torch.stack(hs, 1) @ W + bo - y
            return (d * d).sum() / (2 * m)
    params = [torch.tensor(p, requires_grad=True) for layer in param_layers(net) for p in layer.params.values()]
    return f, params


def torch_check(kind: str, net) -> tuple[float, bool]:
    import torch

    # one thread, like the others: with two, torch's thread pool fights itself on these tiny ops
    torch.set_num_threads(1)
    f, params = torch_function(kind, net)
    value = f(*params).item()
    assert abs(value - loss_of(net)) < 1e-10 * max(1.0, abs(value)), "torch computes another network"
    ok = torch.autograd.gradcheck(f, tuple(params), eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=False,
                                  raise_exception=False)
    return value, bool(ok)


# -- loop plugins: calls made against the fewest a full check needs ----------------------------------

class CallCounter:
    """Counts forward calls of plugin classes (class-level, so copies the checker makes count too),
    per (class, per-example input shape): two layers of one class are told apart by their input."""

    def __init__(self, classes):
        self.classes = set(classes)
        self.calls, self.examples = collections.Counter(), collections.Counter()
        self._orig = {}

    def __enter__(self):
        for cls in self.classes:
            orig = cls.forward
            self._orig[cls] = orig

            def counted(layer, x, _orig=orig, _cls=cls):
                # only calls that return count: one the layer refuses at once (a probe axis it
                # cannot take, tried by the checker) costs nothing
                result = _orig(layer, x)
                key = (_cls, tuple(x.shape[1:]))
                self.calls[key] += 1
                self.examples[key] += int(x.shape[0])
                return result

            cls.forward = counted
        return self

    def __exit__(self, *exc):
        for cls, orig in self._orig.items():
            cls.forward = orig


def loop_floor(net, slow_types: set[str]) -> list[dict]:
    """Per slow layer: the fewest calls a full check needs and the measured cost of one call."""
    out = []
    a = net.x
    for n in net.nodes:
        if n.type_name in slow_types:
            m = a.shape[0]
            t, _ = timed(lambda: n.layer.forward(a.copy()), 3)
            minimum = 2 * (n.n_params + a.size // m)
            out.append({"label": n.label, "type": n.type_name, "key": (type(n.layer), tuple(a.shape[1:])),
                        "min_calls": minimum,
                        "call_s": t, "batch": m})
        a = n.layer.forward(a)[0]
    return out


# -- the run -------------------------------------------------------------------------------------------

def machine_line() -> str:
    import numpy as np

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = ""
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{cfg.get('name')} {cfg.get('version')}"
    except Exception:  # noqa: BLE001  (older numpy: no dict mode)
        pass
    try:
        import torch
        tv = f", torch {torch.__version__}"
    except ImportError:
        tv = ", torch not installed"
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"
            f" ({blas}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}){tv}")


def run_workload(name: str, args) -> list[dict]:
    from gradcheck_cli import build_network, check_network, spec_from_text

    variants, kind = WORKLOADS[name]
    nets = {v: build_network(spec_from_text(text)) for v, text in variants.items()}
    base = nets["built-in"]
    for v, net in nets.items():
        if v != "built-in":
            copy_params(base, net)
            assert abs(loss_of(net) - loss_of(base)) < 1e-12 * max(1.0, abs(loss_of(base))), v
    P = sum(n.n_params for n in base.nodes)
    peers = {}
    if args.torch:
        try:
            t, (_, ok) = timed(lambda: torch_check(kind, base), args.peer_repeat)
            peers["torch"], peers["torch_ok"] = t, ok
        except ImportError:
            pass
    if args.naive and P <= args.no_naive_above:
        import numpy as np
        t, grads = timed(lambda: naive_loop(base), args.peer_repeat)
        ref = backprop(base)
        worst = max(float(np.abs(g - r).max() / max(np.abs(r).max(), 1e-12)) for g, r in zip(grads, ref))
        peers["naive"], peers["naive_worst"] = t, worst
    # the fast variants' runs take turns, so that a load that comes and goes meets each of them
    # alike and their ratio is taken within each round
    fast = [v for v in nets if v != "loop plugins"]
    times, results = {v: [] for v in fast}, {}
    for _ in range(args.repeat):
        for v in fast:
            with black_box(v):
                t, results[v] = timed(lambda: check_network(nets[v]), 1)
            times[v].append(t)
    rows = []
    for v, net in nets.items():
        row = {"workload": name, "variant": v, "params": P, **peers}
        if v == "loop plugins":
            floor = loop_floor(net, {"naive_conv", "naive_maxpool"})
            with CallCounter([f["key"][0] for f in floor]) as counter, black_box(v):
                t, result = timed(lambda: check_network(net), 1)
            for f in floor:
                f["calls"] = counter.calls[f["key"]]
                f["examples"] = counter.examples[f["key"]]
            row["floor"] = floor
        else:
            t, result = statistics.median(times[v]), results[v]
            if v != "built-in" and "built-in" in times:
                # the ratio in each round: how far the load that came and went moved it
                each = [a / b for a, b in zip(times[v], times["built-in"])]
                row["ratio_range"] = (min(each), max(each))
        row.update(gradcheck=t, status=result.status.value, evaluations=result.evaluations)
        rows.append(row)
        print(_row_text(row, rows[0]), flush=True)
    return rows


def _s(x):
    return "—" if x is None else (f"{x:.2f} s" if x < 100 else f"{x:.0f} s")


def _ratio(a, b):
    return "—" if a is None or b is None else (f"{a / b:.0f}×" if a / b >= 10 else f"{a / b:.1f}×")


def _row_text(r, builtin) -> str:
    vs_builtin = "" if r["variant"] == "built-in" else f", {_ratio(r['gradcheck'], builtin['gradcheck'])} the built-ins' time"
    return (f"  {r['workload']:8} {r['variant']:19} gradcheck {_s(r['gradcheck'])} ({r['status']}, "
            f"{r['evaluations']:,} evaluations), torch {_s(r.get('torch'))}, naive {_s(r.get('naive'))}"
            f"{vs_builtin}")


def table(rows) -> str:
    head = ("| workload | layers | params | gradcheck | torch slow | naive loop | vs torch | vs naive | "
            "time / built-in |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    builtin = {r["workload"]: r["gradcheck"] for r in rows if r["variant"] == "built-in"}
    for r in rows:
        torch_note = "" if r.get("torch_ok", True) else "¹"
        vs_b = "—" if r["variant"] == "built-in" else _ratio(r["gradcheck"], builtin[r["workload"]])
        if "ratio_range" in r:
            vs_b += " ({:.1f}–{:.1f})".format(*r["ratio_range"])
        lines.append(f"| {LABELS[r['workload']]} | {r['variant']} | {r['params']:,} | {_s(r['gradcheck'])} | "
                     f"{_s(r.get('torch'))}{torch_note} | {_s(r.get('naive'))} | "
                     f"{_ratio(r.get('torch'), r['gradcheck'])} | {_ratio(r.get('naive'), r['gradcheck'])} | {vs_b} |")
    return "\n".join(lines)


def floor_table(rows) -> str:
    lines = []
    for r in rows:
        if "floor" not in r:
            continue
        lines.append(f"\nloop plugins ({LABELS[r['workload']]}): forward calls of each slow layer")
        lines.append("| layer | calls made | examples passed / batch | fewest a full check needs | "
                     "one call | minimum × one call |\n|---|---|---|---|---|---|")
        total = 0.0
        for f in r["floor"]:
            floor_t = f["min_calls"] * f["call_s"]
            total += floor_t
            lines.append(f"| {f['label']} {f['type']} | {f['calls']:,} | {f['examples'] / f['batch']:,.0f} | "
                         f"{f['min_calls']:,} | {f['call_s'] * 1e3:.2f} ms | {_s(floor_t)} |")
        lines.append(f"total: gradcheck {_s(r['gradcheck'])} against (minimum calls × cost of one call) "
                     f"{_s(total)}: {r['gradcheck'] / total:.2f}× (target ≤ 1.5×)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=list(WORKLOADS), help="run only these workloads")
    parser.add_argument("--repeat", type=int, default=3, help="runs of gradcheck (median)")
    parser.add_argument("--peer-repeat", type=int, default=3, help="runs of torch and the naive loop (median)")
    parser.add_argument("--no-torch", dest="torch", action="store_false", help="skip torch")
    parser.add_argument("--no-naive", dest="naive", action="store_false", help="skip the naive loop")
    parser.add_argument("--no-naive-above", type=int, default=50_000,
                        help="skip the naive loop above this many parameters")
    args = parser.parse_args()
    if any(v in os.environ for v in BLAS_VARS) or "OPENBLAS_NUM_THREADS" not in os.environ:
        env = {k: v for k, v in os.environ.items() if k not in BLAS_VARS}
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        dropped = [v for v in BLAS_VARS if v in os.environ]
        print(f"note: running with OPENBLAS_NUM_THREADS={env['OPENBLAS_NUM_THREADS']}"
              + (f", without {', '.join(dropped)} (they slow numpy's GEMM here)" if dropped else ""),
              flush=True)
        sys.exit(subprocess.call([sys.executable, *sys.argv], env=env))

    from gradcheck_cli import load_plugin
    from gradcheck_cli.run.parallel import keep_freed_memory

    # as the gradcheck command does for its own process: freed blocks of up to 32 MiB are reused,
    # not mmapped and faulted in afresh (torch and the naive loop run in this process too)
    if keep_freed_memory():
        print("note: malloc keeps freed memory (mallopt), as the gradcheck command does", flush=True)

    for plugin in ("vectorised.py", "loops.py"):
        load_plugin(PLUGINS / plugin)
    print("machine:", machine_line(), flush=True)
    rows = []
    for name in args.only or list(WORKLOADS):
        rows.extend(run_workload(name, args))
    print()
    print(table(rows))
    if any(not r.get("torch_ok", True) for r in rows):
        print("¹ torch.autograd.gradcheck returned False (a max-pool window of values the relu tied at "
              "0, or a relu kink inside its step): its time is the full numeric Jacobian all the same")
    print(floor_table(rows))


if __name__ == "__main__":
    main()
