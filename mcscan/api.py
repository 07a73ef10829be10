"""The user-level API: configuration -> tables -> limits, regions, scans.

The main entry point is :class:`Analysis`: it loads (building missing or
outdated ones) and verifies the response tables of its detectors once and
keeps their coefficients, so any number of limits, regions and scans that
follow read no file::

    import mcscan
    a = mcscan.Analysis()                      # built-in ESS config, CsI, Xe, Ge
    print(a.limits("q_ee", detectors="Ge").regions)

Every command of the ``mcscan`` command line is one call of this module.
The module-level functions (:func:`build_tables`, :func:`load_coefficients`,
:func:`limits`, :func:`region`, :func:`sensitivities`) are the same
computations for one-off use without an :class:`Analysis`.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from . import __version__
from . import budget as _budget
from .config.load import Config, config_hash, load_config, table_config
from .errors import InputError, TableError
from .io import tables as _tio
from .params import PARAMS, SPEC, check_any_param, check_param, default_range
from .results import FamilySensitivities, Sensitivities
from .scans.grid import ScanSettings
from .scans.limits import (CL_RANGE, VISIBLE_PARAMS, Limit, check_fixed, check_range,
                           delta_chi2_level, limit_1d, limits_1d)
from .stats.reference import coefficients

__all__ = ["Analysis", "FamilySensitivities", "build_tables", "load_coefficients", "parse_channels", "limits",
           "region", "sensitivities", "Sensitivities", "check_cl",
           "default_tables_dir", "sweep", "xsec", "DEFAULT_TABLES", "CL_MIN", "CL_MAX"]

#: Default folder for tables built from the built-in configuration.
DEFAULT_TABLES = Path("tables")

#: Accepted confidence levels: [CL_MIN, CL_MAX] (beyond them the chi2 quantile
#: is dominated by rounding: 1 - 1e-9 is already Delta chi2 = 37.3).
CL_MIN, CL_MAX = CL_RANGE


# --------------------------------------------------------------- arguments

_CODE = []


def _code_sha256() -> str:
    """SHA-256 of the package's own files (its Python modules and built-in
    configuration): a stored result is reused only by the code that made it."""
    if not _CODE:
        root = Path(__file__).resolve().parent
        h = hashlib.sha256()
        for f in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".toml") and p.is_file()):
            h.update(f.relative_to(root).as_posix().encode() + b"\0")
            h.update(f.read_bytes())
        _CODE.append(h.hexdigest())
    return _CODE[0]


def parse_channels(text) -> tuple:
    """'nuclear,electron' (or a sequence) -> ('nuclear', 'electron'), checked."""
    from .config.load import CHANNELS

    items = text.split(",") if isinstance(text, str) else list(text)
    items = [str(s).strip() for s in items if str(s).strip()]
    if not items:
        raise InputError("channels: expected a comma-separated list like 'nuclear,electron'")
    for c in items:
        if c not in CHANNELS:
            raise InputError(f"unknown channel {c!r}: expected one of {', '.join(CHANNELS)}")
    if len(set(items)) != len(items):
        raise InputError(f"channels {','.join(items)!r}: a channel is named twice")
    if "nuclear" not in items:
        raise InputError(f"channels {','.join(items)!r}: the nuclear channel is required")
    return tuple(c for c in CHANNELS if c in items)


def _range(p, r) -> tuple:
    try:
        lo, hi = r
    except (TypeError, ValueError):
        raise InputError(f"range {r!r} of {p}: expected two numbers (lo, hi) in e") from None
    return check_range(p, lo, hi)


def _count(n, what) -> int:
    if isinstance(n, bool) or not float(n).is_integer() or not n >= 1:
        raise InputError(f"{what} = {n!r}: expected a positive whole number")
    return int(n)


def _seed(seed) -> int:
    if isinstance(seed, bool) or not float(seed).is_integer() or not 0 <= seed < 2**63:
        raise InputError(f"seed = {seed!r}: expected a whole number from 0 to 2**63 - 1")
    return int(seed)


def _data_detectors(path) -> list:
    """The detectors a data file holds counts for, in file order."""
    from .io.data import read_counts

    return list(read_counts(path))


def _charges_only(names) -> bool:
    """True when every name is a charge (the millicharge machinery, unchanged)."""
    return all(n in PARAMS for n in names)


def _check_any_fixed(fixed) -> dict:
    """{param: value} of fixed parameters of any family, checked: known names, finite
    values (charges within [-1, 1] e, others within their allowed values)."""
    fixed = dict(fixed or {})
    out = check_fixed({k: v for k, v in fixed.items() if k in PARAMS})
    for k, v in fixed.items():
        if k in PARAMS:
            continue
        check_any_param(k)
        try:
            x = float(v)
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"{k} = {v!r}: expected a number in {SPEC[k].unit}") from None
        lo, hi = SPEC[k].bounds
        if not (math.isfinite(x) and lo <= x <= hi):
            raise InputError(f"{k} = {v!r}: expected a finite value"
                             + (f" within [{lo:g}, {hi:g}]" if math.isfinite(lo) else "")
                             + f" in {SPEC[k].unit}")
        out[k] = x
    return {k: out[k] for k in fixed}


def _range_any(p, r) -> tuple:
    """A checked (lo, hi) of a parameter of any family."""
    if p in PARAMS:
        return _range(p, r)
    from .scans.families import _check_family_range

    try:
        lo, hi = r
    except (TypeError, ValueError):
        raise InputError(f"range {r!r} of {p}: expected two numbers (lo, hi) in "
                         f"{SPEC[p].unit}") from None
    return _check_family_range(p, lo, hi)


def check_cl(cl) -> float:
    """A confidence level as a float in [CL_MIN, CL_MAX], or an InputError saying so."""
    delta_chi2_level(cl, 1)
    return float(cl)


def _builtin() -> Config:
    """The built-in configuration, loaded once per process."""
    global _BUILTIN
    if _BUILTIN is None:
        _BUILTIN = load_config()
    return _BUILTIN


_BUILTIN = None


def _config(config) -> Config:
    """A Config from a Config, a TOML path or None (the built-in configuration)."""
    if isinstance(config, Config):
        return config
    return load_config(config)


def _detectors(config: Config, names) -> list[str]:
    if isinstance(names, str):
        names = [names]
    names = list(config.detectors if names is None else names)
    if not names:
        raise InputError("no detector given: expected at least one detector name")
    for n in names:
        config.detector(n)
    if len(set(names)) != len(names):
        raise InputError(f"detector named twice in {', '.join(names)}")
    return names


def default_tables_dir(config, config_path=None) -> Path:
    """Where the tables of ``config`` go by default.

    ``tables/`` when every detector's table configuration is that of the
    built-in configuration; otherwise a folder of its own,
    ``tables/<config file stem>-<first 8 hex of the table configuration hash>/``,
    so that tables of a user configuration never replace the built-in ones.
    """
    if config is None and config_path is None:
        return DEFAULT_TABLES
    config = _config(config if config is not None else config_path)
    builtin = _builtin()
    mine = {n: config_hash(table_config(config, n)) for n in config.detectors}
    if all(n in builtin.detectors and config_hash(table_config(builtin, n)) == h
           for n, h in mine.items()):
        return DEFAULT_TABLES
    key = hashlib.sha256(json.dumps(mine, sort_keys=True).encode()).hexdigest()[:8]
    stem = Path(config_path).stem if config_path is not None else "custom"
    return DEFAULT_TABLES / f"{stem}-{key}"


# ------------------------------------------------------------------ tables

def _verified(path, want, det):
    """The table at ``path`` if it is whole, current and has every channel ``det`` enables."""
    try:
        return _tio.load_table(path, expected_hash=want, channels=det.channels)
    except TableError:
        return None


def _ensure_table(config: Config, name: str, tables, *, force=False, progress=False):
    """(table, status): the verified table of ``name`` in ``tables``, built if missing,
    outdated or ``force``; status is "built" or "up to date".  Opens the file once."""
    path = _tio.table_path(tables, name)
    want = config_hash(table_config(config, name))
    table = None if force or not path.is_file() else _verified(path, want, config.detector(name))
    if table is not None:
        return table, path, "up to date"
    from .tables.build import build_table

    table = build_table(config, name, progress=progress)
    _tio.save_table(table, path)
    return table, path, "built"


def build_tables(config=None, detectors=None, tables=DEFAULT_TABLES, *, force=False,
                 progress=False, log=None) -> dict:
    """Build (or keep, if up to date) the response table of each detector.

    Parameters
    ----------
    config : Config, path of a TOML file, or None (the built-in configuration)
    detectors : names (default every detector of the configuration)
    tables : folder of the tables
    force : rebuild even up-to-date tables
    log : callable(str) told what happened to each table

    A table is rebuilt only when its configuration hash differs from the
    requested one (or ``force``).  Returns {detector: (path, "built"|"up to date")}.
    """
    config = _config(config)
    out = {}
    for name in _detectors(config, detectors):
        _, path, status = _ensure_table(config, name, tables, force=force, progress=progress)
        out[name] = (path, status)
        if log:
            log(f"{name}: {status} -> {path}")
    return out


def _check_channels(config: Config, name: str, channels) -> None:
    det = config.detector(name)
    for ch in channels:
        if ch not in det.channels:
            raise InputError(
                f"detector {name} does not enable the {ch!r} channel: add it to "
                f"detectors.{name}.channels in your configuration"
            )


def _load_table(config: Config, name: str, tables, channels):
    """The verified table of ``name`` in ``tables`` (not built)."""
    path = _tio.table_path(tables, name)
    if not path.is_file():
        raise TableError(f"no table for {name} in {str(Path(tables))!r}: build it with "
                         f"'mcscan build --detector {name}' (same --config and --tables)")
    return _tio.load_table(path, expected_hash=config_hash(table_config(config, name)),
                           channels=channels)


def _load_coef(config: Config, name: str, tables, channels):
    return coefficients(_load_table(config, name, tables, channels), channels)


def load_coefficients(config, detectors, tables_dir=DEFAULT_TABLES, channels=("nuclear",)) -> list:
    """Load and check each detector's table (no building); return per-detector coefficients."""
    config = _config(config)
    names = _detectors(config, detectors)
    for name in names:
        _check_channels(config, name, channels)
    return [_load_coef(config, name, tables_dir, channels) for name in names]


