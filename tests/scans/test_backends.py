"""The Dask backend: same bits as the local run, lost workers recomputed.

One LocalCluster per module (2 worker processes, 1 thread each, numba on
1 thread per task).  Every comparison with the local backend is
bit-identical (np.array_equal): a chunk is a pure function of its index.
"""
from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest

from mcscan.scans import backends

from mcscan.cli import commands as cli

from mcscan.stats import kernels
from mcscan.scans.backends import DaskBackend, LocalBackend, TableRef
from mcscan.config.load import load_config
from mcscan.errors import TableError
from mcscan.scans.engine import scan
from mcscan.api import load_coefficients
from mcscan.scans.sweep import plan_sweep, run_sweep
from mcscan.io.chunks import ChunkStore

distributed = pytest.importorskip("distributed")

A = np.linspace(-2e-8, 2e-8, 21)          # q_ee
B = np.linspace(-1e-8, 1.2e-8, 25)        # q_mumu
C = np.linspace(-6e-8, 6e-8, 12)          # q_emu
PARAMS = ("q_emu", "q_ee", "q_mumu")


@pytest.fixture(scope="module")
def client():
    kernels.warm_up(True)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address="127.0.0.1:0") as cluster, \
            distributed.Client(cluster) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


@pytest.fixture
def dask(client):
    client.wait_for_workers(2, timeout=60)
    return DaskBackend(client=client, numba_threads=1, window=6)


@pytest.fixture(scope="module")
def tables(table_dir):
    return table_dir


@pytest.fixture(scope="module")
def refs(tables):
    return [TableRef.from_config(load_config(), d, tables) for d in ("Xe", "Ge")]


@pytest.fixture(scope="module")
def reference(refs, tmp_path_factory, same_results):
    """The local (numba) run every Dask run must reproduce."""
    path = tmp_path_factory.mktemp("ref") / "local.h5"
    scan(refs, PARAMS, (C, A, B), path, chunk_points=75, projections=["q_ee", "q_ee,q_mumu"])
    return same_results.read(path)


def test_dask_is_bit_identical_to_local(dask, refs, reference, tmp_path, same_results):
    res = scan(refs, PARAMS, (C, A, B), tmp_path / "d.h5", chunk_points=75, backend=dask,
                  projections=["q_ee", "q_ee,q_mumu"])
    assert res.backend["backend"] == "dask" and res.backend["workers"] == 2
    assert res.chunks == 12 * 21 * 25 // 75
    same_results(reference, tmp_path / "d.h5")


def test_dask_is_bit_identical_to_local_in_4d(dask, refs, tmp_path, same_results):
    # four charges: rows start in the vector loop (vector_start); still a pure function of
    # the chunk, so Dask workers (numba on 1 thread) and the local run (2 threads) agree
    params = ("q_etau",) + PARAMS
    axes = (np.linspace(-3e-8, 3e-8, 4), C[:5], A[:7], B[:9])
    scan(refs, params, axes, tmp_path / "l.h5", chunk_points=126)
    scan(refs, params, axes, tmp_path / "d.h5", chunk_points=126, backend=dask)
    same_results(tmp_path / "l.h5", tmp_path / "d.h5")


def test_workers_load_each_table_once(dask, client, refs, tmp_path):
    before = client.run(lambda: backends._STATS["loads"])
    res = scan(refs, PARAMS, (C, A, B), tmp_path / "d.h5", chunk_points=25, backend=dask)
    after = client.run(lambda: backends._STATS["loads"])
    assert res.chunks == 252
    # at most one load per table and worker, whatever the number of chunks
    assert all(after[w] - before.get(w, 0) <= len(refs) for w in after)
    cached = client.run(lambda: sorted(k[0] for k in backends._CACHE))
    assert all({r.path for r in refs} <= set(v) for v in cached.values())


def test_in_memory_coefficients_work_too(dask, tables, reference, tmp_path, same_results):
    coefs = load_coefficients(load_config(), ["Xe", "Ge"], tables)
    scan(coefs, PARAMS, (C, A, B), tmp_path / "d.h5", chunk_points=75, backend=dask,
            projections=["q_ee", "q_ee,q_mumu"])
    same_results(reference, tmp_path / "d.h5")


