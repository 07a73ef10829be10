"""Limits and sensitivities of the parameter families (docs/physics.md section 11).

* diagonal charge radii and diagonal NSI: two allowed pieces (the weak charge
  of the nu_a amplitude can flip sign), both inside the default ranges and both
  reported, the second one around the flip value;
* magnetic moments: a symmetric allowed set in mu;
* sin2w: never scanned beyond 0 <= sin2w <= 1;
* nu_tau-only parameters: unconstrained, not a huge interval;
* the millicharge results are unchanged: the q_ee intervals of mcscan 0.1.0
  (before the parameter families) are reproduced bit for bit, its q_ee x q_mumu
  scan to 1e-14 relative (the row kernels now use fused multiply-adds; their
  current bits are frozen too).
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from mcscan.api import limits as charge_limits
from mcscan.errors import InputError
from mcscan.families import limits, sensitivities
from mcscan.params import SPEC
from mcscan.physics.cevns import weak_charge
from mcscan.physics.families import QT_PER_CM2
from mcscan.physics.nuclei import nuclides
from mcscan.scans.families import family_limit
from mcscan.scans.grid import grid_scan
from mcscan.stats.families import family_coefficients


@pytest.fixture(scope="module")
def fcoefs(tables):
    return {d: family_coefficients(t, ("nuclear",)) for d, t in tables.items()}


def _flip(config, det, kind):
    """Abundance-weighted value of a diagonal parameter at which Q_a = -Q_W (one nuclide each)."""
    d = config.detector(det)
    vals, wts = [], []
    for n in nuclides(d.composition, d.rms_radius_fm):
        qw = weak_charge(n.Z, n.N, config.physics.sin2_theta_w)
        shift = {"r2": -n.Z * QT_PER_CM2, "eps_u": 2 * n.Z + n.N, "eps_d": n.Z + 2 * n.N}[kind]
        vals.append(-2.0 * qw / shift)
        wts.append(n.per_unit)
    return float(np.average(vals, weights=wts))


@pytest.mark.parametrize("param", ("r2_ee", "r2_mumu", "eps_u_ee", "eps_d_mumu"))
def test_diagonal_parameters_have_two_pieces(config, fcoefs, param):
    lim = family_limit([fcoefs["Xe"]], param, points=2001)
    lo, hi = SPEC[param].scan_range
    assert len(lim.regions) == 2
    assert not (lim.open_low or lim.open_high)
    (a0, a1), (b0, b1) = sorted(lim.regions)
    assert lo < a0 < a1 < b0 < b1 < hi                       # both inside the default range
    near_zero, far = ((a0, a1), (b0, b1)) if a0 < 0 < a1 else ((b0, b1), (a0, a1))
    assert near_zero[0] < 0 < near_zero[1]
    flip = _flip(config, "Xe", param.rsplit("_", 1)[0])
    # the flipped piece holds the flip value (the isotopes' flip points differ by < 2%)
    assert far[0] < flip < far[1]
    # the crossings are refined on the chi2 itself (Brent to 1e-6 of |x|): Delta chi2 = level
    # there to 1e-3, far finer than the grid (one step moves Delta chi2 by ~0.1)
    from mcscan.scans.families import family_chi2_function

    f = family_chi2_function([fcoefs["Xe"]], param)
    for x in (a0, a1, b0, b1):
        assert f(x) - lim.chi2_min == pytest.approx(lim.delta_chi2, abs=1e-3)


def test_moment_limit_is_symmetric(fcoefs):
    lim = family_limit([fcoefs["Ge"], fcoefs["Xe"]], "mu_mu")
    assert len(lim.regions) == 1
    lo, hi = lim.regions[0]
    assert lo < 0 < hi
    assert -lo == pytest.approx(hi, rel=1e-9)
    assert lim.unit == "mu_B"


def test_sin2w_stays_within_its_bounds(fcoefs):
    """With a level that allows everything the range grows to [0, 1] and no further."""
    lim = family_limit([fcoefs["Ge"]], "sin2w", level=1e9, points=101)
    assert lim.regions == [[0.0, 1.0]]
    assert not (lim.open_low or lim.open_high)
    lim = family_limit([fcoefs["Ge"]], "sin2w")
    (lo, hi), = lim.regions
    assert lo < 0.23857 < hi


def test_tau_only_parameters_are_refused_as_unconstrained(fcoefs):
    for p in ("r2_tautau", "mu_tau", "eps_u_tautau", "q_tautau"):
        with pytest.raises(InputError, match="unconstrained"):
            family_limit([fcoefs["CsI"]], p)


def test_tau_only_limits_are_reported_unconstrained(config, table_dir):
    # the function form answers as Analysis.limits and the CLI do: a limit marked
    # unconstrained, with the reason, and no interval
    lim = limits(config, ["Xe"], "mu_tau", tables_dir=table_dir)
    js = lim.to_json()
    assert js["unconstrained"] is True and "nu_tau" in js["reason"]
    assert lim.regions == []


def test_sensitivities_refuse_a_named_detector_without_the_channels(config, table_dir):
    with pytest.raises(InputError, match="detector Xe does not enable the 'electron' channel"):
        sensitivities(config, "moments", tables_dir=table_dir, detectors=["Xe"],
                      channels=("nuclear", "electron"))


def test_sensitivities_family_table(config, table_dir):
    sens = sensitivities(config, "moments", tables_dir=table_dir)
    assert sens.rows == ("CsI", "Xe", "Ge", "combined")
    assert sens.params == ("mu_e", "mu_mu", "mu_tau")
    assert sens.unconstrained == ("mu_tau",)
    for r in sens.rows:
        assert sens.limits.get((r, "mu_tau")) is None
        (lo, hi), = sens.limits[(r, "mu_e")].regions
        assert -lo == pytest.approx(hi, rel=1e-9)
    # combining detectors tightens every limit
    for p in ("mu_e", "mu_mu"):
        comb = sens.limits[("combined", p)].regions[0][1]
        assert all(comb < sens.limits[(r, p)].regions[0][1] for r in ("CsI", "Xe", "Ge"))
    text = sens.format_table()
    assert "mu_e [1e-10 mu_B]" in text and "unconstrained" in text
    js = sens.to_json()
    assert js["intervals"]["Xe"]["mu_tau"]["unconstrained"] is True
    assert js["units"]["mu_e"] == "mu_B"
    import json

    json.dumps(js, allow_nan=False)


def test_family_limits_charges_delegate_to_the_millicharge_pipeline(config, table_dir):
    a = limits(config, ["Ge"], "q_ee", tables_dir=table_dir)
    b = charge_limits(config, ["Ge"], "q_ee", tables_dir=table_dir)
    assert a.regions == b.regions


def test_family_limits_with_fixed_and_profiled(config, table_dir):
    """A radius with a moment fixed, and with the other flavour's radius profiled."""
    base = limits(config, ["Xe"], "r2_mumu", tables_dir=table_dir, points=801)
    fixed = limits(config, ["Xe"], "r2_mumu", tables_dir=table_dir, points=801,
                   fixed={"mu_mu": 2e-9})
    prof = limits(config, ["Xe"], "r2_mumu", tables_dir=table_dir, points=101,
                  profile=("r2_ee",))
    width = lambda lim: sum(b - a for a, b in lim.regions)  # noqa: E731
    # the moment adds events: the SM-like piece shifts; profiling can only widen the allowed set
    assert fixed.regions != base.regions
    assert width(prof) >= width(base) * (1 - 1e-3)
    assert prof.profile == ("r2_ee",)


