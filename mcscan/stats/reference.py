"""NumPy reference model: predictions and the profiled chi2 (docs/physics.md section 8).

This is the plain twin of :mod:`mcscan.stats.kernels`; tests compare the two,
and both take the constants of the Newton profile from :mod:`mcscan.stats.newton`.
The per-bin coefficients (:class:`~mcscan.stats.coefficients.Coefficients`)
are defined in :mod:`mcscan.stats.coefficients`.
"""
from __future__ import annotations

import numpy as np

from ..params import PARAMS
from .coefficients import Coefficients, coefficients
from ..errors import InputError
from .newton import (ARMIJO, BACKGROUND_PULL, BACKTRACK, DECREMENT2_MAX, DEVIANCE_SERIES_EPS,
                     MAX_BACKTRACK, MAX_ITER, SIGNAL_PULL, STEP_TO_ZERO, TOL)

__all__ = ["Coefficients", "coefficients", "predict", "chi2", "profile", "deviance", "check_charges"]



def check_charges(theta) -> np.ndarray:
    """Charges as a float array (..., 6), refusing NaN or infinite values."""
    theta = np.asarray(theta, dtype=float)
    if theta.shape[-1:] != (len(PARAMS),):
        raise InputError(f"charges must have a last axis of length {len(PARAMS)} "
                         f"({', '.join(PARAMS)}), got shape {theta.shape}")
    bad = ~np.isfinite(theta)
    if bad.any():
        idx = np.argwhere(bad)[0]
        raise InputError(f"charge {PARAMS[idx[-1]]} = {theta[tuple(idx)]!r} is not finite: "
                         "expected a finite number in units of e")
    return theta


def excess(coef: Coefficients, theta) -> np.ndarray:
    """N(theta) - S per bin, (..., nbins)."""
    theta = check_charges(theta)
    return np.einsum("...k,ki->...i", theta, coef.L) + np.einsum("...k,ki->...i", theta**2, coef.Q)


def predict(coef: Coefficients, theta) -> np.ndarray:
    """Signal counts N_i(theta), (..., nbins), never negative."""
    return np.maximum(coef.S + excess(coef, theta), 0.0)


def deviance(eps):
    """eps - log1p(eps), accurate to rounding also for tiny |eps|; +inf for eps <= -1.

    With eps = (T - D) / D this is the Poisson deviance per count,
    (T - D + D ln(D / T)) / D.  For |eps| < 1e-3 a 7-term series replaces the
    cancelling difference (truncation error < 3e-16 relative).
    """
    eps = np.asarray(eps, dtype=float)
    small = np.abs(eps) < DEVIANCE_SERIES_EPS
    e = np.where(small, eps, 0.0)
    series = e * e * (1 / 2 - e * (1 / 3 - e * (1 / 4 - e * (1 / 5 - e * (1 / 6 - e / 7)))))
    big = np.where(small, 0.0, np.maximum(eps, -1.0))
    with np.errstate(divide="ignore"):
        return np.where(small, series, big - np.log1p(big))


def _chi2_at(N, dlt, B, D, a, b, a0, b0, isa2, isb2):
    """chi2 at pulls (a, b), penalties centred on (a0, b0) (scalars or (npts,)); N
    (npts, nb) counts, dlt = (N - S) + (S + B - D), D (nb,) or (npts, nb)."""
    T = (1 + a)[:, None] * N + (1 + b)[:, None] * B
    diff = dlt + a[:, None] * N + b[:, None] * B           # T - D, without cancellation
    Dpos = np.where(D > 0, D, 1.0)
    term = np.where(D > 0, D * deviance(diff / Dpos), T)
    return 2.0 * term.sum(-1) + (a - a0) * (a - a0) * isa2 + (b - b0) * (b - b0) * isb2


def chi2(coef: Coefficients, theta, *, signal_pull: float = SIGNAL_PULL,
         background_pull: float = BACKGROUND_PULL, tol: float = TOL, max_iter: int = MAX_ITER):
    """chi2 profiled over the two pulls, vectorised over points.

    The profile is a safeguarded Newton iteration on the strictly convex
    function of (a, b): while the Newton decrement lambda exceeds 1/4 the step
    is halved until it decreases chi2 by at least ARMIJO * t * lambda^2; inside
    that region (quadratic convergence) full steps are taken.  Every step is
    kept short enough that all T_i = (1+a) N_i + (1+b) B_i stay positive.
    It stops when both pull steps are below ``tol``.

    Parameters
    ----------
    theta : (npts, 6) or (6,) charges in units of e

    Returns
    -------
    chi2, a, b : arrays (npts,);  iters : (npts,) int, negative if not converged
    """
    theta = np.atleast_2d(check_charges(theta))
    dlt = excess(coef, theta)
    N = np.maximum(coef.S + dlt, 0.0)
    # T - D = dlt + a N + b B; the data term S + B - D is exactly 0 for Asimov data
    dlt = (N - coef.S) + ((coef.S + coef.B) - coef.D)
    return profile(N, dlt, coef.B, coef.D, signal_pull=signal_pull,
                   background_pull=background_pull, tol=tol, max_iter=max_iter)


