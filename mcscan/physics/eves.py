"""Neutrino-electron elastic scattering (EvES) with neutrino millicharges.

Per free electron (docs/physics.md section 5), for neutrino energy E and electron
recoil T (both MeV):

    dsigma/dT = (G_F^2 m_e / (2 pi)) [ (g_V + g_A)^2 + (g_V - g_A)^2 (1 - T/E)^2
                                       - (g_V^2 - g_A^2) m_e T / E^2 ],

for 0 < T <= t_max(E) = 2 E^2 / (m_e + 2 E), and zero elsewhere.

Millicharges (docs/physics.md sections 4, 5 and 7): for a neutrino of flavour a the
diagonal charge shifts ``g_V -> g_V - c(T) q_aa`` with
``c(T) = sqrt(2) pi alpha / (G_F m_e T)``, and each transition charge q_ab
(b != a) adds ``(c q_ab)^2`` to ``g_V^2`` wherever ``g_V^2`` appears, without
interference.  Antineutrinos shift with the same sign (only g_A flips).
Writing ``A = 1``, ``B = (1 - T/E)^2``, ``C = m_e T / E^2`` and
``K = G_F^2 m_e / (2 pi) * (hbar c)^2``, the cross section is the quadratic form

    dsigma/dT = s + 2 q_aa i + (q_aa^2 + sum_{b != a} q_ab^2) e,
    s = K [ g_V^2 (A + B - C) + 2 g_V g_A (A - B) + g_A^2 (A + B + C) ],
    i = -K c [ g_V (A + B - C) + g_A (A - B) ],
    e =  K c^2 (A + B - C),

which :func:`dsigma_components` returns; for T << E, ``e -> 2 pi alpha^2 /
(m_e T^2)`` (times (hbar c)^2), the Rutherford-like millicharge term.

Units: energies in MeV (inputs and outputs), cross sections in cm^2/MeV.
Constants come from :mod:`mcscan.physics.constants`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .constants import ALPHA, G_FERMI, HBARC2_MEV2_CM2, M_E
from ..params import FLAVOURS, charge_name, family_params

__all__ = [
    "CHARGE_KEYS",
    "FLAVOURS",
    "couplings",
    "dsigma_components",
    "dsigma_dT",
    "e_min",
    "t_max",
]

#: Keys of a millicharge mapping (units of the elementary charge e).
CHARGE_KEYS = family_params("charges")
#: Diagonal charge key of each flavour.
_DIAGONAL_KEY = {a: charge_name(a, a) for a in FLAVOURS}
#: Transition charge keys (b != a) of each flavour.
_TRANSITION_KEYS = {a: tuple(charge_name(a, b) for b in FLAVOURS if b != a) for a in FLAVOURS}


def _check_flavour(flavour: str) -> None:
    if not isinstance(flavour, str) or flavour not in FLAVOURS:
        raise ValueError(f"unknown neutrino flavour {flavour!r}; expected one of {FLAVOURS}")


def _check_energies(name: str, value) -> np.ndarray:
    """Convert to a float array and require finite, non-negative values."""
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 MeV, got min {arr.min()!r}")
    return arr


def couplings(flavour: str, antineutrino: bool, sin2w: float) -> tuple[float, float]:
    """Effective vector and axial couplings (g_V, g_A) of nu_a - e scattering.

    nu_e: g_V = 2 sin^2 theta_W + 1/2, g_A = +1/2 (charged + neutral current);
    nu_mu, nu_tau: g_V = 2 sin^2 theta_W - 1/2, g_A = -1/2; antineutrinos have
    the same g_V and the opposite sign of g_A.

    Parameters
    ----------
    flavour : {"e", "mu", "tau"}
    antineutrino : bool
    sin2w : float
        Weak mixing angle sin^2 theta_W, in (0, 1).

    Returns
    -------
    (g_V, g_A) : tuple of float
    """
    _check_flavour(flavour)
    if not isinstance(antineutrino, (bool, np.bool_)):
        raise ValueError(f"antineutrino must be a bool, got {antineutrino!r}")
    s = float(sin2w)
    if not (np.isfinite(s) and 0.0 < s < 1.0):
        raise ValueError(f"sin2w must lie in (0, 1), got {sin2w!r}")
    if flavour == "e":
        g_v, g_a = 2.0 * s + 0.5, 0.5
    else:
        g_v, g_a = 2.0 * s - 0.5, -0.5
    if antineutrino:
        g_a = -g_a
    return g_v, g_a


def t_max(E) -> np.ndarray:
    """Maximal electron recoil energy, t_max = 2 E^2 / (m_e + 2 E).

    Parameters
    ----------
    E : array_like, any shape, MeV
        Neutrino energies, finite and >= 0.

    Returns
    -------
    ndarray, same shape as ``E``, MeV
    """
    E = _check_energies("neutrino energy E", E)
    return 2.0 * E * E / (M_E + 2.0 * E)


def e_min(T) -> np.ndarray:
    """Minimal neutrino energy for an electron recoil T (inverse of :func:`t_max`).

    ``e_min(T) = (T + sqrt(T^2 + 2 m_e T)) / 2``.

    Parameters
    ----------
    T : array_like, any shape, MeV
        Electron recoil energies, finite and >= 0.

    Returns
    -------
    ndarray, same shape as ``T``, MeV
    """
    T = _check_energies("recoil energy T", T)
    return 0.5 * (T + np.sqrt(T * (T + 2.0 * M_E)))


def _dsigma_components(E: np.ndarray, T: np.ndarray, g_v, g_a):
    """Array kernel behind :func:`dsigma_components` (no input checks)."""
    E, T = np.broadcast_arrays(E, T)
    inside = (T > 0) & (T <= 2.0 * E * E / (M_E + 2.0 * E))
    # Safe placeholders outside the kinematic region (results masked to 0).
    E_ok = np.where(inside, E, 1.0)
    T_ok = np.where(inside, T, 1.0)
    y = T_ok / E_ok
    a_term = 1.0
    b_term = (1.0 - y) ** 2
    c_term = M_E * T_ok / (E_ok * E_ok)
    v_sq = a_term + b_term - c_term  # multiplies g_V^2
    va = a_term - b_term  # multiplies 2 g_V g_A
    a_sq = a_term + b_term + c_term  # multiplies g_A^2
    k = G_FERMI**2 * M_E / (2.0 * np.pi) * HBARC2_MEV2_CM2
    c = np.sqrt(2.0) * np.pi * ALPHA / (G_FERMI * M_E * T_ok)
    s = k * (g_v * g_v * v_sq + 2.0 * g_v * g_a * va + g_a * g_a * a_sq)
    i = -k * c * (g_v * v_sq + g_a * va)
    e = k * c * c * v_sq
    zero = np.zeros_like(y)
    return (np.where(inside, s, zero), np.where(inside, i, zero), np.where(inside, e, zero))


def dsigma_components(E, T, gV: float, gA: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SM, interference and millicharge pieces of dsigma/dT per free electron.

    For a neutrino of flavour a with charges q_ab,
    ``dsigma/dT = s + 2 q_aa i + (q_aa^2 + sum_{b != a} q_ab^2) e``.

    Parameters
    ----------
    E : array_like, MeV
        Neutrino energies (>= 0), broadcast against ``T``.
    T : array_like, MeV
        Electron recoil energies (>= 0).
    gV, gA : float
        Vector and axial couplings, e.g. from :func:`couplings`.

    Returns
    -------
    s, i, e : ndarray, shape ``np.broadcast(E, T).shape``, cm^2/MeV
        Zero where ``T <= 0`` or ``T > t_max(E)``.  ``e >= 0``; ``i`` has the
        sign of ``-(g_V (A+B-C) + g_A (A-B))`` (see the module docstring).

    Raises
    ------
    ValueError
        For negative or non-finite energies or non-finite couplings.
    """
    E = _check_energies("neutrino energy E", E)
    T = _check_energies("recoil energy T", T)
    g_v, g_a = float(gV), float(gA)
    if not (np.isfinite(g_v) and np.isfinite(g_a)):
        raise ValueError(f"couplings must be finite, got gV={gV!r}, gA={gA!r}")
    return _dsigma_components(E, T, g_v, g_a)


