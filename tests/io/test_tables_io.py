"""HDF5 tables and results files: round trips, validation, atomic writes, rebuilds.

Every failure of a file a user hands to mcscan must end as a TableError
naming the file (and, for tables, how to rebuild), never as another
exception type and never as silently different data.
"""

from __future__ import annotations

import json
import os
import shutil

import h5py
import numpy as np
import pytest

from mcscan.io import tables as tio
from mcscan.tables.build import build_table
from mcscan.config.load import SCHEMA_VERSION, config_hash, load_config, table_config
from mcscan.errors import TableError
from mcscan.stats.reference import coefficients
from mcscan.api import build_tables
from mcscan.scans.grid import grid_scan
from mcscan.io.tables import (
    atomic_h5,
    load_table,
    read_table_hash,
    save_table,
    table_path,
)
from mcscan.io.results import save as save_result

CHANNEL_DATA = ("true_kev", "weights_kev", "smearing", "density", "counts")


@pytest.fixture(scope="module")
def built(table_dir):
    """The shared folder with the three reference tables (read-only)."""
    return table_dir


@pytest.fixture
def ge(built, tmp_path):
    """A private copy of the Ge table, free to damage."""
    return shutil.copy(table_path(built, "Ge"), tmp_path / "Ge.h5")


def _assert_same_table(t, ref):
    assert t.detector == ref.detector
    assert t.config == ref.config
    assert t.config_hash == ref.config_hash
    assert t.schema_version == ref.schema_version == SCHEMA_VERSION
    assert t.mcscan_version == ref.mcscan_version
    assert (t.components, t.flavours, t.antineutrino) == (ref.components, ref.flavours, ref.antineutrino)
    # Exact round trip: bitwise equal arrays, same dtype and shape.
    for name in ("edges_kev", "background"):
        a, b = getattr(t, name), getattr(ref, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert set(t.channels) == set(ref.channels)
    for ch, c in ref.channels.items():
        assert t.channels[ch].efficiency == c.efficiency
        for name in CHANNEL_DATA:
            a, b = getattr(t.channels[ch], name), getattr(c, name)
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), (ch, name)


# ------------------------------------------------------------ tables


@pytest.mark.parametrize("detector", ["Ge", "CsI"])
def test_table_round_trip_exact(tmp_path, config, detector):
    ref = build_table(config, detector)
    path = save_table(ref, tmp_path / f"{detector}.h5")
    t = load_table(path, expected_hash=config_hash(table_config(config, detector)),
                   channels=tuple(ref.channels))
    _assert_same_table(t, ref)
    assert t.meta["path"] == str(path)
    assert read_table_hash(path) == ref.config_hash
    with h5py.File(path, "r") as f:
        assert f.attrs["kind"] == "mcscan-table"
        assert f.attrs["schema_version"] == SCHEMA_VERSION
        assert f["edges_kev"].attrs["units"].startswith("keV")
        for ch in ref.channels:
            assert f[ch]["counts"].fletcher32
    assert sorted(os.listdir(tmp_path)) == [f"{detector}.h5"]   # no temporary file left


def test_coefficients_from_loaded_table(built, config):
    t = load_table(table_path(built, "Ge"))
    c = coefficients(t)
    # S sums the SM piece of every beam component (exact: same additions).
    assert np.array_equal(c.S, t.channels["nuclear"].counts[:, 0, :].sum(0))
    assert np.array_equal(c.D, c.S + c.B)
    assert c.table_hash == config_hash(table_config(config, "Ge"))


def test_other_configuration_refused(ge):
    with pytest.raises(TableError, match="another configuration.*mcscan build") as info:
        load_table(ge, expected_hash="0" * 64)
    assert "\n" not in str(info.value)


def test_missing_channel_refused(ge):
    with pytest.raises(TableError, match="'electron' channel") as info:
        load_table(ge, channels=("nuclear", "electron"))
    assert "mcscan build" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(TableError, match="not found"):
        load_table(tmp_path / "nope.h5")
    assert read_table_hash(tmp_path / "nope.h5") is None


def test_not_hdf5(tmp_path):
    p = tmp_path / "Ge.h5"
    p.write_text("this is not HDF5\n")
    with pytest.raises(TableError, match="not a readable HDF5 file"):
        load_table(p)


def test_results_file_is_not_a_table(tmp_path, built):
    (c,) = [coefficients(load_table(table_path(built, "Ge")))]
    sc = grid_scan([c], ("q_ee",), (np.linspace(-1e-8, 1e-8, 5),))
    from mcscan.scans.limits import Limit

    lim = Limit(("Ge",), "q_ee", 0.9, 2.7, [], False, False, sc, sc.chi2_min)
    p = save_result(lim, tmp_path / "r.h5")
    with pytest.raises(TableError, match="not an mcscan response table"):
        load_table(p)


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, 0])
def test_other_schema_version_refused(ge, version):
    with h5py.File(ge, "r+") as f:
        f.attrs["schema_version"] = version
    with pytest.raises(TableError, match=f"schema version {version}.*mcscan build"):
        load_table(ge)
    assert read_table_hash(ge) is None


