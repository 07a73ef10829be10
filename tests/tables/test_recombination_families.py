"""Every parameter family recombined from the tables vs brute force (docs/physics.md section 11).

:func:`mcscan.stats.families.predict_all` recombines the stored quadratic-form
entries (``pairs``) at a full parameter point.  Here the same counts are
computed without tables, as in tests/tables/test_recombination.py, with the
*direct* cross sections :func:`mcscan.physics.families.cevns_dsigma_all` and
:func:`mcscan.physics.families.eves_dsigma_all` (amplitudes written out at the
point, no pieces): erf bin probabilities written out here, Gauss-Legendre in E
(exact: the integrand is a polynomial in E and 1/E times f(E) ~ E^2), adaptive
Gauss-Kronrod in T with panel edges at every kink.

Every random point has all 28 parameters nonzero; per family, the points draw
that family at full size and the others smaller, so each family's own term is
large in its test.  Also the closed forms: a diagonal charge radius is a shift
of sin2w by Qt/2, and the magnetic-moment term is (pi alpha^2/m_e^2) Z^2 F^2
(1/T - 1/E) mu^2 (per electron for EvES).
"""
from __future__ import annotations

import math

import numpy as np
import periodictable
import pytest
import scipy.constants as sc
from scipy.integrate import quad_vec
from scipy.special import erf, roots_legendre, spherical_jn

from mcscan.params import ALL_PARAMS, FAMILY_NAMES, SPEC
from mcscan.physics import atomic
from mcscan.physics.families import QT_PER_CM2, cevns_dsigma_all, eves_dsigma_all
from mcscan.physics.flux import COMPONENTS, spectrum
from mcscan.physics.nuclei import nuclides
from mcscan.stats.families import family_coefficients, predict_all
from mcscan.stats.reference import coefficients, predict

KEV = 1e-3
N_POINTS = 5
#: docs/physics.md section 6: tables against brute force to 1e-4 relative in every bin.
RTOL = 1e-4
#: The brute force's own error estimate must be below 1e-6 of the smallest bin.
BRUTE_RTOL = 1e-6
_XG, _WG = roots_legendre(16)

#: Full-size magnitudes (log-uniform between the two) per family and channel.
_SIZE = {
    "nuclear": {"charges": (1e-9, 3e-8), "radii": (3e-33, 3e-31), "moments": (1e-10, 2e-8),
                "nsi": (0.01, 0.3), "sin2w": (0.01, 0.05)},
    "electron": {"charges": (1e-11, 1e-9), "radii": (3e-33, 3e-31), "moments": (1e-11, 3e-10),
                 "nsi": (0.01, 0.3), "sin2w": (0.01, 0.05)},
}
#: Factor applied to the other families at a point.
_OTHERS = 0.1


def _random_points(rng, channel, family, sin2w):
    """(N_POINTS) {param: value}: every parameter nonzero, ``family`` at full size."""
    pts = []
    for _ in range(N_POINTS):
        v = {}
        for p in ALL_PARAMS:
            fam = SPEC[p].family
            lo, hi = _SIZE[channel][fam]
            mag = math.exp(rng.uniform(math.log(lo), math.log(hi)))
            if fam != family:
                mag *= _OTHERS
            sign = rng.choice([-1.0, 1.0])
            v[p] = sin2w + sign * mag if p == "sin2w" else sign * mag
        pts.append(v)
    return pts


def _bin_prob(T_nr, edges, sigma0, threshold):
    s = math.sqrt(2.0) * sigma0 * np.sqrt(T_nr * threshold)
    cdf = 0.5 * (1.0 + erf((edges[:, None] - T_nr[None, :]) / s[None, :]))
    return cdf[1:] - cdf[:-1]


def _energy_rule(emin, emax):
    lo = np.minimum(emin, emax)[:, None]
    half = 0.5 * (emax - lo)
    return lo + half * (_XG + 1.0), half * _WG


