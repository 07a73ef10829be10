"""Profiling over charges: chi2 minimised over some charges at each point.

``mcscan limits --profile q_mumu`` lets other charges float.  The
minimum over the profiled charges is found globally on a grid over their
ranges (a profile need not be convex: a charge can cancel the weak charge),
then refined by shrinking local grids around the best point, one profiled
charge at a time.  All evaluations go through the numba kernels.
"""
from __future__ import annotations

import itertools
import sys

import numpy as np

from .. import budget
from ..errors import InputError
from ..stats.kernels import chi2_points
from .grid import ScanSettings, check_param

__all__ = ["profiled_chi2", "profile_evaluations", "check_profile_budget"]

_BATCH = 1_000_000      # kernel points per call
_NLOC = 11              # points of a local refinement grid


def _plan(k: int, points: int | None, rounds: int | None) -> tuple:
    """(global grid points per charge, refinement rounds) for ``k`` profiled charges."""
    g = points or (201 if k == 1 else max(5, int(round(2000 ** (1.0 / k)))))
    return g, (rounds or (5 if k == 1 else 8))


def profile_evaluations(n_rows: float, n_profiled: int, n_detectors: int = 1, *,
                        points: int | None = None, rounds: int | None = None) -> float:
    """chi2 kernel evaluations :func:`profiled_chi2` makes for ``n_rows`` points (float maths)."""
    k = max(int(n_profiled), 1)
    g, r = _plan(k, points, rounds)
    per_row = float(g) ** k + r * k * _NLOC + 1.0
    return float(n_rows) * per_row * max(int(n_detectors), 1)


def check_profile_budget(what: str, n_rows: float, n_profiled: int, n_detectors: int = 1, *,
                         max_evaluations: float | None = None, points: int | None = None,
                         rounds: int | None = None) -> float:
    """Refuse a profiled computation beyond ``max_evaluations`` kernel evaluations
    (default :data:`mcscan.budget.MAX_PROFILE_EVALUATIONS`); returns the estimate."""
    need = profile_evaluations(n_rows, n_profiled, n_detectors, points=points, rounds=rounds)
    limit = budget.MAX_PROFILE_EVALUATIONS if max_evaluations is None else float(max_evaluations)
    budget.check_points(what, need, limit, option="max_evaluations", unit="chi2 evaluations")
    return need


def _bar(total: float, progress: bool, desc: str):
    """A tqdm bar over ``total`` evaluations, shown only on a terminal and when asked."""
    from tqdm.auto import tqdm

    show = bool(progress) and sys.stderr is not None and sys.stderr.isatty()
    return tqdm(total=int(total), desc=desc, unit="pt", unit_scale=True, disable=not show,
                leave=False, file=sys.stderr)


def _combined(coefs, theta, settings):
    tot = np.zeros(theta.shape[0])
    ok = np.ones(theta.shape[0], dtype=bool)
    for c in coefs:
        x, _, _, it = chi2_points(c, theta, **settings.kwargs())
        tot += x
        ok &= it > 0
    return tot, ok


def profiled_chi2(coefs, rows, profile, ranges, *, settings: ScanSettings | None = None,
                  points: int | None = None, rounds: int | None = None, progress: bool = False,
                  max_evaluations: float | None = None):
    """Minimum of the combined chi2 over the ``profile`` charges, per row.

    Parameters
    ----------
    coefs : per-detector coefficients
    rows : (n, 6) charges; the profiled entries are ignored
    profile : names of the profiled charges
    ranges : {name: (lo, hi)} search range of each profiled charge, e
    points : global grid points per profiled charge (default 201 for one,
        fewer for several: about 2000 grid points in all)
    rounds : local refinement sweeps (each shrinks the step 5-fold)
    progress : show a progress bar with the time left (on a terminal only)
    max_evaluations : budget of chi2 kernel evaluations (default 2e8): a larger
        request is refused before anything is computed

    Returns
    -------
    chi2 : (n,) minimum;  best : (n, 6) charges at the minimum;
    at_edge : (n,) bool, the minimum lies on an end of a profiled range;
    converged : (n,) bool, every pull profile at the minimum converged
    """
    settings = settings or ScanSettings()
    rows = np.atleast_2d(np.asarray(rows, dtype=float))
    idx = [check_param(p) for p in profile]
    if not idx:
        raise InputError("profiled_chi2 needs at least one profiled charge")
    if len(set(idx)) != len(idx):
        raise InputError(f"profiled charges {', '.join(profile)}: a charge is named twice")
    k = len(idx)
    g, nrounds = _plan(k, points, rounds)
    total = check_profile_budget("the profile", rows.shape[0], k, len(coefs),
                                 max_evaluations=max_evaluations, points=points, rounds=rounds)
    axes = []
    for p in profile:
        lo, hi = (float(v) for v in ranges[p])
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise InputError(f"profile range of {p} [{lo!r}, {hi!r}]: expected finite low < high (e)")
        if max(abs(lo), abs(hi)) > 1.0:
            raise InputError(f"profile range of {p} [{lo!r}, {hi!r}]: expected charges within [-1, 1] e")
        axes.append(np.linspace(lo, hi, g))
    cand = np.array(list(itertools.product(*axes)))             # (G, k)
    n, G = rows.shape[0], cand.shape[0]
    best = rows.copy()
    bestv = np.full(n, np.inf)
    per = max(1, _BATCH // G)
    nd = max(len(coefs), 1)
    bar = _bar(total, progress, f"profile over {', '.join(profile)}")
    for lo in range(0, n, per):
        hi = min(n, lo + per)
        th = np.repeat(rows[lo:hi], G, axis=0)
        th[:, idx] = np.tile(cand, (hi - lo, 1))
        v, _ = _combined(coefs, th, settings)
        v = v.reshape(hi - lo, G)
        j = np.argmin(v, axis=1)
        bestv[lo:hi] = v[np.arange(hi - lo), j]
        best[lo:hi] = _set(rows[lo:hi], idx, cand[j])
        bar.update((hi - lo) * G * nd)
    step = np.array([a[1] - a[0] for a in axes])
    nloc = _NLOC
    off = np.linspace(-1.0, 1.0, nloc)
    for _ in range(nrounds):
        for d, pi in enumerate(idx):
            lo_lim, hi_lim = axes[d][0], axes[d][-1]
            th = np.repeat(best, nloc, axis=0)
            vals = np.clip(best[:, pi][:, None] + step[d] * off[None, :], lo_lim, hi_lim)
            th[:, pi] = vals.ravel()
            v, _ = _combined(coefs, th, settings)
            v = v.reshape(n, nloc)
            j = np.argmin(v, axis=1)
            better = v[np.arange(n), j] < bestv
            bestv = np.where(better, v[np.arange(n), j], bestv)
            best[better, pi] = vals[np.arange(n), j][better]
            bar.update(n * nloc * nd)
        step = step / 5.0
    at_edge = np.zeros(n, dtype=bool)
    for d, pi in enumerate(idx):
        at_edge |= (best[:, pi] <= axes[d][0]) | (best[:, pi] >= axes[d][-1])
    final, ok = _combined(coefs, best, settings)
    bar.update(n * nd)
    bar.close()
    return final, best, at_edge, ok


def _set(rows, idx, vals):
    out = rows.copy()
    out[:, idx] = vals
    return out
