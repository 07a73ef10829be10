"""Two-parameter allowed regions: closed contour polygons, extents, areas.

The allowed region at a C.L. is {Delta chi2 <= level} with level the
two-parameter quantile (4.605 at 90%).  Its boundary is traced by
``contourpy`` (filled contours, outer boundaries with their holes), so
every polygon is closed, also where the region reaches the scan boundary
(which is then flagged: the range was too small).  Without user ranges the
scan zooms onto the region: a coarse scan over the configured ranges, then
a fine scan over the region's bounding box with a margin.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from contourpy import FillType, contour_generator

from .. import budget
from ..errors import InputError, McscanError
from ..results import Result
from .limits import (MAX_CHARGE, check_finite_chi2, check_fixed, check_range, delta_chi2_level,
                     require_visible, unconstrained_reason)
from .grid import Scan, ScanSettings, grid_scan

__all__ = ["Region", "check_visible", "region_2d", "region_summary", "polygons", "polygon_area"]


@dataclass(frozen=True)
class Region(Result):
    """Allowed region of two charges.

    ``polygons`` is a list of (outer, holes) with outer an (n, 2) closed
    polygon in e (first vertex repeated at the end) and holes a list of such;
    ``extent`` maps each parameter to [lo, hi] of the allowed set, e;
    ``area`` is in e^2; ``touches_edge`` says the region reaches the scan
    boundary.
    """

    kind = "region"

    detectors: tuple
    params: tuple
    cl: float
    delta_chi2: float
    polygons: list
    extent: dict
    area: float
    touches_edge: bool
    scan: Scan
    chi2_min: float

    def to_json(self) -> dict:
        return {
            "detectors": list(self.detectors),
            "params": list(self.params),
            "cl": self.cl,
            "delta_chi2": self.delta_chi2,
            "regions": [outer.tolist() for outer, _ in self.polygons],
            "holes": [[h.tolist() for h in holes] for _, holes in self.polygons],
            "extent": {k: list(v) for k, v in self.extent.items()},
            "area": self.area,
            "unit": "e",
            "area_unit": "e^2",
            "touches_edge": self.touches_edge,
            "channels": list(self.scan.channels),
            "table_hashes": list(self.scan.table_hashes),
            "grid": [int(a.size) for a in self.scan.axes],
        }


def polygon_area(p) -> float:
    """Unsigned shoelace area of a closed polygon (n, 2)."""
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1])))


def _close(p):
    return p if np.array_equal(p[0], p[-1]) else np.vstack([p, p[:1]])


def polygons(x, y, dchi2, level):
    """Closed polygons of {dchi2 <= level} on the grid (x: axis 0, y: axis 1).

    Returns a list of (outer, [holes]) with vertices (param0, param1).
    """
    z = np.asarray(dchi2, dtype=float).T          # contourpy: z[j, i] at (x[i], y[j])
    gen = contour_generator(x, y, z, fill_type=FillType.OuterOffset)
    pts_list, offs_list = gen.filled(-1.0, level)
    out = []
    for pts, offs in zip(pts_list, offs_list):
        rings = [_close(pts[offs[i]:offs[i + 1]]) for i in range(len(offs) - 1)]
        out.append((rings[0], rings[1:]))
    return out


def _scan(coefs, params, ranges, points, fixed, settings, progress):
    axes = [np.linspace(lo, hi, points) for lo, hi in ranges]
    return grid_scan(coefs, params, axes, fixed=fixed, settings=settings, progress=progress)


def _extent_of(polys):
    allpts = np.vstack([outer for outer, _ in polys])
    return allpts.min(axis=0), allpts.max(axis=0)


def region_summary(polys, axes, params) -> tuple:
    """``(extent, area, touches)`` of the allowed region ``polys`` (from :func:`polygons`)
    on a grid with ``axes``: {param: [lo, hi]} over every piece ([] when empty), the
    area with the holes taken out, and whether the region reaches an end of an axis."""
    if not polys:
        return {p: [] for p in params}, 0.0, False
    lo, hi = _extent_of(polys)
    touches = bool(lo[0] <= axes[0][0] or hi[0] >= axes[0][-1]
                   or lo[1] <= axes[1][0] or hi[1] >= axes[1][-1])
    extent = {params[d]: [float(lo[d]), float(hi[d])] for d in range(2)}
    area = sum(polygon_area(o) - sum(polygon_area(h) for h in holes) for o, holes in polys)
    return extent, area, touches


def zoom_ranges(sc, ranges, polys, bounds):
    """The ranges of the next scan of a zooming region, and whether they changed.

    ``sc``: the last scan over ``ranges``; ``polys``: its region; ``bounds``: the
    largest range of each parameter.  No region: a window of 2 grid steps around
    the best point.  A side the region touches is widened by the range's width;
    a region narrower than 0.3 of the range is zoomed onto (its extent plus a
    quarter and a grid step on each side).  Ranges stay within ``bounds``."""
    steps = [a[1] - a[0] for a in sc.axes]
    if not polys:
        # the region is smaller than a grid cell: zoom onto the best point
        i, j = np.unravel_index(int(np.argmin(sc.chi2)), sc.chi2.shape)
        return [(sc.axes[0][i] - 2 * steps[0], sc.axes[0][i] + 2 * steps[0]),
                (sc.axes[1][j] - 2 * steps[1], sc.axes[1][j] + 2 * steps[1])], True
    lo, hi = _extent_of(polys)
    new, changed = [], False
    for d in range(2):
        a, b = ranges[d]
        w = b - a
        blo, bhi = bounds[d]
        na = max(a - w, blo) if lo[d] <= a else a     # touches: widen that side
        nb = min(b + w, bhi) if hi[d] >= b else b
        if (na, nb) == (a, b) and (hi[d] - lo[d]) < 0.3 * w:
            m = 0.25 * (hi[d] - lo[d]) + steps[d]    # too coarse: zoom on the region
            na, nb = max(lo[d] - m, blo), min(hi[d] + m, bhi)
        changed |= (na, nb) != (a, b)
        new.append((na, nb))
    return new, changed


def _refined_min(coefs, sc, fixed, settings):
    """Minimum of the chi2 near the grid's best point (Nelder-Mead on the NumPy twin)."""
    from scipy.optimize import minimize

    from ..stats.reference import chi2 as chi2_numpy
    from .grid import base_point, check_param

    i, j = np.unravel_index(int(np.argmin(sc.chi2)), sc.chi2.shape)
    k0, k1 = (check_param(p) for p in sc.params)
    base = base_point(fixed)
    scale = np.array([sc.axes[0][1] - sc.axes[0][0], sc.axes[1][1] - sc.axes[1][0]])

    def f(u):
        th = base.copy()
        th[k0], th[k1] = sc.axes[0][i] + u[0] * scale[0], sc.axes[1][j] + u[1] * scale[1]
        return float(sum(chi2_numpy(c, th, **settings.kwargs())[0][0] for c in coefs))

    res = minimize(f, np.zeros(2), method="Nelder-Mead",
                   options={"xatol": 1e-6, "fatol": 1e-12, "initial_simplex": [[0, 0], [1, 0], [0, 1]]})
    return min(sc.chi2_min, float(res.fun))


