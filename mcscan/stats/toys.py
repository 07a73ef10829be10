"""Pseudo-experiments (toys): generation and the batched profile fit over a grid.

A toy is a set of Poisson counts per bin, drawn around the expectation
``T_i = N_i(theta) + B_i`` at a chosen charge point, together with the two
auxiliary measurements of the pulls, ``a0 ~ N(0, sigma_a)`` (signal
normalisation) and ``b0 ~ N(0, sigma_b)`` (background).  Its chi2 at a point
of a grid of one charge x is profiled over the pulls with the penalty shifted
to the auxiliary measurements (docs/statistics.md section 3):

    chi2 = 2 sum_i [T_i - D_i + D_i ln(D_i / T_i)]
           + ((a - a0) / sigma_a)^2 + ((b - b0) / sigma_b)^2,
    T_i = (1 + a) N_i(x) + (1 + b) B_i.

Random numbers
--------------
Counter-based: toy ``k`` is row ``k % TOY_BLOCK`` of block ``k // TOY_BLOCK``,
and every block has its own stream, ``Generator(PCG64(SeedSequence(seed,
spawn_key=(*key, block))))``.  A block draws, in this order, its
``TOY_BLOCK x nbins`` Poisson counts (row by row) and its ``TOY_BLOCK x 2``
normal auxiliary measurements; a block is always drawn whole.  So a toy
depends only on (seed, key, k) -- not on how toys are split into chunks, on
threads or on machines (for one NumPy version: NumPy does not promise the
same streams across versions).

The fit
-------
:func:`toy_chi2` runs the numba kernel :func:`_toy_lanes`: parallel over
blocks of :data:`TOY_LANES` toys (threads, :func:`mcscan.stats._jit.run_blocks`) that
run in lockstep, one vector lane per toy (:func:`_toy_rows` is the same algorithm one toy at a
time, and gives the same bits; it compiles three times faster, so a process whose lane
kernel is neither built nor cached runs its first :data:`STAND_IN_TOY_POINTS` toy points
on it).  Each toy walks the grid in order, exactly as a row of
:func:`mcscan.stats.kernels.chi2_rows`: the pulls of a point start from a
cubic extrapolation of those of the previous four points, one Newton pass
computes gradient, Hessian and chi2 (the deviance polynomial, no logarithm),
and the chi2 after the last step is taken from the quadratic model.  Points
that need a line search or a damped step go to the scalar safeguarded Newton
:func:`mcscan.stats.kernels._profile` (the algorithm of
:func:`mcscan.stats.kernels.chi2_points`, with shifted penalties); a chi2 the
quadratic model cannot give is summed bin by bin (:func:`mcscan.stats.kernels._chi2_at`:
the series, logarithms only for bins beyond it), for all toys of a block side by side
once one in eight of them need it (:func:`mcscan.stats.kernels._lanes_chi2`, the same
bits).  The loop over bins is written like the row kernel's: fused multiply-adds
written out (:func:`mcscan.stats._jit.fma`, the same bits on every machine), one division
per bin, 512-bit vectors, and the deviance series summed only in a pass some
toy may converge in (a toy that converges in a pass without it takes the pass
again with it, at the same pulls).  The warm start (:func:`mcscan.stats.kernels._extrapolate`,
as in the row kernels), the Newton steps and the history of the pulls (a ring
of the last four points) of all lanes are computed in loops over the lanes,
the last two branch-free and vectorised; only the decisions per toy stay
scalar.  A toy depends on nothing but its own data, so the results are
bit-identical for any number of threads, any chunking, any block size, serial
or parallel runs and any machine (no fast-math flags: no sum depends on the
vector width, fused multiply-adds only where written).

The NumPy twin is :func:`toy_chi2_numpy` (vectorised, from (a, b) = (0, 0)
at every point); the constants of the Newton iteration of both come from
:mod:`mcscan.stats.newton`.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ._jit import StandIn, fma, fresh, kernel, max2, min2, run_blocks, threads, wide_vectors
from .kernels import (MODEL_STEP, SERIES_UMAX, _add_gradient, _add_series, _bin_terms, _chi2_at,
                      _dev_series, _extrapolate, _lanes_chi2, _lanes_needing_chi2, _lanes_to_pass,
                      _newton_step, _pass_state, _penalised, _profile, deviance_polynomial)
from .newton import ARMIJO, BACKGROUND_PULL, DECREMENT2_MAX, MAX_ITER, SIGNAL_PULL, STEP_TO_ZERO, TOL
from .reference import profile

__all__ = [
    "TOY_BLOCK",
    "TOY_LANES",
    "STAND_IN_TOY_POINTS",
    "grid_counts",
    "expected_counts",
    "generate_toys",
    "generate_toys_at",
    "plan_toys",
    "toy_chi2",
    "toy_chi2_numpy",
    "warm_up",
]

#: Toys per random stream (see the module docstring); chunks of toys are cut
#: on these boundaries internally, so any chunking gives the same toys.
TOY_BLOCK = 64


# ---------------------------------------------------------------------------
# expectations and generation
# ---------------------------------------------------------------------------

def grid_counts(coef, base, index, xs):
    """Signal counts N_i on a grid of one charge: (len(xs), nbins), never negative.

    ``base`` (6,) charges in e; entry ``index`` takes the values ``xs``.
    Same arithmetic as :func:`mcscan.stats.kernels.chi2_rows` (base part, then
    the x part, clipped at 0).
    """
    base = np.array(base, dtype=float)
    xs = np.asarray(xs, dtype=float)
    if not (np.all(np.isfinite(base)) and np.all(np.isfinite(xs))):
        raise InputError("charges must be finite numbers in units of e")
    fixed = base.copy()
    fixed[index] = 0.0
    E0 = fixed @ coef.L + (fixed * fixed) @ coef.Q
    x = xs[:, None]
    N = coef.S + (E0 + (x * coef.L[index] + x * x * coef.Q[index]))
    return np.maximum(N, 0.0)


def expected_counts(coef, theta):
    """Expected counts N(theta) + B per bin (pulls at 0), (nbins,)."""
    from .reference import predict

    return predict(coef, np.asarray(theta, dtype=float)) + coef.B


def _check_widths(signal_pull, background_pull):
    for name, v in (("signal_pull", signal_pull), ("background_pull", background_pull)):
        if not (isinstance(v, (int, float, np.floating)) and math.isfinite(v) and v > 0):
            raise InputError(f"{name} = {v!r}: expected a positive width")


def generate_toys(mu, seed, start, stop, *, key=(), signal_pull=SIGNAL_PULL,
                  background_pull=BACKGROUND_PULL):
    """Toys ``start`` to ``stop - 1`` around the expected counts ``mu`` (nbins,).

    Returns
    -------
    D : (stop - start, nbins) float Poisson counts;  a0, b0 : (stop - start,)
    auxiliary measurements of the signal and background pulls.
    The same (seed, key, toy index) always gives the same toy.
    """
    mu = np.asarray(mu, dtype=float)
    if mu.ndim != 1 or not np.all(np.isfinite(mu)) or np.any(mu < 0):
        raise InputError("expected counts must be finite and non-negative")
    seed = int(seed)
    if seed < 0:
        raise InputError(f"seed = {seed}: expected a non-negative integer")
    start, stop = int(start), int(stop)
    if not 0 <= start <= stop:
        raise InputError(f"toy range [{start}, {stop}): expected 0 <= start <= stop")
    _check_widths(signal_pull, background_pull)
    key = tuple(int(k) for k in key)
    n = stop - start
    D = np.empty((n, mu.size))
    aux = np.empty((n, 2))
    widths = np.array([signal_pull, background_pull], dtype=float)
    for blk in range(start // TOY_BLOCK, (stop + TOY_BLOCK - 1) // TOY_BLOCK):
        g = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(*key, blk))))
        counts = g.poisson(mu, size=(TOY_BLOCK, mu.size))
        z = g.normal(size=(TOY_BLOCK, 2))
        lo, hi = max(start, blk * TOY_BLOCK), min(stop, (blk + 1) * TOY_BLOCK)
        D[lo - start:hi - start] = counts[lo - blk * TOY_BLOCK:hi - blk * TOY_BLOCK]
        aux[lo - start:hi - start] = z[lo - blk * TOY_BLOCK:hi - blk * TOY_BLOCK] * widths
    return D, aux[:, 0].copy(), aux[:, 1].copy()


def generate_toys_at(mu, seed, indices, *, key=(), signal_pull=SIGNAL_PULL,
                     background_pull=BACKGROUND_PULL):
    """The toys of the given indices (any order), as :func:`generate_toys` draws them."""
    idx = np.asarray(indices, dtype=np.int64).ravel()
    mu = np.asarray(mu, dtype=float)
    D = np.empty((idx.size, mu.size))
    a0 = np.empty(idx.size)
    b0 = np.empty(idx.size)
    if idx.size and idx.min() < 0:
        raise InputError("toy indices must be non-negative")
    for blk in np.unique(idx // TOY_BLOCK):
        lo = int(blk) * TOY_BLOCK
        d, a, b = generate_toys(mu, seed, lo, lo + TOY_BLOCK, key=key, signal_pull=signal_pull,
                                background_pull=background_pull)
        sel = np.flatnonzero(idx // TOY_BLOCK == blk)
        D[sel], a0[sel], b0[sel] = d[idx[sel] - lo], a[idx[sel] - lo], b[idx[sel] - lo]
    return D, a0, b0


# ---------------------------------------------------------------------------
# numba: the toy kernels (the scalar profile is mcscan.stats.kernels._profile)
# ---------------------------------------------------------------------------

def _toy_rows(N, DL, S, B, D, A0, B0, isa2, isb2, tol, max_iter, armijo, umax, dev_coef,
              max_model_step, out_chi2, out_a, out_b, out_ok, b0, b1):
    """Profiled chi2 of toys b0 .. b1 - 1 (rows of D, A0, B0) at every grid point (rows of N).

    N, DL : (G, nb) signal counts and N - S on the grid;  S, B : (nb,);
    D : (ntoys, nb) toy counts;  A0, B0 : (ntoys,) auxiliary measurements.
    Outputs (ntoys, G).  Toy t depends on row t of the inputs only.
    """
    G = len(N)
    nb_ = N.shape[1]
    for t in range(b0, b1):
        R = np.empty(nb_)
        tdl = np.empty(nb_)
        Dt = np.empty(nb_)
        for i in range(nb_):
            Dt[i] = D[t, i]
            R[i] = (S[i] + B[i]) - Dt[i]            # 0 for Asimov data
        a0 = A0[t]
        b0 = B0[t]
        HA = np.zeros(4)
        HB = np.zeros(4)
        nh = np.int64(0)       # not a literal 0: one round less of numba's type inference
        for g in range(G):
            if nh >= 4:
                a = 4.0 * HA[0] - 6.0 * HA[1] + 4.0 * HA[2] - HA[3]
                b = 4.0 * HB[0] - 6.0 * HB[1] + 4.0 * HB[2] - HB[3]
            elif nh == 3:
                a = 3.0 * HA[0] - 3.0 * HA[1] + HA[2]
                b = 3.0 * HB[0] - 3.0 * HB[1] + HB[2]
            elif nh == 2:
                a = 2.0 * HA[0] - HA[1]
                b = 2.0 * HB[0] - HB[1]
            elif nh == 1:
                a = HA[0]
                b = HB[0]
            else:
                a = 0.0
                b = 0.0
            mode = 1                      # 1 vector Newton, 0 converged, 2 scalar path
            exact = False
            it_done = 0
            chi = 0.0
            if not (1.0 + a > 0.0 and 1.0 + b > 0.0):
                mode = 2
                if nh > 0:
                    a = HA[0]
                    b = HB[0]
            if mode == 1:
                for it in range(max_iter):
                    sa_ = 0.0
                    sb_ = 0.0
                    haa = 0.0
                    hab = 0.0
                    hbb = 0.0
                    dev = 0.0
                    umx = 0.0
                    bad = False
                    a1 = 1.0 + a
                    b1_ = 1.0 + b
                    for i in range(nb_):
                        n = N[g, i]
                        bi = B[i]
                        di = Dt[i]
                        T = fma(a1, n, b1_ * bi)
                        if not di > 0.0:
                            sa_ += n
                            sb_ += bi
                            dev += T
                            continue
                        if not T > 0.0:
                            bad = True
                            break
                        df, u, w = _bin_terms(DL[g, i] + R[i], n, bi, di, a, b, a1, b1_)
                        sa_ = fma(n, u, sa_)
                        sb_ = fma(bi, u, sb_)
                        nw = n * w
                        haa = fma(nw, n, haa)
                        hab = fma(nw, bi, hab)
                        hbb = fma(bi * bi, w, hbb)
                        dev = fma(df * u, _dev_series(u, dev_coef), dev)
                        umx = max2(umx, abs(u))
                    if bad:
                        mode = 2
                        it_done = it
                        break
                    da, db, lam2 = _newton_step(sa_, sb_, haa, hab, hbb, a - a0, b - b0, isa2, isb2)
                    if not (lam2 <= DECREMENT2_MAX and abs(da) <= STEP_TO_ZERO * (1.0 + a)
                            and abs(db) <= STEP_TO_ZERO * (1.0 + b)):
                        mode = 2
                        it_done = it
                        break
                    a_old = a
                    b_old = b
                    a = a + da
                    b = b + db
                    if max2(abs(da), abs(db)) < tol:
                        chi = _penalised(dev, a_old, b_old, a0, b0, isa2, isb2) - 0.5 * lam2
                        exact = not (umx <= umax and max2(abs(da), abs(db)) <= max_model_step)
                        it_done = it + 1
                        mode = 0
                        break
            status = it_done
            if mode != 0 or exact:
                for i in range(nb_):
                    tdl[i] = DL[g, i] + R[i]
                if mode == 2:
                    chi, a, b, status = _profile(N[g], tdl, B, Dt, a, b, a0, b0, it_done, isa2, isb2,
                                                 tol, max_iter, armijo, umax, dev_coef)
                else:
                    chi = _chi2_at(N[g], tdl, B, Dt, a, b, a0, b0, isa2, isb2, umax, dev_coef)
                    if mode == 1:
                        status = -max_iter
            if status > 0:
                for k in range(3, 0, -1):
                    HA[k] = HA[k - 1]
                    HB[k] = HB[k - 1]
                HA[0] = a
                HB[0] = b
                nh = min2(nh + 1, 4)
            else:
                nh = 0
            out_chi2[t, g] = max2(chi, 0.0)
            out_a[t, g] = a
            out_b[t, g] = b
            out_ok[t, g] = status > 0


def _toy_lanes(N, DL, S, B, D, A0, B0, lanes, isa2, isb2, tol, max_iter, armijo, umax, dev_coef,
               max_model_step, out_chi2, out_a, out_b, out_ok, b0, b1):
    """:func:`_toy_rows` for blocks b0 .. b1 - 1 of ``lanes`` toys in lockstep, one vector lane
    per toy: the loop over lanes has no reductions across lanes and vectorises
    without reordering any sum, so a toy's numbers do not depend on the other
    toys of its block.  A toy with an empty bin (or a detector with a bin
    without background) takes the scalar path :func:`mcscan.stats.kernels._profile` at every
    grid point.  The warm start, the Newton steps and the history of every lane
    are computed in loops over the lanes (the last two branch-free, vectorised);
    only the decisions per lane stay scalar.
    """
    wide_vectors()
    ntoys = len(D)
    G = len(N)
    nb_ = N.shape[1]
    for blk in range(b0, b1):
        DT = np.empty((nb_, lanes))
        RT = np.empty((nb_, lanes))
        A = np.zeros(lanes)
        Bp = np.zeros(lanes)
        CA = np.empty(lanes)
        CB = np.empty(lanes)
        HA = np.zeros((4, lanes))             # pulls of the previous 4 points: a ring,
        HB = np.zeros((4, lanes))             # row g % 4 written at point g
        NH = np.zeros(lanes, np.int64)
        ACC = np.empty((7, lanes))
        U, DFU, DA, DB, LAM2, STEP = _pass_state(lanes)
        LAST = np.zeros(lanes, np.int64)      # Newton passes of the previous grid point
        ACT = np.empty(lanes, np.int64)       # 1 active, 0 done, 2 scalar path, 3 converged, redo with chi2
        IT = np.empty(lanes, np.int64)
        CHI = np.empty(lanes)
        EXACT = np.empty(lanes, np.int64)
        SCALAR = np.zeros(lanes, np.int64)
        TOY = np.empty(lanes, np.int64)
        tdl = np.empty(nb_)
        tD = np.empty(nb_)
        NEED = np.empty(lanes, np.int64)     # 1: chi2 bin by bin (_chi2_at, _lanes_chi2)
        XC = np.empty(lanes)
        DF = np.empty(lanes)
        TN = np.empty((nb_, lanes))          # N and dl of the grid point in every lane
        TDL = np.empty((nb_, lanes))
        ZB = np.zeros(nb_)                   # _lanes_chi2 takes dl as TDL - 0 + 0
        for l in range(lanes):
            TOY[l] = min2(blk * lanes + l, ntoys - 1)
            CA[l] = A0[TOY[l]]
            CB[l] = B0[TOY[l]]
        for i in range(nb_):
            for l in range(lanes):
                di = D[TOY[l], i]
                DT[i, l] = di
                RT[i, l] = (S[i] + B[i]) - di        # 0 for Asimov data
                if not (di > 0.0 and B[i] > 0.0):
                    SCALAR[l] = 1
        for g in range(G):
            # warm start: extrapolate the pulls of the previous points (_extrapolate, as the rows)
            k0 = (g + 3) % 4                  # newest (point g - 1) .. oldest (point g - 4)
            k1 = (g + 2) % 4
            k2 = (g + 1) % 4
            k3 = g % 4
            for l in range(lanes):
                h = NH[l]
                ha0 = HA[k0, l]
                ha1 = HA[k1, l]
                ha2 = HA[k2, l]
                ha3 = HA[k3, l]
                hb0 = HB[k0, l]
                hb1 = HB[k1, l]
                hb2 = HB[k2, l]
                hb3 = HB[k3, l]
                a = _extrapolate(h, ha0, ha1, ha2, ha3)
                b = _extrapolate(h, hb0, hb1, hb2, hb3)
                inside = (1.0 + a > 0.0) & (1.0 + b > 0.0)
                IT[l] = 0
                EXACT[l] = 0
                ACT[l] = 1 if (SCALAR[l] == 0) & inside else 2
                # a point whose predecessor converged in one pass is expected to as well
                STEP[l] = 0.0 if LAST[l] == 1 else math.inf
                # some T_i could be <= 0: restart from the previous point, scalar
                A[l] = a if inside else (ha0 if h > 0 else 0.0)
                Bp[l] = b if inside else (hb0 if h > 0 else 0.0)
            for it in range(max_iter):
                # The deviance series is summed in a pass only if some lane may converge
                # in it (its chi2 is taken there); it changes no step, so skipping it
                # changes no bit.  A lane that converges in a pass without it is passed
                # over again (ACT 3) in the next pass, which has it, at the same pulls.
                nact, ser = _lanes_to_pass(ACT, STEP, lanes, it == max_iter - 1)
                if nact == 0:
                    break
                for k in range(7):
                    for l in range(lanes):
                        ACC[k, l] = 0.0
                # one pass over the bins: gradient, Hessian and chi2 at the current pulls
                # (1 + a and 1 + b in the loop: two arrays more for LLVM's overlap checks
                # would keep it out of the vector loop below 24 lanes)
                for i in range(nb_):
                    n = N[g, i]
                    dl = DL[g, i]
                    bi = B[i]
                    bb = bi * bi
                    if not ser:
                        # no lane can finish in this pass: the step needs only the gradient
                        # and the Hessian (the same numbers as below)
                        for l in range(lanes):
                            df, u, w = _bin_terms(dl + RT[i, l], n, bi, DT[i, l], A[l], Bp[l], 1.0 + A[l],
                                                   1.0 + Bp[l])
                            _add_gradient(ACC, l, n, bi, bb, u, w)
                        continue
                    for l in range(lanes):
                        df, u, w = _bin_terms(dl + RT[i, l], n, bi, DT[i, l], A[l], Bp[l], 1.0 + A[l],
                                               1.0 + Bp[l])
                        _add_gradient(ACC, l, n, bi, bb, u, w)
                        ACC[6, l] = max2(fresh(ACC[6, l]), abs(u))    # no masked store: see fresh
                        U[l] = u
                        DFU[l] = df * u
                    _add_series(ACC, U, DFU, lanes, dev_coef)
                # the Newton step of every lane, branch-free (vectorised), then per lane:
                # take it, or hand the point to the scalar path
                for l in range(lanes):
                    DA[l], DB[l], LAM2[l] = _newton_step(ACC[0, l], ACC[1, l], ACC[2, l], ACC[3, l],
                                                         ACC[4, l], A[l] - CA[l], Bp[l] - CB[l],
                                                         isa2, isb2)
                for l in range(lanes):
                    act = ACT[l]
                    if act != 1 and act != 3:
                        continue
                    a = A[l]
                    b = Bp[l]
                    da = DA[l]
                    db = DB[l]
                    lam2 = LAM2[l]
                    if not (lam2 <= DECREMENT2_MAX and abs(da) <= STEP_TO_ZERO * (1.0 + a)
                            and abs(db) <= STEP_TO_ZERO * (1.0 + b)):
                        ACT[l] = 2
                        IT[l] = it
                        continue
                    step = max2(abs(da), abs(db))
                    if step < tol and not ser:
                        # converged without the series: take this pass again with it
                        ACT[l] = 3
                        IT[l] = it
                        continue
                    A[l] = a + da
                    Bp[l] = b + db
                    STEP[l] = step
                    if step < tol:
                        CHI[l] = _penalised(ACC[5, l], a, b, CA[l], CB[l], isa2, isb2) - 0.5 * lam2
                        EXACT[l] = not (ACC[6, l] <= umax and step <= max_model_step)
                        IT[l] = (IT[l] if act == 3 else it) + 1
                        ACT[l] = 0
            # the chi2 of lanes unconverged or with some |u| beyond the series, bin by bin:
            # all lanes side by side when enough need it (the same bits as one at a time)
            vec_exact = _lanes_needing_chi2(ACT, EXACT, NEED, lanes)
            if vec_exact:
                for i in range(nb_):
                    n = N[g, i]
                    dl = DL[g, i]
                    for l in range(lanes):
                        TN[i, l] = n
                        TDL[i, l] = dl + RT[i, l]
                _lanes_chi2(TN, TDL, ZB, ZB, DT, B, A, Bp, NEED, lanes, umax, dev_coef, U, DF, XC)
            for l in range(lanes):
                if ACT[l] != 0 or EXACT[l] != 0:
                    if ACT[l] == 2 or not vec_exact:
                        for i in range(nb_):
                            tdl[i] = DL[g, i] + RT[i, l]
                            tD[i] = DT[i, l]
                    if ACT[l] == 2:
                        CHI[l], A[l], Bp[l], IT[l] = _profile(N[g], tdl, B, tD, A[l], Bp[l], CA[l], CB[l],
                                                             IT[l], isa2, isb2, tol, max_iter, armijo,
                                                             umax, dev_coef)
                    else:
                        if vec_exact:
                            CHI[l] = _penalised(XC[l], A[l], Bp[l], CA[l], CB[l], isa2, isb2)
                        else:
                            CHI[l] = _chi2_at(N[g], tdl, B, tD, A[l], Bp[l], CA[l], CB[l], isa2,
                                              isb2, umax, dev_coef)
                        if ACT[l] == 1:
                            IT[l] = -max_iter
            # history of converged pulls (vectorised): written in every lane (over the
            # oldest), read only up to NH, which a failed point sets to 0
            for l in range(lanes):
                HA[k3, l] = A[l]
                HB[k3, l] = Bp[l]
                ok = IT[l] > 0
                NH[l] = min2(NH[l] + 1, 4) if ok else 0
                LAST[l] = IT[l] if ok else 0
            for l in range(min2(lanes, ntoys - blk * lanes)):
                t = blk * lanes + l
                out_chi2[t, g] = max2(CHI[l], 0.0)
                out_a[t, g] = A[l]
                out_b[t, g] = Bp[l]
                out_ok[t, g] = IT[l] > 0


_rows = kernel(_toy_rows)
_lanes = kernel(_toy_lanes)

#: Toys per block of the lane kernel (one vector lane each); results do not depend on it.
TOY_LANES = 32

#: Toy points (toys x grid points) that a process runs on the one-toy kernel instead of
#: the lane kernel while the lane kernel is not built (neither in the process nor in the
#: cache): the one-toy kernel compiles in about 0.9 s against 2.8 to 3.3 s (AMD EPYC, 2
#: cores) and gives the same bits.  It is slower by about 0.2 us a toy point (Ge, 201
#: points per toy: 3.6 against 13.5 M toy points/s on two threads), so a job of up to
#: this many points (a first ``mcscan bands`` of 1000 toys x 201 points per detector)
#: waits for the one-toy kernel alone, and calls that announce nothing
#: (:func:`plan_toys`) lose at most about 0.4 s.  Results do not depend on it.
STAND_IN_TOY_POINTS = 2_000_000

#: The lane kernel's stand-in budget (:func:`toy_chi2`).
_STAND_IN = StandIn(_lanes, lambda: STAND_IN_TOY_POINTS)


def plan_toys(npoints) -> None:
    """Announce a job of ``npoints`` toy points (toys x grid points x detectors, all its
    kernel calls), in every process that runs a part of it.  From a job larger than
    :data:`STAND_IN_TOY_POINTS` on, the one-toy kernel stands in no more in this process:
    the lane kernel is compiled (or loaded) at the job's first call.  A smaller job
    changes nothing; calling it again for the same job changes nothing."""
    _STAND_IN.plan(npoints)


def _check_toy_inputs(N, S, B, D, a0, b0):
    N = np.ascontiguousarray(N, dtype=np.float64)
    S = np.ascontiguousarray(S, dtype=np.float64)
    B = np.ascontiguousarray(B, dtype=np.float64)
    D = np.ascontiguousarray(np.atleast_2d(D), dtype=np.float64)
    a0 = np.ascontiguousarray(np.atleast_1d(a0), dtype=np.float64)
    b0 = np.ascontiguousarray(np.atleast_1d(b0), dtype=np.float64)
    nbins = S.size
    if N.ndim != 2 or N.shape[1] != nbins or B.shape != (nbins,) or D.shape[1] != nbins:
        raise InputError(f"shapes: N {N.shape}, S {S.shape}, B {B.shape}, D {D.shape}: expected "
                         "(G, nbins), (nbins,), (nbins,), (ntoys, nbins)")
    if a0.shape != (D.shape[0],) or b0.shape != (D.shape[0],):
        raise InputError("a0 and b0 need one value per toy")
    for name, v in (("N", N), ("S", S), ("B", B), ("D", D), ("a0", a0), ("b0", b0)):
        if not np.all(np.isfinite(v)):
            raise InputError(f"{name} contains non-finite values")
    if np.any(N < 0) or np.any(B < 0) or np.any(D < 0):
        raise InputError("counts must be non-negative")
    return N, S, B, D, a0, b0


def toy_chi2(N, S, B, D, a0, b0, *, signal_pull=SIGNAL_PULL, background_pull=BACKGROUND_PULL,
             tol=TOL, max_iter=MAX_ITER, parallel=True, lanes=None):
    """Profiled chi2 of many toys on a grid (numba).

    Parameters
    ----------
    N : (G, nbins) signal counts N_i(x_g) >= 0 on the grid (:func:`grid_counts`)
    S, B : (nbins,) SM and background counts
    D : (ntoys, nbins) toy counts;  a0, b0 : (ntoys,) auxiliary pull measurements
    parallel : parallel over toys (results are identical either way)
    lanes : toys per block of the lane kernel (default :data:`TOY_LANES`); 0 runs
        the one-toy-at-a-time kernel :func:`_toy_rows`.  Results do not depend
        on it.  By default, while the lane kernel is not built, the first
        :data:`STAND_IN_TOY_POINTS` toy points of a process run on the one-toy kernel.

    Returns
    -------
    chi2, a, b : (ntoys, G) floats;  ok : (ntoys, G) bool (profile converged)
    """
    _check_widths(signal_pull, background_pull)
    N, S, B, D, a0, b0 = _check_toy_inputs(N, S, B, D, a0, b0)
    shape = (D.shape[0], N.shape[0])
    out = np.empty(shape), np.empty(shape), np.empty(shape), np.empty(shape, dtype=np.bool_)
    if D.shape[0] and N.shape[0]:
        if lanes is None:
            lanes = 0 if _STAND_IN.take(D.shape[0] * N.shape[0]) else TOY_LANES
        lanes = int(lanes)
        lanes = min(lanes, D.shape[0])
        common = (1.0 / signal_pull**2, 1.0 / background_pull**2, float(tol), int(max_iter), ARMIJO,
                  SERIES_UMAX, deviance_polynomial()[0], MODEL_STEP, *out)
        if lanes >= 1:
            f, nblk = _lanes, -(-D.shape[0] // lanes)
            args = (N, N - S, S, B, D, a0, b0, lanes, *common)
        else:
            f, nblk = _rows, D.shape[0]
            args = (N, N - S, S, B, D, a0, b0, *common)
        run_blocks(f, args, nblk, parallel=parallel, grain=max(1, nblk // (8 * threads())))
    return out


# ---------------------------------------------------------------------------
# NumPy twin
# ---------------------------------------------------------------------------

def profile_numpy(N, dl, B, D, a0, b0, *, signal_pull=SIGNAL_PULL, background_pull=BACKGROUND_PULL,
                  tol=TOL, max_iter=MAX_ITER):
    """Vectorised safeguarded Newton profile with penalties centred on (a0, b0):
    :func:`mcscan.stats.reference.profile`, the algorithm of
    :func:`mcscan.stats.reference.chi2`.

    N, dl, D : (n, nbins) with dl = (N - S) + (S + B - D);  B : (nbins,);  a0, b0 : (n,).
    Returns chi2, a, b, iterations (n,), iterations negative if not converged.
    """
    return profile(N, dl, B, D, a0, b0, signal_pull=signal_pull, background_pull=background_pull,
                   tol=tol, max_iter=max_iter)


def toy_chi2_numpy(N, S, B, D, a0, b0, *, signal_pull=SIGNAL_PULL, background_pull=BACKGROUND_PULL,
                   tol=TOL, max_iter=MAX_ITER):
    """NumPy twin of :func:`toy_chi2` (same contract and results to the convergence tolerance)."""
    _check_widths(signal_pull, background_pull)
    N, S, B, D, a0, b0 = _check_toy_inputs(N, S, B, D, a0, b0)
    ntoys, G = D.shape[0], N.shape[0]
    Nr = np.broadcast_to(N[None], (ntoys, G, S.size)).reshape(-1, S.size)
    Dr = np.broadcast_to(D[:, None], (ntoys, G, S.size)).reshape(-1, S.size)
    dl = (Nr - S) + ((S + B) - Dr)
    chi, a, b, it = profile_numpy(Nr, dl, B, Dr, np.repeat(a0, G), np.repeat(b0, G),
                                  signal_pull=signal_pull, background_pull=background_pull,
                                  tol=tol, max_iter=max_iter)
    shape = (ntoys, G)
    return (np.maximum(chi, 0.0).reshape(shape), a.reshape(shape), b.reshape(shape),
            (it > 0).reshape(shape))


def warm_up(parallel=True):
    """Compile (or load from the cache) the toy kernel on a tiny problem."""
    S = np.ones(2)
    for lanes in (0, 1):
        toy_chi2(np.ones((1, 2)), S, S, 2 * S[None], np.zeros(1), np.zeros(1), parallel=parallel,
                 lanes=lanes)
