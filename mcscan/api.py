"""The user-level pipeline: configuration -> tables -> scans -> limits.

Each function here is what one CLI command calls; they also form the
Python API (``import mcscan.api as mp``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .tables.build import build_table
from .config.load import Config, config_hash, table_config
from .params import PARAMS
from .errors import InputError, TableError
from .scans.limits import VISIBLE_PARAMS, Limit, limit_1d
from .stats.reference import coefficients
from .scans.grid import ScanSettings
from .io.tables import load_table, save_results, save_table, table_path

__all__ = ["build_tables", "load_coefficients", "parse_channels", "limits", "region",
           "save_region", "sensitivities", "Sensitivities", "save_sensitivities", "DEFAULT_TABLES"]

#: Default folder for built tables.
DEFAULT_TABLES = Path("tables")


def parse_channels(text) -> tuple:
    """'nuclear,electron' (or a sequence) -> ('nuclear', 'electron'), checked."""
    from .config.load import CHANNELS

    items = text.split(",") if isinstance(text, str) else list(text)
    items = [s.strip() for s in items if s.strip()]
    if not items:
        raise InputError("--channels: expected a comma-separated list like 'nuclear,electron'")
    for c in items:
        if c not in CHANNELS:
            raise InputError(f"unknown channel {c!r}: expected one of {', '.join(CHANNELS)}")
    if "nuclear" not in items:
        raise InputError(f"channels {','.join(items)!r}: the nuclear channel is required")
    return tuple(c for c in CHANNELS if c in items)


def _detectors(config: Config, names) -> list[str]:
    names = list(names or config.detectors)
    for n in names:
        config.detector(n)
    if len(set(names)) != len(names):
        raise InputError(f"detector named twice in {names}")
    return names


def build_tables(config: Config, detectors=None, tables_dir=DEFAULT_TABLES, *, force=False,
                 progress=False, log=None) -> dict:
    """Build (or keep, if up to date) the response table of each detector.

    A table is rebuilt only when its configuration hash differs from the
    requested one (or ``force``).  Returns {detector: (path, "built"|"up to date")}.
    """
    out = {}
    for name in _detectors(config, detectors):
        path = table_path(tables_dir, name)
        want = config_hash(table_config(config, name))
        if not force and _loads(path, want, config.detector(name)):
            out[name] = (path, "up to date")
        else:
            save_table(build_table(config, name, progress=progress), path)
            out[name] = (path, "built")
        if log:
            log(f"{name}: {out[name][1]} -> {path}")
    return out


def _loads(path, want, det) -> bool:
    """The table at ``path`` is whole, current and has every channel ``det`` enables."""
    try:
        load_table(path, expected_hash=want, channels=det.channels)
        return True
    except TableError:
        return False


def load_coefficients(config: Config, detectors, tables_dir=DEFAULT_TABLES,
                      channels=("nuclear",)) -> list:
    """Load and check each detector's table; return per-detector coefficients."""
    coefs = []
    for name in _detectors(config, detectors):
        det = config.detector(name)
        for ch in channels:
            if ch not in det.channels:
                raise InputError(
                    f"detector {name} does not enable the {ch!r} channel: add it to "
                    f"detectors.{name}.channels in your configuration"
                )
        path = table_path(tables_dir, name)
        if not path.is_file():
            raise TableError(f"no table for {name} in {str(Path(tables_dir))!r}: build it with "
                             f"'mcscan build --detector {name}' (same --config and --tables)")
        table = load_table(path, expected_hash=config_hash(table_config(config, name)),
                           channels=channels)
        coefs.append(coefficients(table, channels))
    return coefs


def limits(config: Config, detectors, param, *, tables_dir=DEFAULT_TABLES, cl=None,
           channels=("nuclear",), xrange=None, points=None, fixed=None, profile=(),
           level=None, progress=False) -> Limit:
    """Allowed set of ``param`` for the (combined) detectors.

    ``profile`` names charges minimised over at each point (searched over
    their configured ranges); ``level`` overrides the Delta chi2 threshold.
    """
    from .scans.grid import check_param

    check_param(param)
    for p in profile:
        check_param(p)
    coefs = load_coefficients(config, detectors, tables_dir, channels)
    auto = xrange is None
    if points is None:
        points = config.numerics.scan_points if not profile else min(config.numerics.scan_points, 801)
    return limit_1d(
        coefs, param,
        cl=config.analysis.cl if cl is None else cl,
        xrange=config.analysis.ranges[param] if auto else xrange,
        points=points, fixed=fixed, settings=ScanSettings.from_config(config),
        extend=6 if auto else 0, progress=progress,
        profile=tuple(profile), profile_ranges=config.analysis.ranges, level=level,
    )