def _flavour_charges(flavour: str, charges: Mapping[str, float] | None) -> tuple[float, float]:
    """(q_aa, sum_{b != a} q_ab^2) for flavour a from a charge mapping."""
    if charges is None:
        return 0.0, 0.0
    if not isinstance(charges, Mapping):
        raise ValueError(f"charges must be a mapping or None, got {charges!r}")
    unknown = set(charges) - set(CHARGE_KEYS)
    if unknown:
        raise ValueError(
            f"unknown charge key(s) {sorted(unknown)}; expected a subset of {CHARGE_KEYS}"
        )
    values = {}
    for key in CHARGE_KEYS:
        q = float(charges.get(key, 0.0))
        if not np.isfinite(q):
            raise ValueError(f"charge {key} must be finite, got {charges[key]!r}")
        values[key] = q
    q_aa = values[_DIAGONAL_KEY[flavour]]
    q_trans_sq = sum(values[key] ** 2 for key in _TRANSITION_KEYS[flavour])
    return q_aa, q_trans_sq


def dsigma_dT(
    E,
    T,
    flavour: str,
    antineutrino: bool,
    sin2w: float,
    charges: Mapping[str, float] | None = None,
    z_eff=1.0,
) -> np.ndarray:
    """Differential EvES cross section dsigma/dT including millicharges.

    Parameters
    ----------
    E : array_like, MeV
        Neutrino energies (>= 0), broadcast against ``T`` and ``z_eff``.
    T : array_like, MeV
        Electron recoil energies (>= 0).
    flavour : {"e", "mu", "tau"}
    antineutrino : bool
    sin2w : float
        sin^2 theta_W.
    charges : mapping or None
        Millicharges in units of e with keys among ``q_ee, q_mumu, q_tautau,
        q_emu, q_etau, q_mutau`` (missing keys are 0).  Only the flavour's
        diagonal charge and its two transition charges contribute.
    z_eff : float or array_like
        Electrons per target taking part (e.g. :func:`mcscan.physics.atomic.z_eff`
        evaluated at ``T``); 1 for a free electron.

    Returns
    -------
    ndarray, shape ``np.broadcast(E, T, z_eff).shape``, cm^2/MeV
        Zero where ``T <= 0`` or ``T > t_max(E)``.
    """
    g_v, g_a = couplings(flavour, antineutrino, sin2w)
    q_aa, q_trans_sq = _flavour_charges(flavour, charges)
    z = np.asarray(z_eff, dtype=float)
    if not np.all(np.isfinite(z)) or np.any(z < 0):
        raise ValueError(f"z_eff must be finite and >= 0, got {z_eff!r}")
    s, i, e = dsigma_components(E, T, g_v, g_a)
    return z * (s + 2.0 * q_aa * i + (q_aa * q_aa + q_trans_sq) * e)
