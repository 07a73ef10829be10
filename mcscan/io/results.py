"""The one writer and reader of results files (layout: ``docs/results.md``).

:func:`save` writes any result object (kinds ``limits``, ``region``,
``sensitivities``, ``scan``, ``sweep``, ``xsec``, ``fit``, ``bands``, ``fc``); :func:`open_results`
reads any results file back into the same type, after checking its kind,
schema version and SHA-256 digest over every attribute and dataset.
:func:`stream_scan` is the streamed form of the ``scan`` writer the scan
engine fills chunk by chunk.

Every file is written to a temporary file beside the target, its digest
stored, closed, re-read and verified, then renamed into place
(:func:`mcscan.io.h5.atomic_h5`).  Write failures are one-line
:class:`mcscan.errors.OutputError`; unreadable, edited or unknown files are
one-line :class:`mcscan.errors.ResultsError`.
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..errors import OutputError, ResultsError
from ..params import ALL_PARAMS, PARAMS, SPEC
from .h5 import (LazyArray, atomic_h5, dataset, digest, flat_boxes, get_attr, now, read_tree,
                 set_attr, set_strs, write_tree)
from .paths import check_input_file, check_output
from .registry import TYPES, register  # noqa: F401  (register: part of this module's face)

__all__ = ["SCHEMA_VERSION", "register", "save", "open_results", "read_kind", "read_config",
           "stream_scan", "ScanWriter", "h5_chunks"]

#: Version of the results-file layout documented in docs/results.md.
SCHEMA_VERSION = 2
_KINDS = ("scan", "limits", "region", "sensitivities", "sweep", "xsec", "fit", "bands", "fc")
_BLOCK = 1 << 20


def _type(name: str):
    try:
        return TYPES[name]
    except KeyError:
        raise ResultsError(f"cannot read a results file into {name}: its module is not loaded "
                           "(open files with mcscan.open_results)") from None


def _cl_levels(dof: int) -> dict:
    """{0.68: ..., 0.9: ..., 0.95: ...}: Delta chi2 of each C.L. for ``dof`` parameters."""
    from scipy.special import chdtri

    return {cl: float(chdtri(dof, 1.0 - cl)) for cl in (0.68, 0.90, 0.95)}


# ------------------------------------------------------------------ the file

def _config_dict(config):
    if config is None:
        return None
    if hasattr(config, "to_dict"):
        return config.to_dict()
    if isinstance(config, dict):
        return config
    raise TypeError(f"config: expected a Config or a dict, got {type(config).__name__}")


@contextmanager
def results_file(path, kind: str, *, config=None, force: bool = False):
    """A results file of ``kind`` written atomically; yields the open h5py file.

    On leaving, the digest is stored, the file closed, re-read and verified,
    and renamed into place.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown results kind {kind!r}")
    path = check_output(path, force=force)
    cfg = _config_dict(config)

    def verify(tmp):
        f = h5py.File(tmp, "r")
        try:
            ok = get_attr(f, "digest") == digest(f)
        finally:
            f.close()
        if not ok:
            raise OutputError(f"cannot write {str(path)!r}: the file read back does not match "
                              "what was written")

    with atomic_h5(path, verify=verify) as f:
        f.attrs["kind"] = kind
        f.attrs["schema_version"] = np.int64(SCHEMA_VERSION)
        f.attrs["mcscan_version"] = __version__
        f.attrs["created"] = now()
        if cfg is not None:
            write_tree(f.create_group("config"), cfg)
        yield f
        f.attrs["digest"] = digest(f)


def save(obj, path, *, config=None, force: bool = False) -> Path:
    """Write a result object as a results file of its kind; returns the path."""
    kind = getattr(obj, "kind", None)
    writer = _WRITERS.get(kind)
    if writer is None:
        raise TypeError(f"cannot save a {type(obj).__name__}: not a result object")
    with results_file(path, kind, config=config, force=force) as f:
        writer(f, obj)
    return Path(path)


