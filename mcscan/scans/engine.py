"""N-dimensional grid scans, streamed to HDF5 chunk by chunk, with projections.

The grid is the product of one increasing axis per scanned charge (any 1 to
6 of :data:`mcscan.config.load.PARAMS`), in C order: the last charge varies
fastest.  Its points are cut into **rows** of the last axis (a 1D scan is
one row), and a **chunk** is a run of ``chunk_points`` consecutive points
made of whole rows (1D: whole row segments of :data:`mcscan.scans.grid.SEGMENT`).
A chunk is evaluated as one :func:`mcscan.scans.grid.grid_scan` over the last two
charges per combination of the outer charges it touches, the outer charges
passed as ``fixed``.  Since a point of ``grid_scan`` depends only on its row
segment, :func:`compute_chunk` is a pure function of the chunk index: the
same bits in any process, on any backend, in any order, after any resume.

:func:`nd_scan` sends the chunks to a backend (:mod:`mcscan.scans.backends`),
stores each finished chunk (:class:`mcscan.io.tables.ChunkStore`, so an
interrupted scan resumes with ``resume=True``), then assembles the results
file chunk by chunk (memory bounded by one chunk): the full N-D chi2 and,
for each requested projection onto one or two charges,

* ``profiled``: the minimum over every other scanned charge, the grid point
  where it is reached (first in C order on ties) and the other charges there;
* ``fixed``: the slice through the grid point nearest ``at`` (default 0) in
  every other scanned charge.

Results file layout (group ``/ndscan``)::

    /ndscan                  attrs: params, shape, detectors, channels, table_hashes,
                             fixed (all six charges, e), chi2_min, argmin ({param: e}),
                             unconverged, chunk_points, n_chunks, cl_levels (N d.o.f.),
                             signal_pull, background_pull, projections
    /ndscan/axis_<i>         (shape[i],) e
    /ndscan/chi2             shape = grid, chunked HDF5 dataset
    /ndscan/converged        shape = grid, int8
    /ndscan/profiled/<name>  axis_0[, axis_1], chi2, delta_chi2 (chi2 - global minimum),
                             argmin (flat grid index), best_<param> (e) per other charge;
                             attrs kind, params, chi2_min, cl_levels (1 or 2 d.o.f.)
    /ndscan/fixed/<name>     axis_0[, axis_1], chi2, delta_chi2 (chi2 - slice minimum),
                             converged; attrs kind, params, chi2_min, at ({param: e}),
                             cl_levels

``<name>`` is ``q_ee`` or ``q_ee-q_mumu``.  Read it with
:func:`mcscan.io.tables.load_results`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..params import PARAMS
from ..errors import InputError
from .grid import SEGMENT, ScanSettings, _check_axis, base_point, check_param, grid_scan, scan_spec

__all__ = [
    "MAX_POINTS",
    "ChunkTask",
    "Grid",
    "NDScanResult",
    "Projection",
    "chunk_bounds",
    "compute_chunk",
    "default_chunk_points",
    "make_grid",
    "nd_scan",
    "parse_projections",
]

#: Largest number of grid points one N-D scan accepts (9 bytes per point on disk).
MAX_POINTS = 2_000_000_000


@dataclass(frozen=True)
class Grid:
    """The scanned charges, their axes (e) and the values of the others.

    ``base`` holds all six charges; entries of scanned charges are ignored.
    """

    params: tuple
    axes: tuple
    base: np.ndarray

    @property
    def shape(self) -> tuple:
        return tuple(int(a.size) for a in self.axes)

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def make_grid(params, axes, fixed=None) -> Grid:
    """A checked :class:`Grid`: 1 to 6 distinct charges, strictly increasing finite axes,
    ``fixed`` ({param: e}) only for charges that are not scanned."""
    params = tuple(params)
    if not 1 <= len(params) <= len(PARAMS):
        raise InputError(f"an N-D scan takes 1 to {len(PARAMS)} charges, got {len(params)}")
    if len(axes) != len(params):
        raise InputError(f"{len(params)} charge(s) but {len(axes)} axes: give one axis per charge")
    for p in params:
        check_param(p)
    if len(set(params)) != len(params):
        raise InputError(f"charges must differ, got {', '.join(params)}")
    for p in fixed or {}:
        if p in params:
            raise InputError(f"{p} is both scanned and fixed")
    axes = tuple(_check_axis(p, a) for p, a in zip(params, axes))
    grid = Grid(params, axes, base_point(fixed))
    if grid.size > MAX_POINTS:
        raise InputError(f"{grid.size} grid points requested: at most {MAX_POINTS} per N-D scan")
    return grid


def default_chunk_points(shape, want=None) -> int:
    """Points per chunk: whole rows (1D: whole segments of SEGMENT points), whole planes of
    the last two axes when a chunk holds one; by default about 1/32 of the grid, between
    16384 and 1048576 points."""
    shape = tuple(int(s) for s in shape)
    n = math.prod(shape)
    if want is None:
        want = min(max(n // 32, 1 << 14), 1 << 20)
    want = int(want)
    if want < 1:
        raise InputError(f"chunk size {want}: expected a positive number of points")
    unit = SEGMENT if len(shape) == 1 else shape[-1]
    cp = max(1, want // unit) * unit
    if len(shape) >= 2:
        plane = shape[-1] * shape[-2]
        if cp >= plane:
            cp = cp // plane * plane
    return min(cp, -(-n // unit) * unit)


@dataclass(frozen=True)
class ChunkTask:
    """Everything a chunk depends on (picklable; sent to Dask workers as is).

    ``coefs``: per detector a :class:`mcscan.stats.reference.Coefficients` or a
    :class:`mcscan.scans.backends.TableRef` (loaded once per worker process).
    """

    coefs: tuple
    grid: Grid
    chunk_points: int
    settings: ScanSettings = field(default_factory=ScanSettings)
    parallel: bool = True

    @property
    def n_chunks(self) -> int:
        return -(-self.grid.size // self.chunk_points)


def chunk_bounds(k: int, task: ChunkTask) -> tuple:
    """Flat grid indices [lo, hi) of chunk ``k``."""
    lo = int(k) * task.chunk_points
    return lo, min(task.grid.size, lo + task.chunk_points)


def compute_chunk(k: int, task: ChunkTask) -> dict:
    """chi2 (float64) and converged (int8) of chunk ``k``, flat in C order.

    A pure function of ``(k, task)``: whatever process runs it, the bits are the same.
    """
    from .backends import resolve_coefficients

    coefs = resolve_coefficients(task.coefs)
    g = task.grid
    shape = g.shape
    lo, hi = chunk_bounds(k, task)
    if not 0 <= lo < hi:
        raise InputError(f"chunk {k} outside the grid ({task.n_chunks} chunks)")
    inner = g.params[-2:]
    others = {p: float(g.base[j]) for j, p in enumerate(PARAMS) if p not in inner}
    chi2 = np.empty(hi - lo)
    ok = np.empty(hi - lo, dtype=np.int8)
    kw = {"settings": task.settings, "parallel": task.parallel}
    if len(shape) == 1:
        sc = grid_scan(coefs, g.params, (g.axes[0][lo:hi],), fixed=others, **kw)
        chi2[:] = sc.chi2
        ok[:] = sc.converged
        return {"chi2": chi2, "converged": ok}
    ny, nx = shape[-1], shape[-2]
    r0, r1 = lo // ny, hi // ny
    pos = 0
    for o in range(r0 // nx, (r1 - 1) // nx + 1):
        i0, i1 = max(r0 - o * nx, 0), min(r1 - o * nx, nx)
        fixed = dict(others)
        if len(shape) > 2:
            for p, a, i in zip(g.params[:-2], g.axes[:-2], np.unravel_index(o, shape[:-2])):
                fixed[p] = float(a[i])
        sc = grid_scan(coefs, inner, (g.axes[-2][i0:i1], g.axes[-1]), fixed=fixed, **kw)
        m = (i1 - i0) * ny
        chi2[pos:pos + m] = sc.chi2.ravel()
        ok[pos:pos + m] = sc.converged.ravel()
        pos += m
    return {"chi2": chi2, "converged": ok}


# ----------------------------------------------------------------- projections

def parse_projections(items, params) -> list:
    """Projections as tuples of scanned charges: each item a name, 'p0,p1', or a sequence.

    Default (``items`` empty or None): every scanned charge alone."""
    params = tuple(params)
    if not items:
        return [(p,) for p in params]
    out = []
    for it in items:
        names = tuple(s.strip() for s in it.split(",")) if isinstance(it, str) else tuple(it)
        if not 1 <= len(names) <= 2:
            raise InputError(f"projection {','.join(names)!r}: expected one or two charges")
        for p in names:
            check_param(p)
            if p not in params:
                raise InputError(f"projection onto {p}: not a scanned charge "
                                 f"(scanned: {', '.join(params)})")
        if len(set(names)) != len(names):
            raise InputError(f"projection {','.join(names)!r}: the charges must differ")
        if names not in out:
            out.append(names)
    return out


@dataclass(frozen=True)
class Projection:
    """A profiled or fixed projection of an N-D scan onto one or two charges.

    Attributes
    ----------
    kind : "profiled" (minimum over the other scanned charges) or "fixed" (slice)
    params, axes : the projected charges and their grids (e)
    chi2 : shape = (len(axes[0]), [len(axes[1])])
    chi2_min : reference of ``delta_chi2``: the global minimum (profiled) or the
        minimum of the slice (fixed)
    best : profiled: {other charge: value at the minimum, same shape}, e
    argmin : profiled: flat grid index of the minimum, same shape
    at : fixed: {other charge: grid value of the slice}, e
    converged : fixed: profile convergence flags of the slice
    """

    kind: str
    params: tuple
    axes: tuple
    chi2: np.ndarray
    chi2_min: float
    best: dict = field(default_factory=dict)
    argmin: np.ndarray | None = None
    at: dict = field(default_factory=dict)
    converged: np.ndarray | None = None

    @property
    def name(self) -> str:
        return "-".join(self.params)

    @property
    def delta_chi2(self) -> np.ndarray:
        return self.chi2 - self.chi2_min


class _Projector:
    """Profiled minimum and fixed slice onto ``dims``, updated chunk by chunk in order."""

    def __init__(self, grid: Grid, dims: tuple, at_idx: tuple):
        self.grid, self.dims, self.at_idx = grid, dims, at_idx
        self.pshape = tuple(grid.shape[d] for d in dims)
        m = math.prod(self.pshape)
        self.pmin = np.full(m, np.inf)
        self.parg = np.full(m, -1, dtype=np.int64)
        self.fixed = np.full(m, np.nan)
        self.fixed_ok = np.zeros(m, dtype=np.int8)
        self.others = [d for d in range(len(grid.shape)) if d not in dims]

    def add(self, row_idx, row_flat, cols, vals, oks):
        """Fold in one chunk: ``vals``/``oks`` (nrows, ncols); row r, column c is grid point
        ``row_idx[.][r]`` (indices of axes 0..N-2) x ``cols[c]`` (axis N-1), flat index
        ``row_flat[r] + cols[c]``."""
        last = len(self.grid.shape) - 1
        nrows, ncols = vals.shape
        if last not in self.dims:
            # profile the row first (first minimum), then group the rows
            j = np.argmin(vals, axis=1)
            v = vals[np.arange(nrows), j]
            flat = row_flat + cols[j]
            g = np.ravel_multi_index([row_idx[d] for d in self.dims], self.pshape)
        else:
            full = [np.broadcast_to(cols[None, :], vals.shape) if d == last
                    else np.broadcast_to(row_idx[d][:, None], vals.shape) for d in self.dims]
            g = np.ravel_multi_index([a.ravel() for a in full], self.pshape)
            v = vals.ravel()
            flat = (row_flat[:, None] + cols[None, :]).ravel()
        cm = np.full(self.pmin.size, np.inf)
        np.minimum.at(cm, g, v)
        eq = v == cm[g]
        ca = np.full(self.pmin.size, np.iinfo(np.int64).max)
        np.minimum.at(ca, g[eq], flat[eq])
        better = cm < self.pmin                        # ties: the earlier chunk wins
        self.pmin[better] = cm[better]
        self.parg[better] = ca[better]
        # fixed slice: rows whose other axes sit at the slice point
        mask = np.ones(nrows, dtype=bool)
        for d in self.others:
            if d != last:
                mask &= row_idx[d] == self.at_idx[d]
        if not mask.any():
            return
        if last not in self.dims:
            c = np.searchsorted(cols, self.at_idx[last])
            if c >= ncols or cols[c] != self.at_idx[last]:
                return
            gi = np.ravel_multi_index([row_idx[d][mask] for d in self.dims], self.pshape)
            self.fixed[gi] = vals[mask, c]
            self.fixed_ok[gi] = oks[mask, c]
        else:
            sub = vals[mask]
            full = [np.broadcast_to(cols[None, :], sub.shape) if d == last
                    else np.broadcast_to(row_idx[d][mask][:, None], sub.shape) for d in self.dims]
            gi = np.ravel_multi_index([a.ravel() for a in full], self.pshape)
            self.fixed[gi] = sub.ravel()
            self.fixed_ok[gi] = oks[mask].ravel()

    def results(self, chi2_min: float) -> tuple:
        g = self.grid
        axes = tuple(g.axes[d] for d in self.dims)
        params = tuple(g.params[d] for d in self.dims)
        idx = np.unravel_index(self.parg, g.shape)
        best = {g.params[d]: g.axes[d][idx[d]].reshape(self.pshape) for d in self.others}
        prof = Projection("profiled", params, axes, self.pmin.reshape(self.pshape), chi2_min,
                          best=best, argmin=self.parg.reshape(self.pshape))
        fx = self.fixed.reshape(self.pshape)
        at = {g.params[d]: float(g.axes[d][self.at_idx[d]]) for d in self.others}
        fixed = Projection("fixed", params, axes, fx, float(np.min(fx)), at=at,
                           converged=self.fixed_ok.reshape(self.pshape))
        return prof, fixed


def _chunk_view(k, task):
    """Row view of chunk ``k``: (row_idx, row_flat, cols) for :meth:`_Projector.add`."""
    shape = task.grid.shape
    lo, hi = chunk_bounds(k, task)
    if len(shape) == 1:
        return (), np.zeros(1, dtype=np.int64), np.arange(lo, hi, dtype=np.int64)
    ny = shape[-1]
    rows = np.arange(lo // ny, hi // ny, dtype=np.int64)
    return np.unravel_index(rows, shape[:-1]), rows * ny, np.arange(ny, dtype=np.int64)


# ------------------------------------------------------------------- the scan

@dataclass(frozen=True)
class NDScanResult:
    """Summary of a finished N-D scan; the numbers are in the results file ``path``."""

    path: str
    params: tuple
    axes: tuple
    detectors: tuple
    chi2_min: float
    argmin: dict
    unconverged: int
    chunks: int
    resumed_chunks: int
    projections: dict                  # (kind, name) -> Projection
    compute_time_s: float
    wall_time_s: float
    backend: dict

    @property
    def shape(self) -> tuple:
        return tuple(int(a.size) for a in self.axes)

    @property
    def points_per_second(self) -> float:
        """Grid points computed (resumed chunks excluded) per second of the compute phase."""
        n = math.prod(self.shape)
        done = n * (self.chunks - self.resumed_chunks) / max(self.chunks, 1)
        return done / self.compute_time_s if self.compute_time_s > 0 else float("nan")

    def to_json(self, cl: float = 0.90) -> dict:
        """JSON summary; 1D projections come with their allowed intervals at ``cl``
        (grid resolution: an end point lies between two grid points)."""
        from .limits import allowed_intervals, delta_chi2_level

        level = delta_chi2_level(cl, 1)
        proj = {}
        for (kind, name), pr in self.projections.items():
            d = {"kind": kind, "params": list(pr.params), "chi2_min": pr.chi2_min}
            if len(pr.params) == 1:
                regions, lo_open, hi_open = allowed_intervals(pr.axes[0], pr.delta_chi2, level)
                d.update({"cl": cl, "delta_chi2": level, "regions": regions,
                          "open_low": lo_open, "open_high": hi_open})
            if pr.at:
                d["at"] = pr.at
            proj[f"{kind}/{name}"] = d
        return {"path": self.path, "params": list(self.params), "shape": list(self.shape),
                "points": math.prod(self.shape), "detectors": list(self.detectors), "unit": "e",
                "chi2_min": self.chi2_min, "argmin": self.argmin, "unconverged": self.unconverged,
                "chunks": self.chunks, "resumed_chunks": self.resumed_chunks,
                "compute_time_s": self.compute_time_s, "wall_time_s": self.wall_time_s,
                "points_per_second": self.points_per_second, "backend": self.backend,
                "projections": proj}


def nd_scan(coefs, params, axes, path, *, fixed=None, at=None, projections=None,
            settings: ScanSettings | None = None, backend=None, resume: bool = False,
            chunk_points: int | None = None, progress: bool = False,
            config: dict | None = None) -> NDScanResult:
    """Profiled chi2 on an N-D grid, streamed to the results file ``path``.

    Parameters
    ----------
    coefs : per detector a :class:`mcscan.stats.reference.Coefficients` or a
        :class:`mcscan.scans.backends.TableRef` (what workers load; the table folder
        must be visible to them)
    params, axes : 1 to 6 charges and one increasing grid (e) each; the last
        charge varies fastest
    fixed : {charge: e} for charges that are not scanned (default 0)
    at : {scanned charge: e}: where the fixed projections slice the grid (the
        nearest grid point; default 0)
    projections : one or two charges each ('q_ee', 'q_ee,q_mumu' or tuples);
        default every scanned charge alone
    backend : :class:`mcscan.scans.backends.Backend` (default local); not closed here
    resume : continue an interrupted scan from ``<path>.partial/`` (any backend)
    chunk_points : points per chunk (rounded to whole rows); see
        :func:`default_chunk_points`
    config : configuration dictionary stored in the file
    """
    from .backends import LocalBackend, resolve_coefficients
    from ..io.tables import ChunkStore

    t0 = time.perf_counter()
    settings = settings or ScanSettings()
    grid = make_grid(params, axes, fixed)
    coefs = tuple(coefs)
    if not coefs:
        raise InputError("a scan needs at least one detector")
    local = resolve_coefficients(coefs)
    if len({c.detector for c in local}) != len(local):
        raise InputError("detector given twice")
    projs = parse_projections(projections, grid.params)
    at = dict(at or {})
    for p in at:
        check_param(p)
        if p not in grid.params:
            raise InputError(f"--at {p}: not a scanned charge (scanned: {', '.join(grid.params)})")
    at_idx = tuple(int(np.argmin(np.abs(a - float(at.get(p, 0.0)))))
                   for p, a in zip(grid.params, grid.axes))
    cp = default_chunk_points(grid.shape, chunk_points)
    task = ChunkTask(coefs, grid, cp, settings)
    spec = scan_spec(local, grid.params, grid.axes, grid.base, settings, cp)
    spec["kind"] = "ndscan"
    store = ChunkStore(f"{path}.partial", spec, resume=resume)
    done = store.done()
    todo = [k for k in range(task.n_chunks) if k not in done]
    backend = backend or LocalBackend()
    t1 = time.perf_counter()
    weights = [chunk_bounds(k, task)[1] - chunk_bounds(k, task)[0] for k in todo]
    for k, arrays in backend.map(compute_chunk, todo, args=(task,), progress=progress,
                                 desc="ndscan " + " x ".join(grid.params), weights=weights,
                                 unit="pt"):
        store.write(k, arrays)
    compute = time.perf_counter() - t1
    projectors = [_Projector(grid, tuple(grid.params.index(p) for p in pr), at_idx) for pr in projs]
    meta = {"detectors": [c.detector for c in local], "channels": list(local[0].channels),
            "table_hashes": [c.table_hash for c in local], "settings": settings}
    summary = _save_nd(path, grid, task, store, projectors, meta, config=config)
    store.remove()
    proj = {}
    for pr in summary["projections"]:
        proj[(pr.kind, pr.name)] = pr
    return NDScanResult(
        path=str(path), params=grid.params, axes=grid.axes, detectors=tuple(meta["detectors"]),
        chi2_min=summary["chi2_min"], argmin=summary["argmin"], unconverged=summary["unconverged"],
        chunks=task.n_chunks, resumed_chunks=len(done), projections=proj, compute_time_s=compute,
        wall_time_s=time.perf_counter() - t0, backend=backend.describe())


# ------------------------------------------------------ results file (HDF5)
# Written through mcscan.io.tables.results_writer: no h5py here.

def _boxes(lo: int, hi: int, shape: tuple):
    """Hyperslabs covering the flat C-order range [lo, hi) of ``shape``:
    yields (index tuple, flat lo, flat hi), at most 2 per dimension."""
    if lo >= hi:
        return
    if len(shape) == 1:
        yield (slice(lo, hi),), lo, hi
        return
    inner = math.prod(shape[1:])
    a, ra = divmod(lo, inner)
    b, rb = divmod(hi, inner)
    if a == b:
        for sl, f0, f1 in _boxes(ra, rb, shape[1:]):
            yield (a,) + sl, a * inner + f0, a * inner + f1
        return
    if ra:
        for sl, f0, f1 in _boxes(ra, inner, shape[1:]):
            yield (a,) + sl, a * inner + f0, a * inner + f1
        a += 1
    if b > a:
        yield (slice(a, b),) + (slice(None),) * (len(shape) - 1), a * inner, b * inner
    if rb:
        for sl, f0, f1 in _boxes(0, rb, shape[1:]):
            yield (b,) + sl, b * inner + f0, b * inner + f1


def _box_shape(index, shape):
    out = []
    for ix, n in zip(index, shape):
        if isinstance(ix, slice):
            out.append(len(range(*ix.indices(n))))
    return tuple(out)


def _h5_chunks(shape, target=1 << 16):
    """HDF5 chunk shape: trailing axes whole while the chunk stays under ``target`` values."""
    out = [1] * len(shape)
    size = 1
    for d in range(len(shape) - 1, -1, -1):
        if size * shape[d] <= target:
            out[d] = shape[d]
            size *= shape[d]
        else:
            out[d] = max(1, target // size)
            break
    return tuple(out)


def _save_nd(path, grid: Grid, task: ChunkTask, store, projectors, meta, *, config=None) -> dict:
    from .limits import cl_levels as levels
    from ..io.tables import results_writer

    shape = grid.shape

    with results_writer(path, "ndscan", config=config) as w:
        for i, a in enumerate(grid.axes):
            w.array("ndscan", f"axis_{i}", a, "e")
        h5c = _h5_chunks(shape)
        w.empty("ndscan", "chi2", shape, float, "chi2", chunks=h5c)
        w.empty("ndscan", "converged", shape, np.int8, "bool", chunks=h5c)
        best, where, bad = np.inf, 0, 0
        for k in range(task.n_chunks):
            lo, hi = chunk_bounds(k, task)
            c = store.read(k)
            v, ok = c["chi2"], c["converged"]
            if v.shape != (hi - lo,) or ok.shape != (hi - lo,):
                from ..errors import TableError

                raise TableError(f"stored chunk {k} of {str(store.folder)!r} has the wrong size: "
                                 "delete the folder and run the scan again")
            for index, f0, f1 in _boxes(lo, hi, shape):
                bs = _box_shape(index, shape)
                w.write("ndscan", "chi2", index, v[f0 - lo:f1 - lo].reshape(bs))
                w.write("ndscan", "converged", index, ok[f0 - lo:f1 - lo].reshape(bs))
            j = int(np.argmin(v))
            if v[j] < best:
                best, where = float(v[j]), lo + j
            bad += int(np.count_nonzero(ok == 0))
            row_idx, row_flat, cols = _chunk_view(k, task)
            vals, oks = v.reshape(row_flat.size, cols.size), ok.reshape(row_flat.size, cols.size)
            for pj in projectors:
                pj.add(row_idx, row_flat, cols, vals, oks)
        at = np.unravel_index(where, shape)
        argmin = {p: float(a[i]) for p, a, i in zip(grid.params, grid.axes, at)}
        out = []
        names = []
        for pj in projectors:
            prof, fixed = pj.results(best)
            for pr in (prof, fixed):
                out.append(pr)
                name = f"{pr.kind}/{pr.name}"
                names.append(name)
                grp = f"ndscan/{name}"
                for i, a in enumerate(pr.axes):
                    w.array(grp, f"axis_{i}", a, "e")
                w.array(grp, "chi2", pr.chi2, "chi2")
                w.array(grp, "delta_chi2", pr.delta_chi2, "chi2")
                if pr.kind == "profiled":
                    w.array(grp, "argmin", pr.argmin, "flat index into /ndscan/chi2")
                    for p, b in pr.best.items():
                        w.array(grp, f"best_{p}", b, "e")
                else:
                    w.array(grp, "converged", pr.converged, "bool")
                w.attrs(grp, {"kind": pr.kind, "params": list(pr.params),
                              "chi2_min": pr.chi2_min, "at": pr.at,
                              "cl_levels": levels(len(pr.params))})
        s = meta["settings"]
        w.attrs("ndscan", {"params": list(grid.params), "shape": list(shape),
                           "detectors": meta["detectors"], "channels": meta["channels"],
                           "table_hashes": meta["table_hashes"],
                           "fixed": [float(x) for x in grid.base], "chi2_min": best,
                           "argmin": argmin, "unconverged": bad, "chunk_points": task.chunk_points,
                           "n_chunks": task.n_chunks, "cl_levels": levels(len(shape)),
                           "signal_pull": s.signal_pull, "background_pull": s.background_pull,
                           "projections": names})
    return {"chi2_min": best, "argmin": argmin, "unconverged": bad, "projections": out,
            "path": Path(path)}