def check_visible(params, reasons, coefs) -> None:
    """One-line InputError if the detectors cannot see one of the two ``params``
    (``reasons``: why not, "" where they can): its region would be a band across
    whatever range was scanned, and the zoom would widen it without end."""
    for p, why in zip(params, reasons):
        require_visible(p, why, coefs, "a region needs two parameters the detectors see")


def region_2d(coefs, params, *, cl=0.90, ranges, points=201, fixed=None, zoom=True,
              settings: ScanSettings | None = None, progress=False,
              max_points: float | None = None, max_memory_gib: float | None = None) -> Region:
    """Allowed region of two charges at ``cl`` (two-parameter Delta chi2).

    Parameters
    ----------
    ranges : ((lo0, hi0), (lo1, hi1)) scan ranges, e
    points : grid points per axis
    zoom : adapt the ranges (up to 10 scans): widen a side the region
        touches, shrink onto the region's bounding box (plus a 25% margin)
        while the region spans less than 30% of a range
    max_points : budget of grid points, points**2 (default 4e6 = 2001**2)
    max_memory_gib : memory budget (default 4 GiB)

    Both budgets are checked before anything is computed; a chi2 that is not
    finite raises a one-line McscanError.
    """
    from .grid import check_param

    settings = settings or ScanSettings()
    params = tuple(params)
    if len(params) != 2 or params[0] == params[1]:
        raise InputError(f"a region needs two different parameters, got {params}")
    for p in params:
        check_param(p)
    level = delta_chi2_level(cl, 2)
    if isinstance(points, bool) or not float(points).is_integer():
        raise InputError(f"points = {points!r}: expected a whole number from 11 to 20001 per axis")
    points = int(points)
    if not 11 <= points <= 20001:
        raise InputError(f"points = {points}: expected 11 to 20001 per axis")
    budget.check_points(f"the region of {params[0]} and {params[1]}", float(points) ** 2,
                        budget.MAX_REGION_POINTS if max_points is None else max_points)
    # chi2, Delta chi2, converged, the pulls of every detector and the contour work arrays
    budget.check_memory(f"the region of {params[0]} and {params[1]}",
                        budget.grid_memory_bytes(float(points) ** 2, copies=8 + 2 * len(coefs)),
                        max_memory_gib)
    fixed = check_fixed(fixed)
    for p in params:
        if p in fixed:
            raise InputError(f"{p} is both scanned and fixed")
    check_visible(params, [unconstrained_reason(coefs, p) for p in params], coefs)
    ranges = list(ranges)
    if len(ranges) != 2:
        raise InputError(f"a region needs two ranges, got {len(ranges)}")
    ranges = [check_range(p, *r) for p, r in zip(params, ranges)]
    for _ in range(10 if zoom else 1):
        sc = _scan(coefs, params, ranges, points, fixed, settings, progress)
        check_finite_chi2(f"{params[0]} and {params[1]}", tuple(zip(params, sc.axes)), sc.chi2)
        polys = polygons(sc.axes[0], sc.axes[1], sc.delta_chi2, level)
        if not zoom:
            break
        ranges, changed = zoom_ranges(sc, ranges, polys, [(-MAX_CHARGE, MAX_CHARGE)] * 2)
        if not changed:
            break
    cmin = _refined_min(coefs, sc, fixed, settings)
    if not np.isfinite(cmin):
        raise McscanError(f"the chi2 minimum of {params[0]} and {params[1]} is not finite ({cmin!r}): "
                          f"the charges or the tables give counts beyond double precision")
    if cmin < sc.chi2_min:
        polys = polygons(sc.axes[0], sc.axes[1], sc.chi2 - cmin, level)
    extent, area, touches = region_summary(polys, sc.axes, params)
    if not (np.isfinite(area) and all(np.isfinite(v) for ends in extent.values() for v in ends)):
        raise McscanError(f"the region of {params[0]} and {params[1]} is not finite: the charges "
                          f"or the tables give counts beyond double precision")
    return Region(tuple(c.detector for c in coefs), params, float(cl), level, polys, extent,
                  float(area), touches, sc, cmin)
