"""Interrupted scans lose nothing; concurrent builds never corrupt a table.

Interruptions tested: KeyboardInterrupt raised inside the scan after a few
stored chunks (in-process), and SIGINT, SIGTERM and SIGKILL sent to a real
``python -m mcscan scan`` process once some chunks are on disk.  In every
case ``--resume`` finishes the scan and every dataset equals, bit for bit,
the one of an uninterrupted run.
"""
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from mcscan.cli.commands import main
from mcscan.io.tables import load_table

ARGS = ["scan", "--detector", "Xe", "--detector", "Ge", "--param", "q_ee", "--param", "q_mumu",
        "--range", "-2e-8", "2e-8", "--range", "-1e-8", "1e-8", "--quiet"]


@pytest.fixture(scope="module")
def tables(table_dir):
    return table_dir


def _datasets(path):
    """Every dataset of the scan group, by path (grids, pulls, projections)."""
    out = {}
    with h5py.File(path, "r") as f:
        f["scan"].visititems(lambda n, o: out.update({n: o[()]}) if isinstance(o, h5py.Dataset) else None)
    assert {"chi2", "converged", "pulls/Xe/signal", "pulls/Ge/background"} <= set(out)
    return out


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k   # bit-identical


def test_keyboard_interrupt_then_resume(tables, tmp_path, capsys, monkeypatch, chunk_interrupt):
    monkeypatch.chdir(tmp_path)
    argv = ARGS + ["--tables", str(tables), "--points", "121", "--chunk-points", "500"]
    assert main(argv + ["--out", "ref.h5"]) == 0
    ref = _datasets("ref.h5")
    capsys.readouterr()
    chunk_interrupt.arm(3)
    assert main(argv + ["--out", "run.h5"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume" in err[0]
    assert not (tmp_path / "run.h5").exists()                    # no half-written result
    assert len(list((tmp_path / "run.h5.partial").glob("chunk_*.npz"))) == 3
    # running again without --resume refuses to overwrite the stored chunks
    chunk_interrupt.disarm()
    assert main(argv + ["--out", "run.h5"]) == 2
    assert "--resume" in capsys.readouterr().err
    # a different scan cannot resume these chunks
    other = [a if a != "121" else "131" for a in argv]
    assert main(other + ["--out", "run.h5", "--resume"]) == 2
    assert "differs" in capsys.readouterr().err
    assert main(argv + ["--out", "run.h5", "--resume", "--json"]) == 0
    assert '"resumed_chunks": 3' in capsys.readouterr().out
    assert not (tmp_path / "run.h5.partial").exists()
    _same(_datasets("run.h5"), ref)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_signal_then_resume(tables, tmp_path, sig):
    argv = ARGS + ["--tables", str(tables), "--points", "1201", "--chunk-points", "2402"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "mcscan", *argv, "--out", "run.h5"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    partial = tmp_path / "run.h5.partial"
    t0 = time.monotonic()
    while len(list(partial.glob("chunk_*.npz"))) < 3 and proc.poll() is None:
        assert time.monotonic() - t0 < 120, "scan did not start"
        time.sleep(0.005)
    if proc.poll() is not None:
        pytest.skip("the scan finished before it could be interrupted")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130
        assert len(err.strip().splitlines()) == 1 and "--resume" in err
    assert not (tmp_path / "run.h5").exists()
    kept = len(list(partial.glob("chunk_*.npz")))
    assert kept >= 3
    r = subprocess.run(cmd + ["--resume", "--json"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f'"resumed_chunks": {kept}' in r.stdout or '"resumed_chunks":' in r.stdout
    ref = subprocess.run([sys.executable, "-m", "mcscan", *argv, "--out", "ref.h5"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    _same(_datasets(tmp_path / "run.h5"), _datasets(tmp_path / "ref.h5"))


def test_concurrent_builds_leave_a_whole_table(tmp_path):
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "mcscan", "build", "--detector", "Ge", "--force", "--quiet",
           "--tables", str(tmp_path)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    for p in procs:
        p.communicate(timeout=300)
        assert p.returncode == 0
    table = load_table(tmp_path / "Ge.h5")                 # checksums and hashes verified
    assert table.detector == "Ge"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Ge.h5"]   # no temporary files left
