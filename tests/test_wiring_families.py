"""Parameter families beyond the charges through the API and the command line
(docs/physics.md section 11): tables with units, every allowed piece, units in JSON,
families in --fix, --profile, region, scan and xsec, results files round-tripped, and
the millicharge outputs unchanged."""
from __future__ import annotations

import json

import numpy as np
import pytest

import mcscan
from mcscan.cli import commands as cli
from mcscan.params import SPEC

#: q_ee 90% C.L. interval of Ge, e: the golden sens.json of mcscan 0.1.0 (frozen
#: regression value, the same one tests/scans/test_limits_families.py holds).
GOLDEN_Q_EE_GE = [[-4.0154601081741626e-09, 4.897708033109908e-09]]


@pytest.fixture(scope="module")
def analysis(config, table_dir):
    return mcscan.Analysis(config, tables=table_dir, build=False)


def run(capsys, *argv):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:         # argparse refused an argument
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ API

def test_api_limits_of_a_radius_have_two_pieces(analysis):
    lim = analysis.limits("r2_ee", detectors="Ge")
    assert lim.unit == "cm^2"
    assert len(lim.regions) == 2
    (a, b), (c, d) = lim.regions
    assert a < b < c < 0.0 < d          # the weak-charge flip piece, then the SM piece
    assert not (lim.open_low or lim.open_high)


def test_api_moment_limit_is_symmetric(analysis):
    lim = analysis.limits("mu_e", detectors="Ge")
    (lo, hi), = lim.regions
    assert lim.unit == "mu_B"
    assert -lo == pytest.approx(hi, rel=1e-9)


def test_api_tau_only_parameter_is_unconstrained(analysis):
    for p in ("r2_tautau", "mu_tau", "eps_u_tautau"):
        lim = analysis.limits(p, detectors="Ge")
        assert lim.unconstrained and lim.regions == []
        assert lim.reason == "no nu_tau flux at this source"


def test_api_charge_limit_unchanged_and_moved_by_a_fixed_moment(analysis, frozen):
    frozen(analysis.limits("q_ee", detectors="Ge").regions, GOLDEN_Q_EE_GE)
    moved = analysis.limits("q_ee", detectors="Ge", fixed={"mu_e": 5e-10})
    assert moved.regions != GOLDEN_Q_EE_GE and moved.unit == "e"
    with pytest.raises(mcscan.InputError, match="mu_e"):
        analysis.limits("q_ee", detectors="Ge", fixed={"mu_e": float("nan")})


def test_api_sensitivities_family_round_trip(analysis, tmp_path):
    sens = analysis.sensitivities(family="moments")
    assert isinstance(sens, mcscan.api.FamilySensitivities)
    assert sens.params == ("mu_e", "mu_mu", "mu_tau") and sens.unconstrained == ("mu_tau",)
    js = sens.to_json()
    assert js["unit"] == "mu_B" and js["units"]["mu_e"] == "mu_B"
    json.dumps(js, allow_nan=False)
    path = sens.save(tmp_path / "m.h5")
    back = mcscan.open_results(path)
    assert type(back) is type(sens)
    assert back.format_table() == sens.format_table()
    for r in sens.rows:
        assert back.limits[(r, "mu_e")].regions == sens.limits[(r, "mu_e")].regions
        assert back.limits[(r, "mu_e")].unit == "mu_B"


def test_api_default_sensitivities_stay_the_charge_table(analysis, frozen):
    sens = analysis.sensitivities()
    assert type(sens).__name__ == "Sensitivities"
    frozen(sens.limits[("Ge", "q_ee")].regions, GOLDEN_Q_EE_GE)


