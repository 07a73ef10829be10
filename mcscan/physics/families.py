"""Charge radii, magnetic moments, the weak mixing angle and vector NSI (docs/physics.md section 11).

Everything here acts on the neutrino scattering amplitude of an incoming
neutrino of flavour a (antineutrinos shift with the same sign):

* CEvNS on a nuclide (Z, N, M), amplitude per flavour
  ``Q_a(T) = Q_W(sin2w) - Z Qt_aa + Z (2 eps^u_aa + eps^d_aa) + N (eps^u_aa + 2 eps^d_aa) + k(T) q_aa``
  and, without interference, for every b != a the transition amplitude
  ``k(T) q_ab - Z Qt_ab + Z (2 eps^u_ab + eps^d_ab) + N (eps^u_ab + 2 eps^d_ab)``, with
  ``Qt_ab = sqrt(2) pi alpha <r^2>_ab / (3 G_F)`` and k(T) the millicharge factor
  of :func:`mcscan.physics.cevns.k_factor`;
* EvES per electron: ``g_V -> g_V + Qt_aa - c(T) q_aa`` (c of :mod:`mcscan.physics.eves`),
  a transition adds ``(Qt_ab - c q_ab)^2`` to g_V^2 wherever g_V^2 appears; NSI with
  quarks does not enter;
* a magnetic moment adds ``(pi alpha^2 / m_e^2) (1/T - 1/E) mu_a^2`` (mu_a in Bohr
  magnetons), times Z^2 F^2(q) for CEvNS and per electron (times Z_eff) for EvES.

A diagonal radius acts as a shift of sin2w by Qt_aa / 2 in both channels
(CEvNS: g_V^p = 1/2 - 2 sin2w loses Qt; EvES: g_V = 2 sin2w -+ 1/2 gains Qt).

Two views of the same physics:

* :func:`cevns_dsigma_all` and :func:`eves_dsigma_all` compute the cross
  section directly from those formulas at one parameter point;
* for the tables, the cross section is a quadratic form u^T M u in a few
  *coordinates* u per amplitude (:data:`BASIS`): for CEvNS u = (1, X, Y, q, mu)
  with amplitude Q_W + Z X + N Y + k q, for EvES u = (1, G, q, mu) with
  g_V = g_V^SM + G - c q.  :func:`folded_pairs_nuclear` / :func:`folded_pairs_electron`
  give the flux-folded entries of M (one per pair j <= k, :func:`pairs`) and
  :func:`coordinate_maps` the affine map from the parameters to u.

Units: energies in MeV, cross sections in cm^2/MeV, <r^2> in cm^2, mu in mu_B.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..errors import InputError
from ..params import ALL_PARAMS, FLAVOURS, SPEC
from .cevns import _prefactor, e_min, k_factor, weak_charge
from .constants import ALPHA, G_FERMI, HBARC2_MEV2_CM2, M_E
from .eves import couplings
from .nuclei import Nuclide, helm

__all__ = [
    "BASIS",
    "MOMENT_CM2",
    "QT_PER_CM2",
    "coordinate_maps",
    "cevns_dsigma_all",
    "eves_dsigma_all",
    "folded_pairs_electron",
    "folded_pairs_nuclear",
    "pair_name",
    "pairs",
    "param_values",
]

#: Qt per cm^2 of <r^2>: sqrt(2) pi alpha / (3 G_F), <r^2> converted to MeV^-2 with (hbar c)^2.
QT_PER_CM2 = math.sqrt(2.0) * math.pi * ALPHA / (3.0 * G_FERMI * HBARC2_MEV2_CM2)
#: pi alpha^2 / m_e^2 in cm^2: times (1/T - 1/E) in MeV^-1 and (mu / mu_B)^2, a cross section
#: in cm^2/MeV.
MOMENT_CM2 = math.pi * ALPHA**2 / M_E**2 * HBARC2_MEV2_CM2

#: Coordinates of one amplitude per channel (see the module docstring).
BASIS = {"nuclear": ("1", "X", "Y", "q", "mu"), "electron": ("1", "G", "q", "mu")}


def pairs(channel: str) -> tuple:
    """Index pairs (j, k), j <= k, of the stored entries of M, in storage order."""
    n = len(BASIS[channel])
    return tuple((j, k) for j in range(n) for k in range(j, n))


def pair_name(channel: str, jk) -> str:
    """Name of a stored entry, e.g. ``1*X``."""
    b = BASIS[channel]
    return f"{b[jk[0]]}*{b[jk[1]]}"


def _name(prefix: str, a: str, b: str) -> str:
    a, b = sorted((a, b), key=FLAVOURS.index)
    return f"{prefix}_{a}{b}"


def param_values(values: Mapping | None) -> dict:
    """Every parameter's value from a {name: value} mapping; missing ones at their SM value.

    Raises InputError for unknown names or non-finite values.
    """
    out = {p: SPEC[p].reference for p in ALL_PARAMS}
    for k, v in dict(values or {}).items():
        if k not in SPEC:
            raise InputError(f"unknown parameter {k!r}: expected one of {', '.join(ALL_PARAMS)}")
        v = float(v)
        if not math.isfinite(v):
            raise InputError(f"parameter {k} = {v!r} is not finite: expected a finite number "
                             f"in {SPEC[k].unit}")
        out[k] = v
    return out


def _nsi(v: dict, a: str, b: str, Z: float, N: float) -> float:
    eu, ed = v[_name("eps_u", a, b)], v[_name("eps_d", a, b)]
    return Z * (2.0 * eu + ed) + N * (eu + 2.0 * ed)


def cevns_dsigma_all(E, T, nuc: Nuclide, flavour: str, values: Mapping | None, skin_fm: float):
    """CEvNS dsigma/dT (cm^2/MeV) of a neutrino of ``flavour`` at a full parameter point.

    ``values`` maps any parameter names to values (units of :mod:`mcscan.params`;
    missing ones at their SM value, sin2w at 0.23857).  Computed directly from the
    amplitudes of the module docstring, not from table pieces.
    """
    if flavour not in FLAVOURS:
        raise InputError(f"unknown flavour {flavour!r}: expected one of {', '.join(FLAVOURS)}")
    v = param_values(values)
    E = np.asarray(E, dtype=float)
    T = np.asarray(T, dtype=float)
    Tpos = np.where(T > 0, T, 1.0)
    kin = 1.0 - nuc.mass * Tpos / (2.0 * E**2)
    inside = (T > 0) & (kin > 0)
    F2 = helm(np.sqrt(2.0 * nuc.mass * Tpos), nuc.rms_radius_fm, skin_fm) ** 2
    base = _prefactor(Tpos, nuc, skin_fm) * kin
    k = k_factor(Tpos, nuc.Z, nuc.mass)
    Z, N, a = nuc.Z, nuc.N, flavour
    amp = (weak_charge(Z, N, v["sin2w"]) - Z * QT_PER_CM2 * v[_name("r2", a, a)]
           + _nsi(v, a, a, Z, N) + k * v[_name("q", a, a)])
    trans = 0.0
    for b in FLAVOURS:
        if b != a:
            trans = trans + (k * v[_name("q", a, b)] - Z * QT_PER_CM2 * v[_name("r2", a, b)]
                             + _nsi(v, a, b, Z, N)) ** 2
    moment = MOMENT_CM2 * Z**2 * F2 * (1.0 / Tpos - 1.0 / E) * v[f"mu_{a}"] ** 2
    return np.where(inside, base * (amp**2 + trans) + moment, 0.0)


def eves_dsigma_all(E, T, flavour: str, antineutrino: bool, values: Mapping | None, z_eff=1.0):
    """EvES dsigma/dT (cm^2/MeV) at a full parameter point, times ``z_eff`` electrons.

    Computed directly: g_V = g_V^SM(sin2w) + Qt_aa - c q_aa in the cross section of
    docs/physics.md section 5, transitions (Qt_ab - c q_ab)^2 added to g_V^2, and the
    magnetic-moment term.
    """
    v = param_values(values)
    gv, ga = couplings(flavour, antineutrino, v["sin2w"])
    E = np.asarray(E, dtype=float)
    T = np.asarray(T, dtype=float)
    E, T = np.broadcast_arrays(E, T)
    inside = (T > 0) & (T <= 2.0 * E * E / (M_E + 2.0 * E))
    Eo = np.where(inside, E, 1.0)
    To = np.where(inside, T, 1.0)
    c = math.sqrt(2.0) * math.pi * ALPHA / (G_FERMI * M_E * To)
    a = flavour
    g = gv + QT_PER_CM2 * v[_name("r2", a, a)] - c * v[_name("q", a, a)]
    trans = 0.0
    for b in FLAVOURS:
        if b != a:
            trans = trans + (QT_PER_CM2 * v[_name("r2", a, b)] - c * v[_name("q", a, b)]) ** 2
    B = (1.0 - To / Eo) ** 2
    C = M_E * To / Eo**2
    K = G_FERMI**2 * M_E / (2.0 * math.pi) * HBARC2_MEV2_CM2
    weak = K * ((g + ga) ** 2 + (g - ga) ** 2 * B - (g * g - ga * ga) * C + trans * (1.0 + B - C))
    moment = MOMENT_CM2 * (1.0 / To - 1.0 / Eo) * v[f"mu_{a}"] ** 2
    return np.asarray(z_eff, dtype=float) * np.where(inside, weak + moment, 0.0)


# ------------------------------------------------------------------ table pieces

def folded_pairs_nuclear(T, nuc: Nuclide, component, sin2w: float, skin_fm: float) -> np.ndarray:
    """Flux-folded entries of M for CEvNS on one nuclide, (npairs, nT) cm^2/MeV per neutrino.

    With base = Int dE f(E) (G_F^2 M/pi) (1 - M T/(2E^2)) F^2 (the E integral in closed
    form, as :func:`mcscan.physics.cevns.folded_components`), the entries are base times
    Q_W^2, Q_W Z, Q_W N, Q_W k, Z^2, Z N, Z k, N^2, N k, k^2 (weights 1, 1/T and 1/T^2,
    with this nuclide's Z, N, M inside), and for mu^2 the moment term
    (pi alpha^2/m_e^2) Z^2 F^2 Int dE f(E) (1/T - 1/E).
    """
    T = np.asarray(T, dtype=float)
    Tpos = np.where(T > 0, T, 1.0)
    emin = e_min(Tpos, nuc.mass)
    inside = (T > 0) & (emin < component.e_max)
    kin = component.moment(0, emin) - 0.5 * nuc.mass * Tpos * component.moment(-2, emin)
    base = np.maximum(np.where(inside, _prefactor(Tpos, nuc, skin_fm) * kin, 0.0), 0.0)
    qw = weak_charge(nuc.Z, nuc.N, sin2w)
    k = k_factor(Tpos, nuc.Z, nuc.mass)
    F2 = helm(np.sqrt(2.0 * nuc.mass * Tpos), nuc.rms_radius_fm, skin_fm) ** 2
    mom = component.moment(0, emin) / Tpos - component.moment(-1, emin)
    mom = np.maximum(np.where(inside, MOMENT_CM2 * nuc.Z**2 * F2 * mom, 0.0), 0.0)
    lin = {0: qw, 1: float(nuc.Z), 2: float(nuc.N), 3: k}      # amplitude = sum_j u_j lin_j
    out = np.zeros((len(pairs("nuclear")), T.size))
    for p, (j, kk) in enumerate(pairs("nuclear")):
        if j == 4 or kk == 4:
            if j == kk:
                out[p] = mom
            continue
        out[p] = base * lin[j] * lin[kk]
    return out


def folded_pairs_electron(Te, component, sin2w: float, order: int) -> np.ndarray:
    """Flux-folded entries of M for EvES per free electron, (npairs, nT) cm^2/MeV per neutrino.

    In terms of V = 1 + B - C, W = 1 - B (docs/physics.md section 5) and K = G_F^2 m_e / (2 pi):
    1*1 = K (g_V^2 V + 2 g_V g_A W + g_A^2 (1 + B + C)), 1*G = K (g_V V + g_A W),
    1*q = -c K (g_V V + g_A W), G*G = K V, G*q = -c K V, q*q = c^2 K V,
    mu*mu = (pi alpha^2/m_e^2)(1/T - 1/E).  Gauss-Legendre of ``order`` nodes in E on
    [E_min(T_e), E_max] (polynomial integrands: exact).
    """
    from .eves import e_min as e_min_e
    from .flux import spectrum

    Te = np.asarray(Te, dtype=float)
    gv, ga = couplings(component.flavour, component.antineutrino, sin2w)
    if component.is_line:
        E = np.full((Te.size, 1), component.e_max)
        wE = np.ones((Te.size, 1))
    else:
        x, w = np.polynomial.legendre.leggauss(order)
        lo = np.minimum(e_min_e(Te), component.e_max)[:, None]
        half = 0.5 * (component.e_max - lo)
        E = lo + half * (x[None, :] + 1.0)
        wE = half * w[None, :] * spectrum(component, E)
    T2 = np.broadcast_to(Te[:, None], E.shape)
    inside = (T2 > 0) & (T2 <= 2.0 * E * E / (M_E + 2.0 * E))
    Eo = np.where(inside, E, 1.0)
    To = np.where(inside, T2, 1.0)
    B = (1.0 - To / Eo) ** 2
    C = M_E * To / Eo**2
    K = G_FERMI**2 * M_E / (2.0 * math.pi) * HBARC2_MEV2_CM2
    V = np.where(inside, K * (1.0 + B - C), 0.0)
    W = np.where(inside, K * (1.0 - B), 0.0)
    A = np.where(inside, K * (1.0 + B + C), 0.0)
    M = np.where(inside, MOMENT_CM2 * (1.0 / To - 1.0 / Eo), 0.0)
    fold = lambda a: (a * wE).sum(-1)  # noqa: E731
    Vf, Wf, Af, Mf = fold(V), fold(W), fold(A), fold(M)
    Tpos = np.where(Te > 0, Te, 1.0)
    c = math.sqrt(2.0) * math.pi * ALPHA / (G_FERMI * M_E * Tpos)
    lin = gv * Vf + ga * Wf
    entries = {
        (0, 0): gv * gv * Vf + 2.0 * gv * ga * Wf + ga * ga * Af,
        (0, 1): lin, (0, 2): -c * lin,
        (1, 1): Vf, (1, 2): -c * Vf, (2, 2): c * c * Vf,
        (3, 3): Mf,
    }
    out = np.zeros((len(pairs("electron")), Te.size))
    for p, jk in enumerate(pairs("electron")):
        if jk in entries:
            out[p] = entries[jk]
    return out


def coordinate_maps(channel: str, flavour: str) -> list:
    """Affine maps from parameters to the coordinates of each amplitude of ``flavour``.

    Returns a list of (nbasis, 1 + len(ALL_PARAMS)) arrays A, one per amplitude (the
    diagonal one first, then one per other flavour b): u = A @ (1, theta - theta_SM),
    theta in :data:`mcscan.params.ALL_PARAMS` order and theta_SM the SM point
    (sin2w at the value the table was built with, everything else 0).
    """
    if channel not in BASIS:
        raise InputError(f"unknown channel {channel!r}: expected one of {', '.join(BASIS)}")
    col = {p: 1 + i for i, p in enumerate(ALL_PARAMS)}
    nb, a = len(BASIS[channel]), flavour
    maps = []
    for b in (a,) + tuple(f for f in FLAVOURS if f != a):
        A = np.zeros((nb, 1 + len(ALL_PARAMS)))
        r2, q = col[_name("r2", a, b)], col[_name("q", a, b)]
        eu, ed = col[_name("eps_u", a, b)], col[_name("eps_d", a, b)]
        if channel == "nuclear":
            A[1, r2] = -QT_PER_CM2
            A[1, eu], A[1, ed] = 2.0, 1.0
            A[2, eu], A[2, ed] = 1.0, 2.0
            A[3, q] = 1.0
            if b == a:
                A[0, 0] = 1.0
                A[1, col["sin2w"]] = -2.0
                A[4, col[f"mu_{a}"]] = 1.0
        else:
            A[1, r2] = QT_PER_CM2
            A[2, q] = 1.0
            if b == a:
                A[0, 0] = 1.0
                A[1, col["sin2w"]] = 2.0
                A[3, col[f"mu_{a}"]] = 1.0
        maps.append(A)
    return maps

