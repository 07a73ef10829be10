"""N-D scans: chunks are grid_scan calls, projections are exact reductions, files stream.

Bit-identical comparisons use np.array_equal (no tolerance): an N-D scan
evaluates every 2D plane of its last two charges with grid_scan, the outer
charges fixed, so each plane must equal that grid_scan bit for bit, for any
chunk size.  Projections are minima and slices of those numbers, so they
are compared exactly with NumPy reductions of the full grid.
"""
from __future__ import annotations

import dataclasses

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from mcscan.cli import commands as cli

from mcscan.stats import kernels
from mcscan.errors import InputError
from mcscan.scans.engine import (
    IN_MEMORY_CHUNK_POINTS,
    IN_MEMORY_CHUNK_ROWS,
    MAX_CHUNK_POINTS,
    MIN_CHUNK_ROWS,
    Grid,
    compute_chunk,
    default_chunk_points,
    make_grid,
    parse_projections,
    scan,
)
from mcscan.io.h5 import flat_boxes
from mcscan.io.results import read_config
from mcscan.results import open_results
from mcscan.scans.grid import SEGMENT, grid_scan

A = np.linspace(-2e-8, 2e-8, 13)          # q_ee
B = np.linspace(-1e-8, 1.2e-8, 11)        # q_mumu (0 is not a grid point)
C = np.linspace(-6e-8, 6e-8, 5)           # q_emu


@pytest.fixture(scope="module", autouse=True)
def _warm():
    kernels.warm_up(True)


@pytest.fixture(scope="module")
def tables(table_dir):
    return table_dir


@pytest.fixture(scope="module")
def coefs(coefs):
    """Xe and Ge coefficients from the shared set."""
    return [coefs["Xe"], coefs["Ge"]]


