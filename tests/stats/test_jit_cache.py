"""Where numba caches the compiled kernels: a per-user folder, never the package."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mcscan
from mcscan.stats._jit import SOURCE_DIGEST, cache_dir, sources_digest

PACKAGE = Path(mcscan.__file__).parent
KERNELS = f"kernels-{SOURCE_DIGEST}"

# a module with a kernel and its helper compiled through mcscan's jit options (helpers
# have no Python wrapper: the kernel calls it)
_MODULE = textwrap.dedent("""
    from mcscan.stats._jit import helper, kernel

    @helper
    def _twice(x):
        return 2.0 * x

    @kernel
    def twice(x):
        return _twice(x)
""")

_RUN = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    import mcscan.stats._jit as j
    import jitprobe
    assert jitprobe.twice(1.5) == 3.0
    print(j.CACHE_DIR)
""")


def _run(tmp_path, **env):
    (tmp_path / "mod").mkdir(exist_ok=True)
    (tmp_path / "mod" / "jitprobe.py").write_text(_MODULE)
    full = {k: v for k, v in os.environ.items()
            if k not in ("MCSCAN_CACHE_DIR", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", _RUN, str(tmp_path / "mod")], env=full,
                          capture_output=True, text=True, timeout=300)


def _cache_files(folder):
    return sorted(p for p in Path(folder).rglob("*") if p.suffix in (".nbi", ".nbc"))


def test_default_folder_is_per_user_and_versioned(tmp_path):
    env = {"HOME": str(tmp_path / "home")}
    assert cache_dir(env) == tmp_path / "home" / ".cache" / "mcscan" / mcscan.__version__ / "numba" / KERNELS
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    assert cache_dir(env) == tmp_path / "xdg" / "mcscan" / mcscan.__version__ / "numba" / KERNELS


def test_user_settings_win(tmp_path):
    env = {"HOME": str(tmp_path / "home"), "NUMBA_CACHE_DIR": str(tmp_path / "nb")}
    assert cache_dir(env) == tmp_path / "nb" / KERNELS
    env["MCSCAN_CACHE_DIR"] = str(tmp_path / "mc")
    assert cache_dir(env) == tmp_path / "mc" / mcscan.__version__ / "numba" / KERNELS


def test_cache_folder_follows_the_kernel_sources(tmp_path):
    """numba keys a cached kernel on its own source file only: the folder's name carries a
    digest of every source of mcscan.stats, so a changed helper in another file (or a
    changed option in _jit.py) means a fresh folder, not a stale kernel."""
    src = tmp_path / "stats"
    src.mkdir()
    for name in ("kernels.py", "toys.py"):
        (src / name).write_text(f"# {name}\n")
    (src / "notes.txt").write_text("not a source")
    d0 = sources_digest(src)
    assert len(d0) == 16 and d0 == sources_digest(src)
    (src / "notes.txt").write_text("changed")
    assert sources_digest(src) == d0
    (src / "kernels.py").write_text("# kernels.py, a helper changed\n")
    assert sources_digest(src) != d0
    assert SOURCE_DIGEST == sources_digest(PACKAGE / "stats")


def test_compiled_code_lands_in_the_cache_folder(tmp_path):
    before = set(_cache_files(PACKAGE))
    r = _run(tmp_path, MCSCAN_CACHE_DIR=str(tmp_path / "cache"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(tmp_path / "cache" / mcscan.__version__ / "numba" / KERNELS)
    assert _cache_files(tmp_path / "cache"), "nothing cached"
    assert not _cache_files(tmp_path / "mod"), "cache written beside the module"
    assert set(_cache_files(PACKAGE)) == before, "cache written into the package"


def test_numba_cache_dir_is_respected(tmp_path):
    r = _run(tmp_path, NUMBA_CACHE_DIR=str(tmp_path / "nb"), HOME=str(tmp_path / "home"))
    assert r.returncode == 0, r.stderr
    assert _cache_files(tmp_path / "nb")
    assert not (tmp_path / "home").exists()


def test_read_only_home_runs_uncached_with_one_warning_line(tmp_path):
    # a path below a regular file can never be created, even by root
    blocker = tmp_path / "readonly"
    blocker.write_text("")
    r = _run(tmp_path, HOME=str(blocker / "home"), XDG_CACHE_HOME=str(blocker / "cache"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "None"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "not writable" in lines[0], r.stderr
    assert not _cache_files(tmp_path / "mod")


_MODULE2 = textwrap.dedent("""
    from mcscan.stats._jit import kernel

    @kernel
    def thrice(x):
        return 3.0 * x
""")

# the user's own function, cached by numba's own rules (beside its module)
_USER = textwrap.dedent("""
    import numba

    @numba.njit(cache=True)
    def plus_one(x):
        return x + 1.0
""")

_RUN_LATE = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, sys.argv[1])
    import numba                          # numba first, as a user's script may
    import mcscan.stats._jit as j
    import jitprobe
    assert jitprobe.twice(1.5) == 3.0     # a compile: numba re-reads its NUMBA_ variables
    os.environ["NUMBA_OPT"] = "3"         # a NUMBA_ variable set in the process: read again
    import jitprobe2, userprobe           # decorated after both
    assert jitprobe2.thrice(1.5) == 4.5
    assert userprobe.plus_one(1.0) == 2.0
    print(j.CACHE_DIR)
""")


def test_kernels_decorated_late_still_cache_in_the_folder(tmp_path):
    """numba re-reads its configuration from the NUMBA_ variables whenever one changed
    (at the next compile), which resets its cache folder: a module imported later (the
    toys kernels, say) must still cache in mcscan's folder, and the user's own cached
    functions keep numba's own rules (beside their module)."""
    mod = tmp_path / "mod"
    mod.mkdir()
    (mod / "jitprobe.py").write_text(_MODULE)
    (mod / "jitprobe2.py").write_text(_MODULE2)
    (mod / "userprobe.py").write_text(_USER)
    env = {k: v for k, v in os.environ.items()
           if k not in ("MCSCAN_CACHE_DIR", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "NUMBA_OPT",
                        "NUMBA_DISABLE_ERROR_MESSAGE_HIGHLIGHTING")}
    env["MCSCAN_CACHE_DIR"] = str(tmp_path / "cache")
    before = set(_cache_files(PACKAGE))
    r = subprocess.run([sys.executable, "-c", _RUN_LATE, str(mod)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    ours = [p.name for p in _cache_files(tmp_path / "cache")]
    assert any("twice" in n for n in ours) and any("thrice" in n for n in ours), ours
    assert not any("plus_one" in n for n in ours), ours
    beside = [p.name for p in _cache_files(mod)]
    assert beside and all("plus_one" in n for n in beside), beside
    assert set(_cache_files(PACKAGE)) == before, "cache written into the package"