def test_api_region_and_scan_of_two_families(analysis, tmp_path):
    reg = analysis.region(("r2_ee", "mu_e"), detectors="Ge", points=41)
    js = reg.to_json()
    assert js["units"] == {"r2_ee": "cm^2", "mu_e": "mu_B"}
    lo, hi = reg.extent["mu_e"]
    assert -lo == pytest.approx(hi, rel=1e-6)     # symmetric in the moment
    back = mcscan.open_results(reg.save(tmp_path / "r.h5"))
    assert back.params == reg.params and back.to_json()["units"] == js["units"]
    res = analysis.scan(["mu_e", "r2_ee"], detectors="Ge", points=[21, 25], out=tmp_path / "s.h5")
    assert res.shape == (21, 25) and np.all(np.isfinite(np.asarray(res.chi2)))
    assert res.to_json()["units"] == {"mu_e": "mu_B", "r2_ee": "cm^2"}
    back = mcscan.open_results(tmp_path / "s.h5")
    assert np.array_equal(np.asarray(back.chi2), np.asarray(res.chi2))
    three = analysis.scan(["mu_e", "r2_ee", "q_ee"], detectors="Ge", points=5)   # the N-D engine
    assert three.shape == (5, 5, 5) and set(three.projections) == {
        (k, p) for k in ("profiled", "fixed") for p in ("mu_e", "r2_ee", "q_ee")}


def test_api_xsec_with_a_radius(config):
    sm = mcscan.api.xsec(config, "Ge", 30.0, "e", points=5)
    v = mcscan.api.xsec(config, "Ge", 30.0, "e", charges={"r2_ee": -3e-31}, points=5)
    # the same SM curve from the full-parameter cross section (relative 1e-12)
    np.testing.assert_allclose(v.sm, sm.sm, rtol=1e-12, atol=0.0)
    assert v.to_json()["units"]["charges"] == {"r2_ee": "cm^2"}
    assert np.all(v.bsm[:-1] < v.sm[:-1])          # this radius nearly cancels the weak charge


# ------------------------------------------------------------------ CLI

def test_cli_family_table_has_units_in_its_header(capsys, table_dir, tmp_path):
    code, out, err = run(capsys, "sensitivities", "--family", "radii", "--tables", table_dir,
                         "--out", tmp_path / "r.h5", "-q")
    assert code == 0, err
    lines = out.splitlines()
    assert "r2_ee [1e-32 cm^2]" in out and "r2_mumu [1e-32 cm^2]" in out
    row = next(ln for ln in lines if ln.startswith("r2_ee"))
    assert row.count(" U ") == 4                    # two pieces in each of the four columns
    assert "r2_tautau: not constrained: no nu_tau flux at this source" in out
    assert (tmp_path / "r.h5").is_file()


