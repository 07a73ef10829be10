"""HDF5 input/output of response tables.

Results files live in :mod:`mcscan.io.results`, chunk stores in
:mod:`mcscan.io.chunks`, shared HDF5 helpers in :mod:`mcscan.io.h5`.

Every file is written to a temporary file beside its target and renamed into
place, so a reader never sees a half-written file.  Every file carries a
schema version, the mcscan version, the creation time, units and, for
tables, the full table configuration (JSON), its SHA-256 hash and a SHA-256
of the data; datasets also carry HDF5 Fletcher32 checksums.  Loading checks
all of them and raises :class:`mcscan.errors.TableError` with one line that
says what is wrong and how to rebuild.

Table layout (``<detector>.h5``)::

    /                     attrs: kind="mcscan-table", schema_version, mcscan_version,
                          created, detector, config (JSON), config_hash, data_sha256,
                          components, flavours, antineutrino, channels
    /edges_kev            (nbins+1,)  reco bin edges, keV (nuclear-recoil scale)
    /background           (nbins,)    background counts per bin
    /<channel>/true_kev   (nT,)       true-energy nodes on the keVnr scale
    /<channel>/weights_kev (nT,)      quadrature weights, keV
    /<channel>/smearing   (nbins, nT) P(reco bin i | true T_j)
    /<channel>/density    (ncomp, 3, nT) S, I, E densities, counts / keV
    /<channel>/counts     (ncomp, 3, nbins) S, I, E counts per bin
    /<channel>/pairs      (ncomp, npairs, nbins) counts of the quadratic-form entries of the
                          other parameter families (attrs: basis, pairs; docs/physics.md
                          section 11), schema 3 on
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from ..tables.types import ChannelTable, ResponseTable
from ..config.load import SCHEMA_VERSION
from ..errors import TableError
from .h5 import atomic_h5, dataset, feed, now as _now

__all__ = ["table_path", "save_table", "load_table", "read_table_hash", "atomic_h5"]

_TABLE_UNITS = {
    "edges_kev": "keV (nuclear-recoil scale)",
    "background": "counts per bin",
    "true_kev": "keV (nuclear-recoil scale)",
    "weights_kev": "keV",
    "smearing": "probability",
    "density": "counts / keV",
    "counts": "counts per bin",
    "pairs": "counts per bin (per unit of each coordinate product)",
}
_CHANNEL_DATA = ("true_kev", "weights_kev", "smearing", "density", "counts")


def _dataset(group, name, data, units):
    return dataset(group, name, data, units)


def _data_hash(arrays) -> str:
    h = hashlib.sha256()
    for name, arr in arrays:
        a = np.ascontiguousarray(arr, dtype=float)
        h.update(name.encode())
        h.update(str(a.shape).encode())
        feed(h, a)
    return h.hexdigest()


def _table_arrays(table: ResponseTable):
    # metadata that changes the meaning of the numbers is hashed with them
    meta = json.dumps({"detector": table.detector, "components": list(table.components),
                       "flavours": list(table.flavours), "antineutrino": list(table.antineutrino),
                       "channels": sorted(table.channels),
                       "efficiency": {ch: float(c.efficiency) for ch, c in table.channels.items()}},
                      sort_keys=True)
    yield "meta", np.frombuffer(meta.encode(), dtype=np.uint8).astype(float)
    yield "edges_kev", table.edges_kev
    yield "background", table.background
    for ch in sorted(table.channels):
        c = table.channels[ch]
        for name in _CHANNEL_DATA:
            yield f"{ch}/{name}", getattr(c, name)
        if c.pairs is not None:
            yield f"{ch}/pairs", c.pairs


def table_path(tables_dir: str | Path, detector: str) -> Path:
    """Where the table of ``detector`` lives in ``tables_dir``."""
    return Path(tables_dir) / f"{detector}.h5"


def save_table(table: ResponseTable, path: str | Path) -> Path:
    """Write a response table atomically; returns the path."""
    path = Path(path)
    with atomic_h5(path) as f:
        f.attrs["kind"] = "mcscan-table"
        f.attrs["schema_version"] = table.schema_version
        f.attrs["mcscan_version"] = table.mcscan_version
        f.attrs["created"] = _now()
        f.attrs["detector"] = table.detector
        f.attrs["config"] = json.dumps(table.config, sort_keys=True)
        f.attrs["config_hash"] = table.config_hash
        f.attrs["components"] = json.dumps(list(table.components))
        f.attrs["flavours"] = json.dumps(list(table.flavours))
        f.attrs["antineutrino"] = json.dumps(list(table.antineutrino))
        f.attrs["channels"] = json.dumps(sorted(table.channels))
        f.attrs["pieces"] = json.dumps(["S", "I", "E"])
        f.attrs["data_sha256"] = _data_hash(_table_arrays(table))
        _dataset(f, "edges_kev", table.edges_kev, _TABLE_UNITS["edges_kev"])
        _dataset(f, "background", table.background, _TABLE_UNITS["background"])
        for ch, c in table.channels.items():
            g = f.create_group(ch)
            g.attrs["efficiency"] = c.efficiency
            for name in _CHANNEL_DATA:
                _dataset(g, name, getattr(c, name), _TABLE_UNITS[name])
            if c.pairs is not None:
                from ..physics.families import BASIS, pair_name, pairs

                ds = _dataset(g, "pairs", c.pairs, _TABLE_UNITS["pairs"])
                ds.attrs["basis"] = json.dumps(list(BASIS[ch]))
                ds.attrs["pairs"] = json.dumps([pair_name(ch, jk) for jk in pairs(ch)])
    return path


def _rebuild_hint(detector: str) -> str:
    return (f"rebuild it with 'mcscan build --detector {detector}' "
            "(add --config FILE for a user configuration)")


@contextmanager
def _open(path: Path, what: str):
    if not path.is_file():
        raise TableError(f"{what} {str(path)!r} not found")
    try:
        f = h5py.File(path, "r")
    except (OSError, TypeError, RuntimeError, ValueError):
        raise TableError(f"{what} {str(path)!r} is not a readable HDF5 file (truncated or corrupt)") from None
    try:
        yield f
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, UnicodeError,
            json.JSONDecodeError) as exc:
        raise TableError(f"{what} {str(path)!r} is corrupt or incomplete "
                         f"({type(exc).__name__}: {exc})") from None
    finally:
        f.close()


def read_table_hash(path: str | Path) -> str | None:
    """Configuration hash of an existing, readable table; None if unusable."""
    try:
        with _open(Path(path), "table") as f:
            if f.attrs.get("schema_version") != SCHEMA_VERSION:
                return None
            return str(f.attrs["config_hash"])
    except TableError:
        return None


def load_table(path: str | Path, *, expected_hash: str | None = None,
               channels=("nuclear",)) -> ResponseTable:
    """Read and validate a response table.

    Parameters
    ----------
    path : path of the ``.h5`` table
    expected_hash : str, optional
        Hash of the configuration the caller asks for; a table built from
        any other configuration is refused.
    channels : channels the caller needs; a table without one is refused.

    Raises
    ------
    TableError
        Missing, unreadable, corrupt (checksum) or hand-edited (data hash)
        file, another schema version, another configuration, a missing channel.
    """
    path = Path(path)
    with _open(path, "table") as f:
        if f.attrs.get("kind") != "mcscan-table":
            raise TableError(f"{str(path)!r} is not an mcscan response table")
        det = str(f.attrs["detector"])
        hint = _rebuild_hint(det)
        sv = int(f.attrs["schema_version"])
        if sv != SCHEMA_VERSION:
            raise TableError(f"table {str(path)!r} has schema version {sv}, this mcscan reads "
                             f"version {SCHEMA_VERSION}: {hint}")
        chash = str(f.attrs["config_hash"])
        if expected_hash is not None and chash != expected_hash:
            raise TableError(
                f"table {str(path)!r} was built from another configuration "
                f"(hash {chash[:12]}, requested {expected_hash[:12]}): {hint}"
            )
        have = json.loads(f.attrs["channels"])
        for ch in channels:
            if ch not in have:
                raise TableError(f"table {str(path)!r} has no {ch!r} channel (it has "
                                 f"{', '.join(have)}): enable it in detectors.{det}.channels and {hint}")
        try:
            chans = {}
            for ch in have:
                g = f[ch]
                chans[ch] = ChannelTable(ch, *(g[n][()] for n in _CHANNEL_DATA),
                                         efficiency=float(g.attrs["efficiency"]),
                                         pairs=g["pairs"][()] if "pairs" in g else None)
            table = ResponseTable(
                detector=det,
                edges_kev=f["edges_kev"][()],
                background=f["background"][()],
                channels=chans,
                components=tuple(json.loads(f.attrs["components"])),
                flavours=tuple(json.loads(f.attrs["flavours"])),
                antineutrino=tuple(json.loads(f.attrs["antineutrino"])),
                config=json.loads(f.attrs["config"]),
                config_hash=chash,
                schema_version=sv,
                mcscan_version=str(f.attrs["mcscan_version"]),
                meta={"created": str(f.attrs["created"]), "path": str(path)},
            )
        except OSError as exc:
            raise TableError(f"table {str(path)!r} fails its HDF5 checksum ({exc}): {hint}") from None
        if _data_hash(_table_arrays(table)) != str(f.attrs["data_sha256"]):
            raise TableError(f"table {str(path)!r} does not match its data checksum "
                             f"(edited or corrupt): {hint}")
        from ..config.load import config_hash

        if config_hash(table.config) != chash:
            raise TableError(f"table {str(path)!r}: stored configuration does not match its hash "
                             f"(edited): {hint}")
    return table
