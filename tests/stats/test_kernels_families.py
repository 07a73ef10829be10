"""Kernels of the parameter families against their NumPy twin (docs/physics.md section 11).

The twin is :func:`mcscan.stats.families.chi2_all`: the NumPy recombination of
the quadratic forms, then the profile of :func:`mcscan.stats.reference.chi2`.
The row kernel warm-starts along rows and takes the last chi2 from a series,
so it agrees with the twin to the convergence tolerance (1e-9 relative, as
for the millicharge row kernel); serial and parallel runs, block sizes and
subsets of rows agree bit for bit.
"""
from __future__ import annotations

import numpy as np
import pytest

from mcscan.params import ALL_PARAMS
from mcscan.scans.families import family_grid_scan, family_points_chi2
from mcscan.scans.grid import ScanSettings, grid_scan, row_segments
from mcscan.stats import kernels_families as kf
from mcscan.stats.families import (
    chi2_all,
    excess_all,
    family_coefficients,
    reduced_form,
    row_polynomial,
    row_polynomials,
)
from mcscan.stats.reference import coefficients

RTOL = 1e-9
ATOL = 1e-15
PULL_ATOL = 1e-9


@pytest.fixture(scope="module", autouse=True)
def _warm():
    kf.warm_up(True)
    kf.warm_up(False)


@pytest.fixture(scope="module")
def fcoefs(tables):
    return {d: family_coefficients(t, ("nuclear",)) for d, t in tables.items()}


def _points(fc, params, axes, flat, fixed=None):
    th = np.repeat(fc.origin[None, :], flat.size, axis=0)
    for k, v in (fixed or {}).items():
        th[:, ALL_PARAMS.index(k)] = v
    for p, a, i in zip(params, axes, np.unravel_index(flat, tuple(a.size for a in axes))):
        th[:, ALL_PARAMS.index(p)] = a[i]
    return th


def _check_twin(sc, fcs, fixed=None, n=300, seed=1):
    flat = np.random.default_rng(seed).choice(sc.chi2.size, size=min(n, sc.chi2.size), replace=False)
    th = _points(fcs[0], sc.params, sc.axes, flat, fixed)
    ref = [chi2_all(c, th) for c in fcs]
    assert np.all(np.isfinite(sc.chi2)) and np.all(sc.converged)
    np.testing.assert_allclose(sc.chi2.ravel()[flat], sum(r[0] for r in ref), rtol=RTOL, atol=ATOL)
    for c, r in zip(fcs, ref):
        a, b = sc.pulls[c.detector]
        np.testing.assert_allclose(a.ravel()[flat], r[1], rtol=0, atol=PULL_ATOL)
        np.testing.assert_allclose(b.ravel()[flat], r[2], rtol=0, atol=PULL_ATOL)


# a pair with a cross term (same flavour), one without, and sin2w with a charge radius
CASES = [
    (("r2_ee", "eps_u_ee"), ((-8e-31, 3e-31), (-0.2, 0.6)), {"mu_mu": 5e-10}),
    (("mu_e", "eps_d_mumu"), ((-3e-9, 3e-9), (-0.1, 0.45)), {"q_ee": 2e-9}),
    (("sin2w", "r2_mumu"), ((0.2, 0.28), (-2e-31, 1e-31)), {}),
]


@pytest.mark.parametrize("params,ranges,fixed", CASES, ids=["-".join(c[0]) for c in CASES])
def test_rows_against_twin_and_builds(fcoefs, params, ranges, fixed):
    fcs = [fcoefs["Xe"], fcoefs["Ge"]]
    axes = tuple(np.linspace(lo, hi, n) for (lo, hi), n in zip(ranges, (41, 53)))
    sc = family_grid_scan(fcs, params, axes, fixed=fixed, parallel=True)
    _check_twin(sc, fcs, fixed)
    ser = family_grid_scan(fcs, params, axes, fixed=fixed, parallel=False, chunk=100)
    assert np.array_equal(sc.chi2, ser.chi2)
    assert np.array_equal(sc.pulls["Xe"][0], ser.pulls["Xe"][0])


def test_cross_term_is_used(fcoefs):
    """Same-flavour pairs have cxy != 0 (the test above then exercises the cross term)."""
    fc = fcoefs["Xe"]
    i, j = ALL_PARAMS.index("r2_ee"), ALL_PARAMS.index("eps_u_ee")
    assert np.all(row_polynomial(fc, fc.origin, i, j)[5] != 0.0)
    k = ALL_PARAMS.index("eps_d_mumu")
    assert np.all(row_polynomial(fc, fc.origin, i, k)[5] == 0.0)


