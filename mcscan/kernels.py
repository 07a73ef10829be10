"""numba kernels: recombination and the profiled chi2 over batches of points.

No I/O, no globals, no progress bars.  The NumPy twin is
:func:`mcscan.model.chi2`; both run the same damped Newton iteration, so
they agree to rounding.  Each kernel exists in a serial and a parallel
build (see :mod:`mcscan._jit`); :func:`chi2_points` chooses.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

from ._jit import kernel
from .model import ARMIJO

__all__ = ["chi2_points", "warm_up"]

_CHUNK = 64


@nb.njit(cache=True, inline="always", error_model="numpy")
def _deviance(eps):
    if abs(eps) < 1e-3:
        return eps * eps * (1 / 2 - eps * (1 / 3 - eps * (1 / 4 - eps * (1 / 5 - eps * (1 / 6 - eps / 7)))))
    return eps - math.log1p(eps)


@nb.njit(cache=True, error_model="numpy")
def _chi2_at(N, dl, B, D, a, b, isa2, isb2):
    chi = 0.0
    for i in range(N.shape[0]):
        if D[i] > 0.0:
            chi += D[i] * _deviance((dl[i] + a * N[i] + b * B[i]) / D[i])
        else:
            chi += (1.0 + a) * N[i] + (1.0 + b) * B[i]
    return 2.0 * chi + a * a * isa2 + b * b * isb2


def _chi2_points(S, L, Q, B, D, theta, isa2, isb2, tol, max_iter, armijo,
                 out_chi2, out_a, out_b, out_it):
    npts = theta.shape[0]
    nb_ = S.shape[0]
    npar = theta.shape[1]
    nchunk = (npts + _CHUNK - 1) // _CHUNK
    for c in nb.prange(nchunk):
        N = np.empty(nb_)
        dl = np.empty(nb_)
        for p in range(c * _CHUNK, min(npts, (c + 1) * _CHUNK)):
            # recombination: N = S + sum_k theta_k (L_k + theta_k Q_k), clipped at 0
            for i in range(nb_):
                x = 0.0
                for k in range(npar):
                    t = theta[p, k]
                    x += t * L[k, i] + t * t * Q[k, i]
                n = S[i] + x
                if n < 0.0:
                    n = 0.0
                N[i] = n
                dl[i] = n - S[i]
            a = 0.0
            b = 0.0
            status = -max_iter
            for it in range(max_iter):
                ga = 0.0
                gb = 0.0
                haa = 0.0
                hbb = 0.0
                hab = 0.0
                for i in range(nb_):
                    T = (1.0 + a) * N[i] + (1.0 + b) * B[i]
                    u = (dl[i] + a * N[i] + b * B[i]) / T
                    w = 2.0 * (D[i] / T) / T
                    ga += N[i] * u
                    gb += B[i] * u
                    haa += N[i] * N[i] * w
                    hab += N[i] * B[i] * w
                    hbb += B[i] * B[i] * w
                ga = 2.0 * ga + 2.0 * a * isa2
                gb = 2.0 * gb + 2.0 * b * isb2
                haa += 2.0 * isa2
                hbb += 2.0 * isb2
                det = haa * hbb - hab * hab
                da = -(hbb * ga - hab * gb) / det
                db = -(haa * gb - hab * ga) / det
                lam2 = max(-(ga * da + gb * db), 0.0)
                t = 1.0
                for i in range(nb_):
                    dT = da * N[i] + db * B[i]
                    if dT < 0.0:
                        lim = -0.9 * ((1.0 + a) * N[i] + (1.0 + b) * B[i]) / dT
                        if lim < t:
                            t = lim
                if lam2 > 0.0625:
                    f0 = _chi2_at(N, dl, B, D, a, b, isa2, isb2)
                    for _ in range(60):
                        f1 = _chi2_at(N, dl, B, D, a + t * da, b + t * db, isa2, isb2)
                        if f1 <= f0 - armijo * t * lam2:
                            break
                        t *= 0.5
                sa = t * da
                sb = t * db
                a += sa
                b += sb
                if max(abs(sa), abs(sb)) < tol:
                    status = it + 1
                    break
            out_chi2[p] = _chi2_at(N, dl, B, D, a, b, isa2, isb2)
            out_a[p] = a
            out_b[p] = b
            out_it[p] = status


_serial, _parallel = kernel(_chi2_points)


def chi2_points(coef, theta, *, signal_pull=0.10, background_pull=0.01, tol=1e-10,
                max_iter=60, parallel=True):
    """Profiled chi2 at a batch of charge points (numba).

    Same contract as :func:`mcscan.model.chi2`: ``theta`` (npts, 6) finite
    charges in e; returns chi2, a, b (npts,) and iterations (negative where
    the profile did not converge).  Inputs are validated here, never inside
    the kernel.
    """
    from .model import check_charges

    theta = np.ascontiguousarray(np.atleast_2d(check_charges(theta)))
    n = theta.shape[0]
    out = np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    f = _parallel if parallel else _serial
    f(coef.S, coef.L, coef.Q, coef.B, coef.D, theta, 1.0 / signal_pull**2,
      1.0 / background_pull**2, float(tol), int(max_iter), ARMIJO, *out)
    return out


def warm_up(parallel=True):
    """Compile (or load from cache) the kernels on a tiny problem."""
    nb_ = 2
    S = np.ones(nb_)
    z = np.zeros((6, nb_))
    out = np.empty(1), np.empty(1), np.empty(1), np.empty(1, dtype=np.int64)
    f = _parallel if parallel else _serial
    f(S, z, z, S, 2 * S, np.zeros((1, 6)), 100.0, 1e4, 1e-10, 60, ARMIJO, *out)