# ---------------------------------------------------------------- analysis

class Analysis:
    """Detectors, channels and their verified tables, ready for limits, regions and scans.

    Parameters
    ----------
    config : :class:`mcscan.config.Config`, path of a TOML file, or None
        (the built-in ESS configuration)
    detectors : names (default: every detector of the configuration, i.e.
        CsI, Xe and Ge for the built-in one; with channels beyond the nuclear
        one, those detectors that enable them)
    channels : detection channels, ``("nuclear",)`` or ``("nuclear", "electron")``
    tables : folder of the response tables (default: ``tables/`` for the
        built-in configuration, a folder of its own for any other, see
        :func:`default_tables_dir`)
    build : build missing or outdated tables (default); False: refuse them
    progress, log : progress bars while building; callable(str) told what
        happened to each table

    Each table is opened once, here; the methods read no file.
    """

    def __init__(self, config=None, detectors=None, channels=("nuclear",), tables=None, *,
                 build: bool = True, progress: bool = False, log=None, data=None):
        path = config if isinstance(config, (str, Path)) else None
        self.config = _config(config)
        self.data = None if data is None else Path(data)
        if self.data is not None and detectors is None:
            detectors = _data_detectors(self.data)
        self.channels = parse_channels(channels)
        if detectors is None:
            names = [n for n in _detectors(self.config, None)
                     if all(c in self.config.detector(n).channels for c in self.channels)]
            if not names:
                raise InputError(f"no detector of the configuration enables the channels "
                                 f"{','.join(self.channels)}")
        else:
            names = _detectors(self.config, detectors)
            for n in names:
                _check_channels(self.config, n, self.channels)
        self.detectors = tuple(names)
        self.tables = Path(default_tables_dir(self.config, path) if tables is None else tables)
        self.status = {}
        self._coefs = {}
        self._fcoefs = {}
        self._tables = {}       # the verified tables: family_coefficients reads no file again
        for name in self.detectors:
            if build:
                table, tpath, status = _ensure_table(self.config, name, self.tables,
                                                     progress=progress)
            else:
                tpath, status = _tio.table_path(self.tables, name), "loaded"
                table = _load_table(self.config, name, self.tables, self.channels)
            self._tables[name] = table
            self._coefs[name] = coefficients(table, self.channels)
            self.status[name] = (tpath, status)
            if log:
                log(f"{name}: {status} -> {tpath}")
        self.settings = ScanSettings.from_config(self.config)
        if self.data is not None:
            from .scans.frequentist import load_data

            with_d = load_data(self.data, [self._coefs[n] for n in self.detectors])
            self._coefs = {c.detector: c for c in with_d}

    def __repr__(self) -> str:
        data = f", data={str(self.data)!r}" if self.data is not None else ""
        return (f"Analysis(detectors={list(self.detectors)}, channels={list(self.channels)}, "
                f"tables={str(self.tables)!r}{data})")

    # ------------------------------------------------------------ helpers

    def coefficients(self, detectors=None) -> list:
        """Coefficients of ``detectors`` (a name or names; default all of this Analysis's)."""
        if detectors is None:
            return [self._coefs[n] for n in self.detectors]
        names = [detectors] if isinstance(detectors, str) else list(detectors)
        if not names:
            raise InputError("no detector given: expected at least one detector name")
        for n in names:
            if n not in self._coefs:
                self.config.detector(n)   # an unknown name: ConfigError naming the choices
                raise InputError(f"detector {n!r} is not part of this analysis "
                                 f"({', '.join(self.detectors)})")
        if len(set(names)) != len(names):
            raise InputError(f"detector named twice in {', '.join(names)}")
        return [self._coefs[n] for n in names]

    def family_coefficients(self, detectors=None) -> list:
        """Quadratic forms of every parameter family (docs/physics.md section 11) for
        ``detectors``; formed on first use from the tables verified when the analysis was
        made, then kept."""
        from .stats.families import family_coefficients

        names = [c.detector for c in self.coefficients(detectors)]
        for n in names:
            if n not in self._fcoefs:
                fc = family_coefficients(self._tables[n], self.channels)
                if self.data is not None:       # the observed counts of the data file
                    import dataclasses

                    fc = dataclasses.replace(fc, D=np.array(self._coefs[n].D, dtype=float))
                self._fcoefs[n] = fc
        return [self._fcoefs[n] for n in names]

    def _cl(self, cl) -> float:
        return self.config.analysis.cl if cl is None else check_cl(cl)

    # -------------------------------------------------------------- limits

    def limits(self, param, cl=None, profile=(), fixed=None, detectors=None, xrange=None,
               points=None, *, level=None, progress=False, max_points=None,
               max_memory_gib=None, max_evaluations=None, method="wilks", toys=1000, seed=0,
               store=None, resume=False, backend=None, chunk=None):
        """Allowed set of ``param`` at ``cl`` (default the configured 0.90).

        ``profile`` names charges minimised over at each point (searched over
        their configured ranges); ``fixed`` sets other charges (default 0);
        ``detectors`` selects (and combines) detectors; ``xrange`` fixes the
        scan range (default: the configured one, widened while the allowed set
        touches an end); ``level`` sets the Delta chi2 threshold directly.

        ``method``: "wilks" (default: Delta chi2 below the chi2 quantile) or "fc"
        (Feldman-Cousins from ``toys`` toys per grid value with ``seed``, charges only,
        docs/statistics.md section 5; ``points`` grid values, default 201; ``store``
        and ``resume`` keep and reuse finished grid values; ``backend`` runs one task
        per grid value, e.g. on Dask; ``chunk`` toys per kernel call): an
        :class:`mcscan.scans.frequentist.FCLimit`.
        """
        if method not in ("wilks", "fc", "feldman-cousins"):
            raise InputError(f"unknown method {method!r}: expected wilks or fc")
        if method != "wilks":
            return self._fc_limits(param, cl, fixed, detectors, xrange, points, toys, seed,
                                   profile=profile, level=level, progress=progress, store=store,
                                   resume=resume, backend=backend, chunk=chunk)
        if store is not None or resume or backend is not None or chunk is not None:
            raise InputError("store, resume, backend and chunk are for method='fc' "
                             "(a Wilks limit is one scan in this process)")
        check_any_param(param)
        profile = (profile,) if isinstance(profile, str) else tuple(profile)
        for p in profile:
            check_any_param(p)
        if not _charges_only([param, *profile, *dict(fixed or {})]):
            return self._family_limits(param, cl, profile, fixed, detectors, xrange, points,
                                       level=level, progress=progress, max_points=max_points)
        return limit_1d(**self._limit_call(param, cl, profile, fixed, detectors, xrange, points,
                                           level=level, progress=progress, max_points=max_points,
                                           max_memory_gib=max_memory_gib,
                                           max_evaluations=max_evaluations))

    def _limit_call(self, param, cl, profile=(), fixed=None, detectors=None, xrange=None,
                    points=None, *, level=None, progress=False, max_points=None,
                    max_memory_gib=None, max_evaluations=None) -> dict:
        """The arguments of :func:`limit_1d` for a limit on charges (checked)."""
        cl = self._cl(cl)
        fixed = check_fixed(fixed)
        auto = xrange is None
        xr = self.config.analysis.ranges[param] if auto else _range(param, xrange)
        if points is None:
            points = self.config.numerics.scan_points if not profile else min(
                self.config.numerics.scan_points, 801)
        if max_points is not None:
            _budget.check_points(f"the limit of {param}", int(points), max_points)
        kw = dict(coefs=self.coefficients(detectors), param=param, cl=cl, xrange=xr, points=points,
                  fixed=fixed, settings=self.settings, extend=6 if auto else 0, progress=progress,
                  profile=profile, profile_ranges=self.config.analysis.ranges, level=level,
                  max_evaluations=max_evaluations, max_memory_gib=max_memory_gib)
        return kw

    def _fc_limits(self, param, cl, fixed, detectors, xrange, points, toys, seed, *, profile,
                   level, progress, store, resume, backend, chunk):
        from .scans.frequentist import feldman_cousins

        check_param(param)
        if profile or level is not None:
            raise InputError("a Feldman-Cousins interval takes no profiled parameter and no "
                             "Delta chi2 level (its critical values come from the toys)")
        fixed = check_fixed(fixed)
        xr = self.config.analysis.ranges[param] if xrange is None else _range(param, xrange)
        return feldman_cousins(self.coefficients(detectors), param, toys=_count(toys, "toys"),
                               seed=_seed(seed), cl=self._cl(cl), fixed=fixed,
                               settings=self.settings, xrange=xr,
                               points=201 if points is None else points, progress=progress,
                               store=store, resume=resume, backend=backend,
                               chunk=None if chunk is None else _count(chunk, "chunk"))

    # ------------------------------------------------------- data and toys

    def fit(self, params, fixed=None, ranges=None, detectors=None):
        """Best fit of one to three charges to the data (docs/statistics.md section 2):
        an :class:`mcscan.scans.frequentist.Fit` (best point, fitted pulls, chi2_min with
        its degrees of freedom and p-value, Delta chi2 = 1 uncertainties).  Without a
        ``data`` file the data are the Asimov counts of the SM."""
        from .scans.frequentist import fit

        params = [params] if isinstance(params, str) else list(params)
        for p in params:
            check_param(p)
        fixed = check_fixed(fixed)
        if ranges is None:
            rr = {p: tuple(self.config.analysis.ranges[p]) for p in params}
        else:
            rr = {p: _range(p, r) for p, r in dict(ranges).items()}
        return fit(self.coefficients(detectors), params, fixed=fixed, ranges=rr,
                   settings=self.settings)

    def asimov(self, out, fixed=None, detectors=None, *, force=False) -> Path:
        """Write the expected counts N(theta) + B at the charges ``fixed`` (others 0) as a
        data file (CSV ``detector,bin_low,bin_high,counts``); an existing file is refused
        unless ``force``.  Returns its path."""
        from .scans.frequentist import write_asimov

        fixed = check_fixed(fixed)
        return Path(write_asimov(out, self.coefficients(detectors), fixed, force=force))

    def bands(self, param, toys=1000, seed=0, cl=None, fixed=None, detectors=None, xrange=None,
              points=201, *, progress=False, backend=None, chunk=None):
        """Median and 68%/95% bands of the expected limits of ``param`` from ``toys`` toys
        under the SM (or ``fixed``) with ``seed`` (docs/statistics.md section 4): an
        :class:`mcscan.scans.frequentist.Bands`.  ``backend`` (a
        :mod:`mcscan.scans.backends` backend, default this process) runs the toys
        ``chunk`` at a time (default: 4096, or about four tasks per worker thread of a
        cluster); the numbers do not depend on either."""
        from .scans.frequentist import expected_bands

        check_param(param)
        fixed = check_fixed(fixed)
        xr = self.config.analysis.ranges[param] if xrange is None else _range(param, xrange)
        return expected_bands(self.coefficients(detectors), param, toys=_count(toys, "toys"),
                              seed=_seed(seed), cl=self._cl(cl), fixed=fixed,
                              settings=self.settings, xrange=xr, points=points, progress=progress,
                              backend=backend, chunk=None if chunk is None else _count(chunk, "chunk"))

    def _family_limits(self, param, cl, profile, fixed, detectors, xrange, points, *, level,
                       progress, max_points) -> Limit:
        """:meth:`limits` for parameters beyond the charges (docs/physics.md section 11)."""
        from .scans.families import family_limit, unconstrained_limit, unconstrained_reason

        cl = self._cl(cl)
        fixed = _check_any_fixed(fixed)
        for p in (param, *profile):
            if p in fixed:
                raise InputError(f"{p} is both {'scanned' if p == param else 'profiled'} and fixed")
        if param in profile:
            raise InputError(f"{param} is both scanned and profiled")
        auto = xrange is None
        xr = default_range(param, self.config) if auto else _range_any(param, xrange)
        if points is None:
            points = self.config.numerics.scan_points if not profile else min(
                self.config.numerics.scan_points, 801)
        if max_points is not None:
            _budget.check_points(f"the limit of {param}", int(points), max_points)
        fc = self.family_coefficients(detectors)
        reason = unconstrained_reason(fc, param)
        if reason:
            return unconstrained_limit(fc, param, cl=cl, level=level, xrange=xr, fixed=fixed,
                                       settings=self.settings, profile=profile, reason=reason)
        ranges = {p: default_range(p, self.config) for p in profile}
        return family_limit(fc, param, cl=cl, xrange=xr, points=points, fixed=fixed,
                            settings=self.settings, extend=6 if auto else 0, progress=progress,
                            profile=profile, profile_ranges=ranges, level=level)

    # -------------------------------------------------------------- region

    def region(self, params, cl=None, fixed=None, detectors=None, ranges=None, points=201, *,
               progress=False, max_points=None, max_memory_gib=None):
        """Allowed region of two charges at ``cl`` (2 d.o.f.): polygons, extent, area.

        Without ``ranges`` the scan starts from the configured ranges and
        zooms onto the region; with them it keeps them.
        """
        from .scans.regions import region_2d

        params = tuple([params] if isinstance(params, str) else params)
        for p in params:
            check_any_param(p)
        if len(params) != 2 or params[0] == params[1]:
            raise InputError(f"a region needs two different parameters, got {', '.join(params)}")
        if not _charges_only([*params, *dict(fixed or {})]):
            return self._family_region(params, cl, fixed, detectors, ranges, points,
                                       progress=progress, max_points=max_points)
        fixed = check_fixed(fixed)
        for p in params:
            if p in fixed:
                raise InputError(f"{p} is both scanned and fixed")
        auto = ranges is None
        if auto:
            rr = [self.config.analysis.ranges[p] for p in params]
        else:
            ranges = list(ranges)
            if len(ranges) != 2:
                raise InputError(f"{len(ranges)} ranges for two parameters: expected "
                                 "((lo0, hi0), (lo1, hi1))")
            rr = [_range(p, r) for p, r in zip(params, ranges)]
        return region_2d(
            self.coefficients(detectors), params, cl=self._cl(cl), ranges=rr, points=points,
            fixed=fixed, zoom=auto, settings=self.settings, progress=progress,
            max_points=max_points, max_memory_gib=max_memory_gib,
        )

    def _family_region(self, params, cl, fixed, detectors, ranges, points, *, progress, max_points):
        from .scans.families import family_region

        fixed = _check_any_fixed(fixed)
        for p in params:
            if p in fixed:
                raise InputError(f"{p} is both scanned and fixed")
        auto = ranges is None
        if auto:
            rr = [default_range(p, self.config) for p in params]
        else:
            ranges = list(ranges)
            if len(ranges) != 2:
                raise InputError(f"{len(ranges)} ranges for two parameters: expected "
                                 "((lo0, hi0), (lo1, hi1))")
            rr = [_range_any(p, r) for p, r in zip(params, ranges)]
        if isinstance(points, bool) or not float(points).is_integer():
            raise InputError(f"points = {points!r}: expected a whole number from 11 to 20001 per axis")
        _budget.check_points(f"the region of {params[0]} and {params[1]}", float(points) ** 2,
                             _budget.MAX_REGION_POINTS if max_points is None else max_points)
        return family_region(self.family_coefficients(detectors), params, cl=self._cl(cl),
                             ranges=rr, points=int(points), fixed=fixed, zoom=auto,
                             settings=self.settings, progress=progress)

    # ---------------------------------------------------------------- scan

    def scan(self, params, ranges=None, points=None, fixed=None, detectors=None, out=None,
             resume=False, projections=None, at=None, backend=None, chunk_points=None,
             force=False, *, progress=False, max_points=None, max_memory_gib=None,
             max_disk_gib=None):
        """Profiled chi2 on a grid of 1 to 6 parameters (the last varying fastest).

        The parameters are charges or, of any families mixed, any of
        :data:`mcscan.params.ALL_PARAMS` (docs/physics.md section 11; each in its
        unit): the same engine, chunks, files, resume and backends for both.
        ``ranges`` (default configured for charges, params.py's for the others) and
        ``points`` (one for all or one per parameter; default 2001 in 1D, 201 in 2D,
        51 in 3D, 21 in 4D-5D, 11 in 6D).  ``fixed`` sets parameters that are not
        scanned (default 0, sin2w the configured value).
        ``out``: stream to this results file (resumable with ``resume``; an
        existing file is refused unless ``force``); None keeps it in memory.
        ``projections``/``at``: profiled and fixed projections (default each
        scanned parameter alone, sliced at its Standard Model value).  ``backend``:
        a :mod:`mcscan.scans.backends` backend (default local).
        """
        from .scans import engine

        params = [params] if isinstance(params, str) else list(params)
        for p in params:
            check_any_param(p)
        charges = _charges_only([*params, *dict(fixed or {})])
        n = len(params)
        if not 1 <= n <= 6:
            raise InputError(f"{n} scanned parameters: a scan takes 1 to 6")
        if len(set(params)) != n:
            raise InputError(f"a parameter is scanned twice in {', '.join(params)}")
        fixed = check_fixed(fixed) if charges else _check_any_fixed(fixed)
        for p in params:
            if p in fixed:
                raise InputError(f"{p} is both scanned and fixed")
        rr, pts = self._grid_spec(params, ranges, points, lambda p: default_range(p, self.config),
                                  _range_any, 2_000_000_000)
        total = math.prod(pts)
        limit = _budget.MAX_SCAN_POINTS if max_points is None else max_points
        _budget.check_points("scan", float(total), limit)
        axes = [np.linspace(lo, hi, k) for (lo, hi), k in zip(rr, pts)]
        coefs = self.coefficients(detectors) if charges else self.family_coefficients(detectors)
        return engine.scan(coefs, params, axes, out, fixed=fixed, at=at, projections=projections,
                           settings=self.settings, backend=backend, resume=resume,
                           chunk_points=chunk_points, progress=progress, config=self.config,
                           force=force, max_points=max_points, max_memory_gib=max_memory_gib,
                           max_disk_gib=max_disk_gib)

    def _grid_spec(self, params, ranges, points, default_range, check_range, max_axis: int):
        """Checked (lo, hi) and point count of every scanned parameter of :meth:`scan`:
        ``ranges`` None (``default_range(p)``), one (lo, hi) for a single parameter or one
        per parameter; ``points`` None (the configured default), one count or one each."""
        n = len(params)
        if ranges is None:
            rr = [default_range(p) for p in params]
        else:
            ranges = list(ranges)
            if n == 1 and len(ranges) == 2 and not hasattr(ranges[0], "__len__"):
                ranges = [ranges]
            if len(ranges) != n:
                raise InputError(f"{n} scanned parameter(s) but {len(ranges)} ranges: "
                                 "give one (lo, hi) per parameter")
            rr = [check_range(p, r) for p, r in zip(params, ranges)]
        default = self.config.numerics.scan_points if n == 1 else _ND_POINTS[n]
        pts = [default] if points is None else (
            [points] if isinstance(points, (int, np.integer)) else list(points))
        if len(pts) == 1:
            pts = pts * n
        if len(pts) != n:
            raise InputError(f"{n} scanned parameter(s) but {len(pts)} point counts: "
                             "give one for all or one per parameter")
        pts = [int(k) for k in pts]
        for p, k in zip(params, pts):
            if not 2 <= k <= max_axis:
                raise InputError(f"{k} points for {p}: expected 2 to {max_axis}")
        return rr, pts

    # -------------------------------------------------------- sensitivities

    def sensitivities(self, cl=None, combined=True, *, params=None, family="charges",
                      progress=False):
        """Every detector's (and, if ``combined``, their combination's) allowed
        set of each charge the source can see, at ``cl``.

        ``family``: "charges" (default: the millicharge table, a :class:`Sensitivities`),
        "radii", "moments", "sin2w", "nsi" or "all" (a :class:`FamilySensitivities`:
        parameters acting only on flavours the source does not emit are listed as
        unconstrained)."""
        if family != "charges":
            return self._family_sensitivities(family, cl, combined, progress=progress)
        cl = self._cl(cl)
        params = VISIBLE_PARAMS if params is None else tuple(params)
        rows = [[n] for n in self.detectors]
        if combined and len(self.detectors) > 1:
            rows.append(list(self.detectors))
        todo = [(r, p) for r in rows for p in params]
        # all limits at once: their refinements share vectorised evaluations
        calls = [self._limit_call(p, cl, detectors=r) for r, p in todo]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(calls), desc="sensitivities")
        try:
            found = limits_1d(calls, done=None if bar is None else (lambda i, lim: bar.update()))
        finally:
            if bar is not None:
                bar.close()
        out = {(r[0] if len(r) == 1 else "combined", p): lim for (r, p), lim in zip(todo, found)}
        labels = tuple(r[0] if len(r) == 1 else "combined" for r in rows)
        return Sensitivities(float(cl), tuple(self.channels), labels, tuple(params), out,
                             inputs=self._sensitivities_inputs(cl, params, combined))

    def stored_sensitivities(self, path, cl=None, combined=True, *, params=None):
        """The millicharge table saved in the results file ``path``, if it was computed
        from exactly what :meth:`sensitivities` would use now (the same configuration,
        tables, counts, settings, C.L., charges and package code); else None.

        A rerun of the main job with nothing changed prints this table instead of
        computing it again.  An unreadable, edited or foreign file gives None too."""
        from .errors import McscanError
        from .results import open_results

        cl = self._cl(cl)
        params = VISIBLE_PARAMS if params is None else tuple(params)
        want = self._sensitivities_inputs(cl, params, combined)
        try:
            old = open_results(path)
        except (McscanError, OSError):
            return None
        if not isinstance(old, Sensitivities) or old.inputs != want:
            return None
        return old

    def _sensitivities_inputs(self, cl, params, combined) -> str:
        """SHA-256 of what a sensitivity table depends on."""
        coefs = self.coefficients()
        what = {
            "kind": "sensitivities", "cl": float(cl), "params": list(params),
            "combined": bool(combined), "channels": list(self.channels),
            "detectors": list(self.detectors), "config": self.config.to_dict(),
            "table_hashes": [c.table_hash for c in coefs],
            "counts_sha256": [hashlib.sha256(np.ascontiguousarray(c.D, dtype=float).tobytes())
                              .hexdigest() for c in coefs],
            "settings": [self.settings.signal_pull, self.settings.background_pull,
                         self.settings.tol, self.settings.max_iter],
            "mcscan": [__version__, _code_sha256()],
        }
        return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


    def _family_sensitivities(self, family, cl, combined, *, progress) -> FamilySensitivities:
        from .params import FAMILY_NAMES, acts_on, family_params, visible_params
        from .scans.families import emitted_flavours, family_limit

        choices = FAMILY_NAMES + ("all",)
        if family not in choices:
            raise InputError(f"unknown family {family!r}: expected one of {', '.join(choices)}")
        cl = self._cl(cl)
        rows = [[n] for n in self.detectors]
        if combined and len(self.detectors) > 1:
            rows.append(list(self.detectors))
        labels = tuple(r[0] if len(r) == 1 else "combined" for r in rows)
        emitted = emitted_flavours()
        out, params, unconstrained, reasons = {}, [], [], {}
        for fam in (FAMILY_NAMES if family == "all" else (family,)):
            visible = visible_params(emitted, fam)
            for p in family_params(fam):
                if p not in visible:
                    unconstrained.append(p)
                    reasons[p] = (f"acts on nu_{'/nu_'.join(sorted(acts_on(p)))} only; the source "
                                  f"emits {', '.join('nu_' + f for f in emitted)}")
            if fam == "charges":
                sens = self.sensitivities(cl=cl, combined=combined, progress=progress)
                out.update(sens.limits)
                params.extend(sens.params)
                continue
            todo = [(r, p) for r in rows for p in visible]
            if progress:
                from tqdm.auto import tqdm

                todo = tqdm(todo, desc=f"sensitivities {fam}")
            for r, p in todo:
                label = r[0] if len(r) == 1 else "combined"
                out[(label, p)] = family_limit(self.family_coefficients(r), p, cl=cl,
                                               points=self.config.numerics.scan_points,
                                               settings=self.settings)
            params.extend(visible)
        params.extend(unconstrained)
        return FamilySensitivities(float(cl), family, tuple(self.channels), labels, tuple(params),
                                   out, tuple(unconstrained), reasons)


