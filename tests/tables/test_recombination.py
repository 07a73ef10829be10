"""Response tables vs brute force, and grid convergence of the tables.

The tables store, per component and bin, the S, I, E pieces of the rate
(docs/physics.md section 7); :func:`mcscan.stats.reference.predict` recombines them at a
charge point.  Here the same counts are computed directly (docs/physics.md
section 5) with the *full* cross section at each charge point,

    N_i = eps * n_units * Phi * sum_nuclides per_unit * sum_components
          Int dT P_i(T) Int dE f(E) dsigma/dT(E, T; charges),

without the builder's grid, its closed-form flux moments, its smearing
matrix or its normalisation helpers:

* P_i(T) is the erf formula, written out here;
* the E integral is Gauss-Legendre on [E_min(T), E_max] (see
  :func:`_energy_rule`; exact, as f(E) dsigma/dT is a cubic polynomial in E
  for both CEvNS and EvES, and checked against scipy.integrate.quad), the
  prompt line is a delta function;
* the T integral is adaptive Gauss-Kronrod (scipy.integrate.quad_vec) with
  panel edges at every kink or jump: kinematic end points, reco bin edges
  and atomic binding energies (EvES);
* n_units (periodictable molar mass, scipy Avogadro) and Phi are computed
  here from the configuration's raw numbers.
"""
from __future__ import annotations

import math

import numpy as np
import periodictable
import pytest
import scipy.constants as sc
from scipy.integrate import quad, quad_vec
from scipy.special import erf, roots_legendre

from mcscan.physics import atomic

from mcscan.physics import eves
from mcscan.tables.build import build_table
from mcscan.config.load import PARAMS, load_config
from mcscan.physics.flux import COMPONENTS, spectrum
from mcscan.stats.reference import coefficients, predict
from mcscan.physics.nuclei import nuclides
from mcscan.physics.cevns import cevns_dsigma

DETECTORS = ("CsI", "Xe", "Ge")
#: Same overrides as the ``electron_config`` fixture (conftest.py): CsI with EvES.
CSI_ELECTRON = {"detectors": {"CsI": {"channels": ["nuclear", "electron"]}}}
KEV = 1e-3          # MeV per keV
N_POINTS = 5        # random charge points per detector
#: Relative agreement required between tables and brute force (docs/physics.md section 6: 1e-4).
RTOL = 1e-4
#: The brute force must be an order of magnitude better than what it checks, and more:
#: its error estimate is required below 1e-6 of the smallest bin.
BRUTE_RTOL = 1e-6
#: Gauss-Legendre nodes of the E integral: exact for polynomials up to degree 31; the
#: integrand is a cubic in E (f(E) ~ E^2 (a + b E) times dsigma ~ c0 + c1/E + c2/E^2).
_XG, _WG = roots_legendre(16)


# ---------------------------------------------------------------- brute-force pieces

def _bin_prob(T_nr, edges, sigma0, threshold):
    """(nbins, nT) probability that true T (keVnr) lands in each reco bin (erf formula)."""
    s = math.sqrt(2.0) * sigma0 * np.sqrt(T_nr * threshold)
    cdf = 0.5 * (1.0 + erf((edges[:, None] - T_nr[None, :]) / s[None, :]))
    return cdf[1:] - cdf[:-1]


def _energy_rule(emin, emax):
    """Gauss-Legendre nodes and weights (nT, 16) on [emin(T), emax] (MeV); empty if emin >= emax."""
    lo = np.minimum(emin, emax)[:, None]
    half = 0.5 * (emax - lo)
    return lo + half * (_XG + 1.0), half * _WG


def _folded_nuclear(T_mev, nuc, comp, physics, charges):
    """Int dE f(E) dsigma/dT(E, T; charges) for a CEvNS nuclide, (nT,) cm^2/MeV."""
    if comp.is_line:
        return cevns_dsigma(comp.e_max, T_mev, nuc, comp.flavour, physics.sin2_theta_w,
                            physics.helm_skin_fm, charges)
    E, w = _energy_rule(np.sqrt(nuc.mass * T_mev / 2.0), comp.e_max)
    ds = cevns_dsigma(E, T_mev[:, None], nuc, comp.flavour, physics.sin2_theta_w,
                      physics.helm_skin_fm, charges)
    return (ds * w * spectrum(comp, E)).sum(-1)


