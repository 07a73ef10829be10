"""numba kernels for scans over any parameter family (docs/physics.md section 11).

These take per-bin polynomial coefficients (:func:`mcscan.stats.families.row_polynomial`)
or per-point excess counts instead of charges:

* :func:`chi2_rows_poly` -- grids along rows with counts
  N_i = S_i + E0_i + x cx1_i + x^2 cx2_i + y cy1_i + y^2 cy2_i + x y cxy_i, run by
  the millicharge row kernel itself (:func:`mcscan.stats.kernels._chi2_rows`,
  whose y-linear coefficient of a row is cy1 + x cxy).  Same warm starts, same
  bit-identity for any threads, block size and serial or parallel run.
* :func:`chi2_excess` -- any batch of points given as excess counts
  N_i - S_i (npts, nbins), each profiled from (a, b) = (0, 0).

Their NumPy twin is :func:`mcscan.stats.families.chi2_all` (the NumPy
recombination, then the profile of :func:`mcscan.stats.reference.chi2`);
tests compare them, serial and parallel.  Constants come from
:mod:`mcscan.stats.newton` and :mod:`mcscan.stats.kernels`.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel, max2, min2, run_blocks
from .kernels import (_NO_SERIES, MODEL_STEP, SERIES_UMAX, _grain, _points_told, _profile, _run_rows,
                      check_base_rows, check_rows, deviance_polynomial, row_lanes, warm_up_rows)
from .newton import ARMIJO, BACKGROUND_PULL, MAX_ITER, SIGNAL_PULL, TOL

__all__ = ["chi2_rows_poly", "chi2_excess", "warm_up"]

_CHUNK = 64


def _chi2_excess(S, B, D, EX, isa2, isb2, tol, max_iter, armijo, out_chi2, out_a, out_b, out_it,
                 b0, b1):
    """Blocks b0 .. b1 - 1 of ``_CHUNK`` points, each profiled from (0, 0)."""
    npts = len(EX)
    nb_ = len(S)
    N = np.empty(nb_)
    dl = np.empty(nb_)
    zero = np.int64(0)      # not a literal: shares the build of _profile with the other kernels
    for c in range(b0, b1):
        for p in range(c * _CHUNK, min2(npts, (c + 1) * _CHUNK)):
            for i in range(nb_):
                n = S[i] + EX[p, i]
                n = max2(n, 0.0)
                N[i] = n
                # T - D = dl + a N + b B; the data term S + B - D is 0 for Asimov data
                dl[i] = (n - S[i]) + ((S[i] + B[i]) - D[i])
            chi, a, b, status = _profile(N, dl, B, D, 0.0, 0.0, 0.0, 0.0, zero, isa2, isb2, tol, max_iter,
                                         armijo, -1.0, _NO_SERIES)
            out_chi2[p] = chi
            out_a[p] = a
            out_b[p] = b
            out_it[p] = status


_excess = kernel(_chi2_excess)


def chi2_excess(S, B, D, excess, *, signal_pull=SIGNAL_PULL, background_pull=BACKGROUND_PULL,
                tol=TOL, max_iter=MAX_ITER, parallel=True):
    """Profiled chi2 at points given by their excess counts N - S, (npts, nbins).

    Returns chi2, a, b (npts,) and iterations (negative where not converged).
    """
    ex = np.ascontiguousarray(np.atleast_2d(excess), dtype=np.float64)
    if ex.shape[1:] != (np.size(S),) or not np.all(np.isfinite(ex)):
        raise ValueError(f"excess must be finite, shaped (npts, {np.size(S)})")
    n = ex.shape[0]
    out = np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    nchunk = -(-n // _CHUNK)
    args = (np.ascontiguousarray(S, dtype=np.float64), np.ascontiguousarray(B, dtype=np.float64),
            np.ascontiguousarray(D, dtype=np.float64), ex, 1.0 / signal_pull**2,
            1.0 / background_pull**2, float(tol), int(max_iter), ARMIJO, *out)
    run_blocks(_excess, args, nchunk, parallel=parallel, grain=_grain(nchunk))
    return out


def chi2_rows_poly(S, B, D, poly, xs, ys, y0, cnt, o0, *, out, accumulate=False, base_rows=None,
                   signal_pull=SIGNAL_PULL, background_pull=BACKGROUND_PULL, tol=TOL,
                   max_iter=MAX_ITER, parallel=True, lanes=None, vector_start=False,
                   progress=None):
    """Profiled chi2 along rows of a grid with per-bin polynomial counts (numba).

    Parameters
    ----------
    S, B, D : (nbins,) SM counts, background, Asimov data
    poly : (E0, cx1, cx2, cy1, cy2, cxy), each (nbins,) (see the module docstring); or
        E0, cx1 and cy1 (m, nbins), those of m base points (the planes of an N-D grid,
        whose fixed parameters change them), with ``base_rows``
    xs : (nrows,) x of every row;  ys : (ny,) y values (both finite)
    y0, cnt, o0, out, accumulate, lanes, vector_start, progress : as
        :func:`mcscan.stats.kernels.chi2_rows`
    base_rows : (nrows,) int, the base point of each row (with (m, nbins) coefficients)

    Returns
    -------
    stats : {"iterations", "scalar_path", "log_chi2", "unconverged"}
    """
    c = lambda v: np.ascontiguousarray(v, dtype=np.float64)  # noqa: E731
    E0, cx1, cx2, cy1, cy2, cxy = (c(v) for v in poly)
    xs, ys, y0, cnt, o0 = check_rows(xs, ys, y0, cnt, o0, out)
    if not all(np.all(np.isfinite(v)) for v in (E0, cx1, cx2, cy1, cy2, cxy)):
        raise ValueError("polynomial coefficients must be finite")
    nrows = xs.size
    nb_ = np.size(S)
    if E0.ndim == 1:
        E0, cx1, cy1 = E0[None, :], cx1[None, :], cy1[None, :]
        base_rows = None
    elif base_rows is None or not (E0.shape == cx1.shape == cy1.shape == (E0.shape[0], nb_)):
        raise ValueError("per-base coefficients need E0, cx1 and cy1 of one shape (m, nbins) "
                         "and base_rows")
    e0r = check_base_rows(base_rows, nrows, E0.shape[0])
    lanes = row_lanes(nrows) if lanes is None else int(lanes)
    nblk = (nrows + lanes - 1) // lanes
    stats = np.zeros((nblk, 4), dtype=np.int64)
    if nrows:
        head = (c(S), c(B), c(D), E0, e0r, cx1, cx2, cy1, cy2, cxy)
        args = head + (xs, ys, y0, cnt, o0, lanes, 1.0 / signal_pull**2, 1.0 / background_pull**2,
                       float(tol), int(max_iter), ARMIJO, SERIES_UMAX, deviance_polynomial()[0],
                       MODEL_STEP, bool(accumulate), bool(vector_start), *out, stats)
        _run_rows(args, lanes, nblk, parallel, progress=_points_told(progress, cnt))
    s = stats.sum(0)
    return dict(iterations=int(s[0]), scalar_path=int(s[1]), log_chi2=int(s[2]),
                unconverged=int(s[3]))


def warm_up(parallel=True):
    """Compile (or load from cache) these kernels on a tiny problem: the excess kernel
    and the lockstep row kernel of :mod:`mcscan.stats.kernels` (:func:`chi2_rows_poly`
    alone would run the one-row kernel in its place while the lockstep one is not built)."""
    S = np.ones(2)
    z = S * 0
    i1 = np.zeros(1, dtype=np.int64)
    chi2_excess(S, S, 2 * S, np.zeros((1, 2)), parallel=parallel)
    warm_up_rows(parallel, lanes=16)
    o = np.empty(1), np.empty(1), np.empty(1), np.empty(1, dtype=np.bool_)
    chi2_rows_poly(S, S, 2 * S, (z, z, z, z, z, S), np.zeros(1), np.zeros(1), i1, i1 + 1, i1,
                   out=o, parallel=parallel, lanes=16)
