"""``mcscan ndscan`` on the command line: text, JSON and one-line errors."""
from __future__ import annotations

import json

import pytest

from mcscan.cli import commands as cli

ND = ["ndscan", "--detector", "Xe", "--param", "q_ee", "--param", "q_mumu", "--param", "q_emu",
      "--range", "-2e-8", "2e-8", "--range", "-1e-8", "1e-8", "--range", "-6e-8", "6e-8",
      "--quiet"]


def _main(argv):
    """cli.main with every argument as a string; argparse errors give their exit code."""
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


def test_ndscan_text_and_json(table_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = _main(ND + ["--points", "9", "--tables", table_dir])
    o, e = capsys.readouterr()
    assert code == 0, e
    assert "scanned q_ee x q_mumu x q_emu on 9 x 9 x 9 = 729 points for Xe" in o
    assert "saved to results/ndscan_q_ee_q_mumu_q_emu_Xe.h5" in o
    assert "profiled over the others" in o and "others at q_mumu = 0, q_emu = 0" in o
    code = _main(ND + ["--points", "9", "--tables", table_dir, "--json", "--project", "q_ee",
                       "--out", "nd.h5"])
    o, e = capsys.readouterr()
    assert code == 0, e
    d = json.loads(o)
    assert d["shape"] == [9, 9, 9] and d["results_file"] == "nd.h5"
    assert set(d["projections"]) == {"profiled/q_ee", "fixed/q_ee"}


@pytest.mark.parametrize("extra, message", [
    (["--project", "q_etau"], "projection onto q_etau: not a scanned charge"),
    (["--fix", "q_ee=1e-9"], "q_ee is both scanned and fixed"),
    (["--points", "9"], "3 charge(s) but 2 --points"),
    (["--range", "1", "0"], "3 charge(s) but 4 --range"),
    (["--at", "q_etau=0"], "--at q_etau: not a scanned charge"),
    (["--at", "q_ee=1e-9", "--at", "q_ee=2e-9"], "--at q_ee given twice"),
    (["--param", "q_mumu"], "--param: a charge is given twice"),
    (["--backend", "dask"], "--backend dask needs --scheduler"),
    (["--workers", "2"], "--workers is for --backend dask-local"),
    (["--scheduler", "tcp://x:1"], "--scheduler is for --backend dask"),
    (["--out", "x.txt"], "--out 'x.txt': expected a file name ending in .h5"),
    (["--cl", "1.5"], "--cl: '1.5': expected a confidence level from 1e-06 to 1 - 1e-09"),
    (["--workers", "0"], "expected a positive whole number"),
    (["--chunk-points", "0"], "--chunk-points: 0: expected a positive whole number"),
    (["--max-points", "100"], "--max-points"),
])
def test_ndscan_errors(table_dir, tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    code = _main(ND + ["--points", "9", "--tables", table_dir] + extra)
    o, e = capsys.readouterr()
    assert code == 2 and o == ""
    lines = e.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcscan: error:") and message in lines[0], e
    assert not list(tmp_path.glob("**/*.h5")) and not list(tmp_path.glob("**/*.partial"))
