"""Two-parameter regions, profiled limits and the figure set."""
import json

import numpy as np
import pytest

from mcscan.cli.commands import main
from mcscan.config.load import load_config
from mcscan.scans.limits import delta_chi2_level, limit_1d
from mcscan.api import load_coefficients
from mcscan.scans.profile import profiled_chi2
from mcscan.scans.regions import polygon_area, polygons, region_2d
from mcscan.scans.grid import ScanSettings, grid_scan


@pytest.fixture(scope="module")
def setup(table_dir):
    return load_config(), table_dir


def test_polygons_of_an_ellipse():
    # Delta chi2 = (x/a)^2 + (y/b)^2: the region at level L is an ellipse of
    # area pi a b L (closed form); 401^2 grid -> 1e-3 relative.
    a, b, L = 2.0, 0.5, 4.605
    x = np.linspace(-6, 6, 401)
    y = np.linspace(-2, 2, 401)
    d = (x[:, None] / a) ** 2 + (y[None, :] / b) ** 2
    polys = polygons(x, y, d, L)
    assert len(polys) == 1
    outer, holes = polys[0]
    assert holes == [] and np.array_equal(outer[0], outer[-1])        # closed
    assert polygon_area(outer) == pytest.approx(np.pi * a * b * L, rel=1e-3)
    assert outer[:, 0].max() == pytest.approx(a * np.sqrt(L), rel=1e-3)
    assert outer[:, 1].min() == pytest.approx(-b * np.sqrt(L), rel=1e-3)


def test_two_islands_and_a_hole():
    x = np.linspace(-4, 4, 401)
    y = np.linspace(-4, 4, 401)
    r2 = x[:, None] ** 2 + y[None, :] ** 2
    ring = (np.sqrt(r2) - 2.0) ** 2 * 10          # allowed: an annulus around r = 2
    polys = polygons(x, y, ring, 1.0)
    assert len(polys) == 1 and len(polys[0][1]) == 1
    area = polygon_area(polys[0][0]) - polygon_area(polys[0][1][0])
    w = np.sqrt(0.1)                               # half width of the annulus
    assert area == pytest.approx(np.pi * ((2 + w) ** 2 - (2 - w) ** 2), rel=2e-3)
    two = np.minimum((x[:, None] - 2) ** 2 + y[None, :] ** 2, (x[:, None] + 2) ** 2 + y[None, :] ** 2)
    assert len(polygons(x, y, two, 1.0)) == 2


@pytest.mark.parametrize("det", ["Xe", "Ge"])
def test_region_extent_equals_profiled_limit(setup, det):
    # The extent of the region on one axis is the 1D interval at the same
    # Delta chi2 (4.605) with the other charge profiled: 1e-2 relative (issue).
    cfg, d = setup
    coefs = load_coefficients(cfg, [det], d)
    rng = cfg.analysis.ranges
    reg = region_2d(coefs, ("q_ee", "q_mumu"), ranges=(rng["q_ee"], rng["q_mumu"]), points=201)
    assert not reg.touches_edge and len(reg.polygons) >= 1 and reg.area > 0
    for p, other in (("q_ee", "q_mumu"), ("q_mumu", "q_ee")):
        lim = limit_1d(coefs, p, profile=(other,), profile_ranges=rng, points=601,
                       xrange=rng[p], level=delta_chi2_level(0.9, 2))
        lo, hi = lim.regions[0][0], lim.regions[-1][1]
        assert lo == pytest.approx(reg.extent[p][0], rel=1e-2)
        assert hi == pytest.approx(reg.extent[p][1], rel=1e-2)
        assert not lim.profile_at_edge


def test_profiled_chi2_is_the_minimum(setup):
    # The profiled chi2 at fixed q_ee equals the minimum over a brute-force
    # fine grid in q_mumu to 1e-6 relative (and never exceeds it by more).
    cfg, d = setup
    coefs = load_coefficients(cfg, ["Ge"], d)
    rows = np.zeros((3, 6))
    rows[:, 0] = [-8e-9, 6e-9, 1.5e-8]
    prof, best, at_edge, ok = profiled_chi2(coefs, rows, ("q_mumu",), cfg.analysis.ranges)
    assert ok.all() and not at_edge.any()
    y = np.linspace(-6e-8, 6e-8, 120001)
    for r, v in zip(rows, prof):
        sc = grid_scan(coefs, ("q_ee", "q_mumu"), (np.array([r[0]]), y), settings=ScanSettings())
        c = sc.chi2[0]
        k = int(np.argmin(c))
        assert v <= c[k] + 1e-12                       # never worse than the brute-force grid
        # the parabola through the grid minimum and its neighbours locates the
        # true minimum between grid points: agree to 1e-9 absolute (chi2 units)
        c0, c1, c2 = c[k - 1], c[k], c[k + 1]
        parabola_min = c1 - (c2 - c0) ** 2 / (8 * (c2 - 2 * c1 + c0))
        assert v == pytest.approx(parabola_min, abs=1e-9)