# ---------------------------------------------------------------- millicharges unchanged

#: SHA-256 of the chi2 array (float64, C order) of the Xe q_ee x q_mumu scan, 101 x 101 points
#: on [-6e-8, 6e-8]^2, built-in configuration, from the row kernels with fused multiply-adds
#: (frozen regression value).  Last changed when the logarithm of the chi2 bin by bin came
#: from kernels._log1p instead of the C library's log1p: 126 of the 10201 points moved, by at
#: most 1.9e-15 relative (before: 490595a0...; earlier, when the chi2 of points beyond the
#: deviance series took the series in the bins within its range, 802ef0c1...).
GOLDEN_SCAN2_SHA256 = "7715b936dcec69b3b31f8f3b65b7b59a1b17f7050625b153f22461509af0c1ba"
#: Largest deviation from the 0.1.0 output (tests/data/golden_0_1_0.npz, before the fused
#: multiply-adds and the series beyond it): measured 2.0e-15 relative (chi2 > 1e-3) and
#: 1.1e-12 absolute.
SCAN2_VS_0_1_0 = dict(rtol=1e-14, atol=1e-11)
#: q_ee 90% C.L. intervals (e) of the built-in configuration, golden sens.json of the same
#: version (frozen regression values, full precision).
GOLDEN_Q_EE = {
    "CsI": [[-6.293954406957442e-09, 6.785331223677731e-09]],
    "Xe": [[-4.930430792462018e-09, 5.367426149125838e-09]],
    "Ge": [[-4.0154601081741626e-09, 4.897708033109908e-09]],
    "combined": [[-2.836173865955159e-09, 3.0772380988595812e-09]],
}


