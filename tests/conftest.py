"""The one shared set of fixtures of the suite.

* ``config`` / ``electron_config``: the built-in ESS configuration (and with
  CsI's electron channel enabled);
* ``tables``: {detector: ResponseTable}, built in memory once per session;
* ``table_dir``: ONE folder holding the three reference tables on disk, built
  once per session and read-only for every test (copy it to change it);
* ``coefs``: {detector: Coefficients} loaded once from ``table_dir``;
* ``warm``: the numba kernels compiled (serial and parallel) once per session;
* ``golden_0_1_0``: frozen outputs of mcscan 0.1.0 (tests/data/golden_0_1_0.npz);
* ``frozen``, ``frozen_text``, ``numpy_avx512``: comparisons with frozen full-precision
  values, exact where NumPy runs its AVX-512 code (see :data:`NUMPY_AVX512`);
* ``script``: ``script("bench")`` imports ``scripts/bench.py`` (the scripts are no package).

Tests never rebuild these; a test that needs something else says so locally.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from mcscan.tables.build import build_table
from mcscan.config.load import load_config

#: The three reference detectors (docs/physics.md section 6).
DETECTORS = ("CsI", "Xe", "Ge")
#: Overrides that enable the EvES channel of CsI (docs/physics.md section 5).
CSI_ELECTRON = {"detectors": {"CsI": {"channels": ["nuclear", "electron"]}}}


@pytest.fixture(scope="session")
def script():
    """``script(name)``: the module ``scripts/<name>.py``, imported once per session."""
    import importlib.util

    loaded = {}

    def load(name):
        if name not in loaded:
            path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
            spec = importlib.util.spec_from_file_location(name, path)
            loaded[name] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(loaded[name])
        return loaded[name]
    return load


def _numpy_avx512() -> bool:
    """Whether NumPy runs its AVX-512 code on this machine (Skylake-SP and later, Zen 4)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:                      # NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_features__
    return bool(__cpu_features__.get("AVX512_SKX"))


#: Frozen full-precision values (limits, hashes of chi2 grids) were recorded on machines
#: where NumPy runs its AVX-512 code.  Elsewhere NumPy's transcendental functions (and
#: the BLAS kernels it calls) are other machine code and round differently in the last
#: bits (the mechanism is inferred, not traced function by function), so the reference tables
#: built there, and every number computed from them, differ from the frozen ones by a few
#: units in the last place: up to 6.4e-15 relative in the q_ee limits on an AVX2 machine
#: (AMD EPYC, Zen 3).  The kernels themselves give the same bits on every machine for the
#: same tables (tests/scans/test_engine.py).
NUMPY_AVX512 = _numpy_avx512()
#: Agreement with a frozen value where NumPy does not run its AVX-512 code, relative.
FROZEN_RTOL = 1e-13


def assert_frozen(got, frozen, *, atol=0.0):
    """``got == frozen`` where NumPy runs its AVX-512 code, as where the frozen values were
    recorded; elsewhere the same structure (lists, tuples, dicts, flags, strings) with
    every float within :data:`FROZEN_RTOL` relative or ``atol`` absolute (for values that
    are 0 up to rounding)."""
    if NUMPY_AVX512:
        assert got == frozen
        return

    def close(g, f, where):
        if isinstance(f, dict):
            assert isinstance(g, dict) and g.keys() == f.keys(), where
            for k in f:
                close(g[k], f[k], f"{where}[{k!r}]")
        elif isinstance(f, (list, tuple)):
            assert isinstance(g, (list, tuple)) and len(g) == len(f), where
            for k, (a, b) in enumerate(zip(g, f)):
                close(a, b, f"{where}[{k}]")
        elif isinstance(f, float):
            assert g == pytest.approx(f, rel=FROZEN_RTOL, abs=atol), where
        else:
            assert g == f, where

    close(got, frozen, "value")


_FLOAT = r"[-+]?\d+\.\d+(?:[eE][-+]?\d+)?"


def assert_frozen_text(got: str, frozen: str):
    """Printed output against frozen output: the same text around the floats, and the
    floats as :func:`assert_frozen` compares them."""
    import re

    if NUMPY_AVX512:
        assert got == frozen
        return
    assert re.sub(_FLOAT, "#", got) == re.sub(_FLOAT, "#", frozen)
    assert_frozen([float(x) for x in re.findall(_FLOAT, got)],
                  [float(x) for x in re.findall(_FLOAT, frozen)])


@pytest.fixture(scope="session")
def config():
    """The built-in ESS reference configuration."""
    return load_config()


@pytest.fixture(scope="session")
def electron_config():
    """The reference configuration with CsI's electron channel enabled."""
    return load_config(overrides=CSI_ELECTRON)


@pytest.fixture(scope="session")
def tables(config):
    """{detector: ResponseTable} of the reference configuration (nuclear channel)."""
    return {name: build_table(config, name) for name in DETECTORS}


@pytest.fixture(scope="session")
def csi_electron_table(electron_config):
    """CsI response table with both the nuclear and the electron channel."""
    return build_table(electron_config, "CsI")


