"""Toys: generation, the batched numba profile and its NumPy twin, and chi2 with observed data."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.optimize import minimize

from mcscan.errors import InputError
from mcscan.stats import kernels, reference, toys
from mcscan.stats.newton import BACKGROUND_PULL, SIGNAL_PULL


def _grid(coef, n=41, span=2e-8, index=0):
    xs = np.linspace(-span, span, n)
    return xs, toys.grid_counts(coef, np.zeros(6), index, xs)


def _direct_chi2(N, B, D, a0=0.0, b0=0.0, sa=SIGNAL_PULL, sb=BACKGROUND_PULL):
    """chi2 from its formula, minimised over the pulls by Nelder-Mead (independent of the kernels)."""
    def f(p):
        a, b = p
        T = (1 + a) * N + (1 + b) * B
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = np.where(D > 0, T - D + D * np.log(D / T), T)
        return 2 * dev.sum() + ((a - a0) / sa) ** 2 + ((b - b0) / sb) ** 2

    r = minimize(f, [a0, b0], method="Nelder-Mead", options=dict(xatol=1e-12, fatol=1e-12, maxiter=4000))
    return r.fun


# ---------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------

def test_toys_do_not_depend_on_chunking(coefs):
    mu = coefs["Ge"].S + coefs["Ge"].B
    whole = toys.generate_toys(mu, 7, 0, 300)
    parts = [toys.generate_toys(mu, 7, a, b) for a, b in ((0, 37), (37, 64), (64, 65), (65, 300))]
    for k in range(3):
        assert np.array_equal(whole[k], np.concatenate([p[k] for p in parts]))
    other = toys.generate_toys(mu, 8, 0, 300)
    keyed = toys.generate_toys(mu, 7, 0, 300, key=(3,))
    assert not np.array_equal(whole[0], other[0])
    assert not np.array_equal(whole[0], keyed[0])


def test_toys_follow_their_distributions(coefs):
    mu = coefs["Xe"].S + coefs["Xe"].B
    n = 4096
    D, a0, b0 = toys.generate_toys(mu, 1, 0, n)
    assert np.all(D == np.round(D)) and np.all(D >= 0)
    # means within 5 standard errors per bin; widths of the auxiliary measurements within 5%
    assert np.all(np.abs(D.mean(0) - mu) < 5 * np.sqrt(mu / n))
    assert abs(a0.std() / SIGNAL_PULL - 1) < 0.05 and abs(b0.std() / BACKGROUND_PULL - 1) < 0.05
    assert abs(a0.mean()) < 5 * SIGNAL_PULL / np.sqrt(n)


@pytest.mark.parametrize("bad", [dict(seed=-1), dict(start=5, stop=2), dict(signal_pull=0.0)])
def test_generate_refuses_bad_arguments(bad):
    args = dict(mu=np.ones(3), seed=0, start=0, stop=4)
    args.update(bad)
    with pytest.raises(InputError):
        toys.generate_toys(args.pop("mu"), args.pop("seed"), args.pop("start"), args.pop("stop"), **args)


# ---------------------------------------------------------------------------
# kernel vs twin
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("det", ["CsI", "Xe", "Ge"])
def test_kernel_matches_numpy_twin(coefs, warm, det):
    c = coefs[det]
    xs, N = _grid(c)
    D, a0, b0 = toys.generate_toys(c.S + c.B, 3, 0, 12)
    par = toys.toy_chi2(N, c.S, c.B, D, a0, b0, parallel=True, lanes=toys.TOY_LANES)  # not its stand-in
    ser = toys.toy_chi2(N, c.S, c.B, D, a0, b0, parallel=False, lanes=0)
    twin = toys.toy_chi2_numpy(N, c.S, c.B, D, a0, b0)
    for p, s in zip(par, ser):
        assert np.array_equal(p, s)                        # serial and parallel: same bits
    assert par[3].all() and twin[3].all()
    # chi2 to 1e-10 relative + 1e-9 absolute, pulls to 1e-9 (Newton tolerance 1e-10)
    np.testing.assert_allclose(par[0], twin[0], rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(par[1], twin[1], rtol=0, atol=1e-9)
    np.testing.assert_allclose(par[2], twin[2], rtol=0, atol=1e-9)


def test_kernel_hard_cases_match_twin(coefs, warm):
    """Data far from the prediction (line search, scalar path) and auxiliary
    measurements far from 0."""
    c = coefs["Ge"]
    xs, N = _grid(c, n=25, span=6e-8)
    D = np.stack([3.0 * (c.S + c.B), 0.2 * (c.S + c.B), np.round(c.S + c.B)])
    a0 = np.array([0.3, -0.3, -0.5])
    b0 = np.array([0.05, -0.04, 0.02])
    for parallel in (True, False):
        k = toys.toy_chi2(N, c.S, c.B, D, a0, b0, parallel=parallel, lanes=toys.TOY_LANES)
        t = toys.toy_chi2_numpy(N, c.S, c.B, D, a0, b0)
        assert k[3].all() and t[3].all()
        np.testing.assert_allclose(k[0], t[0], rtol=1e-10, atol=1e-8)
    # against the formula itself, minimised by Nelder-Mead (1e-6 relative)
    for j in range(3):
        for g in (0, 12, 24):
            want = _direct_chi2(N[g], c.B, D[j], a0[j], b0[j])
            assert k[0][j, g] == pytest.approx(want, rel=1e-6, abs=1e-6)


def test_kernel_low_counts_and_empty_bins(warm):
    """A small synthetic detector: a few counts per bin, some bins empty."""
    S = np.array([6.0, 4.0, 2.5, 1.5, 1.0, 0.6])
    B = np.array([2.0, 2.0, 2.0, 2.0, 2.0, 2.0])
    L = np.array([3.0, 2.0, 1.0, 0.5, 0.2, 0.1])
    xs = np.linspace(-1.0, 1.0, 21)
    N = np.maximum(S + xs[:, None] * L, 0.0)
    D = np.array([[9.0, 5, 0, 4, 2, 0], [0.0, 0, 0, 0, 0, 1], [8.0, 6, 5, 3, 3, 2]])
    a0 = np.array([0.0, 0.1, -0.1])
    b0 = np.array([0.0, 0.01, 0.0])
    t = toys.toy_chi2_numpy(N, S, B, D, a0, b0)
    assert t[3].all()
    for lanes in (0, 16):
        for parallel in (True, False):
            k = toys.toy_chi2(N, S, B, D, a0, b0, parallel=parallel, lanes=lanes)
            assert k[3].all()
            np.testing.assert_allclose(k[0], t[0], rtol=1e-10, atol=1e-9)
    for j in range(3):
        for g in (0, 10, 20):
            want = _direct_chi2(N[g], B, D[j], a0[j], b0[j])
            assert k[0][j, g] == pytest.approx(want, rel=1e-6, abs=1e-7)


def test_chi2_beyond_the_series_in_some_bins_matches_twin(coefs, warm):
    """Over a wide grid most toy points end with some bins beyond the deviance series
    (|1 - D/T| > SERIES_UMAX) and the others inside it: their chi2 takes the series for
    the bins inside and logarithms for the others (kernels._chi2_at).  Against the NumPy
    twin (logarithms everywhere) to 1e-10 relative, on both kernels."""
    from mcscan.stats.kernels import SERIES_UMAX

    c = coefs["Ge"]
    _, N = _grid(c, n=41, span=6e-8)
    D, a0, b0 = toys.generate_toys(c.S + c.B, 11, 0, 40)
    twin = toys.toy_chi2_numpy(N, c.S, c.B, D, a0, b0)
    # the mixed case is there: at the twin's pulls, bins on both sides of the series' edge
    T = (1 + twin[1][:, :, None]) * N[None] + (1 + twin[2][:, :, None]) * c.B
    u = np.abs(1 - D[:, None, :] / T)
    mixed = (u.max(axis=2) > SERIES_UMAX) & (u.min(axis=2) <= SERIES_UMAX)
    assert mixed.mean() > 0.3
    runs = []
    for lanes in (0, 32, 8):
        k = toys.toy_chi2(N, c.S, c.B, D, a0, b0, lanes=lanes)
        assert k[3].all() and twin[3].all()
        np.testing.assert_allclose(k[0], twin[0], rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(k[0][mixed], twin[0][mixed], rtol=1e-10, atol=0)
        runs.append(k)
    # the lane kernel sums such a chi2 over its lanes side by side (kernels._lanes_chi2)
    # once enough of them need it, the one-toy kernel (lanes 0) toy by toy: the same bits
    for other in runs[1:]:
        for x, y in zip(runs[0], other):
            assert np.array_equal(x, y)


def test_shifted_penalty_equals_rescaled_problem(coefs, warm):
    """A toy with auxiliary measurements (a0, b0) is the plain profile of the
    rescaled coefficients (1 + a0) S, L, Q; (1 + b0) B with widths sigma / (1 + centre)."""
    c = coefs["Xe"]
    xs, N = _grid(c, n=31)
    D, a0, b0 = toys.generate_toys(c.S + c.B, 11, 0, 4)
    k = toys.toy_chi2(N, c.S, c.B, D, a0, b0)
    theta = np.zeros((xs.size, 6))
    theta[:, 0] = xs
    for j in range(4):
        sa, sb = 1 + a0[j], 1 + b0[j]
        r = dataclasses.replace(c, S=c.S * sa, L=c.L * sa, Q=c.Q * sa, B=c.B * sb, D=D[j])
        chi = reference.chi2(r, theta, signal_pull=SIGNAL_PULL / sa, background_pull=BACKGROUND_PULL / sb)[0]
        np.testing.assert_allclose(k[0][j], chi, rtol=1e-10, atol=1e-9)


def test_results_do_not_depend_on_threads_or_batches(coefs, warm):
    import numba

    c = coefs["Ge"]
    xs, N = _grid(c, n=101)
    D, a0, b0 = toys.generate_toys(c.S + c.B, 5, 0, 50)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = toys.toy_chi2(N, c.S, c.B, D, a0, b0)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = toys.toy_chi2(N, c.S, c.B, D, a0, b0)
    finally:
        numba.set_num_threads(old)
    part = toys.toy_chi2(N, c.S, c.B, D[17:33], a0[17:33], b0[17:33])
    for x, y, z in zip(one, two, part):
        assert np.array_equal(x, y)
        assert np.array_equal(x[17:33], z)
    # any block size of the lane kernel, and the one-toy-at-a-time kernel: same bits
    for lanes in (0, 1, 16, 64):
        for parallel in (True, False):
            other = toys.toy_chi2(N, c.S, c.B, D, a0, b0, lanes=lanes, parallel=parallel)
            for x, y in zip(one, other):
                assert np.array_equal(x, y)


def test_toy_inputs_are_checked():
    S = np.ones(3)
    with pytest.raises(InputError):
        toys.toy_chi2(np.ones((2, 3)), S, S, np.full((1, 3), np.nan), np.zeros(1), np.zeros(1))
    with pytest.raises(InputError):
        toys.toy_chi2(np.ones((2, 3)), S, S, np.ones((1, 2)), np.zeros(1), np.zeros(1))
    with pytest.raises(InputError):
        toys.toy_chi2(np.ones((2, 3)), S, S, np.ones((2, 3)), np.zeros(1), np.zeros(1))


# ---------------------------------------------------------------------------
# the scan kernels with observed data (D other than S + B)
# ---------------------------------------------------------------------------

def test_scan_kernels_take_observed_data(coefs, warm):
    c = coefs["Ge"]
    D = np.random.default_rng(1).poisson(c.S + c.B).astype(float)
    d = dataclasses.replace(c, D=D)
    xs = np.linspace(-5e-9, 5e-9, 7)
    theta = np.zeros((xs.size, 6))
    theta[:, 0] = xs
    want = np.array([_direct_chi2(reference.predict(c, t), c.B, D) for t in theta])
    assert want.min() > 10.0                                   # far from the Asimov value 0
    ref = reference.chi2(d, theta)[0]
    pts = kernels.chi2_points(d, theta)[0]
    out = np.empty(xs.size), np.empty(xs.size), np.empty(xs.size), np.empty(xs.size, dtype=bool)
    kernels.chi2_rows(d, np.zeros(6), None, 0, np.zeros(1), xs, np.array([0]), np.array([xs.size]),
                      np.array([0]), out=out)
    for got in (ref, pts, out[0]):
        np.testing.assert_allclose(got, want, rtol=1e-7)
    # and the toy kernel (one toy, auxiliary measurements at 0) agrees
    N = toys.grid_counts(c, np.zeros(6), 0, xs)
    k = toys.toy_chi2(N, c.S, c.B, D[None], np.zeros(1), np.zeros(1))[0][0]
    np.testing.assert_allclose(k, pts, rtol=1e-10)
