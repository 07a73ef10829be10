"""numba kernels: the profiled chi2 over batches of points and over grids.

No I/O, no globals, no progress bars.  The NumPy twin of every kernel is
:func:`mcscan.stats.reference.chi2` (for the row kernel: evaluated at the grid
points); they run the same damped Newton iteration and agree to the
convergence tolerance (1e-13 relative in chi2 in practice).  Each kernel
is one serial build over a range of independent blocks; the public wrappers
run it on one thread or several (:func:`mcscan.stats._jit.run_blocks`).

Two kernels, the second written twice: :func:`_chi2_rows` runs rows in lockstep,
:func:`_chi2_row` one row at a time (1D scans, calls with few rows), with the
same operations in the same order, so the same bits, from a function that
compiles in about 2 s instead of 3.5 s.  Until the lockstep kernel is built
(compiled in the process or found in the cache), the one-row kernel also runs the
first :data:`STAND_IN_POINTS` points of lockstep calls (:func:`_run_rows`), so a
first small 2D scan waits for the smaller compile:

* :func:`chi2_points` -- any batch of (npts, 6) charge points, each profiled
  from (a, b) = (0, 0): the twin's algorithm point by point.
* :func:`chi2_rows` -- grids, given as rows.  Along a row only one charge
  pair (x, y) varies, so every bin's count is one quadratic polynomial
  N_i = S_i + E_i + c1_i x + c2_i x^2 + c3_i y + c4_i y^2 (no cross terms,
  see :mod:`mcscan.stats.reference`); no theta array is built.  Blocks of ``lanes``
  rows run in lockstep, one vector lane per row, so the loop over bins has
  no reductions across lanes and vectorises without reordering any sum.
  The counts of a column are computed once, before its Newton passes; per
  bin a pass runs one loop over the lanes (u, w, the gradient and Hessian
  sums and the deviance series), written with fused multiply-adds
  (:func:`mcscan.stats._jit.fma`: the same bits on every machine; on Intel
  AVX-512 cores, with two 512-bit pipes and no separate adder, they halve the
  floating-point instructions).  The Newton steps of all lanes are computed
  in a branch-free loop of their own, and the history of converged pulls is
  updated in another, so both vectorise; only the decisions per lane stay
  scalar.  The kernel asks LLVM for 512-bit vectors
  (:func:`mcscan.stats._jit.wide_vectors`): LLVM's tuning for Intel AVX-512
  cores otherwise prefers 256 bits.
  The pulls of a point start from a cubic extrapolation of the converged
  pulls of the previous four points of its row: one Newton pass per point
  (gradient, Hessian and chi2 together, no logarithm) usually finds a step
  below ``tol``.  The chi2 after that step is the chi2 at the start of the
  pass, from the deviance polynomial of :func:`deviance_polynomial`, minus
  the decrease lam^2 / 2 the quadratic model predicts for the full Newton
  step (lam^2: squared Newton decrement; error O(step^3)).  Points
  that need a line search, a damped step, a fresh start, |1 - D/T| beyond
  :data:`SERIES_UMAX` or a last step above :data:`MODEL_STEP` finish in the
  scalar code of :func:`chi2_points` (with logarithms).
  A pass sums the deviance series only when some lane may converge in it
  (:data:`PREDICT_STEP`); a lane that converges in a pass without it takes
  that pass again, at the same pulls, with it.  Where every point needs two
  passes (coarse grids) the first one is then about a third cheaper, and no
  bit changes: the series never enters a step.  With ``vector_start`` (scans
  of four or more charges, whose rows are short) the first points of a row,
  whose starts are too far for a full Newton step, take shortened Newton
  steps in the vector loop instead of the scalar path.

A point of :func:`chi2_rows` depends only on the earlier points of its row:
results are bit-identical for any number of threads, any block size, any
subset of rows and serial or parallel runs, and the same on every machine
(no fast-math flags, no sum depends on the vector width, fused multiply-adds
only where written, rounded once everywhere).
"""
from __future__ import annotations

import decimal
import functools
import math
import struct
from fractions import Fraction

import numpy as np

from ._jit import (StandIn, bits_float, build_in_child, built, float_bits, fma, fresh, helper, kernel,
                   max2, min2, prefetch_write, run_blocks, threads as _threads, wide_vectors)
from .newton import (ARMIJO, BACKGROUND_PULL, BACKTRACK, DECREMENT2_MAX, DEVIANCE_SERIES_EPS,
                     MAX_BACKTRACK, MAX_ITER, SIGNAL_PULL, STEP_TO_ZERO, TOL)

__all__ = [
    "LANES",
    "MIN_LANES",
    "MODEL_STEP",
    "PREDICT_STEP",
    "PREFETCH_AHEAD",
    "PREFETCH_EVERY",
    "PREFETCH_MIN_COLUMNS",
    "SERIES_DEGREE",
    "SERIES_UMAX",
    "STAND_IN_POINTS",
    "VECTOR_START_PASSES",
    "chi2_points",
    "chi2_rows",
    "deviance_polynomial",
    "plan_lockstep",
    "row_lanes",
    "warm_up",
    "warm_up_rows",
]

_CHUNK = 64

#: The lockstep row kernel asks for the output cache lines of the column
#: ``PREFETCH_AHEAD`` columns ahead of the current one, every ``PREFETCH_EVERY`` columns
#: (8 doubles to a 64-byte line; :func:`mcscan.stats._jit.prefetch_write`).  Its lanes
#: store into as many rows, a row apart: without it each store waits for its line to
#: come from memory (Intel Xeon pair: 1.13 to 1.15 times the points per second on one
#: thread, 1.10 on two, the same bits).
PREFETCH_AHEAD = 16
PREFETCH_EVERY = 8
#: Only in blocks whose rows have at least this many points (2D scans): the rows of N-D
#: scans (21 points in the bench's 5D scan) ran 1.01 times as fast without it.
PREFETCH_MIN_COLUMNS = 64
#: Most rows per block of the row kernel (one vector lane each); see :func:`row_lanes`.
LANES = 64
#: Fewest rows per block of the lockstep row kernel (:func:`row_lanes`).  LLVM vectorises
#: the loops over lanes 8 doubles per 512-bit vector, 4 vectors per iteration, and enters
#: that loop only from 40 lanes on: 32 or 33 lanes ran at half the speed per point of 40,
#: 48, 56 or 64 (AVX-512; 2D and 5D scans alike), 24 at a third.  With 256-bit vectors
#: the threshold is half as high.
MIN_LANES = 40
#: Largest |u| = |1 - D/T| in any bin for which the row kernel takes the chi2 from
#: the deviance polynomial (:func:`deviance_polynomial`); beyond it the point's chi2
#: is recomputed with logarithms.
SERIES_UMAX = 0.15
#: Degree of that polynomial: its truncation error is below 6e-17 relative at 0.15.
SERIES_DEGREE = 12
#: Largest last Newton step (in a or b) for which the row kernel takes the chi2 after
#: the step from the quadratic model; the neglected third-order term, about
#: 4 sum_i B_i step^3 / 6 (1e5 step^3 for the reference tables), stays below 1e-19.
#: Larger converged steps (a loose ``tol``) get the chi2 with logarithms instead.
MODEL_STEP = 1e-8
#: A Newton pass of the row kernel sums the deviance series (the chi2) only when some
#: lane may converge in it: its point's last step was below this, or the previous
#: point of its row converged in one pass.  Results do not depend on it.
PREDICT_STEP = 1e-5
#: Most Newton passes of a point in the vector loop with ``vector_start`` (then the
#: scalar path, with its line search, takes over).
VECTOR_START_PASSES = 16
#: The lockstep row kernel sums the chi2 of the points the quadratic model cannot give
#: (:func:`_chi2_at`) over all its lanes side by side once at least 1 in
#: ``EXACT_LANES_DIV`` of them need it, and lane by lane below that.  The two give the
#: same bits; the vector sum costs about a tenth per lane of the one-lane one.
EXACT_LANES_DIV = 8