@pytest.mark.parametrize("attr", ["schema_version", "config_hash", "data_sha256", "config", "channels"])
def test_missing_attribute_refused(ge, attr):
    with h5py.File(ge, "r+") as f:
        del f.attrs[attr]
    with pytest.raises(TableError):
        load_table(ge)


def test_missing_dataset_refused(ge):
    with h5py.File(ge, "r+") as f:
        del f["nuclear/smearing"]
    with pytest.raises(TableError, match="Ge.h5"):
        load_table(ge)


@pytest.mark.parametrize("cut", [0, 8, 512, 4096, "half", "last"])
def test_truncated_file_refused(ge, cut):
    data = ge.read_bytes()
    n = {"half": len(data) // 2, "last": len(data) - 1}.get(cut, cut)
    ge.write_bytes(data[:n])
    with pytest.raises(TableError, match="Ge.h5"):
        load_table(ge)
    assert read_table_hash(ge) is None


def _chunks(path):
    """[(dataset name, byte offset, size)] of every stored chunk."""
    out = []
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                for i in range(obj.id.get_num_chunks()):
                    info = obj.id.get_chunk_info(i)
                    out.append((name, info.byte_offset, info.size))
        f.visititems(visit)
    return out


def _flip(path, pos):
    with open(path, "r+b") as f:
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ 0xFF]))


@pytest.mark.parametrize("name", ["edges_kev", "background", "nuclear/true_kev", "nuclear/weights_kev",
                                  "nuclear/smearing", "nuclear/density", "nuclear/counts"])
def test_flipped_byte_in_dataset_refused(ge, name):
    _, off, size = next(c for c in _chunks(ge) if c[0] == name)
    _flip(ge, off + size // 2)
    with pytest.raises(TableError, match="checksum") as info:
        load_table(ge)
    assert "mcscan build" in str(info.value)


def test_random_flips_in_data_refused(built, tmp_path):
    src = table_path(built, "Ge")
    chunks = _chunks(src)
    rng = np.random.default_rng(1)
    data = src.read_bytes()
    p = tmp_path / "Ge.h5"
    for _ in range(40):
        _name, off, size = chunks[rng.integers(len(chunks))]
        pos = off + int(rng.integers(size))
        b = bytearray(data)
        b[pos] ^= 1 << int(rng.integers(8))         # one flipped bit
        p.write_bytes(bytes(b))
        with pytest.raises(TableError):
            load_table(p)


@pytest.mark.parametrize("name", ["background", "nuclear/counts", "nuclear/smearing", "edges_kev"])
def test_hand_edited_dataset_refused(ge, name):
    with h5py.File(ge, "r+") as f:
        ds = f[name]
        v = ds[()]
        i = np.argmax(np.abs(v))
        v.flat[i] *= 1.0 + 1e-12                         # a tiny edit of a non-zero value
        ds[...] = v                                      # h5py recomputes Fletcher32
    with pytest.raises(TableError, match="data checksum.*mcscan build"):
        load_table(ge)


def test_hand_edited_config_refused(ge):
    with h5py.File(ge, "r+") as f:
        cfg = json.loads(f.attrs["config"])
        cfg["detector"]["mass_kg"] = 70.0
        f.attrs["config"] = json.dumps(cfg, sort_keys=True)
    with pytest.raises(TableError, match="configuration does not match its hash"):
        load_table(ge)


def test_hand_edited_efficiency_refused(ge):
    # The efficiency attribute is stored apart from the data hash.
    with h5py.File(ge, "r+") as f:
        f["nuclear"].attrs["efficiency"] = 1.0
    with pytest.raises(TableError):
        load_table(ge)


def test_hand_edited_flavours_refused(ge):
    with h5py.File(ge, "r+") as f:
        f.attrs["flavours"] = json.dumps(["e", "mu", "mu"])
    with pytest.raises(TableError):
        load_table(ge)


def test_hand_edited_detector_name_refused(ge):
    with h5py.File(ge, "r+") as f:
        f.attrs["detector"] = "Xe"
    with pytest.raises(TableError):
        load_table(ge)


def test_corrupt_attribute_datatype_refused(ge):
    # Character-set nibble of the variable-length string type of the 'kind'
    # attribute (name padded to 8 bytes, then the 4-byte type header): value 14
    # is not a valid HDF5 character set.
    data = bytearray(ge.read_bytes())
    pos = data.find(b"kind\x00") + 10
    assert data[pos] & 0x0F in (0, 1)                   # ASCII or UTF-8 before the damage
    data[pos] = (data[pos] & 0xF0) | 0x0E
    ge.write_bytes(bytes(data))
    with pytest.raises(TableError):
        load_table(ge)


def test_read_only_after_load(ge):
    before = ge.read_bytes()
    load_table(ge)
    assert ge.read_bytes() == before


# ------------------------------------------------------------ atomic writes


class Boom(Exception):
    pass


@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt])
def test_atomic_failure_leaves_nothing(tmp_path, exc):
    target = tmp_path / "sub" / "out.h5"
    with pytest.raises(exc), atomic_h5(target) as f:
        f["x"] = np.arange(10.0)
        raise exc("stop")
    assert not target.exists()
    assert os.listdir(tmp_path / "sub") == []


