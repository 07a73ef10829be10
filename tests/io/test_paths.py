"""Output and input targets are checked up front, each refusal in one line."""
from __future__ import annotations

import os

import pytest

from mcscan.errors import InputError, OutputError
from mcscan.io.paths import check_input_file, check_output


def test_output_targets(tmp_path):
    assert check_output(tmp_path / "new" / "out.h5") == tmp_path / "new" / "out.h5"
    existing = tmp_path / "out.h5"
    existing.write_bytes(b"x")
    with pytest.raises(InputError, match="exists.*force") as info:
        check_output(existing)
    assert "\n" not in str(info.value)
    assert check_output(existing, force=True) == existing
    with pytest.raises(InputError, match="input of this run"):
        check_output(existing, force=True, protected=[str(existing)])
    with pytest.raises(InputError, match="input of this run"):
        check_output(tmp_path / "." / "out.h5", force=True, protected=[existing])
    os.mkfifo(tmp_path / "fifo.h5")
    with pytest.raises(InputError, match="not a regular file"):
        check_output(tmp_path / "fifo.h5", force=True)
    with pytest.raises(InputError, match="folder"):
        check_output(str(tmp_path) + os.sep)


def test_input_files(tmp_path):
    f = tmp_path / "in.toml"
    f.write_text("")
    assert check_input_file(f, "config file") == f
    with pytest.raises(InputError, match="config file .* not found"):
        check_input_file(tmp_path / "nope.toml", "config file")
    with pytest.raises(InputError, match="is a folder"):
        check_input_file(tmp_path, "config file")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(InputError, match="FIFO"):
        check_input_file(tmp_path / "fifo", "config file")
    with pytest.raises(InputError, match="not a regular file"):
        check_input_file("/dev/null", "config file")
    with pytest.raises(InputError, match="empty"):
        check_input_file("", "config file")


def test_stale_temporaries_of_dead_runs_go(tmp_path):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.h5.{dead.pid}.x1y2z3.tmp"
    live = tmp_path / f".out.h5.{os.getpid()}.x1y2z3.tmp"
    stale.write_bytes(b"")
    live.write_bytes(b"")
    check_output(tmp_path / "out.h5")
    assert not stale.exists() and live.exists()


def test_parent_is_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match="not a folder"):
        check_output(tmp_path / "f" / "sub" / "out.h5")