def _chebyshev_t(n):
    """Integer coefficients of the Chebyshev polynomial T_n, lowest order first."""
    t0, t1 = [1], [0, 1]
    if n == 0:
        return t0
    for _ in range(n - 1):
        t2 = [0] + [2 * c for c in t1]
        for i, c in enumerate(t0):
            t2[i] -= c
        t0, t1 = t1, t2
    return t1


@functools.cache
def deviance_polynomial(umax=SERIES_UMAX, degree=SERIES_DEGREE, terms=40):
    """Coefficients of P(u) ~ sum_k u^k / ((k+1)(k+2)) on |u| <= umax, lowest first.

    The Poisson deviance per count is T - D + D ln(D/T) = T u^2 P(u) with
    u = 1 - D/T, without cancellation for small u.  The Taylor series (``terms``
    terms) is Chebyshev-economised down to ``degree`` in exact rational
    arithmetic, then rounded to doubles.

    Returns
    -------
    coef : tuple of degree + 1 floats;  bound : bound on |P - polynomial| over
    |u| <= umax (P >= 1/2 - umax/6 there), rounding of the coefficients excluded
    """
    h = Fraction(umax)
    a = [Fraction(1, (k + 1) * (k + 2)) for k in range(terms)]
    bound = Fraction(1, (terms + 1) * (terms + 2)) * h**terms / (1 - h)   # Taylor tail
    for n in range(terms - 1, degree, -1):
        # remove u^n with a multiple of the monic h^n T_n(u/h) / 2^(n-1), |.| <= h^n / 2^(n-1)
        scale = a[n] * h**n / 2 ** (n - 1)
        bound += abs(scale)
        for k, t in enumerate(_chebyshev_t(n)):
            if t:
                a[k] -= scale * t / h**k
    return tuple(float(c) for c in a[: degree + 1]), float(bound)


def _log_constants(terms=10):
    """The constants of :func:`_log1p`: ln 2 split into a part with 32 trailing zero bits
    (k ln2_hi is exact for every binary exponent k) and the rest (from 60-digit decimal
    arithmetic), the bits of sqrt(1/2) (the lower end of the reduced argument) and the
    coefficients 2 / (2 j + 1), j = 1 .. ``terms``, of 2 atanh(s) = 2 s + s R(s^2)."""
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        ln2 = decimal.Decimal(2).ln()
    hi = struct.unpack("<d", struct.pack("<q", struct.unpack("<q", struct.pack("<d", float(ln2)))[0]
                                         & ~((1 << 32) - 1)))[0]
    lo = float(ln2 - decimal.Decimal(hi))
    sqrt_half = struct.unpack("<q", struct.pack("<d", math.sqrt(0.5)))[0]
    return hi, lo, sqrt_half, tuple(2.0 / (2 * j + 1) for j in range(1, terms + 1))


_LN2_HI, _LN2_LO, _SQRT_HALF_BITS, _LOG_R = _log_constants()


@helper
def _log1p(x):
    """log(1 + x) from IEEE operations alone: no C library, so the same bits on every
    machine, and it vectorises.  Within 0.8 units in the last place of the exact value
    (the C library's ``log1p``: 0.6; tests/stats/test_fast_kernels.py); -inf at -1, NaN
    below -1 and for NaN, +0 at -0.

    u = 1 + x rounded, u = 2^k z with sqrt(1/2) <= z < sqrt(2) from u's bits, f = z - 1
    (exact), s = f / (2 + f): log z = 2 atanh(s) = f - (f^2/2 - s (f^2/2 + R(s^2))) with
    the Taylor series R of 10 terms (|s| <= 0.172: truncation below 1e-18 relative), and
    log(1 + x) = k ln 2 + log z + (x - (u - 1)) / u, the last term correcting the
    rounding of 1 + x (added with the small terms, as in fdlibm's log1p)."""
    u = 1.0 + x
    ix = float_bits(u)
    tmp = ix - _SQRT_HALF_BITS
    k = tmp >> 52
    z = bits_float(ix - (k << 52))
    f = z - 1.0
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    w = s * s
    r = w * _horner(w, _LOG_R)
    dk = float(k)
    y = dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + (dk * _LN2_LO + (x - (u - 1.0)) / u))) - f)
    y = -math.inf if u == 0.0 else y
    y = u if u == math.inf else y
    return math.nan if not u >= 0.0 else y


@helper
def _deviance(eps):
    """eps - log1p(eps) as :func:`mcscan.stats.reference.deviance` (+inf for eps <= -1),
    the logarithm from :func:`_log1p`."""
    if abs(eps) < DEVIANCE_SERIES_EPS:
        return eps * eps * (1 / 2 - eps * (1 / 3 - eps * (1 / 4 - eps * (1 / 5 - eps * (1 / 6 - eps / 7)))))
    eps = max2(eps, -1.0)
    return eps - _log1p(eps)


@helper
def _horner(x, c):
    """c[0] + x (c[1] + x (c[2] + ...)) for a tuple ``c`` of at least 2 coefficients, by
    Horner's scheme with fused multiply-adds (len(c) - 1 instructions: LLVM unrolls the
    loop, the tuple's length being fixed at compile time)."""
    n = len(c)
    p = fma(x, c[n - 1], c[n - 2])
    for k in range(n - 3, -1, -1):
        p = fma(x, p, c[k])
    return p


@helper
def _dev_series(u, c):
    """The degree-12 polynomial of :func:`deviance_polynomial` (coefficients ``c``),
    :func:`_horner`: 12 fused multiply-adds.  Its long dependency chain is no limit in a
    vector loop of its own (:func:`_add_series`), where many iterations are in flight."""
    return _horner(u, c)


@helper
def _bin_terms(dl, n, bi, di, a, b, a1, b1):
    """One bin of a vector Newton pass at the pulls (a, b), a1 = 1 + a, b1 = 1 + b:
    ``(df, u, w)`` with df = T - D = dl + a n + b B, u = df / T and w = D / T^2,
    T = a1 n + b1 B (fused multiply-adds and one division; the row and toy kernels
    share it, so their bins give the same bits)."""
    df = fma(b, bi, fma(a, n, dl))
    r = 1.0 / fma(a1, n, b1 * bi)
    u = df * r
    return df, u, di * r * r


@helper
def _add_gradient(ACC, l, n, bi, bb, u, w):
    """Add one bin's gradient and Hessian terms to rows 0-4 of lane ``l`` of ``ACC``
    (sum N u, sum B u, sum N^2 w, sum N B w, sum B^2 w; ``bb`` = B^2), fused."""
    ACC[0, l] = fma(n, u, ACC[0, l])
    ACC[1, l] = fma(bi, u, ACC[1, l])
    nw = n * w
    ACC[2, l] = fma(nw, n, ACC[2, l])
    ACC[3, l] = fma(nw, bi, ACC[3, l])
    ACC[4, l] = fma(bb, w, ACC[4, l])


@helper(inline=True)
def _add_series(ACC, U, DFU, lanes, c):
    """Add the deviance terms (T - D) u f(u) of one bin to row 5 of ``ACC``, every lane,
    from ``U`` = u and ``DFU`` = (T - D) u stored by the gradient loop of that bin.

    A loop of its own: with the division and the 12 dependent multiply-adds of the
    series in one loop body, each iteration is a chain of about 90 cycles, too long
    for the out-of-order window of Intel AVX-512 cores to overlap (llvm-mca,
    icelake-server: 3.73 cycles per lane and bin, where the divider alone needs 2.0);
    split, the two loops take 2.29 + 0.90.  Zen 4 runs both forms at the same speed.
    The same operations in the same order: the same bits."""
    for l in range(lanes):
        ACC[5, l] = fma(DFU[l], _dev_series(U[l], c), ACC[5, l])


@helper
def _pass_state(lanes):
    """The per-lane arrays of a vector Newton pass, as the row and toy kernels use them:
    u and (T - D) u of the current bin (:func:`_add_series`), the Newton step and its
    squared decrement (:func:`_newton_step`), and the last step of the point (0:
    convergence expected in the next pass)."""
    return (np.empty(lanes), np.empty(lanes), np.empty(lanes), np.empty(lanes), np.empty(lanes),
            np.empty(lanes))


