"""The one-row kernel standing in for the lockstep row kernel before the latter is built.

A process whose lockstep row kernel is neither compiled nor in the cache runs its
first lockstep calls, up to :data:`mcscan.stats.kernels.STAND_IN_POINTS` points, on
the one-row kernel (about 2 s to compile instead of 3.5 s).  The two give the same
bits (tests/stats/test_fast_kernels.py compares them directly), so these tests
check that the stand-in run gives the bits and statistics of the lockstep run, that
the budget and ``vector_start`` send calls to the lockstep kernel, and that
:func:`mcscan.stats._jit.built` tells a built kernel from one still to compile.

The toys have the same arrangement (:data:`mcscan.stats.toys.STAND_IN_TOY_POINTS`): the
one-toy kernel stands in for the lane kernel, with the lane kernel's bits.
"""
from __future__ import annotations

import numpy as np
import pytest

from mcscan.scans.grid import SEGMENT, row_segments
from mcscan.stats import _jit, kernels, toys


@pytest.fixture(scope="module", autouse=True)
def _warm():
    kernels.warm_up(True)
    kernels.warm_up(False)


def _spy(monkeypatch, module, names):
    """The kernels that ``module.run_blocks`` runs from now on, in order, by ``names``."""
    seen = []
    real = module.run_blocks

    def spy(f, *args, **kwargs):
        seen.append(names.get(f, "other"))
        return real(f, *args, **kwargs)

    monkeypatch.setattr(module, "run_blocks", spy)
    return seen


@pytest.fixture
def ran(monkeypatch):
    """The kernels run_blocks ran, in order ("rows": lockstep, "row": one-row)."""
    return _spy(monkeypatch, kernels, {kernels._rows: "rows", kernels._row: "row"})


def _not_built(monkeypatch, budget, module=kernels, constant="STAND_IN_POINTS"):
    """This process as if no kernel were built, with ``budget`` points for the stand-in
    of ``module`` (its budget ``constant``)."""
    monkeypatch.setattr(_jit, "built", lambda dispatcher: False)
    monkeypatch.setattr(module, constant, budget)
    monkeypatch.setattr(module._STAND_IN, "points", 0)


def _scan(coefs, *, lanes=16, vector_start=False, parallel=True):
    """A 37 x 45 (q_ee, q_mumu) grid on Xe then Ge (accumulated), as rows of 15 points."""
    x = np.linspace(-3e-8, 3e-8, 37)
    y = np.linspace(-2e-8, 2e-8, 45)
    row, y0, cnt, o0 = row_segments(x.size, y.size, segment=15)
    n = x.size * y.size
    out = np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=bool)
    base = np.array([0.0, 0.0, 1e-9, 0.0, -2e-9, 0.0])
    stats = [kernels.chi2_rows(coefs[d], base, 0, 1, x[row], y, y0, cnt, o0, out=out,
                               accumulate=k > 0, lanes=lanes, parallel=parallel,
                               vector_start=vector_start)
             for k, d in enumerate(("Xe", "Ge"))]
    return out, stats


@pytest.mark.parametrize("parallel", [False, True])
def test_stand_in_gives_the_bits_of_the_lockstep_kernel(coefs, monkeypatch, ran, parallel):
    ref, ref_stats = _scan(coefs, parallel=parallel)
    assert ran == ["rows", "rows"]
    _not_built(monkeypatch, budget=10**9)
    got, got_stats = _scan(coefs, parallel=parallel)
    assert ran[2:] == ["row", "row"]
    for u, v in zip(ref, got):
        assert np.array_equal(u, v)
    assert got_stats == ref_stats
    assert kernels._STAND_IN.points == 2 * 37 * 45


def test_stand_in_budget_then_lockstep(coefs, monkeypatch, ran):
    # 1665 points a call: the first call fits a budget of 2000, the second does not
    _not_built(monkeypatch, budget=2000)
    _scan(coefs)
    assert ran == ["row", "rows"]
    assert kernels._STAND_IN.points == 37 * 45


def test_no_stand_in_with_vector_start_or_when_built(coefs, monkeypatch, ran):
    _not_built(monkeypatch, budget=10**9)
    _scan(coefs, vector_start=True)      # the one-row kernel has no vector start
    monkeypatch.setattr(_jit, "built", lambda dispatcher: True)
    _scan(coefs)
    assert ran == ["rows"] * 4
    assert kernels._STAND_IN.points == 0


def test_plan_lockstep_sends_a_large_job_to_the_lockstep_kernel(coefs, monkeypatch, ran):
    # 1665 points a call, two calls a job
    _not_built(monkeypatch, budget=4000)
    kernels.plan_lockstep(3330)              # fits: nothing changes
    _scan(coefs)
    assert ran == ["row", "row"] and kernels._STAND_IN.points == 3330
    _not_built(monkeypatch, budget=3000)
    kernels.plan_lockstep(3330)              # larger than the budget: the lockstep kernel
    _scan(coefs)
    assert ran[2:] == ["rows", "rows"]


def _families(fcoefs, x, y):
    from mcscan.scans.families import family_grid_scan

    return family_grid_scan(fcoefs, ("q_ee", "r2_ee"), (x, 1e-23 * y))


