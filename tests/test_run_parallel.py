"""--jobs: a process pool gives the same results, in the same order, as a serial run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from ci_helpers import FAILING, INVALID, PASSING, PLUGIN, clean_env, default_ctrl_c, gradcheck
from gradcheck_cli.run import parallel
def test_jobs_give_the_same_json_as_serial(tmp_path):
    # lenet: convolutions, whose sums a BLAS with more threads would split differently
    args = ["check", "configs/lenet.yaml", "configs/mlp.yaml", FAILING, INVALID, PASSING,
            "--plugin", PLUGIN]
    serial, pooled = tmp_path / "serial.json", tmp_path / "pooled.json"
    one = gradcheck(*args, "--output", str(serial))
    two = gradcheck(*args, "--jobs", "2", "--output", str(pooled))
    assert one.returncode == two.returncode == 2
    assert serial.read_text() == pooled.read_text()
    # the terminal output matches too, apart from the timings
    strip = lambda text: [ln.split(" (")[0] if ln.endswith(" s)") else ln for ln in text.splitlines()]  # noqa: E731
    assert strip(one.stdout) == strip(two.stdout)
    assert one.stderr == two.stderr


def test_workers_limit_blas_threads_and_leave_ctrl_c_to_the_parent(monkeypatch):
    for var in parallel.BLAS_THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    handlers = {}
    monkeypatch.setattr(signal, "signal", lambda sig, handler: handlers.__setitem__(sig, handler))
    parallel._init_worker([])
    assert all(os.environ[var] == "1" for var in parallel.BLAS_THREAD_VARS)
    assert handlers == {signal.SIGINT: signal.SIG_IGN}


def test_a_thread_count_the_user_chose_is_kept(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    parallel.limit_blas_threads()
    assert (os.environ["OPENBLAS_NUM_THREADS"], os.environ["OMP_NUM_THREADS"]) == ("2", "1")


def test_keep_freed_memory_changes_no_number(tmp_path):
    """The allocator setting the check command makes is taken on glibc and leaves every result
    identical (it only decides where freed memory goes)."""
    import subprocess
    import sys

    code = ("import sys, json\n"
            "from gradcheck_cli.run.parallel import keep_freed_memory\n"
            "took = keep_freed_memory() if sys.argv[1] == 'tune' else None\n"
            "from gradcheck_cli import build_network, check_network, load_spec\n"
            "r = check_network(build_network(load_spec('configs/cs231n_convnet.yaml')))\n"
            "print(json.dumps([took, [[row.label, row.tensor, row.status.value, row.isolated.rel_error]"
            " for row in r.rows]]))\n")
    root = Path(__file__).resolve().parent.parent
    runs = [json.loads(subprocess.run([sys.executable, "-c", code, mode], cwd=root, capture_output=True,
                                      text=True, check=True).stdout) for mode in ("tune", "plain")]
    if sys.platform.startswith("linux"):
        import platform
        assert runs[0][0] is (platform.libc_ver()[0] == "glibc")
    assert runs[0][1] == runs[1][1]


# A Ctrl-C at the worst moment, made certain: the parent signals itself just as a result wakes it
# and it re-acquires the pool's result condition (where a KeyboardInterrupt raised by the handler
# would leave the lock released, and leaving its `with` block raise "release unlocked lock").
WORST_MOMENT = """
import os, signal, sys, threading
from pathlib import Path

restore = threading.Condition._acquire_restore
armed = []

def acquire_restore(self, state):
    if armed and threading.current_thread() is threading.main_thread():
        armed.clear()
        os.kill(os.getpid(), signal.SIGINT)
    return restore(self, state)

threading.Condition._acquire_restore = acquire_restore
from gradcheck_cli.run.parallel import check_files
from gradcheck_cli.run.pipeline import RunOptions

try:
    for result in check_files([Path(sys.argv[1])] * 8, RunOptions(), jobs=2):
        armed.append(True)
    print("not interrupted")
except KeyboardInterrupt:
    print("KeyboardInterrupt")
"""


def test_ctrl_c_while_a_result_wakes_the_parent_is_a_clean_interrupt():
    # The moment needs the parent to wait for a result after the first one; on a loaded machine
    # the workers can finish every config before the parent asks again, and then no wait (and no
    # signal) comes: that run says "not interrupted" and is tried again.
    for _ in range(5):
        proc = subprocess.run([sys.executable, "-c", WORST_MOMENT, PASSING], capture_output=True,
                              text=True, env=clean_env(), timeout=120, preexec_fn=default_ctrl_c)
        if proc.stdout != "not interrupted\n":
            break
    assert (proc.stdout, proc.stderr) == ("KeyboardInterrupt\n", "")