def _family_xsec_type():
    from dataclasses import dataclass

    from .physics.spectra import XsecView

    @dataclass(frozen=True)
    class FamilyXsecView(XsecView):
        """An :class:`mcscan.physics.spectra.XsecView` whose ``charges`` are parameters of
        any family (``charges`` maps each to its value in its own unit)."""

        def to_json(self) -> dict:
            d = XsecView.to_json(self)
            d["units"]["charges"] = {p: SPEC[p].unit for p in self.charges}
            d["params"] = dict(self.charges)
            return d

    return FamilyXsecView


#: Default points per axis of a scan, by dimension (1D: numerics.scan_points).
_ND_POINTS = {2: 201, 3: 51, 4: 21, 5: 21, 6: 11}


# ---------------------------------------------------- one-off functions

def limits(config, detectors, param, *, tables_dir=DEFAULT_TABLES, cl=None,
           channels=("nuclear",), xrange=None, points=None, fixed=None, profile=(),
           level=None, progress=False) -> Limit:
    """Allowed set of ``param`` for the (combined) detectors, tables read (not built) from
    ``tables_dir``.  Same as ``Analysis(config, detectors, channels, tables_dir,
    build=False).limits(...)``."""
    check_any_param(param)
    a = Analysis(config, detectors, channels, tables_dir, build=False)
    return a.limits(param, cl=cl, profile=profile, fixed=fixed, xrange=xrange, points=points,
                    level=level, progress=progress)


