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
the number of threads, on ``chunk`` or on serial versus parallel runs, and
any set of segments can be computed elsewhere (another process, another
machine) and give the same bits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..params import PARAMS, check_param, unit
from ..errors import InputError
from ..io.registry import register
from ..stats import newton
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
]

#: Largest number of grid points one scan accepts.
MAX_POINTS = 200_000_000
#: Most points per row segment (the unit of work, see the module docstring).
SEGMENT = 4096


@register
@dataclass(frozen=True)
class ScanSettings:
    """Statistical and numerical settings shared by every scan."""

    signal_pull: float = newton.SIGNAL_PULL
    background_pull: float = newton.BACKGROUND_PULL
    tol: float = newton.TOL
    max_iter: int = newton.MAX_ITER

    @classmethod
    def from_config(cls, config):
        return cls(config.analysis.signal_pull, config.analysis.background_pull,
                   config.numerics.newton_tol, config.numerics.newton_max_iter)

    def kwargs(self):
        return dict(signal_pull=self.signal_pull, background_pull=self.background_pull,
                    tol=self.tol, max_iter=self.max_iter)


@register
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
        what = "charges in e" if name in PARAMS else f"values in {unit(name)}"
        raise InputError(f"grid of {name} contains non-finite values: expected finite {what}")
    if axis.size > 1 and not np.all(np.diff(axis) > 0):
        raise InputError(f"grid of {name} must increase strictly")
    return axis


def row_segments(nx: int, ny: int, segment: int = SEGMENT):
    """Row segments of an (nx, ny) grid (nx = 1 for a 1D scan): the first segment of
    every row in row order, then the second one of every row, and so on.  Segments of one
    length so run side by side in the row kernel's blocks of rows, which run each column
    for as long as their longest segment: in row order, the 905-point ends of 5001-point
    rows shared blocks with 4096-point segments and a 5001-wide scan ran at two thirds of
    the speed of a 4096-wide one.  The order changes no number: a point depends only on
    its segment.

    Returns
    -------
    ix, y0, cnt, o0 : (nseg,) int arrays: segment k covers the points
    (ix[k], y0[k] .. y0[k] + cnt[k] - 1), at flat indices o0[k] .. o0[k] + cnt[k] - 1.
    """
    per_row = -(-ny // segment)
    k = np.arange(nx * per_row, dtype=np.int64)
    if per_row == 1:                    # one segment per row (N-D planes): no division
        ix, y0 = k, np.zeros_like(k)
    else:
        s, ix = np.divmod(k, nx)
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
    chunk : points per kernel call of the "points" and "numpy" kernels (sets their
        progress-bar steps and nothing else); the row kernel takes the rows of each
        detector in one call, its bar moving as blocks of rows finish
    kernel : "rows" (default: :func:`mcscan.stats.kernels.chi2_rows`, warm-started
        along row segments), "points" (:func:`mcscan.stats.kernels.chi2_points`,
        every point from zero pulls; much slower, kept for comparison) or "numpy"
        (the NumPy reference :func:`mcscan.stats.reference.chi2`, every point from
        zero pulls, vectorised over the points of a chunk: no numba kernel is
        loaded, which for a few thousand points is quicker than loading one)
    stats : optional dict, filled with {"points", "iterations" (Newton
        iterations summed over points and detectors), "unconverged"
        (point-detector pairs), "scalar_path", "log_chi2" (points that left
        the vector loop, or needed logarithms for their chi2: kernel "rows" only)}
    """
    settings = settings or ScanSettings()
    if kernel not in ("rows", "points", "numpy"):
        raise InputError(f"kernel {kernel!r}: expected 'rows', 'points' or 'numpy'")
    params, idx, axes, base, shape, n = _grid(coefs, params, axes, fixed)
    total = np.empty(n)
    ok = np.empty(n, dtype=bool)
    pulls = {c.detector: (np.empty(n), np.empty(n)) for c in coefs}
    count = dict(points=n, iterations=0, scalar_path=0, log_chi2=0, unconverged=0)
    bar = _bar(progress, total=n * len(coefs), desc="scan " + " x ".join(params), unit="pt",
               unit_scale=True, leave=False)
    with bar:
        if kernel == "rows":
            _scan_rows(coefs, idx, axes, base, settings, parallel, total, ok, pulls, count, bar)
        else:
            _scan_points(coefs, idx, axes, base, shape, settings, chunk, parallel, total, ok, pulls,
                         count, bar, numpy=kernel == "numpy")
    if stats is not None:
        stats.update(count)
    # +inf is a real value (a bin whose model vanishes under observed counts); NaN never is
    bad = np.isnan(total)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        at = np.unravel_index(j, shape)
        where = ", ".join(f"{p} = {float(a[i]):.6g}" for p, a, i in zip(params, axes, at))
        raise InputError(f"chi2 is nan (not a number) at {where} e ({int(bad.sum())} point(s)): the "
                         "tables, the charges or the data give numbers beyond double precision; "
                         "check the tables and the data and narrow the scanned range")
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


class _NoBar:
    """Stands in for a progress bar that is not shown (tqdm is then not imported)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass


def _bar(progress, **kw):
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(**kw)


def _told(bar):
    """What a row kernel's ``progress`` takes for ``bar``: its ``update``, None for no bar."""
    return None if isinstance(bar, _NoBar) else bar.update


def _scan_rows(coefs, idx, axes, base, settings, parallel, total, ok, pulls, count, bar):
    from ..stats.kernels import chi2_rows, plan_lockstep, row_lanes

    if len(idx) == 1:
        nx, ny, ix, iy, xs_axis = 1, axes[0].size, None, idx[0], np.zeros(1)
    else:
        nx, ny, ix, iy, xs_axis = axes[0].size, axes[1].size, idx[0], idx[1], axes[0]
    plan_lockstep(nx * ny * len(coefs))
    ys = axes[-1]
    row, y0, cnt, o0 = row_segments(nx, ny)
    # every segment in one kernel call per detector: the threads wait for each other
    # once, not at the end of every chunk of points (one call per 65536 points ran the
    # 2001^2 bench scan 1.04 to 1.06 times slower); the bar moves as blocks finish.
    # One segment is one thread's work: run it on the calling thread (same bits)
    lanes = row_lanes(row.size)
    par = parallel and row.size > 1
    xs = xs_axis[row]
    for k, c in enumerate(coefs):
        out = (total, pulls[c.detector][0], pulls[c.detector][1], ok)
        st = chi2_rows(c, base, ix, iy, xs, ys, y0, cnt, o0, out=out, accumulate=k > 0,
                       parallel=par, lanes=lanes, progress=_told(bar), **settings.kwargs())
        for key, v in st.items():
            count[key] += v


def _threads() -> int:
    """Threads numba runs parallel kernels on."""
    import numba

    return numba.get_num_threads()


def _scan_points(coefs, idx, axes, base, shape, settings, chunk, parallel, total, ok, pulls, count,
                 bar, numpy=False):
    if numpy:
        def chi2_points(c, theta, parallel, **kw):
            return chi2_numpy(c, theta, **kw)
    else:
        from ..stats.kernels import chi2_points

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
