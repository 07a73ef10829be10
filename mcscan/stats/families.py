"""Per-bin quadratic forms in every parameter: a response table collapsed for any family.

With theta the full parameter vector (order :data:`mcscan.params.ALL_PARAMS`) and
d = theta - theta_SM (theta_SM: sin2w at the table's value, all else 0), every
bin's count is one quadratic form (docs/physics.md section 11)

    N_i(theta) = (1, d)^T H_i (1, d) = S_i + 2 d . h_i + d^T G_i d,

H_i = sum over channels, beam components c and amplitudes of A^T M_ci A, with M_ci
the stored entries of the table (``pairs``) and A the affine maps of
:func:`mcscan.physics.families.coordinate_maps`.  Parameters of one flavour
(e.g. r2_ee and eps_u_ee) have cross terms G_jk != 0.

The millicharge machinery (:mod:`mcscan.stats.coefficients`) stays as it is:
charge-only scans never come here.  This module is the NumPy side: the
recombination, the per-row polynomial of a two-parameter scan
(:func:`row_polynomial`) and the NumPy twin of the profiled chi2
(:func:`chi2_all`, built on :func:`mcscan.stats.reference.chi2`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError, TableError
from ..params import ALL_PARAMS, PARAMS, SPEC
from .coefficients import Coefficients
from .newton import BACKGROUND_PULL, MAX_ITER, SIGNAL_PULL, TOL

__all__ = ["FamilyCoefficients", "family_coefficients", "check_theta", "sm_point", "excess_all",
           "predict_all", "row_polynomial", "row_polynomials", "fixed_part", "chi2_all", "theta_from",
           "reduced_form", "reduced_excess"]


@dataclass(frozen=True)
class FamilyCoefficients:
    """Quadratic forms of one detector (channels summed).

    Attributes
    ----------
    H : (nbins, 1 + P, 1 + P) symmetric, counts, P = len(ALL_PARAMS)
    S : (nbins,) SM counts (H[:, 0, 0]);  B : background;  D : Asimov data S + B
    origin : (P,) the SM point theta_SM (sin2w of the table's configuration)
    """

    detector: str
    channels: tuple
    H: np.ndarray
    S: np.ndarray
    B: np.ndarray
    D: np.ndarray
    origin: np.ndarray
    edges_kev: np.ndarray
    table_hash: str
    flavours: tuple = ()


def sm_point(sin2w: float) -> np.ndarray:
    """(P,) the SM parameter vector: every parameter 0, sin2w at ``sin2w``."""
    out = np.array([SPEC[p].reference for p in ALL_PARAMS], dtype=float)
    out[ALL_PARAMS.index("sin2w")] = float(sin2w)
    return out


def family_coefficients(table, channels=("nuclear",)) -> FamilyCoefficients:
    """Collapse a ResponseTable's ``pairs`` into per-bin quadratic forms."""
    from ..physics.families import coordinate_maps, pairs

    channels = tuple(channels)
    nb = table.edges_kev.size - 1
    P1 = 1 + len(ALL_PARAMS)
    H = np.zeros((nb, P1, P1))
    for ch in channels:
        if ch not in table.channels:
            raise TableError(f"table for {table.detector} has no {ch!r} channel (it has "
                             f"{', '.join(table.channels)}): enable it and rebuild the table")
        c = table.channels[ch]
        if c.pairs is None:
            raise TableError(f"table for {table.detector} holds no parameter-family entries "
                             f"(channel {ch!r}): rebuild it with this mcscan")
        pr = pairs(ch)
        nbasis = max(k for _, k in pr) + 1
        for ic, fl in enumerate(table.flavours):
            M = np.zeros((nb, nbasis, nbasis))
            for p, (j, k) in enumerate(pr):
                M[:, j, k] = c.pairs[ic, p]
                M[:, k, j] = c.pairs[ic, p]
            for A in coordinate_maps(ch, fl):
                H += np.einsum("jp,ijk,kq->ipq", A, M, A)
    sin2w = float(table.config["physics"]["sin2_theta_w"])
    S = H[:, 0, 0].copy()
    B = np.asarray(table.background, dtype=float).copy()
    return FamilyCoefficients(table.detector, channels, H, S, B, S + B, sm_point(sin2w),
                              np.asarray(table.edges_kev, dtype=float), table.config_hash,
                              tuple(table.flavours))


def check_theta(theta) -> np.ndarray:
    """Full parameter vectors as a float array (..., P), refusing NaN or infinite values."""
    theta = np.asarray(theta, dtype=float)
    if theta.shape[-1:] != (len(ALL_PARAMS),):
        raise InputError(f"parameter vectors must have a last axis of length {len(ALL_PARAMS)}, "
                         f"got shape {theta.shape}")
    bad = ~np.isfinite(theta)
    if bad.any():
        idx = np.argwhere(bad)[0]
        name = ALL_PARAMS[idx[-1]]
        raise InputError(f"parameter {name} = {theta[tuple(idx)]!r} is not finite: "
                         f"expected a finite number in {SPEC[name].unit}")
    return theta


def theta_from(fc: FamilyCoefficients, values=None) -> np.ndarray:
    """(P,) parameter vector from {name: value} (others at the SM point of ``fc``)."""
    from ..params import check_any_param

    theta = fc.origin.copy()
    for k, v in dict(values or {}).items():
        v = float(v)
        if not np.isfinite(v):
            raise InputError(f"parameter {k} = {v!r} is not finite: expected a finite number")
        theta[check_any_param(k)] = v
    return theta


def excess_all(fc: FamilyCoefficients, theta) -> np.ndarray:
    """N(theta) - S per bin, (..., nbins); exactly 0 at the SM point."""
    d = check_theta(theta) - fc.origin
    h = fc.H[:, 0, 1:]
    G = fc.H[:, 1:, 1:]
    return 2.0 * np.einsum("...p,ip->...i", d, h) + np.einsum("...p,ipq,...q->...i", d, G, d)


def predict_all(fc: FamilyCoefficients, theta) -> np.ndarray:
    """Signal counts N_i(theta), (..., nbins), never negative."""
    return np.maximum(fc.S + excess_all(fc, theta), 0.0)


def fixed_part(fc: FamilyCoefficients, d, cols=()):
    """The counts' dependence on parameter offsets ``d`` (m, P) from the SM point.

    Returns E0 (m, nbins), E0_i = 2 d . h_i + d^T G_i d, and for each k of ``cols`` the
    column k of G_i d, (m, nbins).  Every sum runs over the parameters in increasing
    order, element-wise, starting from +0.0: a row's numbers depend on its own offsets
    only, bit for bit, whatever the other rows are, and a parameter whose offset is 0
    adds exactly nothing (x + (+-0) = x, and the sum is never -0), so the parameters
    at their SM value in every row are skipped.  One plane costs a few operations
    per parameter away from the SM point, and the planes of a chunk are formed at once.
    """
    d = np.atleast_2d(np.asarray(d, dtype=float))
    h = fc.H[:, 0, 1:]
    G = fc.H[:, 1:, 1:]
    shape = (d.shape[0], h.shape[0])
    lin, quad = np.zeros(shape), np.zeros(shape)
    gd = [np.zeros(shape) for _ in cols]
    live = np.flatnonzero(np.any(d != 0.0, axis=0))
    for p in live:
        dp = d[:, p:p + 1]
        lin += dp * h[:, p]
        for q in live:
            quad += (dp * G[:, p, q]) * d[:, q:q + 1]
        for g, k in zip(gd, cols):
            g += G[:, k, p] * dp
    return (2.0 * lin + quad, *gd)


def row_polynomials(fc: FamilyCoefficients, bases, ix, iy):
    """Per-bin coefficients of scans over offsets x = theta_ix - origin, y = theta_iy - origin,
    one for each of m base points.

    All other parameters at ``bases`` (m, P) (entries ix, iy ignored).  Returns E0, cx1,
    cy1 (m, nbins) and cx2, cy2, cxy (nbins,), with N_i = S_i + E0_i + x cx1_i + x^2 cx2_i +
    y cy1_i + y^2 cy2_i + x y cxy_i (before the clip at 0); row j depends on bases[j]
    alone, bit for bit (:func:`fixed_part`).  ``ix=None``: one scanned parameter
    (cx1 = cx2 = cxy = 0).
    """
    d = check_theta(np.atleast_2d(bases)) - fc.origin
    if ix is not None:
        d[:, ix] = 0.0
    d[:, iy] = 0.0
    h = fc.H[:, 0, 1:]
    G = fc.H[:, 1:, 1:]
    cy2 = G[:, iy, iy].copy()
    if ix is None:
        E0, gdy = fixed_part(fc, d, (iy,))
        z = np.zeros(h.shape[0])
        return E0, np.zeros_like(E0), z, 2.0 * h[:, iy] + 2.0 * gdy, cy2, z.copy()
    E0, gdx, gdy = fixed_part(fc, d, (ix, iy))
    cx1 = 2.0 * h[:, ix] + 2.0 * gdx
    cy1 = 2.0 * h[:, iy] + 2.0 * gdy
    return E0, cx1, G[:, ix, ix].copy(), cy1, cy2, 2.0 * G[:, ix, iy]


def row_polynomial(fc: FamilyCoefficients, base, ix, iy):
    """Per-bin coefficients of a scan over offsets x = theta_ix - origin, y = theta_iy - origin.

    All other parameters at ``base`` (P,).  Returns (E0, cx1, cx2, cy1, cy2, cxy), each
    (nbins,), with N_i = S_i + E0_i + x cx1_i + x^2 cx2_i + y cy1_i + y^2 cy2_i + x y cxy_i
    (before the clip at 0): :func:`row_polynomials` of one base point, the same bits.
    ``ix=None``: one scanned parameter (cx1 = cx2 = cxy = 0).
    """
    E0, cx1, cx2, cy1, cy2, cxy = row_polynomials(fc, check_theta(base)[None, :], ix, iy)
    return E0[0], cx1[0], cx2, cy1[0], cy2, cxy


def reduced_form(fc: FamilyCoefficients, base, idx):
    """The quadratic form restricted to the parameters ``idx``, the others at ``base``.

    Returns (E0 (nbins,), L (nbins, k), Q (nbins, k, k)) with, for offsets t_k =
    theta_idx[k] - origin, N_i - S_i = E0_i + t . L_i + t^T Q_i t (the entries ``idx`` of
    ``base`` are ignored).  :func:`row_polynomial` is the two-parameter case.
    """
    idx = list(idx)
    d = check_theta(base) - fc.origin
    d[idx] = 0.0
    h = fc.H[:, 0, 1:]
    G = fc.H[:, 1:, 1:]
    E0, *gd = fixed_part(fc, d[None, :], idx)
    Gd = np.array([g[0] for g in gd]).reshape(len(idx), h.shape[0]).T
    L = 2.0 * h[:, idx] + 2.0 * Gd
    Q = G[:, idx][:, :, idx]
    return E0[0], L, Q


def reduced_excess(form, t) -> np.ndarray:
    """N - S at offsets t (npts, k) of a :func:`reduced_form`, (npts, nbins)."""
    E0, L, Q = form
    t = np.atleast_2d(np.asarray(t, dtype=float))
    return E0 + t @ L.T + np.einsum("nk,ikl,nl->ni", t, Q, t)


def _as_charges(fc: FamilyCoefficients, dl: np.ndarray) -> Coefficients:
    """Coefficients whose first charge carries the excess ``dl``: at theta = (1, 0, ...) the
    millicharge twin sees exactly N = max(S + dl, 0)."""
    L = np.zeros((len(PARAMS), dl.size))
    L[0] = dl
    return Coefficients(fc.detector, fc.channels, fc.S, L, np.zeros_like(L), fc.B, fc.D,
                        fc.edges_kev, fc.table_hash)


def chi2_all(fc: FamilyCoefficients, theta, *, signal_pull: float = SIGNAL_PULL,
             background_pull: float = BACKGROUND_PULL, tol: float = TOL, max_iter: int = MAX_ITER):
    """NumPy twin: chi2 profiled over the two pulls at full parameter points.

    The recombination of this module, then the profile of
    :func:`mcscan.stats.reference.chi2` point by point.  Returns chi2, a, b, iters (npts,).
    """
    from .reference import chi2

    theta = np.atleast_2d(check_theta(theta))
    ex = excess_all(fc, theta)
    one = np.zeros(len(PARAMS))
    one[0] = 1.0
    out = [np.empty(theta.shape[0]) for _ in range(3)] + [np.empty(theta.shape[0], dtype=np.int64)]
    for p in range(theta.shape[0]):
        res = chi2(_as_charges(fc, ex[p]), one, signal_pull=signal_pull,
                   background_pull=background_pull, tol=tol, max_iter=max_iter)
        for o, r in zip(out, res):
            o[p] = r[0]
    return tuple(out)
