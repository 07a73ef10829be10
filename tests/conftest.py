"""Shared, session-scoped fixtures for the physics validation tests.

Building a response table is pure computation (no files); each table is built
once per test session and shared, read-only, by every test that needs it.
"""
from __future__ import annotations

import pytest

from mcscan.tables.build import build_table
from mcscan.config.load import load_config

#: The three reference detectors of PHYSICS.md section 5.
DETECTORS = ("CsI", "Xe", "Ge")
#: Overrides that enable the EvES channel of CsI (PHYSICS.md section 4).
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


@pytest.fixture
def chunk_interrupt(monkeypatch):
    """Interrupt a streamed scan: ``arm(n)`` lets ChunkStore.write store n chunks,
    then raise KeyboardInterrupt (as Ctrl-C would); ``disarm()`` restores it."""
    from mcscan.io.tables import ChunkStore

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