def region(config, detectors, params, *, tables_dir=DEFAULT_TABLES, cl=None,
           channels=("nuclear",), ranges=None, points=201, fixed=None, progress=False):
    """Allowed region of two charges (closed polygons, extent, area); tables read, not built."""
    for p in params:
        check_any_param(p)
    a = Analysis(config, detectors, channels, tables_dir, build=False)
    return a.region(params, cl=cl, fixed=fixed, ranges=ranges, points=points, progress=progress)


def sensitivities(config, *, tables_dir=DEFAULT_TABLES, cl=None, channels=("nuclear",),
                  detectors=None, combined=True, progress=False, log=None, family="charges"):
    """The main job: build missing tables, then every detector's 1D limits (of the
    charges, or of the parameter ``family``, see :meth:`Analysis.sensitivities`)."""
    a = Analysis(config, detectors, channels, tables_dir, progress=progress, log=log)
    return a.sensitivities(cl=cl, combined=combined, family=family, progress=progress)


def sweep(config_path, varies, params, *, detectors=None, tables=DEFAULT_TABLES, cl=None,
          channels=("nuclear",), backend=None, out=None, force=False, progress=False, log=None):
    """Limits over a grid of configurations (see :mod:`mcscan.scans.sweep`).

    ``varies``: "KEY=lo:hi:n" or "KEY=a,b,c" strings; each distinct
    configuration's tables are built once under ``<tables>/sweep/``.
    Returns (SweepResult, path of the results file or None without ``out``).
    """
    from .scans.sweep import plan_sweep, run_sweep

    if out is not None:
        from .io.paths import check_output

        check_output(out, force=force)
    plan = plan_sweep(config_path, varies, params, detectors=detectors, tables_dir=tables, cl=cl,
                      channels=parse_channels(channels))
    res = run_sweep(plan, backend=backend, progress=progress, log=log)
    return res, (res.save(out, config=plan.base_config, force=force) if out is not None else None)


