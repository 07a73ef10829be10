"""The mcscan command, in-process (``mcscan.cli.commands.main``) and end to end.

Success: the documented outputs (JSON objects, results files).  Bad input:
exit status 2 (1 for a missing or mismatched table), exactly one line
``mcscan: error: ...`` on stderr naming the problem, nothing on stdout and no
file written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from mcscan.cli import commands as cli

from mcscan.stats import kernels
from mcscan.config.load import config_hash, load_config, table_config
from mcscan.api import build_tables, limits, load_coefficients
from mcscan.scans.grid import grid_scan
from mcscan.io.tables import read_table_hash, table_path
from mcscan.results import open_results


@pytest.fixture(scope="session", autouse=True)
def _warm_kernels():
    kernels.warm_up(True)
    kernels.warm_up(False)


@pytest.fixture(scope="module")
def tables(table_dir):
    """The shared reference tables; tests must not change them."""
    return table_dir


@pytest.fixture(scope="module")
def other_tables(tmp_path_factory):
    """Tables built from another configuration (Ge mass 8 kg)."""
    d = tmp_path_factory.mktemp("cli_other_tables")
    build_tables(load_config(overrides={"detectors": {"Ge": {"mass_kg": 8.0}}}), ["Ge"], d)
    return d


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(argv, capsys):
    """(exit status, stdout, stderr) of ``mcscan argv`` run in-process."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:      # argparse errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _snapshot(folder):
    """{name: (size, mtime_ns, inode)} of every file below ``folder``."""
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            st = os.stat(os.path.join(root, f))
            out[os.path.relpath(os.path.join(root, f), folder)] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return out


def _one_json(out):
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    obj = json.loads(lines[0])
    assert isinstance(obj, dict)
    return obj


# ------------------------------------------------------------ success


def test_build(cwd, capsys):
    code, out, err = _run(["build", "--tables", "D", "--quiet"], capsys)
    assert code == 0, err
    assert sorted(os.listdir(cwd / "D")) == ["CsI.h5", "Ge.h5", "Xe.h5"]
    cfg = load_config()
    for n in ("CsI", "Xe", "Ge"):
        assert f"{n}: built" in out
        assert read_table_hash(table_path(cwd / "D", n)) == config_hash(table_config(cfg, n))
    before = _snapshot(cwd / "D")
    code, out, err = _run(["build", "--tables", "D", "--quiet", "--detector", "Ge"], capsys)
    assert code == 0
    assert "Ge: up to date" in out and "CsI" not in out
    assert _snapshot(cwd / "D") == before


def test_limits_json(cwd, tables, capsys):
    code, out, err = _run(["limits", "--detector", "Ge", "--param", "q_ee", "--json",
                           "--tables", tables], capsys)
    assert code == 0, err
    obj = _one_json(out)
    assert {"detectors", "param", "cl", "delta_chi2", "regions", "unit", "table_hashes"} <= set(obj)
    assert obj["detectors"] == ["Ge"] and obj["param"] == "q_ee" and obj["unit"] == "e"
    assert obj["cl"] == 0.9
    assert obj["delta_chi2"] == pytest.approx(2.7055, abs=1e-4)       # 90% C.L., 1 d.o.f., abs 1e-4
    assert obj["table_hashes"] == [read_table_hash(table_path(tables, "Ge"))]
    (lo, hi), = obj["regions"]
    # docs/physics.md section 9: Ge [-3.9, 4.9] 1e-9 e published; within 5% of each end.
    assert lo == pytest.approx(-3.9e-9, rel=0.05)
    assert hi == pytest.approx(4.9e-9, rel=0.05)
    # The CLI only prints what the library computes (same call, exact).
    lim = limits(load_config(), ["Ge"], "q_ee", tables_dir=tables)
    assert obj == json.loads(json.dumps(lim.to_json()))
    assert obj["regions"] == [[float(a), float(b)] for a, b in lim.regions]
    assert not os.listdir(cwd)                         # limits writes nothing


def test_limits_json_of_a_narrow_family_piece_open_at_the_range_end(cwd, tables, capsys):
    # sin2w on CsI over [0, 0.1]: the allowed piece at the range's end is narrow, so it gets
    # a fine local scan; its open flag was once a NumPy bool, which JSON refused
    code, out, err = _run(["limits", "--detector", "CsI", "--param", "sin2w", "--range", "0", "0.1",
                           "--json", "--tables", tables], capsys)
    assert code == 0, err
    obj = _one_json(out)
    (lo, hi), = obj["regions"]
    assert 0.09 < lo < hi == 0.1
    assert obj["open_high"] is True and obj["open_low"] is False


