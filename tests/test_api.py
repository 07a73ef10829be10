"""The public API: ``import mcscan`` and :class:`mcscan.Analysis`.

* an Analysis opens each table once, and its methods open none;
* the five-line notebook example gives the q_ee intervals of the original
  command line bit for bit (tests/data/frozen_sensitivities.json: full-precision
  floats written by ``mcscan sensitivities --json`` before the API existed);
* ``examples/notebook_quickstart.py`` runs with the public API only;
* ``import mcscan`` loads no numerical package.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import mcscan
import mcscan.io.tables as tio

ROOT = Path(__file__).resolve().parents[1]
#: Output of the original code (before the API), ``mcscan sensitivities --json``;
#: its source is written in the file.
GOLDEN = ROOT / "tests" / "data" / "frozen_sensitivities.json"


@pytest.fixture
def opens(monkeypatch):
    """Count the response tables opened (calls of mcscan.io.tables.load_table)."""
    calls = []
    real = tio.load_table

    def counting(path, *a, **k):
        calls.append(Path(path).name)
        return real(path, *a, **k)

    monkeypatch.setattr(tio, "load_table", counting)
    return calls


def test_public_names():
    for name in ("__version__", "load_config", "build_tables", "Analysis", "open_results", "PARAMS",
                 "McscanError", "ConfigError", "TableError", "InputError", "OutputError",
                 "ResultsError"):
        assert name in mcscan.__all__
        assert getattr(mcscan, name) is not None
    assert issubclass(mcscan.ResultsError, mcscan.McscanError)
    assert mcscan.PARAMS[0] == "q_ee"
    with pytest.raises(AttributeError):
        mcscan.no_such_name  # noqa: B018


def test_import_is_light():
    code = ("import sys, mcscan; mcscan.__version__; mcscan.PARAMS; "
            "heavy = [m for m in ('numpy', 'numba', 'scipy', 'h5py') if m in sys.modules]; "
            "print(heavy)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"


def test_tables_opened_once(table_dir, opens):
    a = mcscan.Analysis(tables=table_dir)
    assert a.detectors == ("CsI", "Xe", "Ge")
    assert sorted(opens) == ["CsI.h5", "Ge.h5", "Xe.h5"]          # each table once
    sens = a.sensitivities()
    for det in ("Ge", ["Xe", "Ge"], None):
        a.limits("q_mumu", detectors=det)
    a.limits("q_ee", cl=0.95, profile=("q_mumu",), points=101)
    a.region(("q_ee", "q_mumu"), detectors="Ge", points=21, ranges=((-2e-8, 2e-8), (-2e-8, 2e-8)))
    assert len(opens) == 3                                          # and never again
    assert sens.rows == ("CsI", "Xe", "Ge", "combined")
    assert {s for _, s in a.status.values()} == {"up to date"}


def test_notebook_example_matches_original_cli(table_dir, frozen):
    golden = json.loads(GOLDEN.read_text())["nuclear"]["intervals"]
    # The five-line notebook example (README, section "Python API"):
    import mcscan as m
    a = m.Analysis(tables=table_dir)                     # README: Analysis() with tables/
    for det in a.detectors:
        frozen(a.limits("q_ee", detectors=det).regions, golden[det]["q_ee"])   # exact (AVX-512)
    frozen(a.limits("q_ee").regions, golden["combined"]["q_ee"])              # exact (AVX-512)


def test_sensitivities_match_original_cli(table_dir, frozen):
    golden = json.loads(GOLDEN.read_text())["nuclear"]["intervals"]
    sens = mcscan.Analysis(tables=table_dir).sensitivities()
    for row in ("CsI", "Xe", "Ge", "combined"):
        for p in sens.params:
            frozen(sens.limits[(row, p)].regions, golden[row][p])   # exact (AVX-512)


def test_limits_arguments(table_dir):
    a = mcscan.Analysis(detectors=["Ge", "Xe"], tables=table_dir)
    assert a.detectors == ("Ge", "Xe")
    both = a.limits("q_ee")
    assert both.detectors == ("Ge", "Xe")
    assert a.limits("q_ee", detectors=["Ge", "Xe"]).regions == both.regions      # exact
    with pytest.raises(mcscan.InputError, match="not part of this analysis"):
        a.limits("q_ee", detectors="CsI")
    with pytest.raises(mcscan.ConfigError, match="unknown detector 'Gee'"):
        a.limits("q_ee", detectors="Gee")
    with pytest.raises(mcscan.InputError, match="unknown parameter 'q_e'"):
        a.limits("q_e")
    for cl in (0.0, 1.0, 1.5, float("nan"), 1e-300, 1 - 1e-12):
        with pytest.raises(mcscan.InputError, match="confidence level"):
            a.limits("q_ee", cl=cl)
    with pytest.raises(mcscan.InputError, match="finite"):
        a.limits("q_ee", fixed={"q_mumu": float("inf")})
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # one error, no numpy warning first
        with pytest.raises(mcscan.InputError, match=r"within \[-1, 1\] e"):
            a.limits("q_ee", xrange=(-1e308, 1e308))
        with pytest.raises(mcscan.InputError, match=r"within \[-1, 1\] e"):
            a.region(("q_ee", "q_mumu"), ranges=((-1e308, 1e308), (-1e-8, 1e-8)))
    with pytest.raises(mcscan.InputError, match="max_points"):
        a.limits("q_ee", points=2001, max_points=1000)


def test_analysis_input_errors(table_dir, tmp_path):
    with pytest.raises(mcscan.InputError, match="named twice"):
        mcscan.Analysis(detectors=["Ge", "Ge"], tables=table_dir)
    with pytest.raises(mcscan.InputError, match="unknown channel 'bogus'"):
        mcscan.Analysis(channels=("nuclear", "bogus"), tables=table_dir)
    with pytest.raises(mcscan.InputError, match="Ge does not enable the 'electron' channel"):
        mcscan.Analysis(detectors="Ge", channels=("nuclear", "electron"), tables=table_dir)
    with pytest.raises(mcscan.TableError, match="no table for Ge"):
        mcscan.Analysis(detectors="Ge", tables=tmp_path / "empty", build=False)
    assert not (tmp_path / "empty").exists()


def test_build_tables_public(tmp_path):
    out = mcscan.build_tables(detectors=["Ge"], tables=tmp_path)
    assert out == {"Ge": (tmp_path / "Ge.h5", "built")}
    again = mcscan.build_tables(None, "Ge", tmp_path)
    assert again == {"Ge": (tmp_path / "Ge.h5", "up to date")}
    # An Analysis on a folder of current tables builds nothing.
    before = (tmp_path / "Ge.h5").stat().st_mtime_ns
    a = mcscan.Analysis(detectors="Ge", tables=tmp_path)
    assert a.status["Ge"][1] == "up to date"
    assert (tmp_path / "Ge.h5").stat().st_mtime_ns == before


def test_analysis_builds_missing_table_once(tmp_path, opens, config):
    a = mcscan.Analysis(config, detectors="Ge", tables=tmp_path / "t")
    assert a.status["Ge"][1] == "built"
    assert opens == []                      # built in memory: not read back through load_table
    ref = mcscan.Analysis(config, detectors="Ge", tables=tmp_path / "t")
    assert ref.status["Ge"][1] == "up to date"
    # The limits from the freshly built table equal those from the file (exact).
    assert a.limits("q_ee").regions == ref.limits("q_ee").regions


def test_default_tables_dir(tmp_path):
    from mcscan.api import default_tables_dir

    assert default_tables_dir(None) == Path("tables")
    only_cl = tmp_path / "cl95.toml"
    only_cl.write_text("[analysis]\ncl = 0.95\n")          # tables do not depend on it
    assert default_tables_dir(None, only_cl) == Path("tables")
    heavy = tmp_path / "heavy_ge.toml"
    heavy.write_text("[detectors.Ge]\nmass_kg = 8.0\n")
    d = default_tables_dir(None, heavy)
    assert d.parent == Path("tables") and d.name.startswith("heavy_ge-") and len(d.name) == 17
    assert default_tables_dir(None, heavy) == d                       # deterministic
    other = tmp_path / "heavy_ge2.toml"
    other.write_text("[detectors.Ge]\nmass_kg = 9.0\n")
    assert default_tables_dir(None, other).name[-8:] != d.name[-8:]


def test_scan_in_memory_and_to_file(table_dir, tmp_path, opens):
    a = mcscan.Analysis(detectors=["Ge", "Xe"], tables=table_dir)
    mem = a.scan("q_ee", ranges=[(-1e-8, 1e-8)], points=11, detectors="Ge")
    assert mem.kind == "scan" and mem.shape == (11,) and mem.detectors == ("Ge",)
    f = a.scan(["q_ee"], ranges=[(-1e-8, 1e-8)], points=11, detectors="Ge", out=tmp_path / "s.h5")
    assert np.array_equal(np.asarray(f.chi2), np.asarray(mem.chi2))          # exact
    back = mcscan.open_results(tmp_path / "s.h5")
    assert np.array_equal(np.asarray(back.chi2), np.asarray(mem.chi2))       # exact
    with pytest.raises(mcscan.InputError, match="exists"):
        a.scan(["q_ee"], ranges=[(-1e-8, 1e-8)], points=11, detectors="Ge", out=tmp_path / "s.h5")
    assert len(opens) == 2


def test_quickstart_example_runs(tmp_path, table_dir, frozen_text):
    env = dict(os.environ, MCSCAN_TABLES=str(table_dir))
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "notebook_quickstart.py")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    golden = json.loads(GOLDEN.read_text())["nuclear"]["intervals"]
    line = next(x for x in r.stdout.splitlines() if x.startswith("combined: q_ee in "))
    frozen_text(line, f"combined: q_ee in {golden['combined']['q_ee']} e")
    assert sorted(os.listdir(tmp_path / "results")) == ["quickstart_Ge_q_ee.h5", "quickstart_region.h5"]
    assert mcscan.open_results(tmp_path / "results" / "quickstart_region.h5").kind == "region"
    # It uses the public API only.
    text = (ROOT / "examples" / "notebook_quickstart.py").read_text()
    assert "from mcscan" not in text and "mcscan." in text
    for line in text.splitlines():
        for word in line.split():
            if word.startswith("mcscan.") and "(" in word:
                assert word.split("(")[0].split(".")[1] in mcscan.__all__, line


def test_build_tables_script(tmp_path):
    script = ROOT / "scripts" / "build_tables.py"
    r = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0 and "--tables" in r.stdout and "response table" in r.stdout
    r = subprocess.run([sys.executable, str(script), "--detector", "Gee", "--tables", tmp_path / "t"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "unknown detector 'Gee'" in r.stderr
    r = subprocess.run([sys.executable, str(script), "--config", str(tmp_path)], capture_output=True,
                       text=True, check=False)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "is a folder" in r.stderr
    r = subprocess.run([sys.executable, str(script), "--detector", "Ge", "--tables", tmp_path / "t"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Ge: built") and (tmp_path / "t" / "Ge.h5").is_file()
    assert not (tmp_path / "t" / "Xe.h5").exists()


def test_readme_example_prints_what_the_readme_shows(tmp_path, table_dir, frozen_text):
    """The README's five-line example, run as written, prints the README's output."""
    text = (ROOT / "README.md").read_text()
    part = text[text.index("## Python API"):]
    code = part.split("```python\n", 1)[1].split("```", 1)[0]
    shown = part.split("```python\n", 1)[1].split("```", 1)[1].split("```\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) == 5
    (tmp_path / "tables").symlink_to(table_dir)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    frozen_text(r.stdout, shown)
