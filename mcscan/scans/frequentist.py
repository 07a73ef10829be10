"""Frequentist statistics: fits to data, expected-limit bands and Feldman-Cousins intervals.

* :func:`with_data` / :func:`load_data`: coefficients whose data vector D is
  observed counts (docs/statistics.md section 1); every scan, limit and
  region then measures Delta chi2 against that data.
* :func:`fit`: the global minimum of the chi2 over one to three charges,
  with the fitted pulls, chi2_min, degrees of freedom, p-value and the
  Delta chi2 = 1 uncertainties.
* :func:`asimov_counts` / :func:`write_asimov`: expected counts N(theta) + B
  in the data-file format.
* :func:`expected_bands`: median and 68%/95% bands of the Wilks limits of
  toys generated under the SM, beside the Asimov interval.
* :func:`feldman_cousins`: the critical values t_c(theta) from toys at every
  grid value, the Feldman-Cousins interval and the coverage of the Wilks
  interval.

Toys are fitted by :func:`mcscan.stats.toys.toy_chi2` on a fixed grid of the
charge; see docs/statistics.md sections 3-5 for the methods and their
precision, and section 6 for determinism.
"""
from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq, minimize, minimize_scalar
from scipy.stats import chi2 as chi2_dist

from ..errors import InputError
from ..params import PARAMS, SPEC, check_param
from ..results import Result
from ..stats.kernels import chi2_points
from ..stats.toys import (expected_counts, generate_toys, generate_toys_at, grid_counts, plan_toys,
                          toy_chi2)
from .grid import ScanSettings, base_point, grid_scan
from .limits import delta_chi2_level, limit_1d, require_visible, true_runs, unconstrained_reason

__all__ = [
    "Fit",
    "Bands",
    "FCLimit",
    "with_data",
    "load_data",
    "fit",
    "asimov_counts",
    "write_asimov",
    "expected_bands",
    "feldman_cousins",
    "toy_limits",
    "refined_minimum",
    "DEFAULT_RANGES",
]

#: Scan ranges used when none is given (those of the built-in configuration), e.
DEFAULT_RANGES = {p: ((-6e-8, 6e-8) if SPEC[p].diagonal else (-3e-7, 3e-7)) for p in PARAMS}


def _coef_list(coefs):
    if hasattr(coefs, "S"):
        return [coefs]
    coefs = list(coefs)
    if not coefs:
        raise InputError("no detector given")
    return coefs


def _settings(settings):
    return settings if settings is not None else ScanSettings()


def _range(param, xrange):
    lo, hi = DEFAULT_RANGES[param] if xrange is None else (float(v) for v in xrange)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise InputError(f"range [{lo!r}, {hi!r}] of {param}: expected finite low < high (e)")
    return lo, hi


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------

def with_data(coefs, counts: dict) -> list:
    """Copies of ``coefs`` whose data D are ``counts[detector]`` (each (nbins,) >= 0)."""
    out = []
    for c in _coef_list(coefs):
        if c.detector not in counts:
            raise InputError(f"no observed counts for detector {c.detector} "
                             f"(data given for {', '.join(sorted(counts)) or 'none'})")
        d = np.asarray(counts[c.detector], dtype=float)
        if d.shape != c.S.shape:
            raise InputError(f"{c.detector}: {d.size} observed counts for {c.S.size} bins")
        if not (np.all(np.isfinite(d)) and np.all(d >= 0)):
            raise InputError(f"{c.detector}: observed counts must be finite and non-negative")
        out.append(dataclasses.replace(c, D=d.copy()))
    return out


def load_data(path, coefs) -> list:
    """Read a data file (:func:`mcscan.io.data.read_counts`) checked against the
    bins of ``coefs``; returns the coefficients with D = the observed counts."""
    from ..io.data import read_counts

    coefs = _coef_list(coefs)
    counts = read_counts(path, {c.detector: c.edges_kev for c in coefs})
    return with_data(coefs, counts)


def asimov_counts(coefs, fixed=None) -> dict:
    """{detector: (edges_kev, N(theta) + B)} at the charges ``fixed`` (others 0)."""
    theta = base_point(fixed)
    return {c.detector: (c.edges_kev, expected_counts(c, theta)) for c in _coef_list(coefs)}


def write_asimov(path, coefs, fixed=None, *, force=False):
    """Write the expected counts at ``fixed`` as a data file; returns its path."""
    from ..io.data import write_counts

    return write_counts(path, asimov_counts(coefs, fixed), force=force)


