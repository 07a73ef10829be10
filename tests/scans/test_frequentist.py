"""Observed data files, fits, expected-limit bands and Feldman-Cousins intervals."""
from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
from scipy.stats import chi2 as chi2_dist

from mcscan.errors import InputError, McscanError
from mcscan.io.data import read_counts, write_counts
from mcscan.params import PARAMS
from mcscan.scans import frequentist as F
from mcscan.scans.grid import ScanSettings
from mcscan.scans.limits import delta_chi2_level, limit_1d
from mcscan.stats.coefficients import Coefficients

LEVEL90 = delta_chi2_level(0.9, 1)


def _shifted(c, index, x0):
    """Coefficients of the same detector in the variable y = x - x0, Asimov data at y = 0:
    S' = N(x0), L' = L + 2 x0 Q (an exact rewriting of N = S + x L + x^2 Q)."""
    S = c.S + x0 * c.L[index] + x0 * x0 * c.Q[index]
    L = c.L.copy()
    L[index] = c.L[index] + 2.0 * x0 * c.Q[index]
    return dataclasses.replace(c, S=S, L=L, D=S + c.B)


# ---------------------------------------------------------------------------
# data files
# ---------------------------------------------------------------------------

def test_asimov_file_round_trip(coefs, tmp_path):
    path = F.write_asimov(tmp_path / "d.csv", [coefs["Xe"], coefs["Ge"]], {"q_ee": 3e-9})
    text = path.read_text().splitlines()
    assert text[0] == "detector,bin_low,bin_high,counts"
    assert len(text) == 1 + coefs["Xe"].S.size + coefs["Ge"].S.size
    got = read_counts(path, {d: coefs[d].edges_kev for d in ("Ge", "Xe")})
    theta = np.zeros(6)
    theta[0] = 3e-9
    from mcscan.stats.reference import predict

    for d in ("Xe", "Ge"):
        assert np.array_equal(got[d], predict(coefs[d], theta) + coefs[d].B)   # exact round trip
    with pytest.raises(InputError, match="exists"):
        F.write_asimov(path, coefs["Xe"])
    F.write_asimov(path, coefs["Xe"], force=True)
    assert set(read_counts(path)) == {"Xe"}


def _write(tmp_path, lines):
    p = tmp_path / "data.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def _ge_lines(c, counts=None):
    counts = c.S + c.B if counts is None else counts
    e = c.edges_kev
    return ["detector,bin_low,bin_high,counts"] + [
        f"Ge,{e[k]:.10g},{e[k + 1]:.10g},{counts[k]:.0f}" for k in range(c.S.size)]


def test_data_file_with_rounded_edges_and_integers(coefs, tmp_path):
    c = coefs["Ge"]
    lines = _ge_lines(c)
    lines.insert(1, "# a comment")
    lines.insert(3, "")
    lines[5], lines[6] = lines[6], lines[5]                      # any row order
    got = F.load_data(_write(tmp_path, lines), c)[0]
    assert np.array_equal(got.D, np.round(c.S + c.B))
    assert got.S is c.S


@pytest.mark.parametrize("edit, match", [
    (lambda L: L.__setitem__(3, L[3].rsplit(",", 1)[0] + ",-4"), r"line 4: counts '-4' are negative"),
    (lambda L: L.__setitem__(3, L[3].rsplit(",", 1)[0] + ",nan"), r"line 4: counts 'nan' is not a number"),
    (lambda L: L.__setitem__(3, L[3].rsplit(",", 1)[0] + ",1e999"),
     r"line 4: counts '1e999' is out of range"),
    (lambda L: L.__setitem__(3, L[3].rsplit(",", 1)[0] + ","), r"line 4: counts '' is not a number"),
    (lambda L: L.__setitem__(3, L[3].rsplit(",", 1)[0] + ",12,3"), r"line 4: 5 columns"),
    (lambda L: L.__setitem__(0, "detector,low,high,counts"), r"line 1: header"),
    (lambda L: L.__setitem__(4, L[4].replace("Ge,3.6,4.6", "Ge,3.65,4.6")),
     r"line 5: Ge bin \[3.65, 4.6\] keV does not match the table's bin 3 \[3.6, 4.6\] keV"),
    (lambda L: L.pop(), r"Ge has no counts for the table's bin 39"),
    (lambda L: L.append(L[-1]), r"overlap"),
    (lambda L: L.__setitem__(slice(1, None), [x.replace("Ge,", "Xe,") for x in L[1:]]),
     r"no counts for detector Ge \(it has Xe\)"),
])
def test_bad_data_files_are_refused_in_one_line(coefs, tmp_path, edit, match):
    lines = _ge_lines(coefs["Ge"])
    edit(lines)
    with pytest.raises(InputError, match=match) as exc:
        F.load_data(_write(tmp_path, lines), coefs["Ge"])
    assert "\n" not in str(exc.value)