def _units_times_fluence(config, det, channel):
    src = config.source
    molar = sum(n * periodictable.elements.symbol(el).mass for el, n in det.composition.items())
    units = det.mass_kg * 1e3 / molar * sc.Avogadro
    fluence = src.nu_per_flavour_per_pot * src.pot_per_year * src.years / (
        4.0 * math.pi * (src.distance_m * 100.0) ** 2)
    return det.efficiency[channel] * units * fluence


def _panels(breaks, lo, hi):
    b = np.unique(np.concatenate([[lo, hi], np.asarray(breaks, dtype=float)]))
    b = b[(b >= lo) & (b <= hi)]
    return b[:-1], b[1:]


def _adaptive(g, a, b, epsrel):
    width = b - a
    return quad_vec(lambda x: g(a + width * x, width), 0.0, 1.0, epsrel=epsrel, epsabs=0.0,
                    norm="max", limit=2000)


def brute_nuclear(config, name, points, epsrel=1e-11):
    det = config.detector(name)
    edges = np.asarray(det.edges_kev, dtype=float)
    nucs = nuclides(det.composition, det.rms_radius_fm)
    ends = [2.0 * c.e_max**2 / n.mass / KEV for n in nucs for c in COMPONENTS]
    a, b = _panels(list(edges) + ends, edges[0] * 1e-3, max(ends))
    skin = config.physics.helm_skin_fm

    def g(T, width):
        P = _bin_prob(T, edges, det.sigma0, det.threshold_kev) * width
        Tm = T * KEV
        out = np.zeros((len(points), edges.size - 1))
        for nuc in nucs:
            for comp in COMPONENTS:
                if comp.is_line:
                    E, w = np.full((Tm.size, 1), comp.e_max), np.ones((Tm.size, 1))
                else:
                    E, w = _energy_rule(np.sqrt(nuc.mass * Tm / 2.0), comp.e_max)
                    w = w * spectrum(comp, E)
                for j, v in enumerate(points):
                    ds = cevns_dsigma_all(E, Tm[:, None], nuc, comp.flavour, v, skin)
                    out[j] += nuc.per_unit * (P @ ((ds * w).sum(-1) * KEV))
        return out

    res, err = _adaptive(g, a, b, epsrel)
    scale = _units_times_fluence(config, det, "nuclear")
    return res * scale, err * scale


def brute_electron(config, name, points, epsrel=1e-11):
    det = config.detector(name)
    qf = det.quenching_factor
    edges = np.asarray(det.edges_kev, dtype=float)
    comp_el = dict(det.composition)
    a, b = _panels(list(edges * qf * KEV) + list(atomic.edges(comp_el)),
                   edges[0] * 1e-3 * qf * KEV, 2.0 * edges[-1] * qf * KEV)
    m_e = sc.physical_constants["electron mass energy equivalent in MeV"][0]

    def g(Te, width):
        P = _bin_prob(Te / qf / KEV, edges, det.sigma0, det.threshold_kev) * width
        z = atomic.z_eff(Te, comp_el)
        out = np.zeros((len(points), edges.size - 1))
        for comp in COMPONENTS:
            if comp.is_line:
                E, w = np.full((Te.size, 1), comp.e_max), np.ones((Te.size, 1))
            else:
                E, w = _energy_rule(0.5 * (Te + np.sqrt(Te * (Te + 2.0 * m_e))), comp.e_max)
                w = w * spectrum(comp, E)
            for j, v in enumerate(points):
                ds = eves_dsigma_all(E, Te[:, None], comp.flavour, comp.antineutrino, v, z[:, None])
                out[j] += P @ (ds * w).sum(-1)
        return out

    res, err = _adaptive(g, a, b, epsrel)
    scale = _units_times_fluence(config, det, "electron")
    return res * scale, err * scale


def _theta(fc, points):
    return np.array([[v.get(p, fc.origin[i]) for i, p in enumerate(ALL_PARAMS)] for v in points])


