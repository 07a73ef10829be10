"""numba kernels for scans over any parameter family (docs/physics.md section 11).

The millicharge kernels of :mod:`mcscan.stats.kernels` stay as they are; these
take per-bin polynomial coefficients (:func:`mcscan.stats.families.row_polynomial`)
or per-point excess counts instead of charges:

* :func:`chi2_rows_poly` -- grids along rows with counts
  N_i = S_i + E0_i + x cx1_i + x^2 cx2_i + y cy1_i + y^2 cy2_i + x y cxy_i.  Without a
  cross term (cxy = 0, e.g. one scanned parameter, or two acting on different
  flavours) it runs the millicharge row kernel itself; with one it runs
  :func:`_chi2_rows_xy`, the same algorithm with the y-linear coefficient of
  each row cy1 + x cxy.  Same warm starts, same bit-identity for any threads,
  block size and serial or parallel build.
* :func:`chi2_excess` -- any batch of points given as excess counts
  N_i - S_i (npts, nbins), each profiled from (a, b) = (0, 0).

Their NumPy twin is :func:`mcscan.stats.families.chi2_all` (the NumPy
recombination, then the profile of :func:`mcscan.stats.reference.chi2`);
tests compare them, serial and parallel.  Constants come from
:mod:`mcscan.stats.newton` and :mod:`mcscan.stats.kernels`.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

from ._jit import kernel
from .kernels import (MODEL_STEP, SERIES_UMAX, _chi2_at, _dev_series, _profile, _rows_parallel,
                      _rows_serial, deviance_polynomial, row_lanes)
from .newton import (ARMIJO, BACKGROUND_PULL, DECREMENT2_MAX, MAX_ITER, SIGNAL_PULL, STEP_TO_ZERO,
                     TOL)

__all__ = ["chi2_rows_poly", "chi2_excess", "warm_up"]

_CHUNK = 64


def _chi2_excess(S, B, D, EX, isa2, isb2, tol, max_iter, armijo, out_chi2, out_a, out_b, out_it):
    npts = EX.shape[0]
    nb_ = S.shape[0]
    nchunk = (npts + _CHUNK - 1) // _CHUNK
    for c in nb.prange(nchunk):
        N = np.empty(nb_)
        dl = np.empty(nb_)
        for p in range(c * _CHUNK, min(npts, (c + 1) * _CHUNK)):
            for i in range(nb_):
                n = S[i] + EX[p, i]
                n = max(n, 0.0)
                N[i] = n
                dl[i] = n - S[i]
            chi, a, b, status = _profile(N, dl, B, D, 0.0, 0.0, 0, isa2, isb2, tol, max_iter, armijo)
            out_chi2[p] = chi
            out_a[p] = a
            out_b[p] = b
            out_it[p] = status


def _chi2_rows_xy(S, B, D, E0, cx1, cx2, cy1, cy2, cxy, xs, ys, y0, cnt, o0, lanes,
               isa2, isb2, tol, max_iter, armijo, umax, dev_coef, max_model_step, accumulate,
               out_chi2, out_a, out_b, out_ok, out_stats):
    """Profiled chi2 along rows, with a cross term: :func:`mcscan.stats.kernels._chi2_rows`
    with the counts

        N_i = max(S_i + (E0_i + (x cx1_i + x^2 cx2_i)) + (y (cy1_i + x cxy_i) + y^2 cy2_i), 0),

    i.e. the y-linear coefficient of every lane is cy1 + x cxy (one row: one x).

    Blocks of ``lanes`` consecutive rows run in lockstep, one row per lane;
    the pulls of a point start from an extrapolation of the converged pulls
    of the previous points of its row.  ``accumulate``: add chi2 to out_chi2
    and AND the convergence flag into out_ok instead of overwriting them.
    out_stats[block] receives: Newton iterations, points sent to the scalar
    path, chi2 recomputed with logarithms, unconverged points.
    """
    nb_ = S.shape[0]
    nrows = xs.shape[0]
    nblk = (nrows + lanes - 1) // lanes
    for blk in nb.prange(nblk):
        EX = np.empty((nb_, lanes))       # row part of the excess
        CY = np.empty((nb_, lanes))       # y-linear coefficient of each row: cy1 + x cxy
        tN = np.empty(nb_)
        tD = np.empty(nb_)
        Y = np.empty(lanes)
        Y2 = np.empty(lanes)
        A = np.zeros(lanes)
        Bp = np.zeros(lanes)
        HA = np.zeros((4, lanes))         # converged pulls of the previous points, newest first
        HB = np.zeros((4, lanes))
        NH = np.zeros(lanes, np.int64)
        ACC = np.empty((7, lanes))        # per-lane sums of one pass over the bins
        ACT = np.empty(lanes, np.int64)   # 1 active, 0 done, 2 scalar path
        IT = np.empty(lanes, np.int64)
        CHI = np.empty(lanes)
        EXACT = np.empty(lanes, np.int64)
        ROW = np.empty(lanes, np.int64)
        CNT = np.empty(lanes, np.int64)
        st_it = 0
        st_slow = 0
        st_exact = 0
        st_fail = 0
        ncols = 0
        for l in range(lanes):
            # lanes past the last row repeat it and store nothing
            ROW[l] = min(blk * lanes + l, nrows - 1)
            CNT[l] = cnt[ROW[l]] if blk * lanes + l < nrows else 0
            ncols = max(ncols, CNT[l])
        for i in range(nb_):
            for l in range(lanes):
                x = xs[ROW[l]]
                EX[i, l] = E0[i] + (x * cx1[i] + x * x * cx2[i])
                CY[i, l] = cy1[i] + x * cxy[i]
        for c in range(ncols):
            for l in range(lanes):
                y = ys[y0[ROW[l]] + min(c, cnt[ROW[l]] - 1)]
                Y[l] = y
                Y2[l] = y * y
            # warm start: extrapolate the pulls of the previous points of the row
            for l in range(lanes):
                h = NH[l]
                if h >= 4:
                    a = 4.0 * HA[0, l] - 6.0 * HA[1, l] + 4.0 * HA[2, l] - HA[3, l]
                    b = 4.0 * HB[0, l] - 6.0 * HB[1, l] + 4.0 * HB[2, l] - HB[3, l]
                elif h == 3:
                    a = 3.0 * HA[0, l] - 3.0 * HA[1, l] + HA[2, l]
                    b = 3.0 * HB[0, l] - 3.0 * HB[1, l] + HB[2, l]
                elif h == 2:
                    a = 2.0 * HA[0, l] - HA[1, l]
                    b = 2.0 * HB[0, l] - HB[1, l]
                elif h == 1:
                    a = HA[0, l]
                    b = HB[0, l]
                else:
                    a = 0.0
                    b = 0.0
                IT[l] = 0
                EXACT[l] = 0
                ACT[l] = 1
                if not (1.0 + a > 0.0 and 1.0 + b > 0.0):
                    # some T_i could be <= 0: restart from the previous point, scalar
                    ACT[l] = 2
                    if h > 0:
                        a = HA[0, l]
                        b = HB[0, l]
                A[l] = a
                Bp[l] = b
            for it in range(max_iter):
                nact = 0
                for l in range(lanes):
                    nact += ACT[l] == 1
                if nact == 0:
                    break
                for k in range(7):
                    for l in range(lanes):
                        ACC[k, l] = 0.0
                # one pass over the bins: gradient, Hessian and chi2 at the current pulls;
                # with 1 + a > 0 and 1 + b > 0 every T_i > 0 (N_i >= 0, B_i > 0)
                for i in range(nb_):
                    s = S[i]
                    c4 = cy2[i]
                    bi = B[i]
                    di = D[i]
                    bb = bi * bi
                    if not di > 0.0:
                        # empty bin (D = 0): u = 1, w = 0, chi2 term T
                        for l in range(lanes):
                            n = max(s + (EX[i, l] + (Y[l] * CY[i, l] + Y2[l] * c4)), 0.0)
                            ACC[0, l] += n
                            ACC[1, l] += bi
                            ACC[5, l] += (1.0 + A[l]) * n + (1.0 + Bp[l]) * bi
                        continue
                    for l in range(lanes):
                        a = A[l]
                        b = Bp[l]
                        n = s + (EX[i, l] + (Y[l] * CY[i, l] + Y2[l] * c4))
                        n = max(n, 0.0)
                        df = (n - s) + a * n + b * bi          # T - D
                        T = (1.0 + a) * n + (1.0 + b) * bi
                        r = 1.0 / T
                        u = df * r
                        w = di * r * r
                        ACC[0, l] += n * u
                        ACC[1, l] += bi * u
                        nw = n * w
                        ACC[2, l] += nw * n
                        ACC[3, l] += nw * bi
                        ACC[4, l] += bb * w
                        ACC[5, l] += df * u * _dev_series(u, dev_coef)
                        ACC[6, l] = max(ACC[6, l], abs(u))
                # per lane: the Newton step, or hand the point to the scalar path
                for l in range(lanes):
                    if ACT[l] != 1:
                        continue
                    a = A[l]
                    b = Bp[l]
                    ga = 2.0 * ACC[0, l] + 2.0 * a * isa2
                    gb = 2.0 * ACC[1, l] + 2.0 * b * isb2
                    haa = 2.0 * ACC[2, l] + 2.0 * isa2
                    hab = 2.0 * ACC[3, l]
                    hbb = 2.0 * ACC[4, l] + 2.0 * isb2
                    det = haa * hbb - hab * hab
                    da = -(hbb * ga - hab * gb) / det
                    db = -(haa * gb - hab * ga) / det
                    lam2 = max(-(ga * da + gb * db), 0.0)
                    # a full step keeps every T > 0.1 T_old if |da| <= 0.9 (1 + a) and
                    # |db| <= 0.9 (1 + b); otherwise (or for a line search) go scalar
                    if not (lam2 <= DECREMENT2_MAX and abs(da) <= STEP_TO_ZERO * (1.0 + a)
                            and abs(db) <= STEP_TO_ZERO * (1.0 + b)):
                        ACT[l] = 2
                        IT[l] = it
                        continue
                    A[l] = a + da
                    Bp[l] = b + db
                    if max(abs(da), abs(db)) < tol:
                        # chi2 after the step from the quadratic model: error O(step^3)
                        CHI[l] = 2.0 * ACC[5, l] + a * a * isa2 + b * b * isb2 - 0.5 * lam2
                        EXACT[l] = not (ACC[6, l] <= umax and max(abs(da), abs(db)) <= max_model_step)
                        IT[l] = it + 1
                        ACT[l] = 0
            for l in range(lanes):
                store = c < CNT[l]
                if ACT[l] != 0 or EXACT[l] != 0:
                    y = Y[l]
                    for i in range(nb_):
                        n = S[i] + (EX[i, l] + (y * CY[i, l] + Y2[l] * cy2[i]))
                        n = max(n, 0.0)
                        tN[i] = n
                        tD[i] = n - S[i]
                    if ACT[l] == 2:
                        CHI[l], A[l], Bp[l], IT[l] = _profile(tN, tD, B, D, A[l], Bp[l], IT[l], isa2,
                                                             isb2, tol, max_iter, armijo)
                    else:
                        # unconverged in the vector loop, or |u| beyond the series
                        CHI[l] = _chi2_at(tN, tD, B, D, A[l], Bp[l], isa2, isb2)
                        if ACT[l] == 1:
                            IT[l] = -max_iter
                    if store:
                        st_slow += ACT[l] == 2
                        st_exact += ACT[l] != 2
                if IT[l] > 0:
                    for k in range(3, 0, -1):
                        HA[k, l] = HA[k - 1, l]
                        HB[k, l] = HB[k - 1, l]
                    HA[0, l] = A[l]
                    HB[0, l] = Bp[l]
                    NH[l] = min(NH[l] + 1, 4)
                else:
                    NH[l] = 0
                if store:
                    p = o0[ROW[l]] + c
                    # the quadratic-model chi2 may round below zero near the minimum
                    chi = max(CHI[l], 0.0)
                    if accumulate:
                        out_chi2[p] += chi
                        out_ok[p] &= IT[l] > 0
                    else:
                        out_chi2[p] = chi
                        out_ok[p] = IT[l] > 0
                    out_a[p] = A[l]
                    out_b[p] = Bp[l]
                    st_it += abs(IT[l])
                    st_fail += IT[l] <= 0
        out_stats[blk, 0] = st_it
        out_stats[blk, 1] = st_slow
        out_stats[blk, 2] = st_exact
        out_stats[blk, 3] = st_fail


_ex_serial, _ex_parallel = kernel(_chi2_excess)
_xy_serial, _xy_parallel = kernel(_chi2_rows_xy)


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
    f = _ex_parallel if parallel else _ex_serial
    f(np.ascontiguousarray(S, dtype=np.float64), np.ascontiguousarray(B, dtype=np.float64),
      np.ascontiguousarray(D, dtype=np.float64), ex, 1.0 / signal_pull**2, 1.0 / background_pull**2,
      float(tol), int(max_iter), ARMIJO, *out)
    return out


def chi2_rows_poly(S, B, D, poly, xs, ys, y0, cnt, o0, *, out, accumulate=False,
                   signal_pull=SIGNAL_PULL, background_pull=BACKGROUND_PULL, tol=TOL,
                   max_iter=MAX_ITER, parallel=True, lanes=None):
    """Profiled chi2 along rows of a grid with per-bin polynomial counts (numba).

    Parameters
    ----------
    S, B, D : (nbins,) SM counts, background, Asimov data
    poly : (E0, cx1, cx2, cy1, cy2, cxy), each (nbins,) (see the module docstring)
    xs : (nrows,) x of every row;  ys : (ny,) y values (both finite)
    y0, cnt, o0, out, accumulate, lanes : as :func:`mcscan.stats.kernels.chi2_rows`

    Returns
    -------
    stats : {"iterations", "scalar_path", "log_chi2", "unconverged"}
    """
    c = lambda v: np.ascontiguousarray(v, dtype=np.float64)  # noqa: E731
    E0, cx1, cx2, cy1, cy2, cxy = (c(v) for v in poly)
    xs, ys = c(xs), c(ys)
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
        raise ValueError("xs and ys must be finite")
    if not all(np.all(np.isfinite(v)) for v in (E0, cx1, cx2, cy1, cy2, cxy)):
        raise ValueError("polynomial coefficients must be finite")
    y0, cnt, o0 = (np.ascontiguousarray(v, dtype=np.int64) for v in (y0, cnt, o0))
    nrows = xs.size
    if not (y0.size == cnt.size == o0.size == nrows):
        raise ValueError("xs, y0, cnt and o0 need one entry per row")
    if nrows and (cnt.min() < 1 or y0.min() < 0 or (y0 + cnt).max() > ys.size):
        raise ValueError("rows must hold 1 or more points of ys")
    n_out = out[0].size
    if (len(out) != 4 or any(o.shape != (n_out,) or not o.flags.c_contiguous for o in out)
            or any(o.dtype != np.float64 for o in out[:3]) or out[3].dtype != np.bool_):
        raise ValueError("out must be four contiguous flat arrays of one size: "
                         "float64 chi2, a, b and bool ok")
    if nrows:
        order = np.argsort(o0, kind="stable")
        lo, hi = o0[order], (o0 + cnt)[order]
        if lo[0] < 0 or hi[-1] > n_out or np.any(lo[1:] < hi[:-1]):
            raise ValueError("rows must write to separate ranges inside the output arrays")
    lanes = row_lanes(nrows) if lanes is None else int(lanes)
    nblk = (nrows + lanes - 1) // lanes
    stats = np.zeros((nblk, 4), dtype=np.int64)
    if nrows:
        cross = bool(np.any(cxy != 0.0))
        head = ((c(S), c(B), c(D), E0, cx1, cx2, cy1, cy2, cxy) if cross else
                (c(S), c(B), c(D), c(E0[None, :]), np.zeros(nrows, dtype=np.int64), cx1, cx2, cy1, cy2))
        args = head + (xs, ys, y0, cnt, o0, lanes, 1.0 / signal_pull**2, 1.0 / background_pull**2,
                       float(tol), int(max_iter), ARMIJO, SERIES_UMAX, deviance_polynomial()[0],
                       MODEL_STEP, bool(accumulate), *out, stats)
        if cross:
            f = _xy_parallel if parallel else _xy_serial
        else:
            f = _rows_parallel if parallel else _rows_serial
        if parallel:
            with nb.parallel_chunksize(1):
                f(*args)
        else:
            f(*args)
    s = stats.sum(0)
    return dict(iterations=int(s[0]), scalar_path=int(s[1]), log_chi2=int(s[2]),
                unconverged=int(s[3]))


def warm_up(parallel=True):
    """Compile (or load from cache) these kernels on a tiny problem."""
    S = np.ones(2)
    z = S * 0
    i1 = np.zeros(1, dtype=np.int64)
    chi2_excess(S, S, 2 * S, np.zeros((1, 2)), parallel=parallel)
    o = np.empty(1), np.empty(1), np.empty(1), np.empty(1, dtype=np.bool_)
    chi2_rows_poly(S, S, 2 * S, (z, z, z, z, z, S), np.zeros(1), np.zeros(1), i1, i1 + 1, i1,
                   out=o, parallel=parallel, lanes=16)
