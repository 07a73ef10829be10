"""The console command ends with ``os._exit`` after flushing (``mcscan.cli.run``):
everything printed arrives whole, exit statuses pass through, and a reader that
goes away early gives no traceback."""
from __future__ import annotations

import json
import subprocess
import sys


def _mcscan(*args, **kw):
    return subprocess.run([sys.executable, "-m", "mcscan", *args], capture_output=True, text=True,
                          **kw)


def test_output_arrives_whole_and_status_passes_through(tmp_path):
    r = _mcscan("xsec", "--target", "Ge", "--enu", "30", "--flavour", "mu", "--points", "2000",
                "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) > 65536                    # more than one pipe buffer, all flushed
    assert len(json.loads(r.stdout)["T_kev"]) == 2000
    bad = _mcscan("xsec", "--target", "Ge", "--enu", "-1", "--flavour", "mu", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stdout == "" and len(bad.stderr.strip().splitlines()) == 1


def test_reader_leaving_early(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "mcscan", "xsec", "--target", "Ge", "--enu", "30",
                          "--flavour", "mu", "--points", "20000", "--json"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.read(10)
    p.stdout.close()
    with p.stderr:
        err = p.stderr.read().decode()
    assert p.wait(timeout=120) in (0, 141)
    assert "Traceback" not in err