@helper(inline=True)
def _lanes_to_pass(ACT, STEP, lanes, last):
    """``(nact, ser)`` for the next vector Newton pass of the row and toy kernels: how many
    lanes take it (``ACT`` 1, or 3: converged in a pass without the series), and whether
    it sums the deviance series: on the ``last`` pass, or when some lane may converge in
    it (``ACT`` 3, or its last step ``STEP`` below :data:`PREDICT_STEP`)."""
    nact = np.int64(0)     # not a literal 0: see _chi2_rows
    nser = np.int64(0)
    for l in range(lanes):
        # branch-free, so that LLVM vectorises it: counts of the lanes that take the pass
        # and of those that may converge in it (with branches, 1.7% of the kernel's time
        # in a 5D scan on Zen 3; now 0.4%, and no more to compile)
        act = ACT[l]
        live = (act == 1) | (act == 3)
        nact += live
        nser += (act == 3) | (live & (STEP[l] < PREDICT_STEP))
    return nact, last or nser > 0


@helper
def _extrapolate(h, x0, x1, x2, x3):
    """The warm start of a pull from its values at the previous ``h`` points, newest
    first: the polynomial through the last min(h, 4) of them, at the next grid point
    (a row's points are equally spaced); 0 without history.  Compiled once for the
    row and toy kernels (LLVM inlines it): the same operations in each."""
    # every polynomial, then a select of one (no branch: the lane loops vectorise); the
    # others may read history that was never written, and are dropped
    p4 = 4.0 * x0 - 6.0 * x1 + 4.0 * x2 - x3
    p3 = 3.0 * x0 - 3.0 * x1 + x2
    p2 = 2.0 * x0 - x1
    r = x0 if h == 1 else 0.0
    r = p2 if h == 2 else r
    r = p3 if h == 3 else r
    return p4 if h >= 4 else r


@helper
def _newton_step(s0, s1, s2, s3, s4, pa, pb, isa2, isb2):
    """``(da, db, lam2)``: the Newton step of the pulls from the bin sums s0 = sum N u,
    s1 = sum B u, s2 = sum N^2 w, s3 = sum N B w, s4 = sum B^2 w and the offsets pa, pb
    of the pulls from the centres of their penalties; lam2 = -g . step >= 0 is the
    squared Newton decrement."""
    ga = 2.0 * s0 + 2.0 * pa * isa2
    gb = 2.0 * s1 + 2.0 * pb * isb2
    haa = 2.0 * s2 + 2.0 * isa2
    hab = 2.0 * s3
    hbb = 2.0 * s4 + 2.0 * isb2
    det = haa * hbb - hab * hab
    da = -(hbb * ga - hab * gb) / det
    db = -(haa * gb - hab * ga) / det
    return da, db, max2(-(ga * da + gb * db), 0.0)


@helper
def _penalised(x, a, b, a0, b0, isa2, isb2):
    """chi2 = 2 x + (a - a0)^2 / sa^2 + (b - b0)^2 / sb^2 (``isa2`` = 1 / sa^2, ``isb2`` =
    1 / sb^2) from ``x``, half the sum over the bins, and the pulls' penalties centred on
    (a0, b0) (0 but for toys: a - 0.0 is a, so the same bits as a * a).  The one place
    the row, toy and exact-chi2 code of every kernel forms it, so all give the same bits."""
    return 2.0 * x + (a - a0) * (a - a0) * isa2 + (b - b0) * (b - b0) * isb2


@helper
def _chi2_at(N, dl, B, D, a, b, a0, b0, isa2, isb2, umax, dev_coef):
    """chi2 at the pulls (a, b), penalties centred on (a0, b0) (0 but for toys), summed
    bin by bin: the deviance (T - D) u f(u) from the series of the vector passes
    (:func:`_dev_series`, coefficients ``dev_coef``) where |u| = |T - D| / T <= umax,
    and D (eps - log1p(eps)) elsewhere (also where T <= 0: +inf).

    A point whose chi2 lies beyond the series (some bin with |u| > umax) so pays a
    logarithm only for those bins: over the default ranges of 2D scans 22% to 99.7%
    of the points are such, with 1.4 to 9.8 of 40 bins beyond.  The series is the
    more accurate of the two where it applies (truncation below 6e-17 relative;
    eps - log1p(eps) loses digits to cancellation as eps goes to 0).  ``umax`` < 0
    (:func:`_profile`): logarithms in every bin."""
    chi = 0.0
    for i in range(len(N)):
        if D[i] > 0.0:
            df = dl[i] + a * N[i] + b * B[i]
            u = df / ((1.0 + a) * N[i] + (1.0 + b) * B[i])
            if abs(u) <= umax:
                chi = fma(df * u, _dev_series(u, dev_coef), chi)
            else:
                chi += D[i] * _deviance(df / D[i])
        else:
            chi += (1.0 + a) * N[i] + (1.0 + b) * B[i]
    return _penalised(chi, a, b, a0, b0, isa2, isb2)


@helper
def _lanes_chi2(NN, DL, SS, RR, DD, B, A, Bp, NEED, lanes, umax, dev_coef, U, DF, XC):
    """``XC[l]`` = the sum over the bins of :func:`_chi2_at` (before its factor 2 and the
    penalties) at the pulls ``A[l]``, ``Bp[l]`` for the counts ``NN[:, l]``, the terms
    dl_i = (DL[i, l] - SS[i]) + RR[i] and the data ``DD[:, l]`` of every lane (the row
    kernel passes its counts as ``DL``, S and (S + B) - D: the dl it forms in its passes;
    the toy kernel its dl and zeros, which change no bit of a nonzero dl and at most the
    sign of a zero df, which no result keeps), the lanes side by side: each lane's bins in
    the order and with the operations of :func:`_chi2_at`, so the same bits.  The
    polynomial and the logarithms (:func:`_log1p`) run in vector loops over all lanes,
    each kept only where it applies (a logarithm in the lanes with ``NEED`` and a bin
    beyond the series); the logarithms only in bins where some lane needs one.  ``U``
    and ``DF`` are work arrays.  The row and toy kernels share it."""
    wide_vectors()
    for l in range(lanes):
        XC[l] = 0.0
    for i in range(len(NN)):
        bi = B[i]
        si = SS[i]
        ri = RR[i]
        nlog = np.int64(0)     # not a literal 0: see _chi2_rows
        for l in range(lanes):
            n = NN[i, l]
            a = A[l]
            b = Bp[l]
            df = ((DL[i, l] - si) + ri) + a * n + b * bi
            t = (1.0 + a) * n + (1.0 + b) * bi
            u = df / t
            U[l] = u
            DF[l] = df
            sr = fma(df * u, _dev_series(u, dev_coef), XC[l])
            empty = XC[l] + t                       # D = 0: the term T
            XC[l] = (sr if abs(u) <= umax else XC[l]) if DD[i, l] > 0.0 else empty
            nlog += (NEED[l] != 0) & (DD[i, l] > 0.0) & (not abs(u) <= umax)
        if nlog == 0:
            continue                                # no lane needs a logarithm in this bin
        for l in range(lanes):
            # _deviance where |eps| > 0.13 >= DEVIANCE_SERIES_EPS (here |u| > umax)
            d = DD[i, l]
            e = max2(DF[l] / d, -1.0)
            lg = XC[l] + d * (e - _log1p(e))
            XC[l] = lg if (NEED[l] != 0) & (d > 0.0) & (not abs(U[l]) <= umax) else XC[l]


@helper(inline=True)
def _lanes_needing_chi2(ACT, EXACT, NEED, lanes):
    """``NEED[l]`` = 1 for the lanes whose chi2 is taken bin by bin (not on the scalar
    path, and unconverged or ``EXACT``); True when at least one in
    :data:`EXACT_LANES_DIV` of the lanes do, so that :func:`_lanes_chi2` sums it."""
    nneed = np.int64(0)    # not a literal 0: see _chi2_rows
    for l in range(lanes):
        NEED[l] = (ACT[l] != 2) & ((ACT[l] != 0) | (EXACT[l] != 0))
        nneed += NEED[l]
    return nneed * EXACT_LANES_DIV >= lanes


