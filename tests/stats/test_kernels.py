"""numba kernels against their NumPy twin; grid scans and limits built on them.

The reference for every kernel number is :func:`mcscan.stats.reference.chi2` (the
NumPy twin, same iteration); the reference for the limits is a root of the
twin's chi2 found here with scipy, and scipy's chi2 quantiles.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from mcscan.stats import kernels

from mcscan.stats import reference as model
from mcscan.config.load import PARAMS, load_config
from mcscan.errors import InputError
from mcscan.scans.limits import allowed_intervals, delta_chi2_level, limit_1d
from mcscan.stats.reference import Coefficients
from mcscan.api import build_tables, load_coefficients
from mcscan.scans.grid import chi2_function, grid_scan

CASES = ("CsI", "Xe", "Ge", "CsI+electron")
TRANSITIONS = [PARAMS.index(p) for p in ("q_emu", "q_etau", "q_mutau")]


@pytest.fixture(scope="session", autouse=True)
def _warm_kernels():
    kernels.warm_up(True)
    kernels.warm_up(False)


@pytest.fixture(scope="module")
def coefs(tmp_path_factory):
    """{case: Coefficients} from tables built once for this module."""
    tables = tmp_path_factory.mktemp("kernel_tables")
    cfg = load_config()
    build_tables(cfg, None, tables)
    out = {c.detector: c for c in load_coefficients(cfg, None, tables)}
    (both,) = load_coefficients(cfg, ["CsI"], tables, channels=("nuclear", "electron"))
    out["CsI+electron"] = both
    return out


@pytest.fixture(scope="module")
def theta():
    """1000 points: all six charges, log-uniform |q| in 1e-11..1e-7 e, random signs."""
    rng = np.random.default_rng(1)
    mag = 10.0 ** rng.uniform(-11.0, -7.0, size=(1000, 6))
    return mag * rng.choice([-1.0, 1.0], size=(1000, 6))


IMPLS = {
    "numpy": model.chi2,
    "serial": lambda c, th: kernels.chi2_points(c, th, parallel=False),
    "parallel": lambda c, th: kernels.chi2_points(c, th, parallel=True),
}


def _all(coef, th):
    """chi2, a, b, iterations of the twin, the serial and the parallel kernel."""
    return {name: f(coef, th) for name, f in IMPLS.items()}


# ------------------------------------------------------------ kernel vs twin


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("parallel", [True, False], ids=["parallel", "serial"])
def test_kernel_matches_numpy_twin(coefs, theta, case, parallel):
    c = coefs[case]
    x0, a0, b0, it0 = model.chi2(c, theta)
    x1, a1, b1, it1 = kernels.chi2_points(c, theta, parallel=parallel)
    # Same iteration, other summation order: chi2 agrees to 1e-9 relative.
    np.testing.assert_allclose(x1, x0, rtol=1e-9, atol=0)
    # Pulls are converged to steps < 1e-10 (tol); the two may stop one step
    # apart, so 1e-9 absolute.
    np.testing.assert_allclose(a1, a0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(b1, b0, rtol=0, atol=1e-9)
    assert np.all(it0 > 0) and np.all(it1 > 0)
    assert np.max(np.abs(it1 - it0)) <= 1
    assert np.all(x1 >= 0.0) and np.all(x0 >= 0.0)
    # The sample must reach the interesting region, not only chi2 ~ 0.
    assert np.max(x0) > 10.0


@pytest.mark.parametrize("case", CASES)
def test_serial_equals_parallel_bitwise(coefs, theta, case):
    s = kernels.chi2_points(coefs[case], theta, parallel=False)
    p = kernels.chi2_points(coefs[case], theta, parallel=True)
    for u, v in zip(s, p):
        # Each point is computed alone: bit-identical, no tolerance.
        assert np.array_equal(u, v)


@pytest.mark.parametrize("case", CASES)
def test_batch_size_does_not_change_points(coefs, theta, case):
    whole = kernels.chi2_points(coefs[case], theta)
    part = kernels.chi2_points(coefs[case], theta[17:50])
    for u, v in zip(whole, part):
        assert np.array_equal(u[17:50], v)  # per-point computation: bit-identical


@pytest.mark.parametrize("case", CASES)
def test_asimov_point_is_zero(coefs, case):
    for impl, (x, a, b, it) in _all(coefs[case], np.zeros((3, 6))).items():
        # Asimov data: chi2(0) = 0 up to rounding, abs 1e-9.
        assert np.all(np.abs(x) <= 1e-9), impl
        assert np.all(np.abs(a) <= 1e-12) and np.all(np.abs(b) <= 1e-12), impl  # pulls stay at 0
        assert np.all(it > 0), impl


@pytest.mark.parametrize("case", CASES)
def test_transition_sign_flip_symmetry(coefs, theta, case):
    flipped = theta.copy()
    flipped[:, TRANSITIONS] *= -1.0
    other = _all(coefs[case], flipped)
    for impl, (x, _, _, _) in _all(coefs[case], theta).items():
        y = other[impl][0]
        # Transition charges enter squared only: equal to 1e-12 relative.
        np.testing.assert_allclose(y, x, rtol=1e-12, atol=0, err_msg=impl)


@pytest.mark.parametrize("case", ["CsI", "Xe", "Ge"])
def test_diagonal_sign_matters(coefs, case):
    # Counter-check of the symmetry test: a diagonal charge interferes with Q_W.
    th = np.zeros((2, 6))
    th[0, 0], th[1, 0] = 5e-9, -5e-9
    x = model.chi2(coefs[case], th)[0]
    assert abs(x[0] - x[1]) > 1e-3 * max(x)


@pytest.mark.parametrize("case", CASES)
def test_finite_over_extreme_magnitudes(coefs, case):
    mags = np.logspace(-14.0, -3.0, 23)
    rows = []
    for s in (1.0, -1.0):
        for k in range(6):
            t = np.zeros((mags.size, 6))
            t[:, k] = s * mags
            rows.append(t)
        rows.append(s * mags[:, None] * np.ones(6))          # all six at once
    th = np.concatenate(rows)
    for impl, (x, a, b, _) in _all(coefs[case], th).items():
        assert np.all(np.isfinite(x)), impl
        assert np.all(np.isfinite(a)) and np.all(np.isfinite(b)), impl
        assert np.all(x >= 0.0), impl


@pytest.mark.parametrize("case", CASES)
def test_never_nan_wide_random(coefs, case):
    rng = np.random.default_rng(1)
    th = 10.0 ** rng.uniform(-14.0, -3.0, size=(500, 6)) * rng.choice([-1.0, 1.0], size=(500, 6))
    th[rng.random((500, 6)) < 0.3] = 0.0
    for impl, (x, a, b, _) in _all(coefs[case], th).items():
        assert not np.any(np.isnan(x)), impl
        assert not np.any(np.isnan(a)) and not np.any(np.isnan(b)), impl
        assert np.all(x >= 0.0), impl


@pytest.mark.parametrize("case", CASES)
def test_converged_where_it_matters(coefs, case):
    # Over the configured ranges every profile converges.  limit_1d may widen
    # a range up to 127x: there a profile may stall (the signal pull pinned at
    # a = -1 by rounding) but only where chi2 is far above any C.L. level.
    cfg = load_config()
    for widen in (1, 127):
        th = np.zeros((6 * 81, 6))
        for k, p in enumerate(PARAMS):
            lo, hi = cfg.analysis.ranges[p]
            th[k * 81:(k + 1) * 81, k] = np.linspace(widen * lo, widen * hi, 81)
        for impl, (x, _, _, it) in _all(coefs[case], th).items():
            if widen == 1:
                assert np.all(it > 0), impl
            else:
                assert np.all(x[it <= 0] > 100.0), impl
                assert np.all(np.isfinite(x)), impl


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_charges_refused(coefs, bad):
    th = np.zeros((2, 6))
    th[1, 4] = bad
    with pytest.raises(InputError, match="q_etau"):
        kernels.chi2_points(coefs["Ge"], th)
    with pytest.raises(InputError, match="q_etau"):
        model.chi2(coefs["Ge"], th)


def test_wrong_shape_refused(coefs):
    with pytest.raises(InputError, match="length 6"):
        kernels.chi2_points(coefs["Ge"], np.zeros((3, 5)))


# ------------------------------------------------------------ synthetic tables


def _synthetic(S, B, *, L=None, Q=None):
    S = np.asarray(S, dtype=float)
    B = np.asarray(B, dtype=float)
    nb = S.size
    if L is None:
        L = np.zeros((6, nb))
        L[0] = 1e9 * S                               # q_ee interferes, raising N
        L[1] = 0.5e9 * S
    if Q is None:
        Q = np.zeros((6, nb))
        Q[[0, 1, 3, 4, 5]] = 1e18 * np.maximum(S, 1.0)
    return Coefficients("synthetic", ("nuclear",), S, L, Q, B, S + B,
                        np.arange(nb + 1, dtype=float), "0" * 64)


_SYN_THETA = np.concatenate([
    np.zeros((1, 6)),
    np.diag([2e-9, -1e-9, 0.0, 3e-9, -3e-9, 1e-9]),
    10.0 ** np.random.default_rng(1).uniform(-12, -7, (40, 6)),
])


@pytest.mark.parametrize("impl", ["numpy", "serial", "parallel"])
def test_zero_background(impl):
    c = _synthetic([100.0, 50.0, 20.0, 5.0], [0.0, 0.0, 0.0, 0.0])
    x, a, b, it = IMPLS[impl](c, _SYN_THETA)
    assert np.all(np.isfinite(x)) and np.all(x >= 0.0)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    assert np.all(it > 0)
    # Twin and kernels agree here too (1e-9 relative).
    np.testing.assert_allclose(x, model.chi2(c, _SYN_THETA)[0], rtol=1e-9, atol=0)


def test_zero_background_from_config(tmp_path):
    cfg = load_config(overrides={"detectors": {"Ge": {"background_ckkd": 0.0}}})
    build_tables(cfg, ["Ge"], tmp_path)
    (c,) = load_coefficients(cfg, ["Ge"], tmp_path)
    assert np.all(c.B == 0.0)
    rng = np.random.default_rng(1)
    th = 10.0 ** rng.uniform(-11.0, -7.0, size=(200, 6)) * rng.choice([-1.0, 1.0], size=(200, 6))
    res = _all(c, th)
    for impl, (x, _, _, it) in res.items():
        assert np.all(np.isfinite(x)) and np.all(x >= 0.0), impl
        assert np.all(it > 0), impl
        np.testing.assert_allclose(x, res["numpy"][0], rtol=1e-9, atol=0)  # twin agreement


@pytest.mark.parametrize("impl", ["numpy", "serial", "parallel"])
def test_empty_bin(impl):
    # Bin 2 has S = B = 0 (D = 0) and no charge response: it must add nothing.
    S, B = [100.0, 50.0, 0.0, 5.0], [10.0, 10.0, 0.0, 10.0]
    L = np.zeros((6, 4))
    L[0] = 1e9 * np.array(S)
    Q = np.zeros((6, 4))
    Q[[0, 1, 3, 4, 5]] = 1e18 * np.array(S)
    c = _synthetic(S, B, L=L, Q=Q)
    full = _synthetic(np.delete(S, 2), np.delete(B, 2), L=np.delete(L, 2, 1), Q=np.delete(Q, 2, 1))
    x, a, b, it = IMPLS[impl](c, _SYN_THETA)
    assert np.all(np.isfinite(x)) and np.all(x >= 0.0)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    assert np.all(it > 0)
    # Same chi2 as without the empty bin (1e-9 relative).
    np.testing.assert_allclose(x, model.chi2(full, _SYN_THETA)[0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("impl", ["numpy", "serial", "parallel"])
def test_empty_bin_with_charge_response(impl):
    # D = 0 in bin 2, but a charge can put events there (chi2 term 2 T).
    c = _synthetic([100.0, 50.0, 0.0, 5.0], [10.0, 10.0, 0.0, 10.0])
    x, a, b, it = IMPLS[impl](c, _SYN_THETA)
    assert np.all(np.isfinite(x)) and np.all(x >= 0.0)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    assert np.all(it > 0)


@pytest.mark.parametrize("impl", [
    "numpy", "serial", "parallel"])
def test_zero_background_clipped_counts_not_nan(impl):
    # N = S (1 - q/1e-9)^2 vanishes at q_ee = 1e-9 (clipped at 0) with B = 0 and
    # D > 0: the deviance is infinite there, never NaN.
    S = np.array([100.0, 50.0, 20.0])
    L = np.zeros((6, 3))
    L[0] = -2e9 * S
    Q = np.zeros((6, 3))
    Q[0] = 1e18 * S
    c = _synthetic(S, np.zeros(3), L=L, Q=Q)
    th = np.zeros((2, 6))
    th[:, 0] = [1e-9, 0.5e-9]
    x, _, _, _ = IMPLS[impl](c, th)
    assert not np.any(np.isnan(x))
    assert x[0] > x[1] > 0.0


# ------------------------------------------------------------ grid scans


def _twin_grid(clist, params, axes, fixed=None):
    """chi2 of the twin at every grid point, summed over detectors (ij order)."""
    base = np.zeros(6)
    for k, v in (fixed or {}).items():
        base[PARAMS.index(k)] = v
    mesh = np.meshgrid(*axes, indexing="ij")
    th = np.repeat(base[None, :], mesh[0].size, axis=0)
    for p, m in zip(params, mesh):
        th[:, PARAMS.index(p)] = m.ravel()
    return sum(model.chi2(c, th)[0] for c in clist).reshape(mesh[0].shape)


def test_grid_scan_1d_matches_twin(coefs):
    x = np.linspace(-2e-8, 3e-8, 41)
    c = coefs["Ge"]
    sc = grid_scan([c], ("q_ee",), (x,), fixed={"q_mumu": 1e-9})
    assert sc.chi2.shape == (41,)
    assert np.all(sc.converged)
    np.testing.assert_allclose(sc.chi2, _twin_grid([c], ("q_ee",), (x,), {"q_mumu": 1e-9}),
                               rtol=1e-9, atol=1e-12)  # twin, 1e-9 relative
    th = np.zeros((x.size, 6))
    th[:, 0] = x
    th[:, 1] = 1e-9
    _, a, b, _ = model.chi2(c, th)
    np.testing.assert_allclose(sc.pulls["Ge"][0], a, rtol=0, atol=1e-9)  # pulls, 10 x Newton tol
    np.testing.assert_allclose(sc.pulls["Ge"][1], b, rtol=0, atol=1e-9)
    # Delta chi2 is taken against the grid minimum.
    assert sc.chi2_min == np.min(sc.chi2)
    assert np.min(sc.delta_chi2) == 0.0


@pytest.mark.parametrize("case", ["Ge", "CsI+electron"])
@pytest.mark.parametrize("kernel", ["rows", "points"])
def test_grid_scan_2d_matches_twin(coefs, case, kernel):
    # Non-square, asymmetric axes: a transposed result cannot pass.
    x = np.linspace(-1e-8, 2e-8, 9)
    y = np.linspace(-3e-8, 1e-8, 7)
    c = coefs[case]
    sc = grid_scan([c], ("q_ee", "q_emu"), (x, y), fixed={"q_mutau": 2e-9}, kernel=kernel)
    assert sc.chi2.shape == (9, 7)
    assert np.all(sc.converged)
    np.testing.assert_allclose(sc.chi2, _twin_grid([c], ("q_ee", "q_emu"), (x, y), {"q_mutau": 2e-9}),
                               rtol=1e-9, atol=1e-12)  # twin, 1e-9 relative


def test_grid_scan_chunking_and_threads_do_not_matter(coefs):
    x = np.linspace(-1e-8, 2e-8, 13)
    y = np.linspace(-3e-8, 1e-8, 11)
    c = [coefs["Xe"]]
    ref = grid_scan(c, ("q_mumu", "q_etau"), (x, y))
    for kw in ({"chunk": 7}, {"parallel": False}, {"chunk": 1, "parallel": False}):
        other = grid_scan(c, ("q_mumu", "q_etau"), (x, y), **kw)
        assert np.array_equal(other.chi2, ref.chi2), kw   # per-point: bit-identical
        assert np.array_equal(other.converged, ref.converged), kw


def test_combined_is_sum_of_detectors(coefs):
    x = np.linspace(-8e-9, 8e-9, 9)
    y = np.linspace(-2e-8, 2e-8, 5)
    names = ("CsI", "Xe", "Ge")
    both = grid_scan([coefs[n] for n in names], ("q_ee", "q_emu"), (x, y))
    single = [grid_scan([coefs[n]], ("q_ee", "q_emu"), (x, y)) for n in names]
    # Independent pulls: the sum of three chi2, equal to 1e-12 relative (rounding of the sum).
    np.testing.assert_allclose(both.chi2, sum(s.chi2 for s in single), rtol=1e-12, atol=1e-12)
    assert both.detectors == names
    for n, s in zip(names, single):
        for u, v in zip(both.pulls[n], s.pulls[n]):
            np.testing.assert_allclose(u, v, rtol=0, atol=1e-12)  # same profile per detector
    assert both.table_hashes == tuple(coefs[n].table_hash for n in names)


def test_chi2_function_is_twin(coefs):
    f = chi2_function([coefs["Ge"], coefs["Xe"]], "q_mumu", fixed={"q_ee": 1e-9})
    for v in (-3e-9, 0.0, 4e-9):
        expect = _twin_grid([coefs["Ge"], coefs["Xe"]], ("q_mumu",), (np.array([v]),), {"q_ee": 1e-9})[0]
        assert f(v) == pytest.approx(expect, rel=1e-12, abs=1e-15)  # same twin call


@pytest.mark.parametrize("kwargs, pattern", [
    ({"params": ("q_ee",), "axes": (np.array([1e-9, 0.0, 2e-9]),)}, "increase"),
    ({"params": ("q_ee",), "axes": (np.array([0.0, np.nan]),)}, "non-finite"),
    ({"params": ("q_ee", "q_ee"), "axes": (np.zeros(1), np.zeros(1))}, "differ"),
    ({"params": ("q_mumuu",), "axes": (np.zeros(1),)}, "did you mean 'q_mumu'"),
    ({"params": ("q_ee", "q_mumu", "q_emu"), "axes": (np.zeros(1),) * 3}, "one or two"),
    ({"params": ("q_ee",), "axes": (np.zeros(1),), "fixed": {"q_emu": np.inf}}, "q_emu"),
])
def test_grid_scan_refuses_bad_input(coefs, kwargs, pattern):
    with pytest.raises(InputError, match=pattern):
        grid_scan([coefs["Ge"]], **kwargs)


# ------------------------------------------------------------ limits


def test_delta_chi2_levels():
    # chi2 quantiles (docs/physics.md section 8, README): 2.7055 and 4.605, to 1e-4 relative.
    assert delta_chi2_level(0.9, 1) == pytest.approx(2.7055, rel=1e-4)
    assert delta_chi2_level(0.9, 2) == pytest.approx(4.605, rel=1e-4)
    assert delta_chi2_level(0.6826894921370859, 1) == pytest.approx(1.0, rel=1e-9)  # 1 sigma, 1e-9


@pytest.mark.parametrize("cl", [0.0, 1.0, 1.5, -0.1, np.nan])
def test_delta_chi2_level_refuses_bad_cl(cl):
    with pytest.raises(InputError, match="confidence level"):
        delta_chi2_level(cl, 1)


LEVEL = 2.705543454095404


def test_allowed_intervals_parabola_refined():
    x = np.linspace(-3.0, 5.0, 33)
    f = lambda t: ((t - 1.0) / 0.5) ** 2
    r = 0.5 * np.sqrt(LEVEL)
    regions, lo_open, hi_open = allowed_intervals(x, f(x), LEVEL, f=f, rtol=1e-8)
    assert len(regions) == 1
    # Exact roots 1 -+ 0.5 sqrt(level), 1e-6 relative.
    assert regions[0][0] == pytest.approx(1.0 - r, rel=1e-6)
    assert regions[0][1] == pytest.approx(1.0 + r, rel=1e-6)
    assert not lo_open and not hi_open
    # Default rtol (1e-4 documented): within 1e-4 relative.
    (reg,), _, _ = allowed_intervals(x, f(x), LEVEL, f=f)
    assert reg[0] == pytest.approx(1.0 - r, rel=1e-4)
    assert reg[1] == pytest.approx(1.0 + r, rel=1e-4)


def test_allowed_intervals_without_refinement_within_a_step():
    x = np.linspace(-3.0, 5.0, 33)
    step = x[1] - x[0]
    y = ((x - 1.0) / 0.5) ** 2
    (reg,), _, _ = allowed_intervals(x, y, LEVEL)
    r = 0.5 * np.sqrt(LEVEL)
    # Unrefined crossings are cell midpoints: within half a grid step (exact bound).
    assert abs(reg[0] - (1.0 - r)) <= 0.5 * step
    assert abs(reg[1] - (1.0 + r)) <= 0.5 * step


def test_allowed_intervals_double_well():
    f = lambda t: 10.0 * (t * t - 1.0) ** 2
    x = np.linspace(-2.0, 2.0, 81)
    regions, lo_open, hi_open = allowed_intervals(x, f(x), LEVEL, f=f, rtol=1e-8)
    d = np.sqrt(LEVEL / 10.0)
    inner, outer = np.sqrt(1.0 - d), np.sqrt(1.0 + d)
    assert len(regions) == 2
    # Exact roots +-sqrt(1 -+ sqrt(level/10)), 1e-6 relative.
    np.testing.assert_allclose(regions, [[-outer, -inner], [inner, outer]], rtol=1e-6, atol=0)
    assert not lo_open and not hi_open


def test_allowed_intervals_open_ends():
    f = lambda t: t * t
    x = np.linspace(0.0, 3.0, 31)
    regions, lo_open, hi_open = allowed_intervals(x, f(x), LEVEL, f=f, rtol=1e-8)
    assert lo_open and not hi_open
    assert regions[0][0] == 0.0                                            # grid end, exact
    assert regions[0][1] == pytest.approx(np.sqrt(LEVEL), rel=1e-6)       # root, 1e-6 relative
    x = np.linspace(-1.0, 1.0, 11)
    regions, lo_open, hi_open = allowed_intervals(x, f(x), LEVEL, f=f)
    assert lo_open and hi_open
    assert regions == [[-1.0, 1.0]]                                        # grid ends, exact
    x = np.linspace(-3.0, 0.5, 36)
    regions, lo_open, hi_open = allowed_intervals(x, f(x), LEVEL, f=f)
    assert hi_open and not lo_open


def test_allowed_intervals_single_point_and_empty():
    x = np.linspace(-1.0, 1.0, 5)
    y = np.array([9.0, 9.0, 0.0, 9.0, 9.0])
    regions, lo_open, hi_open = allowed_intervals(x, y, LEVEL)
    assert len(regions) == 1 and regions[0][0] < 0.0 < regions[0][1]
    regions, lo_open, hi_open = allowed_intervals(x, np.full(5, 9.0), LEVEL)
    assert regions == [] and not lo_open and not hi_open


def _twin_roots(clist, param, level, lo, hi, n=4001):
    """Crossings of the twin's chi2 with ``level`` on [lo, hi], refined by brentq."""
    k = PARAMS.index(param)
    x = np.linspace(lo, hi, n)
    th = np.zeros((n, 6))
    th[:, k] = x
    g = sum(model.chi2(c, th)[0] for c in clist) - level

    def f(t):
        row = np.zeros((1, 6))
        row[0, k] = t
        return float(sum(model.chi2(c, row)[0][0] for c in clist)) - level

    idx = np.flatnonzero(np.sign(g[:-1]) != np.sign(g[1:]))
    return [brentq(f, x[i], x[i + 1], xtol=1e-20, rtol=1e-12) for i in idx]


