"""Grid scans of the profiled chi2 over one or two charges.

A scan evaluates, for every detector, the chi2 profiled over that
detector's two pulls, and sums the detectors (independent pulls).  The grid
goes to the row kernel :func:`mcscan.stats.kernels.chi2_rows` in chunks of whole
rows, with a progress bar per scan.

Rows and blocks: a 2D grid (x along axis 0, y along axis 1) is cut into
rows of fixed x; every row is cut into segments of at most :data:`SEGMENT`
points (a 1D scan is a single row of y).  A segment is the unit of work:
its points are profiled in order, each warm-started from the previous ones,
and nothing else influences them.  The results therefore do not depend on
the number of threads, on ``chunk`` or on serial versus parallel builds, and
any set of segments can be computed elsewhere (another process, another
machine) and give the same bits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from ..params import PARAMS, check_param
from ..errors import InputError
from ..stats.kernels import chi2_points, chi2_rows
from ..stats.reference import chi2 as chi2_numpy

__all__ = [
    "MAX_POINTS",
    "SEGMENT",
    "Scan",
    "ScanSettings",
    "base_point",
    "check_param",
    "chi2_function",
    "grid_scan",
    "row_segments",
    "scan_spec",
    "scan_to_file",
]

#: Largest number of grid points one scan accepts.
MAX_POINTS = 200_000_000
#: Most points per row segment (the unit of work, see the module docstring).
SEGMENT = 4096


@dataclass(frozen=True)
class ScanSettings:
    """Statistical and numerical settings shared by every scan."""

    signal_pull: float = 0.10
    background_pull: float = 0.01
    tol: float = 1e-10
    max_iter: int = 60

    @classmethod
    def from_config(cls, config):
        return cls(config.analysis.signal_pull, config.analysis.background_pull,
                   config.numerics.newton_tol, config.numerics.newton_max_iter)

    def kwargs(self):
        return dict(signal_pull=self.signal_pull, background_pull=self.background_pull,
                    tol=self.tol, max_iter=self.max_iter)


@dataclass(frozen=True)
class Scan:
    """A finished grid scan.

    Attributes
    ----------
    params : names of the scanned charges (1 or 2)
    axes : grid values of each scanned charge, e
    base : (6,) values of all charges; scanned ones are overwritten per point
    chi2 : combined chi2, shape (len(axes[0]), [len(axes[1])])
    pulls : {detector: (a, b)} profiled pulls, same shape
    converged : bool, same shape: every detector's profile converged
    """

    params: tuple
    axes: tuple
    base: np.ndarray
    detectors: tuple
    channels: tuple
    chi2: np.ndarray
    pulls: dict
    converged: np.ndarray
    table_hashes: tuple
    settings: ScanSettings = field(default_factory=ScanSettings)

    @property
    def chi2_min(self) -> float:
        return float(np.min(self.chi2))

    @property
    def delta_chi2(self) -> np.ndarray:
        return self.chi2 - self.chi2_min


def base_point(fixed=None) -> np.ndarray:
    """(6,) charges from a {param: value} mapping (others 0), all finite."""
    theta = np.zeros(len(PARAMS))
    for k, v in (fixed or {}).items():
        v = float(v)
        if not math.isfinite(v):
            raise InputError(f"charge {k} = {v!r} is not finite: expected a finite number in units of e")
        theta[check_param(k)] = v
    return theta


def _check_axis(name, axis) -> np.ndarray:
    axis = np.asarray(axis, dtype=float)
    if axis.ndim != 1 or axis.size < 1:
        raise InputError(f"grid of {name} must be a non-empty 1D array, got shape {axis.shape}")
    if not np.all(np.isfinite(axis)):
        raise InputError(f"grid of {name} contains non-finite values: expected finite charges in e")
    if axis.size > 1 and not np.all(np.diff(axis) > 0):
        raise InputError(f"grid of {name} must increase strictly")
    return axis


def row_segments(nx: int, ny: int, segment: int = SEGMENT):
    """Row segments of an (nx, ny) grid (nx = 1 for a 1D scan), in flat C order.

    Returns
    -------
    ix, y0, cnt, o0 : (nseg,) int arrays: segment k covers the points
    (ix[k], y0[k] .. y0[k] + cnt[k] - 1), at flat indices o0[k] .. o0[k] + cnt[k] - 1.
    """
    per_row = -(-ny // segment)
    k = np.arange(nx * per_row, dtype=np.int64)
    ix, s = np.divmod(k, per_row)
    y0 = s * segment
    cnt = np.minimum(segment, ny - y0)
    return ix, y0, cnt, ix * ny + y0


def _grid(coefs, params, axes, fixed):
    """Checked scan definition: (params, indices, axes, base point, shape, points)."""
    params = tuple(params)
    if len(params) not in (1, 2) or len(params) != len(axes):
        raise InputError("a grid scan takes one or two parameters, each with one axis")
    if len(set(params)) != len(params):
        raise InputError(f"parameters must differ, got {params}")
    idx = [check_param(p) for p in params]
    axes = tuple(_check_axis(p, a) for p, a in zip(params, axes))
    base = base_point(fixed)
    shape = tuple(a.size for a in axes)
    n = int(np.prod(shape))
    if n > MAX_POINTS:
        raise InputError(f"{n} grid points requested: at most {MAX_POINTS} per scan")
    if not coefs:
        raise InputError("a scan needs at least one detector")
    return params, idx, axes, base, shape, n


def grid_scan(coefs, params, axes, *, fixed=None, settings: ScanSettings | None = None,
              chunk: int = 65536, progress: bool = False, parallel: bool = True,
              kernel: str = "rows", stats: dict | None = None) -> Scan:
    """Profiled chi2 on the grid spanned by ``axes`` over ``params``.

    Parameters
    ----------
    coefs : sequence of :class:`mcscan.stats.reference.Coefficients`, one per detector
    params : one or two parameter names
    axes : one increasing array of charges (e) per parameter
    fixed : {param: value} for the other charges (default 0)
    chunk : points per kernel call, rounded up to whole row segments and to at
        least four blocks of rows per thread; sets the progress-bar steps and
        nothing else
    kernel : "rows" (default: :func:`mcscan.stats.kernels.chi2_rows`, warm-started
        along row segments) or "points" (:func:`mcscan.stats.kernels.chi2_points`,
        every point from zero pulls; much slower, kept for comparison)
    stats : optional dict, filled with {"points", "iterations" (Newton
        iterations summed over points and detectors), "unconverged"
        (point-detector pairs), "scalar_path", "log_chi2" (points that left
        the vector loop, or needed logarithms for their chi2: kernel "rows" only)}
    """
    settings = settings or ScanSettings()
    if kernel not in ("rows", "points"):
        raise InputError(f"kernel {kernel!r}: expected 'rows' or 'points'")
    params, idx, axes, base, shape, n = _grid(coefs, params, axes, fixed)
    total = np.empty(n)
    ok = np.empty(n, dtype=bool)
    pulls = {c.detector: (np.empty(n), np.empty(n)) for c in coefs}
    count = dict(points=n, iterations=0, scalar_path=0, log_chi2=0, unconverged=0)
    bar = tqdm(total=n * len(coefs), desc="scan " + " x ".join(params), unit="pt",
               unit_scale=True, disable=not progress, leave=False)
    with bar:
        if kernel == "rows":
            _scan_rows(coefs, idx, axes, base, settings, chunk, parallel, total, ok, pulls, count,
                       bar)
        else:
            _scan_points(coefs, idx, axes, base, shape, settings, chunk, parallel, total, ok, pulls,
                         count, bar)
    if stats is not None:
        stats.update(count)
    return Scan(
        params=params, axes=axes, base=base,
        detectors=tuple(c.detector for c in coefs),
        channels=tuple(coefs[0].channels),
        chi2=total.reshape(shape),
        pulls={k: (a.reshape(shape), b.reshape(shape)) for k, (a, b) in pulls.items()},
        converged=ok.reshape(shape),
        table_hashes=tuple(c.table_hash for c in coefs),
        settings=settings,
    )


def _scan_rows(coefs, idx, axes, base, settings, chunk, parallel, total, ok, pulls, count, bar):
    from ..stats.kernels import row_lanes

    if len(idx) == 1:
        nx, ny, ix, iy, xs_axis = 1, axes[0].size, None, idx[0], np.zeros(1)
    else:
        nx, ny, ix, iy, xs_axis = axes[0].size, axes[1].size, idx[0], idx[1], axes[0]
    ys = axes[-1]
    row, y0, cnt, o0 = row_segments(nx, ny)
    nseg = row.size
    # segments per call: about ``chunk`` points, at least 4 blocks per thread
    lanes = row_lanes(nseg)
    step = max(-(-int(chunk) // int(cnt[0])), 4 * lanes * _threads())
    step = -(-step // lanes) * lanes
    for lo in range(0, nseg, step):
        sl = slice(lo, min(nseg, lo + step))
        npts = int(cnt[sl].sum())
        for k, c in enumerate(coefs):
            out = (total, pulls[c.detector][0], pulls[c.detector][1], ok)
            st = chi2_rows(c, base, ix, iy, xs_axis[row[sl]], ys, y0[sl], cnt[sl], o0[sl], out=out,
                           accumulate=k > 0, parallel=parallel, lanes=lanes, **settings.kwargs())
            for key, v in st.items():
                count[key] += v
            bar.update(npts)


def _threads() -> int:
    """Threads numba runs parallel kernels on."""
    import numba

    return numba.get_num_threads()


def _scan_points(coefs, idx, axes, base, shape, settings, chunk, parallel, total, ok, pulls, count,
                 bar):
    n = total.size
    total[:] = 0.0
    ok[:] = True
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        theta = np.repeat(base[None, :], hi - lo, axis=0)
        flat = np.arange(lo, hi)
        if len(idx) == 1:
            theta[:, idx[0]] = axes[0][flat]
        else:
            i, j = np.divmod(flat, shape[1])
            theta[:, idx[0]] = axes[0][i]
            theta[:, idx[1]] = axes[1][j]
        for c in coefs:
            x, a, b, it = chi2_points(c, theta, parallel=parallel, **settings.kwargs())
            total[lo:hi] += x
            pulls[c.detector][0][lo:hi] = a
            pulls[c.detector][1][lo:hi] = b
            ok[lo:hi] &= it > 0
            count["iterations"] += int(np.abs(it).sum())
            count["unconverged"] += int((it <= 0).sum())
            bar.update(hi - lo)


def chi2_function(coefs, param, *, fixed=None, settings: ScanSettings | None = None):
    """Combined profiled chi2 as a function of one charge (NumPy twin), for root finding."""
    settings = settings or ScanSettings()
    k = check_param(param)
    base = base_point(fixed)

    def f(x: float) -> float:
        theta = base.copy()
        theta[k] = x
        return float(sum(chi2_numpy(c, theta, **settings.kwargs())[0][0] for c in coefs))

    return f


def scan_spec(coefs, params, axes, base, settings, chunk_points) -> dict:
    """What identifies a scan for ``--resume``: everything its numbers depend on."""
    import hashlib

    from .. import __version__

    h = hashlib.sha256()
    for a in axes:
        h.update(np.ascontiguousarray(a, dtype=float).tobytes())
    return {
        "params": list(params), "shape": [int(a.size) for a in axes], "axes_sha256": h.hexdigest(),
        "fixed": [float(v) for v in base], "detectors": [c.detector for c in coefs],
        "channels": list(coefs[0].channels), "table_hashes": [c.table_hash for c in coefs],
        "settings": {"signal_pull": settings.signal_pull, "background_pull": settings.background_pull,
                     "tol": settings.tol, "max_iter": settings.max_iter},
        "chunk_points": int(chunk_points), "segment": SEGMENT, "mcscan_version": __version__,
    }


def scan_to_file(coefs, params, axes, path, *, fixed=None, settings: ScanSettings | None = None,
                 resume: bool = False, chunk_points: int | None = None, progress: bool = False,
                 config: dict | None = None) -> dict:
    """A grid scan streamed to a results file in chunks, resumable after any interruption.

    Finished chunks are stored as they complete (``<path>.partial/``, see
    :class:`mcscan.io.tables.ChunkStore`); the results file is assembled from
    them chunk by chunk and renamed into place at the end, so memory stays
    bounded by one chunk and an interrupted scan (Ctrl-C, SIGTERM, a killed
    process) continues with ``resume=True``.  Chunks are whole row segments
    (2D: whole rows), so the numbers are bit-identical to an uninterrupted
    run and to :func:`grid_scan`.

    Returns
    -------
    dict with "path", "shape", "chi2_min", "argmin" (charges, e), "unconverged",
    "chunks", "resumed_chunks"
    """
    from ..io.tables import ChunkStore, save_scan_chunks

    settings = settings or ScanSettings()
    params, _, axes, base, shape, n = _grid(coefs, params, axes, fixed)
    row = shape[1] if len(shape) == 2 else SEGMENT
    want = int(chunk_points or (1 << 20))
    if want < 1:
        raise InputError(f"chunk size {want}: expected a positive number of points")
    chunk_points = max(1, want // row) * row          # whole rows (2D) or segments (1D)
    nchunks = -(-n // chunk_points)
    spec = scan_spec(coefs, params, axes, base, settings, chunk_points)
    store = ChunkStore(f"{path}.partial", spec, resume=resume)
    done = store.done()
    bar = tqdm(total=n, desc="scan " + " x ".join(params), unit="pt", unit_scale=True,
               disable=not progress, initial=0)
    with bar:
        for k in range(nchunks):
            lo, hi = k * chunk_points, min(n, (k + 1) * chunk_points)
            if k in done:
                bar.update(hi - lo)
                continue
            if len(shape) == 2:
                sub = (axes[0][lo // row:hi // row], axes[1])
            else:
                sub = (axes[0][lo:hi],)
            sc = grid_scan(coefs, params, sub, fixed=fixed, settings=settings)
            arrays = {"chi2": sc.chi2.ravel(), "converged": sc.converged.ravel().astype(np.int8)}
            for d, (a, b) in sc.pulls.items():
                arrays[f"pull_signal_{d}"] = a.ravel()
                arrays[f"pull_background_{d}"] = b.ravel()
            store.write(k, arrays)
            bar.update(hi - lo)
    meta = {"axes": axes, "params": list(params), "channels": list(coefs[0].channels),
            "table_hashes": [c.table_hash for c in coefs], "fixed": [float(v) for v in base],
            "signal_pull": settings.signal_pull, "background_pull": settings.background_pull}
    dets = [c.detector for c in coefs]
    summary = save_scan_chunks(path, meta, shape, dets, store, nchunks, chunk_points, config=config)
    store.remove()
    at = np.unravel_index(summary["argmin"], shape)
    return {"path": str(path), "shape": list(shape), "chi2_min": summary["chi2_min"],
            "argmin": [float(a[i]) for a, i in zip(axes, at)], "unconverged": summary["unconverged"],
            "chunks": nchunks, "resumed_chunks": len(done)}