#: Series coefficients the scan kernels hand to :func:`_profile` with ``umax`` = -1 (unused).
_NO_SERIES = (0.0,) * (SERIES_DEGREE + 1)


@helper
def _profile(N, dl, B, D, a, b, a0, b0, it0, isa2, isb2, tol, max_iter, armijo, umax, dev_coef):
    """Safeguarded Newton iteration of the pulls from (a, b), penalties centred on
    (a0, b0) (0 but for toys), ``it0`` iterations already spent.  Returns chi2, a, b,
    iterations (-max_iter if not converged).  Its chi2 (line search and result) is
    :func:`_chi2_at` with ``umax`` and ``dev_coef``: the scan kernels pass -1 and
    :data:`_NO_SERIES` (a logarithm in every bin, as in earlier versions, so the points
    it finishes keep their bits), the toy kernels the series."""
    nb_ = len(N)
    status = -max_iter
    for i in range(nb_):
        if D[i] > 0.0 and N[i] <= 0.0 and B[i] <= 0.0:
            # T_i = 0 < D_i whatever the pulls: chi2 is infinite, there is nothing to profile
            return math.inf, a, b, status
    for i in range(nb_):
        if D[i] > 0.0 and not (1.0 + a) * N[i] + (1.0 + b) * B[i] > 0.0:
            # a start with T_i <= 0 under data (a warm start carried over from a neighbour
            # whose pulls make 1 + a < 0): start from (0, 0), where every T_i = N_i + B_i > 0
            a = 0.0
            b = 0.0
            break
    for it in range(it0, max_iter):
        ga = 0.0
        gb = 0.0
        haa = 0.0
        hbb = 0.0
        hab = 0.0
        for i in range(nb_):
            T = (1.0 + a) * N[i] + (1.0 + b) * B[i]
            if D[i] > 0.0:
                u = (dl[i] + a * N[i] + b * B[i]) / T
                w = 2.0 * (D[i] / T) / T
            else:
                # empty bin: u = 1 - D/T = 1 and w = 0, also where T = 0
                u = 1.0
                w = 0.0
            ga += N[i] * u
            gb += B[i] * u
            haa += N[i] * N[i] * w
            hab += N[i] * B[i] * w
            hbb += B[i] * B[i] * w
        ga = 2.0 * ga + 2.0 * (a - a0) * isa2
        gb = 2.0 * gb + 2.0 * (b - b0) * isb2
        haa += 2.0 * isa2
        hbb += 2.0 * isb2
        det = haa * hbb - hab * hab
        da = -(hbb * ga - hab * gb) / det
        db = -(haa * gb - hab * ga) / det
        lam2 = max2(-(ga * da + gb * db), 0.0)
        t = 1.0
        for i in range(nb_):
            dT = da * N[i] + db * B[i]
            if dT < 0.0:
                lim = -STEP_TO_ZERO * ((1.0 + a) * N[i] + (1.0 + b) * B[i]) / dT
                t = min2(t, lim)
        if lam2 > DECREMENT2_MAX:
            f0 = _chi2_at(N, dl, B, D, a, b, a0, b0, isa2, isb2, umax, dev_coef)
            for _ in range(MAX_BACKTRACK):
                f1 = _chi2_at(N, dl, B, D, a + t * da, b + t * db, a0, b0, isa2, isb2, umax,
                              dev_coef)
                if f1 <= f0 - armijo * t * lam2:
                    break
                t *= BACKTRACK
        sa = t * da
        sb = t * db
        a += sa
        b += sb
        if max2(abs(sa), abs(sb)) < tol:
            status = it + 1
            break
    return _chi2_at(N, dl, B, D, a, b, a0, b0, isa2, isb2, umax, dev_coef), a, b, status


def _chi2_points(S, L, Q, B, D, theta, isa2, isb2, tol, max_iter, armijo,
                 out_chi2, out_a, out_b, out_it, b0, b1):
    """Blocks b0 .. b1 - 1 of :data:`_CHUNK` points, each profiled from (0, 0)."""
    npts = len(theta)
    nb_ = len(S)
    npar = theta.shape[1]
    N = np.empty(nb_)
    dl = np.empty(nb_)
    zero = np.int64(0)      # not a literal: the call below shares the build of _profile
    for c in range(b0, b1):
        for p in range(c * _CHUNK, min2(npts, (c + 1) * _CHUNK)):
            # recombination: N = S + sum_k theta_k (L_k + theta_k Q_k), clipped at 0
            for i in range(nb_):
                x = 0.0
                for k in range(npar):
                    t = theta[p, k]
                    x += t * L[k, i] + t * t * Q[k, i]
                n = S[i] + x
                n = max2(n, 0.0)
                N[i] = n
                # T - D = dl + a N + b B with dl = (N - S) + (S + B - D); the last
                # term is exactly 0 for Asimov data D = S + B
                dl[i] = (n - S[i]) + ((S[i] + B[i]) - D[i])
            chi, a, b, status = _profile(N, dl, B, D, 0.0, 0.0, 0.0, 0.0, zero, isa2, isb2, tol, max_iter,
                                         armijo, -1.0, _NO_SERIES)
            out_chi2[p] = chi
            out_a[p] = a
            out_b[p] = b
            out_it[p] = status


