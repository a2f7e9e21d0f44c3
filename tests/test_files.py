"""gradcheck_cli/files.py and where it is used: a config or plugin path that is not a regular file
(a folder, a FIFO, /dev/zero) is refused without being read, reads stop at a size cap, and no
message quotes more than a few dozen characters of a config's value."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from ci_helpers import gradcheck

from gradcheck_cli.files import FileRefused, read_bounded

MLP = (Path(__file__).resolve().parent.parent / "configs" / "mlp.yaml").read_text()


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "mlp.yaml").write_text(MLP)
    return tmp_path


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


@needs_fifo
def test_a_fifo_config_is_refused_without_waiting_for_a_writer(folder):
    os.mkfifo(folder / "pipe.yaml")
    run = gradcheck("check", "mlp.yaml", "pipe.yaml", "--quiet", cwd=folder, timeout=60)
    assert run.returncode == 2
    assert run.stderr == "error: pipe.yaml: is a FIFO (named pipe), not a regular file\n"
    assert "tiny-mlp: passed" in run.stdout                # the other config is still checked


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_dev_zero_is_refused_without_reading_it(folder):
    run = gradcheck("validate", "/dev/zero", cwd=folder, timeout=60)
    assert run.returncode == 2
    assert run.stderr == "error: /dev/zero: is a device, not a regular file\n"
    plugin = gradcheck("validate", "mlp.yaml", "--plugin", "/dev/zero", cwd=folder, timeout=60)
    assert plugin.returncode == 2
    assert plugin.stderr == "error: /dev/zero: is a device, not a regular file\n"


@needs_fifo
def test_plugin_paths_that_are_not_files(folder):
    os.mkfifo(folder / "pipe.py")
    (folder / "layers").mkdir()
    for plugin, message in [("pipe.py", "is a FIFO (named pipe), not a regular file"),
                            ("layers", "is a folder, not a plugin file"),
                            ("nosuch.py", "plugin file not found")]:
        run = gradcheck("check", "mlp.yaml", "--plugin", plugin, cwd=folder, timeout=60)
        assert run.returncode == 2
        assert run.stderr == f"error: {plugin}: {message}\n"


def test_a_config_over_the_size_cap_is_refused_unread(folder):
    with open(folder / "huge.yaml", "wb") as handle:
        handle.truncate(11 * 2**20)                        # sparse: nothing is written
    run = gradcheck("validate", "huge.yaml", cwd=folder)
    assert run.returncode == 2
    assert run.stderr == "error: huge.yaml: is 11,534,336 bytes; a config file may be at most 10 MiB\n"


def test_read_bounded_stops_at_the_cap(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_bytes(b"x" * 100)
    assert read_bounded(path, 100, "config file") == b"x" * 100
    with pytest.raises(FileRefused, match="^is 100 bytes; a config file may be at most"):
        read_bounded(path, 99, "config file")


LONG = "x" * 2**20


@pytest.mark.parametrize("name, text", [
    ("long.toml", f'loss = "mse"\n\n[input]\nshape = [4]\n\n[[layers]]\ntype = "{LONG}"\n'),
    ("long.yaml", f"input: {{shape: [4]}}\nlayers:\n  - {{type: {LONG}}}\nloss: mse\n"),
    ("loss.yaml", f"input: {{shape: [4]}}\nlayers:\n  - {{type: dense, units: 3}}\nloss: {LONG}\n"),
    ("act.yaml", f"input: {{shape: [4]}}\nlayers:\n  - {{type: dense, units: 3, activation: {LONG}}}\n"
                 "loss: mse\n"),
    ("init.yaml", f"input: {{shape: [4]}}\nlayers:\n  - {{type: dense, units: 3, init: {LONG}}}\nloss: mse\n"),
    ("dtype.toml", f'dtype = "{LONG}"\nloss = "mse"\n[input]\nshape = [4]\n[[layers]]\ntype = "dense"\nunits = 3\n'),
    ("key.toml", f'loss = "mse"\n[input]\nshape = [4]\n[[layers]]\ntype = "dense"\nunits = 3\n{LONG} = 1\n'),
])
def test_a_megabyte_value_gives_a_short_message(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    run = gradcheck("validate", name, cwd=tmp_path)
    assert run.returncode == 2
    assert len(run.stderr) < 1000, run.stderr[:2000]
    assert "x" * 70 in run.stderr and "x…" in run.stderr and "x" * 81 not in run.stderr