def test_millicharge_scan_is_bit_identical(coefs, golden_0_1_0, numpy_avx512):
    axis = np.linspace(-6e-8, 6e-8, 101)
    sc = grid_scan([coefs["Xe"]], ("q_ee", "q_mumu"), (axis, axis))
    if numpy_avx512:        # the tables of the frozen hash (tests/conftest.py, NUMPY_AVX512)
        assert hashlib.sha256(np.ascontiguousarray(sc.chi2).tobytes()).hexdigest() == GOLDEN_SCAN2_SHA256
    np.testing.assert_allclose(sc.chi2, golden_0_1_0("scan2"), **SCAN2_VS_0_1_0)


@pytest.mark.parametrize("row", tuple(GOLDEN_Q_EE))
def test_millicharge_q_ee_limits_are_bit_identical(config, table_dir, row, frozen):
    dets = ["CsI", "Xe", "Ge"] if row == "combined" else [row]
    lim = limits(config, dets, "q_ee", tables_dir=table_dir)
    frozen(lim.regions, GOLDEN_Q_EE[row])


def test_api_scan_any_family(config, table_dir, coefs):
    """Charges only: the millicharge grid scan itself (same bits); other families: the family scan."""
    from mcscan.families import scan

    axes = (np.linspace(-2e-8, 2e-8, 11), np.linspace(-1e-8, 1e-8, 13))
    a = scan(config, ["Ge"], ("q_ee", "q_mumu"), axes, tables_dir=table_dir)
    b = grid_scan([coefs["Ge"]], ("q_ee", "q_mumu"), axes)
    assert np.array_equal(a.chi2, b.chi2)
    c = scan(config, ["Ge"], ("q_ee", "r2_ee"), (axes[0], np.linspace(-6e-31, 2e-31, 13)),
             tables_dir=table_dir, fixed={"sin2w": 0.24})
    assert c.chi2.shape == (11, 13) and np.all(np.isfinite(c.chi2)) and np.all(c.converged)
    assert c.base.size == len(SPEC) and c.base[list(SPEC).index("sin2w")] == 0.24
    with pytest.raises(InputError, match="unknown parameter"):
        scan(config, ["Ge"], ("q_ee", "r2_ex"), axes, tables_dir=table_dir)