def test_row_polynomials_closed_form_and_batch_independent(fcoefs):
    """The row polynomials of many base points at once: against the quadratic form itself
    (excess_all at a few points of each row's plane, 1e-12 relative), each row the same
    bits as a call with its base point alone or among other base points (the planes of a
    chunk), and a parameter at its SM value changes no bit."""
    fc = fcoefs["Xe"]
    names = ("q_ee", "r2_ee", "eps_u_ee", "eps_d_ee", "mu_e", "q_mumu")
    i, j = ALL_PARAMS.index("r2_ee"), ALL_PARAMS.index("eps_u_ee")
    rng = np.random.default_rng(3)
    scale = {"q_ee": 2e-8, "r2_ee": 3e-31, "eps_u_ee": 0.3, "eps_d_ee": 0.2, "mu_e": 3e-9,
             "q_mumu": 2e-8}
    bases = np.repeat(fc.origin[None, :], 9, axis=0)
    for k, p in enumerate(names):
        bases[:, ALL_PARAMS.index(p)] += rng.normal(size=9) * scale[p]
    bases[2, ALL_PARAMS.index("q_mumu")] = fc.origin[ALL_PARAMS.index("q_mumu")]   # at SM in one row
    E0, cx1, cx2, cy1, cy2, cxy = row_polynomials(fc, bases, i, j)
    for m in range(bases.shape[0]):
        x, y = 2e-31, -0.1
        th = np.repeat(bases[m][None, :], 3, axis=0)
        th[:, i] = fc.origin[i] + np.array([0.0, x, 0.0])
        th[:, j] = fc.origin[j] + np.array([0.0, 0.0, y])
        direct = excess_all(fc, th)
        poly = [E0[m], E0[m] + x * cx1[m] + x * x * cx2, E0[m] + y * cy1[m] + y * y * cy2]
        for got, want in zip(poly, direct):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.max(np.abs(fc.S)))
        alone = row_polynomial(fc, bases[m], i, j)
        mixed = row_polynomials(fc, np.concatenate([bases[m:m + 1], bases[::-1]]), i, j)
        for k, whole in enumerate((E0, cx1, cx2, cy1, cy2, cxy)):
            row = whole[m] if whole.ndim == 2 else whole
            assert np.array_equal(alone[k], row), (m, k)                          # exact
            assert np.array_equal((mixed[k][0] if whole.ndim == 2 else mixed[k]), row), (m, k)
    # a parameter at its SM value in every row: the same bits as without it in the batch
    q = ALL_PARAMS.index("q_mumu")
    cut = bases.copy()
    cut[:, q] = fc.origin[q]
    with_zero = row_polynomials(fc, cut, i, j)
    again = row_polynomials(fc, np.concatenate([cut, bases[:1]]), i, j)
    for k in (0, 1, 3):
        assert np.array_equal(with_zero[k], again[k][:-1]), k                      # exact
    # the restricted form of the same base points: the same fixed part
    form = reduced_form(fc, bases[4], [i, j])
    assert np.array_equal(form[0], E0[4])
    assert np.array_equal(form[1][:, 0], cx1[4]) and np.array_equal(form[1][:, 1], cy1[4])


def test_rows_any_block_size_and_subset(fcoefs):
    """Bitwise: lanes 1, 16, 64 and a subset of rows give the same numbers (cross term)."""
    fc = fcoefs["Ge"]
    i, j = ALL_PARAMS.index("q_ee"), ALL_PARAMS.index("r2_ee")
    poly = row_polynomial(fc, fc.origin, i, j)
    xs = np.linspace(-2e-8, 2e-8, 37)
    ys = np.linspace(-6e-31, 2e-31, 29)
    row, y0, cnt, o0 = row_segments(xs.size, ys.size, segment=7)
    res = []
    for lanes, parallel in ((1, False), (16, True), (64, True), (16, False)):
        out = (np.empty(xs.size * ys.size), np.empty(xs.size * ys.size),
               np.empty(xs.size * ys.size), np.empty(xs.size * ys.size, dtype=bool))
        kf.chi2_rows_poly(fc.S, fc.B, fc.D, poly, xs[row], ys, y0, cnt, o0, out=out,
                          lanes=lanes, parallel=parallel)
        res.append(out)
    for r in res[1:]:
        for a, b in zip(res[0], r):
            assert np.array_equal(a, b)
    sub = np.argsort(o0)[5:17]          # 12 segments that are neighbours in the output
    n = int(cnt[sub].sum())
    out = (np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=bool))
    kf.chi2_rows_poly(fc.S, fc.B, fc.D, poly, xs[row[sub]], ys, y0[sub], cnt[sub],
                      o0[sub] - o0[sub][0], out=out)
    lo = o0[sub][0]
    assert np.array_equal(out[0], res[0][0][lo:lo + n])


