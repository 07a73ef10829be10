"""Frequentist statistics through the command line and the API (docs/statistics.md):
Asimov data files, fits, --data on the analysis commands, expected bands and
Feldman-Cousins intervals."""
from __future__ import annotations

import json

import pytest

import mcscan
from mcscan.cli import commands as cli


def run(capsys, *argv):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:         # argparse refused an argument
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def strict(text: str):
    """json.loads refusing NaN and Infinity."""
    def bad(c):
        raise ValueError(f"non-finite number {c} in JSON")

    return json.loads(text, parse_constant=bad)


def test_asimov_then_fit_round_trip(capsys, table_dir, tmp_path):
    data = tmp_path / "a.csv"
    code, _, err = run(capsys, "asimov", "--detector", "Ge", "--param", "q_ee=3e-9", "--out", data,
                       "--tables", table_dir, "-q")
    assert code == 0, err
    assert data.read_text().splitlines()[0] == "detector,bin_low,bin_high,counts"
    code, out, err = run(capsys, "fit", "--data", data, "--param", "q_ee", "--tables", table_dir,
                         "--json")
    assert code == 0, err
    d = strict(out)
    assert d["best"]["q_ee"] == pytest.approx(3e-9, rel=1e-6)
    assert d["chi2_min"] == pytest.approx(0.0, abs=1e-8)
    assert d["ndof"] == 39 and d["p_value"] == pytest.approx(1.0, abs=1e-9)
    lo, hi = d["errors"]["q_ee"]["interval"]
    assert lo < 3e-9 < hi
    code, out, _ = run(capsys, "fit", "--data", data, "--param", "q_ee", "--tables", table_dir)
    assert code == 0 and "q_ee = +3 -" in out and "39 degrees of freedom" in out


def test_asimov_refuses_an_existing_file(capsys, table_dir, tmp_path):
    data = tmp_path / "a.csv"
    data.write_text("keep me\n")
    code, out, err = run(capsys, "asimov", "--detector", "Ge", "--out", data, "--tables", table_dir)
    assert code == 2 and out == "" and "exists" in err and "--force" in err
    assert data.read_text() == "keep me\n"
    code, _, _ = run(capsys, "asimov", "--detector", "Ge", "--out", data, "--tables", table_dir,
                     "--force", "-q")
    assert code == 0 and data.read_text().startswith("detector,")


def test_data_with_asimov_counts_gives_the_asimov_interval(capsys, table_dir, tmp_path):
    data = tmp_path / "sm.csv"
    assert run(capsys, "asimov", "--detector", "Ge", "--out", data, "--tables", table_dir, "-q")[0] == 0
    code, out, _ = run(capsys, "limits", "--param", "q_ee", "--detector", "Ge", "--tables", table_dir,
                       "--json")
    want = strict(out)["regions"]
    code, out, err = run(capsys, "limits", "--param", "q_ee", "--detector", "Ge", "--tables",
                         table_dir, "--data", data, "--json")
    assert code == 0, err
    got = strict(out)["regions"]
    assert len(got) == len(want) == 1
    assert got[0] == pytest.approx(want[0], rel=1e-9)
    # other data move the interval: counts expected at q_ee = 3e-9
    shifted = tmp_path / "q.csv"
    run(capsys, "asimov", "--detector", "Ge", "--param", "q_ee=3e-9", "--out", shifted, "--tables",
        table_dir, "-q")
    code, out, _ = run(capsys, "limits", "--param", "q_ee", "--detector", "Ge", "--tables",
                       table_dir, "--data", shifted, "--json")
    (lo, hi), = strict(out)["regions"]
    assert lo < 3e-9 < hi and hi > want[0][1] * 1.5


def test_data_on_region_and_scan_and_api(capsys, table_dir, tmp_path, config):
    data = tmp_path / "q.csv"
    run(capsys, "asimov", "--detector", "Ge", "--param", "q_ee=3e-9", "--out", data, "--tables",
        table_dir, "-q")
    code, out, err = run(capsys, "scan", "--param", "q_ee", "--detector", "Ge", "--tables", table_dir,
                         "--data", data, "--points", 201, "--out", tmp_path / "s.h5", "--json")
    assert code == 0, err
    assert strict(out)["argmin"]["q_ee"] == pytest.approx(3e-9, rel=1e-9)
    code, _, err = run(capsys, "region", "--params", "q_ee", "q_mumu", "--detector", "Ge", "--tables",
                       table_dir, "--data", data, "--points", 31, "--out", tmp_path / "r.h5")
    assert code == 0, err
    a = mcscan.Analysis(config, tables=table_dir, build=False, data=data)
    assert a.detectors == ("Ge",)
    f = a.fit("q_ee")
    assert f.best["q_ee"] == pytest.approx(3e-9, rel=1e-6)
    code, _, err = run(capsys, "limits", "--param", "q_ee", "--detector", "Xe", "--tables",
                       table_dir, "--data", data)
    assert code == 2 and "Xe" in err


def test_bands_json_is_exactly_the_documented_keys(capsys, table_dir):
    code, out, err = run(capsys, "bands", "--detector", "Ge", "--param", "q_ee", "--toys", 64,
                         "--seed", 5, "--tables", table_dir, "--json")
    assert code == 0, err
    d = strict(out)
    assert list(d) == ["param", "cl", "toys", "seed", "asimov_regions", "lower", "upper", "unit"]
    for side in ("lower", "upper"):
        assert set(d[side]) == {"median", "p16", "p84", "p2.5", "p97.5"}
        q = d[side]
        assert q["p2.5"] <= q["p16"] <= q["median"] <= q["p84"] <= q["p97.5"]
    assert d["toys"] == 64 and d["seed"] == 5 and d["unit"] == "e" and d["param"] == "q_ee"
    # same seed, same numbers
    assert strict(run(capsys, "bands", "--detector", "Ge", "--param", "q_ee", "--toys", 64,
                      "--seed", 5, "--tables", table_dir, "--json")[1]) == d