# ---------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Fit(Result):
    """Global minimum of the chi2 over ``params`` (the other charges fixed).

    ``errors[p]`` is the Delta chi2 = 1 interval of p (the other fitted
    charges profiled), None on a side where it leaves the search range.
    """

    kind = "fit"

    detectors: tuple
    params: tuple
    best: dict
    pulls: dict
    chi2_min: float
    ndof: int
    p_value: float | None
    errors: dict
    converged: bool
    fixed: dict = field(default_factory=dict)
    ranges: dict = field(default_factory=dict)
    unit: str = "e"

    def to_json(self) -> dict:
        return {
            "detectors": list(self.detectors),
            "params": list(self.params),
            "best": {p: float(v) for p, v in self.best.items()},
            "pulls": {d: {"signal": float(a), "background": float(b)} for d, (a, b) in self.pulls.items()},
            "chi2_min": float(self.chi2_min),
            "ndof": int(self.ndof),
            "p_value": None if self.p_value is None else float(self.p_value),
            "errors": {p: {"interval": [None if lo is None else float(lo), None if hi is None else float(hi)],
                           "minus": None if lo is None else float(self.best[p] - lo),
                           "plus": None if hi is None else float(hi - self.best[p])}
                       for p, (lo, hi) in self.errors.items()},
            "converged": bool(self.converged),
            "fixed": {p: float(v) for p, v in self.fixed.items()},
            "ranges": {p: [float(a), float(b)] for p, (a, b) in self.ranges.items()},
            "unit": self.unit,
        }

    @classmethod
    def from_json(cls, d: dict) -> "Fit":
        """The Fit whose :meth:`to_json` is ``d``."""
        errors = {p: tuple(e["interval"]) for p, e in d["errors"].items()}
        return cls(tuple(d["detectors"]), tuple(d["params"]), dict(d["best"]),
                   {k: (v["signal"], v["background"]) for k, v in d["pulls"].items()},
                   float(d["chi2_min"]), int(d["ndof"]), d["p_value"], errors,
                   bool(d["converged"]), dict(d["fixed"]),
                   {p: tuple(r) for p, r in d["ranges"].items()}, d["unit"])


#: Grid points per free charge of the starting search of :func:`fit` (by number of free charges).
FIT_START_POINTS = {1: 2001, 2: 101, 3: 31}


def _chi2_sum(coefs, theta, settings):
    theta = np.atleast_2d(theta)
    tot = np.zeros(theta.shape[0])
    ok = np.ones(theta.shape[0], dtype=bool)
    for c in coefs:
        chi, _, _, it = chi2_points(c, theta, parallel=False, **settings.kwargs())
        tot += chi
        ok &= it > 0
    return tot, ok


def _minimise(chi2_rows, u, free, lo, hi):
    """Minimise over the coordinates ``free`` of ``u`` (others kept) within [lo, hi].

    ``chi2_rows(U)`` gives the chi2 of every row of U (n, k).  A grid of
    :data:`FIT_START_POINTS` values per free coordinate finds the basin;
    Brent's method (one free coordinate) or Nelder-Mead started on a simplex
    of grid steps (more) refines it.  Returns (u, chi2).
    """
    u = np.array(u, dtype=float)
    m = len(free)
    axes = [np.linspace(lo[i], hi[i], FIT_START_POINTS[m]) for i in free]
    mesh = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=-1)
    U = np.repeat(u[None], mesh.shape[0], axis=0)
    U[:, free] = mesh
    chi = chi2_rows(U)
    j = int(np.argmin(chi))
    u0, f0 = U[j].copy(), float(chi[j])

    def f(w):
        v = u0.copy()
        v[free] = w
        return float(chi2_rows(v[None])[0])

    if m == 1:
        ax = axes[0]
        jj = int(np.argmin(np.abs(ax - u0[free[0]])))
        a, b = ax[max(jj - 1, 0)], ax[min(jj + 1, ax.size - 1)]
        res = minimize_scalar(f, bounds=(a, b), method="bounded",
                              options={"xatol": 1e-12 * (b - a), "maxiter": 500})
        w, fw = np.array([res.x]), float(res.fun)
    else:
        step = np.array([g[1] - g[0] for g in axes])
        w0 = u0[free]
        box_lo, box_hi = np.asarray(lo, dtype=float)[free], np.asarray(hi, dtype=float)[free]
        # Nelder-Mead kept inside [lo, hi], as Brent's bracket is for one coordinate (the
        # Delta chi2 = 1 ends profile within the box), its first vertices a grid step
        # from the best grid point, inwards at the upper end
        inward = np.where(w0 + step <= box_hi, 1.0, -1.0)
        simplex = np.vstack([w0] + [w0 + np.eye(m)[i] * step[i] * inward[i] for i in range(m)])
        res = minimize(f, w0, method="Nelder-Mead", bounds=list(zip(box_lo, box_hi)),
                       options={"initial_simplex": simplex, "xatol": 1e-11, "fatol": 1e-12,
                                "maxiter": 4000 * m, "maxfev": 8000 * m})
        w, fw = np.asarray(res.x), float(res.fun)
    if fw <= f0:
        u0[free] = w
        return u0, fw
    return u0, f0


def _not_a_number(coefs, params, theta, idx):
    """One InputError line for a fit whose chi2 is NaN at ``theta``: the profile of the pulls
    fails in double precision, in practice for observed counts of 1e20 and more in a bin
    (docs/statistics.md section 2)."""
    c = max(coefs, key=lambda c: c.D.max())
    k = int(np.argmax(c.D))
    at = ", ".join(f"{p} = {theta[i]:.6g} e" for p, i in zip(params, idx))
    raise InputError(f"the chi2 of the fit is not a number at {at}: observed counts up to "
                     f"{c.D[k]:.6g} ({c.detector} bin {k}) are beyond what the profile of the "
                     f"pulls handles in double precision")


