"""CEvNS cross section and its millicharge pieces (docs/physics.md sections 3, 4, 7).

For a nuclide of mass M, recoil T and neutrino energy E (MeV):

    dsigma/dT = (G_F^2 M / pi) (1 - M T / (2 E^2)) F^2(q) Q^2,
    Q^2 = (Q_W + k q_aa)^2 + sum_{b != a} (k q_ab)^2,   k = sqrt(2) pi alpha Z / (G_F M T).

:func:`cevns_components` returns the three pieces (Q_W^2, Q_W k, k^2 in place
of Q^2) such that dsigma/dT = s + 2 q_aa i + (q_aa^2 + sum q_ab^2) e.
All cross sections in cm^2 / MeV.
"""
from __future__ import annotations

import numpy as np

from ..params import FLAVOURS, PARAMS, charge_name
from .constants import ALPHA, G_FERMI, HBARC2_MEV2_CM2
from ..errors import InputError
from .nuclei import Nuclide, helm

__all__ = [
    "FLAVOURS",
    "weak_charge",
    "k_factor",
    "t_max",
    "e_min",
    "cevns_components",
    "cevns_dsigma",
    "folded_components",
    "flavour_charges",
]



def weak_charge(Z: int, N: int, sin2w: float) -> float:
    """SM weak charge Q_W = Z (1/2 - 2 sin^2 theta_W) - N/2 (negative)."""
    return Z * (0.5 - 2.0 * sin2w) - 0.5 * N


def k_factor(T, Z: int, M: float):
    """Millicharge factor k(T) = sqrt(2) pi alpha Z / (G_F M T); T, M in MeV."""
    return np.sqrt(2.0) * np.pi * ALPHA * Z / (G_FERMI * M * np.asarray(T, dtype=float))


def t_max(E, M: float):
    """Largest recoil energy 2 E^2 / M (MeV) (the approximation docs/physics.md fixes)."""
    return 2.0 * np.asarray(E, dtype=float) ** 2 / M


def e_min(T, M: float):
    """Smallest neutrino energy sqrt(M T / 2) that gives recoil T (MeV)."""
    return np.sqrt(M * np.asarray(T, dtype=float) / 2.0)


def _prefactor(T, nuc: Nuclide, skin_fm: float):
    """(G_F^2 M / pi) F^2(q) in cm^2/MeV; q = sqrt(2 M T)."""
    q = np.sqrt(2.0 * nuc.mass * T)
    F = helm(q, nuc.rms_radius_fm, skin_fm)
    return G_FERMI**2 * nuc.mass / np.pi * F**2 * HBARC2_MEV2_CM2


def cevns_components(E, T, nuc: Nuclide, sin2w: float, skin_fm: float):
    """SM, interference and pure-EM pieces of dsigma/dT, cm^2/MeV.

    Returns ``(s, i, e)`` broadcast over E and T such that
    dsigma/dT = s + 2 q_aa i + (q_aa^2 + sum_{b != a} q_ab^2) e.
    Zero where T > 2 E^2 / M or T <= 0.
    """
    base, qw, k = _kinematics(E, T, nuc, sin2w, skin_fm)
    return base * qw**2, base * qw * k, base * k**2


def _kinematics(E, T, nuc: Nuclide, sin2w: float, skin_fm: float):
    """(G_F^2 M/pi)(1 - M T/(2E^2)) F^2 (zero outside kinematics), Q_W and k(T)."""
    E = np.asarray(E, dtype=float)
    T = np.asarray(T, dtype=float)
    Tpos = np.where(T > 0, T, 1.0)
    kin = 1.0 - nuc.mass * Tpos / (2.0 * E**2)
    base = np.where((T > 0) & (kin > 0), _prefactor(Tpos, nuc, skin_fm) * kin, 0.0)
    return base, weak_charge(nuc.Z, nuc.N, sin2w), k_factor(Tpos, nuc.Z, nuc.mass)


def flavour_charges(charges, flavour: str) -> tuple[float, float]:
    """(q_aa, sum_{b != a} q_ab^2) for flavour a from a {param: value} mapping."""
    if flavour not in FLAVOURS:
        raise InputError(f"unknown flavour {flavour!r}: expected one of {', '.join(FLAVOURS)}")
    charges = dict(charges or {})
    for k in charges:
        if k not in PARAMS:
            raise InputError(f"unknown parameter {k!r}: expected one of {', '.join(PARAMS)}")
    diag = float(charges.get(charge_name(flavour, flavour), 0.0))
    trans = 0.0
    for other in FLAVOURS:
        if other == flavour:
            continue
        trans += float(charges.get(charge_name(flavour, other), 0.0)) ** 2
    return diag, trans


def cevns_dsigma(E, T, nuc: Nuclide, flavour: str, sin2w: float, skin_fm: float, charges=None):
    """Full CEvNS dsigma/dT (cm^2/MeV) for a neutrino of ``flavour`` with charges.

    ``charges`` maps parameter names (q_ee, ..., q_mutau; units of e) to values.
    Computed directly as F^2 [(Q_W + k q_aa)^2 + k^2 sum q_ab^2], not from the pieces.
    """
    diag, trans = flavour_charges(charges, flavour)
    base, qw, k = _kinematics(E, T, nuc, sin2w, skin_fm)
    return base * ((qw + k * diag) ** 2 + k**2 * trans)


def folded_components(T, nuc: Nuclide, component, sin2w: float, skin_fm: float):
    """Flux-averaged pieces Int dE f(E) dsigma/dT for one beam component.

    The E integral is done in closed form: f is a polynomial (or a line)
    and the E dependence of dsigma/dT is 1 - M T / (2 E^2).

    Returns ``(s, i, e)`` in cm^2/MeV per neutrino, arrays shaped like T (MeV).
    """
    T = np.asarray(T, dtype=float)
    Tpos = np.where(T > 0, T, 1.0)
    emin = e_min(Tpos, nuc.mass)
    kin = component.moment(0, emin) - 0.5 * nuc.mass * Tpos * component.moment(-2, emin)
    base = np.where((T > 0) & (emin < component.e_max), _prefactor(Tpos, nuc, skin_fm) * kin, 0.0)
    base = np.maximum(base, 0.0)
    qw = weak_charge(nuc.Z, nuc.N, sin2w)
    k = k_factor(Tpos, nuc.Z, nuc.mass)
    return base * qw**2, base * qw * k, base * k**2