@pytest.mark.parametrize("parallel", (True, False))
def test_excess_points_against_twin(fcoefs, parallel):
    fc = fcoefs["CsI"]
    rng = np.random.default_rng(5)
    th = np.repeat(fc.origin[None, :], 40, axis=0)
    th[:, :6] = rng.normal(size=(40, 6)) * 1e-8
    th[:, ALL_PARAMS.index("r2_ee")] = rng.normal(size=40) * 2e-31
    th[:, ALL_PARAMS.index("mu_mu")] = rng.normal(size=40) * 2e-9
    th[:, ALL_PARAMS.index("sin2w")] += rng.normal(size=40) * 0.02
    th[:, ALL_PARAMS.index("eps_u_mumu")] = rng.normal(size=40) * 0.1
    chi, ok, pulls = family_points_chi2([fc], th, parallel=parallel)
    ref = chi2_all(fc, th)
    assert np.all(ok)
    # both start from zero pulls and run the same iteration: rounding only
    np.testing.assert_allclose(chi, ref[0], rtol=1e-12, atol=ATOL)
    np.testing.assert_allclose(pulls["CsI"][0], ref[1], rtol=0, atol=1e-12)


def test_charges_through_the_family_kernels_match_the_millicharge_scan(tables, fcoefs):
    """q_ee x q_mumu on Xe: the family scan reproduces the millicharge grid_scan (1e-9)."""
    axes = (np.linspace(-2e-8, 2e-8, 31), np.linspace(-1e-8, 1e-8, 33))
    a = grid_scan([coefficients(tables["Xe"])], ("q_ee", "q_mumu"), axes)
    b = family_grid_scan([fcoefs["Xe"]], ("q_ee", "q_mumu"), axes)
    np.testing.assert_allclose(b.chi2, a.chi2, rtol=RTOL, atol=1e-12)


def test_twin_settings_pass_through(fcoefs):
    fc = fcoefs["Ge"]
    s = ScanSettings(signal_pull=0.2, background_pull=0.05)
    th = fc.origin.copy()
    th[ALL_PARAMS.index("mu_e")] = 3e-9
    a = family_points_chi2([fc], th[None, :], settings=s)[0]
    b = chi2_all(fc, th, **s.kwargs())[0]
    c = chi2_all(fc, th)[0]
    np.testing.assert_allclose(a, b, rtol=1e-12)
    assert abs(b[0] - c[0]) > 1e-6 * c[0]


@pytest.mark.parametrize("params,ranges,fixed", CASES, ids=["-".join(c[0]) for c in CASES])
def test_rows_and_points_with_observed_data_against_twin(fcoefs, params, ranges, fixed):
    # Observed counts D != S + B: the kernels' T - D carries the data term S + B - D
    # (it was missing from the family kernels), so they must still match the twin.
    import dataclasses

    rng = np.random.default_rng(7)
    fcs = [dataclasses.replace(fcoefs[d], D=rng.poisson(fcoefs[d].D).astype(float))
           for d in ("Xe", "Ge")]
    axes = tuple(np.linspace(lo, hi, n) for (lo, hi), n in zip(ranges, (23, 31)))
    sc = family_grid_scan(fcs, params, axes, fixed=fixed, parallel=True)
    _check_twin(sc, fcs, fixed, n=200)
    th = _points(fcs[0], params, axes, np.arange(0, sc.chi2.size, 37), fixed)
    for c in fcs:
        ex = chi2_all(c, th)
        got = kf.chi2_excess(c.S, c.B, c.D, np.stack([_excess(c, t) for t in th]))
        np.testing.assert_allclose(got[0], ex[0], rtol=RTOL, atol=ATOL)


def _excess(fc, theta):
    from mcscan.stats.families import excess_all

    return excess_all(fc, theta[None, :])[0]