def test_cli_family_json_units(capsys, table_dir, tmp_path, frozen):
    code, out, _ = run(capsys, "sensitivities", "--family", "moments", "--tables", table_dir,
                       "--out", tmp_path / "m.h5", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["unit"] == "mu_B" and d["family"] == "moments"
    code, out, _ = run(capsys, "limits", "--param", "r2_ee", "--detector", "Ge", "--tables",
                       table_dir, "--json")
    assert code == 0 and json.loads(out)["unit"] == "cm^2"
    code, out, _ = run(capsys, "limits", "--param", "eps_u_ee", "--detector", "Ge", "--tables",
                       table_dir, "--json")
    assert code == 0 and json.loads(out)["unit"] == "1"
    code, out, _ = run(capsys, "limits", "--param", "q_ee", "--detector", "Ge", "--tables",
                       table_dir, "--json")
    d = json.loads(out)
    assert d["unit"] == "e"
    frozen(d["regions"], GOLDEN_Q_EE_GE)


def test_cli_limits_print_scale_and_unit(capsys, table_dir):
    code, out, _ = run(capsys, "limits", "--param", "r2_ee", "--detector", "Ge", "--tables", table_dir)
    assert code == 0
    assert out.rstrip().endswith("x 1e-32 cm^2") and out.count(" U ") == 1
    code, out, _ = run(capsys, "limits", "--param", "mu_e", "--detector", "Ge", "--tables", table_dir)
    lo, hi = (float(x) for x in out.split(": [")[1].split("]")[0].split(","))
    assert lo == -hi and out.rstrip().endswith("x 1e-10 mu_B")
    code, out, _ = run(capsys, "limits", "--param", "mu_tau", "--detector", "Ge", "--tables", table_dir)
    assert code == 0 and out.strip() == "mu_tau: not constrained: no nu_tau flux at this source"


def test_cli_fix_a_family_parameter(capsys, table_dir):
    _, base, _ = run(capsys, "limits", "--param", "q_ee", "--detector", "Ge", "--tables", table_dir)
    assert base.rstrip().endswith("[-4.015, +4.898] x 1e-09 e")     # unchanged format
    code, moved, err = run(capsys, "limits", "--param", "q_ee", "--detector", "Ge", "--tables",
                           table_dir, "--fix", "mu_e=5e-10")
    assert code == 0, err
    assert moved != base and moved.rstrip().endswith("x 1e-09 e")
    code, _, err = run(capsys, "limits", "--param", "q_ee", "--detector", "Ge", "--tables",
                       table_dir, "--fix", "mu_x=1")
    assert code == 2 and "unknown parameter 'mu_x'" in err


def test_cli_profile_region_scan_xsec_and_ndscan(capsys, table_dir, tmp_path):
    code, out, err = run(capsys, "limits", "--param", "r2_mumu", "--detector", "Xe", "--tables",
                         table_dir, "--profile", "r2_ee", "--points", 51)
    assert code == 0 and "profiled over r2_ee" in out, err
    code, out, err = run(capsys, "region", "--params", "r2_ee", "mu_e", "--detector", "Ge",
                         "--tables", table_dir, "--points", 31, "--out", tmp_path / "r.h5")
    assert code == 0, err
    assert "x 1e-32 cm^2" in out and "x 1e-10 mu_B" in out and "cm^2 x mu_B" in out
    code, out, err = run(capsys, "scan", "--param", "sin2w", "--detector", "Ge", "--tables",
                         table_dir, "--points", 41, "--out", tmp_path / "s.h5", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["unit"] == "1" and d["shape"] == [41]
    code, out, err = run(capsys, "xsec", "--target", "Ge", "--enu", 30, "--flavour", "e",
                         "--param", "r2_ee=-3e-31", "--points", 4)
    assert code == 0 and "r2_ee=-3e-31 cm^2" in out, err
    code, out, err = run(capsys, "ndscan", "--param", "mu_e", "--detector", "Ge", "--tables", table_dir,
                         "--points", 41, "--out", tmp_path / "n.h5", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["unit"] == "mu_B" and d["shape"] == [41]


def test_units_come_from_params():
    assert {SPEC[p].unit for p in ("q_ee", "r2_ee", "mu_e", "sin2w", "eps_d_emu")} == {
        "e", "cm^2", "mu_B", "1"}


def test_family_limit_saves_its_fixed_parameters_by_name(analysis, tmp_path):
    lim = analysis.limits("q_ee", detectors="Ge", fixed={"mu_e": 5e-10}, points=201)
    back = mcscan.open_results(lim.save(tmp_path / "l.h5"))
    assert back.regions == lim.regions and back.unit == "e"
    assert back.scan.base.size == len(SPEC)
    assert back.scan.base[list(SPEC).index("mu_e")] == 5e-10
    r2 = analysis.limits("r2_ee", detectors="Ge", points=201)
    back = mcscan.open_results(r2.save(tmp_path / "r2.h5"))
    assert back.unit == "cm^2" and back.regions == r2.regions


def test_figures_refuses_an_unknown_family_set(capsys, table_dir, tmp_path):
    code, out, err = run(capsys, "figures", "--tables", table_dir, "--out", tmp_path / "f",
                         "--families", "radii,bogus", "-q")
    assert code == 2 and out == ""
    assert "unknown figure set 'bogus'" in err
