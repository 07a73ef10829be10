"""The grid-scan engine: 1 to 6 parameters, in memory or streamed to a results file.

The grid is the product of one increasing axis per scanned parameter, in C
order: the last parameter varies fastest.  With millicharge coefficients
(:class:`mcscan.stats.coefficients.Coefficients`) the parameters are any 1 to
6 of the charges :data:`mcscan.params.PARAMS`; with the quadratic forms of
every family (:class:`mcscan.stats.families.FamilyCoefficients`) any 1 to 6
of :data:`mcscan.params.ALL_PARAMS`, of any families mixed (docs/physics.md
section 11).  The two differ only in how a plane's row coefficients are
formed (below); the chunks, the chunk store, the backends, the projections
and the file are the same.  Below, "charge" stands for either kind.

The points are cut into **rows** of the last axis (a 1D scan is
one row), and a **chunk** is a run of ``chunk_points`` consecutive points
made of whole rows (1D: whole row segments of :data:`mcscan.scans.grid.SEGMENT`).
A chunk gives the numbers of one :func:`mcscan.scans.grid.grid_scan` over the last
two charges per combination of the outer charges it touches, the outer charges
passed as ``fixed`` (over the parameter families
:func:`mcscan.scans.families.family_grid_scan`).  A 1D chunk is such a call; from
two axes on, all the planes a chunk touches go to the row kernel in one call per
detector, written straight into the chunk's arrays, each row naming its plane's
fixed charges (over the families, its plane's row polynomial: cross terms
between parameters of one flavour make it depend on the outer values).  Since a
point of ``grid_scan`` depends only on its row
segment, :func:`compute_chunk` is a pure function of the chunk index: the
same bits in any process, on any backend, in any order, after any resume,
and the same bits as one ``grid_scan`` of the whole grid.

:func:`scan` is the one entry point.  It sends the chunks to a backend
(:mod:`mcscan.scans.backends`); with a results file it stores each finished
chunk (:class:`mcscan.io.chunks.ChunkStore`, so an interrupted scan resumes
with ``resume=True``), then assembles the file chunk by chunk (memory bounded
by one chunk), verifies it and only then deletes the chunks.  Without a file
the same assembly fills arrays in memory.  The result is a
:class:`mcscan.results.ScanResult`: the full chi2 grid, convergence flags,
per-detector pulls (by default for 1 and 2 charges) and, for each requested
projection onto one or two charges,

* ``profiled``: the minimum over every other scanned charge, the grid point
  where it is reached (first in C order on ties; a projected point that is
  +inf everywhere: its first grid point) and the other charges there;
* ``fixed``: the slice through the grid point nearest ``at`` (default 0) in
  every other scanned charge.

The projections are folded chunk by chunk during the assembly (vectorised:
each row's first minimum once per chunk, shared by the projections without
the last charge; rows grouped by a stable sort and ``np.minimum.reduceat``),
with the same bits for any chunking.

A non-finite chi2 anywhere on the grid is refused (it names the point);
no minimum is ever taken over NaN.  The file layout (kind ``scan``) is in
``docs/results.md``.
"""
from __future__ import annotations

import contextlib
import functools
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..io.registry import register
from ..params import ALL_PARAMS, PARAMS, SPEC, check_any_param
from ..results import Result
from .grid import SEGMENT, ScanSettings, _check_axis, base_point, check_param, grid_scan
from .limits import allowed_intervals, delta_chi2_level

__all__ = [
    "IN_MEMORY_CHUNK_POINTS",
    "IN_MEMORY_CHUNK_ROWS",
    "MAX_CHUNK_POINTS",
    "MAX_POINTS",
    "ChunkTask",
    "Grid",
    "Projection",
    "ScanResult",
    "chunk_bounds",
    "compute_chunk",
    "default_chunk_points",
    "make_grid",
    "parse_projections",
    "scan",
    "scan_spec",
]

#: Largest number of grid points one scan accepts by default (see ``max_points``).
MAX_POINTS = 2_000_000_000