@pytest.mark.parametrize("names, param", [
    (("Ge",), "q_ee"),
    (("CsI",), "q_mumu"),
    (("Xe",), "q_emu"),
    (("Ge", "Xe"), "q_ee"),
])
def test_limit_1d_matches_twin_roots(coefs, names, param):
    clist = [coefs[n] for n in names]
    top = 6e-8 if param in ("q_ee", "q_mumu") else 3e-7
    lim = limit_1d(clist, param, xrange=(-top, top), points=201, extend=0)
    assert abs(lim.chi2_min) <= 1e-9          # Asimov minimum at 0, abs 1e-9
    assert not lim.open_low and not lim.open_high
    roots = _twin_roots(clist, param, lim.delta_chi2, -top, top)
    assert len(roots) == 2 * len(lim.regions)
    # End points are roots of the twin's profiled chi2, 1e-3 relative.
    np.testing.assert_allclose(np.ravel(lim.regions), roots, rtol=1e-3, atol=0)
    assert lim.regions[0][0] < 0.0 < lim.regions[-1][1]
    assert lim.delta_chi2 == pytest.approx(2.7055, rel=1e-4)  # 90% C.L., 1e-4 relative
    assert lim.to_json()["unit"] == "e"


def test_limit_1d_ge_is_asymmetric(coefs):
    # docs/physics.md section 9: the Ge q_ee interval is visibly asymmetric (published [-3.9, 4.9] 1e-9 e).
    lim = limit_1d([coefs["Ge"]], "q_ee", xrange=(-6e-8, 6e-8), points=401, extend=0)
    (lo, hi), = lim.regions
    assert hi / -lo > 1.1