def _chi2_rows(S, B, D, E0, e0r, cx1, cx2, cy1, cy2, cxy, xs, ys, y0, cnt, o0, lanes,
               isa2, isb2, tol, max_iter, armijo, umax, dev_coef, max_model_step, accumulate,
               vector_start, out_chi2, out_a, out_b, out_ok, out_stats, b0, b1):
    """Profiled chi2 along rows.  Row r has the charge x = xs[r] and the points
    y = ys[y0[r] + c], c < cnt[r], written at flat index o0[r] + c, with counts

        N_i = max(S_i + (E0[e]_i + (x cx1[j]_i + x^2 cx2_i)) + (y (cy1[j]_i + x cxy_i) + y^2 cy2_i), 0)

    with e = e0r[r].  ``cxy`` is the cross term of two parameters acting on one flavour
    (zero for two charges, where it changes no bit: cy1 + x * 0 = cy1).

    ``E0`` (m, nbins) holds the excess of the fixed charges of m base points and
    ``e0r[r]`` names row r's: rows of several planes of an N-D grid run in one call.
    ``cx1`` and ``cy1`` are (1, nbins), shared by every row (j = 0: charges, whose linear
    coefficients do not depend on the other charges), or (m, nbins) with those of each
    base point (j = e: family parameters, whose cross terms with the fixed parameters
    change them from plane to plane).

    Blocks b0 .. b1 - 1 of ``lanes`` consecutive rows run, each in lockstep, one
    row per lane; the pulls of a point start from an extrapolation of the converged
    pulls of the previous points of its row.  ``vector_start``: a point whose start
    is too far for a full Newton step (the first points of a row) takes damped
    steps in the vector loop instead of going to the scalar path at once.
    ``accumulate``: add chi2 to out_chi2 and AND the convergence flag into out_ok
    instead of overwriting them.  out_stats[block] receives: Newton iterations,
    points sent to the scalar path, chi2 recomputed with logarithms, unconverged
    points.
    """
    wide_vectors()
    nb_ = len(S)
    nrows = len(xs)
    per_base = 1 if len(cx1) > 1 else 0   # cx1, cy1 of each base point, or one for all
    EX = np.empty((nb_, lanes))       # row part of the excess
    CY = np.empty((nb_, lanes))       # y-linear coefficient of each row: cy1 + x cxy
    NN = np.empty((nb_, lanes))       # counts N_i of the current point of every lane
    # dl_i = (N_i - S_i) + R_i, R_i = (S_i + B_i) - D_i (0 for Asimov data), formed from NN
    # wherever it is used: two additions per bin cost less than storing it and loading it
    R = np.empty(nb_)
    for i in range(nb_):
        R[i] = (S[i] + B[i]) - D[i]
    ACC = np.empty((7, lanes))        # per-lane sums of one pass over the bins
    HA = np.empty((4, lanes))         # converged pulls of the previous points, newest first
    HB = np.empty((4, lanes))
    tN = np.empty(nb_)
    tD = np.empty(nb_)
    Y = np.empty(lanes)
    Y2 = np.empty(lanes)
    A = np.empty(lanes)
    Bp = np.empty(lanes)
    A1 = np.empty(lanes)              # 1 + a
    B1 = np.empty(lanes)              # 1 + b
    CHI = np.empty(lanes)
    U, DFU, DA, DB, LAM2, STEP = _pass_state(lanes)
    NH = np.empty(lanes, np.int64)
    LAST = np.empty(lanes, np.int64)  # Newton passes of the previous point of the row
    ACT = np.empty(lanes, np.int64)   # 1 active, 0 done, 2 scalar path, 3 converged, redo with chi2
    IT = np.empty(lanes, np.int64)
    EXACT = np.empty(lanes, np.int64)
    NEED = np.empty(lanes, np.int64)  # 1: chi2 bin by bin (_chi2_at)
    XC = np.empty(lanes)              # its sum over the bins
    DF = np.empty(lanes)              # T - D of the current bin
    DD = np.empty((nb_, lanes))       # D of every lane (the same data in all)
    for i in range(nb_):
        for l in range(lanes):
            DD[i, l] = D[i]
    ROW = np.empty(lanes, np.int64)
    CNT = np.empty(lanes, np.int64)
    P0 = np.empty(lanes, np.int64)    # flat index of the first point of each lane's row
    YF = np.empty(lanes, np.int64)    # index in ys of the first point of each lane's row
    YL = np.empty(lanes, np.int64)    # its last point's column (the padding lanes repeat it)
    for blk in range(b0, b1):
        # counters start as np.int64(0), not a literal 0: numba types a literal first and
        # refines it to int64 a round later, and each round of its type inference re-types
        # every statement of the kernel (4 rounds instead of 2)
        st_it = np.int64(0)
        st_slow = np.int64(0)
        st_exact = np.int64(0)
        st_fail = np.int64(0)
        ncols = np.int64(0)
        for l in range(lanes):
            # lanes past the last row repeat it and store nothing
            ROW[l] = min2(blk * lanes + l, nrows - 1)
            CNT[l] = cnt[ROW[l]] if blk * lanes + l < nrows else 0
            P0[l] = o0[ROW[l]]
            YF[l] = y0[ROW[l]]
            YL[l] = cnt[ROW[l]] - 1
            ncols = max2(ncols, CNT[l])
            NH[l] = 0
            LAST[l] = 0
        # the row part of each lane's excess, lane by lane (bins inner): a lane's x, x^2
        # and base point read once, its indices unsigned (>= 0: no wraparound).  With the
        # lanes inner, this loop took 3.6% of the kernel's time in a 5D scan on Zen 3
        # (rows of 21 points: once every 21 columns); now 1.3%
        for l in range(lanes):
            r = np.uint64(ROW[l])
            x = xs[r]
            x2 = x * x
            e = np.uint64(e0r[r])
            j = e * np.uint64(per_base)
            for i in range(nb_):
                EX[i, l] = E0[e, i] + (x * cx1[j, i] + x2 * cx2[i])
                CY[i, l] = cy1[j, i] + x * cxy[i]
        # short rows (N-D scans) lie side by side in memory: the CPU's own prefetcher follows
        prefetch = ncols >= PREFETCH_MIN_COLUMNS
        for c in range(ncols):
            if prefetch and c % PREFETCH_EVERY == 0:
                # the output lines of a later column of every lane, owned for writing by
                # the time its points are stored (a hint: no value changes)
                for l in range(lanes):
                    q = P0[l] + min2(c + PREFETCH_AHEAD, YL[l])
                    prefetch_write(out_chi2, q)
                    prefetch_write(out_a, q)
                    prefetch_write(out_b, q)
                    prefetch_write(out_ok, q)
            for l in range(lanes):
                y = ys[np.uint64(YF[l] + min2(c, YL[l]))]    # >= 0: no wraparound
                Y[l] = y
                Y2[l] = y * y
            # the counts of this column: fixed during the Newton passes
            for i in range(nb_):
                s = S[i]
                c4 = cy2[i]
                for l in range(lanes):
                    NN[i, l] = max2(s + (EX[i, l] + (Y[l] * CY[i, l] + Y2[l] * c4)), 0.0)
            # warm start: extrapolate the pulls of the previous points of the row
            # (branch-free, vectorised, as in the toy lane kernel)
            for l in range(lanes):
                h = NH[l]
                ha0 = HA[0, l]
                hb0 = HB[0, l]
                a = _extrapolate(h, ha0, HA[1, l], HA[2, l], HA[3, l])
                b = _extrapolate(h, hb0, HB[1, l], HB[2, l], HB[3, l])
                inside = (1.0 + a > 0.0) & (1.0 + b > 0.0)
                IT[l] = 0
                EXACT[l] = 0
                ACT[l] = 1 if inside else 2
                # a point whose predecessor converged in one pass is expected to as well
                STEP[l] = 0.0 if LAST[l] == 1 else math.inf
                # some T_i could be <= 0: the scalar path, from the previous point if any
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
                for l in range(lanes):
                    A1[l] = 1.0 + A[l]
                    B1[l] = 1.0 + Bp[l]
                # one pass over the bins: gradient, Hessian and chi2 at the current pulls;
                # with 1 + a > 0 and 1 + b > 0 every T_i > 0 (N_i >= 0, B_i > 0)
                for i in range(nb_):
                    bi = B[i]
                    di = D[i]
                    si = S[i]
                    ri = R[i]
                    bb = bi * bi
                    if not di > 0.0:
                        # empty bin (D = 0): u = 1, w = 0, chi2 term T
                        for l in range(lanes):
                            n = NN[i, l]
                            ACC[0, l] += n
                            ACC[1, l] += bi
                            ACC[5, l] += A1[l] * n + B1[l] * bi
                        continue
                    if not ser:
                        # no lane can finish in this pass: the step needs only the gradient
                        # and the Hessian (the same numbers as below)
                        for l in range(lanes):
                            n = NN[i, l]
                            df, u, w = _bin_terms((n - si) + ri, n, bi, di, A[l], Bp[l], A1[l], B1[l])
                            _add_gradient(ACC, l, n, bi, bb, u, w)
                        continue
                    for l in range(lanes):
                        n = NN[i, l]
                        df, u, w = _bin_terms((n - si) + ri, n, bi, di, A[l], Bp[l], A1[l], B1[l])
                        _add_gradient(ACC, l, n, bi, bb, u, w)
                        ACC[6, l] = max2(fresh(ACC[6, l]), abs(u))    # no masked store: see fresh
                        U[l] = u
                        DFU[l] = df * u
                    _add_series(ACC, U, DFU, lanes, dev_coef)
                # the Newton step of every lane, branch-free (vectorised), then per lane:
                # take it, or hand the point to the scalar path
                for l in range(lanes):
                    DA[l], DB[l], LAM2[l] = _newton_step(ACC[0, l], ACC[1, l], ACC[2, l], ACC[3, l],
                                                         ACC[4, l], A[l], Bp[l], isa2, isb2)
                for l in range(lanes):
                    act = ACT[l]
                    if act != 1 and act != 3:
                        continue
                    a = A[l]
                    b = Bp[l]
                    da = DA[l]
                    db = DB[l]
                    lam2 = LAM2[l]
                    # a full step keeps every T > 0.1 T_old if |da| <= 0.9 (1 + a) and
                    # |db| <= 0.9 (1 + b); otherwise (or for a line search) go scalar
                    if not (lam2 <= DECREMENT2_MAX and abs(da) <= STEP_TO_ZERO * (1.0 + a)
                            and abs(db) <= STEP_TO_ZERO * (1.0 + b)):
                        if (vector_start and it < VECTOR_START_PASSES and math.isfinite(lam2)
                                and math.isfinite(da) and math.isfinite(db)):
                            # the Newton step, shortened so that every T_i > 0.1 T_old as
                            # for a full step (no line search: VECTOR_START_PASSES bound it)
                            t = 1.0
                            if abs(da) > STEP_TO_ZERO * (1.0 + a):
                                t = STEP_TO_ZERO * (1.0 + a) / abs(da)
                            if abs(db) > STEP_TO_ZERO * (1.0 + b):
                                t = min2(t, STEP_TO_ZERO * (1.0 + b) / abs(db))
                            A[l] = a + t * da
                            Bp[l] = b + t * db
                            STEP[l] = math.inf
                            continue
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
                        # chi2 after the step from the quadratic model: error O(step^3)
                        CHI[l] = _penalised(ACC[5, l], a, b, 0.0, 0.0, isa2, isb2) - 0.5 * lam2
                        EXACT[l] = not (ACC[6, l] <= umax and step <= max_model_step)
                        IT[l] = (IT[l] if act == 3 else it) + 1
                        ACT[l] = 0
            # the chi2 of lanes unconverged in the vector loop or with some |u| beyond the
            # series, bin by bin: all lanes side by side when enough need it, the
            # operations of _chi2_at in its order for each lane (NN holds its N)
            vec_exact = _lanes_needing_chi2(ACT, EXACT, NEED, lanes)
            if vec_exact:
                _lanes_chi2(NN, NN, S, R, DD, B, A, Bp, NEED, lanes, umax, dev_coef, U, DF, XC)
            for l in range(lanes):
                if ACT[l] != 0 or EXACT[l] != 0:
                    if ACT[l] == 2 or not vec_exact:
                        for i in range(nb_):
                            n = NN[i, l]
                            tN[i] = n
                            tD[i] = (n - S[i]) + R[i]
                    if ACT[l] == 2:
                        CHI[l], A[l], Bp[l], IT[l] = _profile(tN, tD, B, D, A[l], Bp[l], 0.0, 0.0, IT[l],
                                                             isa2, isb2, tol, max_iter, armijo, -1.0,
                                                             _NO_SERIES)
                    else:
                        if vec_exact:
                            CHI[l] = _penalised(XC[l], A[l], Bp[l], 0.0, 0.0, isa2, isb2)
                        else:
                            CHI[l] = _chi2_at(tN, tD, B, D, A[l], Bp[l], 0.0, 0.0, isa2, isb2, umax,
                                              dev_coef)
                        if ACT[l] == 1:
                            IT[l] = -max_iter
                    if c < CNT[l]:
                        st_slow += ACT[l] == 2
                        st_exact += ACT[l] != 2
            # history of converged pulls (vectorised): shifted in every lane, read only
            # up to NH, which a failed point sets to 0
            for l in range(lanes):
                HA[3, l] = HA[2, l]
                HB[3, l] = HB[2, l]
                HA[2, l] = HA[1, l]
                HB[2, l] = HB[1, l]
                HA[1, l] = HA[0, l]
                HB[1, l] = HB[0, l]
                HA[0, l] = A[l]
                HB[0, l] = Bp[l]
                ok = IT[l] > 0
                NH[l] = min2(NH[l] + 1, 4) if ok else 0
                LAST[l] = IT[l] if ok else 0
            # the counters of the lanes that store a point (vectorised), then the stores
            for l in range(lanes):
                keep = c < CNT[l]
                st_it += abs(IT[l]) * keep
                st_fail += keep & (IT[l] <= 0)
            for l in range(lanes):
                if c < CNT[l]:
                    p = np.uint64(P0[l] + c)    # >= 0: an unsigned index skips the wraparound
                    # the quadratic-model chi2 may round below zero near the minimum
                    chi = max2(CHI[l], 0.0)
                    if accumulate:
                        out_chi2[p] += chi
                        out_ok[p] &= IT[l] > 0
                    else:
                        out_chi2[p] = chi
                        out_ok[p] = IT[l] > 0
                    out_a[p] = A[l]
                    out_b[p] = Bp[l]
        out_stats[blk, 0] = st_it
        out_stats[blk, 1] = st_slow
        out_stats[blk, 2] = st_exact
        out_stats[blk, 3] = st_fail


