"""Faults while a scan is written: nothing is lost, nothing half-written looks complete.

Faults are injected where the operating system or h5py would raise them
(numpy.savez for chunk files, h5py.Dataset.__setitem__, h5py.File, the close
of the results file, the read-back verification), since no small
file system can be mounted here.  For each fault: the error is one line of
the right McscanError (or KeyboardInterrupt propagates), no results file
exists, no temporary file is left beside it, the stored chunks are still
there, and ``resume=True`` finishes with datasets bit-identical
(np.array_equal, no tolerance) to an uninterrupted scan.  A few cases run
the real command line in a subprocess (SIGINT, SIGTERM, SIGKILL during
assembly; disk full), with a hook script that slows or breaks the assembly.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from mcscan.errors import InputError, OutputError, ResultsError
from mcscan.io import h5 as h5io
from mcscan.io import results as rio
from mcscan.io.chunks import ChunkStore
from mcscan.io.paths import check_output
from mcscan.scans.engine import scan

A = np.linspace(-2e-8, 2e-8, 13)          # q_ee
B = np.linspace(-1e-8, 1.2e-8, 11)        # q_mumu
CHUNK = 22                                 # two rows: 7 chunks


@pytest.fixture(scope="module")
def two(coefs):
    return [coefs["Xe"], coefs["Ge"]]


@pytest.fixture(scope="module")
def reference(two, tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "ref.h5"
    scan(two, ("q_ee", "q_mumu"), (A, B), path, chunk_points=CHUNK)
    return _datasets(path)


def _run(two, path, **kw):
    return scan(two, ("q_ee", "q_mumu"), (A, B), path, chunk_points=CHUNK, **kw)


def _datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f["scan"].visititems(lambda n, o: out.update({n: o[()]}) if isinstance(o, h5py.Dataset) else None)
    return out


def _assert_resumes(two, path, reference, *, chunks_before=None, recomputed=0):
    """The failed run left no results file and no temporary file; resume gives the same bits."""
    partial = path.parent / (path.name + ".partial")
    assert not path.exists()
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert not [p for p in partial.iterdir() if p.name.startswith(".")]
    kept = sorted(p.name for p in partial.glob("chunk_*.npz"))
    if chunks_before is not None:
        assert len(kept) == chunks_before
    res = _run(two, path, resume=True)
    assert res.resumed_chunks == len(kept) - recomputed
    assert len(res.notes) == recomputed
    got = _datasets(path)
    assert got.keys() == reference.keys()
    for k, v in reference.items():
        assert got[k].dtype == v.dtype and np.array_equal(got[k], v), k
    assert not partial.exists()


def _one_line(exc):
    assert "\n" not in str(exc) and str(exc)


def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


# ------------------------------------------------------------------ disk full

def test_disk_full_during_chunk_writes(two, tmp_path, reference, monkeypatch):
    real = np.savez
    calls = {"n": 0}

    def savez(fh, **arrays):
        calls["n"] += 1
        if calls["n"] == 3:
            real(fh, **{k: v for k, v in list(arrays.items())[:1]})      # partly written, then full
            _enospc()
        real(fh, **arrays)

    monkeypatch.setattr(np, "savez", savez)
    path = tmp_path / "s.h5"
    with pytest.raises(OutputError, match="No space left on device") as info:
        _run(two, path)
    _one_line(info.value)
    monkeypatch.setattr(np, "savez", real)
    _assert_resumes(two, path, reference, chunks_before=2)


def test_disk_full_during_assembly(two, tmp_path, reference, monkeypatch):
    real = h5py.Dataset.__setitem__
    calls = {"n": 0}

    def setitem(self, index, value):
        calls["n"] += 1
        if calls["n"] == 9:
            _enospc()
        return real(self, index, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", setitem)
    path = tmp_path / "s.h5"
    with pytest.raises(OutputError, match="No space left on device") as info:
        _run(two, path)
    _one_line(info.value)
    monkeypatch.setattr(h5py.Dataset, "__setitem__", real)
    _assert_resumes(two, path, reference, chunks_before=7)


def test_disk_full_creating_the_file(two, tmp_path, reference, monkeypatch):
    monkeypatch.setattr(h5io.h5py, "File", _enospc)
    path = tmp_path / "s.h5"
    with pytest.raises(OutputError, match="No space left on device") as info:
        _run(two, path)
    _one_line(info.value)
    monkeypatch.undo()
    _assert_resumes(two, path, reference, chunks_before=7)


def test_error_while_closing_the_file(two, tmp_path, reference, monkeypatch):
    real = h5io._close

    def close(f):
        real(f)
        raise RuntimeError("Can't decrement id ref count (unable to flush cached dataset)")

    monkeypatch.setattr(h5io, "_close", close)
    path = tmp_path / "s.h5"
    with pytest.raises(OutputError, match="Can't decrement") as info:
        _run(two, path)
    _one_line(info.value)
    monkeypatch.setattr(h5io, "_close", real)
    _assert_resumes(two, path, reference, chunks_before=7)


def test_failed_verification_keeps_chunks(two, tmp_path, reference, monkeypatch):
    real = rio.digest
    calls = {"n": 0}

    def digest(f):
        calls["n"] += 1
        return real(f) if calls["n"] == 1 else "0" * 64      # the read-back differs

    monkeypatch.setattr(rio, "digest", digest)
    path = tmp_path / "s.h5"
    with pytest.raises(OutputError, match="read back does not match") as info:
        _run(two, path)
    _one_line(info.value)
    monkeypatch.setattr(rio, "digest", real)
    _assert_resumes(two, path, reference, chunks_before=7)


def test_read_only_place_and_long_names(tmp_path, monkeypatch):
    with pytest.raises(OutputError, match="too long"):
        check_output(tmp_path / ("x" * 240 + ".h5"))
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="not a folder"):
        check_output(tmp_path / "file" / "out.h5")
    with pytest.raises(InputError, match="is a folder"):
        check_output(tmp_path)
    with pytest.raises(InputError, match="empty"):
        check_output("")
    monkeypatch.setattr(os, "access", lambda *a, **k: False)    # as a non-root user would see it
    with pytest.raises(OutputError, match="not writable"):
        check_output(tmp_path / "out.h5")


def test_read_only_file_system_while_writing(tmp_path, monkeypatch, two):
    def erofs(*_a, **_k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(h5io.h5py, "File", erofs)
    res = scan(two, ("q_ee",), (A,))
    with pytest.raises(OutputError, match="Read-only file system") as info:
        res.save(tmp_path / "s.h5")
    _one_line(info.value)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ interrupts

def test_keyboard_interrupt_during_assembly(two, tmp_path, reference, monkeypatch):
    real = ChunkStore.read
    calls = {"n": 0}

    def read(self, k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(self, k)

    monkeypatch.setattr(ChunkStore, "read", read)
    path = tmp_path / "s.h5"
    with pytest.raises(KeyboardInterrupt):
        _run(two, path)
    monkeypatch.setattr(ChunkStore, "read", real)
    _assert_resumes(two, path, reference, chunks_before=7)


def test_keyboard_interrupt_during_verification(two, tmp_path, reference, monkeypatch):
    real = rio.digest
    calls = {"n": 0}

    def digest(f):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(f)

    monkeypatch.setattr(rio, "digest", digest)
    path = tmp_path / "s.h5"
    with pytest.raises(KeyboardInterrupt):
        _run(two, path)
    monkeypatch.setattr(rio, "digest", real)
    _assert_resumes(two, path, reference, chunks_before=7)


# ------------------------------------------------------------------ bad chunks

def _stored(two, path, chunk_interrupt, n=4):
    """An interrupted scan with ``n`` stored chunks."""
    chunk_interrupt.arm(n)
    with pytest.raises(KeyboardInterrupt):
        _run(two, path)
    chunk_interrupt.disarm()
    return path.parent / (path.name + ".partial")


def test_corrupt_chunk_recomputed_on_resume(two, tmp_path, reference, chunk_interrupt):
    path = tmp_path / "s.h5"
    partial = _stored(two, path, chunk_interrupt)
    p = partial / "chunk_00000001.npz"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    (partial / "chunk_00000002.npz").write_bytes(b"")                      # truncated to nothing
    res = _run(two, path, resume=True)
    assert res.resumed_chunks == 2
    assert any("chunk_00000001.npz" in n for n in res.notes)
    assert any("chunk_00000002.npz" in n for n in res.notes)
    got = _datasets(path)
    for k, v in reference.items():
        assert np.array_equal(got[k], v), k


def test_foreign_and_stray_chunks(two, tmp_path, reference, chunk_interrupt, coefs):
    other = tmp_path / "other.h5"
    scan([coefs["Ge"]], ("q_ee", "q_mumu"), (A, B), other, chunk_points=CHUNK, pulls=False)
    path = tmp_path / "s.h5"
    partial = _stored(two, path, chunk_interrupt, n=2)
    # a chunk of another scan (other detectors) under a name this scan expects
    chunk_interrupt.arm(1)
    with pytest.raises(KeyboardInterrupt):
        scan([coefs["Ge"]], ("q_ee", "q_mumu"), (A, B), tmp_path / "o2.h5", chunk_points=CHUNK)
    chunk_interrupt.disarm()
    os.replace(tmp_path / "o2.h5.partial" / "chunk_00000000.npz", partial / "chunk_00000003.npz")
    store = ChunkStore(partial, _spec(partial), resume=True, n_chunks=7)
    with pytest.raises(ResultsError, match="chunk_00000003.npz.*another scan") as info:
        store.read(3)
    _one_line(info.value)
    (partial / "chunk_00000099.npz").write_bytes(b"stray")
    (partial / "notes.txt").write_text("stray")
    res = _run(two, path, resume=True)
    assert res.resumed_chunks == 2
    notes = " ".join(res.notes)
    assert "chunk_00000003.npz" in notes and "another scan" in notes
    assert "chunk_00000099.npz" in notes and "notes.txt" in notes
    got = _datasets(path)
    for k, v in reference.items():
        assert np.array_equal(got[k], v), k


def _spec(partial):
    import json

    return json.loads((partial / "spec.json").read_text())


def test_chunk_corrupted_before_assembly_is_named(two, tmp_path, reference, monkeypatch):
    real = ChunkStore.write

    def write(self, k, arrays):
        real(self, k, arrays)
        if k == 5:
            p = self.folder / "chunk_00000005.npz"
            data = bytearray(p.read_bytes())
            data[300] ^= 0xFF                  # inside the chi2 array
            p.write_bytes(bytes(data))

    monkeypatch.setattr(ChunkStore, "write", write)
    path = tmp_path / "s.h5"
    with pytest.raises(ResultsError, match="chunk_00000005.npz") as info:
        _run(two, path)
    _one_line(info.value)
    monkeypatch.setattr(ChunkStore, "write", real)
    _assert_resumes(two, path, reference, chunks_before=7, recomputed=1)


def test_stale_temporaries_removed(tmp_path, two):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".s.h5.{dead.pid}.abc123.tmp"
    live = tmp_path / f".s.h5.{os.getpid()}.def456.tmp"
    other = tmp_path / f".t.h5.{dead.pid}.abc123.tmp"
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    scan(two, ("q_ee",), (A,)).save(tmp_path / "s.h5")
    assert not stale.exists() and live.exists() and other.exists()


def test_non_finite_chi2_refused(two, tmp_path, monkeypatch):
    from mcscan.scans import engine

    real = engine.compute_chunk

    def nan_chunk(k, task, **kw):
        out = real(k, task, **kw)
        if k == 2:
            out["chi2"][3] = np.nan
        return out

    monkeypatch.setattr(engine, "compute_chunk", nan_chunk)
    with pytest.raises(InputError, match=r"chi2 is nan \(not a number\) at q_ee = .*, q_mumu = "
                                         r".*narrow the scanned range") as info:
        scan(two, ("q_ee", "q_mumu"), (A, B), chunk_points=CHUNK)
    _one_line(info.value)
    with pytest.raises(InputError, match="chi2 is nan"):
        _run(two, tmp_path / "s.h5")
    assert not (tmp_path / "s.h5").exists() and not (tmp_path / "s.h5.partial").exists()


# ------------------------------------------------------------------ command line

HOOK = r'''
import os, sys, time
mode = os.environ["MCSCAN_TEST_HOOK"]
from mcscan.io.chunks import ChunkStore
real = ChunkStore.read
def slow_read(self, k):
    open(os.environ["MCSCAN_TEST_MARK"], "a").close()
    time.sleep(0.4)
    return real(self, k)
if mode == "slow-assembly":
    ChunkStore.read = slow_read
elif mode == "disk-full":
    import errno, numpy as np
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    np.savez = full
from mcscan.cli import main
sys.exit(main(sys.argv[1:]))
'''

CLI = ["scan", "--detector", "Xe", "--param", "q_ee", "--param", "q_mumu", "--points", "101",
       "--chunk-points", "1010", "--quiet"]


def _cli(tmp_path, table_dir, extra, hook=None, wait_mark=False, sig=None):
    script = tmp_path / "hook.py"
    script.write_text(HOOK)
    env = dict(os.environ, MCSCAN_TEST_HOOK=hook or "none", MCSCAN_TEST_MARK=str(tmp_path / "mark"),
               PYTHONUNBUFFERED="1")
    cmd = [sys.executable, str(script), *CLI, "--tables", str(table_dir), *extra]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    if sig is not None:
        t0 = time.monotonic()
        while not (tmp_path / "mark").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() - t0 < 120, "assembly did not start"
            time.sleep(0.01)
        time.sleep(0.5)
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_cli_signal_during_assembly_then_resume(tmp_path, table_dir, sig):
    code, _, err = _cli(tmp_path, table_dir, ["--out", "run.h5"], hook="slow-assembly", sig=sig)
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
        assert [p for p in tmp_path.iterdir() if p.name.startswith(".run.h5.")]   # killed mid-write
    else:
        assert code == 130, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "resume" in lines[0], err
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert not (tmp_path / "run.h5").exists()
    assert len(list((tmp_path / "run.h5.partial").glob("chunk_*.npz"))) == 11
    code, _, err = _cli(tmp_path, table_dir, ["--out", "run.h5", "--resume"])
    assert code == 0, err
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]    # stale one removed
    code, _, err = _cli(tmp_path, table_dir, ["--out", "ref.h5"])
    assert code == 0, err
    a, b = _datasets(tmp_path / "run.h5"), _datasets(tmp_path / "ref.h5")
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_cli_disk_full_one_line(tmp_path, table_dir):
    code, out, err = _cli(tmp_path, table_dir, ["--out", "run.h5"], hook="disk-full")
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0] and "Traceback" not in err
    assert not (tmp_path / "run.h5").exists()


def test_infinite_chi2_is_a_value_but_not_a_minimum(two, monkeypatch):
    """+inf (a dead bin under observed counts) is kept; a grid that is +inf everywhere has no
    minimum and is refused."""
    from mcscan.scans import engine

    real = engine.compute_chunk

    def inf_chunk(k, task, everywhere=False, **kw):
        out = real(k, task, **kw)
        if everywhere:
            out["chi2"][:] = np.inf
        elif k == 0:
            out["chi2"][0] = np.inf
        return out

    monkeypatch.setattr(engine, "compute_chunk", inf_chunk)
    res = scan(two, ("q_ee", "q_mumu"), (A, B), chunk_points=CHUNK)
    assert res.chi2[0, 0] == np.inf and np.isfinite(res.chi2_min)
    json.dumps(res.to_json(), allow_nan=False)
    monkeypatch.setattr(engine, "compute_chunk", lambda k, task, **kw: inf_chunk(k, task, True, **kw))
    with pytest.raises(InputError, match=r"\+inf at every point") as info:
        scan(two, ("q_ee", "q_mumu"), (A, B), chunk_points=CHUNK)
    _one_line(info.value)