def test_limit_1d_open_range_flagged_and_extended(coefs):
    c = [coefs["Ge"]]
    narrow = limit_1d(c, "q_ee", xrange=(-1e-9, 1e-9), points=201, extend=0)
    assert narrow.open_low and narrow.open_high
    assert narrow.regions == [[-1e-9, 1e-9]]              # grid ends, exact
    grown = limit_1d(c, "q_ee", xrange=(-1e-9, 1e-9), points=201, extend=6)
    wide = limit_1d(c, "q_ee", xrange=(-6e-8, 6e-8), points=201, extend=0)
    assert not grown.open_low and not grown.open_high
    # The widened scan finds the same end points (root-refined, 1e-3 relative).
    np.testing.assert_allclose(grown.regions, wide.regions, rtol=1e-3, atol=0)


@pytest.mark.parametrize("xrange", [(-1e-9, 1e-9), (0.5e-9, 1e-8)])
def test_limit_1d_stays_in_requested_range(coefs, xrange):
    lim = limit_1d([coefs["Ge"]], "q_ee", xrange=xrange, points=21, extend=0)
    lo, hi = xrange
    assert lim.scan.axes[0][0] >= lo and lim.scan.axes[0][-1] <= hi
    for a, b in lim.regions:
        assert lo <= a <= b <= hi
    assert lim.open_low == (lim.regions[0][0] == lo)
    assert lim.open_high == (lim.regions[-1][1] == hi)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"xrange": (1e-8, -1e-8)}, "low < high"),
    ({"xrange": (-np.inf, 1e-8)}, "low < high"),
    ({"xrange": (np.nan, 1e-8)}, "low < high"),
    ({"points": 2}, "points"),
    ({"cl": 1.5}, "confidence level"),
])
def test_limit_1d_refuses_bad_input(coefs, kwargs, pattern):
    with pytest.raises(InputError, match=pattern):
        limit_1d([coefs["Ge"]], "q_ee", **kwargs)


@pytest.mark.parametrize("case", ["Xe", "CsI+electron"])
def test_long_1d_scan_matches_twin(coefs, case):
    # More points than one row segment: warm starts chain over thousands of points.
    x = np.linspace(-2e-7, 2e-7, 9001)
    sc = grid_scan([coefs[case]], ("q_mumu",), (x,))
    assert np.all(sc.converged)
    np.testing.assert_allclose(sc.chi2, _twin_grid([coefs[case]], ("q_mumu",), (x,)),
                               rtol=1e-9, atol=1e-12)  # twin, 1e-9 relative