def test_feldman_cousins_json(capsys, table_dir):
    code, out, err = run(capsys, "limits", "--param", "q_ee", "--detector", "Ge", "--method", "fc",
                         "--toys", 40, "--seed", 2, "--points", 15, "--tables", table_dir, "--json")
    assert code == 0, err
    d = strict(out)
    assert d["method"] == "feldman-cousins" and d["toys"] == 40 and d["seed"] == 2
    for k in ("param", "cl", "regions", "unit", "open_low", "open_high", "detectors"):
        assert k in d
    assert len(d["critical_values"]) == 15 and all(len(r) == 2 for r in d["critical_values"])
    assert len(d["wilks_coverage"]) == 15
    for theta, cov, mc_err in d["wilks_coverage"]:
        assert 0.0 <= cov <= 1.0 and mc_err == pytest.approx((cov * (1 - cov) / 40) ** 0.5, rel=1e-9)
    code, _, err = run(capsys, "limits", "--param", "q_ee", "--detector", "Ge", "--method", "fc",
                       "--profile", "q_mumu", "--tables", table_dir)
    assert code == 2 and "--profile" in err


def test_fit_and_bands_save_and_open(capsys, table_dir, tmp_path):
    data = tmp_path / "a.csv"
    run(capsys, "asimov", "--detector", "Ge", "--param", "q_ee=3e-9", "--out", data, "--tables",
        table_dir, "-q")
    code, out, err = run(capsys, "fit", "--data", data, "--param", "q_ee", "--tables", table_dir,
                         "--json", "--out", tmp_path / "f.h5")
    assert code == 0, err
    f = mcscan.open_results(tmp_path / "f.h5")
    assert f.kind == "fit" and f.to_json() == strict(out)
    code, out, err = run(capsys, "bands", "--detector", "Ge", "--param", "q_ee", "--toys", 32,
                         "--seed", 1, "--tables", table_dir, "--json", "--out", tmp_path / "b.h5")
    assert code == 0, err
    b = mcscan.open_results(tmp_path / "b.h5")
    assert b.kind == "bands" and b.toys == 32 and b.lower_limits.shape == (32,)
    assert {k: b.to_json()[k] for k in strict(out)} == strict(out)
    assert "fit" in mcscan.results.KINDS and "bands" in mcscan.results.KINDS


def test_feldman_cousins_results_file_resume_and_plot(capsys, table_dir, tmp_path, chunk_interrupt):
    out = tmp_path / "fc.h5"
    argv = ["limits", "--param", "q_ee", "--detector", "Ge", "--method", "fc", "--toys", 48,
            "--seed", 6, "--points", 11, "--tables", table_dir]
    code, want, err = run(capsys, *argv, "--json")
    assert code == 0, err
    # interrupted after 4 grid values: they are kept beside the output, the output is not written
    chunk_interrupt.arm(4)
    code, _, err = run(capsys, *argv, "--out", out, "--json")
    chunk_interrupt.disarm()
    assert code == 130 and "--resume" in err and not out.exists()
    assert len(list((tmp_path / "fc.h5.partial").glob("chunk_*.npz"))) == 4
    code, _, err = run(capsys, *argv, "--out", out, "--json")
    assert code == 2 and "resume" in err                    # the partial run is not overwritten
    code, got, err = run(capsys, *argv, "--out", out, "--resume", "--json")
    assert code == 0, err
    d = strict(got)
    assert d.pop("results_file") == str(out) and d == strict(want)
    assert not (tmp_path / "fc.h5.partial").exists()
    back = mcscan.open_results(out)
    assert back.kind == "fc" and back.to_json() == strict(want)
    assert mcscan.io.results.read_config(out)["analysis"]["cl"] == 0.9
    # an existing output is refused in one line unless --force
    code, _, err = run(capsys, *argv, "--out", out)
    assert code == 2 and "exists" in err and len(err.strip().splitlines()) == 1
    code, text, err = run(capsys, *argv, "--out", out, "--force")
    assert code == 0 and f"saved to {out}" in text
    # 'mcscan plot' draws it: critical values against the Wilks level, and the coverage
    code, text, err = run(capsys, "plot", out, "--out", tmp_path / "figs")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["fc.pdf", "fc.png"]


def test_limits_out_and_options_of_the_fc_method(capsys, table_dir, tmp_path):
    code, out, err = run(capsys, "limits", "--param", "q_mumu", "--detector", "Ge", "--tables",
                         table_dir, "--out", tmp_path / "w.h5", "--json")
    assert code == 0, err
    lim = mcscan.open_results(tmp_path / "w.h5")
    assert lim.kind == "limits" and lim.regions == strict(out)["regions"]
    for extra, flag in ((["--resume", "--out", tmp_path / "x.h5"], "--resume"),
                        (["--backend", "dask-local"], "--backend"), (["--chunk-toys", 64], "--chunk-toys"),
                        (["--workers", 2], "--workers")):
        code, _, err = run(capsys, "limits", "--param", "q_ee", "--detector", "Ge", "--tables",
                           table_dir, *extra)
        assert code == 2 and f"{flag} is for --method fc" in err, err
    code, _, err = run(capsys, "limits", "--param", "q_ee", "--detector", "Ge", "--method", "fc",
                       "--resume", "--tables", table_dir)
    assert code == 2 and "--resume needs --out" in err