@contextmanager
def _reading(path):
    path = check_input_file(path, "results file")
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError):
        raise ResultsError(f"results file {str(path)!r} is not a readable HDF5 file "
                           "(truncated or corrupt)") from None
    try:
        yield f
    except (OSError, KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
        what = "fails its HDF5 checksum (corrupt)" if isinstance(exc, OSError) else \
            f"is incomplete or not laid out as docs/results.md says " \
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        raise ResultsError(f"results file {str(path)!r} {what}") from None
    finally:
        f.close()


def _check_header(f, path) -> str:
    kind = get_attr(f, "kind")
    if kind == "mcscan-table":
        raise ResultsError(f"{str(path)!r} is a response table, not a results file")
    if kind == "mcscan-results":
        raise ResultsError(f"results file {str(path)!r} has the layout of an older mcscan "
                           f"(schema 1): recompute it")
    if kind not in _KINDS:
        raise ResultsError(f"{str(path)!r} is not an mcscan results file (kind {kind!r}; expected one "
                           f"of {', '.join(_KINDS)})")
    sv = get_attr(f, "schema_version")
    if sv != SCHEMA_VERSION:
        raise ResultsError(f"results file {str(path)!r} has schema version {sv}, this mcscan reads "
                           f"version {SCHEMA_VERSION}: recompute it")
    stored = get_attr(f, "digest")
    if stored is None:
        raise ResultsError(f"results file {str(path)!r} has no digest: it is incomplete")
    if digest(f) != stored:
        raise ResultsError(f"results file {str(path)!r} does not match its digest: it was changed "
                           "after it was written")
    return kind


def open_results(path):
    """Read a results file into its result object (scan grids lazily); see the module docstring.

    The result types must be registered (:func:`register`); use
    :func:`mcscan.results.open_results`, which loads them."""
    with _reading(path) as f:
        kind = _check_header(f, path)
        return _READERS[kind](f, str(path))


def read_kind(path) -> str:
    """The kind of a results file (header checks only, no digest)."""
    with _reading(path) as f:
        kind = get_attr(f, "kind")
    return kind if kind in _KINDS else ""


def read_config(path) -> dict | None:
    """The configuration stored in a results file (as ``Config.to_dict()``), or None."""
    with _reading(path) as f:
        _check_header(f, path)
        return read_tree(f["config"]) if "config" in f else None


# ------------------------------------------------------------ shared pieces

def _strs(g, name) -> tuple:
    v = get_attr(g, name, [])
    return tuple(v) if isinstance(v, list) else (v,)


def _write_settings(g, s) -> None:
    set_attr(g, "signal_pull", float(s.signal_pull))
    set_attr(g, "background_pull", float(s.background_pull))
    set_attr(g, "newton_tol", float(s.tol))
    set_attr(g, "newton_max_iter", int(s.max_iter))


def _read_settings(g):
    return _type("ScanSettings")(signal_pull=get_attr(g, "signal_pull"),
                        background_pull=get_attr(g, "background_pull"),
                        tol=get_attr(g, "newton_tol"), max_iter=get_attr(g, "newton_max_iter"))


def _write_fixed(g, base, prefix="fixed") -> None:
    base = np.asarray(base, dtype=float)
    set_strs(g, f"{prefix}_names", list(ALL_PARAMS[:base.size]))     # charges first
    set_attr(g, f"{prefix}_values", base)


def _read_base(g) -> np.ndarray:
    """The base point: six charges, or every parameter (ALL_PARAMS order) when a
    parameter of another family is stored."""
    names = _strs(g, "fixed_names")
    vals = np.asarray(g.attrs["fixed_values"], dtype=float)
    order = PARAMS if all(n in PARAMS for n in names) else ALL_PARAMS
    base = np.zeros(len(order))
    for n, v in zip(names, vals):
        base[order.index(n)] = v
    return base


def _write_named(g, prefix, mapping) -> None:
    set_strs(g, f"{prefix}_names", [str(k) for k in mapping])
    set_attr(g, f"{prefix}_values", np.asarray([float(v) for v in mapping.values()], dtype=float))


def _read_named(g, prefix) -> dict:
    names = _strs(g, f"{prefix}_names")
    vals = np.asarray(g.attrs[f"{prefix}_values"], dtype=float).ravel()
    return {n: float(v) for n, v in zip(names, vals)}


def _write_sources(g, detectors, channels, table_hashes) -> None:
    """What a result was computed from: detectors, channels and the tables' data hashes."""
    set_strs(g, "detectors", list(detectors))
    set_strs(g, "channels", list(channels))
    set_strs(g, "table_hashes", list(table_hashes))


def _write_pulls(g, pulls) -> None:
    for det, (a, b) in pulls.items():
        dataset(g, f"pulls/{det}/signal", a, "fraction")
        dataset(g, f"pulls/{det}/background", b, "fraction")


def _read_pulls(g, detectors) -> dict:
    if "pulls" not in g:
        return {}
    return {d: (g[f"pulls/{d}/signal"][()], g[f"pulls/{d}/background"][()]) for d in detectors
            if d in g["pulls"]}


def _write_extras(g, obj, known) -> None:
    """Fields of ``obj`` this layout does not name (added later): plain values only."""
    extra = {}
    for fld in dataclasses.fields(obj):
        if fld.name in known:
            continue
        v = getattr(obj, fld.name)
        if isinstance(v, (bool, int, float, str)) or (isinstance(v, (list, tuple)) and all(
                isinstance(x, (int, float, str)) and not isinstance(x, bool) for x in v) and v):
            extra[fld.name] = v
    if extra:
        write_tree(g.create_group("extra"), extra)


def _read_extras(g, cls) -> dict:
    if "extra" not in g:
        return {}
    names = {f.name: f for f in dataclasses.fields(cls)}
    out = {}
    for k, v in read_tree(g["extra"]).items():
        if k in names:
            out[k] = tuple(v) if isinstance(v, list) and isinstance(names[k].default, tuple) else v
    return out


# ------------------------------------------------------------ limits

_LIMIT_KNOWN = {"detectors", "param", "cl", "delta_chi2", "regions", "open_low", "open_high", "scan",
                "chi2_min", "unit", "profile", "profile_at_edge", "profile_best"}


def _write_limit(g, lim) -> None:
    sc = lim.scan
    set_attr(g, "param", lim.param)
    _write_sources(g, lim.detectors, sc.channels, sc.table_hashes)
    set_attr(g, "cl", float(lim.cl))
    set_attr(g, "delta_chi2", float(lim.delta_chi2))
    set_attr(g, "chi2_min", float(lim.chi2_min))
    set_attr(g, "open_low", bool(lim.open_low))
    set_attr(g, "open_high", bool(lim.open_high))
    set_attr(g, "unit", lim.unit)
    set_strs(g, "profiled", list(lim.profile))
    set_attr(g, "profile_at_edge", bool(lim.profile_at_edge))
    _write_fixed(g, sc.base)
    _write_settings(g, sc.settings)
    x = np.asarray(sc.axes[0], dtype=float)
    chi2 = np.asarray(sc.chi2, dtype=float)
    dataset(g, "x", x, lim.unit)
    dataset(g, "chi2", chi2, "chi2")
    dataset(g, "delta_chi2", chi2 - lim.chi2_min, "chi2")
    dataset(g, "converged", np.asarray(sc.converged).astype(np.int8), "bool")
    dataset(g, "regions", np.asarray(lim.regions, dtype=float).reshape(-1, 2), lim.unit)
    _write_pulls(g, sc.pulls)
    for p, v in (lim.profile_best or {}).items():
        dataset(g, f"best/{p}", np.asarray(v, dtype=float), SPEC[p].unit if p in SPEC else "e")
    _write_extras(g, lim, _LIMIT_KNOWN)


def _read_limit(g):
    Scan, Limit = _type("Scan"), _type("Limit")
    param = get_attr(g, "param")
    dets = _strs(g, "detectors")
    sc = Scan(params=(param,), axes=(g["x"][()],), base=_read_base(g), detectors=dets,
              channels=_strs(g, "channels"), chi2=g["chi2"][()], pulls=_read_pulls(g, dets),
              converged=g["converged"][()].astype(bool), table_hashes=_strs(g, "table_hashes"),
              settings=_read_settings(g))
    best = {p: g[f"best/{p}"][()] for p in g["best"]} if "best" in g else {}
    regions = [[float(lo), float(hi)] for lo, hi in g["regions"][()]]
    return Limit(detectors=dets, param=param, cl=get_attr(g, "cl"), delta_chi2=get_attr(g, "delta_chi2"),
                 regions=regions, open_low=get_attr(g, "open_low"), open_high=get_attr(g, "open_high"),
                 scan=sc, chi2_min=get_attr(g, "chi2_min"), unit=get_attr(g, "unit"),
                 profile=_strs(g, "profiled"), profile_at_edge=get_attr(g, "profile_at_edge"),
                 profile_best=best, **_read_extras(g, Limit))


def _w_limits(f, lim) -> None:
    _write_limit(f.create_group("limit"), lim)


def _r_limits(f, path):
    return _read_limit(f["limit"])


# ------------------------------------------------------------ sensitivities

def _w_sens(f, sens) -> None:
    g = f.create_group("sensitivities")
    set_attr(g, "cl", float(sens.cl))
    set_strs(g, "channels", list(sens.channels))
    set_strs(g, "rows", list(sens.rows))
    set_strs(g, "params", list(sens.params))
    if sens.inputs:
        set_attr(g, "inputs_sha256", sens.inputs)
    for (row, p), lim in sens.limits.items():
        _write_limit(g.create_group(f"{row}/{p}"), lim)


def _r_sens(f, path):
    Sensitivities = _type("Sensitivities")
    g = f["sensitivities"]
    rows, params = _strs(g, "rows"), _strs(g, "params")
    limits = {(r, p): _read_limit(g[f"{r}/{p}"]) for r in rows for p in params if f"{r}/{p}" in g}
    return Sensitivities(cl=get_attr(g, "cl"), channels=_strs(g, "channels"), rows=rows,
                         params=params, limits=limits, inputs=get_attr(g, "inputs_sha256", ""))


# ------------------------------------------------------------ region

_REGION_KNOWN = {"detectors", "params", "cl", "delta_chi2", "polygons", "extent", "area",
                 "touches_edge", "scan", "chi2_min"}


def _w_region(f, r) -> None:
    g = f.create_group("region")
    sc = r.scan
    set_strs(g, "params", list(r.params))
    _write_sources(g, r.detectors, sc.channels, sc.table_hashes)
    set_attr(g, "cl", float(r.cl))
    set_attr(g, "delta_chi2", float(r.delta_chi2))
    set_attr(g, "chi2_min", float(r.chi2_min))
    set_attr(g, "area", float(r.area))
    set_attr(g, "area_unit", "e^2")
    set_attr(g, "touches_edge", bool(r.touches_edge))
    set_attr(g, "n_polygons", len(r.polygons))
    _write_fixed(g, sc.base)
    _write_settings(g, sc.settings)
    chi2 = np.asarray(sc.chi2, dtype=float)
    dataset(g, "axis_0", sc.axes[0], "e")
    dataset(g, "axis_1", sc.axes[1], "e")
    dataset(g, "chi2", chi2, "chi2")
    dataset(g, "delta_chi2", chi2 - r.chi2_min, "chi2")
    dataset(g, "converged", np.asarray(sc.converged).astype(np.int8), "bool")
    _write_pulls(g, sc.pulls)
    for p in r.params:
        dataset(g, f"extent/{p}", np.asarray(r.extent.get(p, []), dtype=float), "e")
    for i, (outer, holes) in enumerate(r.polygons):
        dataset(g, f"polygons/{i}/outer", np.asarray(outer, dtype=float), "e")
        for j, h in enumerate(holes):
            dataset(g, f"polygons/{i}/hole_{j}", np.asarray(h, dtype=float), "e")
    _write_extras(g, r, _REGION_KNOWN)


def _r_region(f, path):
    Scan, Region = _type("Scan"), _type("Region")
    g = f["region"]
    params, dets = _strs(g, "params"), _strs(g, "detectors")
    sc = Scan(params=params, axes=(g["axis_0"][()], g["axis_1"][()]), base=_read_base(g),
              detectors=dets, channels=_strs(g, "channels"), chi2=g["chi2"][()],
              pulls=_read_pulls(g, dets), converged=g["converged"][()].astype(bool),
              table_hashes=_strs(g, "table_hashes"), settings=_read_settings(g))
    polys = []
    for i in range(get_attr(g, "n_polygons")):
        pg = g[f"polygons/{i}"]
        nh = sum(1 for k in pg if k.startswith("hole_"))
        polys.append((pg["outer"][()], [pg[f"hole_{j}"][()] for j in range(nh)]))
    extent = {p: [float(v) for v in g[f"extent/{p}"][()]] for p in params}
    return Region(detectors=dets, params=params, cl=get_attr(g, "cl"),
                  delta_chi2=get_attr(g, "delta_chi2"), polygons=polys, extent=extent,
                  area=get_attr(g, "area"), touches_edge=get_attr(g, "touches_edge"), scan=sc,
                  chi2_min=get_attr(g, "chi2_min"), **_read_extras(g, Region))


# ------------------------------------------------------------ xsec

_XSEC_KNOWN = {"target", "channel", "enu_mev", "flavour", "antineutrino", "charges", "T_kev", "sm",
               "bsm", "t_end_kev"}


def _w_xsec(f, x) -> None:
    g = f.create_group("xsec")
    set_attr(g, "target", x.target)
    set_attr(g, "channel", x.channel)
    set_attr(g, "enu_mev", float(x.enu_mev))
    set_attr(g, "flavour", x.flavour)
    set_attr(g, "antineutrino", bool(x.antineutrino))
    set_attr(g, "kinematic_end_kev", float(x.t_end_kev))
    _write_named(g, "charge", dict(x.charges))
    dataset(g, "T_kev", x.T_kev, "keV")
    dataset(g, "sm", x.sm, "cm^2/keV per formula unit")
    dataset(g, "with_charges", x.bsm, "cm^2/keV per formula unit")
    _write_extras(g, x, _XSEC_KNOWN)


def _r_xsec(f, path):
    XsecView = _type("XsecView")
    g = f["xsec"]
    return XsecView(target=get_attr(g, "target"), channel=get_attr(g, "channel"),
                    enu_mev=get_attr(g, "enu_mev"), flavour=get_attr(g, "flavour"),
                    antineutrino=get_attr(g, "antineutrino"), charges=_read_named(g, "charge"),
                    T_kev=g["T_kev"][()], sm=g["sm"][()], bsm=g["with_charges"][()],
                    t_end_kev=get_attr(g, "kinematic_end_kev"), **_read_extras(g, XsecView))


# ------------------------------------------------------------ sweep

def _w_sweep(f, res) -> None:
    sw = res.sweep
    g = f.create_group("sweep")
    set_strs(g, "detectors", list(sw.detectors))
    set_strs(g, "params", list(sw.params))
    set_strs(g, "channels", list(sw.channels))
    set_attr(g, "cl", float(sw.cl))
    set_attr(g, "unit", "e")
    set_attr(g, "wall_time_s", float(res.wall_time_s))
    write_tree(g.create_group("backend"), dict(res.backend))
    for i, v in enumerate(sw.varies):
        vg = g.create_group(f"vary/{i}")
        set_attr(vg, "label", v.label)
        set_attr(vg, "key", v.key)
        set_attr(vg, "unit", v.unit)
        dataset(vg, "values", np.asarray(v.values, dtype=float), v.unit or "1")
    nconf = len(sw.points)
    values = np.array([pt.values for pt in sw.points], dtype=float).reshape(nconf, len(sw.varies))
    dataset(g, "values", values, "see vary/<i>/unit per column")
    dataset(g, "table_dirs", np.array([pt.table_dir for pt in sw.points], dtype=object), "path")
    dataset(g, "table_keys", np.array([pt.table_key for pt in sw.points], dtype=object), "sha256")
    dirs = list(res.built)
    dataset(g, "built/dirs", np.array(dirs, dtype=object), "path")
    status = np.array([[res.built[d].get(det, "") for det in sw.detectors] for d in dirs],
                      dtype=object).reshape(len(dirs), len(sw.detectors))
    dataset(g, "built/status", status, "text")
    for p in sw.params:
        lims = [res.limits[(i, p)] for i in range(nconf)]
        lg = g.create_group(f"limits/{p}")
        regs = [np.asarray(lim["regions"], dtype=float).reshape(-1, 2) for lim in lims]
        nreg = np.array([r.shape[0] for r in regs], dtype=np.int64)
        dataset(lg, "lower", np.array([r[:, 0].min() if r.size else 0.0 for r in regs]), "e")
        dataset(lg, "upper", np.array([r[:, 1].max() if r.size else 0.0 for r in regs]), "e")
        dataset(lg, "n_regions", nreg, "count")
        dataset(lg, "regions", np.concatenate(regs) if regs else np.zeros((0, 2)), "e")
        dataset(lg, "region_offsets", np.concatenate([[0], np.cumsum(nreg)]).astype(np.int64), "index")
        dataset(lg, "open_low", np.array([lim["open_low"] for lim in lims], dtype=np.int8), "bool")
        dataset(lg, "open_high", np.array([lim["open_high"] for lim in lims], dtype=np.int8), "bool")
        dataset(lg, "chi2_min", np.array([lim["chi2_min"] for lim in lims], dtype=float), "chi2")
        dataset(lg, "delta_chi2", np.array([lim["delta_chi2"] for lim in lims], dtype=float), "chi2")
        th = np.array([list(lim["table_hashes"]) for lim in lims], dtype=object)
        dataset(lg, "table_hashes", th.reshape(nconf, -1), "sha256")


def _str_array(ds) -> np.ndarray:
    a = ds[()]
    return np.array([x.decode() if isinstance(x, bytes) else str(x) for x in a.ravel()],
                    dtype=object).reshape(a.shape)


def _r_sweep(f, path):
    Sweep, SweepPoint, SweepResult, Vary = (_type(n) for n in ("Sweep", "SweepPoint", "SweepResult",
                                                                 "Vary"))
    g = f["sweep"]
    varies = []
    for i in range(len(g["vary"])):
        vg = g[f"vary/{i}"]
        varies.append(Vary(get_attr(vg, "label"), get_attr(vg, "key"),
                           tuple(float(v) for v in vg["values"][()])))
    values = g["values"][()]
    dirs, keys = _str_array(g["table_dirs"]), _str_array(g["table_keys"])
    points = tuple(SweepPoint(tuple(float(v) for v in values[i]), {}, None, str(dirs[i]), str(keys[i]))
                   for i in range(values.shape[0]))
    dets, params = _strs(g, "detectors"), _strs(g, "params")
    sw = Sweep(tuple(varies), dets, params, get_attr(g, "cl"), _strs(g, "channels"), points, None)
    limits = {}
    for p in params:
        lg = g[f"limits/{p}"]
        regs, off = lg["regions"][()], lg["region_offsets"][()]
        th = _str_array(lg["table_hashes"])
        for i in range(len(points)):
            limits[(i, p)] = {"regions": [[float(a), float(b)] for a, b in regs[off[i]:off[i + 1]]],
                              "open_low": bool(lg["open_low"][i]), "open_high": bool(lg["open_high"][i]),
                              "chi2_min": float(lg["chi2_min"][i]),
                              "delta_chi2": float(lg["delta_chi2"][i]),
                              "table_hashes": [str(h) for h in th[i]]}
    bdirs, bstat = _str_array(g["built/dirs"]), _str_array(g["built/status"])
    built = {str(d): {det: str(s) for det, s in zip(dets, bstat[i]) if s}
             for i, d in enumerate(bdirs)}
    return SweepResult(sw, limits, built, get_attr(g, "wall_time_s"), read_tree(g["backend"]))


# ------------------------------------------------------------ scan

def h5_chunks(shape, target=1 << 16):
    """HDF5 chunk shape: trailing axes whole while the chunk stays under ``target`` values."""
    out = [1] * len(shape)
    size = 1
    for d in range(len(shape) - 1, -1, -1):
        if size * shape[d] <= target:
            out[d] = shape[d]
            size *= shape[d]
        else:
            out[d] = max(1, target // size)
            break
    return tuple(out)


class ScanWriter:
    """The grids of a ``scan`` results file, filled hyperslab by hyperslab.

    Names: ``chi2``, ``converged`` and ``pulls/<detector>/signal|background``.
    """

    def __init__(self, f, shape, detectors, pulls: bool):
        self._f = f
        self.group = f.require_group("scan")
        self.shape = tuple(int(s) for s in shape)
        chunks = h5_chunks(self.shape)
        self._ds = {}

        def make(name, dtype, units):
            ds = self.group.create_dataset(name, shape=self.shape, dtype=dtype, chunks=chunks,
                                           fletcher32=True)
            ds.attrs["units"] = units
            self._ds[name] = ds

        make("chi2", np.float64, "chi2")
        make("converged", np.int8, "bool")
        if pulls:
            for d in detectors:
                make(f"pulls/{d}/signal", np.float64, "fraction")
                make(f"pulls/{d}/background", np.float64, "fraction")

    @property
    def names(self) -> list:
        return list(self._ds)

    def put(self, name: str, index, values) -> None:
        """Write ``values`` into the hyperslab ``index`` of grid ``name``."""
        self._ds[name][index] = values

    def finish(self, res) -> None:
        """Everything else: axes, attributes, projections (from the ScanResult ``res``)."""
        _write_scan_meta(self.group, res)


def _write_scan_meta(g, res) -> None:
    for i, (p, a) in enumerate(zip(res.params, res.axes)):
        dataset(g, f"axis_{i}", np.asarray(a, dtype=float), SPEC[p].unit)
    set_strs(g, "params", list(res.params))
    set_attr(g, "shape", np.asarray(res.shape, dtype=np.int64))
    _write_sources(g, res.detectors, res.channels, res.table_hashes)
    _write_fixed(g, res.base)
    set_attr(g, "chi2_min", float(res.chi2_min))
    _write_named(g, "argmin", res.argmin)
    set_attr(g, "unconverged", int(res.unconverged))
    set_attr(g, "chunk_points", int(res.chunk_points))
    set_attr(g, "chunks", int(res.chunks))
    set_attr(g, "resumed_chunks", int(res.resumed_chunks))
    set_attr(g, "compute_time_s", float(res.compute_time_s))
    set_attr(g, "compile_time_s", float(res.compile_time_s))
    set_attr(g, "wall_time_s", float(res.wall_time_s))
    set_attr(g, "pulls", bool(res.pulls))
    write_tree(g.require_group("backend"), dict(res.backend))
    _write_settings(g, res.settings)
    lv = _cl_levels(len(res.params))
    set_attr(g, "cl_levels_cl", np.array(list(lv)))
    set_attr(g, "cl_levels_delta_chi2", np.array(list(lv.values()), dtype=float))
    set_strs(g, "notes", list(res.notes))
    names = []
    for (kind, name), pr in res.projections.items():
        pg = g.create_group(f"{kind}/{name}")
        names.append(f"{kind}/{name}")
        for i, (p, a) in enumerate(zip(pr.params, pr.axes)):
            dataset(pg, f"axis_{i}", np.asarray(a, dtype=float), SPEC[p].unit)
        dataset(pg, "chi2", pr.chi2, "chi2")
        dataset(pg, "delta_chi2", pr.delta_chi2, "chi2")
        if kind == "profiled":
            dataset(pg, "argmin", pr.argmin, "flat index into /scan/chi2")
            for p, b in pr.best.items():
                dataset(pg, f"best/{p}", b, SPEC[p].unit)
        else:
            dataset(pg, "converged", pr.converged, "bool")
            _write_named(pg, "at", pr.at)
        set_attr(pg, "kind", kind)
        set_strs(pg, "params", list(pr.params))
        set_attr(pg, "chi2_min", float(pr.chi2_min))
        lv = _cl_levels(len(pr.params))
        set_attr(pg, "cl_levels_cl", np.array(list(lv)))
        set_attr(pg, "cl_levels_delta_chi2", np.array(list(lv.values()), dtype=float))
    set_strs(g, "projections", names)


def _w_scan(f, res) -> None:
    w = ScanWriter(f, res.shape, res.detectors, bool(res.pulls))
    n = res.points
    for name in w.names:
        if name == "chi2":
            src = res.chi2
        elif name == "converged":
            src = res.converged
        else:
            _, det, which = name.split("/")
            src = res.pulls[det][0 if which == "signal" else 1]
        for lo in range(0, n, _BLOCK):
            for index, _, _ in flat_boxes(lo, min(n, lo + _BLOCK), res.shape):
                w.put(name, index, np.asarray(src[index]))
    w.finish(res)


@contextmanager
def stream_scan(path, shape, detectors, pulls: bool, *, config=None, force: bool = False):
    """A ``scan`` results file the caller fills: yields a :class:`ScanWriter`; the caller
    must call ``finish(result)`` before leaving.  Atomic and verified like :func:`save`."""
    with results_file(path, "scan", config=config, force=force) as f:
        w = ScanWriter(f, shape, detectors, pulls)
        yield w
        if "params" not in w.group.attrs:
            raise RuntimeError("stream_scan: finish() was not called")


def _r_scan(f, path):
    Projection, ScanResult = _type("Projection"), _type("ScanResult")
    g = f["scan"]
    params, dets = _strs(g, "params"), _strs(g, "detectors")
    shape = tuple(int(s) for s in g.attrs["shape"])
    axes = tuple(g[f"axis_{i}"][()] for i in range(len(params)))

    def lazy(name):
        ds = g[name]
        return LazyArray(path, f"scan/{name}", ds.shape, ds.dtype)

    pulls = {}
    if get_attr(g, "pulls"):
        pulls = {d: (lazy(f"pulls/{d}/signal"), lazy(f"pulls/{d}/background")) for d in dets}
    projections = {}
    for full in _strs(g, "projections"):
        pg = g[full]
        kind, name = full.split("/", 1)
        pp = _strs(pg, "params")
        pax = tuple(pg[f"axis_{i}"][()] for i in range(len(pp)))
        if kind == "profiled":
            best = {p: pg[f"best/{p}"][()] for p in pg["best"]} if "best" in pg else {}
            pr = Projection(kind, pp, pax, pg["chi2"][()], get_attr(pg, "chi2_min"), best=best,
                            argmin=pg["argmin"][()])
        else:
            pr = Projection(kind, pp, pax, pg["chi2"][()], get_attr(pg, "chi2_min"),
                            at=_read_named(pg, "at"), converged=pg["converged"][()])
        projections[(kind, name)] = pr
    if shape != tuple(a.size for a in axes) or g["chi2"].shape != shape:
        raise ValueError("grid shape does not match the axes")
    return ScanResult(
        params=params, axes=axes, base=_read_base(g), detectors=dets, channels=_strs(g, "channels"),
        table_hashes=_strs(g, "table_hashes"), settings=_read_settings(g), chi2=lazy("chi2"),
        converged=lazy("converged"), pulls=pulls, chi2_min=get_attr(g, "chi2_min"),
        argmin=_read_named(g, "argmin"), unconverged=get_attr(g, "unconverged"),
        projections=projections, path=str(path), chunk_points=get_attr(g, "chunk_points"),
        chunks=get_attr(g, "chunks"), resumed_chunks=get_attr(g, "resumed_chunks"),
        compute_time_s=get_attr(g, "compute_time_s"),
        compile_time_s=get_attr(g, "compile_time_s", 0.0),    # 0: a file from before it was kept
        wall_time_s=get_attr(g, "wall_time_s"),
        backend=read_tree(g["backend"]), notes=_strs(g, "notes"))


def open_scan_unverified(path):
    """The ScanResult of a results file this process has just written and verified."""
    with _reading(path) as f:
        return _r_scan(f, str(path))


# ------------------------------------------------------------ fit, bands, fc

def _write_given(g, fixed) -> None:
    """The charges of a frequentist result: every charge by name, 0 unless fixed."""
    _write_fixed(g, np.array([float(dict(fixed).get(p, 0.0)) for p in PARAMS]))


def _read_given(g, skip=()) -> dict:
    """{charge: value} of the charges fixed away from 0."""
    names = _strs(g, "fixed_names")
    vals = np.asarray(g.attrs["fixed_values"], dtype=float).ravel()
    return {n: float(v) for n, v in zip(names, vals) if n not in skip and float(v) != 0.0}


def _write_provenance(g, obj) -> None:
    _write_sources(g, obj.detectors, obj.channels, obj.table_hashes)
    set_attr(g, "has_settings", obj.settings is not None)
    if obj.settings is not None:
        _write_settings(g, obj.settings)


def _read_provenance(g) -> dict:
    return {"detectors": _strs(g, "detectors"), "channels": _strs(g, "channels"),
            "table_hashes": _strs(g, "table_hashes"),
            "settings": _read_settings(g) if get_attr(g, "has_settings") else None}


def _w_fit(f, r) -> None:
    g = f.create_group("fit")
    set_strs(g, "params", list(r.params))
    set_strs(g, "detectors", list(r.detectors))
    set_attr(g, "unit", r.unit)
    _write_named(g, "best", r.best)
    set_attr(g, "chi2_min", float(r.chi2_min))
    set_attr(g, "ndof", int(r.ndof))
    set_attr(g, "has_p_value", r.p_value is not None)
    if r.p_value is not None:
        set_attr(g, "p_value", float(r.p_value))
    set_attr(g, "converged", bool(r.converged))
    set_strs(g, "pull_detectors", list(r.pulls))
    set_attr(g, "pull_signal", np.array([float(a) for a, _ in r.pulls.values()]))
    set_attr(g, "pull_background", np.array([float(b) for _, b in r.pulls.values()]))
    for p, (lo, hi) in r.errors.items():
        eg = g.create_group(f"errors/{p}")
        set_attr(eg, "low_found", lo is not None)
        set_attr(eg, "high_found", hi is not None)
        set_attr(eg, "low", 0.0 if lo is None else float(lo))
        set_attr(eg, "high", 0.0 if hi is None else float(hi))
    for p, (lo, hi) in r.ranges.items():
        set_attr(g.require_group("ranges"), p, np.array([float(lo), float(hi)]))
    _write_given(g, r.fixed)


def _r_fit(f, path):
    Fit = _type("Fit")
    g = f["fit"]
    params = _strs(g, "params")
    errors = {}
    for p in params:
        eg = g[f"errors/{p}"]
        errors[p] = (get_attr(eg, "low") if get_attr(eg, "low_found") else None,
                     get_attr(eg, "high") if get_attr(eg, "high_found") else None)
    dets = _strs(g, "pull_detectors")
    sig = np.asarray(g.attrs["pull_signal"], dtype=float).ravel()
    bkg = np.asarray(g.attrs["pull_background"], dtype=float).ravel()
    ranges = {p: tuple(float(v) for v in g["ranges"].attrs[p]) for p in params
              if "ranges" in g and p in g["ranges"].attrs}
    return Fit(detectors=_strs(g, "detectors"), params=params, best=_read_named(g, "best"),
               pulls={d: (float(a), float(b)) for d, a, b in zip(dets, sig, bkg)},
               chi2_min=get_attr(g, "chi2_min"), ndof=get_attr(g, "ndof"),
               p_value=get_attr(g, "p_value") if get_attr(g, "has_p_value") else None,
               errors=errors, converged=get_attr(g, "converged"), fixed=_read_given(g, params),
               ranges=ranges, unit=get_attr(g, "unit"))


def _w_bands(f, b) -> None:
    g = f.create_group("bands")
    set_attr(g, "param", b.param)
    _write_provenance(g, b)
    set_attr(g, "cl", float(b.cl))
    set_attr(g, "toys", int(b.toys))
    set_attr(g, "seed", int(b.seed))
    set_attr(g, "unit", b.unit)
    for side in ("lower", "upper"):
        _write_named(g, side, getattr(b, side))
    set_attr(g, "open_low", int(b.open_low))
    set_attr(g, "open_high", int(b.open_high))
    set_attr(g, "unconverged", int(b.unconverged))
    _write_given(g, b.fixed)
    dataset(g, "asimov_regions", np.asarray(b.asimov_regions, dtype=float).reshape(-1, 2), b.unit)
    dataset(g, "grid", np.asarray(b.grid, dtype=float), b.unit)
    dataset(g, "lower_limits", np.asarray(b.lower_limits, dtype=float), b.unit)
    dataset(g, "upper_limits", np.asarray(b.upper_limits, dtype=float), b.unit)


def _r_bands(f, path):
    Bands = _type("Bands")
    g = f["bands"]
    param = get_attr(g, "param")
    return Bands(param=param, cl=get_attr(g, "cl"), toys=get_attr(g, "toys"),
                 seed=get_attr(g, "seed"),
                 asimov_regions=[[float(a), float(b)] for a, b in g["asimov_regions"][()]],
                 lower=_read_named(g, "lower"), upper=_read_named(g, "upper"), grid=g["grid"][()],
                 lower_limits=g["lower_limits"][()], upper_limits=g["upper_limits"][()],
                 open_low=get_attr(g, "open_low"), open_high=get_attr(g, "open_high"),
                 unconverged=get_attr(g, "unconverged"), fixed=_read_given(g, (param,)),
                 unit=get_attr(g, "unit"), **_read_provenance(g))


def _w_fc(f, r) -> None:
    g = f.create_group("fc")
    set_attr(g, "param", r.param)
    set_attr(g, "method", r.method)
    _write_provenance(g, r)
    set_attr(g, "cl", float(r.cl))
    set_attr(g, "toys", int(r.toys))
    set_attr(g, "seed", int(r.seed))
    set_attr(g, "unit", r.unit)
    set_attr(g, "chi2_min", float(r.chi2_min))
    set_attr(g, "wilks_delta_chi2", float(r.delta_chi2))
    set_attr(g, "open_low", bool(r.open_low))
    set_attr(g, "open_high", bool(r.open_high))
    set_attr(g, "unconverged", int(r.unconverged))
    _write_given(g, r.fixed)
    dataset(g, "grid", np.asarray(r.grid, dtype=float), r.unit)
    dataset(g, "critical_values", np.asarray(r.critical, dtype=float), "chi2")
    dataset(g, "wilks_coverage", np.asarray(r.coverage, dtype=float), "fraction")
    dataset(g, "wilks_coverage_error", np.asarray(r.coverage_error, dtype=float), "fraction")
    dataset(g, "delta_chi2_data", np.asarray(r.delta_chi2_data, dtype=float), "chi2")
    dataset(g, "regions", np.asarray(r.regions, dtype=float).reshape(-1, 2), r.unit)
    dataset(g, "wilks_regions", np.asarray(r.wilks_regions, dtype=float).reshape(-1, 2), r.unit)


def _r_fc(f, path):
    FCLimit = _type("FCLimit")
    g = f["fc"]
    param = get_attr(g, "param")
    regions = lambda name: [[float(a), float(b)] for a, b in g[name][()]]  # noqa: E731
    return FCLimit(param=param, cl=get_attr(g, "cl"), regions=regions("regions"),
                   open_low=get_attr(g, "open_low"), open_high=get_attr(g, "open_high"),
                   chi2_min=get_attr(g, "chi2_min"), toys=get_attr(g, "toys"),
                   seed=get_attr(g, "seed"), grid=g["grid"][()], critical=g["critical_values"][()],
                   coverage=g["wilks_coverage"][()], coverage_error=g["wilks_coverage_error"][()],
                   delta_chi2_data=g["delta_chi2_data"][()], wilks_regions=regions("wilks_regions"),
                   delta_chi2=get_attr(g, "wilks_delta_chi2"), unconverged=get_attr(g, "unconverged"),
                   fixed=_read_given(g, (param,)), unit=get_attr(g, "unit"),
                   method=get_attr(g, "method"), **_read_provenance(g))


_WRITERS = {"limits": _w_limits, "sensitivities": _w_sens, "region": _w_region, "xsec": _w_xsec,
            "sweep": _w_sweep, "scan": _w_scan, "fit": _w_fit, "bands": _w_bands, "fc": _w_fc}
_READERS = {"limits": _r_limits, "sensitivities": _r_sens, "region": _r_region, "xsec": _r_xsec,
            "sweep": _r_sweep, "scan": _r_scan, "fit": _r_fit, "bands": _r_bands, "fc": _r_fc}
