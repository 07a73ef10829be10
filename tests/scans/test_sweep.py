"""Sweeps: keys and aliases, the threshold-moves-the-bins rule, table caching by hash,
limits equal to single runs, the results file, the figure and the command line."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mcscan.cli import commands as cli

from mcscan.stats import kernels
from mcscan.config.load import config_hash, load_config, table_config
from mcscan.errors import ConfigError, InputError
from mcscan.api import build_tables, limits
from mcscan.scans.sweep import canonical_key, parse_vary, plan_sweep, run_sweep
from mcscan.io.tables import read_table_hash, table_path
from mcscan.results import open_results


@pytest.fixture(scope="module", autouse=True)
def _warm():
    kernels.warm_up(True)


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.mark.parametrize("key, path", [
    ("detector.Ge.threshold", "detectors.Ge.threshold_kev"),
    ("detectors.Ge.threshold_kev", "detectors.Ge.threshold_kev"),
    ("detector.Xe.mass", "detectors.Xe.mass_kg"),
    ("detector.CsI.qf", "detectors.CsI.quenching_factor"),
    ("detector.Ge.bins.start_kev", "detectors.Ge.bins.start_kev"),
    ("detectors.Ge.efficiency.nuclear", "detectors.Ge.efficiency.nuclear"),
    ("years", "source.years"),
    ("source.distance_m", "source.distance_m"),
    ("signal_pull", "analysis.signal_pull"),
    ("numerics.gauss_order", "numerics.gauss_order"),
])
def test_keys_and_aliases(config, key, path):
    assert canonical_key(key, config) == path


def test_detector_aliases_need_one_detector(config):
    assert canonical_key("mass", config, ["Ge"]) == "detectors.Ge.mass_kg"
    assert canonical_key("threshold", config, ["Xe"]) == "detectors.Xe.threshold_kev"
    with pytest.raises(InputError, match="which detector"):
        canonical_key("mass", config, ["Ge", "Xe"])


@pytest.mark.parametrize("key, message", [
    ("detector.Ge.threshhold", "did you mean"),
    ("yeers", "did you mean 'years'"),
    ("source.name", "unknown --vary key 'source.name'"),
    ("detectors.Ge.edges_kev", "unknown --vary key"),
])
def test_unknown_keys_are_named(config, key, message):
    with pytest.raises(InputError, match=message):
        canonical_key(key, config)
    with pytest.raises(ConfigError, match="unknown detector 'Ar'"):
        canonical_key("detector.Ar.mass", config)


def test_values(config):
    v = parse_vary("detector.Ge.threshold=0.3:1.0:8", config)
    assert v.key == "detectors.Ge.threshold_kev" and v.unit == "keVnr"
    assert np.allclose(v.values, np.linspace(0.3, 1.0, 8), rtol=1e-12, atol=0)
    assert parse_vary("years=0.3:0.9:3", config).values == (0.3, 0.6, 0.9)    # as typed
    assert parse_vary("years=1,3,5", config).values == (1.0, 3.0, 5.0)
    assert parse_vary("years = 2", config).values == (2.0,)
    for bad, msg in [("years", "KEY=lo:hi:n"), ("years=1:2", "lo:hi:n"), ("years=2:1:3", "lo < hi"),
                     ("years=1:2:1", "expected 2 to"), ("years=a,b", "not a number"),
                     ("years=1,1", "twice"), ("years=nan", "not finite"), ("years=1:2:x", "whole")]:
        with pytest.raises(InputError, match=msg):
            parse_vary(bad, config)


def test_threshold_moves_the_bins(config, tmp_path):
    plan = plan_sweep(None, ["detector.Ge.threshold=0.3,0.6,1.0"], ["q_ee"], tables_dir=tmp_path)
    assert plan.detectors == ("Ge",)
    width = config.detector("Ge").edges_kev[1] - config.detector("Ge").edges_kev[0]
    for pt, thr in zip(plan.points, (0.3, 0.6, 1.0)):
        det = pt.config.detector("Ge")
        assert det.threshold_kev == thr and det.edges_kev[0] == thr
        assert len(det.edges_kev) == len(config.detector("Ge").edges_kev)
        assert det.edges_kev[1] - det.edges_kev[0] == pytest.approx(width, rel=1e-12)
    # the 0.6 keV point is the built-in configuration: the same table hash and folder
    base = config_hash(table_config(config, "Ge"))
    assert plan.points[1].table_key == base and plan.points[1].table_dir.endswith(base[:12])
    # explicitly varied bins win: a threshold above the first edge is then refused
    with pytest.raises(ConfigError, match="threshold_kev = 1.0"):
        plan_sweep(None, ["detector.Ge.threshold=1.0", "detector.Ge.bins.start_kev=0.6"], ["q_ee"])


def test_explicit_edges_follow_the_threshold(tmp_path):
    cfg = tmp_path / "edges.toml"
    cfg.write_text("[detectors.Ge]\nthreshold_kev = 0.5\nedges_kev = [0.5, 1.0, 2.0, 4.0, 8.0]\n")
    plan = plan_sweep(cfg, ["detector.Ge.threshold=0.4,1.5"], ["q_ee"], tables_dir=tmp_path)
    assert plan.points[0].config.detector("Ge").edges_kev == (0.4, 1.0, 2.0, 4.0, 8.0)
    assert plan.points[1].config.detector("Ge").edges_kev == (1.5, 2.0, 4.0, 8.0)


def test_bins_above_the_threshold_stay(tmp_path):
    cfg = tmp_path / "above.toml"
    cfg.write_text("[detectors.Ge]\nthreshold_kev = 0.4\n")      # bins still start at 0.6
    plan = plan_sweep(cfg, ["detector.Ge.threshold=0.3,0.5"], ["q_ee"], tables_dir=tmp_path)
    assert all(p.config.detector("Ge").edges_kev[0] == 0.6 for p in plan.points)
    with pytest.raises(ConfigError, match="sweep configuration detector.Ge.threshold=0.7"):
        plan_sweep(cfg, ["detector.Ge.threshold=0.7"], ["q_ee"], tables_dir=tmp_path)


def test_plan_errors(tmp_path):
    with pytest.raises(InputError, match="give --detector"):
        plan_sweep(None, ["years=1,3"], ["q_ee"])
    with pytest.raises(InputError, match="add --detector Ge"):
        plan_sweep(None, ["detector.Ge.mass=5,7"], ["q_ee"], detectors=["Xe"])
    with pytest.raises(InputError, match="given twice"):
        plan_sweep(None, ["years=1,3", "source.years=2"], ["q_ee"], detectors=["Ge"])
    with pytest.raises(InputError, match="electron"):
        plan_sweep(None, ["years=1,3"], ["q_ee"], detectors=["Ge"], channels=("nuclear", "electron"))
    with pytest.raises(InputError, match="at most"):
        plan_sweep(None, ["years=1:3:200", "detector.Ge.mass=1:9:100"], ["q_ee"])


def test_sweep_limits_tables_and_file(config, tmp_path):
    plan = plan_sweep(None, ["detector.Ge.threshold=0.4,0.6", "years=1,3"], ["q_ee", "q_mumu"],
                      tables_dir=tmp_path)
    assert len(plan.points) == 4 and len(plan.table_dirs) == 4
    res = run_sweep(plan)
    assert all(s == {"Ge": "built"} for s in res.built.values())
    # each table is the one its configuration asks for
    for pt in plan.points:
        assert read_table_hash(table_path(pt.table_dir, "Ge")) == pt.table_key
    # the point (0.6 keV, 3 years) is the built-in configuration: the same limits, exactly
    i = [pt.values for pt in plan.points].index((0.6, 3.0))
    build_tables(config, ["Ge"], tmp_path / "plain")
    for p in ("q_ee", "q_mumu"):
        ref = limits(config, ["Ge"], p, tables_dir=tmp_path / "plain")
        assert res.limits[(i, p)]["regions"] == [[float(a), float(b)] for a, b in ref.regions]
    # a lower threshold and a longer exposure give a tighter interval
    width = {pt.values: res.limits[(j, "q_ee")]["regions"][0][1] - res.limits[(j, "q_ee")]["regions"][0][0]
             for j, pt in enumerate(plan.points)}
    assert width[(0.4, 3.0)] < width[(0.6, 3.0)] < width[(0.6, 1.0)]
    # a second run reuses every table
    again = run_sweep(plan)
    assert all(s == {"Ge": "up to date"} for s in again.built.values())
    assert again.limits == res.limits
    # the results file and its figure
    path = res.save(tmp_path / "sweep.h5")
    back = open_results(path)
    assert back.kind == "sweep" and back.limits == res.limits
    assert back.to_json() == res.to_json()
    assert [v.key for v in back.sweep.varies] == ["detectors.Ge.threshold_kev", "source.years"]
    assert [pt.values for pt in back.sweep.points] == [pt.values for pt in plan.points]
    assert back.built == res.built
    from mcscan.plot import plot_sweep

    written = plot_sweep(back, tmp_path / "fig")
    assert sorted(p.name for p in written) == ["sweep_q_ee.pdf", "sweep_q_ee.png", "sweep_q_mumu.pdf",
                                               "sweep_q_mumu.png"]
    assert all(p.stat().st_size > 1000 for p in written)


def test_several_detectors_combine(tmp_path):
    plan = plan_sweep(None, ["years=2,3"], ["q_mumu"], detectors=["Xe", "Ge"], tables_dir=tmp_path)
    assert len(plan.table_dirs) == 2
    res = run_sweep(plan)
    for i, pt in enumerate(plan.points):
        assert {p.name for p in Path(pt.table_dir).iterdir()} == {"Xe.h5", "Ge.h5"}
        cfg = load_config(overrides={"source": {"years": pt.values[0]}})
        ref = limits(cfg, ["Xe", "Ge"], "q_mumu", tables_dir=pt.table_dir)
        assert res.limits[(i, "q_mumu")]["regions"] == [[float(a), float(b)] for a, b in ref.regions]


def test_analysis_only_sweeps_share_tables(tmp_path):
    plan = plan_sweep(None, ["signal_pull=0.05,0.1,0.2"], ["q_ee"], detectors=["Ge"],
                      tables_dir=tmp_path)
    assert len(plan.table_dirs) == 1
    res = run_sweep(plan)
    w = [r[2] - r[1] for r in res.rows("q_ee")]
    assert w[0] < w[1] < w[2]


# ------------------------------------------------------------------ command line

def _main(argv):
    """cli.main with every argument as a string; argparse errors give their exit code."""
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


def test_cli_sweep(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = _main(["sweep", "--vary", "detector.Ge.threshold=0.3:0.9:3", "--param", "q_ee",
                  "--tables", "t", "--quiet"])
    o, e = capsys.readouterr()
    assert code == 0, e
    assert "Ge: 90% C.L. allowed intervals" in o
    saved = [w for line in o.splitlines() if line.startswith("results saved to ")
             for w in line.split()[3:4]]
    assert len(saved) == 1 and saved[0].startswith("results/sweep")
    back = open_results(tmp_path / saved[0].rstrip(";"))
    assert back.kind == "sweep" and len(back.sweep.points) == 3
    assert (tmp_path / "results" / "sweep_q_ee.png").is_file()
    assert len(list((tmp_path / "t" / "sweep").iterdir())) == 3
    code = _main(["sweep", "--vary", "detector.Ge.threshold=0.3:0.9:3", "--param", "q_ee",
                  "--tables", "t", "--json", "--no-plot", "--out", "j.h5"])
    o, e = capsys.readouterr()
    assert code == 0, e
    d = json.loads(o)
    assert d["figures"] == [] and d["results_file"] == "j.h5" and len(d["configurations"]) == 3
    assert d["configurations"][1]["values"] == {"detectors.Ge.threshold_kev": 0.6}


@pytest.mark.parametrize("argv, message", [
    (["--vary", "detector.Ge.thresh=0.3,0.4", "--param", "q_ee"], "unknown --vary key"),
    (["--vary", "years=1,3", "--param", "q_ee"], "give --detector NAME"),
    (["--vary", "years", "--param", "q_ee", "--detector", "Ge"], "expected KEY=lo:hi:n"),
    (["--vary", "detector.Ge.threshold=0.7", "--param", "q_ee", "--detector", "Ge", "--vary",
      "detector.Ge.bins.start_kev=0.6"], "lies below the threshold"),
    (["--vary", "years=1,3", "--param", "q_xx", "--detector", "Ge"], "unknown parameter"),
    (["--vary", "years=1,3", "--param", "q_ee", "--detector", "Ge", "--out", "s.txt"], ".h5"),
    (["--vary", "years=1,3", "--param", "q_ee", "--detector", "Ge", "--backend", "dask"],
     "needs --scheduler"),
])
def test_cli_sweep_errors(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code = _main(["sweep", "--quiet"] + argv)
    o, e = capsys.readouterr()
    assert code == 2 and o == ""
    lines = e.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcscan: error:") and message in lines[0], e
    assert not list(tmp_path.iterdir())