def region(config: Config, detectors, params, *, tables_dir=DEFAULT_TABLES, cl=None,
           channels=("nuclear",), ranges=None, points=201, fixed=None, progress=False):
    """Allowed region of two charges (closed polygons, extent, area)."""
    from .scans.regions import region_2d
    from .scans.grid import check_param

    params = tuple(params)
    for p in params:
        check_param(p)
    coefs = load_coefficients(config, detectors, tables_dir, channels)
    auto = ranges is None
    return region_2d(
        coefs, params, cl=config.analysis.cl if cl is None else cl,
        ranges=[config.analysis.ranges[p] for p in params] if auto else ranges,
        points=points, fixed=fixed, zoom=auto, settings=ScanSettings.from_config(config),
        progress=progress,
    )


def save_region(path, regions: dict, config: Config) -> Path:
    """Write regions {label: Region} to a results file (group per label)."""
    groups = {}
    for label, r in regions.items():
        sc = r.scan
        data = {"axis_0": (sc.axes[0], "e"), "axis_1": (sc.axes[1], "e"),
                "chi2": (sc.chi2, "chi2"), "delta_chi2": (sc.chi2 - r.chi2_min, "chi2"),
                "converged": (sc.converged.astype(np.int8), "bool")}
        for i, (outer, holes) in enumerate(r.polygons):
            data[f"polygon_{i}"] = (outer, "e")
            for j, h in enumerate(holes):
                data[f"polygon_{i}_hole_{j}"] = (h, "e")
        groups[label] = {"attrs": {
            "params": list(r.params), "detectors": list(r.detectors), "cl": r.cl,
            "delta_chi2_level": r.delta_chi2, "chi2_min": r.chi2_min, "area": r.area,
            "extent": r.extent, "touches_edge": int(r.touches_edge), "n_polygons": len(r.polygons),
            "channels": list(sc.channels), "table_hashes": list(sc.table_hashes),
            "fixed": list(map(float, sc.base)),
        }, "data": data}
    return save_results(path, groups, {"kind_detail": "regions", "config": config.to_dict()})


@dataclass(frozen=True)
class Sensitivities:
    """Detector x charge table of allowed sets at one C.L."""

    cl: float
    channels: tuple
    rows: tuple               # detector names, then "combined" if asked
    params: tuple
    limits: dict              # (row, param) -> Limit


def sensitivities(config: Config, *, tables_dir=DEFAULT_TABLES, cl=None, channels=("nuclear",),
                  detectors=None, combined=True, progress=False, log=None) -> Sensitivities:
    """The main job: build missing tables, then every detector's 1D limits."""
    names = _detectors(config, detectors)
    chan_ok = [n for n in names if all(c in config.detector(n).channels for c in channels)]
    if not chan_ok:
        raise InputError(f"no detector enables the channels {','.join(channels)}")
    build_tables(config, chan_ok, tables_dir, progress=progress, log=log)
    cl = config.analysis.cl if cl is None else cl
    rows = [[n] for n in chan_ok]
    if combined and len(chan_ok) > 1:
        rows.append(chan_ok)
    out = {}
    from tqdm.auto import tqdm

    todo = [(r, p) for r in rows for p in VISIBLE_PARAMS]
    for r, p in tqdm(todo, desc="sensitivities", disable=not progress):
        label = r[0] if len(r) == 1 else "combined"
        out[(label, p)] = limits(config, r, p, tables_dir=tables_dir, cl=cl, channels=channels)
    labels = tuple(r[0] if len(r) == 1 else "combined" for r in rows)
    return Sensitivities(float(cl), tuple(channels), labels, VISIBLE_PARAMS, out)


def save_sensitivities(sens: Sensitivities, path, config: Config) -> Path:
    """Write every profile and interval of a sensitivity table to HDF5."""
    groups = {}
    for (row, p), lim in sens.limits.items():
        sc = lim.scan
        data = {
            "x": (sc.axes[0], "e"),
            "chi2": (sc.chi2, "chi2"),
            "delta_chi2": (sc.chi2 - lim.chi2_min, "chi2"),
            "converged": (sc.converged.astype(np.int8), "bool"),
            "regions": (np.asarray(lim.regions, dtype=float).reshape(-1, 2), "e"),
        }
        for det, (a, b) in sc.pulls.items():
            data[f"pull_signal_{det}"] = (a, "fraction")
            data[f"pull_background_{det}"] = (b, "fraction")
        groups[f"{row}/{p}"] = {
            "attrs": {
                "param": p, "detectors": list(lim.detectors), "cl": lim.cl,
                "delta_chi2_level": lim.delta_chi2, "chi2_min": lim.chi2_min,
                "open_low": int(lim.open_low), "open_high": int(lim.open_high),
                "table_hashes": list(sc.table_hashes), "fixed": list(map(float, sc.base)),
            },
            "data": data,
        }
    attrs = {"kind_detail": "sensitivities", "cl": sens.cl, "channels": list(sens.channels),
             "rows": list(sens.rows), "params": list(sens.params),
             "config": config.to_dict(), "params_order": list(PARAMS)}
    return save_results(path, groups, attrs)