def fit(coefs, params, *, fixed=None, ranges=None, settings=None) -> Fit:
    """Minimise the chi2 of ``coefs`` (with their data D) over ``params``.

    Parameters
    ----------
    coefs : Coefficients or a sequence of them (combined: chi2 summed)
    params : one to three charge names
    fixed : {charge: value} for the other charges (default 0)
    ranges : {charge: (lo, hi)} search ranges (default :data:`DEFAULT_RANGES`)

    The minimum is searched on a grid (:data:`FIT_START_POINTS` per charge),
    then refined from the best grid point: Brent's method for one charge,
    Nelder-Mead (charges in units of their range) for two or three, both within
    the ranges.  The
    Delta chi2 = 1 interval of each charge profiles the other fitted charges
    the same way at every trial value; its ends are found by Brent's method.
    The degrees of freedom are the number of bins minus the fitted charges
    (each pull comes with its own auxiliary measurement).
    """
    coefs = _coef_list(coefs)
    settings = _settings(settings)
    params = tuple(params) if not isinstance(params, str) else (params,)
    if not 1 <= len(params) <= 3:
        raise InputError(f"fit of {len(params)} charges: expected 1 to 3")
    if len(set(params)) != len(params):
        raise InputError(f"charge named twice in {', '.join(params)}")
    idx = [check_param(p) for p in params]
    fixed = dict(fixed or {})
    for p in params:
        if p in fixed:
            raise InputError(f"{p} is both fitted and fixed")
    base = base_point(fixed)
    ranges = {p: _range(p, (ranges or {}).get(p)) for p in params}
    k = len(params)
    scale = np.array([max(abs(v) for v in ranges[p]) for p in params])
    lo = np.array([ranges[p][0] for p in params]) / scale
    hi = np.array([ranges[p][1] for p in params]) / scale

    def rows(U):
        th = np.repeat(base[None], U.shape[0], axis=0)
        th[:, idx] = U * scale
        chi = _chi2_sum(coefs, th, settings)[0]
        if np.isnan(chi).any():
            _not_a_number(coefs, params, th[int(np.argmax(np.isnan(chi)))], idx)
        return chi

    u_best, cmin = _minimise(rows, np.zeros(k), list(range(k)), lo, hi)
    theta = base.copy()
    theta[idx] = u_best * scale
    pulls = {}
    converged = True
    for c in coefs:
        _, a, b, it = chi2_points(c, theta[None], parallel=False, **settings.kwargs())
        pulls[c.detector] = (float(a[0]), float(b[0]))
        converged &= bool(it[0] > 0)
    nbins = sum(c.S.size for c in coefs)
    ndof = nbins - k
    pval = float(chi2_dist.sf(cmin, ndof)) if ndof > 0 else None
    errors = {}
    for i, p in enumerate(params):
        others = [j for j in range(k) if j != i]

        def prof(v, i=i, others=others):
            u = u_best.copy()
            u[i] = v
            if not others:
                return float(rows(u[None])[0])
            return _minimise(rows, u, others, lo, hi)[1]

        ends = []
        for sign, edge in ((-1, lo[i]), (1, hi[i])):
            x0 = float(u_best[i])
            step = 1e-4 * (hi[i] - lo[i])
            end, prev = None, x0
            while True:
                x1 = x0 + sign * step
                if (x1 - edge) * sign >= 0:
                    x1 = edge
                if prof(x1) - cmin >= 1.0:
                    a_, b_ = sorted((prev, x1))
                    end = brentq(lambda v: prof(v) - cmin - 1.0, a_, b_,  # noqa: E731
                                 xtol=1e-12 * (hi[i] - lo[i]), rtol=1e-12) * scale[i]
                    break
                if x1 == edge:
                    break
                prev = x1
                step *= 2.0
            ends.append(end)
        errors[p] = tuple(ends)
    return Fit(tuple(c.detector for c in coefs), params,
               {p: float(theta[j]) for p, j in zip(params, idx)}, pulls, float(cmin), int(ndof),
               pval, errors, bool(converged), _given(fixed),
               {p: tuple(ranges[p]) for p in params})


# ---------------------------------------------------------------------------
# toys on a grid: minimum and limits per toy
# ---------------------------------------------------------------------------

