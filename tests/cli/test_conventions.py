"""Conventions every ``mcscan`` subcommand keeps.

Help text for every command and option, -V/--version without the numerical
packages, -q on every command, quiet exit on a closed pipe, strict JSON,
outputs checked before any work (no silent overwrite: --force), exit
statuses (2 bad input, 1 unusable file, 0 for an unconstrained charge),
default output and table folder names.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from mcscan.cli import commands as cli
from mcscan.cli import common
from mcscan.errors import OutputError


def _run(argv, capsys):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _strict(text):
    """json.loads that refuses NaN and Infinity."""
    def bad(name):
        raise ValueError(f"non-finite JSON constant {name}")

    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return json.loads(lines[0], parse_constant=bad)


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _subparsers():
    parser, _ = cli._parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return sub.choices


# ------------------------------------------------------------ help, version, quiet

def test_every_command_and_option_has_help():
    commands = _subparsers()
    assert set(commands) == {"build", "scan", "limits", "region", "figures", "plot",
                             "sensitivities", "xsec", "ndscan", "sweep", "fit", "asimov", "bands"}
    for name, p in commands.items():
        assert p.description and len(p.description) > 30, name
        for action in p._actions:
            assert action.help and action.help.strip(), (name, action.option_strings or action.dest)
        options = {o for a in p._actions for o in a.option_strings}
        assert {"-q", "--quiet"} <= options, name


def test_help_names_region_params_and_xsec_choices(capsys):
    code, out, _ = _run(["region", "--help"], capsys)
    assert code == 0 and "the two charges of the region" in out
    code, out, _ = _run(["xsec", "--help"], capsys)
    assert code == 0 and "flavour of the incoming neutrino" in out and "nuclear recoils" in out


def test_version_is_light():
    code = ("import sys\nfrom mcscan.cli import main\n"
            "try:\n    main(['-V'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
            "print([m for m in ('numpy', 'numba', 'h5py', 'scipy') if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("mcscan ") and lines[1] == "[]"
    r2 = subprocess.run([sys.executable, "-m", "mcscan", "--version"], capture_output=True, text=True,
                        check=False)
    assert r2.returncode == 0 and r2.stdout == lines[0] + "\n"


# ------------------------------------------------------------ pipes and JSON

def test_closed_pipe_exits_quietly(tmp_path, table_dir):
    # Enough output that the pipe is closed while mcscan still writes.
    cmd = (f"{sys.executable} -m mcscan xsec --target Ge --enu 40 --flavour e --points 200000 | head -1;"
           f" {sys.executable} -m mcscan sensitivities -q --tables {table_dir} | head -1")
    r = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       check=False)
    assert r.stderr == ""                      # no BrokenPipeError traceback
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("# Ge nuclear") and lines[1].startswith("Expected 90%")


def test_json_is_strict(cwd, table_dir, capsys):
    t = str(table_dir)
    for argv in (["limits", "--detector", "Ge", "--param", "q_ee", "--json", "--tables", t],
                 ["limits", "--detector", "Xe", "--param", "q_mumu", "--profile", "q_ee", "--points",
                  "101", "--json", "--tables", t],
                 ["xsec", "--target", "Ge", "--enu", "40", "--flavour", "e", "--json"],
                 ["ndscan", "--detector", "Ge", "--param", "q_ee", "--param", "q_mumu", "--points",
                  "11", "--json", "--tables", t],
                 ["sensitivities", "--json", "--tables", t]):
        code, out, err = _run(argv, capsys)
        assert code == 0, (argv, err)
        _strict(out)


def test_non_finite_json_is_an_error_not_printed(capsys):
    with pytest.raises(OutputError, match="non-finite"):
        common.print_json({"x": math.nan})
    assert capsys.readouterr().out == ""


def test_ndscan_projections_are_grid_estimates(cwd, table_dir, capsys):
    code, out, err = _run(["ndscan", "--detector", "Ge", "--param", "q_ee", "--param", "q_mumu",
                           "--points", "21", "--tables", table_dir], capsys)
    assert code == 0, err
    rows = [ln for ln in out.splitlines() if "C.L." in ln]
    assert len(rows) == 4 and all("grid estimate, step 6e-09 e" in ln for ln in rows)
    code, out, err = _run(["ndscan", "--detector", "Ge", "--param", "q_ee", "--points", "11",
                           "--tables", table_dir, "--json", "--out", "j.h5"], capsys)
    proj = _strict(out)["projections"]["profiled/q_ee"]
    assert proj["grid_estimate"] is True and proj["grid_step"] == pytest.approx(1.2e-8, rel=1e-12)


# ------------------------------------------------------------ unconstrained

def test_unconstrained_charge(cwd, table_dir, capsys):
    code, out, err = _run(["limits", "--detector", "Ge", "--param", "q_tautau", "--tables", table_dir],
                          capsys)
    assert code == 0 and err == ""
    assert out == "q_tautau: not constrained: no nu_tau flux at this source\n"
    code, out, err = _run(["limits", "--detector", "Ge", "--param", "q_tautau", "--json",
                           "--tables", table_dir], capsys)
    assert code == 0
    obj = _strict(out)
    assert obj["unconstrained"] is True and obj["regions"] == []


# ------------------------------------------------------------ outputs

def test_default_names_and_force(cwd, table_dir, capsys):
    t = str(table_dir)
    code, out, err = _run(["sensitivities", "--tables", t, "-q"], capsys)
    assert code == 0, err
    assert os.listdir(cwd / "results") == ["sensitivities_nuclear.h5"]
    assert "saved to results/sensitivities_nuclear.h5" in out
    before = (cwd / "results" / "sensitivities_nuclear.h5").stat().st_mtime_ns
    # a rerun of the main job keeps its default file (it holds exactly this run's
    # results: tests/cli/test_reuse.py), says so, and still prints the table
    code, out, err = _run(["sensitivities", "--tables", t, "-q"], capsys)
    assert code == 0 and err == ""
    assert "read from results/sensitivities_nuclear.h5: it is up to date" in out
    assert "combined" in out
    assert (cwd / "results" / "sensitivities_nuclear.h5").stat().st_mtime_ns == before
    # an explicit --out that exists is refused up front
    code, out, err = _run(["sensitivities", "--tables", t, "-q", "--out",
                           "results/sensitivities_nuclear.h5"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "'results/sensitivities_nuclear.h5' exists" in err and "--force" in err
    assert (cwd / "results" / "sensitivities_nuclear.h5").stat().st_mtime_ns == before
    code, out, err = _run(["sensitivities", "--tables", t, "-q", "--force"], capsys)
    assert code == 0, err
    code, out, err = _run(["region", "--detector", "Ge", "--detector", "Xe", "--params", "q_ee",
                           "q_mumu", "--points", "21", "--tables", t, "-q"], capsys)
    assert code == 0, err
    assert (cwd / "results" / "region_q_ee_q_mumu_Ge+Xe.h5").is_file()


@pytest.mark.parametrize("out, code, pattern", [
    ("", 2, r"--out '': expected a file name"),
    ("folder", 2, r"folder"),
    ("user.toml", 2, r"file name ending in \.h5"),
    ("plain.txt/x.h5", 1, r"not a folder"),
    ("x" * 300 + ".h5", 1, r"too long"),
])
def test_bad_output_refused_before_work(cwd, table_dir, capsys, out, code, pattern, monkeypatch):
    import re

    import mcscan.api as api

    (cwd / "folder").mkdir()
    (cwd / "plain.txt").write_text("x")
    (cwd / "user.toml").write_text("[analysis]\ncl = 0.9\n")
    monkeypatch.setattr(api.Analysis, "region", lambda *a, **k: pytest.fail("computed"))
    got, stdout, err = _run(["region", "--detector", "Ge", "--params", "q_ee", "q_mumu",
                             "--tables", table_dir, "--out", out, "--config", "user.toml"], capsys)
    assert got == code and stdout == "" and err.count("\n") == 1, err
    assert re.search(pattern, err), err


def test_output_may_not_replace_an_input(cwd, tmp_path, table_dir, capsys):
    import shutil

    tables = cwd / "t"
    shutil.copytree(table_dir, tables)
    (cwd / "c.h5").write_text("")
    for target, extra in ((tables / "Ge.h5", []), (cwd / "c.h5", ["--config", "c.h5"])):
        code, out, err = _run(["sensitivities", "--tables", tables, "--out", target, "--force",
                               *extra], capsys)
        assert code == 2 and err.count("\n") == 1, err
        assert "input of this run" in err or "configuration" in err


def test_user_config_tables_get_their_own_folder(cwd, capsys):
    (cwd / "heavy.toml").write_text("[detectors.Ge]\nmass_kg = 8.0\n")
    code, out, err = _run(["build", "--config", "heavy.toml", "--detector", "Ge", "-q"], capsys)
    assert code == 0, err
    (folder,) = os.listdir(cwd / "tables")
    assert folder.startswith("heavy-") and len(folder) == len("heavy-") + 8
    assert os.listdir(cwd / "tables" / folder) == ["Ge.h5"]
    assert f"tables/{folder}/Ge.h5" in out
    # The built-in configuration keeps tables/ (its own tables go beside the folder).
    code, out, err = _run(["build", "--detector", "Ge", "-q"], capsys)
    assert code == 0 and "Ge: built -> tables/Ge.h5" in out


# ------------------------------------------------------------ arguments

@pytest.mark.parametrize("argv, pattern", [
    (["--fix", "q_mumu=1e-9", "--fix", "q_mumu=2e-9"], r"--fix q_mumu given twice"),
    (["--cl", "1e-7"], r"--cl.*1e-06 to 1 - 1e-09"),
    (["--cl", "0.9999999999"], r"--cl"),
    (["--range", "-1e308", "1e308"], r"--range.*within \[-1, 1\] e"),
    (["--max-points", "0"], r"--max-points"),
    (["--points", "2001", "--max-points", "1000"], r"2,001 points.*--max-points"),
])
def test_bad_arguments(cwd, table_dir, capsys, argv, pattern):
    import re
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, out, err = _run(["limits", "--detector", "Ge", "--param", "q_ee", "--tables", table_dir,
                               *argv], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert re.search(pattern, err), err


def test_config_that_is_not_a_file(cwd, capsys):
    os.mkfifo(cwd / "fifo")
    (cwd / "dir").mkdir()
    for path, pattern in (("dir", "is a folder"), ("/dev/null", "not a regular file"),
                          ("fifo", "is a FIFO"), ("nope.toml", "not found")):
        code, out, err = _run(["limits", "--detector", "Ge", "--param", "q_ee", "--config", path], capsys)
        assert code == 2 and err.count("\n") == 1 and pattern in err, err
        assert f"'{path}'" in err


def test_scan_budget_refused_up_front(cwd, table_dir, capsys):
    code, out, err = _run(["ndscan", "--detector", "Ge", "--param", "q_ee", "--param", "q_mumu",
                           "--param", "q_emu", "--points", "2001", "--tables", table_dir,
                           "--max-memory-gib", "0.001"], capsys)
    assert code == 2 and err.count("\n") == 1 and "--max-" in err, err
    assert not (cwd / "results").exists()


def test_results_file_problem_is_exit_1(cwd, capsys):
    (cwd / "bad.h5").write_bytes(b"not hdf5")
    code, out, err = _run(["plot", "bad.h5"], capsys)
    assert code == 1 and out == "" and err.count("\n") == 1 and "bad.h5" in err


def test_signal_in_the_import_lock_callback_is_taken_after_it():
    # A SIGINT that lands in the weakref callback by which importlib drops a module's lock
    # (a C callback: an exception raised there is printed as "Exception ignored in ...",
    # with a traceback, and dropped) is taken again 20 ms later (seen once in
    # test_ctrl_c_while_starting).  The callback's own frame, caught as it is entered:
    import importlib._bootstrap as bootstrap

    name = "mcscan_test_module_lock_callback"
    lock = bootstrap._get_module_lock(name)
    ref = getattr(bootstrap, "_module_locks", {}).get(name)
    callback = getattr(ref, "__callback__", None)
    if callback is None:
        pytest.skip("importlib keeps its module locks otherwise in this Python")
    seen = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code is callback.__code__:
            seen.append(cli._in_c_callback(frame))

    sys.setprofile(profile)
    try:
        callback(ref)
    finally:
        sys.setprofile(None)
    del lock
    assert seen == [True]
    assert not cli._in_c_callback(sys._getframe())      # an ordinary frame: raise at once


def test_signal_in_an_unknown_c_callback_is_taken_20_ms_later(monkeypatch, capsys):
    # A SIGINT that lands in a callback Python runs from C which _in_c_callback does not
    # know (here a weakref callback) raises there; Python prints that exception as
    # "Exception ignored in ..." and drops it.  main's sys.unraisablehook takes it again
    # 20 ms later, outside the callback: exit status 130 long before the command would
    # have ended, one line, no report.
    import signal
    import threading
    import time
    import weakref

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are set from the main thread only")
    ended = []

    def command(args, cfg):
        class Box:
            pass

        def forget(ref):                     # what _interrupt does for a SIGINT landing here
            cli._interrupt(signal.SIGINT, sys._getframe())

        box = Box()
        ref = weakref.ref(box, forget)
        del box                              # runs forget from C
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5.0:
            time.sleep(0.001)
        ended.append(ref)

    monkeypatch.setitem(cli._COMMANDS, "plot", command)
    hook = sys.unraisablehook
    t0 = time.monotonic()
    assert cli.main(["plot", "results.h5"]) == 130
    took = time.monotonic() - t0
    assert not ended and took < 2.0, took   # the 5 s loop was cut short
    err = capsys.readouterr().err
    assert "Exception ignored" not in err and "Traceback" not in err, err
    assert len(err.splitlines()) == 1 and "interrupted" in err, err
    assert sys.unraisablehook is hook       # restored when main returns


def test_ctrl_c_outside_main_handlers_is_one_line(tmp_path):
    # A SIGINT in the moments before main sets its signal handlers (or after it puts the
    # old ones back) raises KeyboardInterrupt out of main itself: the console command
    # still ends with exit status 130 and one line, no traceback (seen once in 40 signals
    # sent during start-up, at main's first statement).
    code = ("import mcscan.cli.commands as c\n"
            "def main(argv=None):\n    raise KeyboardInterrupt\n"
            "c.main = main\nc.run()\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 130, r.stderr
    assert r.stderr.startswith("mcscan: interrupted") and len(r.stderr.splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr and not os.listdir(tmp_path)


@pytest.mark.parametrize("delay", [0.05, 0.12, 0.2])
def test_ctrl_c_while_starting(tmp_path, table_dir, delay):
    """SIGINT while mcscan imports its modules: exit status 130 (or death by SIGINT, which a
    shell reports as 130 too), at most one line, no traceback, nothing written."""
    import signal
    import time

    # The child says "go" once the interpreter has started and the light package face
    # (mcscan/__init__.py) is imported: the signal lands in the command's start-up.
    code = ("import runpy, sys, mcscan; sys.argv = ['mcscan', 'limits', '--detector', 'Ge', '--param', "
            f"'q_ee', '--tables', {str(table_dir)!r}]; print('go', flush=True); "
            "runpy.run_module('mcscan', run_name='__main__', alter_sys=True)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "go\n"
    time.sleep(delay)
    if proc.poll() is not None:
        proc.communicate()                      # closes the pipes
        pytest.skip("finished before the signal")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if out and proc.returncode == 0:
        pytest.skip("finished before the signal")
    assert proc.returncode in (130, -signal.SIGINT), err
    assert "Traceback" not in err and len(err.splitlines()) <= 1, err
    assert not os.listdir(tmp_path)
    if out:
        # the limits (0.3 s in all) were printed and the signal came as the interpreter
        # exited: still one line and no traceback, but not a start-up any more
        pytest.skip("the signal landed after the result was printed")
