"""Allowed intervals from Delta chi2 profiles.

A Delta chi2 profile need not be monotonic (a charge can cancel the weak
charge inside the recoil window), so the allowed set at a C.L. is returned
as a union of intervals.  Grid crossings are refined by Brent's method on
the profiled chi2 itself, to a relative precision far below the grid step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import budget
from ..errors import InputError, McscanError
from ..params import CL_RANGE, FLAVOURS, MAX_CHARGE, MIN_SPAN, PARAMS, SPEC, charge_name, visible_params
from ..results import Result
from .grid import Scan, ScanSettings, base_point, chi2_function, grid_scan

__all__ = ["Limit", "cl_levels", "delta_chi2_level", "allowed_intervals", "limit_1d", "VISIBLE_PARAMS",
           "CL_RANGE", "MAX_CHARGE", "MIN_SPAN", "check_range", "check_fixed", "unconstrained_reason",
           "check_finite_chi2", "limits_1d", "require_visible", "true_runs"]

#: Charges an ESS beam (nu_e, nu_mu, anti-nu_mu) can see.
VISIBLE_PARAMS = visible_params(("e", "mu"))
#: A limit's chi2 curve with at most this many points x detectors is computed by the
#: NumPy reference profile (:func:`mcscan.stats.reference.chi2`, grid kernel "numpy")
#: instead of the numba row kernel: about 10 to 30 ms per 2001 points and detector,
#: against about 0.45 s to load the compiled kernel in a new process (and seconds to
#: compile it into an empty cache), so a default limit loads no numba.  The two agree
#: to the convergence tolerance; the interval ends come from the NumPy profile either way.
NUMPY_CURVE_POINTS = 20_000
#: Points per NumPy evaluation of such a curve: its (points, bins) temporaries stay in the
#: cache and the heap (2001 points at once took 60% longer, with 0.4 s of page faults for
#: the 30 curves of `mcscan sensitivities`).
NUMPY_CHUNK = 512


def _curve(coefs, param, x, fixed, settings, progress, kernel, memo) -> Scan:
    """The chi2 curve of a limit: :func:`grid_scan` over ``x``.  With the NumPy kernel
    and a ``memo``, each detector's curve is computed once per batch and the detectors
    are combined as grid_scan combines them (chi2 summed in detector order from 0,
    convergence ANDed), so the bits are those of one grid_scan call."""
    if kernel != "numpy" or memo is None:
        return grid_scan(coefs, (param,), (x,), fixed=fixed, settings=settings, progress=progress,
                         kernel=kernel, chunk=NUMPY_CHUNK if kernel == "numpy" else 65536)
    parts = []
    for c in coefs:
        key = (id(c), param, tuple(sorted(fixed.items())), settings, x.tobytes())
        if key not in memo:
            memo[key] = grid_scan([c], (param,), (x,), fixed=fixed, settings=settings,
                                  kernel="numpy", chunk=NUMPY_CHUNK)
        parts.append(memo[key])
    total = np.zeros(x.size)
    ok = np.ones(x.size, dtype=bool)
    for sc in parts:
        total += sc.chi2
        ok &= sc.converged
    first = parts[0]
    return Scan(params=first.params, axes=first.axes, base=first.base,
                detectors=tuple(c.detector for c in coefs), channels=first.channels, chi2=total,
                pulls={k: v for sc in parts for k, v in sc.pulls.items()}, converged=ok,
                table_hashes=tuple(c.table_hash for c in coefs), settings=settings)


def delta_chi2_level(cl: float, dof: int = 1) -> float:
    """Delta chi2 of a C.L. for ``dof`` parameters (2.7055 for 90%, one parameter).

    ``cl`` must lie in [1e-6, 1 - 1e-9] (:data:`CL_RANGE`); ``dof`` is 1 to 6.
    """
    try:
        cl = float(cl)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"confidence level {cl!r}: expected a number in "
                         f"[{CL_RANGE[0]:g}, 1 - 1e-9]") from None
    if not (math.isfinite(cl) and CL_RANGE[0] <= cl <= CL_RANGE[1]):
        raise InputError(f"confidence level {cl!r}: expected a number in [{CL_RANGE[0]:g}, 1 - 1e-9] "
                         f"(strictly between 0 and 1)")
    if isinstance(dof, bool) or int(dof) != dof or not 1 <= int(dof) <= len(PARAMS):
        raise InputError(f"degrees of freedom {dof!r}: expected 1 to {len(PARAMS)}")
    v = _LEVELS.get((int(dof), cl))
    if v is None:
        from scipy.special import chdtri

        v = float(chdtri(int(dof), 1.0 - cl))           # inverse chi2 CDF
    return v


#: Delta chi2 levels of the common C.L.s, ``float(scipy.special.chdtri(dof, 1 - cl))``
#: stored to the last bit (tests/scans/test_regions.py checks them against SciPy):
#: the main job then needs no SciPy import.
_LEVELS = {
    (1, 0.68): 0.9889464814780119, (1, 0.9): 2.705543454095414, (1, 0.95): 3.841458820694124,
    (1, 0.99): 6.6348966010212145, (2, 0.68): 2.27886856637673, (2, 0.9): 4.605170185988092,
    (2, 0.95): 5.991464547107979, (2, 0.99): 9.21034037197618,
}


def check_range(param: str, lo, hi) -> tuple:
    """(lo, hi) as floats, or a one-line InputError: finite, lo < hi, within
    [-1, 1] e (:data:`MAX_CHARGE`) and at least :data:`MIN_SPAN` wide."""
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"range [{lo!r}, {hi!r}] of {param}: expected two numbers (e)") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise InputError(f"range [{lo!r}, {hi!r}] of {param}: expected finite low < high (e)")
    if max(abs(lo), abs(hi)) > MAX_CHARGE:
        raise InputError(f"range [{lo!r}, {hi!r}] of {param}: expected charges within "
                         f"[-{MAX_CHARGE:g}, {MAX_CHARGE:g}] e")
    if not hi - lo >= MIN_SPAN:
        raise InputError(f"range [{lo!r}, {hi!r}] of {param}: expected a span of at least {MIN_SPAN:g} e")
    return lo, hi


def check_fixed(fixed) -> dict:
    """{param: value} of fixed charges, checked: known names, finite, |q| <= 1 e."""
    out = {}
    for k, v in (fixed or {}).items():
        if k not in SPEC:
            from ..params import check_param

            check_param(k)
        try:
            x = float(v)
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"charge {k} = {v!r}: expected a number in units of e") from None
        if not math.isfinite(x) or abs(x) > MAX_CHARGE:
            raise InputError(f"charge {k} = {v!r}: expected a finite value within "
                             f"[-{MAX_CHARGE:g}, {MAX_CHARGE:g}] e")
        out[k] = x
    return out


def unconstrained_reason(coefs, param: str) -> str:
    """Why the detectors cannot see ``param`` at all, or "" if they can.

    A parameter acts through its rows of the coefficients (docs/physics.md
    section 7); when they vanish for every detector, the chi2 does not depend
    on it.  The flavours the source emits are those with a diagonal charge
    response; a parameter touching none of them is not visible
    (:func:`mcscan.params.visible_params`).
    """
    k = PARAMS.index(param)
    if not any(np.any(c.S != 0.0) for c in coefs):
        return "the detectors expect no neutrino events at all"
    emitted = tuple(f for f in FLAVOURS
                    if any(np.any(c.L[PARAMS.index(charge_name(f, f))] != 0.0)
                           or np.any(c.Q[PARAMS.index(charge_name(f, f))] != 0.0) for c in coefs))
    seen = any(np.any(c.L[k] != 0.0) or np.any(c.Q[k] != 0.0) for c in coefs)
    if param in visible_params(emitted, SPEC[param].family) and seen:
        return ""
    missing = [f for f in dict.fromkeys(SPEC[param].flavours) if f not in emitted]
    if missing:
        return " or ".join(f"no nu_{f}" for f in missing) + " flux at this source"
    return f"the detectors' counts do not depend on {param}"


def require_visible(param: str, reason: str, coefs, needs: str) -> None:
    """One-line InputError when ``reason`` (why ``coefs`` cannot see ``param``, as
    :func:`unconstrained_reason` gives it; "" when they can) is not empty: ``needs`` says
    what was asked for, which a parameter the detectors cannot see does not allow."""
    if reason:
        raise InputError(f"{param} is not constrained by {', '.join(c.detector for c in coefs)} "
                         f"({reason}): {needs}")


def check_finite_chi2(what: str, axes, chi2) -> None:
    """One-line McscanError if a chi2 array holds NaN or -inf, or nothing finite.

    +inf is a legitimate value: no events predicted in a bin with data (a
    charge that cancels the weak charge with no background) is excluded at any
    C.L.
    """
    chi2 = np.asarray(chi2)
    bad = np.isnan(chi2) | (chi2 == -np.inf)
    if not np.any(bad) and np.any(np.isfinite(chi2)):
        return
    if not np.any(bad):
        bad = ~np.isfinite(chi2)
    idx = np.unravel_index(int(np.argmax(bad)), chi2.shape)
    at = ", ".join(f"{p} = {a[i]:.6g}" for (p, a), i in zip(axes, idx))
    raise McscanError(f"the chi2 of {what} is not finite at {int(bad.sum())} of {chi2.size} points "
                      f"(first at {at}): the charges or the tables give counts beyond double "
                      f"precision")


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
    unconstrained: bool = False     # the detectors cannot see ``param`` (regions empty)
    reason: str = ""                # why, e.g. "no nu_tau flux at this source"

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
            "unconstrained": self.unconstrained,
            "reason": self.reason,
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
    return _drive(_intervals_steps(x, dchi2, level, None if f is None else _ask, rtol), f)


def true_runs(mask) -> list:
    """``[(i, j), ...]``: the first and last index of every run of True in the 1D
    boolean ``mask``, in order (the grid points of each allowed piece)."""
    runs = []
    i, n = 0, len(mask)
    while i < n:
        if not mask[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and mask[j + 1]:
            j += 1
        runs.append((i, j))
        i = j + 1
    return runs


def _intervals_steps(x, dchi2, level, f, rtol):
    """:func:`allowed_intervals` as steps: ``f`` is a step function (see :func:`_drive`)."""
    x = np.asarray(x, dtype=float)
    inside = np.asarray(dchi2) <= level
    regions = []
    n = x.size
    for i, j in true_runs(inside):
        lo = x[i] if i == 0 else (yield from _cross(f, x[i - 1], x[i], level, rtol))
        hi = x[j] if j == n - 1 else (yield from _cross(f, x[j], x[j + 1], level, rtol))
        regions.append([float(lo), float(hi)])
    open_low = bool(inside[0])
    open_high = bool(inside[-1])
    return regions, open_low, open_high


def _cross(f, a, b, level, rtol):
    if f is None:
        return 0.5 * (a + b)

    def g(t):
        return (yield from f(t)) - level

    ga, gb = (yield from g(a)), (yield from g(b))
    if ga == 0.0:
        return a
    if gb == 0.0 or np.sign(ga) == np.sign(gb):
        return b if abs(gb) < abs(ga) else a
    scale = max(abs(a), abs(b))
    return (yield from _brentq_steps(g, a, b, xtol=rtol * scale * 1e-2, rtol=1e-12))


# Root finding and minimisation are written as *steps*: generators that yield
# each abscissa t whose function value they need and receive the value back.
# The functions they take, ``f(t)``, are step functions too (``yield from f(t)``;
# :func:`_ask` just asks for the value).  :func:`_drive` answers the requests
# of one computation with a plain function; :func:`limits_1d` answers those of
# several limits at once, so their NumPy evaluations are batched.  Either way
# each value is the same to the last bit, and so are the results.

def _ask(t):
    """The step function that asks its driver for the value at ``t``."""
    return (yield t)


def _drive(steps, f):
    """Run ``steps`` to the end, answering every request ``t`` with ``f(t)``."""
    try:
        t = next(steps)
        while True:
            t = steps.send(f(t))
    except StopIteration as stop:
        return stop.value


def _finite(v) -> float:
    v = float(v)
    if v != v:
        raise ValueError("the function value is NaN")
    return v


def brentq(f, a, b, *, xtol=2e-12, rtol=8.881784197001252e-16, maxiter=100):
    """Root of ``f`` in [a, b] by Brent's method: the algorithm of
    ``scipy.optimize.brentq`` (its C code, step for step, so the same root to
    the last bit; tests/scans/test_regions.py compares them), without importing
    SciPy.  ``f(a)`` and ``f(b)`` must differ in sign; a NaN value raises ValueError.
    """
    if not (xtol > 0 and rtol >= 4 * 2.220446049250313e-16):
        raise ValueError(f"brentq tolerances xtol={xtol!r}, rtol={rtol!r} out of range")
    return _drive(_brentq_steps(_ask, a, b, xtol=xtol, rtol=rtol, maxiter=maxiter), f)


def _brentq_steps(f, a, b, *, xtol, rtol, maxiter=100):
    """:func:`brentq` as steps (``f`` a step function)."""
    xpre, xcur = a, b
    xblk = fblk = spre = scur = 0.0
    fpre = _finite((yield from f(xpre)))
    fcur = _finite((yield from f(xcur)))
    if fpre == 0:
        return xpre
    if fcur == 0:
        return xcur
    if math.copysign(1.0, fpre) == math.copysign(1.0, fcur):
        raise ValueError("f(a) and f(b) must have different signs")
    for _ in range(maxiter):
        if fpre != 0 and fcur != 0 and math.copysign(1.0, fpre) != math.copysign(1.0, fcur):
            xblk, fblk = xpre, fpre
            spre = scur = xcur - xpre
        if abs(fblk) < abs(fcur):
            xpre, xcur, xblk = xcur, xblk, xcur
            fpre, fcur, fblk = fcur, fblk, fcur
        delta = (xtol + rtol * abs(xcur)) / 2
        sbis = (xblk - xcur) / 2
        if fcur == 0 or abs(sbis) < delta:
            return xcur
        if abs(spre) > delta and abs(fcur) < abs(fpre):
            if xpre == xblk:
                stry = -fcur * (xcur - xpre) / (fcur - fpre)          # interpolate
            else:                                                   # extrapolate
                dpre = (fpre - fcur) / (xpre - xcur)
                dblk = (fblk - fcur) / (xblk - xcur)
                stry = -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
            if 2 * abs(stry) < min(abs(spre), 3 * abs(sbis) - delta):
                spre, scur = scur, stry                             # good short step
            else:
                spre = scur = sbis                                  # bisect
        else:
            spre = scur = sbis                                      # bisect
        xpre, fpre = xcur, fcur
        if abs(scur) > delta:
            xcur += scur
        else:
            xcur += (delta if sbis > 0 else -delta)
        fcur = _finite((yield from f(xcur)))
    raise RuntimeError(f"brentq did not converge in {maxiter} iterations")


def minimize_bounded(func, bounds, xatol=1e-5, maxiter=500):
    """(x, f(x)) at the minimum of ``func`` on ``bounds``: the algorithm of
    ``scipy.optimize.minimize_scalar(method="bounded")`` (Brent's bounded
    method, the same steps and so the same bits; tests/scans/test_regions.py
    compares them), without importing SciPy."""
    x1, x2 = bounds
    if not (math.isfinite(x1) and math.isfinite(x2)) or x1 > x2:
        raise ValueError(f"bounds {bounds!r}: expected finite low <= high")
    return _drive(_minimize_steps(_ask, bounds, xatol, maxiter), func)


def _minimize_steps(func, bounds, xatol=1e-5, maxiter=500):
    """:func:`minimize_bounded` as steps (``func`` a step function)."""
    x1, x2 = bounds
    sqrt_eps = math.sqrt(2.2e-16)
    golden_mean = 0.5 * (3.0 - math.sqrt(5.0))
    a, b = x1, x2
    fulc = a + golden_mean * (b - a)
    nfc, xf = fulc, fulc
    rat = e = 0.0
    x = xf
    fx = yield from func(x)
    num = 1
    ffulc = fnfc = fx
    xm = 0.5 * (a + b)
    tol1 = sqrt_eps * np.abs(xf) + xatol / 3.0
    tol2 = 2.0 * tol1
    while np.abs(xf - xm) > (tol2 - 0.5 * (b - a)):
        golden = 1
        if np.abs(e) > tol1:                                        # parabolic fit
            golden = 0
            r = (xf - nfc) * (fx - ffulc)
            q = (xf - fulc) * (fx - fnfc)
            p = (xf - fulc) * q - (xf - nfc) * r
            q = 2.0 * (q - r)
            if q > 0.0:
                p = -p
            q = np.abs(q)
            r = e
            e = rat
            if (np.abs(p) < np.abs(0.5 * q * r)) and (p > q * (a - xf)) and (p < q * (b - xf)):
                rat = (p + 0.0) / q
                x = xf + rat
                if ((x - a) < tol2) or ((b - x) < tol2):
                    si = np.sign(xm - xf) + ((xm - xf) == 0)
                    rat = tol1 * si
            else:
                golden = 1
        if golden:                                                  # golden-section step
            e = (a - xf) if xf >= xm else (b - xf)
            rat = golden_mean * e
        si = np.sign(rat) + (rat == 0)
        x = xf + si * np.maximum(np.abs(rat), tol1)
        fu = yield from func(x)
        num += 1
        if fu <= fx:
            if x >= xf:
                a = xf
            else:
                b = xf
            fulc, ffulc = nfc, fnfc
            nfc, fnfc = xf, fx
            xf, fx = x, fu
        else:
            if x < xf:
                a = x
            else:
                b = x
            if (fu <= fnfc) or (nfc == xf):
                fulc, ffulc = nfc, fnfc
                nfc, fnfc = x, fu
            elif (fu <= ffulc) or (fulc == xf) or (fulc == nfc):
                fulc, ffulc = x, fu
        xm = 0.5 * (a + b)
        tol1 = sqrt_eps * np.abs(xf) + xatol / 3.0
        tol2 = 2.0 * tol1
        if num >= maxiter:
            break
    return xf, fx


def _memo():
    """A step function remembering its values: refinement asks again for the
    grid points that bracket a crossing (Brent's method starts from them)."""
    seen = {}

    def g(t):
        t = float(t)
        if t == 0.0:
            return (yield t)
        v = seen.get(t)
        if v is None:
            v = seen[t] = yield t
        return v

    return g


def limit_1d(coefs, param, *, cl=0.90, xrange=(-6e-8, 6e-8), points=2001, fixed=None,
             settings: ScanSettings | None = None, extend: int = 6, progress=False,
             profile=(), profile_ranges=None, level: float | None = None,
             max_evaluations: float | None = None, max_memory_gib: float | None = None) -> Limit:
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
    max_evaluations : budget of chi2 evaluations of a profiled limit (default 2e8)
    max_memory_gib : memory budget (default 4 GiB)

    A parameter the detectors cannot see (:func:`unconstrained_reason`) gives
    a Limit with ``unconstrained`` set, empty regions and no scan beyond the two
    range ends.  A chi2 that is not finite raises a one-line McscanError.
    """
    job = _limit_job(coefs, param, cl=cl, xrange=xrange, points=points, fixed=fixed,
                     settings=settings, extend=extend, progress=progress, profile=profile,
                     profile_ranges=profile_ranges, level=level, max_evaluations=max_evaluations,
                     max_memory_gib=max_memory_gib)
    return job if isinstance(job, Limit) else _drive(job.steps, job.f)


def _limit_job(coefs, param, *, cl=0.90, xrange=(-6e-8, 6e-8), points=2001, fixed=None,
             settings: ScanSettings | None = None, extend: int = 6, progress=False,
             profile=(), profile_ranges=None, level: float | None = None,
             max_evaluations: float | None = None, max_memory_gib: float | None = None,
             curves: dict | None = None):
    """:func:`limit_1d` checked and set up: the Limit of an unconstrained
    parameter, else a :class:`_LimitJob` to run.  ``curves``: a memo of the
    per-detector curves the NumPy profile computed, shared by the limits of a batch
    (the combined limits of :func:`limits_1d` reuse the single detectors')."""
    from .grid import check_param

    settings = settings or ScanSettings()
    check_param(param)
    level = delta_chi2_level(cl, 1) if level is None else _level(level)
    if len(xrange) != 2:
        raise InputError(f"range of {param} {tuple(xrange)!r}: expected (low, high) in e")
    lo, hi = check_range(param, *xrange)
    if isinstance(points, bool) or not float(points).is_integer():
        raise InputError(f"points = {points!r}: expected a whole number from 3 to 10000001")
    points = int(points)
    if not 3 <= points <= 10_000_001:
        raise InputError(f"points = {points}: expected 3 to 10000001")
    fixed = check_fixed(fixed)
    if param in fixed:
        raise InputError(f"{param} is both scanned and fixed")
    profile = tuple(profile)
    for p in profile:
        check_param(p)
    if param in profile:
        raise InputError(f"{param} is both scanned and profiled")
    for p in profile:
        if p in fixed:
            raise InputError(f"{p} is both profiled and fixed")
    if not coefs:
        raise InputError("no detector given: expected at least one detector's coefficients")
    # the scan, its pulls per detector, converged flags and Delta chi2, twice over
    # while a narrow piece is refined
    budget.check_memory(f"the limit of {param}",
                        budget.grid_memory_bytes(points, copies=2 * (5 + 2 * len(coefs))), max_memory_gib)
    reason = unconstrained_reason(coefs, param)
    if reason:
        return _unconstrained(coefs, param, cl, level, lo, hi, fixed, settings, profile, reason)
    if profile:
        if profile_ranges is None:
            raise InputError("profiled charges need search ranges")
        for p in profile:
            if p not in profile_ranges:
                raise InputError(f"no search range for the profiled charge {p}")
            check_range(p, *profile_ranges[p])
        from .profile import check_profile_budget

        check_profile_budget(f"the profiled limit of {param}", points * (extend + 1), len(profile),
                             len(coefs), max_evaluations=max_evaluations)
        curve = _profiled_curve(coefs, param, fixed, settings, profile, profile_ranges, progress)
        f_chi2 = lambda t: float(curve(np.array([t]))[0].chi2[0])  # noqa: E731
        steps, batch = _ask, None
    else:
        f_chi2 = chi2_function(coefs, param, fixed=fixed, settings=settings)
        kernel = "numpy" if points * len(coefs) <= NUMPY_CURVE_POINTS else "rows"
        curve = lambda x: (_curve(coefs, param, x, fixed, settings, progress, kernel,  # noqa: E731
                                  curves), (None, {}))
        steps, batch = _memo(), (base_point(fixed), check_param(param))
    run = _limit_steps(coefs, param, cl, level, lo, hi, points, extend, profile, curve, steps)
    return _LimitJob(run, f_chi2, coefs, settings, batch)


def _limit_steps(coefs, param, cl, level, lo, hi, points, extend, profile, curve, f_chi2, *,
                 ref=0.0, bounds=(-MAX_CHARGE, MAX_CHARGE), closed_at_bounds=False, unit="e"):
    """The limit of :func:`limit_1d` as steps: ``f_chi2`` is the step function
    of the combined chi2 at one value of ``param``, ``curve(x)`` its scan on a grid,
    ``(Scan, (at_edge, best))``.  The grid holds ``ref`` (the SM value) when it lies
    inside the range; a range is widened up to ``bounds`` at most; with
    ``closed_at_bounds`` (physical bounds, e.g. 0 <= sin2w <= 1) an allowed set that
    reaches a bound is not open there.  :func:`mcscan.scans.families.family_limit`
    runs it for every family."""
    blo, bhi = bounds

    def dchi2_at(t):
        return (yield from f_chi2(t)) - cmin

    for attempt in range(extend + 1):
        x = np.linspace(lo, hi, points)
        if lo < ref < hi and ref not in x:
            x = np.unique(np.append(x, ref))
        sc, (at_edge, best) = curve(x)
        check_finite_chi2(param, ((param, x),), sc.chi2)
        k = int(np.argmin(sc.chi2))
        cmin = float(sc.chi2[k])
        if 0 < k < x.size - 1:
            _, fun = yield from _minimize_steps(f_chi2, (x[k - 1], x[k + 1]),
                                                xatol=1e-6 * (x[k + 1] - x[k - 1]))
            cmin = min(cmin, float(fun))
        dchi2 = sc.chi2 - cmin
        # the crossings are refined only on the grid that is kept (a range that
        # is widened next is scanned again)
        open_low, open_high = bool(dchi2[0] <= level), bool(dchi2[-1] <= level)
        final = attempt == extend or not (open_low or open_high)
        if not final:
            width = hi - lo
            nlo = max(lo - width, blo) if open_low else lo
            nhi = min(hi + width, bhi) if open_high else hi
            final = (nlo, nhi) == (lo, hi)          # widened to the bounds
        if final:
            regions, open_low, open_high = yield from _intervals_steps(
                x, dchi2, level, dchi2_at, 1e-4
            )
            break
        lo, hi = nlo, nhi
    # a narrow allowed piece gets a fine local scan, so the saved profile
    # resolves it (its end points are root-refined either way)
    step = (x[-1] - x[0]) / (x.size - 1)
    extra = [np.linspace(max(a - max(b - a, step), x[0]), min(b + max(b - a, step), x[-1]), 401)
             for a, b in regions if b - a < 100 * step]
    if extra:
        sce, (ate, beste) = curve(np.unique(np.concatenate(extra)))
        x, order = np.unique(np.concatenate([x, sce.axes[0]]), return_index=True)
        sc = _merge(sc, sce, order)
        if at_edge is not None:
            at_edge = np.concatenate([at_edge, ate])[order]
            best = {p: np.concatenate([best[p], beste[p]])[order] for p in best}
        cmin = min(cmin, float(np.min(sc.chi2)))
        dchi2 = sc.chi2 - cmin
        regions, open_low, open_high = yield from _intervals_steps(
            x, dchi2, level, dchi2_at, 1e-4
        )
    check_finite_chi2(param, ((param, x),), sc.chi2)
    if not (math.isfinite(cmin) and all(math.isfinite(v) for r in regions for v in r)):
        raise McscanError(f"the limit of {param} is not finite (chi2 minimum {cmin!r}): the charges "
                          f"or the tables give counts beyond double precision")
    if closed_at_bounds:
        open_low, open_high = bool(open_low and x[0] > blo), bool(open_high and x[-1] < bhi)
    profile_at_edge = bool(at_edge is not None and np.any(at_edge[dchi2 <= level]))
    return Limit(tuple(c.detector for c in coefs), param, float(cl), level, regions,
                 open_low, open_high, sc, cmin, unit=unit, profile=profile,
                 profile_at_edge=profile_at_edge, profile_best=best)


@dataclass
class _LimitJob:
    """A limit under way: its steps, the plain function answering them, and what
    :func:`limits_1d` needs to answer them in batches (``batch``: the base point
    and the index of the scanned charge; None for a profiled limit)."""
    steps: object
    f: object
    coefs: tuple
    settings: ScanSettings
    batch: tuple | None


def limits_1d(calls, done=None) -> list:
    """The limits :func:`limit_1d` gives for each keyword dict in ``calls``, computed together.

    The limits advance in lock step: at each round, every limit waiting for a
    chi2 value at some charge has it from one vectorised NumPy evaluation per
    detector, shared by all limits (the same values, to the last bit, as one
    evaluation each).  ``done(i, limit)`` is called as each limit finishes.
    """
    from ..stats.reference import chi2 as chi2_numpy

    jobs, out, curves = [], [None] * len(calls), {}
    for i, kw in enumerate(calls):
        job = _limit_job(**kw, curves=curves)
        if isinstance(job, Limit) or job.batch is None:
            out[i] = job if isinstance(job, Limit) else _drive(job.steps, job.f)
            if done is not None:
                done(i, out[i])
        else:
            jobs.append((i, job))
    waiting = {}

    def advance(i, job, value=None, first=False):
        try:
            waiting[i] = next(job.steps) if first else job.steps.send(value)
        except StopIteration as stop:
            waiting.pop(i, None)
            out[i] = stop.value
            if done is not None:
                done(i, out[i])

    for i, job in jobs:
        advance(i, job, first=True)
    by_index = dict(jobs)
    while waiting:
        # one NumPy evaluation per detector (and settings) for all waiting limits
        rows = {}
        for i, t in waiting.items():
            job = by_index[i]
            base, k = job.batch
            for c in job.coefs:
                key = (id(c), id(job.settings))
                rows.setdefault(key, (c, job.settings, []))[2].append((i, base, k, t))
        values = {}
        for key, (c, settings, reqs) in rows.items():
            theta = np.empty((len(reqs), len(PARAMS)))
            for r, (_, base, k, t) in enumerate(reqs):
                theta[r] = base
                theta[r, k] = t
            chi = chi2_numpy(c, theta, **settings.kwargs())[0]
            for r, (i, *_) in enumerate(reqs):
                values[(i, key[0])] = chi[r]
        for i in list(waiting):
            job = by_index[i]
            # summed over detectors in their order, as the plain function sums them
            value = float(sum(values[(i, id(c))] for c in job.coefs))
            advance(i, job, value)
    return out


def _level(level) -> float:
    try:
        v = float(level)
    except (TypeError, ValueError, OverflowError):
        v = math.nan
    if not (math.isfinite(v) and 0.0 < v <= 1e4):
        raise InputError(f"Delta chi2 level {level!r}: expected a positive number up to 1e4")
    return v


def _unconstrained(coefs, param, cl, level, lo, hi, fixed, settings, profile, reason) -> Limit:
    """The Limit of a parameter the detectors cannot see: the chi2 at the two range
    ends only (it is flat), no allowed intervals."""
    x = np.array([lo, hi])
    sc = grid_scan(coefs, (param,), (x,), fixed=fixed, settings=settings, kernel="numpy")
    check_finite_chi2(param, ((param, x),), sc.chi2)
    return Limit(tuple(c.detector for c in coefs), param, float(cl), level, [], False, False, sc,
                 float(np.min(sc.chi2)), profile=tuple(profile), unconstrained=True, reason=reason)


def _merge(sc: Scan, other: Scan, order) -> Scan:
    """Two 1D scans of the same charge on one sorted grid (``order`` from np.unique)."""
    cat = lambda a, b: np.concatenate([a, b])[order]  # noqa: E731
    return Scan(params=sc.params, axes=(cat(sc.axes[0], other.axes[0]),), base=sc.base,
                detectors=sc.detectors, channels=sc.channels, chi2=cat(sc.chi2, other.chi2),
                pulls={d: (cat(a, other.pulls[d][0]), cat(b, other.pulls[d][1]))
                       for d, (a, b) in sc.pulls.items()},
                converged=cat(sc.converged, other.converged), table_hashes=sc.table_hashes,
                settings=sc.settings)


def _profiled_curve(coefs, param, fixed, settings, profile, profile_ranges, progress=False):
    from .profile import profiled_chi2
    from .grid import base_point, check_param

    k = check_param(param)
    base = base_point(fixed)

    def curve(x):
        rows = np.repeat(base[None, :], x.size, axis=0)
        rows[:, k] = x
        chi, best, at_edge, ok = profiled_chi2(coefs, rows, profile, profile_ranges, settings=settings,
                                               progress=progress, max_evaluations=math.inf)
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