@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt])
def test_atomic_failure_keeps_existing_target(tmp_path, exc):
    target = tmp_path / "out.h5"
    with atomic_h5(target) as f:
        f["x"] = np.arange(3.0)
    before = target.read_bytes()
    st = target.stat()
    with pytest.raises(exc), atomic_h5(target) as f:
        f["x"] = np.arange(5.0)
        raise exc("stop")
    assert target.read_bytes() == before
    assert target.stat().st_mtime_ns == st.st_mtime_ns and target.stat().st_ino == st.st_ino
    assert os.listdir(tmp_path) == ["out.h5"]


def test_atomic_success_replaces(tmp_path):
    target = tmp_path / "out.h5"
    for n in (3, 5):
        with atomic_h5(target) as f:
            f["x"] = np.arange(float(n))
    with h5py.File(target, "r") as f:
        assert f["x"].shape == (5,)
    assert os.listdir(tmp_path) == ["out.h5"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_table_write_keeps_old_table(built, tmp_path, monkeypatch, config):
    path = shutil.copy(table_path(built, "Ge"), tmp_path / "Ge.h5")
    before = path.read_bytes()
    calls = []

    def failing(group, name, data, units):
        calls.append(name)
        if len(calls) == 3:
            raise Boom("disk full")
        return real(group, name, data, units)

    real = tio._dataset
    monkeypatch.setattr(tio, "_dataset", failing)
    with pytest.raises(Boom):
        save_table(build_table(config, "Ge"), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["Ge.h5"]


# ------------------------------------------------------------ build_tables


def test_build_tables_skips_up_to_date_and_rebuilds_on_change(tmp_path, config):
    out = build_tables(config, None, tmp_path)
    assert {k: v[1] for k, v in out.items()} == {"CsI": "built", "Xe": "built", "Ge": "built"}
    stat = {n: table_path(tmp_path, n).stat() for n in out}
    again = build_tables(config, None, tmp_path)
    assert {k: v[1] for k, v in again.items()} == {"CsI": "up to date", "Xe": "up to date",
                                                    "Ge": "up to date"}
    for n, st in stat.items():
        now = table_path(tmp_path, n).stat()
        assert (now.st_mtime_ns, now.st_ino, now.st_size) == (st.st_mtime_ns, st.st_ino, st.st_size)
    changed = load_config(overrides={"detectors": {"Ge": {"mass_kg": 8.0}}})
    out = build_tables(changed, None, tmp_path)
    assert {k: v[1] for k, v in out.items()} == {"CsI": "up to date", "Xe": "up to date", "Ge": "built"}
    assert table_path(tmp_path, "Ge").stat().st_ino != stat["Ge"].st_ino
    assert read_table_hash(table_path(tmp_path, "Ge")) == config_hash(table_config(changed, "Ge"))
    for n in ("CsI", "Xe"):
        assert table_path(tmp_path, n).stat().st_mtime_ns == stat[n].st_mtime_ns
    assert sorted(os.listdir(tmp_path)) == ["CsI.h5", "Ge.h5", "Xe.h5"]


def test_build_tables_rebuilds_corrupt_and_forced(tmp_path, config):
    build_tables(config, ["Ge"], tmp_path)
    p = table_path(tmp_path, "Ge")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 3])
    assert build_tables(config, ["Ge"], tmp_path)["Ge"][1] == "built"
    load_table(p, expected_hash=config_hash(table_config(config, "Ge")))
    ino = p.stat().st_ino
    assert build_tables(config, ["Ge"], tmp_path, force=True)["Ge"][1] == "built"
    assert p.stat().st_ino != ino


def test_build_tables_other_schema_rebuilt(tmp_path, config):
    build_tables(config, ["Ge"], tmp_path)
    with h5py.File(table_path(tmp_path, "Ge"), "r+") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    assert build_tables(config, ["Ge"], tmp_path)["Ge"][1] == "built"
    assert load_table(table_path(tmp_path, "Ge")).schema_version == SCHEMA_VERSION