def test_resume_on_another_backend(dask, refs, reference, tmp_path, chunk_interrupt, same_results):
    chunk_interrupt.arm(5)
    with pytest.raises(KeyboardInterrupt):
        scan(refs, PARAMS, (C, A, B), tmp_path / "d.h5", chunk_points=75,
                projections=["q_ee", "q_ee,q_mumu"])
    chunk_interrupt.disarm()
    res = scan(refs, PARAMS, (C, A, B), tmp_path / "d.h5", chunk_points=75, backend=dask,
                  resume=True, projections=["q_ee", "q_ee,q_mumu"])
    assert res.resumed_chunks == 5
    same_results(reference, tmp_path / "d.h5")


def _square(i, offset):
    return i * i + offset


def test_map_yields_in_order_with_a_small_window(client):
    be = DaskBackend(client=client, window=2)
    got = list(be.map(_square, range(20), args=(3,)))
    assert got == [(i, i * i + 3) for i in range(20)]
    assert list(LocalBackend().map(_square, range(20), args=(3,))) == got


def test_worker_errors_reach_the_caller(dask, tables, tmp_path):
    bad = TableRef("Xe", str(tables / "Xe.h5"), "0" * 64)
    with pytest.raises(TableError, match="another configuration"):
        scan([bad], PARAMS, (C, A, B), tmp_path / "d.h5", chunk_points=75, backend=dask)


def test_sweep_on_dask_equals_local(dask, tmp_path):
    plan = plan_sweep(None, ["detector.Ge.threshold=0.4,0.6", "years=2,3"], ["q_ee"],
                      tables_dir=tmp_path)
    here = run_sweep(plan, backend=LocalBackend())
    there = run_sweep(plan, backend=dask)
    assert here.limits == there.limits                 # exact: the same floats


def test_bands_on_dask_equal_local(dask, tables):
    """Toys are counter-based and each toy's fit depends on its own data only: the same
    bits on Dask (tasks of 64 toys, numba on 1 thread) as in this process (one call)."""
    from mcscan.scans.frequentist import expected_bands

    coefs = load_coefficients(load_config(), ["Xe", "Ge"], tables)
    kw = dict(toys=300, seed=11, points=41, pad=0.3)   # a narrow window: toys redone on wider ones
    here = expected_bands(coefs, "q_ee", **kw)
    assert here.lower_limits.min() < here.grid[0] and here.upper_limits.max() > here.grid[-1]
    there = expected_bands(coefs, "q_ee", backend=dask, **kw)
    assert there == here                                  # every field, arrays bit for bit
    assert np.array_equal(there.lower_limits, here.lower_limits)
    assert np.array_equal(there.upper_limits, here.upper_limits)


def test_feldman_cousins_on_dask_equals_local_and_resumes_there(dask, tables, tmp_path,
                                                                chunk_interrupt):
    from mcscan.scans.frequentist import feldman_cousins

    ge = load_coefficients(load_config(), ["Ge"], tables)
    kw = dict(toys=96, seed=5, points=15)
    here = feldman_cousins(ge, "q_ee", **kw)
    there = feldman_cousins(ge, "q_ee", backend=dask, chunk=40, **kw)
    assert there == here and np.array_equal(there.critical, here.critical)
    # interrupted in this process after 6 grid values, finished on Dask: the same bits
    chunk_interrupt.arm(6)
    with pytest.raises(KeyboardInterrupt):
        feldman_cousins(ge, "q_ee", store=tmp_path / "fc.partial", **kw)
    chunk_interrupt.disarm()
    again = feldman_cousins(ge, "q_ee", store=tmp_path / "fc.partial", resume=True, backend=dask, **kw)
    assert again == here and not (tmp_path / "fc.partial").exists()


def test_cli_bands_and_fc_on_dask_local(tables, tmp_path, capsys):
    for argv in (["bands", "--param", "q_mumu", "--toys", "150"],
                 ["limits", "--method", "fc", "--param", "q_mumu", "--toys", "40", "--points", "9"]):
        argv = argv + ["--detector", "CsI", "--seed", "3", "--tables", str(tables), "--json"]
        assert cli.main(argv) == 0
        here = json.loads(capsys.readouterr().out)
        assert cli.main(argv + ["--backend", "dask-local", "--workers", "2"]) == 0
        assert json.loads(capsys.readouterr().out) == here      # exact: the same floats