def _chi2_row(S, B, D, E0, e0r, cx1, cx2, cy1, cy2, cxy, xs, ys, y0, cnt, o0,
              isa2, isb2, tol, max_iter, armijo, umax, dev_coef, max_model_step, accumulate,
              out_chi2, out_a, out_b, out_ok, out_stats, b0, b1):
    """:func:`_chi2_rows` one row at a time (rows b0 .. b1 - 1, no ``vector_start``): the
    same operations in the same order on each row, so the same bits, from a much smaller
    function (it compiles in about half the time; 1D scans and calls with few rows use it).
    Every pass sums the deviance series (with one lane nothing is saved by skipping it)."""
    nb_ = len(S)
    EX = np.empty(nb_)
    CY = np.empty(nb_)
    NN = np.empty(nb_)
    DL = np.empty(nb_)
    for r in range(b0, b1):
        st_it = np.int64(0)    # not a literal 0: see _chi2_rows
        st_slow = np.int64(0)
        st_exact = np.int64(0)
        st_fail = np.int64(0)
        x = xs[r]
        e = e0r[r]
        j = e if len(cx1) > 1 else 0
        for i in range(nb_):
            EX[i] = E0[e, i] + (x * cx1[j, i] + x * x * cx2[i])
            CY[i] = cy1[j, i] + x * cxy[i]
        # converged pulls of the previous points, newest first, and how many there are
        ha0 = ha1 = ha2 = ha3 = 0.0
        hb0 = hb1 = hb2 = hb3 = 0.0
        nh = np.int64(0)      # not a literal 0: _extrapolate gets one build for both kernels
        for c in range(cnt[r]):
            y = ys[y0[r] + c]
            y2 = y * y
            for i in range(nb_):
                s = S[i]
                n = max2(s + (EX[i] + (y * CY[i] + y2 * cy2[i])), 0.0)
                NN[i] = n
                DL[i] = (n - s) + ((s + B[i]) - D[i])
            a = _extrapolate(nh, ha0, ha1, ha2, ha3)
            b = _extrapolate(nh, hb0, hb1, hb2, hb3)
            # act: 1 Newton passes, 0 converged, 2 scalar path, 3 not converged
            it_done = -max_iter
            exact = False
            chi = 0.0
            act = 1
            if not (1.0 + a > 0.0 and 1.0 + b > 0.0):
                act = 2
                it_done = 0
                if nh > 0:
                    a = ha0
                    b = hb0
            if act == 1:
                for it in range(max_iter):
                    a1 = 1.0 + a
                    b1_ = 1.0 + b
                    g0 = 0.0
                    g1 = 0.0
                    h2 = 0.0
                    h3 = 0.0
                    h4 = 0.0
                    dev = 0.0
                    umx = 0.0
                    for i in range(nb_):
                        bi = B[i]
                        di = D[i]
                        n = NN[i]
                        if not di > 0.0:
                            g0 += n
                            g1 += bi
                            dev += a1 * n + b1_ * bi
                            continue
                        df, u, w = _bin_terms(DL[i], n, bi, di, a, b, a1, b1_)
                        g0 = fma(n, u, g0)
                        g1 = fma(bi, u, g1)
                        nw = n * w
                        h2 = fma(nw, n, h2)
                        h3 = fma(nw, bi, h3)
                        h4 = fma(bi * bi, w, h4)
                        umx = max2(umx, abs(u))
                        dev = fma(df * u, _dev_series(u, dev_coef), dev)
                    da, db, lam2 = _newton_step(g0, g1, h2, h3, h4, a, b, isa2, isb2)
                    if not (lam2 <= DECREMENT2_MAX and abs(da) <= STEP_TO_ZERO * (1.0 + a)
                            and abs(db) <= STEP_TO_ZERO * (1.0 + b)):
                        act = 2
                        it_done = it
                        break
                    step = max2(abs(da), abs(db))
                    a_old = a
                    b_old = b
                    a = a + da
                    b = b + db
                    if step < tol:
                        chi = _penalised(dev, a_old, b_old, 0.0, 0.0, isa2, isb2) - 0.5 * lam2
                        exact = not (umx <= umax and step <= max_model_step)
                        it_done = it + 1
                        act = 0
                        break
                if act == 1:
                    act = 3                   # not converged in max_iter passes
            if act != 0 or exact:
                # NN and DL hold the point's counts (the helpers only read them)
                if act == 2:
                    chi, a, b, it_done = _profile(NN, DL, B, D, a, b, 0.0, 0.0, it_done, isa2, isb2,
                                                  tol, max_iter, armijo, -1.0, _NO_SERIES)
                else:
                    chi = _chi2_at(NN, DL, B, D, a, b, 0.0, 0.0, isa2, isb2, umax, dev_coef)
                st_slow += act == 2
                st_exact += act != 2
            if it_done > 0:
                ha3 = ha2
                ha2 = ha1
                ha1 = ha0
                ha0 = a
                hb3 = hb2
                hb2 = hb1
                hb1 = hb0
                hb0 = b
                nh = min2(nh + 1, 4)
            else:
                nh = 0
            p = o0[r] + c
            chi = max2(chi, 0.0)
            if accumulate:
                out_chi2[p] += chi
                out_ok[p] &= it_done > 0
            else:
                out_chi2[p] = chi
                out_ok[p] = it_done > 0
            out_a[p] = a
            out_b[p] = b
            st_it += abs(it_done)
            st_fail += it_done <= 0
        out_stats[r, 0] = st_it
        out_stats[r, 1] = st_slow
        out_stats[r, 2] = st_exact
        out_stats[r, 3] = st_fail


