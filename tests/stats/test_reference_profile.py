"""mcscan.stats.reference.profile: the one NumPy profile behind reference.chi2 (one data
vector) and the toys' twin (one data vector per point, penalties centred per point).

Its two ways of taking the data and the centres must give the same numbers for the
same inputs, to the bit (tolerance 0): the charges' twin and the toys' twin then run
the same iteration.  Its physics is tested through reference.chi2 and the toys' twin
elsewhere (closed forms, the kernels, published intervals).
"""
from __future__ import annotations

import numpy as np
import pytest

from mcscan.stats import reference


@pytest.fixture(scope="module")
def points(coefs):
    """Xe counts at 60 charge points, some far enough out for the line search."""
    c = coefs["Xe"]
    rng = np.random.default_rng(7)
    theta = rng.uniform(-4e-8, 4e-8, (60, 6))
    theta[:6] *= 40
    N = reference.predict(c, theta)
    dlt = (N - c.S) + ((c.S + c.B) - c.D)
    return c, theta, N, dlt


def test_one_data_vector_per_point_is_the_same_profile(points):
    c, theta, N, dlt = points
    n = N.shape[0]
    one = reference.profile(N, dlt, c.B, c.D)
    each = reference.profile(N, dlt, c.B, np.tile(c.D, (n, 1)), np.zeros(n), np.zeros(n))
    for x, y in zip(one, each):
        np.testing.assert_array_equal(x, y)                 # tolerance 0
    # and reference.chi2 is this profile at the model's counts
    for x, y in zip(reference.chi2(c, theta), one):
        np.testing.assert_array_equal(x, y)
    assert (one[3] > 0).all()                               # every point converged
    assert (one[3] > 2).any()                                # some needed several steps


def test_each_point_keeps_its_own_data_and_centres(points):
    """Different data and centres per point (toys): the batch gives every point what a
    profile of that point alone gives, to the bit; a row mix-up would not."""
    c, _, N, _ = points
    rng = np.random.default_rng(8)
    n = N.shape[0]
    D = rng.poisson(c.S + c.B, (n, c.S.size)).astype(float)
    a0, b0 = rng.normal(0.0, 0.1, n), rng.normal(0.0, 0.01, n)
    dl = (N - c.S) + ((c.S + c.B) - D)
    batch = reference.profile(N, dl, c.B, D, a0, b0)
    for i in range(n):
        alone = reference.profile(N[i:i + 1], dl[i:i + 1], c.B, D[i], a0[i], b0[i])
        for x, y in zip(batch, alone):
            np.testing.assert_array_equal(x[i:i + 1], y)    # tolerance 0
    assert len({float(v) for v in batch[0]}) == n           # the points differ


def test_scalar_and_per_point_centres_agree(points):
    c, _, N, dlt = points
    n = N.shape[0]
    scalar = reference.profile(N, dlt, c.B, c.D, 0.05, -0.004)
    arrays = reference.profile(N, dlt, c.B, c.D, np.full(n, 0.05), np.full(n, -0.004))
    for x, y in zip(scalar, arrays):
        np.testing.assert_array_equal(x, y)                 # tolerance 0
    # moving the centres moves the pulls towards them (away from the zero centres)
    zero = reference.profile(N, dlt, c.B, c.D)
    assert np.all(scalar[1] > zero[1]) and np.all(scalar[2] < zero[2])