def test_cli_dask_local(tables, tmp_path, capsys, same_results):
    argv = ["ndscan", "--detector", "Ge", "--param", "q_ee", "--param", "q_mumu",
            "--range", "-2e-8", "2e-8", "--range", "-1e-8", "1e-8", "--points", "15",
            "--tables", str(tables), "--quiet", "--json"]
    assert cli.main(argv + ["--out", str(tmp_path / "l.h5")]) == 0
    capsys.readouterr()
    assert cli.main(argv + ["--out", str(tmp_path / "d.h5"), "--backend", "dask-local",
                            "--workers", "2"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["backend"]["backend"] == "dask-local" and d["backend"]["workers"] == 2
    same_results(tmp_path / "l.h5", tmp_path / "d.h5")


def test_cli_sweep_on_a_running_scheduler(client, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["sweep", "--vary", "detector.Ge.mass=5,10", "--param", "q_mumu", "--tables", "t",
            "--json", "--no-plot"]
    assert cli.main(argv + ["--out", "l.h5"]) == 0
    here = json.loads(capsys.readouterr().out)
    address = client.scheduler.address
    assert cli.main(argv + ["--out", "d.h5", "--backend", "dask", "--scheduler", address]) == 0
    there = json.loads(capsys.readouterr().out)
    assert there["backend"]["backend"] == "dask" and there["backend"]["scheduler"] == address
    assert here["configurations"] == there["configurations"]       # exact: the same floats
    assert all(c["table_dir"].startswith(str(tmp_path / "t" / "sweep")) for c in there["configurations"])


def test_unreachable_scheduler_is_one_error():
    from mcscan.errors import McscanError

    with pytest.raises(McscanError, match="cannot connect to the Dask scheduler"):
        DaskBackend(scheduler="tcp://127.0.0.1:9", connect_timeout=1)


def _memory_transitions(dask_scheduler, prefix):
    """How often each task whose key starts with ``prefix`` reached memory (scheduler log)."""
    counts = {}
    for t in dask_scheduler.transition_log:
        if str(t[0]).startswith(prefix) and t[2] == "memory":
            counts[t[0]] = counts.get(t[0], 0) + 1
    return counts


def test_killed_worker_mid_scan(client, refs, reference, tmp_path, monkeypatch, same_results):
    """SIGKILL a worker process after the second stored chunk, the one holding the most
    results and running tasks: the scheduler recomputes what it held or ran, the nanny
    starts a new worker, and the file is the same bit for bit."""
    client.wait_for_workers(2, timeout=60)
    be = DaskBackend(client=client, numba_threads=1, window=8)
    real = ChunkStore.write
    killed = {}

    def write_and_kill(self, k, arrays):
        real(self, k, arrays)
        if not killed and len(self.done()) == 2:
            held, busy = client.has_what(), client.processing()
            victim = max(held, key=lambda w: len(held[w]) + len(busy.get(w, ())))
            killed.update(worker=victim, held=len(held[victim]), running=len(busy.get(victim, ())))
            pid = client.run(os.getpid, workers=[victim])[victim]
            os.kill(pid, signal.SIGKILL)

    monkeypatch.setattr(ChunkStore, "write", write_and_kill)
    before = client.run_on_scheduler(_memory_transitions, prefix="mcscan-compute_chunk-")
    # 150 points per chunk: keys of their own (projections do not depend on the chunking)
    res = scan(refs, PARAMS, (C, A, B), tmp_path / "d.h5", chunk_points=150, backend=be,
                  projections=["q_ee", "q_ee,q_mumu"])
    assert 2 < res.chunks and killed["held"] + killed["running"] > 0   # killed mid-scan, with work
    same_results(reference, tmp_path / "d.h5")
    counts = client.run_on_scheduler(_memory_transitions, prefix="mcscan-compute_chunk-")
    ours = {k: n for k, n in counts.items() if k not in before}       # this scan's chunks
    assert len(ours) == res.chunks and max(ours.values()) >= 2          # one was computed again
    # the victim is gone (its nanny starts a new worker process under a new address)
    deadline = time.monotonic() + 30
    while killed["worker"] in client.scheduler_info()["workers"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert killed["worker"] not in client.scheduler_info()["workers"]
    client.wait_for_workers(2, timeout=60)
