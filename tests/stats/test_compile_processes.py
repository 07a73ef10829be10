"""warm_up compiles the lockstep row kernel in a second process.

numba compiles one function at a time in a process, so ``kernels.warm_up`` builds the
lockstep row kernel (the longest compile) in a child process while it builds the point
kernel and the one-row kernel itself, then loads the child's build from the cache
folder they share.  These tests check that the child's build is the one loaded, that it
gives the bits of a build made in this process, when a second process is used, and that
a failed child costs nothing but time.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mcscan.stats import _jit, kernels

# every kernel of mcscan.stats.kernels from an empty cache, with the processes warm_up
# chooses (argv[1]: "auto" or a number), then a 2D grid on the lockstep kernel; prints
# what was compiled where and the bits of the grid
_RUN = textwrap.dedent("""
    import json, sys
    import numpy as np
    from mcscan.stats import kernels
    procs = None if sys.argv[1] == "auto" else int(sys.argv[1])
    used = kernels.warm_up(False, processes=procs)
    exec(sys.argv[2])          # the grid of the test: defines chi2
    d = kernels._rows
    print(json.dumps({"processes": used, "hits": sum(d._cache_hits.values()),
                      "misses": sum(d._cache_misses.values()),
                      "bits": chi2.view(np.uint64).tolist()}))
""")

# a 9 x 11 grid of synthetic counts (6 bins) on the lockstep kernel, rows of 11 points
_GRID = textwrap.dedent("""
    import numpy as np
    from mcscan.scans.grid import row_segments
    from mcscan.stats import kernels
    nb_ = 6
    S = np.linspace(50.0, 20.0, nb_); B = np.linspace(5.0, 9.0, nb_); D = S + B
    E0 = np.zeros((1, nb_)); cx1 = (0.3 * S)[None, :]; cx2 = 2.0 * S
    cy1 = (-0.2 * S)[None, :]; cy2 = 1.5 * S
    xs = np.linspace(-0.5, 0.5, 9); ys = np.linspace(-0.4, 0.4, 11)
    row, y0, cnt, o0 = row_segments(xs.size, ys.size)
    n = xs.size * ys.size
    out = np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=np.bool_)
    args = (S, B, D, E0, np.zeros(row.size, np.int64), cx1, cx2, cy1, cy2, np.zeros(nb_),
            xs[row], ys, y0, cnt, o0, 16, 100.0, 1e4, kernels.TOL, kernels.MAX_ITER,
            kernels.ARMIJO, kernels.SERIES_UMAX, kernels.deviance_polynomial()[0],
            kernels.MODEL_STEP, False, False, *out, np.zeros((1, 4), np.int64))
    kernels._run_rows(args, 16, 1, False, stand_in=False)
    chi2 = out[0]
