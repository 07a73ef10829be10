"""The one shared set of fixtures of the suite.

* ``config`` / ``electron_config``: the built-in ESS configuration (and with
  CsI's electron channel enabled);
* ``tables``: {detector: ResponseTable}, built in memory once per session;
* ``table_dir``: ONE folder holding the three reference tables on disk, built
  once per session and read-only for every test (copy it to change it);
* ``coefs``: {detector: Coefficients} loaded once from ``table_dir``;
* ``warm``: the numba kernels compiled (serial and parallel) once per session.

Tests never rebuild these; a test that needs something else says so locally.
"""
from __future__ import annotations

import pytest

from mcscan.tables.build import build_table
from mcscan.config.load import load_config

#: The three reference detectors (docs/physics.md section 6).
DETECTORS = ("CsI", "Xe", "Ge")
#: Overrides that enable the EvES channel of CsI (docs/physics.md section 5).
CSI_ELECTRON = {"detectors": {"CsI": {"channels": ["nuclear", "electron"]}}}


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
