"""HDF5 input/output: response tables and scan results (the only h5py user).

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

import datetime as _dt
import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..tables.build import ChannelTable, ResponseTable
from ..config.load import SCHEMA_VERSION
from ..errors import TableError

__all__ = [
    "RESULTS_SCHEMA_VERSION",
    "table_path",
    "save_table",
    "load_table",
    "read_table_hash",
    "save_results",
    "load_results",
    "atomic_h5",
]

#: Version of the results-file layout.
RESULTS_SCHEMA_VERSION = 1

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


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@contextmanager
def atomic_h5(path: str | Path):
    """Open a temporary HDF5 file beside ``path``; rename it into place on success.

    On any exception (including KeyboardInterrupt) the temporary file is
    removed and ``path`` is left untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TableError(f"cannot create folder {str(path.parent)!r}: {exc.strerror}") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        # libver="latest": the file's internal headers carry checksums too
        with h5py.File(tmp, "w", libver="latest") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _unlink_quietly(path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _dataset(group, name, data, units):
    data = np.asarray(data)
    ds = group.create_dataset(name, data=data, fletcher32=data.size > 0,
                              chunks=True if data.size > 0 else None)
    ds.attrs["units"] = units
    return ds


def _data_hash(arrays) -> str:
    h = hashlib.sha256()
    for name, arr in arrays:
        a = np.ascontiguousarray(arr, dtype=float)
        h.update(name.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
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
    return f"rebuild it with 'mcscan build --detector {detector}' (add --config FILE for a user configuration)"


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
        raise TableError(f"{what} {str(path)!r} is corrupt or incomplete ({type(exc).__name__}: {exc})") from None
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


# ------------------------------------------------------------------ results

def save_results(path: str | Path, groups: dict, attrs: dict) -> Path:
    """Write a results file atomically.

    Parameters
    ----------
    groups : {group name: {"attrs": {...}, "data": {name: (array, units)}}}
        Group names may contain '/' for nesting.
    attrs : file attributes (JSON-serialisable values are stored as JSON
        strings when they are not str/number).
    """
    path = Path(path)
    with results_writer(path, None) as w:
        w.attrs("/", attrs)
        for name, spec in groups.items():
            w.attrs(name, spec.get("attrs", {}))
            for dname, (arr, units) in spec.get("data", {}).items():
                w.array(name, dname, arr, units)
    return path


def _attr(v):
    if isinstance(v, (str, int, float, np.integer, np.floating)):
        return v
    return json.dumps(v)


def load_results(path: str | Path) -> dict:
    """Read a results file into {"attrs": {...}, "groups": {name: {"attrs", "data"}}}.

    Datasets are returned as NumPy arrays; the schema version is checked.
    """
    path = Path(path)
    with _open(path, "results file") as f:
        if f.attrs.get("kind") != "mcscan-results":
            raise TableError(f"{str(path)!r} is not an mcscan results file")
        sv = int(f.attrs["schema_version"])
        if sv != RESULTS_SCHEMA_VERSION:
            raise TableError(f"results file {str(path)!r} has schema version {sv}, this mcscan "
                             f"reads version {RESULTS_SCHEMA_VERSION}: recompute it")
        out = {"attrs": dict(f.attrs), "groups": {}}

        def visit(name, obj):
            if isinstance(obj, h5py.Group):
                data = {k: v[()] for k, v in obj.items() if isinstance(v, h5py.Dataset)}
                if data or obj.attrs:
                    out["groups"][name] = {"attrs": dict(obj.attrs), "data": data}

        try:
            f.visititems(visit)
        except OSError as exc:
            raise TableError(f"results file {str(path)!r} fails its HDF5 checksum ({exc})") from None
    return out


def save_scan(path: str | Path, scan, *, config: dict | None = None) -> Path:
    """Write a :class:`mcscan.scans.grid.Scan` to a results file.

    Layout: group ``/scan`` with datasets ``axis_0`` (and ``axis_1``) in e,
    ``chi2``, ``delta_chi2``, ``converged`` and per detector
    ``pull_signal_<det>``, ``pull_background_<det>``; attributes ``params``,
    ``detectors``, ``channels``, ``table_hashes``, ``fixed`` (all six charges,
    e), ``chi2_min``, ``cl_levels`` ({"0.68": ..., "0.9": ..., "0.95": ...}
    Delta chi2 for this scan's dimension), pull widths.
    """
    from ..scans.limits import cl_levels

    data = {f"axis_{i}": (a, "e") for i, a in enumerate(scan.axes)}
    data["chi2"] = (scan.chi2, "chi2")
    data["delta_chi2"] = (scan.delta_chi2, "chi2")
    data["converged"] = (scan.converged.astype(np.int8), "bool")
    for det, (a, b) in scan.pulls.items():
        data[f"pull_signal_{det}"] = (a, "fraction")
        data[f"pull_background_{det}"] = (b, "fraction")
    attrs = {
        "params": list(scan.params), "detectors": list(scan.detectors),
        "channels": list(scan.channels), "table_hashes": list(scan.table_hashes),
        "fixed": [float(v) for v in scan.base], "chi2_min": scan.chi2_min,
        "cl_levels": cl_levels(len(scan.params)),
        "signal_pull": scan.settings.signal_pull, "background_pull": scan.settings.background_pull,
    }
    fattrs = {"kind_detail": "scan"}
    if config is not None:
        fattrs["config"] = config
    return save_results(path, {"scan": {"attrs": attrs, "data": data}}, fattrs)


# ------------------------------------------------- interruptible scans

class ChunkStore:
    """Completed chunks of a running scan, one atomic ``.npz`` file each.

    The folder ``<results file>.partial/`` holds ``spec.json`` (what the scan
    is: parameters, grids, tables, settings, chunking) and ``chunk_<k>.npz``
    per finished chunk.  Each chunk file is written to a temporary name and
    renamed, so a process killed at any moment leaves only whole chunks;
    ``resume`` continues from them.  Nothing here is HDF5: a half-written
    HDF5 file can be unreadable, a missing chunk file cannot.
    """

    def __init__(self, folder: str | Path, spec: dict, *, resume: bool):
        self.folder = Path(folder)
        self.spec = json.loads(json.dumps(spec, sort_keys=True))
        spec_file = self.folder / "spec.json"
        if self.folder.exists():
            if not resume:
                raise TableError(
                    f"an interrupted scan is stored in {str(self.folder)!r}: finish it with the same "
                    "command and --resume, or delete that folder to start again"
                )
            try:
                have = json.loads(spec_file.read_text())
            except (OSError, json.JSONDecodeError):
                raise TableError(f"{str(spec_file)!r} is missing or unreadable: delete "
                                 f"{str(self.folder)!r} and run the scan again") from None
            if have != self.spec:
                diff = sorted(k for k in set(have) | set(self.spec) if have.get(k) != self.spec.get(k))
                raise TableError(
                    f"--resume: the stored scan in {str(self.folder)!r} differs from this command "
                    f"in {', '.join(diff)}: repeat the original command, or delete the folder"
                )
        else:
            try:
                self.folder.mkdir(parents=True)
            except OSError as exc:
                raise TableError(f"cannot create {str(self.folder)!r}: {exc.strerror}") from None
            _atomic_bytes(spec_file, json.dumps(self.spec, sort_keys=True, indent=1).encode())

    def _path(self, k: int) -> Path:
        return self.folder / f"chunk_{k:08d}.npz"

    def done(self) -> set:
        """Indices of the chunks already stored."""
        return {int(p.stem.split("_")[1]) for p in self.folder.glob("chunk_*.npz")}

    def write(self, k: int, arrays: dict) -> None:
        """Store chunk ``k`` atomically."""
        fd, tmp = tempfile.mkstemp(prefix=f".chunk_{k:08d}.", suffix=".npz", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path(k))
        except BaseException:
            _unlink_quietly(tmp)
            raise

    def read(self, k: int) -> dict:
        try:
            with np.load(self._path(k)) as z:
                return {name: z[name] for name in z.files}
        except (OSError, ValueError) as exc:
            raise TableError(f"stored chunk {str(self._path(k))!r} is unreadable ({exc}): delete it "
                             "and resume to recompute it") from None

    def remove(self) -> None:
        """Delete the folder after the results file is in place."""
        for p in self.folder.iterdir():
            p.unlink()
        self.folder.rmdir()


def _atomic_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def save_scan_chunks(path: str | Path, meta: dict, shape: tuple, detectors, store: ChunkStore,
                     nchunks: int, chunk_points: int, *, config: dict | None = None) -> dict:
    """Assemble a results file from stored chunks, chunk by chunk (bounded memory).

    Same layout as :func:`save_scan`; written atomically.

    Returns
    -------
    {"chi2_min", "argmin" (flat index into the grid), "unconverged" (points)}
    """
    from ..scans.limits import cl_levels

    shape = tuple(int(v) for v in shape)
    n = int(np.prod(shape))
    row = shape[-1] if len(shape) == 2 else 1
    if chunk_points % row:
        raise ValueError("chunks of a 2D scan must hold whole rows")

    def index(lo, hi):
        return slice(lo // row, hi // row) if len(shape) == 2 else slice(lo, hi)

    names = ["chi2", "converged"] + [f"pull_signal_{d}" for d in detectors] + \
            [f"pull_background_{d}" for d in detectors]
    units = {"chi2": "chi2", "converged": "bool", "delta_chi2": "chi2"}
    h5chunk = (max(1, min(shape[0], (1 << 16) // row)), row) if len(shape) == 2 else (min(n, 1 << 16),)
    with results_writer(path, "scan", config=config) as w:
        for i, a in enumerate(meta["axes"]):
            w.array("scan", f"axis_{i}", np.asarray(a), "e")
        for name in names + ["delta_chi2"]:
            w.empty("scan", name, shape, np.int8 if name == "converged" else float,
                    units.get(name, "fraction"), chunks=h5chunk)
        cmin, where, bad = np.inf, 0, 0
        for k in range(nchunks):
            lo, hi = k * chunk_points, min(n, (k + 1) * chunk_points)
            c = store.read(k)
            for name in names:
                w.write("scan", name, index(lo, hi), c[name].reshape(-1, row) if len(shape) == 2
                        else c[name])
            j = int(np.argmin(c["chi2"]))
            if c["chi2"][j] < cmin:
                cmin, where = float(c["chi2"][j]), lo + j
            bad += int(np.count_nonzero(c["converged"] == 0))
        for k in range(nchunks):
            lo, hi = k * chunk_points, min(n, (k + 1) * chunk_points)
            d = store.read(k)["chi2"] - cmin
            w.write("scan", "delta_chi2", index(lo, hi), d.reshape(-1, row) if len(shape) == 2 else d)
        w.attrs("scan", {"params": meta["params"], "detectors": list(detectors),
                         "channels": meta["channels"], "table_hashes": meta["table_hashes"],
                         "fixed": meta["fixed"], "chi2_min": cmin,
                         "cl_levels": cl_levels(len(meta["params"])),
                         "signal_pull": meta["signal_pull"],
                         "background_pull": meta["background_pull"]})
    return {"chi2_min": cmin, "argmin": where, "unconverged": bad}


class ResultsWriter:
    """Writes a results file piece by piece (see :func:`results_writer`); callers
    name groups and datasets, never touch h5py."""

    def __init__(self, f):
        self._f = f

    def _group(self, group: str):
        return self._f.require_group(group)

    def array(self, group: str, name: str, data, units: str) -> None:
        """A whole (small) dataset with its units."""
        _dataset(self._group(group), name, data, units)

    def empty(self, group: str, name: str, shape, dtype, units: str, chunks=None) -> None:
        """A dataset to fill later with :meth:`write` (checksummed, chunked)."""
        ds = self._group(group).create_dataset(name, shape=tuple(shape), dtype=dtype,
                                               chunks=chunks or True, fletcher32=True)
        ds.attrs["units"] = units

    def write(self, group: str, name: str, index, values) -> None:
        """Write ``values`` into the hyperslab ``index`` of a dataset."""
        self._f[group][name][index] = values

    def attrs(self, group: str, mapping: dict) -> None:
        """Set attributes of a group (JSON for anything but str and numbers)."""
        g = self._group(group)
        for k, v in mapping.items():
            g.attrs[k] = _attr(v)


@contextmanager
def results_writer(path: str | Path, kind_detail: str | None, *, config: dict | None = None):
    """A results file written atomically, with the standard root attributes."""
    with atomic_h5(path) as f:
        f.attrs["kind"] = "mcscan-results"
        f.attrs["schema_version"] = RESULTS_SCHEMA_VERSION
        f.attrs["mcscan_version"] = __version__
        f.attrs["created"] = _now()
        if kind_detail is not None:
            f.attrs["kind_detail"] = kind_detail
        if config is not None:
            f.attrs["config"] = json.dumps(config)
        yield ResultsWriter(f)