def refined_minimum(chi, xs):
    """Per row of ``chi`` (ntoys, G) on the grid ``xs``: (x_min, chi2_min).

    The grid minimum, refined by the parabola through it and its two
    neighbours (when it is interior and the parabola is convex); never
    above the grid minimum.
    """
    chi = np.atleast_2d(chi)
    xs = np.asarray(xs, dtype=float)
    rows = np.arange(chi.shape[0])
    k = np.argmin(chi, axis=1)
    cmin = chi[rows, k].copy()
    xmin = xs[k].copy()
    if xs.size >= 3:
        inner = (k > 0) & (k < xs.size - 1)
        kk = np.clip(k, 1, xs.size - 2)
        x0, x1, x2 = xs[kk - 1], xs[kk], xs[kk + 1]
        f0, f1, f2 = chi[rows, kk - 1], chi[rows, kk], chi[rows, kk + 1]
        d1 = (f1 - f0) / (x1 - x0)
        d2 = (f2 - f1) / (x2 - x1)
        a = (d2 - d1) / (x2 - x0)
        with np.errstate(divide="ignore", invalid="ignore"):
            xv = 0.5 * (x0 + x1) - d1 / (2.0 * a)
            fv = f0 + d1 * (xv - x0) + a * (xv - x0) * (xv - x1)
        good = inner & (a > 0) & np.isfinite(fv) & (fv < cmin) & (xv >= x0) & (xv <= x2)
        cmin = np.where(good, fv, cmin)
        xmin = np.where(good, xv, xmin)
    return xmin, cmin


def toy_limits(dchi, xs, level):
    """Lowest and highest value of the allowed set {x : dchi(x) <= level} per row.

    ``dchi`` (ntoys, G) Delta chi2 on the grid ``xs``; crossings are
    linearly interpolated between grid points.  Returns lower, upper (ntoys,)
    and open_low, open_high (bool: the allowed set reaches that end of the
    grid, the limit is the grid end).  A row with no allowed grid point gets
    the position of its smallest value for both.
    """
    dchi = np.atleast_2d(dchi)
    xs = np.asarray(xs, dtype=float)
    G = xs.size
    rows = np.arange(dchi.shape[0])
    inside = dchi <= level
    anyin = inside.any(axis=1)
    first = np.argmax(inside, axis=1)
    last = G - 1 - np.argmax(inside[:, ::-1], axis=1)
    kmin = np.argmin(dchi, axis=1)
    first = np.where(anyin, first, kmin)
    last = np.where(anyin, last, kmin)

    def cross(i_out, i_in):
        d_out, d_in = dchi[rows, i_out], dchi[rows, i_in]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (level - d_in) / (d_out - d_in)
        t = np.where(np.isfinite(t), np.clip(t, 0.0, 1.0), 0.0)
        return xs[i_in] + t * (xs[i_out] - xs[i_in])

    open_low = anyin & (first == 0)
    open_high = anyin & (last == G - 1)
    lower = np.where(anyin & ~open_low, cross(np.maximum(first - 1, 0), first), xs[first])
    upper = np.where(anyin & ~open_high, cross(np.minimum(last + 1, G - 1), last), xs[last])
    return lower, upper, open_low, open_high


def _stream_key(detector: str) -> int:
    """Stable stream number of a detector (CRC-32 of its name)."""
    return zlib.crc32(detector.encode())


def _toy_chi2_block(coefs, Ns, mus, seed, start, stop, key, settings, parallel, indices=None):
    """Summed chi2 (n, G) of toys start..stop-1 (or of the toys ``indices``) over the detectors."""
    tot = None
    ok = None
    for c, N, mu in zip(coefs, Ns, mus):
        widths = dict(signal_pull=settings.signal_pull, background_pull=settings.background_pull)
        k = (_stream_key(c.detector), *key)
        if indices is None:
            D, a0, b0 = generate_toys(mu, seed, start, stop, key=k, **widths)
        else:
            D, a0, b0 = generate_toys_at(mu, seed, indices, key=k, **widths)
        chi, _, _, good = toy_chi2(N, c.S, c.B, D, a0, b0, parallel=parallel, **settings.kwargs())
        tot = chi if tot is None else tot + chi
        ok = good if ok is None else ok & good
    return tot, ok


def _check_toys(toys, seed, chunk, points):
    toys, seed, chunk, points = int(toys), int(seed), int(chunk), int(points)
    if toys < 1:
        raise InputError(f"toys = {toys}: expected a positive number")
    if seed < 0:
        raise InputError(f"seed = {seed}: expected a non-negative integer")
    if chunk < 1:
        raise InputError(f"chunk = {chunk}: expected a positive number of toys")
    if not 5 <= points <= 100_001:
        raise InputError(f"points = {points}: expected 5 to 100001")
    return toys, seed, chunk, points


def _check_visible(coefs, param, what) -> None:
    """One-line InputError if the detectors cannot see ``param`` (its limit is
    unconstrained): toys at its values would all be the same, and ``what`` needs an
    allowed set to place its grid around."""
    require_visible(param, unconstrained_reason(coefs, param), coefs,
                    f"{what} needs a parameter the detectors see")


def _window(regions, pad, points):
    lo = min(r[0] for r in regions)
    hi = max(r[1] for r in regions)
    w = hi - lo
    if not w > 0:
        w = max(abs(lo), abs(hi), 1e-12)
    return np.linspace(lo - pad * w, hi + pad * w, points)


#: Most times a toy's window is extended on a side its allowed set reaches.
EXTEND = 4