# ---------------------------------------------------------------- tables vs brute force

@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("name", ("CsI", "Xe", "Ge"))
def test_nuclear_families_match_brute_force(config, tables, name, family):
    rng = np.random.default_rng(10 * ("CsI", "Xe", "Ge").index(name) + FAMILY_NAMES.index(family))
    sin2w = config.physics.sin2_theta_w
    points = _random_points(rng, "nuclear", family, sin2w)
    brute, err = brute_nuclear(config, name, points)
    assert np.all(brute > 0)
    assert err < BRUTE_RTOL * brute.min()
    fc = family_coefficients(tables[name], ("nuclear",))
    pred = predict_all(fc, _theta(fc, points))
    np.testing.assert_allclose(pred, brute, rtol=RTOL, atol=0)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_electron_families_match_brute_force(electron_config, csi_electron_table, family):
    rng = np.random.default_rng(7 + FAMILY_NAMES.index(family))
    points = _random_points(rng, "electron", family, electron_config.physics.sin2_theta_w)
    brute, err = brute_electron(electron_config, "CsI", points)
    assert np.all(brute > 0)
    assert err < BRUTE_RTOL * brute.min()
    fc = family_coefficients(csi_electron_table, ("electron",))
    pred = predict_all(fc, _theta(fc, points))
    np.testing.assert_allclose(pred, brute, rtol=RTOL, atol=0)


# ---------------------------------------------------------------- closed forms

def test_charges_alone_match_the_millicharge_tables(tables, csi_electron_table):
    """With only charges nonzero, the quadratic forms give the S, I, E recombination (1e-12)."""
    rng = np.random.default_rng(3)
    for table, chans in ((tables["Ge"], ("nuclear",)), (csi_electron_table, ("nuclear", "electron"))):
        th6 = rng.normal(size=(6, 6)) * 1e-8
        fc = family_coefficients(table, chans)
        full = np.repeat(fc.origin[None, :], 6, axis=0)
        full[:, :6] = th6
        np.testing.assert_allclose(predict_all(fc, full), predict(coefficients(table, chans), th6),
                                   rtol=1e-12, atol=0)


@pytest.mark.parametrize("flavour", ("e", "mu"))
def test_diagonal_radius_is_a_sin2w_shift(config, flavour):
    """Z Qt_aa = 2 Z delta_s: the same cross section in both channels, for that flavour."""
    s0 = config.physics.sin2_theta_w
    nuc = nuclides({"Cs": 1}, {"Cs": 4.83})[0]
    r2 = -1.5e-31
    ds = QT_PER_CM2 * r2 / 2.0
    E = np.array([25.0, 29.8, 45.0])[:, None]
    T = np.array([1e-3, 4e-3, 8e-3])[None, :]        # MeV, inside 2 E^2 / M for every E
    key = f"r2_{flavour}{flavour}"
    a = cevns_dsigma_all(E, T, nuc, flavour, {key: r2, "sin2w": s0}, 0.9)
    b = cevns_dsigma_all(E, T, nuc, flavour, {"sin2w": s0 + ds}, 0.9)
    assert np.all(a > 0)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
    Te = np.array([2e-6, 3e-5, 1e-4])[None, :]
    for anti in (False, True):
        a = eves_dsigma_all(E, Te, flavour, anti, {key: r2, "sin2w": s0})
        b = eves_dsigma_all(E, Te, flavour, anti, {"sin2w": s0 + ds})
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)


def test_diagonal_radii_shift_sin2w_in_the_tables(tables, csi_electron_table):
    """All three diagonal radii equal to r: the counts of sin2w + Qt(r)/2, both channels."""
    r2 = 4e-32
    for table, chans in ((tables["Xe"], ("nuclear",)), (csi_electron_table, ("nuclear", "electron"))):
        fc = family_coefficients(table, chans)
        a, b = fc.origin.copy(), fc.origin.copy()
        for f in ("ee", "mumu", "tautau"):
            a[ALL_PARAMS.index(f"r2_{f}")] = r2
        b[ALL_PARAMS.index("sin2w")] += QT_PER_CM2 * r2 / 2.0
        np.testing.assert_allclose(predict_all(fc, a), predict_all(fc, b), rtol=1e-12, atol=0)