def test_limits_text_and_negative_range(cwd, tables, capsys):
    code, out, err = _run(["limits", "--detector", "Ge", "--detector", "Xe", "--param", "q_emu",
                           "--range", "-1e-7", "1e-7", "--points", "101", "--cl", "0.95",
                           "--tables", tables, "--quiet"], capsys)
    assert code == 0, err
    assert err == ""
    assert out.count("\n") == 1 and "q_emu allowed at 95% C.L." in out and "Ge + Xe" in out


def test_limits_open_range_warns(cwd, tables, capsys):
    code, _out, err = _run(["limits", "--detector", "Ge", "--param", "q_ee", "--range", "-1e-9", "1e-9",
                           "--points", "201", "--tables", tables, "--quiet"], capsys)
    assert code == 0
    assert err.count("\n") == 1 and "widen --range" in err


def test_scan_1d(cwd, tables, capsys):
    code, out, err = _run(["scan", "--detector", "Ge", "--param", "q_ee", "--points", "11",
                           "--fix", "q_mumu=-1e-9", "--tables", tables, "--quiet"], capsys)
    assert code == 0, err
    path = cwd / "results" / "scan_q_ee_Ge.h5"           # named after what it holds
    assert str(path.relative_to(cwd)) in out
    res = open_results(path)
    x = np.linspace(-6e-8, 6e-8, 11)                   # the configured range
    assert np.array_equal(res.axes[0], x)
    cfg = load_config()
    ref = grid_scan(load_coefficients(cfg, ["Ge"], tables), ("q_ee",), (x,), fixed={"q_mumu": -1e-9})
    assert np.array_equal(np.asarray(res.chi2), ref.chi2)         # same computation, exact
    assert res.fixed["q_mumu"] == -1e-9
    assert os.listdir(cwd / "results") == ["scan_q_ee_Ge.h5"]
    # A second run refuses to replace it; --force replaces it.
    before = _snapshot(cwd)
    code, out, err = _run(["scan", "--detector", "Ge", "--param", "q_ee", "--points", "11",
                           "--tables", tables, "--quiet"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "results/scan_q_ee_Ge.h5" in err and "--force" in err
    assert _snapshot(cwd) == before
    code, out, err = _run(["scan", "--detector", "Ge", "--param", "q_ee", "--points", "11",
                           "--tables", tables, "--quiet", "--force"], capsys)
    assert code == 0, err
    assert open_results(path).fixed["q_mumu"] == 0.0


def test_scan_2d_json(cwd, tables, capsys):
    code, out, err = _run(["scan", "--detector", "Ge", "--detector", "Xe", "--param", "q_ee",
                           "--param", "q_emu", "--points", "5", "--points", "7",
                           "--range", "-1e-8", "1e-8", "--range", "-2e-8", "4e-8",
                           "--out", "my/scan.h5", "--json", "--tables", tables, "--quiet"], capsys)
    assert code == 0, err
    obj = _one_json(out)
    assert obj["shape"] == [5, 7] and obj["points"] == 35 and obj["params"] == ["q_ee", "q_emu"]
    assert obj["detectors"] == ["Ge", "Xe"] and obj["unit"] == "e" and obj["unconverged"] == 0
    assert obj["results_file"] == os.path.join("my", "scan.h5")
    res = open_results(cwd / "my" / "scan.h5")
    assert res.shape == (5, 7)
    assert np.array_equal(res.axes[1], np.linspace(-2e-8, 4e-8, 7))
    assert obj["chi2_min"] == float(np.min(np.asarray(res.chi2)))
    assert not (cwd / "results").exists()


def test_scan_and_ndscan_same_numbers(cwd, tables, capsys):
    """'mcscan scan' and 'mcscan ndscan' make the same API call: bit-identical chi2."""
    common = ["--detector", "Xe", "--param", "q_ee", "--param", "q_mumu", "--points", "9",
              "--points", "13", "--tables", tables, "--quiet"]
    assert _run(["scan", *common, "--out", "a.h5"], capsys)[0] == 0
    assert _run(["ndscan", *common, "--out", "b.h5"], capsys)[0] == 0
    a, b = open_results(cwd / "a.h5"), open_results(cwd / "b.h5")
    assert np.array_equal(np.asarray(a.chi2), np.asarray(b.chi2))          # exact
    assert np.array_equal(np.asarray(a.converged), np.asarray(b.converged))


def test_sensitivities_json(cwd, tables, capsys):
    code, out, err = _run(["sensitivities", "--json", "--tables", tables, "--out", "F.h5"], capsys)
    assert code == 0, err
    obj = _one_json(out)
    assert obj["unit"] == "e" and obj["cl"] == 0.9 and obj["results_file"] == "F.h5"
    assert set(obj["intervals"]) == {"CsI", "Xe", "Ge", "combined"}
    for row, per in obj["intervals"].items():
        assert set(per) == {"q_ee", "q_mumu", "q_emu", "q_etau", "q_mutau"}
        for regions in per.values():
            assert regions and all(lo < 0.0 < hi for lo, hi in regions[:1])
        # combining detectors never loosens a limit
        if row != "combined":
            for p, regions in per.items():
                assert obj["intervals"]["combined"][p][0][1] <= regions[-1][1] * (1 + 1e-9)
    res = open_results(cwd / "F.h5")
    assert res.kind == "sensitivities" and res.rows == ("CsI", "Xe", "Ge", "combined")
    # Same numbers in the file and on stdout (exact).
    for row in res.rows:
        for p in res.params:
            assert res.limits[(row, p)].regions == obj["intervals"][row][p]
    assert sorted(os.listdir(cwd)) == ["F.h5"]


# ------------------------------------------------------------ bad input


def _bad_toml(cwd, text):
    (cwd / "bad.toml").write_text(text)
    return "bad.toml"


# (id, argv builder (cwd, tables, other_tables) -> argv, regular expression in the message)
BAD = [
    ("unknown detector", lambda c, t, o: ["limits", "--detector", "Gee", "--param", "q_ee", "--tables", t],
     r"unknown detector 'Gee'"),
    ("unknown detector scan", lambda c, t, o: ["scan", "--detector", "Nope", "--param", "q_ee",
                                               "--points", "5", "--tables", t], r"unknown detector 'Nope'"),
    ("unknown detector build", lambda c, t, o: ["build", "--detector", "Nope", "--tables", "D"],
     r"unknown detector 'Nope'"),
    ("unknown parameter", lambda c, t, o: ["limits", "--detector", "Ge", "--param", "q_eee", "--tables", t],
     r"unknown parameter 'q_eee'"),
    ("unknown parameter scan", lambda c, t, o: ["scan", "--detector", "Ge", "--param", "q_mumu",
                                                "--param", "q_xy", "--tables", t],
     r"unknown parameter 'q_xy'"),
    ("fix nan", lambda c, t, o: ["scan", "--detector", "Ge", "--param", "q_mumu", "--fix", "q_ee=nan",
                                 "--tables", t], r"--fix.*nan.*finite"),
    ("fix inf", lambda c, t, o: ["limits", "--detector", "Ge", "--param", "q_mumu", "--fix", "q_ee=inf",
                                 "--tables", t], r"--fix.*inf.*finite"),
    ("fix unknown", lambda c, t, o: ["limits", "--detector", "Ge", "--param", "q_mumu", "--fix", "q_e=1e-9",
                                     "--tables", t], r"unknown parameter 'q_e'"),
    ("fix scanned", lambda c, t, o: ["scan", "--detector", "Ge", "--param", "q_mumu", "--fix",
                                     "q_mumu=1e-9", "--tables", t], r"q_mumu is both scanned and fixed"),
    ("range reversed", lambda c, t, o: ["limits", "--detector", "Ge", "--param", "q_ee", "--range", "1e-8",
                                        "-1e-8", "--tables", t], r"range"),
    ("range reversed scan", lambda c, t, o: ["scan", "--detector", "Ge", "--param", "q_ee", "--range",
                                             "1e-8", "-1e-8", "--tables", t], r"--range.*LO < HI"),
    ("range nan", lambda c, t, o: ["limits", "--detector", "Ge", "--param", "q_ee", "--range", "nan",
                                   "1e-8", "--tables", t], r"--range.*nan"),
    ("edges via config", lambda c, t, o: ["build", "--config", _bad_toml(
        c, "[detectors.Ge]\nedges_kev = [0.6, 2.0, 1.5, 3.0]\n"), "--tables", "D"],
     r"detectors\.Ge.*edges.*increase"),
    ("edges via config limits", lambda c, t, o: ["limits", "--config", _bad_toml(
        c, "[detectors.Ge]\nedges_kev = [0.6, 2.0, 2.0, 3.0]\n"), "--detector", "Ge", "--param", "q_ee",
        "--tables", t], r"detectors\.Ge.*edges.*increase"),
    ("negative mass via config", lambda c, t, o: ["sensitivities", "--config", _bad_toml(
        c, "[detectors.Ge]\nmass_kg = -7.0\n"), "--tables", "D"], r"detectors\.Ge\.mass_kg"),
    ("bad toml", lambda c, t, o: ["build", "--config", _bad_toml(c, "[source\n"), "--tables", "D"],
     r"bad\.toml.*not valid TOML"),
    ("missing config", lambda c, t, o: ["build", "--config", "nope.toml", "--tables", "D"],
     r"nope\.toml.*not found"),
    ("missing table", lambda c, t, o: ["limits", "--detector", "Ge", "--param", "q_ee", "--tables",
                                       _empty(c)], r"no table for Ge.*mcscan build"),
    ("missing table scan", lambda c, t, o: ["scan", "--detector", "Ge", "--param", "q_ee",
                                            "--tables", _empty(c)], r"no table for Ge.*mcscan build"),
    ("mismatched table", lambda c, t, o: ["limits", "--detector", "Ge", "--param", "q_ee", "--tables", o],
     r"another configuration.*mcscan build"),
    ("mismatched table scan", lambda c, t, o: ["scan", "--detector", "Ge", "--param", "q_ee",
                                               "--points", "5", "--tables", o], r"another configuration"),
    ("cl above 1", lambda c, t, o: ["limits", "--detector", "Ge", "--param", "q_ee", "--cl", "1.5",
                                    "--tables", t], r"--cl.*1\.5"),
    ("cl zero", lambda c, t, o: ["sensitivities", "--cl", "0", "--tables", t], r"--cl"),
    ("cl nan", lambda c, t, o: ["limits", "--detector", "Ge", "--param", "q_ee", "--cl", "nan",
                                "--tables", t], r"--cl"),
    ("bogus channel", lambda c, t, o: ["limits", "--detector", "Ge", "--param", "q_ee", "--channels",
                                       "nuclear,bogus", "--tables", t], r"unknown channel 'bogus'"),
    ("bogus channel sensitivities", lambda c, t, o: ["sensitivities", "--channels", "nuclear,bogus",
                                                     "--tables", t], r"unknown channel 'bogus'"),
    ("channel not enabled", lambda c, t, o: ["limits", "--detector", "Ge", "--param", "q_ee",
                                             "--channels", "nuclear,electron", "--tables", t],
     r"Ge.*'electron' channel"),
    ("points 1", lambda c, t, o: ["limits", "--detector", "Ge", "--param", "q_ee", "--points", "1",
                                  "--tables", t], r"--points.*1 points"),
    ("points 1 scan", lambda c, t, o: ["scan", "--detector", "Ge", "--param", "q_ee", "--points", "1",
                                       "--tables", t], r"--points"),
    ("points text", lambda c, t, o: ["scan", "--detector", "Ge", "--param", "q_ee", "--points", "ten",
                                     "--tables", t], r"--points.*'ten'"),
    ("three params", lambda c, t, o: ["scan", "--detector", "Ge", "--param", "q_ee", "--param", "q_mumu",
                                      "--param", "q_emu", "--tables", t], r"one or two"),
    ("missing param", lambda c, t, o: ["limits", "--detector", "Ge", "--tables", t], r"--param"),
    ("unknown command", lambda c, t, o: ["limit", "--detector", "Ge"], r"invalid choice"),
]


#: Problems with a table (not with the input): exit status 1.
EXIT_1 = {"missing table", "missing table scan", "mismatched table", "mismatched table scan"}


def _empty(cwd):
    (cwd / "empty").mkdir(exist_ok=True)
    return "empty"


@pytest.mark.parametrize("name, build, pattern", BAD, ids=[b[0] for b in BAD])
def test_bad_input(cwd, tables, other_tables, capsys, name, build, pattern):
    argv = build(cwd, tables, other_tables)
    before_cwd = _snapshot(cwd)
    before_tables = (_snapshot(tables), _snapshot(other_tables))
    code, out, err = _run(argv, capsys)
    assert code == (1 if name in EXIT_1 else 2)
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("mcscan: error: ")
    assert re.search(pattern, err), err
    # Nothing written: no results, no tables, reference tables untouched.
    assert _snapshot(cwd) == before_cwd
    assert not (cwd / "results").exists() and not (cwd / "D").exists()
    assert (_snapshot(tables), _snapshot(other_tables)) == before_tables


def test_interrupt_writes_nothing(cwd, tables, capsys, monkeypatch):
    import mcscan.api as mp

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(mp.Analysis, "limits", interrupted)
    code, _out, err = _run(["limits", "--detector", "Ge", "--param", "q_ee", "--tables", tables], capsys)
    assert code == 130
    assert err.count("\n") == 1 and "interrupted" in err
    assert not os.listdir(cwd)


# ------------------------------------------------------------ end to end


def _mcscan(args, cwd):
    return subprocess.run([sys.executable, "-m", "mcscan", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def test_subprocess_success(tmp_path, tables):
    r = _mcscan(["limits", "--detector", "Xe", "--param", "q_mumu", "--json", "--tables", tables],
                tmp_path)
    assert r.returncode == 0, r.stderr
    obj = _one_json(r.stdout)
    assert obj["param"] == "q_mumu" and obj["unit"] == "e"
    assert r.stderr == ""


def test_subprocess_scan_reports_numba_time_apart(tmp_path, tables):
    # a new process compiles the row kernel or loads it from the cache: that time is
    # printed and stored on its own, and the rate is that of the rest of the compute phase
    from mcscan.results import open_results

    r = _mcscan(["scan", "--detector", "Xe", "--param", "q_ee", "--param", "q_mumu", "--points", "21",
                 "--tables", tables, "--out", tmp_path / "s.h5"], tmp_path)
    assert r.returncode == 0, r.stderr
    line = r.stdout.splitlines()[0]
    assert " s of it compiling or loading the kernels, " in line and " points/s, local)" in line
    res = open_results(tmp_path / "s.h5")
    assert 0.0 < res.compile_time_s < res.compute_time_s <= res.wall_time_s
    rate = 441 / (res.compute_time_s - res.compile_time_s)
    assert abs(res.points_per_second - rate) <= 1e-12 * rate
    assert f"({res.compile_time_s:.1f} s of it compiling or loading the kernels, {rate:.3g} points/s" in line


def test_first_2d_scan_compiles_only_the_one_row_kernel(tmp_path, tables, capsys):
    # an empty kernel cache: a small 2D scan runs on the one-row kernel instead of first
    # compiling the lockstep one (mcscan.stats.kernels.STAND_IN_POINTS), with its bits
    env = {**os.environ, "MCSCAN_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("NUMBA_CACHE_DIR", None)
    args = ["scan", "--detector", "Xe", "--param", "q_ee", "--param", "q_mumu", "--points", "61",
            "--range", "-3e-8", "3e-8", "--range", "-2e-8", "2e-8", "--tables", tables]
    r = subprocess.run([sys.executable, "-m", "mcscan", *args, "--out", str(tmp_path / "first.h5")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    probe = ("from mcscan.stats import _jit, kernels as k; "
             "print(_jit.built(k._rows), _jit.built(k._row))")
    r = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                       timeout=120, check=True)
    assert r.stdout.split() == ["False", "True"]
    assert kernels._rows.signatures          # this process: the lockstep kernel (session fixture)
    _run([*args, "--out", tmp_path / "here.h5"], capsys)
    first, here = open_results(tmp_path / "first.h5"), open_results(tmp_path / "here.h5")
    assert np.array_equal(first.chi2, here.chi2) and np.array_equal(first.converged, here.converged)
    assert np.array_equal(first.pulls["Xe"], here.pulls["Xe"])


def test_subprocess_bad_input(tmp_path, tables):
    r = _mcscan(["scan", "--detector", "Ge", "--param", "q_ee", "--fix", "q_mumu=inf",
                 "--tables", tables], tmp_path)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("mcscan: error:") and "inf" in r.stderr
    r = _mcscan(["limits", "--detector", "Ge", "--param", "q_ee", "--tables", "missing"], tmp_path)
    assert r.returncode == 1                  # a table problem, not bad input
    assert r.stderr.count("\n") == 1 and "no table for Ge" in r.stderr
    assert not os.listdir(tmp_path)
