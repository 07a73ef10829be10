"""A rerun of the main job with nothing changed prints the stored table.

``mcscan sensitivities`` keeps its default results file; when that file was
computed from exactly the current inputs (configuration, tables, counts,
settings, C.L. and package code, hashed into ``inputs_sha256``) the table is
read from it instead of being computed again.  Anything else is computed."""
from __future__ import annotations

import json

import h5py
import pytest

import mcscan
import mcscan.api as api
from mcscan.cli import commands as cli


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _table(out):
    return [line for line in out.splitlines() if line.startswith(("CsI", "Xe", "Ge", "combined"))]


def test_rerun_reads_the_stored_table(cwd, table_dir, capsys, monkeypatch):
    t = str(table_dir)
    code, first, err = _run(["sensitivities", "--tables", t, "-q"], capsys)
    assert code == 0, err
    assert "profiles saved to results/sensitivities_nuclear.h5" in first
    path = cwd / "results" / "sensitivities_nuclear.h5"
    stamp = path.stat().st_mtime_ns

    def refuse(*a, **k):
        raise AssertionError("computed again")

    with monkeypatch.context() as m:
        m.setattr(api.Analysis, "sensitivities", refuse)
        code, again, err = _run(["sensitivities", "--tables", t, "-q"], capsys)
        assert code == 0 and err == ""
        assert "read from results/sensitivities_nuclear.h5: it is up to date" in again
        assert _table(again) == _table(first) and len(_table(first)) == 4
        code, out, err = _run(["sensitivities", "--tables", t, "--json"], capsys)
    assert code == 0, err
    stored = json.loads(out)
    assert stored["results_reused"] is True
    assert path.stat().st_mtime_ns == stamp
    # the stored intervals are the computed ones to the last bit
    code, out, err = _run(["sensitivities", "--tables", t, "--json", "--force"], capsys)
    assert code == 0, err
    fresh = json.loads(out)
    assert fresh["results_reused"] is False
    assert fresh["intervals"] == stored["intervals"]                       # exact


def test_an_edited_file_is_computed_again_and_kept(cwd, table_dir, capsys):
    t = str(table_dir)
    assert _run(["sensitivities", "--tables", t, "-q"], capsys)[0] == 0
    path = cwd / "results" / "sensitivities_nuclear.h5"
    with h5py.File(path, "r+") as f:
        f["sensitivities"].attrs["cl"] = 0.95             # the digest no longer matches
    code, out, err = _run(["sensitivities", "--tables", t, "-q"], capsys)
    assert code == 0 and err == ""
    assert "results/sensitivities_nuclear.h5 exists and was kept (--force replaces it)" in out
    assert len(_table(out)) == 4


def test_what_makes_a_stored_table_current(cwd, table_dir, monkeypatch):
    a = mcscan.Analysis(tables=table_dir)
    sens = a.sensitivities()
    path = sens.save(cwd / "s.h5")
    stored = a.stored_sensitivities(path)
    assert stored.inputs == sens.inputs and len(sens.inputs) == 64
    assert stored.to_json() == sens.to_json()                            # exact
    assert a.stored_sensitivities(path, cl=0.95) is None                # another C.L.
    assert a.stored_sensitivities(path, combined=False) is None
    assert a.stored_sensitivities(cwd / "missing.h5") is None
    assert mcscan.Analysis(tables=table_dir, detectors=["Ge", "Xe"]).stored_sensitivities(path) is None
    lim = a.limits("q_ee", detectors="Ge")
    assert a.stored_sensitivities(lim.save(cwd / "l.h5")) is None        # another kind
    monkeypatch.setattr(api, "_CODE", ["other code"])                   # the package changed
    assert a.stored_sensitivities(path) is None