""")


def _fresh(tmp_path, procs, threads="2"):
    """Run :data:`_RUN` in a new process with the empty cache folder ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR",)}
    env.update(MCSCAN_CACHE_DIR=str(tmp_path), NUMBA_NUM_THREADS=threads)
    r = subprocess.run([sys.executable, "-c", _RUN, procs, _GRID], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_the_lockstep_kernel_built_in_a_child_is_loaded_and_gives_these_bits(tmp_path):
    got = _fresh(tmp_path, "auto")
    # two processes; this process loaded the lockstep kernel from the cache (the child
    # built it) and compiled nothing of it
    assert got["processes"] == 2
    assert (got["hits"], got["misses"]) == (1, 0)
    # the same bits as the build of this (the test's) process
    kernels.warm_up_rows(False)
    ns = {}
    exec(_GRID, ns)
    assert got["bits"] == ns["chi2"].view(np.uint64).tolist()
    assert np.all(np.isfinite(ns["chi2"])) and ns["chi2"].min() >= 0.0


def test_a_second_process_only_where_it_saves_time(monkeypatch):
    # a child is started only where numba may use two threads, the lockstep kernel is
    # neither built nor cached and some other kernel is not either (else this process
    # would only wait for it), or when asked for; ``processes=1`` never starts one
    started = []
    monkeypatch.setattr(kernels, "build_in_child", lambda *a, **k: started.append(a) and None)
    monkeypatch.setattr(kernels, "built", lambda d: False)      # nothing built or cached
    monkeypatch.setattr(kernels, "_threads", lambda: 2)
    assert kernels.warm_up(False, processes=1) == 1 and started == []
    monkeypatch.setattr(kernels, "_threads", lambda: 1)
    assert kernels.warm_up(False) == 1 and started == []
    assert kernels.warm_up(False, processes=2) == 1 and len(started) == 1   # asked: started
    monkeypatch.setattr(kernels, "_threads", lambda: 2)
    assert kernels.warm_up(False) == 1 and len(started) == 2
    # the other kernels built or cached: the lockstep kernel compiles here
    monkeypatch.setattr(kernels, "built", lambda d: d is not kernels._rows)
    assert kernels.warm_up(False) == 1 and len(started) == 2
    # the lockstep kernel built or cached: nothing to start, even when asked
    monkeypatch.setattr(kernels, "built", lambda d: d is kernels._rows)
    assert kernels.warm_up(False, processes=2) == 1 and len(started) == 2


def test_a_failed_child_leaves_the_build_to_this_process(monkeypatch):
    # a child that exits at once without building anything: warm_up builds the lockstep
    # kernel itself (here: finds it built), and reports the second process it started
    started = []

    def failing(statement, timeout=600.0):
        started.append(statement)
        proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
        return _jit.Child(proc, timeout)

    monkeypatch.setattr(kernels, "build_in_child", failing)
    monkeypatch.setattr(kernels, "built", lambda d: d is not kernels._rows)
    assert kernels.warm_up(False, processes=2) == 2
    assert len(started) == 1 and "warm_up_rows" in started[0]
    assert kernels._rows.signatures


def test_a_child_exits_without_interpreter_teardown(tmp_path):
    # once its statement has run, the child ends at once (os._exit): no atexit handler,
    # no final garbage collection, which took 0.4-0.8 s after a kernel build; it runs
    # without BLAS worker threads, and a statement that fails still reports failure
    seen, atexit_ran = tmp_path / "env", tmp_path / "atexit"
    child = _jit.build_in_child(
        "import atexit, os, pathlib\n"
        f"atexit.register(pathlib.Path({str(atexit_ran)!r}).touch)\n"
        f"pathlib.Path({str(seen)!r}).write_text(os.environ.get('OPENBLAS_NUM_THREADS', ''))\n",
        timeout=120.0)
    assert child is not None and child.join() is True
    assert seen.read_text() == "1" and not atexit_ran.exists()
    failing = _jit.build_in_child("raise RuntimeError('no build')", timeout=120.0)
    assert failing is not None and failing.join() is False


def test_a_child_compiles_without_importing_scipy_linalg(tmp_path):
    # numba's first compile imports scipy.linalg only to learn whether BLAS is there; the
    # child blocks that import (0.25 to 0.35 s) and still compiles: numba takes BLAS for
    # missing there.  The lockstep kernel it builds gives the bits of this process's
    # build (test_the_lockstep_kernel_built_in_a_child_is_loaded_and_gives_these_bits).
    seen = tmp_path / "seen"
    child = _jit.build_in_child(
        "import pathlib, sys, numba\n"
        "from numba.np import arraymath\n"
        "assert numba.njit(lambda x: 2.0 * x + 1.0)(3.0) == 7.0\n"
        f"pathlib.Path({str(seen)!r}).write_text(repr((sys.modules[{_jit.BLAS_PROBE!r}], "
        "'scipy.linalg' in sys.modules, arraymath._HAVE_BLAS)))\n",
        timeout=120.0)
    assert child is not None and child.join() is True
    assert seen.read_text() == repr((None, False, False))


def test_child_is_none_without_a_cache_folder(monkeypatch):
    monkeypatch.setattr(_jit, "CACHE_DIR", None)
    assert _jit.build_in_child("pass") is None


def test_a_child_past_its_time_is_ended():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child = _jit.Child(proc, timeout=0.2)
    assert child.join() is False
    assert proc.returncode is not None


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_processes_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="processes"):
        kernels.warm_up(False, processes=bad)