@pytest.mark.parametrize("budget, expect", [(10**6, "row"), (3000, "rows")])
@pytest.mark.parametrize("how", ["grid_scan", "engine", "engine_1d", "families"])
def test_scans_plan_their_points(table_dir, coefs, monkeypatch, ran, budget, expect, how):
    # 37 x 45 points on two detectors: jobs of 3330 points (1D: 327680)
    from mcscan.config.load import load_config
    from mcscan.scans.backends import TableRef, resolve_coefficients
    from mcscan.scans.engine import scan
    from mcscan.scans.grid import grid_scan

    x, y = np.linspace(-3e-8, 3e-8, 37), np.linspace(-2e-8, 2e-8, 45)
    c = [coefs["Xe"], coefs["Ge"]]
    if how == "families":
        refs = [TableRef.from_config(load_config(), d, table_dir, family=True) for d in ("Xe", "Ge")]
        fc = resolve_coefficients(refs)
    _not_built(monkeypatch, budget=budget)
    if how == "grid_scan":
        grid_scan(c, ("q_ee", "q_mumu"), (x, y))
    elif how == "engine":
        scan(c, ("q_ee", "q_mumu"), (x, y))
    elif how == "engine_1d":
        # a 1D row is cut in segments of SEGMENT points: 40 segments run in lockstep
        n = 40 * SEGMENT
        scan(c, ("q_ee",), (np.linspace(-3e-8, 3e-8, n),), chunk_points=n)
    else:
        _families(fc, x, y)
    assert ran and set(ran) == {expect}


def test_warm_up_compiles_the_lockstep_kernel(monkeypatch, ran):
    _not_built(monkeypatch, budget=10**9)
    kernels.warm_up_rows(False)
    assert ran == ["row", "rows"]


def _tiny(x, out, b0, b1):
    for i in range(b0, b1):
        out[i] = 2.0 * x[i]


def test_built_reads_the_process_and_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(_jit, "CACHE_DIR", tmp_path)
    k = _jit.kernel(_tiny)
    assert not _jit.built(k)
    x, out = np.arange(3.0), np.empty(3)
    k(x, out, 0, 3)
    assert np.array_equal(out, [0.0, 2.0, 4.0]) and _jit.built(k)
    # a new process: a dispatcher of the same function, nothing compiled, the cache filled
    again = _jit.kernel(_tiny)
    assert not again.signatures and _jit.built(again)
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    monkeypatch.setattr(_jit, "CACHE_DIR", elsewhere)
    assert not _jit.built(_jit.kernel(_tiny))


def test_built_without_a_cache_or_a_readable_index(monkeypatch):
    monkeypatch.setattr(_jit, "CACHE_DIR", None)
    assert not _jit.built(_jit.kernel(_tiny))

    class Unreadable:     # numba's cache as a later numba might lay it out
        signatures = []
        targetctx = None

    monkeypatch.setattr(_jit, "CACHE_DIR", "somewhere")
    assert _jit.built(Unreadable())


# ------------------------------------------------------------ toys: the one-toy kernel

@pytest.fixture
def toy_ran(monkeypatch):
    """The toy kernels run_blocks ran, in order ("lanes", "one-toy")."""
    toys.warm_up(True)
    return _spy(monkeypatch, toys, {toys._lanes: "lanes", toys._rows: "one-toy"})


def _toys_not_built(monkeypatch, budget):
    _not_built(monkeypatch, budget, toys, "STAND_IN_TOY_POINTS")


def _toy_problem(c, ntoys=70):
    """70 toys of Ge on a 41-point q_ee grid, one of them far from the prediction."""
    N = toys.grid_counts(c, np.zeros(6), 0, np.linspace(-6e-8, 6e-8, 41))
    D, a0, b0 = toys.generate_toys(c.S + c.B, 5, 0, ntoys)
    D[3] = 3.0 * (c.S + c.B)
    return N, c.S, c.B, D, a0, b0


@pytest.mark.parametrize("parallel", [True, False])
def test_one_toy_kernel_stands_in_with_the_lane_kernels_bits(coefs, monkeypatch, toy_ran, parallel):
    args = _toy_problem(coefs["Ge"])
    lane = toys.toy_chi2(*args, parallel=parallel, lanes=toys.TOY_LANES)     # asked for: no stand-in
    _toys_not_built(monkeypatch, budget=10**9)
    stand = toys.toy_chi2(*args, parallel=parallel)
    assert toy_ran == ["lanes", "one-toy"]
    assert toys._STAND_IN.points == 70 * 41
    for x, y in zip(lane, stand):
        assert np.array_equal(x, y)                                         # exact


def test_toy_stand_in_budget_then_lane_kernel(coefs, monkeypatch, toy_ran):
    args = _toy_problem(coefs["Ge"])
    _toys_not_built(monkeypatch, budget=4000)
    first = toys.toy_chi2(*args)               # 2870 toy points: within the budget
    second = toys.toy_chi2(*args)              # 5740 in all: beyond it, the lane kernel
    assert toy_ran == ["one-toy", "lanes"] and toys._STAND_IN.points == 70 * 41
    monkeypatch.setattr(_jit, "built", lambda dispatcher: True)
    toys.toy_chi2(*args)                       # built: never the stand-in
    assert toy_ran[-1] == "lanes"
    for x, y in zip(first, second):
        assert np.array_equal(x, y)


def test_toy_warm_up_compiles_both_toy_kernels(monkeypatch, toy_ran):
    _toys_not_built(monkeypatch, budget=10**9)
    toys.warm_up(False)
    assert toy_ran == ["one-toy", "lanes"]