def _helm(q_mev, R, s):
    hbarc_fm = sc.physical_constants["reduced Planck constant times c in MeV fm"][0]
    q = q_mev / hbarc_fm
    r0 = math.sqrt(5.0 / 3.0 * (R * R - 3.0 * s * s))
    x = q * r0
    return 3.0 * spherical_jn(1, x) / x * np.exp(-0.5 * (q * s) ** 2)


def _moment_prefactor_cm2():
    """pi alpha^2 / m_e^2 in cm^2, from scipy's CODATA values."""
    alpha = sc.fine_structure
    m_e = sc.physical_constants["electron mass energy equivalent in MeV"][0]
    hbarc_cm = sc.physical_constants["reduced Planck constant times c in MeV fm"][0] * 1e-13
    return math.pi * alpha**2 / m_e**2 * hbarc_cm**2


@pytest.mark.parametrize("flavour", ("e", "mu", "tau"))
def test_moment_term_closed_form(flavour):
    """d(dsigma/dT)/d(mu^2) = (pi alpha^2/m_e^2) Z^2 F^2 (1/T - 1/E) (CEvNS), per electron (EvES)."""
    nuc = nuclides({"Xe": 1}, {"Xe": 4.79})[3]
    mu = 3e-10
    key = f"mu_{flavour}"
    for E, T in ((20.0, 2e-3), (35.0, 1e-2), (50.0, 3e-2)):
        got = (cevns_dsigma_all(E, T, nuc, flavour, {key: mu}, 0.9)
               - cevns_dsigma_all(E, T, nuc, flavour, {}, 0.9))
        F = _helm(math.sqrt(2.0 * nuc.mass * T), 4.79, 0.9)
        want = _moment_prefactor_cm2() * nuc.Z**2 * F**2 * (1.0 / T - 1.0 / E) * mu**2
        # the difference of two sums: rounding of the weak part (1e-9 relative of the moment term)
        assert float(got) == pytest.approx(want, rel=1e-9)
    for E, Te in ((20.0, 1e-5), (35.0, 1e-4), (50.0, 1.0)):
        for z in (1.0, 17.0):
            got = (eves_dsigma_all(E, Te, flavour, False, {key: mu}, z)
                   - eves_dsigma_all(E, Te, flavour, False, {}, z))
            want = z * _moment_prefactor_cm2() * (1.0 / Te - 1.0 / E) * mu**2
            assert float(got) == pytest.approx(want, rel=1e-9)


def test_quark_nsi_leave_the_electron_channel_alone(csi_electron_table):
    fc = family_coefficients(csi_electron_table, ("electron",))
    idx = [1 + i for i, p in enumerate(ALL_PARAMS) if SPEC[p].family == "nsi"]
    assert np.all(fc.H[:, idx, :] == 0.0) and np.all(fc.H[:, :, idx] == 0.0)
    # and they do act on the nuclear channel (the test can fail)
    fn = family_coefficients(csi_electron_table, ("nuclear",))
    assert np.all(np.abs(fn.H[:, idx[0], idx[0]]) > 0)


def test_tau_only_parameters_are_invisible(tables):
    """No nu_tau at a pion-decay-at-rest source: tau-only parameters leave every count alone."""
    fc = family_coefficients(tables["CsI"], ("nuclear",))
    for p in ("q_tautau", "r2_tautau", "mu_tau", "eps_u_tautau", "eps_d_tautau"):
        k = 1 + ALL_PARAMS.index(p)
        assert np.all(fc.H[:, k, :] == 0.0), p
