"""run/watch.py and `gradcheck check --watch`: a rerun after a config or plugin file changes, in a
fresh interpreter (the edited plugin is imported anew), rows whose status changed marked, Ctrl-C
exits 130."""
from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ci_helpers import clean_env, default_ctrl_c
from gradcheck_cli.results import Comparison, ConfigResult, Row, Status
from gradcheck_cli.run.watch import changed, compare, snapshot, watched_files

ROOT = Path(__file__).resolve().parent.parent
BROKEN = ROOT / "examples" / "broken"
BUG = 'db = np.zeros_like(self.params["b"])'
FIX = "db = np.sum(dZ, axis=1, keepdims=True)"


def _row(label: str, tensor: str, status: Status) -> Row:
    return Row(label=label, index=1, layer_type="dense", line=1, tensor=tensor, input_shape=(2,),
               output_shape=(2,), tensor_shape=(2,), isolated=Comparison(status), network=None,
               status=status)


def _config(*rows: Row, status: Status = Status.PASS) -> ConfigResult:
    return ConfigResult(path="net.yaml", name="net", status=status, rows=list(rows))


def test_compare_names_the_rows_whose_status_changed():
    before = _config(_row("1", "W", Status.FAIL), _row("1", "b", Status.PASS), status=Status.FAIL)
    after = _config(_row("1", "W", Status.PASS), _row("1", "b", Status.PASS), _row("2", "x", Status.PASS))
    changes = compare([before], [after])
    assert changes.rows == {("net.yaml", "1", "W"): Status.FAIL}
    assert changes.configs == {"net.yaml": Status.FAIL}
    assert changes.was("net.yaml", "1", "W") is Status.FAIL and changes.was("net.yaml", "1", "b") is None
    assert compare(None, [after]).rows == {}


def test_the_watched_files_are_the_configs_and_every_plugin(tmp_path):
    shutil.copy(BROKEN / "forgotten_bias.py", tmp_path)
    (tmp_path / "net.yaml").write_text((BROKEN / "forgotten_bias.yaml").read_text())
    (tmp_path / "extra.py").write_text("")
    files = watched_files([str(tmp_path)], [], [str(tmp_path / "extra.py")])
    assert [f.name for f in files] == ["extra.py", "forgotten_bias.py", "net.yaml"]
    before = snapshot(files)
    time.sleep(0.01)
    (tmp_path / "extra.py").write_text("# edited\n")
    (tmp_path / "net.yaml").unlink()  # an editor's save by rename: gone for a moment
    assert changed(before, snapshot(files)) == [tmp_path / "extra.py", tmp_path / "net.yaml"]


class _Lines:
    """The lines a process writes, read in a thread so that a test can wait for one."""

    def __init__(self, stream) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.queue.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 120) -> list[str]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.queue.get(timeout=0.5)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return list(self.seen)
        raise AssertionError(f"no line with {text!r} in:\n" + "\n".join(self.seen))


def test_watch_reruns_after_a_plugin_edit_and_ctrl_c_exits_130(tmp_path):
    # the config lists its plugin under `plugins:`; naming it with --plugin allows it
    shutil.copy(BROKEN / "forgotten_bias.py", tmp_path / "forgotten_bias.py")
    (tmp_path / "net.yaml").write_text((BROKEN / "forgotten_bias.yaml").read_text())
    proc = subprocess.Popen([sys.executable, "-m", "gradcheck_cli", "check", "net.yaml", "--plugin",
                             "forgotten_bias.py", "--watch"], cwd=tmp_path, env=clean_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_ctrl_c)
    try:
        out = _Lines(proc.stdout)
        first = out.wait_for("1 config: ")
        assert first[-1] == "1 config: 0 passed, 1 failed", first
        assert first[0].startswith("── run 1, ") and "watching for changes, Ctrl-C to stop ──" in first[0]
        assert any(line.split()[-1] == "FAIL" and " b " in line for line in first)
        time.sleep(0.05)  # a new mtime even on coarse clocks
        plugin = tmp_path / "forgotten_bias.py"
        text = plugin.read_text()
        assert BUG in text
        plugin.write_text(text.replace(BUG, FIX))
        second = out.wait_for("1 config: 1 passed, 0 failed")[len(first):]
        assert second[0].startswith("── run 2 after a change of forgotten_bias.py, ")
        assert any(line.rstrip().endswith("pass (was FAIL)") and " b " in line for line in second), second
        assert "1 row changed status since the last run" in second
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        assert "stopped watching" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_watch_refuses_options_that_write_documents(tmp_path):
    run = subprocess.run([sys.executable, "-m", "gradcheck_cli", "check", str(ROOT / "configs" / "mlp.yaml"),
                          "--watch", "--format", "json"], env=clean_env(), capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2
    assert run.stderr == ("error: --watch shows the table: it goes without --format, --output, --dump, "
                          "--jobs and --fail-fast\n")
    assert not os.listdir(tmp_path)