def _folded_electron(Te, comp, physics, charges, z):
    """Int dE f(E) Z_eff dsigma/dT_e(E, T_e; charges), (nT,) cm^2/MeV."""
    if comp.is_line:
        return eves.dsigma_dT(comp.e_max, Te, comp.flavour, comp.antineutrino,
                              physics.sin2_theta_w, charges, z)
    emin = 0.5 * (Te + np.sqrt(Te * (Te + 2.0 * sc.physical_constants[
        "electron mass energy equivalent in MeV"][0])))
    E, w = _energy_rule(emin, comp.e_max)
    ds = eves.dsigma_dT(E, Te[:, None], comp.flavour, comp.antineutrino, physics.sin2_theta_w,
                        charges, z[:, None])
    return (ds * w * spectrum(comp, E)).sum(-1)


def _units_times_fluence(config, det, channel):
    """eps * (formula units) * (neutrinos per flavour per cm^2), computed from raw numbers."""
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


def _adaptive(integrand_T, a, b, epsrel):
    """Int_{a_0}^{b_last} g(T) dT, g -> (npts, nbins), panel edges a_k, b_k.

    quad_vec integrates sum_k (b_k - a_k) g(a_k + (b_k - a_k) x) over x in [0, 1]:
    the same as quad_vec over T with ``points=`` at every panel edge, but each call
    evaluates all panels at once (one vectorised cross-section call per panel set).
    """
    width = b - a

    def f(x):
        return integrand_T(a + width * x, width)

    res, err = quad_vec(f, 0.0, 1.0, epsrel=epsrel, epsabs=0.0, norm="max", limit=2000)
    return res, err


def brute_nuclear(config, name, thetas, epsrel=1e-11):
    """Counts per reco bin, (npts, nbins), with the full CEvNS cross section; and the error."""
    det = config.detector(name)
    edges = np.asarray(det.edges_kev, dtype=float)
    nucs = nuclides(det.composition, det.rms_radius_fm)
    # Kinks: the end point 2 E_max^2 / M of every component on every nuclide (keV).
    ends = [2.0 * c.e_max**2 / n.mass / KEV for n in nucs for c in COMPONENTS]
    # Lower end 1e-3 of the first edge: there P_i = 0 to double precision (>100 sigma).
    # Upper end: the largest kinematic end point (the rate vanishes above).
    a, b = _panels(list(edges) + ends, edges[0] * 1e-3, max(ends))
    charges = [dict(zip(PARAMS, th)) for th in thetas]

    def g(T, width):
        P = _bin_prob(T, edges, det.sigma0, det.threshold_kev) * width  # (nb, K)
        out = np.zeros((len(charges), edges.size - 1))
        for nuc in nucs:
            for comp in COMPONENTS:
                for j, q in enumerate(charges):
                    dens = _folded_nuclear(T * KEV, nuc, comp, config.physics, q) * KEV  # per keV
                    out[j] += nuc.per_unit * (P @ dens)
        return out

    res, err = _adaptive(g, a, b, epsrel)
    scale = _units_times_fluence(config, det, "nuclear")
    return res * scale, err * scale


def brute_electron(config, name, thetas, epsrel=1e-11):
    """EvES counts per reco bin, (npts, nbins), integrated in T_e (docs/physics.md section 5)."""
    det = config.detector(name)
    qf = det.quenching_factor
    edges = np.asarray(det.edges_kev, dtype=float)
    comp_el = dict(det.composition)
    # T_e from 1e-3 of the first edge (P = 0 there) to twice the last edge (> 15 sigma above
    # it); jumps of Z_eff at every binding energy and the bin edges are panel edges. The EvES
    # kinematic end points (tens of MeV) lie far above.
    a, b = _panels(list(edges * qf * KEV) + list(atomic.edges(comp_el)),
                   edges[0] * 1e-3 * qf * KEV, 2.0 * edges[-1] * qf * KEV)
    charges = [dict(zip(PARAMS, th)) for th in thetas]

    def g(Te, width):
        P = _bin_prob(Te / qf / KEV, edges, det.sigma0, det.threshold_kev) * width  # (nb, K)
        z = atomic.z_eff(Te, comp_el)
        out = np.zeros((len(charges), edges.size - 1))
        for comp in COMPONENTS:
            for j, q in enumerate(charges):
                out[j] += P @ _folded_electron(Te, comp, config.physics, q, z)
        return out

    res, err = _adaptive(g, a, b, epsrel)
    scale = _units_times_fluence(config, det, "electron")
    return res * scale, err * scale


