"""Scans, profiles and limits over parameters of any family (docs/physics.md section 11).

The same machinery as :mod:`mcscan.scans.grid`, :mod:`mcscan.scans.profile` and
:func:`mcscan.scans.limits.limit_1d`, on the per-bin quadratic forms of
:mod:`mcscan.stats.families` instead of the millicharge coefficients: one or
two scanned parameters of any families (a cross term x*y where both act on
one flavour), the others fixed or profiled.  Charge-only scans keep using
the millicharge machinery (faster, and bit-identical to earlier versions).
Grid scans of 1 to 6 parameters of any families, in memory or streamed to a
results file (chunks, resume, Dask), run in :func:`mcscan.scans.engine.scan`,
which evaluates them plane by plane with :func:`family_grid_scan`.

Parameter values are absolute (sin2w itself, not its shift); internally the
kernels see offsets from the SM point of the tables.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..params import ALL_PARAMS, SPEC, check_any_param, default_range
from ..stats.families import chi2_all, excess_all, reduced_excess, reduced_form, row_polynomial
from ..stats.kernels_families import chi2_excess, chi2_rows_poly
from .grid import MAX_POINTS, Scan, ScanSettings, _check_axis, row_segments
from .limits import Limit, _ask, _drive, _limit_steps, delta_chi2_level
from .regions import Region, check_visible, polygons, region_summary, zoom_ranges

__all__ = ["FamilyRegion", "base_vector", "constrained", "default_range", "emitted_flavours",
           "family_region", "unconstrained_limit", "unconstrained_reason", "family_chi2_function",
           "family_grid_scan",
           "family_limit", "family_points_chi2", "family_profiled_chi2"]

_BATCH = 200_000        # points per call of the excess kernel


def _origin(fcoefs) -> np.ndarray:
    if not fcoefs:
        raise InputError("a scan needs at least one detector")
    o = fcoefs[0].origin
    for c in fcoefs[1:]:
        if not np.array_equal(c.origin, o):
            raise InputError("detectors built with different sin2w values cannot be combined")
    return o


def base_vector(fcoefs, fixed=None) -> np.ndarray:
    """(P,) full parameter vector: the SM point of the tables, ``fixed`` {name: value} on top."""
    theta = _origin(fcoefs).copy()
    for k, v in dict(fixed or {}).items():
        v = float(v)
        if not math.isfinite(v):
            raise InputError(f"parameter {k} = {v!r} is not finite: expected a finite number "
                             f"in {SPEC[k].unit if k in SPEC else 'its unit'}")
        theta[check_any_param(k)] = v
    return theta


def constrained(fcoefs, param) -> bool:
    """False when ``param`` changes no count of any detector (e.g. it acts on nu_tau only)."""
    k = 1 + check_any_param(param)
    return any(np.any(c.H[:, k, :] != 0.0) for c in fcoefs)


def family_grid_scan(fcoefs, params, axes, *, fixed=None, settings: ScanSettings | None = None,
                     chunk: int = 65536, progress: bool = False, parallel: bool = True,
                     stats: dict | None = None) -> Scan:
    """Profiled chi2 on the grid spanned by ``axes`` over one or two parameters of any family.

    Same contract and row/segment layout as :func:`mcscan.scans.grid.grid_scan`;
    ``fcoefs`` are :class:`mcscan.stats.families.FamilyCoefficients`, ``axes``
    absolute values in each parameter's unit, ``fixed`` {name: value} for any
    other parameters (default: the SM point).  ``Scan.base`` is the full vector.
    ``chunk`` is accepted as grid_scan's and changes nothing: the rows of each detector
    go to the kernel in one call.
    """
    from ..stats.kernels import plan_lockstep, row_lanes
    from .grid import _bar, _told

    settings = settings or ScanSettings()
    params = tuple(params)
    if len(params) not in (1, 2) or len(params) != len(axes):
        raise InputError("a grid scan takes one or two parameters, each with one axis")
    if len(set(params)) != len(params):
        raise InputError(f"parameters must differ, got {params}")
    idx = [check_any_param(p) for p in params]
    for p in params:
        if p in dict(fixed or {}):
            raise InputError(f"{p} is both scanned and fixed")
    axes = tuple(_check_axis(p, a) for p, a in zip(params, axes))
    base = base_vector(fcoefs, fixed)
    origin = _origin(fcoefs)
    shape = tuple(a.size for a in axes)
    n = int(np.prod(shape))
    if n > MAX_POINTS:
        raise InputError(f"{n} grid points requested: at most {MAX_POINTS} per scan")
    if len(idx) == 1:
        nx, ny, ix, iy, xs_axis = 1, axes[0].size, None, idx[0], np.zeros(1)
    else:
        nx, ny, ix, iy = axes[0].size, axes[1].size, idx[0], idx[1]
        xs_axis = axes[0] - origin[ix]
    ys = axes[-1] - origin[iy]
    polys = [row_polynomial(c, base, ix, iy) for c in fcoefs]
    plan_lockstep(n * len(fcoefs))
    total = np.empty(n)
    ok = np.empty(n, dtype=bool)
    pulls = {c.detector: (np.empty(n), np.empty(n)) for c in fcoefs}
    count = dict(points=n, iterations=0, scalar_path=0, log_chi2=0, unconverged=0)
    row, y0, cnt, o0 = row_segments(nx, ny)
    # every segment in one call per detector, as grid_scan's row kernel; one segment is
    # one thread's work: the serial build (same bits) spares the pool
    lanes = row_lanes(row.size)
    par = parallel and row.size > 1
    xs = xs_axis[row]
    # no progress bar object at all without progress: the N-D engine calls this per plane
    with _bar(progress, total=n * len(fcoefs), desc="scan " + " x ".join(params), unit="pt",
              unit_scale=True, leave=False) as bar:
        for k, (c, poly) in enumerate(zip(fcoefs, polys)):
            out = (total, pulls[c.detector][0], pulls[c.detector][1], ok)
            st = chi2_rows_poly(c.S, c.B, c.D, poly, xs, ys, y0, cnt, o0, out=out,
                                accumulate=k > 0, parallel=par, lanes=lanes,
                                progress=_told(bar), **settings.kwargs())
            for key, v in st.items():
                count[key] += v
    if stats is not None:
        stats.update(count)
    return Scan(params=params, axes=axes, base=base, detectors=tuple(c.detector for c in fcoefs),
                channels=tuple(fcoefs[0].channels), chi2=total.reshape(shape),
                pulls={k: (a.reshape(shape), b.reshape(shape)) for k, (a, b) in pulls.items()},
                converged=ok.reshape(shape), table_hashes=tuple(c.table_hash for c in fcoefs),
                settings=settings)


def family_points_chi2(fcoefs, theta, *, settings: ScanSettings | None = None, parallel=True,
                       vary=None):
    """Combined chi2 at full parameter points (npts, P) (numba); returns chi2, converged, pulls.

    ``vary``: indices of the only parameters that differ between the points (the
    others equal those of the first point); the counts then come from the form
    restricted to them (:func:`mcscan.stats.families.reduced_form`), much cheaper
    than the full recombination.
    """
    settings = settings or ScanSettings()
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    n = theta.shape[0]
    if vary is not None:
        vary = list(vary)
        forms = [reduced_form(c, theta[0], vary) for c in fcoefs]
        t = theta[:, vary] - _origin(fcoefs)[vary]
    tot = np.zeros(n)
    ok = np.ones(n, dtype=bool)
    pulls = {c.detector: (np.empty(n), np.empty(n)) for c in fcoefs}
    for lo in range(0, n, _BATCH):
        hi = min(n, lo + _BATCH)
        for j, c in enumerate(fcoefs):
            ex = excess_all(c, theta[lo:hi]) if vary is None else reduced_excess(forms[j], t[lo:hi])
            x, a, b, it = chi2_excess(c.S, c.B, c.D, ex, parallel=parallel, **settings.kwargs())
            tot[lo:hi] += x
            ok[lo:hi] &= it > 0
            pulls[c.detector][0][lo:hi] = a
            pulls[c.detector][1][lo:hi] = b
    return tot, ok, pulls


def family_chi2_function(fcoefs, param, *, fixed=None, settings: ScanSettings | None = None):
    """Combined profiled chi2 as a function of one parameter (NumPy twin), for root finding."""
    settings = settings or ScanSettings()
    k = check_any_param(param)
    base = base_vector(fcoefs, fixed)

    def f(x: float) -> float:
        theta = base.copy()
        theta[k] = x
        return float(sum(chi2_all(c, theta, **settings.kwargs())[0][0] for c in fcoefs))

    return f


def family_profiled_chi2(fcoefs, rows, profile, ranges, *, settings: ScanSettings | None = None,
                         points: int | None = None, rounds: int | None = None, vary=()):
    """Minimum of the combined chi2 over the ``profile`` parameters, per row of (n, P) values.

    The algorithm of :func:`mcscan.scans.profile.profiled_chi2` (a global grid over the
    profiled ranges, then shrinking local grids), for parameters of any family.

    Returns chi2 (n,), best (n, P), at_edge (n,) bool, converged (n,) bool.
    """
    settings = settings or ScanSettings()
    rows = np.atleast_2d(np.asarray(rows, dtype=float))
    idx = [check_any_param(p) for p in profile]
    if not idx:
        raise InputError("a profile needs at least one profiled parameter")
    # parameters that differ between rows or candidates: the rest is folded into the form
    moving = sorted(set(idx) | {int(i) for i in vary}
                    | {int(i) for i in np.flatnonzero(np.any(rows != rows[:1], axis=0))})
    k = len(idx)
    g = points or (201 if k == 1 else max(5, int(round(2000 ** (1.0 / k)))))
    axes = []
    for p in profile:
        lo, hi = (float(v) for v in ranges[p])
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise InputError(f"profile range of {p} [{lo!r}, {hi!r}]: expected finite low < high")
        axes.append(np.linspace(lo, hi, g))
    cand = np.array(list(itertools.product(*axes)))
    n, G = rows.shape[0], cand.shape[0]
    best = rows.copy()
    bestv = np.full(n, np.inf)
    per = max(1, _BATCH // G)
    for lo in range(0, n, per):
        hi = min(n, lo + per)
        th = np.repeat(rows[lo:hi], G, axis=0)
        th[:, idx] = np.tile(cand, (hi - lo, 1))
        v = family_points_chi2(fcoefs, th, settings=settings, vary=moving)[0].reshape(hi - lo, G)
        j = np.argmin(v, axis=1)
        bestv[lo:hi] = v[np.arange(hi - lo), j]
        best[lo:hi, idx] = cand[j]
    step = np.array([a[1] - a[0] for a in axes])
    off = np.linspace(-1.0, 1.0, 11)
    for _ in range(rounds or (5 if k == 1 else 8)):
        for d, pi in enumerate(idx):
            th = np.repeat(best, off.size, axis=0)
            vals = np.clip(best[:, pi][:, None] + step[d] * off[None, :], axes[d][0], axes[d][-1])
            th[:, pi] = vals.ravel()
            v = family_points_chi2(fcoefs, th, settings=settings, vary=moving)[0].reshape(n, off.size)
            j = np.argmin(v, axis=1)
            better = v[np.arange(n), j] < bestv
            bestv = np.where(better, v[np.arange(n), j], bestv)
            best[better, pi] = vals[np.arange(n), j][better]
        step = step / 5.0
    at_edge = np.zeros(n, dtype=bool)
    for d, pi in enumerate(idx):
        at_edge |= (best[:, pi] <= axes[d][0]) | (best[:, pi] >= axes[d][-1])
    final, ok, _ = family_points_chi2(fcoefs, best, settings=settings, vary=moving)
    return final, best, at_edge, ok


def family_limit(fcoefs, param, *, cl=0.90, xrange=None, points=2001, fixed=None,
                 settings: ScanSettings | None = None, extend: int = 6, progress=False,
                 profile=(), profile_ranges=None, level: float | None = None) -> Limit:
    """Allowed set of one parameter of any family, the others fixed or profiled.

    As :func:`mcscan.scans.limits.limit_1d`: a grid scan, the range doubled on a side
    where the allowed set reaches its end (never beyond the parameter's physical
    bounds, e.g. 0 <= sin2w <= 1), crossings refined by Brent's method on the profiled
    chi2; the allowed set is a union of intervals, every piece reported.  A parameter
    that changes no count is refused (see :func:`constrained`).
    """
    settings = settings or ScanSettings()
    spec = SPEC[param] if param in SPEC else None
    check_any_param(param)
    if not constrained(fcoefs, param):
        raise InputError(f"{param} is unconstrained: it changes no count of "
                         f"{', '.join(c.detector for c in fcoefs)} (no neutrino it acts on)")
    level = delta_chi2_level(cl, 1) if level is None else float(level)
    if not (np.isfinite(level) and level > 0):
        raise InputError(f"Delta chi2 level {level!r}: expected a positive number")
    lo, hi = (float(v) for v in (xrange if xrange is not None else default_range(param)))
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise InputError(f"range [{lo!r}, {hi!r}] of {param}: expected finite low < high ({spec.unit})")
    blo, bhi = spec.bounds
    lo, hi = max(lo, blo), min(hi, bhi)
    points = int(points)
    if not 3 <= points <= 10_000_001:
        raise InputError(f"points = {points}: expected 3 to 10000001")
    profile = tuple(profile)
    if param in profile:
        raise InputError(f"{param} is both scanned and profiled")
    for p in profile:
        check_any_param(p)
        if p in (fixed or {}):
            raise InputError(f"{p} is both profiled and fixed")
    ref = spec.reference if param != "sin2w" else float(_origin(fcoefs)[check_any_param(param)])
    if profile:
        given = dict(profile_ranges or {})
        # a charge has no range of its own (the configuration's): only those not given
        ranges = {**{p: default_range(p) for p in profile if p not in given}, **given}
        curve = _profiled_curve(fcoefs, param, fixed, settings, profile, ranges)
        f_chi2 = lambda t: float(curve(np.array([t]))[0].chi2[0])  # noqa: E731
    else:
        f_chi2 = family_chi2_function(fcoefs, param, fixed=fixed, settings=settings)
        curve = lambda x: (family_grid_scan(fcoefs, (param,), (x,), fixed=fixed,  # noqa: E731
                                            settings=settings, progress=progress), (None, {}))
    steps = _limit_steps(fcoefs, param, cl, level, lo, hi, points, extend, profile, curve, _ask,
                         ref=ref, bounds=(blo, bhi), closed_at_bounds=True, unit=spec.unit)
    return _drive(steps, f_chi2)


def _profiled_curve(fcoefs, param, fixed, settings, profile, ranges):
    k = check_any_param(param)
    base = base_vector(fcoefs, fixed)

    def curve(x):
        rows = np.repeat(base[None, :], x.size, axis=0)
        rows[:, k] = x
        chi, best, at_edge, ok = family_profiled_chi2(fcoefs, rows, profile, ranges, settings=settings,
                                                      vary=(k,))
        _, _, pulls = family_points_chi2(fcoefs, best, settings=settings,
                                         vary=[k] + [check_any_param(p) for p in profile])
        sc = Scan(params=(param,), axes=(x,), base=base, detectors=tuple(c.detector for c in fcoefs),
                  channels=tuple(fcoefs[0].channels), chi2=chi, pulls=pulls, converged=ok,
                  table_hashes=tuple(c.table_hash for c in fcoefs), settings=settings)
        return sc, (at_edge, {p: best[:, ALL_PARAMS.index(p)] for p in profile})

    return curve


# ------------------------------------------------------------ wiring helpers

def emitted_flavours() -> tuple:
    """Flavours the source emits (pion decay at rest: e and mu)."""
    from ..physics.flux import COMPONENTS

    return tuple(sorted({c.flavour for c in COMPONENTS}))


def unconstrained_reason(fcoefs, param) -> str:
    """Why ``param`` changes no count of ``fcoefs`` ("" when it does)."""
    if constrained(fcoefs, param):
        return ""
    emitted = emitted_flavours()
    missing = [f for f in dict.fromkeys(SPEC[param].flavours) if f not in emitted]
    if missing:
        return " or ".join(f"no nu_{f}" for f in missing) + " flux at this source"
    return f"the detectors' counts do not depend on {param}"


def unconstrained_limit(fcoefs, param, *, cl=0.90, level=None, xrange=None, fixed=None,
                        settings: ScanSettings | None = None, profile=(), reason="") -> Limit:
    """The Limit of a parameter the detectors cannot see: the (flat) chi2 at the two
    range ends, no allowed interval, ``unconstrained`` set with its reason."""
    settings = settings or ScanSettings()
    level = delta_chi2_level(cl, 1) if level is None else float(level)
    lo, hi = (float(v) for v in (xrange if xrange is not None else default_range(param)))
    sc = family_grid_scan(fcoefs, (param,), (np.array([lo, hi]),), fixed=fixed, settings=settings)
    return Limit(tuple(c.detector for c in fcoefs), param, float(cl), level, [], False, False, sc,
                 float(np.min(sc.chi2)), unit=SPEC[param].unit, profile=tuple(profile),
                 unconstrained=True, reason=reason or unconstrained_reason(fcoefs, param))


def _check_family_range(p, lo, hi) -> tuple:
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise InputError(f"range [{lo!r}, {hi!r}] of {p}: expected finite low < high in {SPEC[p].unit}")
    blo, bhi = SPEC[p].bounds
    if hi <= blo or lo >= bhi:
        raise InputError(f"range [{lo:g}, {hi:g}] of {p}: outside its allowed values "
                         f"[{blo:g}, {bhi:g}]")
    return max(lo, blo), min(hi, bhi)


def family_region(fcoefs, params, *, cl=0.90, ranges, points=201, fixed=None, zoom=True,
                  settings: ScanSettings | None = None, progress=False):
    """Allowed region of two parameters of any family at ``cl`` (2 d.o.f.).

    The algorithm of :func:`mcscan.scans.regions.region_2d` (zoom onto the region,
    contour polygons, refined minimum) on the family grid scan; the result is a
    :class:`FamilyRegion` whose JSON carries each parameter's unit.
    """
    from scipy.optimize import minimize

    settings = settings or ScanSettings()
    params = tuple(params)
    if len(params) != 2 or params[0] == params[1]:
        raise InputError(f"a region needs two different parameters, got {', '.join(params)}")
    for p in params:
        check_any_param(p)
        if p in dict(fixed or {}):
            raise InputError(f"{p} is both scanned and fixed")
    points = int(points)
    if not 11 <= points <= 20001:
        raise InputError(f"points = {points}: expected 11 to 20001 per axis")
    check_visible(params, [unconstrained_reason(fcoefs, p) for p in params], fcoefs)
    level = delta_chi2_level(cl, 2)
    ranges = [_check_family_range(p, *r) for p, r in zip(params, ranges)]
    for _ in range(10 if zoom else 1):
        axes = [np.linspace(lo, hi, points) for lo, hi in ranges]
        sc = family_grid_scan(fcoefs, params, axes, fixed=fixed, settings=settings, progress=progress)
        polys = polygons(sc.axes[0], sc.axes[1], sc.delta_chi2, level)
        if not zoom:
            break
        ranges, changed = zoom_ranges(sc, ranges, polys, [SPEC[p].bounds for p in params])
        if not changed:
            break
    # refined minimum near the best grid point
    i, j = np.unravel_index(int(np.argmin(sc.chi2)), sc.chi2.shape)
    k0, k1 = (check_any_param(p) for p in params)
    base = base_vector(fcoefs, fixed)
    scale = np.array([sc.axes[0][1] - sc.axes[0][0], sc.axes[1][1] - sc.axes[1][0]])

    def f(u):
        th = base.copy()
        th[k0], th[k1] = sc.axes[0][i] + u[0] * scale[0], sc.axes[1][j] + u[1] * scale[1]
        return float(family_points_chi2(fcoefs, th[None, :], settings=settings, parallel=False)[0][0])

    res = minimize(f, np.zeros(2), method="Nelder-Mead",
                   options={"xatol": 1e-6, "fatol": 1e-12, "initial_simplex": [[0, 0], [1, 0], [0, 1]]})
    cmin = min(float(sc.chi2_min), float(res.fun))
    polys = polygons(sc.axes[0], sc.axes[1], sc.chi2 - cmin, level)
    extent, area, touches = region_summary(polys, sc.axes, params)
    return FamilyRegion(tuple(c.detector for c in fcoefs), params, float(cl), level, polys, extent,
                        float(area), touches, sc, cmin)


@dataclass(frozen=True)
class FamilyRegion(Region):
    """A :class:`mcscan.scans.regions.Region` of parameters of any family (units per parameter)."""

    def to_json(self) -> dict:
        d = Region.to_json(self)
        units = [SPEC[p].unit for p in self.params]
        d["unit"] = units[0] if units[0] == units[1] else units
        d["units"] = {p: SPEC[p].unit for p in self.params}
        d["area_unit"] = (f"{units[0]}^2" if units[0] == units[1] and units[0] != "1"
                          else " x ".join(units))
        return d
