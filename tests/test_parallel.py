"""--jobs: a process pool gives the same results, in the same order, as a serial run."""
from __future__ import annotations

import os
import signal

from ci_helpers import FAILING, INVALID, PASSING, PLUGIN, gradcheck
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