@pytest.fixture(scope="session")
def table_dir(tmp_path_factory, config):
    """The one on-disk folder of reference tables (CsI, Xe, Ge; nuclear channel). Read-only."""
    from mcscan.api import build_tables

    d = tmp_path_factory.mktemp("tables")
    build_tables(config, None, d)
    return d


@pytest.fixture(scope="session")
def coefs(table_dir, config):
    """{detector: Coefficients} of the reference tables, loaded once."""
    from mcscan.api import load_coefficients

    return dict(zip(DETECTORS, load_coefficients(config, DETECTORS, table_dir)))


@pytest.fixture(scope="session")
def warm():
    """Compile (or load from the cache) the numba kernels once, serial and parallel."""
    from mcscan.stats import kernels

    kernels.warm_up(True)
    kernels.warm_up(False)
    return True


@pytest.fixture
def chunk_interrupt(monkeypatch):
    """Interrupt a streamed scan: ``arm(n)`` lets ChunkStore.write store n chunks,
    then raise KeyboardInterrupt (as Ctrl-C would); ``disarm()`` restores it."""
    from mcscan.io.chunks import ChunkStore

    real = ChunkStore.write

    class Switch:
        def arm(self, n):
            calls = {"n": 0}

            def flaky(store, k, arrays):
                if calls["n"] == n:
                    raise KeyboardInterrupt
                calls["n"] += 1
                real(store, k, arrays)

            monkeypatch.setattr(ChunkStore, "write", flaky)

        def disarm(self):
            monkeypatch.setattr(ChunkStore, "write", real)

    return Switch()


#: Outputs of mcscan 0.1.0, before the row kernels used fused multiply-adds (arrays of
#: float64 chi2, C order): ``scan2`` the Xe q_ee x q_mumu scan, 101 x 101 points on
#: [-6e-8, 6e-8]^2; ``nd3`` the Xe + Ge scan over q_ee x q_mumu x q_emu, 21 points each
#: on [-6e-8, 6e-8] (q_ee, q_mumu) and [-3e-7, 3e-7] (q_emu); built-in configuration.
GOLDEN_0_1_0 = Path(__file__).parent / "data" / "golden_0_1_0.npz"
#: Their SHA-256, frozen when they were the current outputs: the file is what 0.1.0 gave.
GOLDEN_0_1_0_SHA256 = {
    "scan2": "a689daf62d0cd8e1326b2ec9d5eb40917f339f217736cf0d10d69259f98f193f",
    "nd3": "1609b146a8ea6694546fe3819458b99a8820c6b68bec6ba850d869917585e221",
}


@pytest.fixture(scope="session")
def golden_0_1_0():
    """``golden_0_1_0(name)``: a 0.1.0 output array, checked against its frozen SHA-256."""
    def load(name):
        with np.load(GOLDEN_0_1_0) as f:
            arr = f[name]
        digest = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
        assert digest == GOLDEN_0_1_0_SHA256[name], f"{GOLDEN_0_1_0} is not the 0.1.0 output"
        return arr
    return load


def _results_data(path) -> dict:
    """{group: {dataset: array}} of every dataset of an HDF5 results file."""
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                group, _, leaf = name.rpartition("/")
                out.setdefault(group, {})[leaf] = obj[()]
        f.visititems(visit)
    return out


@pytest.fixture(scope="session")
def same_results():
    """``same_results(a, b)``: two results files (paths, or what ``same_results.read``
    gave for them) hold the same datasets, bit for bit (same dtype, np.array_equal)."""
    def check(a, b):
        da = a if isinstance(a, dict) else _results_data(a)
        db = b if isinstance(b, dict) else _results_data(b)
        assert da.keys() == db.keys()
        for group in da:
            assert da[group].keys() == db[group].keys(), group
            for k, v in da[group].items():
                w = db[group][k]
                assert v.dtype == w.dtype and np.array_equal(v, w), (group, k)   # bit-identical

    check.read = _results_data
    return check


@pytest.fixture(scope="session")
def loaded_by_cli():
    """``loaded_by_cli(argvs, modules)``: run ``mcscan`` with each argument list of
    ``argvs`` (each must exit 0) in one fresh interpreter; returns those of ``modules``
    it imported, sorted."""
    import subprocess
    import sys

    def run(argvs, modules):
        code = ("import json, sys\n"
                "from mcscan.cli.commands import main\n"
                "argvs, modules = json.loads(sys.argv[1]), json.loads(sys.argv[2])\n"
                "for argv in argvs:\n"
                "    assert main(argv) == 0, argv\n"
                "print(json.dumps(sorted(m for m in modules if m in sys.modules)))\n")
        args = json.dumps([[str(a) for a in argv] for argv in argvs]), json.dumps(list(modules))
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                           check=False)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])

    return run


@pytest.fixture(scope="session")
def frozen():
    """:func:`assert_frozen`: a result against a frozen full-precision value."""
    return assert_frozen


@pytest.fixture(scope="session")
def frozen_text():
    """:func:`assert_frozen_text`: printed output against frozen output."""
    return assert_frozen_text


@pytest.fixture(scope="session")
def numpy_avx512():
    """:data:`NUMPY_AVX512`: frozen hashes of chi2 grids hold exactly where it is True."""
    return NUMPY_AVX512