def test_electron_channel_enters_the_family_limits(csi_electron_table):
    """CsI with EvES: the moment term per electron tightens mu_e; quark NSI are untouched."""
    nuc = family_coefficients(csi_electron_table, ("nuclear",))
    both = family_coefficients(csi_electron_table, ("nuclear", "electron"))
    a = family_limit([nuc], "mu_e").regions[0][1]
    b = family_limit([both], "mu_e").regions[0][1]
    assert b < a * (1 - 1e-4)
    a = family_limit([nuc], "eps_u_emu").regions
    b = family_limit([both], "eps_u_emu").regions
    # EvES adds (NSI-independent) events to the data and the prediction alike: nearly the same
    assert b[0][1] == pytest.approx(a[0][1], rel=1e-2)


#: Family limits as family_limit gave them before it ran the steps of the charges' limits
#: (mcscan.scans.limits._limit_steps): frozen regression values, full precision.  A narrow
#: piece refined by a local scan (r2_mumu, eps_u_ee, sin2w over [0, 0.1]), a range widened
#: six times (r2_ee), one widened up to the bounds of sin2w, where the set is not open.
FROZEN_FAMILY_LIMITS = {
    'r2_mumu_pieces': ([[-6.226889480491835e-31, -5.509420847556673e-31],
                        [-3.225945924602204e-32, 3.950769452878313e-32]], False, False,
                       6.179474644860198e-40),
    'r2_ee_widened': ([[-7.440673548789539e-32, 7.530622598193564e-32]], False, False, 0.0),
    'sin2w_bounds': ([[0.0, 1.0]], False, False, 2.1723135603195873e-35),
    'sin2w_range_end': ([[0.0996222304309719, 0.1]], False, True, 269.079716798615),
    'eps_u_ee_pieces': ([[-0.055315645013503376, 0.05248842984066578],
                         [0.35176253657754364, 0.45956131711470327]], False, False,
                        3.741870594129074e-50),
}
FROZEN_FAMILY_CASES = {
    "r2_mumu_pieces": ("Xe", "r2_mumu", dict(points=801)),
    "r2_ee_widened": ("Ge", "r2_ee", dict(xrange=(-1e-32, 1e-32), extend=6)),
    "sin2w_bounds": ("Ge", "sin2w", dict(xrange=(0.2, 0.3), level=1e4, extend=6)),
    "sin2w_range_end": ("CsI", "sin2w", dict(xrange=(0.0, 0.1), extend=0)),
    "eps_u_ee_pieces": ("Xe", "eps_u_ee", {}),
}


@pytest.mark.parametrize("case", tuple(FROZEN_FAMILY_CASES))
def test_family_limits_are_bit_identical(fcoefs, case, frozen):
    det, param, kw = FROZEN_FAMILY_CASES[case]
    lim = family_limit([fcoefs[det]], param, **kw)
    got = (lim.regions, lim.open_low, lim.open_high, lim.chi2_min)
    # chi2_min: 0 up to rounding (1e-50 to 1e-35) in four of the cases, 1e-30 absolute
    frozen(got, FROZEN_FAMILY_LIMITS[case], atol=1e-30)
    assert type(lim.open_low) is bool and type(lim.open_high) is bool


def test_family_limit_profiled_over_a_charge(config, table_dir):
    # a charge has no range of its own: the configuration's is used (family_limit asked
    # every profiled parameter for its own range first, and refused the charges)
    lim = limits(config, ["Ge"], "sin2w", tables_dir=table_dir, profile=("q_mumu",), points=201)
    ref = limits(config, ["Ge"], "sin2w", tables_dir=table_dir, points=201)
    (lo, hi), = lim.regions
    (lo0, hi0), = ref.regions
    # profiling can only widen the interval (1e-9 absolute in sin2w: the crossings' precision)
    assert lo <= lo0 + 1e-9 and hi >= hi0 - 1e-9
    assert lim.profile == ("q_mumu",) and np.all(np.isfinite(lim.profile_best["q_mumu"]))