QUANTILES = {"median": 0.5, "p16": 0.16, "p84": 0.84, "p2.5": 0.025, "p97.5": 0.975}


def _quantiles(v):
    return {k: float(np.quantile(v, q)) for k, q in QUANTILES.items()}


class _FieldsEqual:
    """Equality of a result whose fields hold arrays: field by field, arrays bit for bit
    (NaN equal to NaN), so that a result read back from its file equals the original."""

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(_same_value(getattr(self, f.name), getattr(other, f.name))
                   for f in dataclasses.fields(self))

    __hash__ = None


def _same_value(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return (a.shape == b.shape and a.dtype.kind == b.dtype.kind
                and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f")))
    return bool(a == b)


def _given(fixed) -> dict:
    """The charges fixed away from 0 (a charge fixed at 0 is the default)."""
    return {p: float(v) for p, v in dict(fixed or {}).items() if float(v) != 0.0}


@dataclass(frozen=True, eq=False)
class Bands(_FieldsEqual, Result):
    """Expected-limit bands of one charge from toys under the null hypothesis."""

    kind = "bands"

    detectors: tuple
    param: str
    cl: float
    toys: int
    seed: int
    asimov_regions: list
    lower: dict
    upper: dict
    grid: np.ndarray
    lower_limits: np.ndarray
    upper_limits: np.ndarray
    open_low: int
    open_high: int
    unconverged: int
    fixed: dict = field(default_factory=dict)
    unit: str = "e"
    channels: tuple = ()
    table_hashes: tuple = ()
    settings: ScanSettings | None = None

    def to_json(self) -> dict:
        return {
            "detectors": list(self.detectors),
            "param": self.param,
            "cl": self.cl,
            "toys": self.toys,
            "seed": self.seed,
            "asimov_regions": [[float(a), float(b)] for a, b in self.asimov_regions],
            "lower": dict(self.lower),
            "upper": dict(self.upper),
            "unit": self.unit,
            "grid": {"low": float(self.grid[0]), "high": float(self.grid[-1]), "points": int(self.grid.size)},
            "open_low": int(self.open_low),
            "open_high": int(self.open_high),
            "unconverged": int(self.unconverged),
            "fixed": {p: float(v) for p, v in self.fixed.items()},
            "toy_limits": {"lower": _finite_list(self.lower_limits),
                           "upper": _finite_list(self.upper_limits)},
        }

    @classmethod
    def from_json(cls, d: dict) -> "Bands":
        """The Bands whose :meth:`to_json` is ``d`` (the toys' grid rebuilt from its ends)."""
        g = d["grid"]
        toy = d.get("toy_limits", {})
        arr = lambda v: np.array([np.nan if x is None else x for x in v], dtype=float)  # noqa: E731
        return cls(tuple(d["detectors"]), d["param"], float(d["cl"]), int(d["toys"]), int(d["seed"]),
                   [list(r) for r in d["asimov_regions"]], dict(d["lower"]), dict(d["upper"]),
                   np.linspace(g["low"], g["high"], int(g["points"])),
                   arr(toy.get("lower", [])), arr(toy.get("upper", [])), int(d["open_low"]),
                   int(d["open_high"]), int(d["unconverged"]), dict(d["fixed"]), d["unit"])


# ---------------------------------------------------------------------------
# where toys run: pure tasks for a backend (mcscan.scans.backends)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ToyJob:
    """Everything a task of toys needs: the detectors' coefficients, the point the
    toys' grid passes through (``base``, charge ``index`` scanned over ``xs``), the
    seed, the settings, the C.L. level, the toy count and the toys per kernel call.

    Tasks are pure functions of (item, job): any backend, any chunking and any
    thread count gives the same bits (docs/statistics.md section 3.2).
    """

    coefs: tuple
    base: np.ndarray
    index: int
    xs: np.ndarray
    seed: int
    settings: ScanSettings
    level: float
    toys: int
    chunk: int
    parallel: bool = True


def _limits_on(job: ToyJob, nl, nh, start, stop, indices=None):
    """Limits of the toys start..stop-1 (or ``indices``) under the base point, on the
    window ``job.xs`` extended by nl (nh) widths below (above)."""
    xs = job.xs
    G = xs.size
    width = xs[-1] - xs[0]
    grid = xs if nl == nh == 0 else np.linspace(xs[0] - nl * width, xs[-1] + nh * width,
                                                G + (nl + nh) * (G - 1))
    Ng = [grid_counts(c, job.base, job.index, grid) for c in job.coefs]
    mus = [expected_counts(c, job.base) for c in job.coefs]
    chi, ok = _toy_chi2_block(job.coefs, Ng, mus, job.seed, start, stop, (), job.settings,
                              job.parallel, indices)
    _, cmin = refined_minimum(chi, grid)
    return (*toy_limits(chi - cmin[:, None], grid, job.level), ~ok.all(axis=1))


def _bands_chunk(start, job: ToyJob):
    """Task: limits of the toys [start, start + chunk) on the first window."""
    plan_toys(job.toys * job.xs.size * len(job.coefs))           # every toy's first window
    return _limits_on(job, 0, 0, start, min(job.toys, start + job.chunk))


def _bands_extended(pos, job: ToyJob, groups):
    """Task: limits of the toys of ``groups[pos] = (nl, nh, indices)`` on their extended window."""
    nl, nh, sel = groups[pos]
    return _limits_on(job, nl, nh, 0, 0, np.asarray(sel, dtype=np.int64))


def _fc_value(j, job: ToyJob):
    """Task: Delta chi2 at x_j of the ``job.toys`` toys generated at x_j (each profiled
    over the whole grid), and how many toys had an unconverged profile."""
    xs = job.xs
    theta = job.base.copy()
    theta[job.index] = xs[j]
    plan_toys(job.toys * xs.size * xs.size * len(job.coefs))     # every grid value's toys
    Ns = [grid_counts(c, job.base, job.index, xs) for c in job.coefs]
    mus = [expected_counts(c, theta) for c in job.coefs]
    d = np.empty(job.toys)
    nbad = 0
    for start in range(0, job.toys, job.chunk):
        stop = min(job.toys, start + job.chunk)
        chi, ok = _toy_chi2_block(job.coefs, Ns, mus, job.seed, start, stop, (j,), job.settings,
                                  job.parallel)
        _, cmin = refined_minimum(chi, xs)
        d[start:stop] = chi[:, j] - cmin
        nbad += int((~ok.all(axis=1)).sum())
    return d, nbad


#: Toys per kernel call by default: in this process, and most per task on a cluster.
CHUNK_TOYS = 4096


def _chunk_for(chunk, toys, backend) -> int:
    """Toys per kernel call: ``chunk``, or by default :data:`CHUNK_TOYS`, cut on a cluster
    so that every worker thread gets about four tasks (whole blocks of toys)."""
    if chunk is not None:
        return chunk
    from ..stats.toys import TOY_BLOCK

    threads = int(backend.describe().get("threads", 1)) if backend is not None else 1
    if threads <= 1:
        return CHUNK_TOYS
    per = -(-toys // (4 * threads))
    return int(min(CHUNK_TOYS, max(TOY_BLOCK, -(-per // TOY_BLOCK) * TOY_BLOCK)))


def _backend(backend):
    from .backends import LocalBackend

    return LocalBackend() if backend is None else backend


def expected_bands(coefs, param, *, toys=1000, seed=0, cl=0.90, fixed=None, settings=None,
                   xrange=None, points=201, pad=1.0, chunk=None, parallel=True,
                   progress=False, backend=None) -> Bands:
    """Median and 68%/95% bands of the Wilks limits of ``param`` from toys.

    Toys are generated at the point ``fixed`` (default: the SM, all charges
    0) with the pulls at 0 and their auxiliary measurements drawn; each toy's
    chi2 is profiled over the pulls on a grid of ``points`` values of
    ``param`` spanning the Asimov allowed set widened by ``pad`` times its
    width on each side.  Its limits are the lowest and highest value where
    chi2 - chi2_min <= the ``cl`` level for one parameter, chi2_min the
    refined grid minimum (:func:`refined_minimum`), crossings linearly
    interpolated (:func:`toy_limits`).  A toy whose allowed set reaches an
    end of the window is profiled again on a window extended on that side by
    the window width, up to :data:`EXTEND` times (``open_low``/``open_high``
    count the toys still open after that).  ``toys`` are processed ``chunk``
    at a time (one task each on ``backend``, a :mod:`mcscan.scans.backends`
    backend, default this process); the result does not depend on ``chunk``,
    the backend or the thread count.
    """
    coefs = _coef_list(coefs)
    settings = _settings(settings)
    be = _backend(backend)
    toys, seed, _, points = _check_toys(toys, seed, 1 if chunk is None else chunk, points)
    chunk = _chunk_for(None if chunk is None else int(chunk), toys, be)
    k = check_param(param)
    _check_visible(coefs, param, "an expected-limit band")
    level = delta_chi2_level(cl, 1)
    fixed = dict(fixed or {})
    if param in fixed:
        raise InputError(f"{param} is both scanned and fixed")
    base = base_point(fixed)
    asimov = [dataclasses.replace(c, D=expected_counts(c, base)) for c in coefs]
    lim = limit_1d(asimov, param, cl=cl, xrange=_range(param, xrange), fixed=fixed, settings=settings,
                   extend=6 if xrange is None else 0)
    xs = _window(lim.regions, float(pad), points)
    job = ToyJob(tuple(coefs), base, k, xs, seed, settings, float(level), toys, chunk, bool(parallel))

    lower = np.empty(toys)
    upper = np.empty(toys)
    open_lo = np.zeros(toys, dtype=bool)
    open_hi = np.zeros(toys, dtype=bool)
    unconv = np.zeros(toys, dtype=bool)
    starts = list(range(0, toys, chunk))
    for start, (lo, hi, ol, oh, nc) in be.map(
            _bands_chunk, starts, args=(job,), progress=progress, desc=f"bands {param}",
            weights=[min(toys, s + chunk) - s for s in starts], unit="toy"):
        sl = slice(start, min(toys, start + chunk))
        lower[sl], upper[sl], open_lo[sl], open_hi[sl], unconv[sl] = lo, hi, ol, oh, nc
    # a toy whose allowed set reaches an end of the window is redone on a window
    # extended on that side (by its width, up to EXTEND times): each toy's
    # windows depend on its own data only
    nl = np.zeros(toys, dtype=np.int64)
    nh = np.zeros(toys, dtype=np.int64)
    for _ in range(EXTEND):
        todo = np.flatnonzero(open_lo | open_hi)
        if todo.size == 0:
            break
        nl[todo] += open_lo[todo]
        nh[todo] += open_hi[todo]
        groups = []
        for a, b in sorted({(int(nl[t]), int(nh[t])) for t in todo}):
            sel = todo[(nl[todo] == a) & (nh[todo] == b)]
            for s in range(0, sel.size, chunk):
                groups.append((a, b, tuple(int(t) for t in sel[s:s + chunk])))
        for pos, (lo, hi, ol, oh, nc) in be.map(_bands_extended, list(range(len(groups))),
                                                args=(job, tuple(groups))):
            sel = np.asarray(groups[pos][2], dtype=np.int64)
            lower[sel], upper[sel], open_lo[sel], open_hi[sel], unconv[sel] = lo, hi, ol, oh, nc
    olo, ohi, bad = int(open_lo.sum()), int(open_hi.sum()), int(unconv.sum())
    return Bands(tuple(c.detector for c in coefs), param, float(cl), toys, seed,
                 [list(r) for r in lim.regions], _quantiles(lower), _quantiles(upper), xs,
                 lower, upper, olo, ohi, bad, _given(fixed), "e", tuple(coefs[0].channels),
                 tuple(c.table_hash for c in coefs), settings)


# ---------------------------------------------------------------------------
# Feldman-Cousins
# ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class FCLimit(_FieldsEqual, Result):
    """Feldman-Cousins allowed set of one charge, with the Wilks one beside it
    (results kind ``fc``)."""

    kind = "fc"

    detectors: tuple
    param: str
    cl: float
    regions: list
    open_low: bool
    open_high: bool
    chi2_min: float
    toys: int
    seed: int
    grid: np.ndarray
    critical: np.ndarray
    coverage: np.ndarray
    coverage_error: np.ndarray
    delta_chi2_data: np.ndarray
    wilks_regions: list
    delta_chi2: float
    unconverged: int
    fixed: dict = field(default_factory=dict)
    unit: str = "e"
    method: str = "feldman-cousins"
    channels: tuple = ()
    table_hashes: tuple = ()
    settings: ScanSettings | None = None

    def to_json(self) -> dict:
        return {
            "detectors": list(self.detectors),
            "param": self.param,
            "cl": self.cl,
            "method": self.method,
            "regions": [[float(a), float(b)] for a, b in self.regions],
            "unit": self.unit,
            "open_low": bool(self.open_low),
            "open_high": bool(self.open_high),
            "chi2_min": float(self.chi2_min),
            "toys": self.toys,
            "seed": self.seed,
            "critical_values": [[float(x), float(t)] for x, t in zip(self.grid, self.critical)],
            "wilks_coverage": [[float(x), float(c), float(e)]
                               for x, c, e in zip(self.grid, self.coverage, self.coverage_error)],
            "delta_chi2_data": _finite_list(self.delta_chi2_data),
            "wilks_regions": [[float(a), float(b)] for a, b in self.wilks_regions],
            "wilks_delta_chi2": float(self.delta_chi2),
            "unconverged": int(self.unconverged),
            "fixed": {p: float(v) for p, v in self.fixed.items()},
        }


def _finite_list(a) -> list:
    """A list of floats for strict JSON (None for a non-finite value)."""
    return [float(x) if math.isfinite(x) else None for x in np.asarray(a, dtype=float).ravel()]


def _fc_spec(coefs, param, xs, toys, seed, base, settings) -> dict:
    """What a stored Feldman-Cousins computation is (its folder must match it to resume)."""
    import hashlib

    h = hashlib.sha256()
    for c in coefs:
        for a in (c.S, c.L, c.Q, c.B, c.D):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(xs, dtype=np.float64).tobytes())
    return {"kind": "feldman-cousins", "param": param, "detectors": [c.detector for c in coefs],
            "table_hashes": [c.table_hash for c in coefs], "toys": int(toys), "seed": int(seed),
            "base": [float(v) for v in base], "settings": dataclasses.asdict(settings),
            "points": int(xs.size), "inputs_sha256": h.hexdigest()}


def _regions_below(xs, h):
    """Union of intervals where h < 0 on the grid, ends linearly interpolated."""
    inside = h < 0
    n = xs.size

    def cross(a, b):
        return xs[a] + (0.0 - h[a]) / (h[b] - h[a]) * (xs[b] - xs[a])

    regions = [[float(xs[i] if i == 0 else cross(i - 1, i)), float(xs[j] if j == n - 1 else cross(j, j + 1))]
               for i, j in true_runs(inside)]
    return regions, bool(inside[0]), bool(inside[-1])


def feldman_cousins(coefs, param, *, toys=1000, seed=0, cl=0.90, fixed=None, settings=None,
                    xrange=None, points=201, pad=1.0, grid=None, chunk=None, parallel=True,
                    progress=False, store=None, resume=False, backend=None) -> FCLimit:
    """Feldman-Cousins interval of ``param`` for the data D of ``coefs``.

    For every value theta_j of a grid (``grid``, or ``points`` values over the
    Wilks allowed set of the data widened by ``pad`` times its width on each
    side), ``toys`` toys are generated at theta_j (the other charges at
    ``fixed``, pulls at 0, auxiliary measurements drawn) and profiled over the
    whole grid; a toy's Delta chi2 is chi2(theta_j) minus its refined grid
    minimum.  t_c(theta_j) is the ``cl`` quantile of these, and the interval
    is {theta : Delta chi2_data(theta) < t_c(theta)}, Delta chi2_data measured
    from the data's global minimum, ends linearly interpolated between grid
    values.  Also returned: the coverage of the Wilks interval at each
    theta_j (fraction of toys with Delta chi2 < the Wilks level) and its
    binomial standard error.

    Every grid value is one task on ``backend`` (a :mod:`mcscan.scans.backends`
    backend, default this process), its toys ``chunk`` per kernel call; the
    result does not depend on the backend, ``chunk`` or the thread count.

    ``store``: a folder that keeps the toys' Delta chi2 of every finished grid
    value (one file each, written atomically); after an interruption the same
    call with ``resume=True`` continues from them (the folder must describe
    the same computation; any backend).  It is deleted when the interval is
    complete.
    """
    coefs = _coef_list(coefs)
    settings = _settings(settings)
    toys, seed, _, points = _check_toys(toys, seed, 1 if chunk is None else chunk, points)
    chunk = CHUNK_TOYS if chunk is None else int(chunk)
    k = check_param(param)
    _check_visible(coefs, param, "a Feldman-Cousins interval")
    level = delta_chi2_level(cl, 1)
    fixed = dict(fixed or {})
    if param in fixed:
        raise InputError(f"{param} is both scanned and fixed")
    base = base_point(fixed)
    lim = limit_1d(coefs, param, cl=cl, xrange=_range(param, xrange), fixed=fixed, settings=settings,
                   extend=6 if xrange is None else 0)
    if grid is None:
        xs = _window(lim.regions, float(pad), points)
    else:
        xs = np.asarray(grid, dtype=float)
        if xs.ndim != 1 or xs.size < 5 or not np.all(np.isfinite(xs)) or not np.all(np.diff(xs) > 0):
            raise InputError("grid: expected 5 or more finite, increasing charges in e")
    sc = grid_scan(coefs, (param,), (xs,), fixed=fixed, settings=settings)
    cmin_data = min(lim.chi2_min, float(np.min(sc.chi2)))
    dchi_data = sc.chi2 - cmin_data
    crit = np.empty(xs.size)
    cov = np.empty(xs.size)
    bad = 0
    chunks = None
    if store is not None:
        from ..io.chunks import ChunkStore

        chunks = ChunkStore(store, _fc_spec(coefs, param, xs, toys, seed, base, settings),
                            resume=resume, n_chunks=xs.size)
    done = chunks.check()[0] if chunks is not None else set()

    def finish(j, d, nbad):
        nonlocal bad
        bad += nbad
        crit[j] = float(np.quantile(d, cl))
        cov[j] = float(np.mean(d < level))

    for j in sorted(done):
        got = chunks.read(j)
        finish(j, got["delta_chi2"], int(got["unconverged"]))
    todo = [j for j in range(xs.size) if j not in done]
    job = ToyJob(tuple(coefs), base, k, xs, seed, settings, float(level), toys, chunk, bool(parallel))
    for j, (d, nbad) in _backend(backend).map(_fc_value, todo, args=(job,), progress=progress,
                                             desc=f"feldman-cousins {param}",
                                             weights=[toys] * len(todo), unit="toy"):
        if chunks is not None:
            chunks.write(j, {"delta_chi2": d, "unconverged": np.array(nbad)})
        finish(j, d, nbad)
    if chunks is not None:
        chunks.remove()
    err = np.sqrt(cov * (1.0 - cov) / toys)
    regions, open_low, open_high = _regions_below(xs, dchi_data - crit)
    return FCLimit(tuple(c.detector for c in coefs), param, float(cl), regions, open_low, open_high,
                   float(cmin_data), toys, seed, xs, crit, cov, err, dchi_data,
                   [list(r) for r in lim.regions], float(level), bad, _given(fixed), "e",
                   "feldman-cousins", tuple(coefs[0].channels), tuple(c.table_hash for c in coefs),
                   settings)