def _random_charges(rng, lo, hi):
    """(N_POINTS, 6) charges with log-uniform magnitudes in [lo, hi] e and random signs."""
    mag = np.exp(rng.uniform(math.log(lo), math.log(hi), size=(N_POINTS, len(PARAMS))))
    return rng.choice([-1.0, 1.0], size=mag.shape) * mag


# ---------------------------------------------------------------- the E rule itself

def _nuclear_integrand(E, T, nuc, comp, physics, charges):
    """f(E) dsigma/dT(E, T) for scipy.integrate.quad (scalar E, T in MeV)."""
    return float(spectrum(comp, E) * cevns_dsigma(E, T, nuc, comp.flavour, physics.sin2_theta_w,
                                                  physics.helm_skin_fm, charges))


def _electron_integrand(E, Te, comp, physics, charges, z):
    """f(E) Z_eff dsigma/dT_e(E, T_e) for scipy.integrate.quad (scalar E, T_e in MeV)."""
    return float(spectrum(comp, E) * eves.dsigma_dT(E, Te, comp.flavour, comp.antineutrino,
                                                    physics.sin2_theta_w, charges, z))


@pytest.mark.parametrize("name", DETECTORS)
def test_energy_rule_matches_quad(config, name):
    """The 16-node E rule of the brute force equals adaptive quad (validates the brute force)."""
    rng = np.random.default_rng(1)
    det = config.detector(name)
    theta = _random_charges(rng, 1e-9, 3e-8)[0]
    q = dict(zip(PARAMS, theta))
    for nuc in nuclides(det.composition, det.rms_radius_fm)[:3]:
        for comp in COMPONENTS:
            if comp.is_line:
                continue
            t_end = 2.0 * comp.e_max**2 / nuc.mass
            T = rng.uniform(0.0, 1.0, size=3) * t_end
            got = _folded_nuclear(T, nuc, comp, config.physics, q)
            for t, gv in zip(T, got):
                emin = math.sqrt(nuc.mass * t / 2.0)
                ref, _ = quad(_nuclear_integrand, emin, comp.e_max, args=(t, nuc, comp, config.physics, q),
                              epsabs=0.0, epsrel=1e-13)
                # Both rules are exact for a cubic: agreement to rounding (1e-12).
                assert gv == pytest.approx(ref, rel=1e-12, abs=0)


def test_energy_rule_matches_quad_electron(electron_config):
    rng = np.random.default_rng(1)
    theta = _random_charges(rng, 1e-11, 1e-9)[0]
    q = dict(zip(PARAMS, theta))
    comp_el = dict(electron_config.detector("CsI").composition)
    Te = np.array([2e-6, 1e-5, 1.5e-4])                       # MeV, around the CsI window
    z = atomic.z_eff(Te, comp_el)
    for comp in COMPONENTS[1:]:
        got = _folded_electron(Te, comp, electron_config.physics, q, z)
        for t, zt, gv in zip(Te, z, got):
            emin = float(eves.e_min(t))
            ref, _ = quad(_electron_integrand, emin, comp.e_max,
                          args=(t, comp, electron_config.physics, q, zt), epsabs=0.0, epsrel=1e-13)
            # Cubic in E: both exact; rounding only, 1e-11 (terms ~1/T^2 cancel partially).
            assert gv == pytest.approx(ref, rel=1e-11, abs=0)


# ---------------------------------------------------------------- tables vs brute force