@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def profile(N, dlt, B, D, a0=0.0, b0=0.0, *, signal_pull: float = SIGNAL_PULL,
            background_pull: float = BACKGROUND_PULL, tol: float = TOL, max_iter: int = MAX_ITER):
    """The profile of :func:`chi2` for given counts, penalties centred on (a0, b0).

    N : (npts, nbins) signal counts;  dlt = (N - S) + (S + B - D), (npts, nbins);
    B : (nbins,);  D : (nbins,) data, or (npts, nbins) data of each point (toys);
    a0, b0 : centres of the penalties, scalars or (npts,) (0: the measured normalisations).
    Returns chi2, a, b : (npts,);  iters : (npts,) int, negative if not converged.
    Counts whose squares overflow give NaN without NumPy's warnings, as in the numba
    kernels, and so does a bin whose data dominate the Hessian's sums (1e20 counts) until
    its determinant cancels to 0; the scans report it in one line
    (:func:`mcscan.scans.limits.check_finite_chi2`).
    """
    isa2, isb2 = 1.0 / signal_pull**2, 1.0 / background_pull**2
    n = N.shape[0]
    a0, b0 = (np.broadcast_to(np.asarray(c, dtype=float), (n,)) for c in (a0, b0))
    per_point = D.ndim == 2            # toys: data of each point (no copy of one D per point)
    a = np.zeros(n)
    b = np.zeros(n)
    iters = np.full(n, -max_iter, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    for it in range(max_iter):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        Na, dl = N[idx], dlt[idx]
        Da = D[idx] if per_point else D
        aa, bb, ca, cb = a[idx], b[idx], a0[idx], b0[idx]
        T = (1 + aa)[:, None] * Na + (1 + bb)[:, None] * B
        # 1 - D/T and 2 D/T^2; an empty bin (D = 0) has u = 1, w = 0 even where T = 0
        Tpos = np.where((Da > 0) & (T > 0), T, 1.0)
        u = np.where(Da > 0, (dl + aa[:, None] * Na + bb[:, None] * B) / Tpos, 1.0)
        w = np.where(Da > 0, 2.0 * (Da / Tpos) / Tpos, 0.0)
        ga = 2.0 * (Na * u).sum(-1) + 2.0 * (aa - ca) * isa2
        gb = 2.0 * (B * u).sum(-1) + 2.0 * (bb - cb) * isb2
        haa = (Na * Na * w).sum(-1) + 2.0 * isa2
        hab = (Na * B * w).sum(-1)
        hbb = (B * B * w).sum(-1) + 2.0 * isb2
        det = haa * hbb - hab * hab
        da = -(hbb * ga - hab * gb) / det
        db = -(haa * gb - hab * ga) / det
        lam2 = np.maximum(-(ga * da + gb * db), 0.0)
        # keep every T_i positive: at most 90% of the way to the nearest zero
        dT = da[:, None] * Na + db[:, None] * B
        lim = np.where(dT < 0, -STEP_TO_ZERO * T / dT, np.inf).min(-1)   # dT = 0: warnings off
        t = np.minimum(1.0, lim)
        # far from the minimum (Newton decrement > 1/4): backtrack until Armijo holds
        search = lam2 > DECREMENT2_MAX
        if search.any():
            js = np.flatnonzero(search)

            def chi2_search(js, a_, b_):
                """chi2 of the active points js at the pulls (a_, b_)."""
                return _chi2_at(Na[js], dl[js], B, Da[js] if per_point else D, a_, b_, ca[js], cb[js],
                                isa2, isb2)

            f0 = chi2_search(js, aa[js], bb[js])
            for _ in range(MAX_BACKTRACK):
                f1 = chi2_search(js, aa[js] + t[js] * da[js], bb[js] + t[js] * db[js])
                bad = ~(f1 <= f0 - ARMIJO * t[js] * lam2[js])
                if not bad.any():
                    break
                t[js[bad]] *= BACKTRACK
                js, f0 = js[bad], f0[bad]
        sa, sb = t * da, t * db
        a[idx] = aa + sa
        b[idx] = bb + sb
        done = np.maximum(np.abs(sa), np.abs(sb)) < tol
        iters[idx[done]] = it + 1
        active[idx[done]] = False
    out = _chi2_at(N, dlt, B, D, a, b, a0, b0, isa2, isb2)
    # data in a bin that no pull can predict (N = B = 0 < D): chi2 is infinite
    dead = ((D > 0) & (N <= 0) & (B <= 0)).any(-1)
    out[dead] = np.inf
    return out, a, b, iters
