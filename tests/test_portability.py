"""Verdicts, statuses and diagnoses are the same on every machine: the bundled configs and the
planted-bug examples give the same JSON under each OpenBLAS kernel this CPU can run, once the
numbers that rounding moves are compared to within the noise (tests/rounding.py).

OpenBLAS picks its matrix-product kernel per CPU (OPENBLAS_CORETYPE overrides the choice), and each
kernel sums in its own order, so the last digits of every rounding-level number differ from one
machine to the next. This is the only test that sets OPENBLAS_CORETYPE, and only in the
environment of its own subprocesses. The whole suite under one kernel, by hand:

    OPENBLAS_CORETYPE=Haswell python -m pytest -q -n 2
"""
from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from rounding import json_differences

ROOT = Path(__file__).resolve().parent.parent
PATHS = ["configs/", "examples/broken/", "examples/plugins/"]
#: kernels worth forcing, per architecture (OpenBLAS ignores names it was not built with, and a
#: CPU without a kernel's instructions cannot run it: such a subprocess is skipped, not failed)
CORETYPES = {
    "x86_64": ["Haswell", "SkylakeX", "Zen", "Sandybridge", "Nehalem"],
    "AMD64": ["Haswell", "SkylakeX", "Zen", "Sandybridge", "Nehalem"],
    "aarch64": ["ARMV8", "CORTEXA57", "NEOVERSEN1", "NEOVERSEV1"],
    "arm64": ["ARMV8", "CORTEXA57", "NEOVERSEN1", "NEOVERSEV1"],
}.get(platform.machine(), [])
KERNEL = ("import json, numpy, threadpoolctl; numpy.ones((2, 2)) @ numpy.ones((2, 2)); "
          "print(json.dumps([i.get('architecture') for i in threadpoolctl.threadpool_info() "
          "if i.get('internal_api') == 'openblas']))")


def _environment(coretype: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "GITHUB_ACTIONS", "NO_COLOR", "FORCE_COLOR")}
    if coretype is not None:
        env["OPENBLAS_CORETYPE"] = coretype
    return env


@functools.lru_cache(maxsize=None)
def kernel(coretype: str | None) -> str | None:
    """The OpenBLAS kernel a process started with this OPENBLAS_CORETYPE uses (None: not OpenBLAS,
    or the CPU cannot run it)."""
    run = subprocess.run([sys.executable, "-c", KERNEL], env=_environment(coretype),
                         capture_output=True, text=True, timeout=60)
    if run.returncode != 0:
        return None
    found = json.loads(run.stdout)
    return found[0] if found else None


@functools.lru_cache(maxsize=None)
def results(coretype: str | None) -> dict:
    run = subprocess.run([sys.executable, "-m", "gradcheck_cli", "check", *PATHS,
                          "--allow-plugins", "--format", "json"], cwd=ROOT,
                         env=_environment(coretype), capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stderr          # the broken examples fail, the rest pass
    return json.loads(run.stdout)


def test_the_examples_are_checked():
    doc = results(None)
    statuses = {c["path"]: c["status"] for c in doc["configs"]}
    assert statuses["examples/broken/sign_error.yaml"] == "FAIL"
    assert statuses["configs/mlp.yaml"] == "pass"
    assert len(statuses) >= 15


@pytest.mark.parametrize("coretype", CORETYPES)
def test_same_results_under_another_blas_kernel(coretype):
    default = kernel(None)
    if default is None:
        pytest.skip("numpy here does not use OpenBLAS (threadpoolctl finds none)")
    forced = kernel(coretype)
    if forced is None:
        pytest.skip(f"OPENBLAS_CORETYPE={coretype} cannot run on this CPU")
    if forced.lower() == default.lower():
        pytest.skip(f"OPENBLAS_CORETYPE={coretype} selects the default kernel here ({default})")
    problems = json_differences(results(None), results(coretype))
    assert not problems, (f"{default} and {forced} kernels disagree beyond rounding:\n"
                          + "\n".join(problems[:20]))