def test_missing_or_empty_data_files(coefs, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        F.load_data(tmp_path / "nope.csv", coefs["Ge"])
    with pytest.raises(InputError, match="is a directory"):
        F.load_data(tmp_path, coefs["Ge"])
    with pytest.raises(InputError, match="empty"):
        F.load_data(_write(tmp_path, ["# nothing"]), coefs["Ge"])
    with pytest.raises(InputError, match="no bins"):
        F.load_data(_write(tmp_path, ["detector,bin_low,bin_high,counts"]), coefs["Ge"])
    with pytest.raises(InputError):
        write_counts(tmp_path / "x.csv", {"Ge": (coefs["Ge"].edges_kev, -coefs["Ge"].S)})


# ---------------------------------------------------------------------------
# fit to data
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("det", ["CsI", "Xe", "Ge"])
@pytest.mark.parametrize("param,x0", [("q_ee", 3e-9), ("q_mumu", -2e-9)])
def test_fit_to_expected_counts_finds_the_point(coefs, tmp_path, warm, det, param, x0):
    c = coefs[det]
    k = PARAMS.index(param)
    path = F.write_asimov(tmp_path / "d.csv", c, {param: x0})
    data = F.load_data(path, c)
    r = F.fit(data, param)
    assert r.best[param] == pytest.approx(x0, rel=1e-6)
    assert r.chi2_min == pytest.approx(0.0, abs=1e-12)
    assert r.ndof == c.S.size - 1 and r.p_value == pytest.approx(1.0, abs=1e-12)
    assert r.converged
    assert all(abs(v) < 1e-9 for v in r.pulls[det])
    json.dumps(r.to_json(), allow_nan=False)
    # the same allowed set (and Delta chi2 = 1 interval) as the Asimov scan around that
    # point, computed in the shifted variable y = x - x0 (an exact rewriting of the counts)
    shifted = _shifted(c, k, x0)
    lim_data = limit_1d(data, param, xrange=(-6e-8, 6e-8), points=2001)
    lim_asim = limit_1d([shifted], param, xrange=(-6e-8 - x0, 6e-8 - x0), points=2001)
    assert len(lim_data.regions) == len(lim_asim.regions)
    width = max(b for _, b in lim_data.regions) - min(a for a, _ in lim_data.regions)
    for (a1, b1), (a2, b2) in zip(lim_data.regions, lim_asim.regions):
        assert abs(a1 - (a2 + x0)) < 1e-5 * width and abs(b1 - (b2 + x0)) < 1e-5 * width
    one = limit_1d([shifted], param, xrange=(-6e-8 - x0, 6e-8 - x0), points=2001, level=1.0)
    lo, hi = r.errors[param]
    assert lo == pytest.approx(one.regions[0][0] + x0, abs=1e-5 * width)
    assert hi == pytest.approx(one.regions[-1][1] + x0, abs=1e-5 * width)


def test_fit_of_poisson_data_and_two_charges(coefs, warm):
    ge = coefs["Ge"]
    D = np.random.default_rng(4).poisson(ge.S + ge.B).astype(float)
    data = F.with_data(ge, {"Ge": D})
    r = F.fit(data, "q_ee")
    # the minimum is a minimum: the grid scan finds nothing lower, and the ends are at +1
    x = np.linspace(r.best["q_ee"] - 2e-9, r.best["q_ee"] + 2e-9, 401)
    from mcscan.scans.grid import chi2_function, grid_scan

    assert grid_scan(data, ("q_ee",), (x,)).chi2.min() >= r.chi2_min - 1e-9
    f = chi2_function(data, "q_ee")
    for end in r.errors["q_ee"]:
        assert f(end) - r.chi2_min == pytest.approx(1.0, abs=1e-6)
    assert r.p_value == pytest.approx(chi2_dist.sf(r.chi2_min, ge.S.size - 1), rel=1e-12)
    r2 = F.fit(data, ("q_ee", "q_mumu"))
    assert r2.chi2_min <= r.chi2_min + 1e-9 and r2.ndof == ge.S.size - 2
    # profiling a second charge can only widen the Delta chi2 = 1 interval
    assert r2.errors["q_ee"][0] <= r.errors["q_ee"][0] + 1e-15
    assert r2.errors["q_ee"][1] >= r.errors["q_ee"][1] - 1e-15
    with pytest.raises(InputError):
        F.fit(data, ("q_ee", "q_ee"))
    with pytest.raises(InputError):
        F.fit(data, "q_ee", fixed={"q_ee": 1e-9})


def test_fit_whose_chi2_is_not_a_number_stops_in_one_line(coefs, warm):
    # one bin of 1e20 counts dominates the sums of the pulls' Hessian, whose determinant
    # then cancels to 0: the profile gives NaN at some charges.  The fit said chi2_min = nan
    # and exited 0; now one line names the point and the count
    ge = coefs["Ge"]
    D = ge.S + ge.B
    D[0] = 1e20
    data = F.with_data(ge, {"Ge": D})
    for params in ("q_ee", ("q_ee", "q_mumu")):
        with pytest.raises(InputError, match=r"^the chi2 of the fit is not a number at q_ee = "
                                             r"\S+ e.*: observed counts up to 1e\+20 \(Ge bin 0\)"):
            F.fit(data, params)
    # a limit says so in one line too, with no NumPy warning before it (the twin divided
    # by the cancelled determinant with warnings on)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(McscanError, match=r"^chi2 is nan \(not a number\) at q_ee = "):
            limit_1d(data, "q_ee")
    D[0] = 1e8                      # large but within reach: a fit, with finite numbers
    r = F.fit(F.with_data(ge, {"Ge": D}), "q_ee")
    assert np.isfinite(r.chi2_min) and all(np.isfinite(v) for v in r.pulls["Ge"])


@pytest.mark.parametrize("x0", [1e-7, -1e-7])
def test_two_charge_fit_stays_in_its_ranges(coefs, tmp_path, warm, x0):
    # data made at q_ee = x0, beyond the search range of +-6e-8 e: (q_ee, q_mumu) can mimic
    # them with q_mumu beyond its range too.  The fit keeps to the ranges, so the profile
    # of its Delta chi2 = 1 ends finds its minimum again (it stopped with a traceback when
    # Nelder-Mead left the box).
    path = F.write_asimov(tmp_path / "d.csv", coefs["Ge"], {"q_ee": x0})
    data = F.load_data(path, coefs["Ge"])
    r = F.fit(data, ("q_ee", "q_mumu"))
    assert all(-6e-8 <= r.best[p] <= 6e-8 for p in ("q_ee", "q_mumu"))
    assert abs(r.best["q_mumu"]) == 6e-8                          # at the end of its range
    lo, hi = r.errors["q_mumu"]
    assert (hi is None) if x0 > 0 else (lo is None)               # open on that side
    a, b = r.errors["q_ee"]
    assert a < r.best["q_ee"] < b
    json.dumps(r.to_json(), allow_nan=False)


# ---------------------------------------------------------------------------
# a linear Gaussian model: Feldman-Cousins = Wilks
# ---------------------------------------------------------------------------

def _linear_model():
    """Four bins of 10^6 signal and background counts, one charge acting linearly:
    Poisson ~ Gaussian and chi2 quadratic in the charge (Q = 0)."""
    nb = 4
    S = np.full(nb, 1e6)
    B = np.full(nb, 1e6)
    L = np.zeros((6, nb))
    L[0] = 1e12 * np.array([1.0, -0.5, 0.3, -1.2])
    Q = np.zeros((6, nb))
    return Coefficients("Lin", ("nuclear",), S, L, Q, B, S + B, np.arange(nb + 1.0), "linear")


#: A signal pull far below the statistical precision: the signal stays linear in the charge.
LINEAR = ScanSettings(signal_pull=1e-4, background_pull=0.01)


def test_feldman_cousins_of_a_linear_gaussian_model_is_wilks(warm):
    toys = 2000
    r = F.feldman_cousins(_linear_model(), "q_ee", toys=toys, seed=2, points=41, settings=LINEAR)
    g = r.grid.size
    mid = slice(g // 3, g - g // 3)                      # toys' minima well inside the grid
    tc, cov = r.critical[mid], r.coverage[mid]
    # standard error of the 90% quantile of chi2(1) from `toys` toys
    se_q = np.sqrt(0.9 * 0.1 / toys) / chi2_dist.pdf(LEVEL90, 1)
    assert np.all(np.abs(tc - LEVEL90) < 4 * se_q)
    assert abs(tc.mean() - LEVEL90) < 3 * se_q / np.sqrt(tc.size) * np.sqrt(2)
    se_c = np.sqrt(0.9 * 0.1 / toys)
    assert np.all(np.abs(cov - 0.9) < 4 * se_c)
    assert abs(cov.mean() - 0.9) < 3 * se_c / np.sqrt(cov.size) * np.sqrt(2)
    np.testing.assert_allclose(r.coverage_error[mid], np.sqrt(cov * (1 - cov) / toys), rtol=1e-12)
    # the intervals agree to the scatter of t_c (slope of Delta chi2 at the ends: ~ 2 sqrt(2.71) / sigma)
    (lo, hi), = r.regions
    (wlo, whi), = r.wilks_regions
    half = 0.5 * (whi - wlo)
    assert abs(lo - wlo) < 0.1 * half and abs(hi - whi) < 0.1 * half
    out = r.to_json()
    json.dumps(out, allow_nan=False)
    assert out["method"] == "feldman-cousins" and out["toys"] == toys and out["seed"] == 2
    assert len(out["critical_values"]) == g


def test_bands_of_a_linear_gaussian_model(warm):
    """Limits x_hat +- 1.645 sigma: the median equals the Asimov limit and the
    68% band is +-1 sigma (MC error of the quantiles, 3 standard errors)."""
    toys = 2000
    b = F.expected_bands(_linear_model(), "q_ee", toys=toys, seed=3, points=201, settings=LINEAR)
    (lo, hi), = b.asimov_regions
    sigma = (hi - lo) / (2 * np.sqrt(LEVEL90))
    se_med = 1.2533 * sigma / np.sqrt(toys)
    assert abs(b.upper["median"] - hi) < 3 * se_med and abs(b.lower["median"] - lo) < 3 * se_med
    assert abs((b.upper["p84"] - b.upper["p16"]) / (2 * sigma) - 1) < 0.06
    # every toy interval has the Asimov width (grid interpolation error ~1e-4 of it), also
    # those beyond the first window (redone on an extended window)
    beyond = (b.lower_limits < b.grid[0]) | (b.upper_limits > b.grid[-1])
    assert b.open_low == b.open_high == 0 and 0 < beyond.sum() < 0.02 * toys
    np.testing.assert_allclose(b.upper_limits - b.lower_limits, hi - lo, rtol=1e-3)


# ---------------------------------------------------------------------------
# bands on a reference detector, determinism
# ---------------------------------------------------------------------------

def test_csi_q_mumu_median_limits_match_asimov(coefs, warm):
    b = F.expected_bands(coefs["CsI"], "q_mumu", toys=2000, seed=1)
    (lo, hi), = b.asimov_regions
    assert b.lower["median"] == pytest.approx(lo, rel=0.05)
    assert b.upper["median"] == pytest.approx(hi, rel=0.05)
    for side in (b.lower, b.upper):
        assert side["p2.5"] <= side["p16"] <= side["median"] <= side["p84"] <= side["p97.5"]
    out = b.to_json()
    json.dumps(out, allow_nan=False)
    assert set(out) >= {"param", "cl", "toys", "seed", "asimov_regions", "lower", "upper", "unit"}
    assert set(out["lower"]) == {"median", "p16", "p84", "p2.5", "p97.5"}
    assert out["unit"] == "e" and out["toys"] == 2000 and b.unconverged == 0


def test_bands_and_critical_values_are_deterministic(coefs, warm):
    import numba

    ge = coefs["Ge"]
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        b1 = F.expected_bands(ge, "q_ee", toys=300, seed=9, chunk=4096)
        f1 = F.feldman_cousins(ge, "q_ee", toys=100, seed=9, points=21, chunk=4096)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b2 = F.expected_bands(ge, "q_ee", toys=300, seed=9, chunk=70)
        f2 = F.feldman_cousins(ge, "q_ee", toys=100, seed=9, points=21, chunk=33)
    finally:
        numba.set_num_threads(old)
    assert b1.to_json() == b2.to_json()
    assert np.array_equal(b1.lower_limits, b2.lower_limits)
    assert np.array_equal(b1.upper_limits, b2.upper_limits)
    assert f1.to_json() == f2.to_json()
    assert np.array_equal(f1.critical, f2.critical)
    b3 = F.expected_bands(ge, "q_ee", toys=300, seed=10)
    assert not np.array_equal(b1.lower_limits, b3.lower_limits)


_CHILD = """
import hashlib, sys
import numba
from mcscan.api import load_coefficients
from mcscan.config.load import load_config
from mcscan.scans.frequentist import expected_bands, feldman_cousins

ge = load_coefficients(load_config(), ["Ge"], sys.argv[1])
chunk = int(sys.argv[2])
b = expected_bands(ge, "q_ee", toys=200, seed=9, points=41, chunk=chunk)
f = feldman_cousins(ge, "q_ee", toys=64, seed=9, points=11, chunk=chunk)
h = hashlib.sha256()
for a in (b.lower_limits, b.upper_limits, f.critical, f.coverage, f.delta_chi2_data):
    h.update(a.tobytes())
print(numba.get_num_threads(), h.hexdigest())
"""


def _digest(b, f) -> str:
    import hashlib

    h = hashlib.sha256()
    for a in (b.lower_limits, b.upper_limits, f.critical, f.coverage, f.delta_chi2_data):
        h.update(a.tobytes())
    return h.hexdigest()


def test_same_bits_in_fresh_processes_with_1_and_2_numba_threads(coefs, table_dir, warm):
    """The thread count fixed at start-up (NUMBA_NUM_THREADS), and other chunk sizes:
    bands and critical values bit for bit those of this process."""
    import os
    import subprocess
    import sys

    want = _digest(F.expected_bands(coefs["Ge"], "q_ee", toys=200, seed=9, points=41),
                   F.feldman_cousins(coefs["Ge"], "q_ee", toys=64, seed=9, points=11))
    for threads, chunk in (("1", 200), ("2", 37)):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        out = subprocess.run([sys.executable, "-c", _CHILD, str(table_dir), str(chunk)], env=env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [threads, want]


def test_bad_toy_arguments(coefs):
    for kw in (dict(toys=0), dict(seed=-2), dict(chunk=0), dict(points=3)):
        with pytest.raises(InputError):
            F.expected_bands(coefs["Ge"], "q_ee", **kw)
    with pytest.raises(InputError):
        F.expected_bands(coefs["Ge"], "q_xx")
    with pytest.raises(InputError):
        F.feldman_cousins(coefs["Ge"], "q_ee", grid=[0.0, 1.0])


def test_feldman_cousins_resumes_from_its_store(coefs, tmp_path, warm, chunk_interrupt, monkeypatch):
    from mcscan.io.chunks import ChunkStore
    from mcscan.errors import InputError

    ge = coefs["Ge"]
    kw = dict(toys=64, seed=4, points=11)
    want = F.feldman_cousins(ge, "q_ee", **kw)
    folder = tmp_path / "fc.partial"
    chunk_interrupt.arm(4)
    with pytest.raises(KeyboardInterrupt):
        F.feldman_cousins(ge, "q_ee", store=folder, **kw)
    chunk_interrupt.disarm()
    assert len(list(folder.glob("chunk_*.npz"))) == 4
    with pytest.raises(InputError, match="resume"):
        F.feldman_cousins(ge, "q_ee", store=folder, **kw)
    with pytest.raises(InputError, match="differs"):
        F.feldman_cousins(ge, "q_ee", store=folder, resume=True, **dict(kw, seed=5))
    calls = {"n": 0}
    real = ChunkStore.write

    def counting(store, k, arrays):
        calls["n"] += 1
        real(store, k, arrays)

    monkeypatch.setattr(ChunkStore, "write", counting)
    got = F.feldman_cousins(ge, "q_ee", store=folder, resume=True, **kw)
    assert calls["n"] == 11 - 4                        # only the missing grid values are computed
    assert got.to_json() == want.to_json() and not folder.exists()