def test_combined_region_is_smaller(setup):
    cfg, d = setup
    rng = cfg.analysis.ranges
    areas = {}
    for dets in (["Xe"], ["Ge"], ["Xe", "Ge"]):
        coefs = load_coefficients(cfg, dets, d)
        areas["+".join(dets)] = region_2d(coefs, ("q_etau", "q_mutau"),
                                          ranges=(rng["q_etau"], rng["q_mutau"]), points=101).area
    assert areas["Xe+Ge"] < min(areas["Xe"], areas["Ge"])


def test_cli_region_and_profiled_limits(setup, tmp_path, capsys, monkeypatch):
    cfg, d = setup
    monkeypatch.chdir(tmp_path)
    assert main(["region", "--detector", "Ge", "--params", "q_ee", "q_mumu", "--tables", str(d),
                 "--json", "--quiet", "--points", "101", "--out", "r.h5"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r) >= {"regions", "extent", "area", "cl", "delta_chi2", "detectors"}
    assert r["delta_chi2"] == pytest.approx(4.6052, abs=1e-4)          # chi2.ppf(0.9, 2)
    assert (tmp_path / "r.h5").is_file()
    assert main(["limits", "--detector", "Ge", "--param", "q_ee", "--profile", "q_mumu", "--tables",
                 str(d), "--json", "--level", "4.6052", "--points", "401"]) == 0
    lim = json.loads(capsys.readouterr().out)
    assert lim["profiled"] == ["q_mumu"]
    # 1e-2: the region was scanned on a 101-point grid
    assert lim["regions"][0][0] == pytest.approx(r["extent"]["q_ee"][0], rel=1e-2)
    assert lim["regions"][-1][1] == pytest.approx(r["extent"]["q_ee"][1], rel=1e-2)


def test_cli_region_bad_input(setup, tmp_path, capsys, monkeypatch):
    cfg, d = setup
    monkeypatch.chdir(tmp_path)
    rc = main(["region", "--detector", "Ge", "--params", "q_ee", "q_mumu", "--tables", str(d),
               "--ranges", "1e-8", "-1e-8", "-1e-8", "1e-8"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "LO < HI" in err[0]
    assert not (tmp_path / "results").exists()


def test_figures_end_to_end(setup, tmp_path, capsys, monkeypatch):
    cfg, d = setup
    monkeypatch.chdir(tmp_path)
    assert main(["figures", "--tables", str(d), "--out", "figs", "--quiet"]) == 0
    names = {p.name for p in (tmp_path / "figs").iterdir()}
    for stem in ("profiles_diagonal", "profiles_transition", "region_q_ee_q_mumu",
                 "region_q_etau_q_mutau", "csi_electron", "xsec_CsI", "xsec_Xe", "xsec_Ge"):
        assert f"{stem}.png" in names and f"{stem}.pdf" in names
    # the plot command redraws the figure set from the results files alone
    assert main(["plot", "figs", "--out", "again", "--quiet"]) == 0
    assert (tmp_path / "again" / "region_q_ee_q_mumu.png").stat().st_size > 10_000


def test_levels_equal_scipy_to_the_bit():
    from scipy.special import chdtri

    from mcscan.scans.limits import _LEVELS

    for (dof, cl), v in _LEVELS.items():
        assert v == float(chdtri(dof, 1.0 - cl)), (dof, cl)                 # exact
        assert delta_chi2_level(cl, dof) == v                                # exact
    assert delta_chi2_level(0.8, 3) == float(chdtri(3, 1.0 - 0.8))          # exact (not tabulated)


def test_root_and_minimum_finders_equal_scipy_to_the_bit():
    """limits.brentq and limits.minimize_bounded take SciPy's steps: the same bits."""
    from scipy.optimize import brentq as sp_brentq
    from scipy.optimize import minimize_scalar

    from mcscan.scans.limits import brentq, minimize_bounded

    rng = np.random.default_rng(3)
    for _ in range(200):
        c = rng.uniform(-1, 1, 4)
        s = 10.0 ** rng.uniform(-9, 1)
        f = lambda t: float(np.polyval(c, t / s) + c[3] * np.exp(-t / s))  # noqa: E731
        a, b = -2.0 * s, 2.0 * s
        if np.sign(f(a)) != np.sign(f(b)) and f(a) != 0 and f(b) != 0:
            for xtol, rtol in ((1e-6 * s, 1e-12), (2e-12, 8.881784197001252e-16)):
                assert brentq(f, a, b, xtol=xtol, rtol=rtol) == \
                    sp_brentq(f, a, b, xtol=xtol, rtol=rtol)                  # exact
        g = lambda t: float((t / s - c[0]) ** 2 * (1 + c[1] ** 2) + c[2] * np.sin(3 * t / s))  # noqa: E731
        lo, hi = sorted(rng.uniform(-2 * s, 2 * s, 2))
        xatol = 1e-6 * (hi - lo)
        res = minimize_scalar(g, bounds=(lo, hi), method="bounded", options={"xatol": xatol})
        x, fun = minimize_bounded(g, (lo, hi), xatol=xatol)
        assert (x, fun) == (res.x, res.fun)                                  # exact
    with pytest.raises(ValueError, match="different signs"):
        brentq(lambda t: 1.0 + t * t, -1.0, 1.0)