@dataclass(frozen=True)
class Grid:
    """The scanned charges, their axes and the values of the others.

    ``base`` holds all six charges (e), or for a scan over the parameter families
    the full parameter vector (:data:`mcscan.params.ALL_PARAMS`, each value in its
    unit); entries of scanned parameters are ignored.
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

    @property
    def families(self) -> bool:
        """True for a scan over the parameter families (``base`` a full parameter vector)."""
        return self.base.size != len(PARAMS)

    @property
    def names(self) -> tuple:
        """Names of the entries of ``base``."""
        return ALL_PARAMS if self.families else PARAMS


def make_grid(params, axes, fixed=None, max_points=None, origin=None) -> Grid:
    """A checked :class:`Grid`: 1 to 6 distinct charges, strictly increasing finite axes,
    ``fixed`` ({param: e}) only for charges that are not scanned, at most ``max_points``.

    With ``origin``, the Standard Model point of the tables as a full parameter vector
    (:func:`mcscan.stats.families.sm_point`), the parameters may be any of
    :data:`mcscan.params.ALL_PARAMS` and ``fixed`` {param: value in its unit} sets any
    that are not scanned (the others stay at ``origin``)."""
    from .. import budget

    if origin is not None:
        return _family_grid(params, axes, fixed, max_points, origin)
    params = tuple(params)
    if not 1 <= len(params) <= len(PARAMS):
        raise InputError(f"a scan takes 1 to {len(PARAMS)} charges, got {len(params)}")
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
    budget.check_points("scan", grid.size, MAX_POINTS if max_points is None else max_points)
    return grid


def _family_grid(params, axes, fixed, max_points, origin) -> Grid:
    """:func:`make_grid` over parameters of any family."""
    from .. import budget

    params = tuple(params)
    most = len(PARAMS)
    if not 1 <= len(params) <= most:
        raise InputError(f"a scan takes 1 to {most} parameters, got {len(params)}")
    if len(axes) != len(params):
        raise InputError(f"{len(params)} parameter(s) but {len(axes)} axes: give one axis per "
                         "parameter")
    for p in params:
        check_any_param(p)
    if len(set(params)) != len(params):
        raise InputError(f"parameters must differ, got {', '.join(params)}")
    base = np.array(origin, dtype=float)
    if base.shape != (len(ALL_PARAMS),):
        raise InputError(f"origin of shape {base.shape}: expected the full parameter vector "
                         f"({len(ALL_PARAMS)} values)")
    for p, v in dict(fixed or {}).items():
        k = check_any_param(p)
        if p in params:
            raise InputError(f"{p} is both scanned and fixed")
        v = float(v)
        if not math.isfinite(v):
            raise InputError(f"{p} = {v!r}: expected a finite value in {SPEC[p].unit}")
        base[k] = v
    axes = tuple(_check_axis(p, a) for p, a in zip(params, axes))
    grid = Grid(params, axes, base)
    budget.check_points("scan", grid.size, MAX_POINTS if max_points is None else max_points)
    return grid


#: Rows a default chunk of a grid of 2 or more axes holds at least (within
#: :data:`MAX_CHUNK_POINTS`): four blocks of 64 rows for the row kernel.  A chunk is one
#: kernel call whose blocks of rows the threads share; with 1/32 of a 2001 x 2001 grid (62
#: rows) two threads got one block of 40 rows and one of 22, and a 2D scan in memory ran at
#: 14 M points/s instead of 21 M.  Not tied to the thread count: a chunk's size is part of
#: what a resumed scan must match.
MIN_CHUNK_ROWS = 256


#: Most points of a default chunk of a streamed scan: its arrays are held twice (one
#: chunk written while the next is computed; one read ahead while the last goes into the
#: results file), 25 MB each with one detector's pulls.  It bounds the process's memory:
#: with 2^22, a 10001 x 10001 scan through ``mcscan scan`` took 33 chunks of 312 rows
#: instead of 97 of 104, 1.066 times as fast (its threads wait for each other once per
#: chunk, and 104 rows of three segments make five blocks), but its peak memory went from
#: 276 to 409 MB; kept at 2^20.
MAX_CHUNK_POINTS = 1 << 20


#: Fewest points of a default chunk of a scan kept in memory on this machine (no results
#: file, the local backend), where a chunk is only the unit of the progress bar: each
#: chunk costs about 1.5 ms besides its points (the kernel call's setup, the threads
#: waiting for the last block, the fold into the minimum and the projections).  The
#: bench's 5D scan (21^5 points, Xe) ran in 33 chunks of 1/32 of the grid, now in 8:
#: 1.06 times as fast (median of 16 interleaved pairs, AMD EPYC pair).  Results do not
#: depend on it (a point depends only on its row; ties go to the first point).
IN_MEMORY_CHUNK_POINTS = 1 << 19


#: Fewest rows of a default chunk of a scan kept in memory: 16 blocks of 64 rows, so that
#: the threads, claiming fewer blocks as the end nears, finish a chunk within one block of
#: each other (:func:`mcscan.stats._jit.run_blocks`).  Rows of 2001 points took chunks of
#: 256 rows, four blocks: 1024 rows ran the 2001^2 scan 1.056 and 1.070 times as fast,
#: 1001^2 (one chunk) 1.033 (12 alternated runs each, Zen 3 pair).  A chunk in memory is a
#: view of the result grids, so no bound on its points.
IN_MEMORY_CHUNK_ROWS = 1024


def default_chunk_points(shape, want=None, in_memory=False) -> int:
    """Points per chunk: whole rows (1D: whole segments of SEGMENT points), whole planes of
    the last two axes when a chunk holds one; by default about 1/32 of the grid and at
    least :data:`MIN_CHUNK_ROWS` rows, between 16384 and :data:`MAX_CHUNK_POINTS` points;
    ``in_memory``: at least :data:`IN_MEMORY_CHUNK_POINTS` points, rounded down to whole
    groups of :data:`MIN_CHUNK_ROWS` rows, and at least :data:`IN_MEMORY_CHUNK_ROWS` rows,
    without an upper bound."""
    shape = tuple(int(s) for s in shape)
    n = math.prod(shape)
    if want is None:
        want = max(n // 32, 1 << 14)
        if len(shape) >= 2:
            group = MIN_CHUNK_ROWS * shape[-1]
            want = max(want, group)
            if in_memory:
                # whole groups of MIN_CHUNK_ROWS rows: 262 rows of 2001 (2^19 points) made
                # five blocks of 64 rows, one nearly empty, and ran 0.79 times as fast
                want = max(want, IN_MEMORY_CHUNK_POINTS // group * group,
                           IN_MEMORY_CHUNK_ROWS * shape[-1])
        elif in_memory:
            want = max(want, IN_MEMORY_CHUNK_POINTS)
        if not in_memory:
            want = min(want, MAX_CHUNK_POINTS)
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
    ``pulls``: the chunk also returns each detector's profiled pulls.
    """

    coefs: tuple
    grid: Grid
    chunk_points: int
    settings: ScanSettings = field(default_factory=ScanSettings)
    parallel: bool = True
    pulls: bool = False

    @property
    def n_chunks(self) -> int:
        return -(-self.grid.size // self.chunk_points)


def chunk_bounds(k: int, task: ChunkTask) -> tuple:
    """Flat grid indices [lo, hi) of chunk ``k``."""
    lo = int(k) * task.chunk_points
    return lo, min(task.grid.size, lo + task.chunk_points)


def _chunk_names(detectors, pulls: bool) -> list:
    names = ["chi2", "converged"]
    if pulls:
        for d in detectors:
            names += [f"pull_signal_{d}", f"pull_background_{d}"]
    return names


def compute_chunk(k: int, task: ChunkTask, out: dict | None = None) -> dict:
    """chi2 (float64), converged (int8) and, with ``task.pulls``, ``pull_signal_<det>`` and
    ``pull_background_<det>`` (float64) of chunk ``k``, flat in C order.

    A pure function of ``(k, task)``: whatever process runs it, the bits are the same.
    ``out``: those arrays to fill (flat, of the chunk's size; an in-memory scan passes
    views of its result grids), else new ones; returned.
    """
    from ..stats.kernels import plan_lockstep
    from .backends import resolve_coefficients

    coefs = resolve_coefficients(task.coefs)
    g = task.grid
    shape = g.shape
    lo, hi = chunk_bounds(k, task)
    if not 0 <= lo < hi:
        raise InputError(f"chunk {k} outside the grid ({task.n_chunks} chunks)")
    # the whole scan, in every process that runs a chunk of it: a large one runs on the
    # lockstep kernel from its first chunk on, never on the one-row kernel standing in
    plan_lockstep(g.size * len(coefs))
    inner = g.params[-2:]
    others = {p: float(g.base[j]) for j, p in enumerate(g.names) if p not in inner}
    names = _chunk_names([c.detector for c in coefs], task.pulls)
    if out is None:
        out = {name: np.empty(hi - lo, dtype=np.int8 if name == "converged" else float)
               for name in names}
    elif sorted(out) != sorted(names) or any(
            out[n].shape != (hi - lo,) or not out[n].flags.c_contiguous
            or out[n].dtype != (np.int8 if n == "converged" else np.float64) for n in names):
        raise ValueError(f"out must hold {', '.join(names)}: contiguous arrays of the chunk's "
                         f"{hi - lo} points (converged int8, the others float64)")
    if len(shape) == 1:
        line_scan = grid_scan
        if g.families:
            from .families import family_grid_scan as line_scan
        sc = line_scan(coefs, g.params, (g.axes[0][lo:hi],), fixed=others, settings=task.settings,
                       parallel=task.parallel)
        out["chi2"][:] = sc.chi2
        out["converged"][:] = sc.converged
        if task.pulls:
            for d, (a, b) in sc.pulls.items():
                out[f"pull_signal_{d}"][:] = a
                out[f"pull_background_{d}"][:] = b
        return out
    # 2 or more axes: the kernel writes straight into ``out`` (the bits of a grid_scan of
    # each plane, without a grid_scan's own result arrays and the copy out of them)
    ny = shape[-1]
    r0, r1 = lo // ny, hi // ny
    if g.families:
        _family_planes(coefs, g, r0, r1, others, task, out)
        return out
    _planes(coefs, g, r0, r1, task, out)
    return out


def _family_planes(coefs, g, r0: int, r1: int, others: dict, task, out) -> None:
    """Rows r0 .. r1 - 1 of an N-D grid (N >= 2) over the parameter families, across as
    many planes of the last two parameters as they touch, in ONE kernel call per
    detector, as :func:`_planes`.  Each plane has its own row polynomial, those of a
    chunk's planes formed at once (:func:`mcscan.stats.families.row_polynomials` at the
    planes' outer values: each the same bits as the one a
    :func:`mcscan.scans.families.family_grid_scan` of the plane forms): a cross term
    between an outer and an inner parameter of one flavour changes the inner linear
    coefficients from plane to plane, so E0, cx1 and cy1 go to the kernel per plane.
    With three axes the bits equal one ``family_grid_scan`` of each whole plane; from
    :data:`VECTOR_START_DIMS` axes on, the first points of each row take damped steps
    in the vector loop, as for charges (the same numbers to the convergence tolerance)."""
    from ..stats.families import row_polynomials
    from ..stats.kernels import row_lanes
    from ..stats.kernels_families import chi2_rows_poly
    from .families import _origin, base_vector

    lay = _plane_rows(g, r0, r1)
    ix, iy = (check_any_param(p) for p in g.params[-2:])
    origin = _origin(coefs)
    # each plane's full parameter vector (base_vector with the plane's outer values)
    bases = _plane_bases(g, lay, base_vector(coefs, others), check_any_param)
    # the offsets from the SM point, as family_grid_scan takes them
    xs = (g.axes[-2] - origin[ix])[lay.rows[lay.seg_row] % g.shape[-2]]
    ys = g.axes[-1] - origin[iy]
    lanes = row_lanes(lay.seg_row.size)
    par = task.parallel and lay.seg_row.size > 1
    for k, (c, dest) in enumerate(zip(coefs, _plane_outputs(task, out, coefs))):
        E0, cx1, cx2, cy1, cy2, cxy = row_polynomials(c, bases, ix, iy)
        chi2_rows_poly(c.S, c.B, c.D, (E0, cx1, cx2, cy1, cy2, cxy), xs, ys, lay.y0, lay.cnt,
                       lay.o0, out=dest, accumulate=k > 0, base_rows=lay.base_rows, parallel=par,
                       lanes=lanes, vector_start=len(g.shape) >= VECTOR_START_DIMS,
                       **task.settings.kwargs())
    _check_finite(out, r0 * g.shape[-1], g)


#: From this many scanned parameters on (charges or families), the first points of each
#: row take shortened Newton steps in the kernel's vector loop (``vector_start`` of
#: :func:`mcscan.stats.kernels.chi2_rows`): rows are short, so those points weigh.  Fewer
#: parameters keep the bits of grid_scan and family_grid_scan (and of earlier versions).
VECTOR_START_DIMS = 4


@dataclass(frozen=True)
class _Rows:
    """The row layout of rows r0 .. r1 - 1 of an N-D grid: the planes they touch (flat
    indices of the outer axes, and per outer axis its index in each plane), the rows,
    their segments (:func:`mcscan.scans.grid.row_segments`) and each segment's plane."""

    planes: np.ndarray
    outer: tuple
    rows: np.ndarray
    seg_row: np.ndarray
    y0: np.ndarray
    cnt: np.ndarray
    o0: np.ndarray
    base_rows: np.ndarray


def _plane_rows(g, r0: int, r1: int) -> _Rows:
    from .grid import row_segments

    nx, ny = g.shape[-2], g.shape[-1]
    planes = np.arange(r0 // nx, (r1 - 1) // nx + 1)
    rows = np.arange(r0, r1, dtype=np.int64)
    seg_row, y0, cnt, o0 = row_segments(rows.size, ny)
    outer = np.unravel_index(planes, g.shape[:-2]) if len(g.shape) > 2 else ()
    return _Rows(planes, outer, rows, seg_row, y0, cnt, o0, rows[seg_row] // nx - planes[0])


def _plane_bases(g, lay: _Rows, base, index) -> np.ndarray:
    """(planes, len(base)): ``base`` with the outer parameters at each plane's values of
    the layout ``lay`` (``index(p)``: parameter p's position in ``base``)."""
    bases = np.repeat(np.asarray(base, dtype=float)[None, :], lay.planes.size, axis=0)
    for p, ax, i in zip(g.params[:-2], g.axes[:-2], lay.outer):
        bases[:, index(p)] = ax[i]
    return bases


def _plane_outputs(task, out, coefs) -> list:
    """(chi2, a, b, ok) per detector for a row kernel writing straight into a chunk's
    arrays (flags as bool, 0 or 1); the pulls into one pair of scratch arrays when the
    scan keeps none."""
    chi2, ok = out["chi2"], out["converged"].view(np.bool_)
    if not task.pulls:
        return [(chi2, np.empty(chi2.size), np.empty(chi2.size), ok)] * len(coefs)
    return [(chi2, out[f"pull_signal_{c.detector}"], out[f"pull_background_{c.detector}"], ok)
            for c in coefs]


def _planes(coefs, g, r0: int, r1: int, task, out) -> None:
    """Rows r0 .. r1 - 1 of an N-D grid (N >= 2), across as many planes of the last two
    charges as they touch, in ONE kernel call per detector: each plane's fixed
    charges are a base point of :func:`mcscan.stats.kernels.chi2_rows` and every row
    names its plane.  A point depends only on its row segment, so the bits equal a
    :func:`grid_scan` per plane; no Python runs per plane."""
    from ..stats.kernels import chi2_rows, row_lanes

    lay = _plane_rows(g, r0, r1)
    ix, iy = (check_param(p) for p in g.params[-2:])
    bases = _plane_bases(g, lay, g.base, check_param)
    xs = g.axes[-2][lay.rows[lay.seg_row] % g.shape[-2]]
    lanes = row_lanes(lay.seg_row.size)
    par = task.parallel and lay.seg_row.size > 1
    for k, (c, dest) in enumerate(zip(coefs, _plane_outputs(task, out, coefs))):
        chi2_rows(c, bases, ix, iy, xs, g.axes[-1], lay.y0, lay.cnt, lay.o0, out=dest,
                  accumulate=k > 0, base_rows=lay.base_rows, parallel=par, lanes=lanes,
                  vector_start=len(g.shape) >= VECTOR_START_DIMS, **task.settings.kwargs())
    _check_finite(out, r0 * g.shape[-1], g)


def scan_spec(coefs, grid: Grid, settings, chunk_points, pulls: bool) -> dict:
    """What identifies a scan for ``resume``: everything its numbers depend on."""
    import hashlib

    from .. import __version__

    h = hashlib.sha256()
    for a in grid.axes:
        h.update(np.ascontiguousarray(a, dtype=float).tobytes())
    # the counts the model is compared with (observed data, or the Asimov S + B)
    d = hashlib.sha256()
    for c in coefs:
        d.update(np.ascontiguousarray(c.D, dtype=float).tobytes())
    return {
        "kind": "scan", "params": list(grid.params), "shape": list(grid.shape),
        "axes_sha256": h.hexdigest(), "fixed": [float(v) for v in grid.base],
        "detectors": [c.detector for c in coefs], "channels": list(coefs[0].channels),
        "table_hashes": [c.table_hash for c in coefs], "data_sha256": d.hexdigest(),
        "settings": {"signal_pull": settings.signal_pull, "background_pull": settings.background_pull,
                     "tol": settings.tol, "max_iter": settings.max_iter},
        "chunk_points": int(chunk_points), "segment": SEGMENT, "pulls": bool(pulls),
        "mcscan_version": __version__,
    }


# ----------------------------------------------------------------- projections

@register
@dataclass(frozen=True)
class Projection:
    """A profiled or fixed projection of a grid scan onto one or two charges.

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


@dataclass(frozen=True)
class ScanResult(Result):
    """A grid scan of the profiled chi2 over 1 to 6 charges, or 1 to 6 parameters of any
    family (see :func:`mcscan.scans.engine.scan`; ``base`` is then the full parameter vector).

    ``chi2``, ``converged`` and the ``pulls`` arrays have the grid's shape; they
    are NumPy arrays for a scan kept in memory, lazy file-backed arrays
    (``numpy.asarray(x)`` reads them, ``x[i]`` reads a slice) for a scan
    written to or read from a file.  ``pulls`` is {detector: (signal pull,
    background pull)} or empty when not stored.
    """

    kind = "scan"

    params: tuple
    axes: tuple
    base: np.ndarray
    detectors: tuple
    channels: tuple
    table_hashes: tuple
    settings: object
    chi2: object
    converged: object
    pulls: dict
    chi2_min: float
    argmin: dict
    unconverged: int
    projections: dict                  # (kind, name) -> Projection
    path: str | None = None
    chunk_points: int = 0
    chunks: int = 0
    resumed_chunks: int = 0
    compute_time_s: float = 0.0
    compile_time_s: float = 0.0        # of compute_time_s: numba compiling or loading kernels
    wall_time_s: float = 0.0
    backend: dict = field(default_factory=dict)
    notes: tuple = ()                  # one line per recomputed chunk of a resumed scan

    @property
    def shape(self) -> tuple:
        return tuple(int(a.size) for a in self.axes)

    @property
    def points(self) -> int:
        return math.prod(self.shape)

    @property
    def fixed(self) -> dict:
        """The charges (or, for a scan over the parameter families, every parameter)
        that were not scanned, {name: value in its unit}."""
        return {p: float(v) for p, v in zip(ALL_PARAMS, self.base) if p not in self.params}

    @property
    def delta_chi2(self) -> np.ndarray:
        """chi2 - chi2_min over the whole grid (reads a file-backed grid whole)."""
        return np.asarray(self.chi2) - self.chi2_min

    @property
    def points_per_second(self) -> float | None:
        """Grid points computed (resumed chunks excluded) per second of the compute phase,
        the time numba spent compiling or loading the kernels in this process
        (``compile_time_s``) left out."""
        done = self.points * (self.chunks - self.resumed_chunks) / max(self.chunks, 1)
        busy = self.compute_time_s - self.compile_time_s
        return done / busy if busy > 0 else None

    def to_json(self, cl: float = 0.90) -> dict:
        """JSON summary.  1-D projections come with their allowed intervals at ``cl``;
        these are grid estimates (an end point lies between two grid points, the
        midpoint is given), marked ``"grid_estimate": true`` with ``"grid_step"`` (in the
        parameter's unit).  ``"unit"``: the unit of the scanned parameters (params.py), or
        {param: unit} when they differ; a scan over the families adds ``"units"`` {param: unit}."""
        level = delta_chi2_level(cl, 1)
        proj = {}
        for (kind, name), pr in self.projections.items():
            d = {"kind": kind, "params": list(pr.params), "chi2_min": _num(pr.chi2_min)}
            if len(pr.params) == 1:
                ax = np.asarray(pr.axes[0])
                regions, lo_open, hi_open = allowed_intervals(ax, pr.delta_chi2, level)
                step = float(np.max(np.diff(ax))) if ax.size > 1 else 0.0
                d.update({"cl": cl, "delta_chi2": level, "regions": regions, "open_low": lo_open,
                          "open_high": hi_open, "grid_estimate": True, "grid_step": step})
            if pr.at:
                d["at"] = dict(pr.at)
            proj[f"{kind}/{name}"] = d
        units = _units(self.params)
        unit = next(iter(units.values())) if len(set(units.values())) == 1 else units
        more = {} if len(self.base) == len(PARAMS) else {"units": units}
        return {"params": list(self.params), "shape": list(self.shape), "points": self.points,
                "detectors": list(self.detectors), "channels": list(self.channels),
                "table_hashes": list(self.table_hashes), "unit": unit, **more,
                "fixed": self.fixed, "chi2_min": float(self.chi2_min), "argmin": dict(self.argmin),
                "unconverged": int(self.unconverged), "pulls": sorted(self.pulls),
                "chunks": int(self.chunks), "resumed_chunks": int(self.resumed_chunks),
                "compute_time_s": float(self.compute_time_s),
                "compile_time_s": float(self.compile_time_s), "wall_time_s": float(self.wall_time_s),
                "points_per_second": self.points_per_second, "backend": dict(self.backend),
                "projections": proj}



def _kind_of(params) -> tuple:
    """("charge", check_param) for a scan of charges only, else ("parameter", check_any_param)."""
    if all(p in PARAMS for p in params):
        return "charge", check_param
    return "parameter", check_any_param


def _units(params) -> dict:
    """{param: unit} (params.py) of ``params``."""
    return {p: SPEC[p].unit for p in params}


def _num(x):
    """A float for JSON: None for +-inf (a slice where every point is excluded)."""
    x = float(x)
    return x if math.isfinite(x) else None


def parse_projections(items, params) -> list:
    """Projections as tuples of scanned charges: each item a name, 'p0,p1', or a sequence.

    Default (``items`` empty or None): every scanned charge alone."""
    params = tuple(params)
    if not items:
        return [(p,) for p in params]
    what, check = _kind_of(params)
    out = []
    for it in items:
        names = tuple(s.strip() for s in it.split(",")) if isinstance(it, str) else tuple(it)
        if not 1 <= len(names) <= 2:
            raise InputError(f"projection {','.join(names)!r}: expected one or two {what}s")
        for p in names:
            check(p)
            if p not in params:
                raise InputError(f"projection onto {p}: not a scanned {what} "
                                 f"(scanned: {', '.join(params)})")
        if len(set(names)) != len(names):
            raise InputError(f"projection {','.join(names)!r}: the {what}s must differ")
        if names not in out:
            out.append(names)
    return out


class _ChunkRows:
    """One chunk as rows of the last axis, shared by every projector (and the global
    minimum) of :func:`_assemble`.

    ``vals``/``oks`` (nrows, ncols): row r, column c is grid point ``row_idx[.][r]``
    (indices of axes 0..N-2) x ``cols[c]`` (axis N-1), flat index ``row_flat[r] +
    cols[c]``.  The rows of a chunk are the rows ``r0 .. r1 - 1`` in the flat order of
    axes 0..N-2 (a 1D scan: one row, ``cols`` the chunk's flat indices)."""

    def __init__(self, k: int, task: ChunkTask, chi2: np.ndarray, ok: np.ndarray):
        shape = task.grid.shape
        lo, hi = chunk_bounds(k, task)
        if len(shape) == 1:
            self.r0, self.r1 = 0, 1
            self.row_idx = ()
            self.row_flat = np.zeros(1, dtype=np.int64)
            self.cols = np.arange(lo, hi, dtype=np.int64)
        else:
            ny = shape[-1]
            self.r0, self.r1 = lo // ny, hi // ny
            rows = np.arange(self.r0, self.r1, dtype=np.int64)
            self.row_idx = np.unravel_index(rows, shape[:-1])
            self.row_flat = rows * ny
            self.cols = np.arange(ny, dtype=np.int64)
        self.vals = chi2.reshape(self.row_flat.size, self.cols.size)
        self.oks = ok.reshape(self.vals.shape)
        self._best = None

    def row_best(self) -> tuple:
        """(chi2, flat index) of each row's first minimum; computed once per chunk."""
        if self._best is None:
            j = np.argmin(self.vals, axis=1)
            self._best = (np.take_along_axis(self.vals, j[:, None], axis=1)[:, 0],
                          self.row_flat + self.cols[j])
        return self._best

    def minimum(self) -> tuple:
        """(chi2, flat index) of the chunk's first minimum in flat order."""
        v, flat = self.row_best()
        r = int(np.argmin(v))
        return float(v[r]), int(flat[r])


def _column_argmin(w: np.ndarray, block: int = 1 << 16) -> np.ndarray:
    """``np.argmin(w, axis=0)`` for ``w`` (nrows, k) without NaN, a block of rows at a time:
    argmin along axis 0 copies its array (8 bytes a point, 16 MB for a chunk of 1024 rows
    of 2001 points), a block at most ``block`` values.  A later block replaces a column's
    row only with a strictly smaller value, so the first minimum still wins."""
    n, k = w.shape
    step = max(1, block // max(k, 1))
    cols = np.arange(k)
    best = np.argmin(w[:step], axis=0)
    val = w[best, cols]
    for r0 in range(step, n, step):
        i = np.argmin(w[r0:r0 + step], axis=0) + r0
        v = w[i, cols]
        better = v < val
        best[better] = i[better]
        val[better] = v[better]
    return best


def _first_minima(w: np.ndarray, g):
    """The first row holding each group's minimum, per column of ``w`` (nrows, k).

    ``g`` (nrows,) names each row's group (any order), or None for one group.  Returns
    (the groups in increasing order, (ngroups, k) row indices into ``w``): of the rows
    of a group whose value in a column equals the group's minimum there, the first.
    A stable sort keeps the rows of a group in order; ``np.minimum.reduceat`` takes
    the minima and then the first row position reaching them."""
    n = w.shape[0]
    if g is None:
        return None, _column_argmin(w)[None, :]
    order = None
    if n > 1 and np.any(g[1:] < g[:-1]):
        order = np.argsort(g, kind="stable")
        g, w = g[order], w[order]
    starts = np.flatnonzero(np.concatenate(([True], g[1:] != g[:-1])))
    if starts.size == n:                    # every row a group of its own
        first = np.broadcast_to(np.arange(n)[:, None], w.shape)
        return g, (first if order is None else order[first])
    mins = np.minimum.reduceat(w, starts, axis=0)
    cnt = np.diff(np.append(starts, n))
    pos = np.where(w == np.repeat(mins, cnt, axis=0), np.arange(n)[:, None], n)
    first = np.minimum.reduceat(pos, starts, axis=0)
    return g[starts], (first if order is None else order[first])


class _Projector:
    """Profiled minimum and fixed slice onto ``dims``, updated chunk by chunk in order.

    The profiled minimum of a projected point is the chi2 at its first grid point in
    flat (C) order reaching the minimum over the other scanned charges; a later chunk
    replaces it only with a strictly smaller value (earlier chunks win ties).
    Projections without the last axis fold each row's first minimum
    (:meth:`_ChunkRows.row_best`, shared); the others fold whole columns.  Rows are
    grouped by their projected indices with :func:`_first_minima` (a stable sort and
    ``np.minimum.reduceat``)."""

    def __init__(self, grid: Grid, dims: tuple, at_idx: tuple):
        self.grid, self.dims, self.at_idx = grid, dims, at_idx
        self.pshape = tuple(grid.shape[d] for d in dims)
        m = math.prod(self.pshape)
        self.pmin = np.full(m, np.inf)
        self.parg = np.full(m, -1, dtype=np.int64)
        self.fixed = np.full(m, np.nan)
        self.fixed_ok = np.zeros(m, dtype=np.int8)
        self.others = [d for d in range(len(grid.shape)) if d not in dims]
        stride = np.cumprod((self.pshape + (1,))[:0:-1])[::-1]
        self.stride = dict(zip(dims, (int(s) for s in stride)))
        self.last = last = len(grid.shape) - 1
        # the rows (flat over axes 0..N-2, increasing) on the fixed slice and their
        # offsets in the projection
        if last == 0:
            self.fixed_rows = self.fixed_off = np.zeros(1, dtype=np.int64)
        else:
            idx = np.meshgrid(*[np.arange(grid.shape[d]) if d in dims else np.array([at_idx[d]])
                                for d in range(last)], indexing="ij")
            self.fixed_rows = np.ravel_multi_index(idx, grid.shape[:-1]).ravel()
            self.fixed_off = sum((idx[d] * self.stride[d] for d in dims if d != last),
                                 np.zeros_like(idx[0])).ravel()

    def _offsets(self, rows: _ChunkRows):
        """Each row's flat offset in the projection (the projected axes among 0..N-2),
        or None when no axis of the projection is among them."""
        off = None
        for d in self.dims:
            if d != self.last:
                t = rows.row_idx[d] * self.stride[d]
                off = t if off is None else off + t
        return off

    def add(self, rows: _ChunkRows) -> None:
        """Fold in one chunk (:class:`_ChunkRows`)."""
        last = self.last
        g = self._offsets(rows)
        if last in self.dims:
            w = rows.vals
            groups, first = _first_minima(w, g)
            col = rows.cols * self.stride[last]
            tgt = col[None, :] if groups is None else groups[:, None] + col[None, :]
            val = np.take_along_axis(w, first, axis=0)
            flat = rows.row_flat[first] + rows.cols[None, :]
        else:
            v, f = rows.row_best()
            groups, first = _first_minima(v[:, None], g)
            first = first[:, 0]
            tgt, val, flat = groups, v[first], f[first]
        tgt, val, flat = tgt.ravel(), val.ravel(), flat.ravel()
        # ties: the earlier chunk wins; the first chunk reaching a projected point takes
        # it even at +inf (a point that is +inf everywhere profiles to its first point)
        better = (val < self.pmin[tgt]) | (self.parg[tgt] < 0)
        if not better.all():
            tgt, val, flat = tgt[better], val[better], flat[better]
        self.pmin[tgt] = val
        self.parg[tgt] = flat
        self._add_fixed(rows)

    def _add_fixed(self, rows: _ChunkRows) -> None:
        """The fixed slice: the chunk's rows among ``fixed_rows``."""
        a, b = np.searchsorted(self.fixed_rows, (rows.r0, rows.r1))
        if a == b:
            return
        local, off = self.fixed_rows[a:b] - rows.r0, self.fixed_off[a:b]
        if self.last not in self.dims:
            c = self.at_idx[self.last]
            self.fixed[off] = rows.vals[local, c]
            self.fixed_ok[off] = rows.oks[local, c]
        else:
            gi = (off[:, None] + rows.cols * self.stride[self.last]).ravel()
            self.fixed[gi] = rows.vals[local].ravel()
            self.fixed_ok[gi] = rows.oks[local].ravel()

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


# ------------------------------------------------------------------- the scan

class _MemorySink:
    """The grids of an in-memory scan (same face as :class:`mcscan.io.results.ScanWriter`)."""

    def __init__(self, shape, detectors, pulls: bool):
        self.arrays = {"chi2": np.empty(shape), "converged": np.empty(shape, dtype=np.int8)}
        if pulls:
            for d in detectors:
                self.arrays[f"pulls/{d}/signal"] = np.empty(shape)
                self.arrays[f"pulls/{d}/background"] = np.empty(shape)

    def put(self, name, index, values):
        self.arrays[name][index] = values


def _sink_name(chunk_name: str) -> str:
    for which in ("signal", "background"):
        pre = f"pull_{which}_"
        if chunk_name.startswith(pre):
            return f"pulls/{chunk_name[len(pre):]}/{which}"
    return chunk_name


def _point(grid: Grid, flat: int) -> str:
    """The grid point ``flat`` as text; over the families every value with its unit."""
    idx = np.unravel_index(int(flat), grid.shape)
    unit = (lambda p: f" {SPEC[p].unit}" if SPEC[p].unit != "1" else "") if grid.families else (
        lambda p: "")
    return ", ".join(f"{p} = {float(a[i]):.6g}{unit(p)}"
                     for p, a, i in zip(grid.params, grid.axes, idx))


def _tail(grid: Grid) -> str:
    """The unit after a charge point (" e"); a family point carries its units."""
    return "" if grid.families else " e"


def _check_finite(arrays: dict, lo: int, grid: Grid) -> None:
    """Refuse a NaN chi2 (naming the first point); +inf is a value (a dead bin under data)."""
    v = arrays["chi2"]
    bad = np.isnan(v)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise InputError(f"chi2 is nan (not a number) at {_point(grid, lo + j)}{_tail(grid)} "
                         f"({int(bad.sum())} point(s) of this chunk): the tables or the charges give "
                         "numbers beyond double precision; check the tables and narrow the scanned range")


def _chunk_in_place(flat: dict, k: int, task: ChunkTask) -> dict:
    """:func:`compute_chunk` into the chunk's range of the flat result grids ``flat``
    ({chunk array name: flat view of the grid})."""
    lo, hi = chunk_bounds(k, task)
    return compute_chunk(k, task, out={n: a[lo:hi] for n, a in flat.items()})


class _Fold:
    """The minimum, the count of unconverged points and the projections of a scan, folded
    chunk by chunk in the order of the chunks (a later chunk replaces the minimum only
    with a strictly smaller value: the first minimum in flat order wins)."""

    def __init__(self, task: ChunkTask, projectors):
        self.task, self.projectors = task, projectors
        self.best, self.where, self.bad = np.inf, -1, 0

    def add(self, k: int, v: np.ndarray, ok: np.ndarray) -> None:
        """Fold in chunk ``k`` (its chi2 ``v`` and convergence flags ``ok``)."""
        rows = _ChunkRows(k, self.task, v, ok)
        m, j = rows.minimum()
        if m < self.best:
            self.best, self.where = m, j
        self.bad += ok.size - int(np.count_nonzero(ok))
        for pj in self.projectors:
            pj.add(rows)

    def result(self) -> dict:
        """chi2_min, argmin, unconverged and projections, once every chunk is in."""
        grid = self.task.grid
        if self.where < 0:
            raise InputError(f"chi2 is +inf at every point of the grid ({_point(grid, 0)} to "
                             f"{_point(grid, grid.size - 1)}{_tail(grid)}): no minimum; choose "
                             "another range")
        at = np.unravel_index(self.where, grid.shape)
        argmin = {p: float(a[i]) for p, a, i in zip(grid.params, grid.axes, at)}
        proj = {}
        for pj in self.projectors:
            for pr in pj.results(self.best):
                proj[(pr.kind, pr.name)] = pr
        return {"chi2_min": self.best, "argmin": argmin, "unconverged": self.bad,
                "projections": proj}


def _assemble(sink, task: ChunkTask, store, projectors, names) -> dict:
    """Fill ``sink`` from the stored chunks, in order; fold the minimum and projections
    (:class:`_Fold`)."""
    from ..errors import ResultsError
    from ..io.chunks import read_ahead
    from ..io.h5 import flat_boxes

    grid = task.grid
    shape = grid.shape
    fold = _Fold(task, projectors)
    for k, c in read_ahead(store, range(task.n_chunks)):
        lo, hi = chunk_bounds(k, task)
        for name in names:
            if c[name].shape != (hi - lo,):
                raise ResultsError(f"stored chunk {k} of {str(store.folder)!r} has the wrong size: "
                                   "resume=True recomputes it")
        if store.folder is not None:
            # chunks read back from files (resumed ones among them); a chunk kept in
            # memory was checked when it was computed
            _check_finite(c, lo, grid)
        for index, f0, f1 in flat_boxes(lo, hi, shape):
            bs = tuple(len(range(*ix.indices(n))) for ix, n in zip(index, shape) if isinstance(ix, slice))
            for name in names:
                sink.put(_sink_name(name), index, c[name][f0 - lo:f1 - lo].reshape(bs))
        fold.add(k, c["chi2"], c["converged"])
    return fold.result()


class _FoldBehind:
    """Fold each chunk of an in-place scan (:class:`_Fold`) on a second thread while the
    next one is computed: the fold is NumPy on one core (a tenth of the bench's 5D scan),
    the kernel runs on every core meanwhile.  Chunks are folded in the order of their
    indices, one at a time, whatever order :meth:`add` sees them in; a fold that fails
    is raised by a later :meth:`add` or on leaving the ``with`` block, which waits for the
    fold in flight and drops the ones not started."""

    def __init__(self, fold: _Fold):
        self.fold = fold
        self._next = 0
        self._held = {}
        self._pending = []

    def __enter__(self):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="mcscan-fold")
        return self

    def add(self, k: int, arrays: dict) -> None:
        self._held[k] = arrays
        while self._next in self._held:
            c = self._held.pop(self._next)
            self._pending.append(self._pool.submit(self.fold.add, self._next, c["chi2"],
                                                   c["converged"]))
            self._next += 1
        while self._pending and self._pending[0].done():
            self._pending.pop(0).result()

    def __exit__(self, et, ev, tb):
        try:
            if et is None:
                for f in self._pending:
                    f.result()
                if self._held or self._next != self.fold.task.n_chunks:
                    raise RuntimeError(f"chunks {sorted(self._held)} of {self.fold.task.n_chunks} "
                                       "were not folded in order")
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
        return False


def _check_budgets(grid, ndet, pulls, chunk_points, path, max_memory_gib, max_disk_gib,
                   in_place=False):
    from .. import budget

    per_point = 9.0 + (16.0 * ndet if pulls else 0.0)
    chunk = budget.grid_memory_bytes(chunk_points, per_point, 3)
    if path is None:
        # the result grids, and the chunks until they are copied in (unless computed in place)
        copies = 1 if in_place else 2
        budget.check_memory("scan", budget.grid_memory_bytes(grid.size, per_point, copies) + chunk,
                            max_memory_gib)
    else:
        # one more chunk: the one stored while the next is computed (WriteBehind)
        budget.check_memory("scan", chunk + budget.grid_memory_bytes(chunk_points, per_point),
                            max_memory_gib)
        # the stored chunks and the results file coexist until the file is verified
        budget.check_disk("scan", budget.grid_memory_bytes(grid.size, per_point, 2), max_disk_gib)


def scan(coefs, params, axes, path=None, *, fixed=None, at=None, projections=None,
         settings: ScanSettings | None = None, backend=None, resume: bool = False,
         chunk_points: int | None = None, progress: bool = False, config=None, force: bool = False,
         pulls: bool | None = None, max_memory_gib=None, max_disk_gib=None,
         max_points=None) -> ScanResult:
    """Profiled chi2 on the grid of 1 to 6 charges, in memory or streamed to ``path``.

    With the quadratic forms of every family (:class:`mcscan.stats.families.FamilyCoefficients`,
    or :class:`mcscan.scans.backends.TableRef` with ``family=True``) the same for 1 to 6
    parameters of any families (:data:`mcscan.params.ALL_PARAMS`, each in its unit):
    below, read "parameter" for "charge" and "the Standard Model value" for 0.

    Parameters
    ----------
    coefs : per detector a :class:`mcscan.stats.reference.Coefficients` or a
        :class:`mcscan.scans.backends.TableRef` (what workers load; the table folder
        must be visible to them); several detectors are combined
    params, axes : 1 to 6 charges and one increasing grid (e) each; the last
        charge varies fastest
    path : results file (kind ``scan``, see docs/results.md); None keeps the scan
        in memory (no chunk store, no resume)
    fixed : {charge: e} for charges that are not scanned (default 0)
    at : {scanned charge: e}: where the fixed projections slice the grid (the
        nearest grid point; default 0)
    projections : one or two charges each ('q_ee', 'q_ee,q_mumu' or tuples);
        default every scanned charge alone
    backend : :class:`mcscan.scans.backends.Backend` (default local); not closed here
    resume : continue an interrupted scan from ``<path>.partial/`` (any backend);
        corrupt, foreign or stray stored chunks are recomputed (``notes`` says which)
    chunk_points : points per chunk (rounded to whole rows); see :func:`default_chunk_points`
    config : the :class:`mcscan.config.Config` (or its dict) stored in the file
    force : overwrite an existing results file
    pulls : store per-detector pulls (default: for 1 and 2 charges)
    max_memory_gib, max_disk_gib, max_points : budgets (see :mod:`mcscan.budget`)

    Raises
    ------
    InputError : bad grid, charges, projections, budget, a non-finite chi2, a stored
        scan without ``resume`` or of another request
    OutputError : the results file or a chunk cannot be written
    ResultsError : a stored chunk is corrupt, foreign or stray (without ``resume``)
    """
    from .backends import LocalBackend, TableRef, family_coefficients_given, resolve_coefficients
    from ..io.chunks import ChunkStore, MemoryStore, WriteBehind

    t0 = time.perf_counter()
    from ..stats._jit import compile_clock      # imports numba: in the wall time, as before
    settings = settings or ScanSettings()
    coefs = tuple(coefs)
    families = family_coefficients_given(coefs)
    grid = None if families else make_grid(params, axes, fixed, max_points)
    if not coefs:
        raise InputError("a scan needs at least one detector")
    local = resolve_coefficients(coefs)
    if families:
        from .families import _origin

        grid = make_grid(params, axes, fixed, max_points, origin=_origin(local))
    dets = [c.detector for c in local]
    if len(set(dets)) != len(dets):
        raise InputError(f"detector given twice in {', '.join(dets)}")
    want_pulls = len(grid.params) <= 2 if pulls is None else bool(pulls)
    projs = parse_projections(projections, grid.params)
    at = dict(at or {})
    what, check = _kind_of(grid.params)
    for p, v in at.items():
        check(p)
        if p not in grid.params:
            raise InputError(f"at {p}: not a scanned {what} (scanned: {', '.join(grid.params)})")
        if not math.isfinite(float(v)):
            raise InputError(f"at {p} = {v!r}: expected a finite "
                             f"{'charge' if what == 'charge' else 'value'} in {SPEC[p].unit}")
    # default: the scanned parameter's base value (0 for a charge, else the SM point)
    at_idx = tuple(int(np.argmin(np.abs(a - float(at.get(p, grid.base[grid.names.index(p)])))))
                   for p, a in zip(grid.params, grid.axes))
    backend = backend or LocalBackend()
    in_place = path is None and isinstance(backend, LocalBackend)
    cp = default_chunk_points(grid.shape, chunk_points, in_memory=in_place)
    _check_budgets(grid, len(dets), want_pulls, cp, path, max_memory_gib, max_disk_gib, in_place)
    task = ChunkTask(coefs, grid, cp, settings, pulls=want_pulls)
    names = _chunk_names(dets, want_pulls)
    notes = []
    if path is None:
        if resume:
            raise InputError("resume needs the results file of the interrupted scan")
        store, done = MemoryStore(), set()
    else:
        from ..io.paths import check_output

        protected = [c.path for c in coefs if isinstance(c, TableRef)]
        path = check_output(path, force=force, protected=protected)
        spec = scan_spec(local, grid, settings, cp, want_pulls)
        store = ChunkStore(f"{path}.partial", spec, resume=resume, n_chunks=task.n_chunks, names=names)
        done, notes = store.check() if resume else (set(), [])
    todo = [k for k in range(task.n_chunks) if k not in done]
    t1 = time.perf_counter()
    weights = [chunk_bounds(k, task)[1] - chunk_bounds(k, task)[0] for k in todo]
    sink, fn = None, compute_chunk
    projectors = [_Projector(grid, tuple(grid.params.index(p) for p in pr), at_idx) for pr in projs]
    # in place: each chunk folded into the minimum and projections as it comes
    behind = _FoldBehind(_Fold(task, projectors)) if in_place else contextlib.nullcontext()
    if in_place:
        # chunks computed in this process go straight into the result grids: no copy
        # of every point and half the memory (their pages are first touched by the
        # kernel threads, in parallel)
        sink = _MemorySink(grid.shape, dets, want_pulls)
        fn = functools.partial(_chunk_in_place, {n: sink.arrays[_sink_name(n)].reshape(-1)
                                                 for n in names})
    try:
        with WriteBehind(store) as writer, compile_clock() as numba_time, behind:
            for k, arrays in backend.map(fn, todo, args=(task,), progress=progress,
                                         desc="scan " + " x ".join(grid.params), weights=weights,
                                         unit="pt"):
                _check_finite(arrays, chunk_bounds(k, task)[0], grid)
                if in_place:
                    behind.add(k, arrays)       # views of the result grids: nothing to store
                else:
                    writer.write(k, arrays)
    except InputError:
        # the request itself is bad (a non-finite chi2): a fresh store is of no use
        if path is not None and not done:
            store.remove()
        raise
    compute = time.perf_counter() - t1
    meta = dict(params=grid.params, axes=grid.axes, base=grid.base, detectors=tuple(dets),
                channels=tuple(local[0].channels), table_hashes=tuple(c.table_hash for c in local),
                settings=settings, chunk_points=cp, chunks=task.n_chunks, resumed_chunks=len(done),
                compute_time_s=compute, compile_time_s=min(numba_time.seconds, compute),
                backend=backend.describe(), notes=tuple(notes))
    if path is None:
        if in_place:
            s = behind.fold.result()
        else:
            sink = _MemorySink(grid.shape, dets, want_pulls)
            s = _assemble(sink, task, store, projectors, names)
        a = sink.arrays
        pl = {d: (a[f"pulls/{d}/signal"], a[f"pulls/{d}/background"]) for d in dets} if want_pulls else {}
        return ScanResult(chi2=a["chi2"], converged=a["converged"], pulls=pl, path=None,
                          wall_time_s=time.perf_counter() - t0, **s, **meta)
    from ..io.results import open_scan_unverified, stream_scan

    with stream_scan(path, grid.shape, dets, want_pulls, config=config, force=force) as w:
        s = _assemble(w, task, store, projectors, names)
        marker = {d: (None, None) for d in dets} if want_pulls else {}
        w.finish(ScanResult(chi2=None, converged=None, pulls=marker, path=str(path),
                            wall_time_s=time.perf_counter() - t0, **s, **meta))
    # the results file is in place and verified: the chunks may go
    store.remove()
    return open_scan_unverified(path)
