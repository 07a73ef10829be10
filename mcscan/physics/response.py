"""Detector response: resolution, smearing into reco bins, true-energy grid,
backgrounds (docs/physics.md section 6).

Energies in keV on the nuclear-recoil scale (keVnr).  The Gaussian width is
sigma(T) = sigma0 * sqrt(T * T_th), which is constant, sigma0 sqrt(T_th) / 2,
in the variable u = sqrt(T): the true-energy grid is therefore uniform in u,
so one step size resolves the smearing kernel everywhere.
"""
from __future__ import annotations

import numpy as np
from scipy.special import erfc

__all__ = ["resolution", "bin_probability", "true_grid", "true_grid_size", "background_counts",
           "EmptyGridError"]


def resolution(T, sigma0: float, threshold: float):
    """Gaussian width sigma(T) = sigma0 sqrt(T T_th), keV (T, T_th in keV)."""
    return sigma0 * np.sqrt(np.maximum(np.asarray(T, dtype=float), 0.0) * threshold)


def bin_probability(T, edges, sigma0: float, threshold: float) -> np.ndarray:
    """Probability that a true recoil T is reconstructed in each bin.

    Parameters
    ----------
    T : array (nT,), keV
    edges : array (nbins + 1,), keV

    Returns
    -------
    array (nbins, nT): Int_{bin i} G(T_reco | T_j) dT_reco.
    """
    T = np.asarray(T, dtype=float)
    edges = np.asarray(edges, dtype=float)
    s = np.sqrt(2.0) * resolution(T, sigma0, threshold)
    z = (edges[:, None] - T[None, :]) / s[None, :]
    lo, hi = z[:-1], z[1:]
    # difference of the tail that is small, so tiny probabilities keep their
    # relative precision (1 - erf would cancel to zero far in the tails)
    above = 0.5 * (erfc(lo) - erfc(hi))             # bin above T: upper tails
    below = 0.5 * (erfc(-hi) - erfc(-lo))           # bin below T: lower tails
    across = 1.0 - 0.5 * (erfc(hi) + erfc(-lo))     # bin contains T
    return np.where(lo > 0, above, np.where(hi < 0, below, across))


def true_grid(edges, sigma0: float, threshold: float, *, step_sigma: float, order: int,
              n_sigma: float, t_cap: float, breakpoints=()):
    """Quadrature nodes and weights in true recoil energy T (keV).

    The grid spans from where a recoil sits ``n_sigma`` widths below the first
    edge to ``n_sigma`` widths above the last (or ``t_cap``, the kinematic end
    point, if lower).  Panels are uniform in u = sqrt(T) with width
    ``step_sigma`` times the smearing width in u; ``breakpoints`` (kinks of
    the spectrum, keV) become panel edges; each panel carries an
    ``order``-point Gauss-Legendre rule.

    Returns
    -------
    nodes, weights : arrays (nT,), keV; sum(w * g(nodes)) ~ Int g(T) dT.
    """
    u_lo, u_hi, du, n = _panels(edges, sigma0, threshold, step_sigma, n_sigma, t_cap)
    cuts = np.linspace(u_lo, u_hi, n + 1)
    bp = np.sqrt(np.asarray([b for b in breakpoints if u_lo**2 < b < u_hi**2], dtype=float))
    cuts = np.unique(np.concatenate([cuts, bp]))
    x, w = np.polynomial.legendre.leggauss(order)
    a, b = cuts[:-1, None], cuts[1:, None]
    u = 0.5 * (a + b) + 0.5 * (b - a) * x[None, :]
    wu = 0.5 * (b - a) * w[None, :]
    u, wu = u.ravel(), wu.ravel()
    return u * u, 2.0 * u * wu


class EmptyGridError(ValueError):
    """The kinematic end point lies below the reach of the first bin."""


def _panels(edges, sigma0, threshold, step_sigma, n_sigma, t_cap):
    """(u_lo, u_hi, du, number of uniform panels) of :func:`true_grid`."""
    e0, e1 = float(edges[0]), float(edges[-1])
    c = n_sigma * sigma0 * np.sqrt(threshold)
    u_lo = 0.5 * (-c + np.sqrt(c * c + 4.0 * e0))
    u_hi = 0.5 * (c + np.sqrt(c * c + 4.0 * e1))
    u_hi = min(u_hi, np.sqrt(t_cap))
    if not u_hi > u_lo:
        raise EmptyGridError(f"empty true-energy range: kinematic end point {t_cap:g} keV "
                             f"is below the reach of the first bin")
    du = step_sigma * 0.5 * sigma0 * np.sqrt(threshold)
    span = (u_hi - u_lo) / du
    if not np.isfinite(span):
        raise EmptyGridError(f"true-energy grid of unbounded size (step {du!r} in sqrt(keV))")
    n = max(int(np.ceil(span)), 1)
    return u_lo, u_hi, du, n


def true_grid_size(edges, sigma0: float, threshold: float, *, step_sigma: float, order: int,
                   n_sigma: float, t_cap: float, breakpoints=()) -> float:
    """Number of nodes :func:`true_grid` would return, without building it (an upper
    bound: breakpoints that coincide with panel edges are counted twice)."""
    e0, e1 = float(edges[0]), float(edges[-1])
    c = n_sigma * sigma0 * np.sqrt(threshold)
    u_lo = 0.5 * (-c + np.sqrt(c * c + 4.0 * e0))
    u_hi = min(0.5 * (c + np.sqrt(c * c + 4.0 * e1)), np.sqrt(t_cap))
    if not u_hi > u_lo:
        raise EmptyGridError(f"empty true-energy range: kinematic end point {t_cap:g} keV "
                             f"is below the reach of the first bin")
    du = step_sigma * 0.5 * sigma0 * np.sqrt(threshold)
    span = (u_hi - u_lo) / du
    nbp = sum(1 for b in breakpoints if u_lo**2 < b < u_hi**2)
    return float(order) * (max(float(np.ceil(span)), 1.0) + nbp)


def background_counts(edges, rate_ckkd: float, mass_kg: float, days: float) -> np.ndarray:
    """Flat background per bin: b * mass * width * live days (counts)."""
    return rate_ckkd * mass_kg * np.diff(np.asarray(edges, dtype=float)) * days
