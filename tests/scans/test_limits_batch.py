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