_points = kernel(_chi2_points)
_rows = kernel(_chi2_rows)
_row = kernel(_chi2_row)


def chi2_points(coef, theta, *, signal_pull=SIGNAL_PULL, background_pull=BACKGROUND_PULL, tol=TOL,
                max_iter=MAX_ITER, parallel=True):
    """Profiled chi2 at a batch of charge points (numba).

    Same contract as :func:`mcscan.stats.reference.chi2`: ``theta`` (npts, 6) finite
    charges in e; returns chi2, a, b (npts,) and iterations (negative where
    the profile did not converge).  Inputs are validated here, never inside
    the kernel.
    """
    from .reference import check_charges

    theta = np.ascontiguousarray(np.atleast_2d(check_charges(theta)))
    n = theta.shape[0]
    out = np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    nchunk = -(-n // _CHUNK)
    run_blocks(_points, (coef.S, coef.L, coef.Q, coef.B, coef.D, theta, 1.0 / signal_pull**2,
                         1.0 / background_pull**2, float(tol), int(max_iter), ARMIJO, *out),
               nchunk, parallel=parallel, grain=_grain(nchunk))
    return out


#: Points of lockstep row kernel calls that a process runs on the one-row kernel instead
#: while the lockstep kernel is not built (neither in the process nor in the cache; see
#: :func:`_run_rows`).  Compiling the lockstep kernel takes about 3.5 s (AMD EPYC, 2
#: cores), and the one-row kernel is slower by about 0.2 us a point (2.7 to 4 M points/s
#: against 6.6 to 14 M on two threads): a first 2D scan of up to about 1400^2 points (one
#: detector) waits for the one-row kernel alone (about 2 s to compile, less when it is
#: built already for a 1D scan).  Scans announce their size (:func:`plan_lockstep`), so a
#: larger first scan compiles the lockstep kernel at once; calls that announce nothing lose
#: at most about 0.4 s on the slower kernel.  Results do not depend on it.
STAND_IN_POINTS = 2_000_000

#: The lockstep row kernel's stand-in budget (:func:`_run_rows`).
_STAND_IN = StandIn(_rows, lambda: STAND_IN_POINTS)


def plan_lockstep(npoints) -> None:
    """Announce a job of ``npoints`` points of row kernel calls (grid points times
    detectors), in every process that runs a part of it.  From a job larger than
    :data:`STAND_IN_POINTS` on, the one-row kernel stands in no more in this process: the
    lockstep kernel is compiled (or loaded) at the job's first lockstep call, so a large
    first scan pays neither for the one-row kernel's compile nor for its slower start.  A
    smaller job changes nothing; calling it again for the same job changes nothing."""
    _STAND_IN.plan(npoints)


def _run_rows(args, lanes, nblk, parallel, stand_in=True, progress=None):
    """Run the row kernel on ``args`` (those of :func:`_chi2_rows`, ``nblk`` blocks of
    ``lanes`` rows).  Without ``vector_start``, :func:`_chi2_row` runs the rows one at a
    time (the same bits from a smaller function) where ``lanes`` is 1, and, with
    ``stand_in``, also where the lockstep kernel would first have to be compiled
    (:data:`STAND_IN_POINTS` points per process, :class:`mcscan.stats._jit.StandIn`).
    ``progress(r0, r1)``, if given, is told of finished rows ``r0 .. r1 - 1`` (on the
    calling thread, :func:`mcscan.stats._jit.run_blocks`)."""
    one_row = not args[25] and (lanes == 1 or (stand_in and _STAND_IN.take(int(args[13].sum()))))
    nrows = args[10].shape[0]
    if not one_row:
        told = None if progress is None else \
            (lambda b0, b1: progress(b0 * lanes, min(nrows, b1 * lanes)))
        run_blocks(_rows, args, nblk, parallel=parallel, grain=_grain(nblk), progress=told)
        return
    stats = args[-1] if lanes == 1 else np.zeros((nrows, 4), dtype=np.int64)
    run_blocks(_row, args[:15] + args[16:25] + args[26:-1] + (stats,), nrows, parallel=parallel,
               grain=_grain(nrows), progress=progress)
    if lanes != 1:
        args[-1][0] += stats.sum(0)


def _points_told(progress, cnt):
    """``progress`` (told a number of points) as :func:`_run_rows` tells it of finished
    rows ``r0 .. r1 - 1`` (``cnt`` points per row); None without it."""
    if progress is None:
        return None
    ends = np.concatenate(([0], np.cumsum(cnt)))
    return lambda r0, r1: progress(int(ends[r1] - ends[r0]))


def _grain(nblk):
    """Blocks per claim of a parallel run: about 8 claims per thread."""
    return max(1, int(nblk) // (8 * _threads()))


def row_lanes(nrows, threads=None):
    """Rows per block for ``nrows`` rows, small enough to give every thread a
    block: below 8 rows per thread 1 (one row at a time: :func:`_chi2_row`), else a
    multiple of 8 from :data:`MIN_LANES` up to :data:`LANES`.  Results do not depend
    on it."""
    threads = _threads() if threads is None else int(threads)
    per = max(1, -(-int(nrows) // max(threads, 1)))
    if per < 8:
        return 1
    return int(min(LANES, max(MIN_LANES, -(-per // 8) * 8)))


def check_rows(xs, ys, y0, cnt, o0, out, what="finite"):
    """The row layout of a row kernel call, checked: ``xs`` and ``ys`` finite (``what``
    says what they are), one ``y0``/``cnt``/``o0`` per row, every row inside ``ys``,
    ``out`` four flat arrays (chi2, a, b, ok) and rows writing to separate ranges of them.
    Returns ``xs, ys`` as contiguous float64 and ``y0, cnt, o0`` as contiguous int64."""
    xs = np.ascontiguousarray(xs, dtype=np.float64)
    ys = np.ascontiguousarray(ys, dtype=np.float64)
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
        raise ValueError(f"xs and ys must be {what}")
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
    return xs, ys, y0, cnt, o0


def check_base_rows(base_rows, nrows: int, m: int) -> np.ndarray:
    """The base point of each row of a row kernel call, checked: ``base_rows`` (nrows,)
    indices into m base points, or None (every row the one base point).  Returns a
    contiguous int64 array."""
    if base_rows is None:
        return np.zeros(nrows, dtype=np.int64)
    e0r = np.ascontiguousarray(base_rows, dtype=np.int64)
    if e0r.shape != (nrows,) or (nrows and (e0r.min() < 0 or e0r.max() >= m)):
        raise ValueError("base_rows needs one index into the base points per row")
    return e0r


def _excess_of_bases(fixed, L, Q):
    """(m, nbins) sum over the charges k of t_k L_k + t_k^2 Q_k at each of the m rows of
    ``fixed`` (m, 6), element-wise in the order of k: a base point's bits do not depend on
    the others.  A charge that is 0 at every base point is skipped (its term is +-0, which
    leaves every sum as it is, for finite L_k and Q_k).  Formed bins by base points, so
    that NumPy's inner loops run over the m points, through two scratch arrays (a 5D
    scan's chunk has some 1200 base points: 0.43 ms instead of 4.5 ms)."""
    m, nb = fixed.shape[0], L.shape[1]
    E0 = np.zeros((nb, m))
    lin, quad = np.empty((nb, m)), np.empty((nb, m))
    for k in range(fixed.shape[1]):
        t = fixed[:, k]
        if not t.any() and np.isfinite(L[k]).all() and np.isfinite(Q[k]).all():
            continue
        np.multiply(t, L[k][:, None], out=lin)
        np.multiply(t * t, Q[k][:, None], out=quad)
        np.add(lin, quad, out=lin)
        np.add(E0, lin, out=E0)
    return np.ascontiguousarray(E0.T)


def chi2_rows(coef, base, ix, iy, xs, ys, y0, cnt, o0, *, out, accumulate=False, base_rows=None,
              signal_pull=SIGNAL_PULL, background_pull=BACKGROUND_PULL, tol=TOL, max_iter=MAX_ITER,
              parallel=True, lanes=None, vector_start=False, progress=None):
    """Profiled chi2 along rows of a grid (numba); see the module docstring.

    Parameters
    ----------
    coef : :class:`mcscan.stats.reference.Coefficients`
    base : (6,) finite charges in e; entries ``ix`` and ``iy`` are replaced per point.
        Or (m, 6), m base points, with ``base_rows`` (nrows,) naming each row's: the
        rows of many planes of an N-D grid in one call (the same bits as one call per
        plane)
    ix, iy : indices (into :data:`mcscan.config.load.PARAMS`) of the row charge x and
        the column charge y; ``ix=None`` for a 1D scan
    xs : (nrows,) x of every row, e (ignored with ``ix=None``)
    ys : (ny,) y values, e
    y0, cnt, o0 : (nrows,) int: row r holds the points ys[y0[r] : y0[r] + cnt[r]]
        (cnt >= 1), written to out[.][o0[r] : o0[r] + cnt[r]]
    out : (chi2, a, b, ok) flat float, float, float, bool arrays
    accumulate : add chi2 to out[0] and AND convergence into out[3]
    vector_start : the first points of a row, whose start is too far for a full
        Newton step, take damped steps in the vector loop (the scans of four or more
        charges, whose rows are short); and the excess of the base points is summed
        element-wise.  The same numbers to the convergence tolerance, not the same bits
        as without it; still a function of each row alone.
    progress : optional callable, given the number of points of each run of finished
        rows (a progress bar's ``update``), on the calling thread only

    Returns
    -------
    stats : {"iterations", "scalar_path", "log_chi2", "unconverged"} summed over the points
    """
    from .reference import check_charges

    base = check_charges(base)
    if base.ndim == 1:
        base = base[None, :]
        base_rows = None
    elif base.ndim != 2 or base_rows is None:
        raise ValueError("a base of shape (m, 6) needs base_rows, one index per row")
    xs, ys, y0, cnt, o0 = check_rows(xs, ys, y0, cnt, o0, out, "finite charges in e")
    nrows = xs.size
    e0r = check_base_rows(base_rows, nrows, base.shape[0])
    fixed = np.array(base, dtype=np.float64)
    if ix is not None:
        fixed[:, ix] = 0.0
    fixed[:, iy] = 0.0
    if vector_start:
        E0 = _excess_of_bases(fixed, coef.L, coef.Q)
    else:
        E0 = np.empty((base.shape[0], coef.S.size))
        for m, point in enumerate(fixed):
            E0[m] = point @ coef.L + (point * point) @ coef.Q
    zero = np.zeros_like(coef.S)
    cx1, cx2 = (coef.L[ix], coef.Q[ix]) if ix is not None else (zero, zero)
    lanes = row_lanes(nrows) if lanes is None else int(lanes)
    nblk = (nrows + lanes - 1) // lanes
    stats = np.zeros((nblk, 4), dtype=np.int64)
    if nrows:
        c = np.ascontiguousarray
        args = (coef.S, coef.B, coef.D, c(E0), e0r, c(cx1[None, :]), c(cx2), c(coef.L[iy][None, :]),
                c(coef.Q[iy]), zero,
                xs, ys, y0, cnt, o0, lanes, 1.0 / signal_pull**2, 1.0 / background_pull**2,
                float(tol), int(max_iter), ARMIJO, SERIES_UMAX, deviance_polynomial()[0],
                MODEL_STEP, bool(accumulate), bool(vector_start), *out, stats)
        _run_rows(args, lanes, nblk, parallel, progress=_points_told(progress, cnt))
    s = stats.sum(0)
    return dict(iterations=int(s[0]), scalar_path=int(s[1]), log_chi2=int(s[2]),
                unconverged=int(s[3]))


#: Lanes of the lockstep row kernel's warm-up call (any number above 1 gives its one build).
LOCKSTEP_WARM_LANES = 16


def warm_up(parallel=True, processes=None) -> int:
    """Compile (or load from the cache) every kernel of this module on a tiny problem:
    the point kernel and both row kernels; ``parallel`` also runs them on threads (the
    same build).  Returns the number of processes that compiled them.

    ``processes`` 2: the lockstep row kernel, the longest compile, is built in a second
    Python process (:func:`mcscan.stats._jit.build_in_child`) while this one builds
    the others, then loaded from the cache folder they share (numba compiles one
    function at a time in a process).  The same machine code, so the same bits; where
    the child fails, this process builds it.  ``None`` (default): 2 when it saves time,
    that is, the kernels are cached on disk, numba may use two threads or more
    (:func:`mcscan.stats._jit.threads`), the lockstep kernel is neither built nor cached
    and some other kernel is not either; else 1."""
    if processes is not None and (isinstance(processes, bool) or not isinstance(processes, int)
                                  or processes < 1):
        raise ValueError(f"processes={processes!r}: expected None or an integer >= 1")
    lockstep_built = built(_rows)      # reads numba's cache index: once
    if processes is None:
        processes = 2 if (_threads() >= 2 and not lockstep_built
                          and not (built(_points) and built(_row))) else 1
    child = None
    if processes >= 2 and not lockstep_built:
        child = build_in_child("from mcscan.stats.kernels import warm_up_rows\n"
                               f"warm_up_rows(False, lanes={LOCKSTEP_WARM_LANES})")
    nb_ = 2
    S = np.ones(nb_)
    z = np.zeros((6, nb_))
    out = np.empty(1), np.empty(1), np.empty(1), np.empty(1, dtype=np.int64)
    try:
        run_blocks(_points, (S, z, z, S, 2 * S, np.zeros((1, 6)), 100.0, 1e4, TOL, MAX_ITER, ARMIJO,
                             *out), 1, parallel=parallel)
        warm_up_rows(parallel, lanes=1)
    except BaseException:
        if child is not None:
            child.stop()
        raise
    if child is not None:
        child.join()
    warm_up_rows(parallel, lanes=LOCKSTEP_WARM_LANES)
    return 1 if child is None else 2


def warm_up_rows(parallel=True, lanes=(1, LOCKSTEP_WARM_LANES)):
    """Compile (or load from the cache) the row kernels: ``lanes`` 1 is the one-row
    kernel (1D scans, calls with few rows), 16 the lockstep one (2D and N-D scans)."""
    nb_ = 2
    S = np.ones(nb_)
    o = np.empty(1), np.empty(1), np.empty(1), np.empty(1, dtype=np.bool_)
    i1 = np.zeros(1, dtype=np.int64)
    for ln in (lanes,) if np.isscalar(lanes) else lanes:
        z1 = np.zeros((1, nb_))
        args = (S, S, 2 * S, z1, i1, z1, S * 0, z1, S * 0, S * 0, np.zeros(1),
                np.zeros(1), i1, i1 + 1, i1, int(ln), 100.0, 1e4, TOL, MAX_ITER, ARMIJO, SERIES_UMAX,
                deviance_polynomial()[0], MODEL_STEP, False, False, *o,
                np.zeros((1, 4), dtype=np.int64))
        _run_rows(args, int(ln), 1, parallel, stand_in=False)