def xsec(config, target, enu_mev, flavour, *, antineutrino=False, charges=None, channel="nuclear",
         tmin_kev=None, tmax_kev=None, points=200, radius_fm=None):
    """dsigma/dT of ``target`` (a detector or an element) for one neutrino energy, SM and
    with ``charges`` {param: e}: an :class:`mcscan.physics.spectra.XsecView`."""
    from .physics.spectra import xsec_view

    config = _config(config)
    charges = dict(charges or {})
    others = {k: v for k, v in charges.items() if k not in PARAMS}
    view = xsec_view(config, target, enu_mev, flavour, antineutrino=antineutrino,
                     charges={k: v for k, v in charges.items() if k in PARAMS} if others else charges,
                     channel=channel, tmin_kev=tmin_kev, tmax_kev=tmax_kev, points=points,
                     radius_fm=radius_fm)
    if not others:
        return view
    return _family_xsec(config, view, charges, radius_fm)


def _family_xsec(config, view, values, radius_fm):
    """The view of :func:`xsec` with parameters of any family (docs/physics.md section 11):
    both curves from the full-parameter cross sections of :mod:`mcscan.physics.families`."""
    from .physics import atomic
    from .physics.families import cevns_dsigma_all, eves_dsigma_all
    from .physics.nuclei import nuclides
    from .physics.spectra import target_composition

    values = _check_any_fixed(values)
    kev = 1e-3
    phys = config.physics
    sm_point = {"sin2w": float(phys.sin2_theta_w)}
    point = dict(sm_point, **values)
    T = np.asarray(view.T_kev, dtype=float)
    if radius_fm is not None:
        comp, radii = {view.target: 1}, {view.target: float(radius_fm)}
    else:
        comp, radii = target_composition(config, view.target)
    if view.channel == "nuclear":
        nucs = nuclides(comp, radii)

        def total(v):
            return sum(n.per_unit * cevns_dsigma_all(view.enu_mev, T * kev, n, view.flavour, v,
                                                     phys.helm_skin_fm) for n in nucs)
    else:
        z = atomic.z_eff(T * kev, comp)

        def total(v):
            return eves_dsigma_all(view.enu_mev, T * kev, view.flavour, view.antineutrino, v,
                                   z_eff=z)
    return _family_xsec_view_type()(view.target, view.channel, view.enu_mev, view.flavour, view.antineutrino,
                          values, T, total(sm_point) * kev, total(point) * kev, view.t_end_kev)


_FAMILY_XSEC = []


def _family_xsec_view_type():
    """The :class:`FamilyXsecView` type, built on first use (keeps ``import mcscan.api`` light)."""
    if not _FAMILY_XSEC:
        _FAMILY_XSEC.append(_family_xsec_type())
    return _FAMILY_XSEC[0]


def __getattr__(name):
    if name == "FamilyXsecView":
        return _family_xsec_view_type()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
