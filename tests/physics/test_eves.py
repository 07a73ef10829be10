"""Tests of mcscan.physics.eves: couplings, kinematics, SM and millicharge cross sections.

Expected values are derived here from the couplings and the constants module
(textbook formulas written out independently), never copied from mcscan output.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from mcscan.physics import eves
from mcscan.physics.constants import ALPHA, G_FERMI, HBARC2_MEV2_CM2, M_E

SIN2W = 0.23857  # docs/physics.md section 3 low-energy value
E_PROMPT = 29.79  # MeV, a typical ESS neutrino energy
DIAGONAL = {"e": "q_ee", "mu": "q_mumu", "tau": "q_tautau"}
TRANSITIONS = {"e": ("q_emu", "q_etau"), "mu": ("q_emu", "q_mutau"), "tau": ("q_etau", "q_mutau")}


def _direct(E, T, g_v, g_a, extra_gv2=0.0):
    """Textbook dsigma/dT (cm^2/MeV) with g_V^2 -> g_V^2 + extra_gv2 in every g_V^2."""
    gv2 = g_v**2 + extra_gv2
    bracket = (
        gv2
        + 2 * g_v * g_a
        + g_a**2
        + (gv2 - 2 * g_v * g_a + g_a**2) * (1 - T / E) ** 2
        - (gv2 - g_a**2) * M_E * T / E**2
    )
    return G_FERMI**2 * M_E / (2 * np.pi) * bracket * HBARC2_MEV2_CM2


def _c(T):
    return np.sqrt(2) * np.pi * ALPHA / (G_FERMI * M_E * T)


def test_couplings():
    s = SIN2W
    # Exact arithmetic on the same float: compare to 1e-15 relative.
    assert eves.couplings("e", False, s) == pytest.approx((2 * s + 0.5, 0.5), rel=1e-15)
    assert eves.couplings("mu", False, s) == pytest.approx((2 * s - 0.5, -0.5), rel=1e-15)
    assert eves.couplings("mu", True, s) == pytest.approx((2 * s - 0.5, 0.5), rel=1e-15)
    assert eves.couplings("tau", False, s) == eves.couplings("mu", False, s)
    assert eves.couplings("tau", True, s) == eves.couplings("mu", True, s)
    g_v, g_a = eves.couplings("e", True, s)
    assert (g_v, g_a) == eves.couplings("e", False, s)[:1] + (-0.5,)


@pytest.mark.parametrize(
    "args",
    [
        ("nu_e", False, SIN2W),
        ("E", False, SIN2W),
        ("e", "yes", SIN2W),
        ("e", False, 1.5),
        ("e", False, np.nan),
    ],
)
def test_couplings_bad_input(args):
    with pytest.raises(ValueError):
        eves.couplings(*args)


@pytest.mark.parametrize(
    "flavour, anti, ballpark",
    # Commonly quoted textbook magnitudes of sigma/E in cm^2/MeV.
    [("e", False, 9.2e-45), ("mu", False, 1.6e-45), ("mu", True, 1.3e-45)],
)
def test_total_cross_section_high_energy(flavour, anti, ballpark):
    E = 1e4  # MeV >> m_e
    g_v, g_a = eves.couplings(flavour, anti, SIN2W)
    # Integrating the bracket over 0 < T < E for E >> m_e:
    #   int (g_V+g_A)^2 dT = (g_V+g_A)^2 E,  int (g_V-g_A)^2 (1-T/E)^2 dT = (g_V-g_A)^2 E/3,
    # the m_e T / E^2 term gives O(m_e/E).  Hence
    #   sigma/E -> G_F^2 m_e / (2 pi) [(g_V+g_A)^2 + (g_V-g_A)^2 / 3].
    limit = (
        G_FERMI**2 * M_E / (2 * np.pi) * ((g_v + g_a) ** 2 + (g_v - g_a) ** 2 / 3) * HBARC2_MEV2_CM2
    )
    t_max = float(eves.t_max(E))
    sigma, _ = quad(
        lambda t: float(eves.dsigma_dT(E, t, flavour, anti, SIN2W)),
        0.0,
        t_max,
        epsabs=0.0,
        epsrel=1e-12,
    )
    # Corrections are O(m_e / E) = 5e-5: tolerance 2e-4 relative.
    assert sigma / E == pytest.approx(limit, rel=2e-4)
    # Textbook ballpark: the quoted figures use other sin^2 theta_W values and
    # radiative corrections; tree level at sin^2 = 0.23857 differs from them by
    # up to 6%, so the check is to 8% relative.
    assert sigma / E == pytest.approx(ballpark, rel=0.08)


def test_millicharge_term_rutherford_limit():
    E = E_PROMPT
    T = np.geomspace(1e-7, 1e-3, 9)  # 0.1 eV .. 1 keV, T/E <= 3.4e-5
    g_v, g_a = eves.couplings("mu", False, SIN2W)
    _, _, e = eves.dsigma_components(E, T, g_v, g_a)
    q = 3e-9
    limit = 2 * np.pi * ALPHA**2 * q**2 / (M_E * T**2) * HBARC2_MEV2_CM2
    # Relative deviation is T/E + m_e T/(2 E^2) <= 3.4e-5: tolerance 1e-4 relative.
    np.testing.assert_allclose(q**2 * e, limit, rtol=1e-4, atol=0)


def test_components_match_shifted_gv():
    rng = np.random.default_rng(1)
    E = rng.uniform(1.0, 52.8, size=200)
    T = rng.uniform(1e-6, 1.0, size=200) * eves.t_max(E)  # strictly inside kinematics
    for _ in range(20):
        # Charges spanning 1e-12 .. 1e-7 e, random signs.
        charges = dict(
            zip(
                eves.CHARGE_KEYS,
                rng.choice([-1, 1], 6) * 10 ** rng.uniform(-12, -7, 6),
                strict=True,
            )
        )
        for flavour, anti in [("e", False), ("mu", False), ("mu", True), ("tau", False)]:
            q_aa = charges[DIAGONAL[flavour]]
            q_tr2 = sum(charges[k] ** 2 for k in TRANSITIONS[flavour])
            g_v, g_a = eves.couplings(flavour, anti, SIN2W)
            c = _c(T)
            direct = _direct(E, T, g_v - c * q_aa, g_a, extra_gv2=(c**2) * q_tr2)
            got = eves.dsigma_dT(E, T, flavour, anti, SIN2W, charges)
            # Same algebra, different grouping: 1e-12 relative.
            np.testing.assert_allclose(got, direct, rtol=1e-12, atol=0)
            s, i, e = eves.dsigma_components(E, T, g_v, g_a)
            np.testing.assert_allclose(
                s + 2 * q_aa * i + (q_aa**2 + q_tr2) * e, direct, rtol=1e-12, atol=0
            )


def test_sm_and_irrelevant_charges():
    rng = np.random.default_rng(2)
    E = np.full(50, E_PROMPT)
    T = rng.uniform(1e-6, 1.0, size=50) * eves.t_max(E_PROMPT)
    g_v, g_a = eves.couplings("e", False, SIN2W)
    sm = eves.dsigma_dT(E, T, "e", False, SIN2W)
    # SM against the textbook formula: 1e-12 relative.
    np.testing.assert_allclose(sm, _direct(E, T, g_v, g_a), rtol=1e-12, atol=0)
    # nu_e does not see q_mumu, q_tautau, q_mutau (exact: same arithmetic).
    blind = {"q_mumu": 1e-8, "q_tautau": 1e-8, "q_mutau": 1e-8}
    np.testing.assert_array_equal(eves.dsigma_dT(E, T, "e", False, SIN2W, blind), sm)
    # z_eff multiplies (exact scaling by a power of two).
    np.testing.assert_array_equal(eves.dsigma_dT(E, T, "e", False, SIN2W, z_eff=4.0), 4 * sm)


def test_kinematic_end_point():
    E = np.array([0.1, 1.0, E_PROMPT, 52.8])
    t_max = eves.t_max(E)
    # Definition check: 1e-15 relative.
    np.testing.assert_allclose(t_max, 2 * E**2 / (M_E + 2 * E), rtol=1e-15, atol=0)
    g_v, g_a = eves.couplings("mu", True, SIN2W)
    above = eves.dsigma_components(E, t_max * (1 + 1e-9), g_v, g_a)
    below = eves.dsigma_components(E, t_max * (1 - 1e-9), g_v, g_a)
    for piece in above:
        assert np.all(piece == 0)
    s, i, e = below
    assert np.all(s > 0) and np.all(e > 0) and np.all(i != 0)
    zero_T = eves.dsigma_components(E, 0.0, g_v, g_a)
    for piece in zero_T:
        assert np.all(piece == 0)
    # Round trip: a few ulp, 1e-13 relative.
    np.testing.assert_allclose(eves.e_min(t_max), E, rtol=1e-13, atol=0)
    T = np.geomspace(1e-6, 50.0, 50)
    np.testing.assert_allclose(eves.t_max(eves.e_min(T)), T, rtol=1e-13, atol=0)


def test_broadcasting():
    E = np.linspace(5.0, 50.0, 4)[:, None]
    T = np.linspace(0.0, 60.0, 7)[None, :]
    s, i, e = eves.dsigma_components(E, T, 0.9, 0.5)
    assert s.shape == i.shape == e.shape == (4, 7)
    out = eves.dsigma_dT(E, T, "e", False, SIN2W, {"q_ee": 1e-9}, z_eff=np.ones(7))
    assert out.shape == (4, 7)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="-1"):
        eves.t_max(-1.0)
    with pytest.raises(ValueError):
        eves.e_min(np.array([1.0, -2.0]))
    with pytest.raises(ValueError):
        eves.dsigma_components(10.0, -0.1, 1.0, 0.5)
    with pytest.raises(ValueError):
        eves.dsigma_components(np.nan, 0.1, 1.0, 0.5)
    with pytest.raises(ValueError, match="q_xx"):
        eves.dsigma_dT(10.0, 0.1, "e", False, SIN2W, {"q_xx": 1e-9})
    with pytest.raises(ValueError):
        eves.dsigma_dT(10.0, 0.1, "sterile", False, SIN2W)
    with pytest.raises(ValueError):
        eves.dsigma_dT(10.0, 0.1, "e", False, SIN2W, z_eff=-1.0)
