"""Limits computed together (``limits_1d``, used by ``sensitivities``) equal
limits computed one by one (``limit_1d``) to the last bit.

Batching shares one vectorised NumPy evaluation per detector among all limits
waiting for a chi2 value; each value, and so every Brent step, must be the
same as alone.  The comparisons are exact (tolerance 0)."""
from __future__ import annotations

import numpy as np

from mcscan.scans.grid import ScanSettings
from mcscan.scans.limits import limit_1d, limits_1d


def _same(a, b):
    assert a.regions == b.regions                                           # exact
    assert a.chi2_min == b.chi2_min                                         # exact
    assert (a.open_low, a.open_high, a.unconstrained) == (b.open_low, b.open_high, b.unconstrained)
    assert np.array_equal(a.scan.axes[0], b.scan.axes[0])
    assert np.array_equal(a.scan.chi2, b.scan.chi2)


def test_batched_limits_equal_single_limits(coefs, warm):
    s = ScanSettings()
    dets = [coefs["CsI"]], [coefs["Ge"]], [coefs["CsI"], coefs["Xe"], coefs["Ge"]]
    ranges = {"q_ee": (-6e-8, 6e-8), "q_mumu": (-3e-8, 3e-8), "q_emu": (-3e-8, 3e-8)}
    calls = [dict(coefs=c, param=p, cl=0.9, xrange=r, points=401, settings=s, extend=6)
             for c in dets for p, r in ranges.items()]
    # a fixed charge, a narrow range that has to widen, a 95% C.L., a parameter the
    # source cannot see and a profiled limit (run alone) in the same batch
    calls += [dict(coefs=dets[1], param="q_mumu", fixed={"q_ee": 3e-9}, xrange=(-3e-8, 3e-8),
                   points=101, settings=s, extend=6),
              dict(coefs=dets[1], param="q_mumu", xrange=(-2e-10, 2e-10), points=101, settings=s,
                   extend=6),
              dict(coefs=dets[0], param="q_ee", cl=0.95, xrange=(-6e-8, 6e-8), points=301,
                   settings=s),
              dict(coefs=dets[2], param="q_tautau", xrange=(-6e-8, 6e-8), points=101, settings=s),
              dict(coefs=dets[1], param="q_ee", profile=("q_mumu",), points=61, settings=s,
                   profile_ranges={"q_mumu": (-3e-8, 3e-8)}, xrange=(-6e-8, 6e-8), extend=0)]
    finished = []
    together = limits_1d(calls, done=lambda i, lim: finished.append(i))
    assert sorted(finished) == list(range(len(calls)))
    for kw, lim in zip(calls, together):
        _same(limit_1d(**kw), lim)
    assert together[-2].unconstrained and together[-2].regions == []
    assert together[-5].scan.axes[0][-1] > 1e-9                    # the range was widened


def test_sensitivities_equal_one_limit_at_a_time(table_dir):
    import mcscan

    a = mcscan.Analysis(tables=table_dir)
    sens = a.sensitivities()
    for (row, p), lim in sens.limits.items():
        alone = a.limits(p, detectors=None if row == "combined" else row)
        _same(alone, lim)


def test_numpy_grid_kernel_is_the_reference_profile(coefs, warm):
    """grid_scan(kernel="numpy") is mcscan.stats.reference.chi2 at every point (exact, any
    chunk), and agrees with the row kernel to the twin tolerance."""
    from mcscan.params import PARAMS
    from mcscan.scans.grid import grid_scan
    from mcscan.stats.reference import chi2

    x = np.linspace(-4e-8, 5e-8, 301)
    cs = [coefs["CsI"], coefs["Ge"]]
    fixed = {"q_mumu": 2e-9}
    a = grid_scan(cs, ("q_ee",), (x,), fixed=fixed, kernel="numpy", chunk=64)
    theta = np.zeros((x.size, len(PARAMS)))
    theta[:, PARAMS.index("q_mumu")] = 2e-9
    theta[:, PARAMS.index("q_ee")] = x
    ref = [chi2(c, theta) for c in cs]
    assert np.array_equal(a.chi2, 0.0 + ref[0][0] + ref[1][0])                      # exact
    assert np.array_equal(a.pulls["Ge"][0], ref[1][1])                               # exact
    assert np.array_equal(a.converged, (ref[0][3] > 0) & (ref[1][3] > 0))
    b = grid_scan(cs, ("q_ee",), (x,), fixed=fixed)                                  # row kernel
    np.testing.assert_allclose(a.chi2, b.chi2, rtol=1e-9, atol=1e-12)              # twin tolerance
    c = grid_scan(cs, ("q_ee", "q_mumu"), (x[:7], x[:5]), kernel="numpy", chunk=3)
    d = grid_scan(cs, ("q_ee", "q_mumu"), (x[:7], x[:5]))
    np.testing.assert_allclose(c.chi2, d.chi2, rtol=1e-9, atol=1e-12)


def test_limit_curve_kernel_by_size(coefs, monkeypatch):
    """Curves up to NUMPY_CURVE_POINTS points x detectors come from the NumPy profile,
    larger ones from the row kernel; the interval is the same to the root tolerance."""
    from mcscan.scans import grid, limits

    used = []
    real = grid.grid_scan
    monkeypatch.setattr(limits, "grid_scan",
                        lambda *a, **k: used.append(k.get("kernel")) or real(*a, **k))
    small = limit_1d([coefs["Ge"]], "q_ee", points=2001)
    assert set(used) == {"numpy"}
    used.clear()
    big = limit_1d([coefs["Ge"]], "q_ee", points=limits.NUMPY_CURVE_POINTS + 1)
    assert set(used) == {"rows"}
    np.testing.assert_allclose(np.ravel(small.regions), np.ravel(big.regions), rtol=1e-6)


def test_limits_and_sensitivities_load_no_numba(table_dir, tmp_path, loaded_by_cli):
    """`mcscan limits` and `mcscan sensitivities` run without loading numba (its import and
    the compiled kernel's first call take about 0.5 s, its compilation seconds)."""
    argvs = (["limits", "--detector", "Ge", "--param", "q_ee", "--tables", table_dir],
             ["sensitivities", "--tables", table_dir, "--out", tmp_path / "s.h5"])
    assert loaded_by_cli(argvs, ["numba"]) == []


def test_true_runs_are_the_pieces_of_a_mask():
    # against runs read off the edges of the padded mask (np.diff), for every mask of
    # up to 9 points: empty, all False, all True, pieces at either end
    from mcscan.scans.limits import true_runs

    for n in range(10):
        for code in range(2 ** n):
            mask = np.array([(code >> k) & 1 for k in range(n)], dtype=bool)
            edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
            want = [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]
            assert true_runs(mask) == want, mask
