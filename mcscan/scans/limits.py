"""Allowed intervals from Delta chi2 profiles.

A Delta chi2 profile need not be monotonic (a charge can cancel the weak
charge inside the recoil window), so the allowed set at a C.L. is returned
as a union of intervals.  Grid crossings are refined by Brent's method on
the profiled chi2 itself, to a relative precision far below the grid step.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from scipy.special import chdtri

from ..errors import InputError
from ..params import visible_params
from ..results import Result
from .grid import Scan, ScanSettings, chi2_function, grid_scan

__all__ = ["Limit", "cl_levels", "delta_chi2_level", "allowed_intervals", "limit_1d", "VISIBLE_PARAMS"]

#: Charges an ESS beam (nu_e, nu_mu, anti-nu_mu) can see.
VISIBLE_PARAMS = visible_params(("e", "mu"))


def delta_chi2_level(cl: float, dof: int = 1) -> float:
    """Delta chi2 of a C.L. for ``dof`` parameters (2.7055 for 90%, one parameter)."""
    cl = float(cl)
    if not 0.0 < cl < 1.0:
        raise InputError(f"confidence level {cl!r}: expected a number strictly between 0 and 1")
    return float(chdtri(dof, 1.0 - cl))          # inverse chi2 CDF


def cl_levels(dof: int) -> dict:
    """{"0.68": ..., "0.9": ..., "0.95": ...}: Delta chi2 levels stored in results files."""
    return {str(cl): delta_chi2_level(cl, dof) for cl in (0.68, 0.90, 0.95)}


@dataclass(frozen=True)
class Limit(Result):
    """The allowed set of one charge at a C.L.

    ``regions`` lists [lo, hi] in e; ``open_low``/``open_high`` say that the
    allowed set reaches the end of the scanned range (so that end is not a
    limit: widen the range).  With profiled charges, ``profile_at_edge``
    says that inside the allowed set a profiled charge sat at the end of its
    search range (widen analysis.ranges).
    """

    kind = "limits"

    detectors: tuple
    param: str
    cl: float
    delta_chi2: float
    regions: list
    open_low: bool
    open_high: bool
    scan: Scan
    chi2_min: float
    unit: str = "e"
    profile: tuple = ()
    profile_at_edge: bool = False
    profile_best: dict = field(default_factory=dict)   # {charge: values at the minimum, per x}

    def to_json(self) -> dict:
        return {
            "detectors": list(self.detectors),
            "param": self.param,
            "cl": self.cl,
            "delta_chi2": self.delta_chi2,
            "regions": [[float(lo), float(hi)] for lo, hi in self.regions],
            "unit": self.unit,
            "table_hashes": list(self.scan.table_hashes),
            "channels": list(self.scan.channels),
            "open_low": self.open_low,
            "open_high": self.open_high,
            "chi2_min": self.chi2_min,
            "profiled": list(self.profile),
            "profile_at_edge": self.profile_at_edge,
        }


def allowed_intervals(x, dchi2, level, f=None, rtol=1e-4):
    """Union of intervals where ``dchi2 <= level``.

    Parameters
    ----------
    x, dchi2 : grid and Delta chi2 on it
    level : Delta chi2 threshold
    f : callable Delta chi2(x), optional; crossings are refined with it
    rtol : relative precision of refined end points

    Returns
    -------
    regions : list of [lo, hi];  open_low, open_high : bool
    """
    x = np.asarray(x, dtype=float)
    inside = np.asarray(dchi2) <= level
    regions = []
    i, n = 0, x.size
    while i < n:
        if not inside[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and inside[j + 1]:
            j += 1
        lo = x[i] if i == 0 else _cross(f, x[i - 1], x[i], level, rtol)
        hi = x[j] if j == n - 1 else _cross(f, x[j], x[j + 1], level, rtol)
        regions.append([float(lo), float(hi)])
        i = j + 1
    open_low = bool(inside[0])
    open_high = bool(inside[-1])
    return regions, open_low, open_high


def _cross(f, a, b, level, rtol):
    if f is None:
        return 0.5 * (a + b)
    g = lambda t: f(t) - level  # noqa: E731
    ga, gb = g(a), g(b)
    if ga == 0.0:
        return a
    if gb == 0.0 or np.sign(ga) == np.sign(gb):
        return b if abs(gb) < abs(ga) else a
    scale = max(abs(a), abs(b))
    return brentq(g, a, b, xtol=rtol * scale * 1e-2, rtol=1e-12)


def limit_1d(coefs, param, *, cl=0.90, xrange=(-6e-8, 6e-8), points=2001, fixed=None,
             settings: ScanSettings | None = None, extend: int = 6, progress=False,
             profile=(), profile_ranges=None, level: float | None = None) -> Limit:
    """Allowed set of one charge, the others fixed or profiled, from a 1D scan.

    Parameters
    ----------
    coefs : per-detector coefficients (combined if several)
    xrange : (lo, hi) scan range in e
    points : grid points
    extend : if the allowed set touches an end of the range, the range is
        doubled on that side up to this many times (0: never)
    profile : charges minimised over at each point (others stay ``fixed``)
    profile_ranges : {name: (lo, hi)} search ranges of the profiled charges
    level : Delta chi2 threshold; default the ``cl`` quantile for one parameter
    """
    settings = settings or ScanSettings()
    level = delta_chi2_level(cl, 1) if level is None else float(level)
    if not (np.isfinite(level) and level > 0):
        raise InputError(f"Delta chi2 level {level!r}: expected a positive number")
    lo, hi = (float(v) for v in xrange)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise InputError(f"range [{lo!r}, {hi!r}] of {param}: expected finite low < high (e)")
    points = int(points)
    if not 3 <= points <= 10_000_001:
        raise InputError(f"points = {points}: expected 3 to 10000001")
    profile = tuple(profile)
    if param in profile:
        raise InputError(f"{param} is both scanned and profiled")
    for p in profile:
        if p in (fixed or {}):
            raise InputError(f"{p} is both profiled and fixed")
    if profile:
        if profile_ranges is None:
            raise InputError("profiled charges need search ranges")
        curve = _profiled_curve(coefs, param, fixed, settings, profile, profile_ranges)
        f_chi2 = lambda t: float(curve(np.array([t]))[0].chi2[0])  # noqa: E731
    else:
        f_chi2 = chi2_function(coefs, param, fixed=fixed, settings=settings)
        curve = lambda x: (grid_scan(coefs, (param,), (x,), fixed=fixed, settings=settings,  # noqa: E731
                                     progress=progress), (None, {}))
    for attempt in range(extend + 1):
        x = np.linspace(lo, hi, points)
        if lo < 0.0 < hi and 0.0 not in x:
            x = np.unique(np.append(x, 0.0))
        sc, (at_edge, best) = curve(x)
        k = int(np.argmin(sc.chi2))
        cmin = float(sc.chi2[k])
        if 0 < k < x.size - 1:
            res = minimize_scalar(f_chi2, bounds=(x[k - 1], x[k + 1]), method="bounded",
                                  options={"xatol": 1e-6 * (x[k + 1] - x[k - 1])})
            cmin = min(cmin, float(res.fun))
        dchi2 = sc.chi2 - cmin
        regions, open_low, open_high = allowed_intervals(
            x, dchi2, level, f=lambda t: f_chi2(t) - cmin
        )
        if attempt == extend or not (open_low or open_high):
            break
        width = hi - lo
        if open_low:
            lo -= width
        if open_high:
            hi += width
    # a narrow allowed piece gets a fine local scan, so the saved profile
    # resolves it (its end points are root-refined either way)
    step = (x[-1] - x[0]) / (x.size - 1)
    extra = [np.linspace(max(a - max(b - a, step), x[0]), min(b + max(b - a, step), x[-1]), 401)
             for a, b in regions if b - a < 100 * step]
    if extra:
        sce, (ate, beste) = curve(np.concatenate(extra))
        x, order = np.unique(np.concatenate([x, sce.axes[0]]), return_index=True)
        sc = _merge(sc, sce, order)
        if at_edge is not None:
            at_edge = np.concatenate([at_edge, ate])[order]
            best = {p: np.concatenate([best[p], beste[p]])[order] for p in best}
        cmin = min(cmin, float(np.min(sc.chi2)))
        dchi2 = sc.chi2 - cmin
        regions, open_low, open_high = allowed_intervals(
            x, dchi2, level, f=lambda t: f_chi2(t) - cmin
        )
    profile_at_edge = bool(at_edge is not None and np.any(at_edge[dchi2 <= level]))
    return Limit(tuple(c.detector for c in coefs), param, float(cl), level, regions,
                 open_low, open_high, sc, cmin, profile=profile, profile_at_edge=profile_at_edge,
                 profile_best=best)


def _merge(sc: Scan, other: Scan, order) -> Scan:
    """Two 1D scans of the same charge on one sorted grid (``order`` from np.unique)."""
    cat = lambda a, b: np.concatenate([a, b])[order]  # noqa: E731
    return Scan(params=sc.params, axes=(cat(sc.axes[0], other.axes[0]),), base=sc.base,
                detectors=sc.detectors, channels=sc.channels, chi2=cat(sc.chi2, other.chi2),
                pulls={d: (cat(a, other.pulls[d][0]), cat(b, other.pulls[d][1]))
                       for d, (a, b) in sc.pulls.items()},
                converged=cat(sc.converged, other.converged), table_hashes=sc.table_hashes,
                settings=sc.settings)


def _profiled_curve(coefs, param, fixed, settings, profile, profile_ranges):
    from .profile import profiled_chi2
    from .grid import base_point, check_param

    k = check_param(param)
    base = base_point(fixed)

    def curve(x):
        rows = np.repeat(base[None, :], x.size, axis=0)
        rows[:, k] = x
        chi, best, at_edge, ok = profiled_chi2(coefs, rows, profile, profile_ranges, settings=settings)
        pulls = {}
        from ..stats.kernels import chi2_points

        for c in coefs:
            _, a, b, _ = chi2_points(c, best, **settings.kwargs())
            pulls[c.detector] = (a, b)
        sc = Scan(params=(param,), axes=(x,), base=base, detectors=tuple(c.detector for c in coefs),
                  channels=tuple(coefs[0].channels), chi2=chi, pulls=pulls, converged=ok,
                  table_hashes=tuple(c.table_hash for c in coefs), settings=settings)
        return sc, (at_edge, {p: best[:, check_param(p)] for p in profile})

    return curve