def _groups(path):
    """{group: {"attrs": {...}, "data": {dataset: array}}} of a results file."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Group):
                out.setdefault(name, {"attrs": {}, "data": {}})["attrs"] = dict(obj.attrs)
            else:
                group, _, leaf = name.rpartition("/")
                out.setdefault(group, {"attrs": {}, "data": {}})["data"][leaf] = obj[()]
        f.visititems(visit)
    return out


def _box_shape(index, shape):
    return tuple(len(range(*ix.indices(n))) for ix, n in zip(index, shape) if isinstance(ix, slice))


@pytest.mark.parametrize("chunk", [11, 33, 77, 10_000])
def test_2d_equals_grid_scan_for_any_chunking(coefs, tmp_path, chunk):
    ref = grid_scan(coefs, ("q_ee", "q_mumu"), (A, B))
    res = scan(coefs, ("q_ee", "q_mumu"), (A, B), tmp_path / "s.h5", chunk_points=chunk)
    g = _groups(tmp_path / "s.h5")["scan"]["data"]
    assert np.array_equal(g["chi2"], ref.chi2)
    assert np.array_equal(g["converged"], ref.converged.astype(np.int8))
    assert res.chunks == -(-A.size * B.size // default_chunk_points((A.size, B.size), chunk))
    assert res.chi2_min == float(ref.chi2.min())
    for det, (a, b) in ref.pulls.items():            # per-detector pulls, same grid_scan
        assert np.array_equal(g_pull(tmp_path / "s.h5", det, "signal"), a)
        assert np.array_equal(g_pull(tmp_path / "s.h5", det, "background"), b)


class _PlaneScan:
    def __init__(self, chi2, converged, pulls):
        self.chi2, self.converged, self.pulls = chi2, converged, pulls


def g_pull(path, det, which):
    with h5py.File(path, "r") as f:
        return f[f"scan/pulls/{det}/{which}"][()]


@pytest.mark.parametrize("params, axes", [(("q_ee",), (A,)), (("q_ee", "q_mumu"), (A, B)),
                                          (("q_emu", "q_ee", "q_mumu"), (C, A, B))])
def test_memory_and_file_scans_are_the_same(coefs, tmp_path, params, axes):
    """One engine, one assembly: the in-memory result and the file hold the same bits."""
    mem = scan(coefs, params, axes, chunk_points=22, pulls=True)
    disk = scan(coefs, params, axes, tmp_path / "s.h5", chunk_points=22, pulls=True)
    back = open_results(tmp_path / "s.h5")
    for res in (disk, back):
        assert np.array_equal(np.asarray(res.chi2), mem.chi2)
        assert np.array_equal(np.asarray(res.converged), mem.converged)
        for det in mem.pulls:
            for i in (0, 1):
                assert np.array_equal(np.asarray(res.pulls[det][i]), mem.pulls[det][i])
        assert res.chi2_min == mem.chi2_min and res.argmin == mem.argmin
        for key, pr in mem.projections.items():
            assert np.array_equal(res.projections[key].chi2, pr.chi2)
    if len(params) <= 2:                # the same numbers as one grid_scan of the whole grid
        ref = grid_scan(coefs, params, axes)
        assert np.array_equal(mem.chi2, ref.chi2)
        assert all(np.array_equal(mem.pulls[d][0], ref.pulls[d][0]) for d in ref.pulls)


def test_pulls_default_by_dimension(coefs):
    assert set(scan(coefs, ("q_ee", "q_mumu"), (A, B)).pulls) == {"Xe", "Ge"}
    assert scan(coefs, ("q_emu", "q_ee", "q_mumu"), (C, A, B)).pulls == {}


def test_json_marks_grid_estimates(coefs):
    d = scan(coefs, ("q_ee", "q_mumu"), (A, B), projections=["q_ee", "q_ee,q_mumu"]).to_json()
    one = d["projections"]["profiled/q_ee"]
    assert one["grid_estimate"] is True
    assert one["grid_step"] == pytest.approx(A[1] - A[0], rel=1e-12)
    assert "grid_estimate" not in d["projections"]["profiled/q_ee-q_mumu"]
    json.dumps(d, allow_nan=False)


def test_1d_chunks_are_whole_segments(coefs, tmp_path):
    x = np.linspace(-3e-8, 3e-8, 2 * SEGMENT + 100)
    ref = grid_scan(coefs, ("q_mumu",), (x,), fixed={"q_ee": 1e-9})
    res = scan(coefs, ("q_mumu",), (x,), tmp_path / "s.h5", fixed={"q_ee": 1e-9},
                  chunk_points=5000)
    assert res.chunks == 3                               # 5000 -> 4096 per chunk
    g = _groups(tmp_path / "s.h5")
    assert np.array_equal(g["scan"]["data"]["chi2"], ref.chi2)
    assert np.array_equal(g["scan/profiled/q_mumu"]["data"]["chi2"], ref.chi2)
    assert np.array_equal(g["scan/fixed/q_mumu"]["data"]["chi2"], ref.chi2)


def test_3d_planes_and_projections(coefs, tmp_path):
    params = ("q_emu", "q_ee", "q_mumu")
    at = {"q_emu": 2.9e-8, "q_mumu": 0.0}
    res = scan(coefs, params, (C, A, B), tmp_path / "s.h5", fixed={"q_mutau": 1e-9}, at=at,
                  projections=["q_ee", "q_mumu", "q_mumu,q_emu", ("q_emu", "q_ee")], chunk_points=55)
    g = _groups(tmp_path / "s.h5")
    full = g["scan"]["data"]["chi2"]
    assert full.shape == (C.size, A.size, B.size)
    for i, c in enumerate(C):
        plane = grid_scan(coefs, ("q_ee", "q_mumu"), (A, B), fixed={"q_emu": c, "q_mutau": 1e-9})
        assert np.array_equal(full[i], plane.chi2)
        assert np.array_equal(g["scan"]["data"]["converged"][i], plane.converged.astype(np.int8))
    # profiled: minimum over the other charges, exactly
    prof = g["scan/profiled/q_ee"]["data"]
    assert np.array_equal(prof["chi2"], full.min(axis=(0, 2)))
    assert np.array_equal(prof["delta_chi2"], full.min(axis=(0, 2)) - full.min())
    assert np.array_equal(full.ravel()[prof["argmin"]], prof["chi2"])
    i0, _, i2 = np.unravel_index(prof["argmin"], full.shape)
    best = g["scan/profiled/q_ee/best"]["data"]
    assert np.array_equal(best["q_emu"], C[i0]) and np.array_equal(best["q_mumu"], B[i2])
    assert np.array_equal(g["scan/profiled/q_mumu"]["data"]["chi2"], full.min(axis=(0, 1)))
    assert np.array_equal(g["scan/profiled/q_mumu-q_emu"]["data"]["chi2"], full.min(axis=1).T)
    assert np.array_equal(g["scan/profiled/q_emu-q_ee"]["data"]["chi2"], full.min(axis=2))
    # fixed: the slice through the grid point nearest ``at``
    ie, im = int(np.argmin(abs(C - 2.9e-8))), int(np.argmin(abs(B)))
    fx = g["scan/fixed/q_ee"]
    assert np.array_equal(fx["data"]["chi2"], full[ie, :, im])
    assert np.array_equal(fx["data"]["delta_chi2"], full[ie, :, im] - full[ie, :, im].min())
    assert list(fx["attrs"]["at_names"]) == ["q_emu", "q_mumu"]
    assert list(fx["attrs"]["at_values"]) == [float(C[ie]), float(B[im])]
    assert np.array_equal(g["scan/fixed/q_mumu-q_emu"]["data"]["chi2"], full[:, 6, :].T)
    assert np.array_equal(g["scan/fixed/q_emu-q_ee"]["data"]["chi2"], full[:, :, im])
    # attributes and the in-memory summary agree with the file
    attrs = g["scan"]["attrs"]
    assert list(attrs["params"]) == list(params)
    assert list(attrs["shape"]) == [C.size, A.size, B.size]
    assert float(attrs["chi2_min"]) == float(full.min()) == res.chi2_min
    k = np.unravel_index(np.argmin(full), full.shape)
    assert res.argmin == {p: float(ax[i]) for p, ax, i in zip(params, (C, A, B), k)}
    assert np.array_equal(res.projections[("profiled", "q_ee")].chi2, prof["chi2"])
    assert not (tmp_path / "s.h5.partial").exists()


def test_fixed_row_equals_1d_scan(coefs, tmp_path):
    # the slice q_ee = 0 of a (q_ee, q_mumu) scan is a row: the same bits as a 1D scan
    a = np.linspace(-2e-8, 2e-8, 9)
    scan(coefs, ("q_ee", "q_mumu"), (a, B), tmp_path / "s.h5")
    ref = grid_scan(coefs, ("q_mumu",), (B,))
    assert np.array_equal(_groups(tmp_path / "s.h5")["scan/fixed/q_mumu"]["data"]["chi2"], ref.chi2)


def test_projections_do_not_depend_on_chunking(coefs, tmp_path):
    args = (coefs, ("q_emu", "q_ee", "q_mumu"), (C, A, B))
    kw = {"projections": ["q_ee", "q_ee,q_emu"]}
    scan(*args, tmp_path / "a.h5", chunk_points=11, **kw)
    scan(*args, tmp_path / "b.h5", chunk_points=10_000, **kw)
    ga, gb = _groups(tmp_path / "a.h5"), _groups(tmp_path / "b.h5")
    for name in ga:
        if name != "scan":
            for k, v in ga[name]["data"].items():
                assert np.array_equal(v, gb[name]["data"][k]), (name, k)


def test_in_memory_scans_take_larger_default_chunks(coefs, tmp_path):
    # a scan kept in memory takes chunks of at least IN_MEMORY_CHUNK_POINTS points by
    # default (whole planes), a streamed one 1/32 of the grid; the same numbers either way
    five = (21,) * 5
    group = MIN_CHUNK_ROWS * 21
    assert default_chunk_points(five, in_memory=True) == IN_MEMORY_CHUNK_POINTS // group * group // 441 * 441
    assert default_chunk_points(five) == 21**5 // 32 // 441 * 441
    # at least IN_MEMORY_CHUNK_ROWS rows (16 blocks of 64 rows for the threads), without
    # an upper bound: a chunk in memory is a view of the result grids
    assert IN_MEMORY_CHUNK_ROWS == 1024 and MIN_CHUNK_ROWS == 256
    assert default_chunk_points((2001, 2001), in_memory=True) == IN_MEMORY_CHUNK_ROWS * 2001
    assert default_chunk_points((801, 801), in_memory=True) == 801 * 801          # one chunk
    assert default_chunk_points((10001, 10001), in_memory=True) == IN_MEMORY_CHUNK_ROWS * 10001
    # streamed: 1/32 of the grid, at least MIN_CHUNK_ROWS rows, at most MAX_CHUNK_POINTS
    assert MAX_CHUNK_POINTS == 1 << 20
    assert default_chunk_points((10001, 10001)) == MAX_CHUNK_POINTS // 10001 * 10001    # 104 rows
    assert default_chunk_points((2001, 2001)) == MIN_CHUNK_ROWS * 2001
    assert default_chunk_points((1_000_000,), in_memory=True) == IN_MEMORY_CHUNK_POINTS // SEGMENT * SEGMENT
    assert default_chunk_points((5, 7), 20, in_memory=True) == 14         # asked: as asked
    xs = np.linspace(-2e-8, 2e-8, 81)
    ys = np.linspace(-1e-8, 1e-8, 101)
    args = (coefs, ("q_emu", "q_ee", "q_mumu"), (xs, A, ys))
    mem = scan(*args)
    assert mem.chunks == -(-mem.chi2.size // mem.chunk_points)
    assert mem.chunk_points == default_chunk_points(mem.chi2.shape, in_memory=True)
    filed = scan(*args, tmp_path / "s.h5")
    assert filed.chunk_points == default_chunk_points(mem.chi2.shape) and filed.chunks > mem.chunks
    assert np.array_equal(np.asarray(filed.chi2), mem.chi2)
    assert mem.chi2_min == filed.chi2_min and mem.argmin == filed.argmin


def test_chunk_function_is_pure(coefs):
    from mcscan.scans.engine import ChunkTask

    task = ChunkTask(tuple(coefs), make_grid(("q_emu", "q_ee", "q_mumu"), (C, A, B)), 33)
    first = [compute_chunk(k, task) for k in range(task.n_chunks)]
    again = [compute_chunk(k, task) for k in reversed(range(task.n_chunks))][::-1]
    for x, y in zip(first, again):
        assert np.array_equal(x["chi2"], y["chi2"]) and np.array_equal(x["converged"], y["converged"])


def test_chunk_into_given_arrays(coefs):
    # an in-memory scan has compute_chunk write into views of its result grids: the same
    # bits as fresh arrays, every element written, the arrays returned; a wrong set refused
    from mcscan.scans.engine import ChunkTask, chunk_bounds

    task = ChunkTask(tuple(coefs), make_grid(("q_emu", "q_ee", "q_mumu"), (C, A, B)), 33, pulls=True)
    names = list(compute_chunk(0, task))
    grids = {n: np.full(task.grid.size, 7, dtype=np.int8 if n == "converged" else float)
             for n in names}
    for k in range(task.n_chunks):
        lo, hi = chunk_bounds(k, task)
        views = {n: a[lo:hi] for n, a in grids.items()}
        got = compute_chunk(k, task, out=views)
        assert all(got[n] is views[n] for n in names)
        fresh = compute_chunk(k, task)
        for n in names:
            assert np.array_equal(views[n], fresh[n]), (k, n)                  # exact
    lo, hi = chunk_bounds(1, task)
    bad = [{n: a[lo:hi + 1] for n, a in grids.items()},                        # one point too many
           {n: a[lo:hi] for n, a in grids.items() if n != "converged"},         # one array missing
           {n: a[lo:hi].astype(np.float32) for n, a in grids.items()},          # wrong type
           {n: np.repeat(a, 2)[2 * lo:2 * hi:2] for n, a in grids.items()}]     # not contiguous
    for out in bad:
        with pytest.raises(ValueError, match="out must hold chi2, converged") as info:
            compute_chunk(1, task, out=out)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("params, axes, pulls", [
    (("q_ee",), (A,), None),
    (("q_ee", "q_mumu"), (A, B), None),
    (("q_emu", "q_ee", "q_mumu"), (C, A, B), True),
])
def test_in_memory_scan_in_place_equals_copied_chunks(coefs, params, axes, pulls):
    # the local backend's chunks are computed into the result grids; any other backend's
    # are copied in (here one that runs them in this process too): the same bits
    from mcscan.scans.backends import Backend

    class Copying(Backend):
        name = "copying"

        def map(self, fn, items, *, args=(), **kw):
            for it in items:
                yield it, fn(it, *args)

    kw = {"chunk_points": 7 * axes[-1].size if len(axes) > 1 else 5, "pulls": pulls,
          "projections": [",".join(params[:2]), *params]}
    a = scan(coefs, params, axes, **kw)
    b = scan(coefs, params, axes, backend=Copying(), **kw)
    assert a.backend["backend"] == "local" and b.backend["backend"] == "copying"
    assert np.array_equal(a.chi2, b.chi2) and np.array_equal(a.converged, b.converged)  # exact
    assert a.chi2_min == b.chi2_min and a.argmin == b.argmin
    dets = sorted(c.detector for c in coefs) if pulls or len(params) < 3 else []
    assert sorted(a.pulls) == sorted(b.pulls) == dets
    for d in a.pulls:
        assert all(np.array_equal(x, y) for x, y in zip(a.pulls[d], b.pulls[d]))
    assert a.unconverged == b.unconverged
    assert a.projections.keys() == b.projections.keys()
    for key, pa in a.projections.items():
        pb = b.projections[key]
        assert np.array_equal(pa.chi2, pb.chi2), key                            # exact
        # the local backend folds each chunk on a second thread (_FoldBehind), the other
        # after the last chunk: the same grid point for every projected minimum
        assert np.array_equal(pa.argmin, pb.argmin), key
        assert pa.best.keys() == pb.best.keys(), key
        assert all(np.array_equal(pa.best[p], pb.best[p]) for p in pa.best), key


class _Recorder:
    """Stands in for _Fold: records the order of the chunks it is given."""

    def __init__(self, n, fail_at=None):
        self.task = dataclasses.make_dataclass("T", ["n_chunks"])(n)
        self.seen, self.fail_at = [], fail_at

    def add(self, k, v, ok):
        if k == self.fail_at:
            raise ValueError(f"fold of chunk {k} failed")
        self.seen.append(k)


def test_fold_behind_folds_chunks_in_index_order():
    from mcscan.scans.engine import _FoldBehind

    rec = _Recorder(5)
    c = {"chi2": np.zeros(1), "converged": np.ones(1, dtype=np.int8)}
    with _FoldBehind(rec) as behind:
        for k in (1, 0, 2, 4, 3):             # as a backend might hand them over
            behind.add(k, c)
    assert rec.seen == [0, 1, 2, 3, 4]
    rec = _Recorder(3)
    with pytest.raises(RuntimeError, match=r"chunks \[2\] of 3 were not folded in order"):
        with _FoldBehind(rec) as behind:
            behind.add(0, c)
            behind.add(2, c)                  # chunk 1 never came


def test_fold_behind_raises_a_failed_fold_and_stops():
    import threading

    from mcscan.scans.engine import _FoldBehind

    c = {"chi2": np.zeros(1), "converged": np.ones(1, dtype=np.int8)}
    rec = _Recorder(4, fail_at=1)
    with pytest.raises(ValueError, match="fold of chunk 1 failed"):
        with _FoldBehind(rec) as behind:
            for k in range(4):
                behind.add(k, c)
    assert rec.seen[0] == 0 and 1 not in rec.seen
    # leaving on an error of the caller's waits for the fold thread: none is left running
    rec = _Recorder(4)
    with pytest.raises(KeyError):
        with _FoldBehind(rec) as behind:
            behind.add(0, c)
            raise KeyError("the next chunk failed")
    assert not [t for t in threading.enumerate() if t.name.startswith("mcscan-fold")]


def test_in_memory_scan_budget_counts_one_copy_in_place():
    # chunks computed in this process go into the result grids (one copy of the grid);
    # other backends hand back chunks that are copied in (two copies for a while)
    from mcscan import budget
    from mcscan.scans.engine import _check_budgets

    g = make_grid(("q_ee", "q_mumu", "q_emu"), (np.linspace(-1, 1, 500) * 1e-8,) * 3)
    one = budget.grid_memory_bytes(g.size, 9.0, 1) / budget.GIB
    cp = 500
    chunk = budget.grid_memory_bytes(cp, 9.0, 3) / budget.GIB
    limit = 1.5 * one + chunk
    _check_budgets(g, 1, False, cp, None, limit, None, in_place=True)
    with pytest.raises(InputError, match="max_memory_gib"):
        _check_budgets(g, 1, False, cp, None, limit, None, in_place=False)


def test_streamed_scan_budget_counts_the_chunk_being_written(tmp_path):
    # a streamed scan holds the chunk being computed and the one being stored (WriteBehind)
    from mcscan import budget
    from mcscan.scans.engine import _check_budgets

    g = make_grid(("q_ee", "q_mumu"), (np.linspace(-1, 1, 400) * 1e-8,) * 2)
    cp = 4000
    computed = budget.grid_memory_bytes(cp, 9.0, 3) / budget.GIB
    stored = budget.grid_memory_bytes(cp, 9.0, 1) / budget.GIB
    path = tmp_path / "s.h5"
    _check_budgets(g, 1, False, cp, path, computed + stored, None)
    with pytest.raises(InputError, match="max_memory_gib"):
        _check_budgets(g, 1, False, cp, path, computed + 0.5 * stored, None)


def test_boxes_cover_ranges_exactly():
    rng = np.random.default_rng(1)
    for _ in range(200):
        shape = tuple(int(s) for s in rng.integers(1, 6, size=rng.integers(1, 6)))
        n = int(np.prod(shape))
        lo, hi = sorted(int(v) for v in rng.integers(0, n + 1, size=2))
        mark = np.zeros(shape, dtype=int)
        flat = np.arange(n).reshape(shape)
        for index, f0, f1 in flat_boxes(lo, hi, shape):
            mark[index] += 1
            assert np.array_equal(flat[index].ravel(), np.arange(f0, f1))
            assert flat[index].shape == _box_shape(index, shape)
        expect = np.zeros(n, dtype=int)
        expect[lo:hi] = 1
        assert np.array_equal(mark.ravel(), expect)


def test_default_chunks_are_whole_rows_and_planes():
    assert default_chunk_points((21,) * 5) % (21 * 21) == 0
    assert default_chunk_points((1000,)) == SEGMENT
    assert default_chunk_points((5, 7), 20) == 14
    assert default_chunk_points((5, 7), 3) == 7
    with pytest.raises(InputError):
        default_chunk_points((5, 7), 0)


def test_default_chunks_give_the_row_kernel_whole_blocks():
    """A default chunk of a 2D grid holds at least four blocks of the widest row block,
    within the MAX_CHUNK_POINTS bound: 1/32 of a 2001 x 2001 grid was 62 rows, one block of
    40 rows and one of 22 on two threads (a 2D scan at two thirds of its speed); a bound of
    2^20 points gives a 10001 x 10001 grid chunks of 104 rows (memory bound)."""
    assert MIN_CHUNK_ROWS >= 4 * kernels.LANES
    for n in (201, 2001, 4001, 10001):
        cp = default_chunk_points((n, n))
        assert cp % n == 0 and cp // n >= min(MIN_CHUNK_ROWS, n, MAX_CHUNK_POINTS // n)
    assert default_chunk_points((2001, 2001)) // 2001 >= MIN_CHUNK_ROWS
    assert default_chunk_points((10001, 10001)) == 104 * 10001                # the bound
    assert default_chunk_points((21,) * 5) == 21**5 // 32 // 441 * 441       # 1/32, whole planes
    assert default_chunk_points((100_000,)) == (1 << 14) // SEGMENT * SEGMENT   # 1D: segments


def test_resume_after_interrupt_is_bit_identical(coefs, tmp_path, chunk_interrupt, same_results):
    args = (coefs, ("q_emu", "q_ee", "q_mumu"), (C, A, B))
    scan(*args, tmp_path / "ref.h5", chunk_points=22)
    chunk_interrupt.arm(4)
    with pytest.raises(KeyboardInterrupt):
        scan(*args, tmp_path / "s.h5", chunk_points=22)
    chunk_interrupt.disarm()
    assert not (tmp_path / "s.h5").exists()
    assert len(list((tmp_path / "s.h5.partial").glob("chunk_*.npz"))) == 4
    with pytest.raises(InputError, match="resume"):
        scan(*args, tmp_path / "s.h5", chunk_points=22)
    with pytest.raises(InputError, match="differs"):
        scan(*args, tmp_path / "s.h5", chunk_points=44, resume=True)
    # other counts to compare with (observed data instead of the Asimov S + B)
    observed = [dataclasses.replace(c, D=np.round(c.D)) for c in coefs]
    with pytest.raises(InputError, match="differs"):
        scan(observed, *args[1:], tmp_path / "s.h5", chunk_points=22, resume=True)
    res = scan(*args, tmp_path / "s.h5", chunk_points=22, resume=True)
    assert res.resumed_chunks == 4
    same_results(tmp_path / "ref.h5", tmp_path / "s.h5")


def test_bad_grids_and_projections(coefs, tmp_path):
    with pytest.raises(InputError, match="differ"):
        make_grid(("q_ee", "q_ee"), (A, A))
    with pytest.raises(InputError, match="both scanned and fixed"):
        make_grid(("q_ee",), (A,), fixed={"q_ee": 1e-9})
    with pytest.raises(InputError, match="increase"):
        make_grid(("q_ee",), (A[::-1],))
    with pytest.raises(InputError, match="unknown parameter"):
        make_grid(("q_xx",), (A,))
    with pytest.raises(InputError, match="1 to 6"):
        make_grid((), ())
    with pytest.raises(InputError, match="not a scanned charge"):
        parse_projections(["q_emu"], ("q_ee", "q_mumu"))
    with pytest.raises(InputError, match="one or two"):
        parse_projections(["q_ee,q_mumu,q_emu"], ("q_ee", "q_mumu", "q_emu"))
    with pytest.raises(InputError, match="at q_emu: not a scanned charge"):
        scan(coefs, ("q_ee",), (A,), tmp_path / "s.h5", at={"q_emu": 0.0})
    assert not list(tmp_path.iterdir())
    assert isinstance(make_grid(("q_ee",), (A,)), Grid)


# ------------------------------------------------------------------ command line

def _main(argv):
    """cli.main with every argument as a string; argparse errors give their exit code."""
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


ND = ["ndscan", "--detector", "Xe", "--param", "q_ee", "--param", "q_mumu", "--param", "q_emu",
      "--range", "-2e-8", "2e-8", "--range", "-1e-8", "1e-8", "--range", "-6e-8", "6e-8",
      "--quiet"]


def test_cli_ndscan_json(tables, tmp_path, capsys, monkeypatch):
    out = tmp_path / "nd.h5"
    code = _main(ND + ["--points", "9", "--tables", tables, "--out", out, "--json",
                       "--project", "q_ee", "--project", "q_ee,q_mumu"])
    o, e = capsys.readouterr()
    assert code == 0, e
    d = json.loads(o)
    assert d["shape"] == [9, 9, 9] and d["points"] == 729 and d["backend"]["backend"] == "local"
    assert set(d["projections"]) == {"profiled/q_ee", "fixed/q_ee", "profiled/q_ee-q_mumu",
                                     "fixed/q_ee-q_mumu"}
    lo, hi = d["projections"]["fixed/q_ee"]["regions"][0]
    assert lo < 0 < hi
    assert _groups(out)["scan"]["data"]["chi2"].shape == (9, 9, 9)
    assert read_config(out)["detectors"]["Xe"]["mass_kg"] == 20.0


def test_cli_ndscan_text(tables, tmp_path, capsys, monkeypatch):
    code = _main(ND + ["--points", "9", "--tables", tables, "--out", tmp_path / "nd.h5"])
    o, e = capsys.readouterr()
    assert code == 0, e
    assert "scanned q_ee x q_mumu x q_emu on 9 x 9 x 9 = 729 points for Xe" in o
    assert "profiled over the others" in o and "others at q_mumu = 0, q_emu = 0" in o


def _plane_rows(coefs, params, axes, outer, fixed, vector_start):
    """One plane of the last two charges through chi2_rows: (chi2, converged, pulls)."""
    from mcscan.params import PARAMS
    from mcscan.scans.grid import row_segments

    base = np.zeros(6)
    for p, v in fixed.items():
        base[PARAMS.index(p)] = v
    for p, a, i in zip(params[:-2], axes[:-2], outer):
        base[PARAMS.index(p)] = a[i]
    x, y = axes[-2:]
    row, y0, cnt, o0 = row_segments(x.size, y.size)
    n = x.size * y.size
    chi2, ok, pulls = np.empty(n), np.empty(n, dtype=bool), {}
    for k, c in enumerate(coefs):
        a, b = np.empty(n), np.empty(n)
        kernels.chi2_rows(c, base, PARAMS.index(params[-2]), PARAMS.index(params[-1]), x[row], y,
                          y0, cnt, o0, out=(chi2, a, b, ok), accumulate=k > 0,
                          vector_start=vector_start)
        pulls[c.detector] = (a.reshape(x.size, y.size), b.reshape(x.size, y.size))
    return chi2.reshape(x.size, y.size), ok.reshape(x.size, y.size), pulls


@pytest.mark.parametrize("params, n, chunk", [
    (("q_ee", "q_mumu", "q_emu"), 7, None),
    (("q_etau", "q_ee", "q_mumu", "q_mutau"), 5, 35),      # chunks that cut through planes
    (("q_etau", "q_ee", "q_mumu", "q_mutau"), 5, None),
])
def test_nd_rows_across_planes_equal_one_kernel_call_per_plane(coefs, params, n, chunk):
    # The N-D engine runs the rows of many planes in one kernel call per detector; the
    # bits must equal a grid_scan per plane of the last two charges (3 charges), or one
    # chi2_rows call per plane with vector_start (4 or more), pulls included, whatever
    # the chunks.
    from mcscan.scans.engine import VECTOR_START_DIMS, scan
    from mcscan.scans.grid import grid_scan

    axes = tuple(np.linspace(-2e-8, 3e-8, n) for _ in params)
    res = scan(coefs, params, axes, chunk_points=chunk, pulls=True, fixed={"q_tautau": 1e-9})
    chi2 = np.asarray(res.chi2)
    for outer in np.ndindex(*(n,) * (len(params) - 2)):
        fixed = {p: float(a[i]) for p, a, i in zip(params[:-2], axes[:-2], outer)}
        fixed["q_tautau"] = 1e-9
        if len(params) < VECTOR_START_DIMS:
            sc = grid_scan(coefs, params[-2:], axes[-2:], fixed=fixed)
        else:
            sc = _PlaneScan(*_plane_rows(coefs, params, axes, outer, {"q_tautau": 1e-9}, True))
        assert np.array_equal(chi2[outer], sc.chi2), outer                       # exact
        assert np.array_equal(np.asarray(res.converged)[outer].astype(bool), sc.converged)
        for det, (a, b) in sc.pulls.items():
            assert np.array_equal(np.asarray(res.pulls[det][0])[outer], a)      # exact
            assert np.array_equal(np.asarray(res.pulls[det][1])[outer], b)      # exact


#: SHA-256 of the chi2 grid (float64, C order) of the Xe + Ge scan over q_ee x q_mumu x q_emu,
#: 21 points each on [-6e-8, 6e-8] (q_ee, q_mumu) and [-3e-7, 3e-7] (q_emu), built-in
#: configuration, from the row kernels with fused multiply-adds (frozen regression value:
#: a change of the kernels' arithmetic must show up here).  Three charges keep the bits of
#: grid_scan.  Last changed when the logarithm of the chi2 bin by bin came from
#: kernels._log1p instead of the C library's log1p: 1710 of the 9261 points moved, by at
#: most 7.4e-16 relative (before: b48c325b...; earlier, when the chi2 of points beyond the
#: deviance series took the series in the bins within its range, a835a5fd...).
GOLDEN_ND3_SHA256 = "631325464ec91f2a816c7cb24b6eda73766055bae841af11be6381f08833650a"
#: The grid of that scan (and of the scan of frozen inputs below): q_ee, q_mumu, q_emu in e.
ND3_AXES = (np.linspace(-6e-8, 6e-8, 21), np.linspace(-6e-8, 6e-8, 21), np.linspace(-3e-7, 3e-7, 21))
#: Largest deviation from the 0.1.0 output (before the fused multiply-adds): measured
#: 8.4e-16 relative (chi2 > 1e-3) and 1.8e-12 absolute (chi2 up to 480).
ND3_VS_0_1_0 = dict(rtol=1e-14, atol=1e-11)


def test_3d_scan_is_bit_identical_to_the_golden_output(coefs, golden_0_1_0, numpy_avx512):
    import hashlib

    import numba

    axes = ND3_AXES
    old = numba.get_num_threads()
    hashes = set()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            res = scan(coefs, ("q_ee", "q_mumu", "q_emu"), axes)
            chi2 = np.ascontiguousarray(np.asarray(res.chi2))
            hashes.add(hashlib.sha256(chi2.tobytes()).hexdigest())
    finally:
        numba.set_num_threads(old)
    assert len(hashes) == 1                             # threads change no bit
    if numpy_avx512:        # the tables of the frozen hash (tests/conftest.py, NUMPY_AVX512)
        assert hashes == {GOLDEN_ND3_SHA256}
    np.testing.assert_allclose(chi2, golden_0_1_0("nd3"), **ND3_VS_0_1_0)


#: Inputs of a scan frozen with its output, so that the output does not depend on the
#: machine that builds the tables (tests/conftest.py, NUMPY_AVX512): the Xe and Ge
#: coefficients (S, L, Q, B, D, bin edges) of the reference tables as built on an AVX2
#: machine (AMD EPYC, Zen 3), and the SHA-256 of their arrays in name order.
ND3_INPUTS = Path(__file__).resolve().parents[1] / "data" / "nd3_coefficients.npz"
ND3_INPUTS_SHA256 = "f291209dfbc1cab251c3e20282d5f34ddd730cf0b60455911649fb8c9bb8e6af"
#: SHA-256 of the chi2 grid of the 3D scan of test_3d_scan_is_bit_identical_to_the_golden_output
#: from these inputs (computed on that machine, frozen): the kernels give it on every machine.
ND3_FROZEN_INPUTS_SHA256 = "98b8ea4e4ffdf454a4e085250d67aaf9e7389d8aafbe2cc228b03aa367171d90"


def test_3d_scan_of_frozen_inputs_gives_the_same_bits_on_every_machine():
    import hashlib

    from mcscan.stats.coefficients import Coefficients

    with np.load(ND3_INPUTS) as f:
        arrays = {k: f[k] for k in f.files}
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(arrays[k]).tobytes()
                                     for k in sorted(arrays))).hexdigest()
    assert digest == ND3_INPUTS_SHA256, f"{ND3_INPUTS} is not the frozen input"
    coefs = [Coefficients(det, ("nuclear",), *(arrays[f"{det}_{k}"] for k in ("S", "L", "Q", "B", "D")),
                          arrays[f"{det}_edges_kev"], f"frozen {det}") for det in ("Xe", "Ge")]
    axes = ND3_AXES
    chi2 = np.ascontiguousarray(np.asarray(scan(coefs, ("q_ee", "q_mumu", "q_emu"), axes).chi2))
    assert hashlib.sha256(chi2.tobytes()).hexdigest() == ND3_FROZEN_INPUTS_SHA256


def test_5d_scan_matches_twin(coefs):
    # five charges: every row starts in the vector loop; the twin agrees to 1e-9 relative
    from mcscan.params import PARAMS
    from mcscan.stats.reference import chi2 as chi2_numpy

    params = ("q_ee", "q_mumu", "q_emu", "q_etau", "q_mutau")
    axes = tuple(np.linspace(-2e-8, 2e-8, 7) for _ in params)
    res = scan(coefs, params, axes)
    flat = np.random.default_rng(5).choice(7 ** 5, size=600, replace=False)
    idx = np.unravel_index(flat, (7,) * 5)
    th = np.zeros((flat.size, 6))
    for p, a, i in zip(params, axes, idx):
        th[:, PARAMS.index(p)] = a[i]
    ref = sum(chi2_numpy(c, th)[0] for c in coefs)
    got = np.asarray(res.chi2).ravel()[flat]
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-15)       # twin tolerance
    assert res.unconverged == 0


def _reference_projection(chi2, dims, at_idx):
    """Profiled minimum, its flat index (first in C order) and the fixed slice onto
    ``dims``, from the full grid with NumPy."""
    others = [d for d in range(chi2.ndim) if d not in dims]
    moved = np.moveaxis(chi2, list(dims) + others, range(chi2.ndim))   # others keep their order
    pshape = moved.shape[:len(dims)]
    flat_rest = moved.reshape(pshape + (-1,))
    pmin = flat_rest.min(axis=-1)
    rest = np.unravel_index(flat_rest.argmin(axis=-1), [chi2.shape[d] for d in others])
    idx = [None] * chi2.ndim
    for k, d in enumerate(dims):
        idx[d] = np.indices(pshape)[k]
    for k, d in enumerate(others):
        idx[d] = rest[k]
    parg = np.ravel_multi_index(idx, chi2.shape)
    sl = tuple(at_idx[d] if d in others else slice(None) for d in range(chi2.ndim))
    kept = [d for d in range(chi2.ndim) if d in dims]
    fixed = np.transpose(chi2[sl], [kept.index(d) for d in dims])
    return pmin, parg, fixed, sl, [kept.index(d) for d in dims]


@pytest.mark.parametrize("values", ["chi2", "coarse"])
def test_projector_matches_full_grid_reduction(coefs, values):
    # The chunk-by-chunk projections (profiled minimum, its argmin with ties going to the
    # first point in C order, fixed slices and their flags) and the global minimum against
    # np.min / np.argmin / slicing of the whole grid, for several chunk sizes.  Ties are
    # forced: the grid repeats values on every axis (a duplicated axis value duplicates
    # the chi2 exactly), and "coarse" also rounds chi2 down to steps of 5 with +inf points.
    from mcscan.io.chunks import MemoryStore
    from mcscan.scans.engine import ChunkTask, _assemble, _MemorySink, _Projector

    params = ("q_ee", "q_mumu", "q_emu", "q_etau")
    axes = (np.linspace(-3e-8, 3e-8, 4), np.linspace(-2e-8, 2e-8, 3), np.linspace(-6e-8, 6e-8, 3),
            np.linspace(-3e-8, 3e-8, 4))
    base = scan(coefs[:1], params, axes)
    dup = ([0, 1, 1, 2, 3, 3], [0, 0, 1, 2], [2, 1, 1, 0, 2], [0, 1, 1, 2, 3, 3, 1])
    chi2 = np.asarray(base.chi2)[np.ix_(*dup)]
    if values == "coarse":
        chi2 = np.floor(chi2 / 5.0) * 5.0
        chi2[1, :, 2, :] = np.inf
        chi2[4, 3, :, 5] = np.inf
    rng = np.random.default_rng(3)
    ok = rng.integers(0, 2, chi2.shape).astype(np.int8)
    grid = Grid(params, tuple(a[i] for a, i in zip(axes, dup)), base.base)   # repeated values
    projs = [(d,) for d in range(4)] + [(a, b) for a in range(4) for b in range(4) if a != b]
    at_idx = (2, 3, 1, 5)
    ref = {pr: _reference_projection(chi2, pr, at_idx) for pr in projs}
    # ties really occur: several points reach a profiled minimum
    tied = sum(int(np.count_nonzero(np.moveaxis(chi2, pr, range(len(pr))).reshape(
        ref[pr][0].shape + (-1,)) == ref[pr][0][..., None])) - ref[pr][0].size for pr in projs)
    assert tied > 100
    ny = chi2.shape[-1]
    for rows in (1, 2, 5, 6, 25, chi2.size // ny):
        task = ChunkTask((), grid, rows * ny)
        store = MemoryStore()
        for k in range(task.n_chunks):
            lo, hi = k * task.chunk_points, min(chi2.size, (k + 1) * task.chunk_points)
            store.write(k, {"chi2": chi2.ravel()[lo:hi], "converged": ok.ravel()[lo:hi]})
        pjs = [_Projector(grid, pr, at_idx) for pr in projs]
        sink = _MemorySink(chi2.shape, (), False)
        s = _assemble(sink, task, store, pjs, ["chi2", "converged"])
        assert np.array_equal(sink.arrays["chi2"], chi2)
        j = np.unravel_index(np.argmin(chi2), chi2.shape)
        assert s["chi2_min"] == chi2.min()
        assert s["argmin"] == {p: float(grid.axes[d][j[d]]) for d, p in enumerate(params)}
        for pr in projs:
            pmin, parg, fixed, sl, order = ref[pr]
            name = "-".join(params[d] for d in pr)
            prof, fx = s["projections"][("profiled", name)], s["projections"][("fixed", name)]
            assert np.array_equal(prof.chi2, pmin), (rows, pr)                  # exact
            assert np.array_equal(prof.argmin, parg), (rows, pr)
            assert np.array_equal(fx.chi2, fixed), (rows, pr)                   # exact
            assert np.array_equal(fx.converged, np.transpose(ok[sl], order)), (rows, pr)


def test_projected_point_infinite_everywhere(coefs, monkeypatch, tmp_path):
    # +inf is a value (a dead bin under observed counts): a projected point whose every
    # profiled grid point is +inf gets chi2 +inf at its first grid point in C order
    from mcscan.scans import engine

    real = engine.compute_chunk

    def inf_row(k, task, **kw):
        out = real(k, task, **kw)
        if k == 0:
            out["chi2"][:B.size] = np.inf          # the row q_ee = A[0]
        return out

    monkeypatch.setattr(engine, "compute_chunk", inf_row)
    res = scan(coefs, ("q_ee", "q_mumu"), (A, B), chunk_points=3 * B.size)
    prof = res.projections[("profiled", "q_ee")]
    assert prof.chi2[0] == np.inf and prof.argmin[0] == 0 and prof.best["q_mumu"][0] == B[0]
    assert np.array_equal(prof.chi2[1:], np.asarray(res.chi2)[1:].min(axis=1))   # exact
    json.dumps(res.to_json(), allow_nan=False)
    scan(coefs, ("q_ee", "q_mumu"), (A, B), tmp_path / "s.h5", chunk_points=3 * B.size)
    stored = _groups(tmp_path / "s.h5")["scan/profiled/q_ee"]["data"]
    assert np.array_equal(stored["chi2"], prof.chi2) and np.array_equal(stored["argmin"], prof.argmin)


def test_charge_scan_with_default_ranges_loads_no_family_machinery(table_dir, tmp_path, loaded_by_cli):
    """A charge ndscan over the configuration's default ranges takes them from
    mcscan.params: the family scans (and scipy.optimize, 0.24 s to import) stay unloaded."""
    argv = ["ndscan", "--detector", "Ge", "--param", "q_ee", "--param", "q_mumu", "--param",
            "q_emu", "--points", "5", "--quiet", "--tables", table_dir, "--out", tmp_path / "nd.h5"]
    assert loaded_by_cli([argv], ["mcscan.scans.families", "scipy.optimize"]) == []
    assert (tmp_path / "nd.h5").is_file()


def test_compile_time_is_reported_apart_from_the_rate(coefs):
    # the second identical scan finds its kernel in memory: no time in numba's compiler
    args = (coefs[:1], ("q_ee", "q_mumu"), (A, B))
    scan(*args)
    res = scan(*args)
    assert res.compile_time_s == 0.0 and res.compute_time_s > 0.0
    assert res.points_per_second == res.points / res.compute_time_s
    # the rate leaves the compile time out; none when compiling took the whole compute phase
    slow = dataclasses.replace(res, compute_time_s=3.0, compile_time_s=2.5)
    assert slow.points_per_second == res.points / 0.5
    assert dataclasses.replace(res, compile_time_s=res.compute_time_s).points_per_second is None
    assert slow.to_json()["compile_time_s"] == 2.5


def test_column_argmin_is_numpys_first_minimum_in_blocks_of_rows():
    # the projections' first minimum down each column, a block of rows at a time (bounded
    # scratch memory): the row np.argmin picks, ties and +inf included, for any block size
    from mcscan.scans.engine import _column_argmin

    rng = np.random.default_rng(11)
    for shape in ((24966, 21), (1024, 2001), (5, 3), (7000, 1), (1, 9)):
        w = rng.integers(0, 4, shape).astype(float)        # many ties
        w[rng.random(shape) < 0.1] = np.inf
        w[:, -1] = np.inf                                   # a column of +inf: row 0
        for block in (1, 7, 4096, 1 << 16, 10**9):
            assert np.array_equal(_column_argmin(w, block=block), np.argmin(w, axis=0)), (shape, block)