@pytest.mark.parametrize("name", DETECTORS)
def test_nuclear_counts_match_brute_force(config, tables, name):
    rng = np.random.default_rng(1)
    thetas = _random_charges(rng, 1e-9, 3e-8)
    brute, err = brute_nuclear(config, name, thetas)
    assert np.all(brute > 0)
    # The brute force is converged: its error estimate (max over bins) is tiny on every bin.
    assert err < BRUTE_RTOL * brute.min()
    pred = predict(coefficients(tables[name], ("nuclear",)), thetas)
    # docs/physics.md section 6: counts to 1e-4 relative, every bin and every charge point.
    np.testing.assert_allclose(pred, brute, rtol=RTOL, atol=0)


def test_electron_counts_match_brute_force(electron_config, csi_electron_table):
    rng = np.random.default_rng(1)
    thetas = _random_charges(rng, 1e-11, 1e-9)
    brute, err = brute_electron(electron_config, "CsI", thetas)
    assert np.all(brute > 0)
    assert err < BRUTE_RTOL * brute.min()
    pred = predict(coefficients(csi_electron_table, ("electron",)), thetas)
    # docs/physics.md section 6: counts to 1e-4 relative, every bin and every charge point.
    np.testing.assert_allclose(pred, brute, rtol=RTOL, atol=0)


def test_electron_sm_counts_match_brute_force(electron_config, csi_electron_table):
    """The SM piece alone (all charges zero): tiny counts, still to 1e-4."""
    thetas = np.zeros((1, len(PARAMS)))
    brute, err = brute_electron(electron_config, "CsI", thetas)
    assert err < BRUTE_RTOL * brute.min()
    pred = predict(coefficients(csi_electron_table, ("electron",)), thetas)
    np.testing.assert_allclose(pred, brute, rtol=RTOL, atol=0)


# ---------------------------------------------------------------- grid convergence

def _halved(base_overrides, config):
    step = config.numerics.grid_step_sigma / 2.0
    return load_config(overrides={**base_overrides, "numerics": {"grid_step_sigma": step}})


_CASES = [("CsI", "nuclear"), ("Xe", "nuclear"), ("Ge", "nuclear"), ("CsI", "electron")]


@pytest.fixture(scope="module")
def refined(config, electron_config, tables, csi_electron_table):
    """{(detector, channel): (counts, refined counts, nodes, refined nodes)}."""
    out = {}
    fine = _halved({}, config)
    for name in DETECTORS:
        t1 = build_table(fine, name)
        c0, c1 = tables[name].channels["nuclear"], t1.channels["nuclear"]
        out[(name, "nuclear")] = (c0.counts, c1.counts, c0.true_kev.size, c1.true_kev.size)
    t1 = build_table(_halved(CSI_ELECTRON, electron_config), "CsI")
    c0, c1 = csi_electron_table.channels["electron"], t1.channels["electron"]
    out[("CsI", "electron")] = (c0.counts, c1.counts, c0.true_kev.size, c1.true_kev.size)
    return out


@pytest.mark.parametrize("case", [
    ("CsI", "nuclear"),
    ("Xe", "nuclear"),
    ("Ge", "nuclear"),
    ("CsI", "electron"),
], ids=lambda c: "-".join(c))
def test_grid_convergence_every_entry(refined, case):
    """Halving numerics.grid_step_sigma moves no S, I or E entry (any component) by > 1e-4."""
    old, new, n_old, n_new = refined[case]
    assert n_new > 1.5 * n_old   # the refinement really happened
    nz = old != 0.0
    assert np.all(new[~nz] == 0.0)   # exact zeros (beyond an end point) stay zero
    # docs/physics.md section 6: refining the grid changes no count by more than 1e-4 relative.
    np.testing.assert_allclose(new[nz], old[nz], rtol=RTOL, atol=0)


@pytest.mark.parametrize("case", _CASES, ids=lambda c: "-".join(c))
def test_grid_convergence_bin_pieces(refined, case):
    """Per bin, S, I and E summed over the beam components change by < 1e-4 relative."""
    old, new, n_old, n_new = refined[case]
    assert n_new > 1.5 * n_old
    o, n = old.sum(0), new.sum(0)          # (3, nbins)
    assert np.all(o != 0.0)
    # docs/physics.md section 6: refining the grid changes no count by more than 1e-4 relative.
    np.testing.assert_allclose(n, o, rtol=RTOL, atol=0)
