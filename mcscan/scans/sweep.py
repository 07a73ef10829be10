"""Configuration sweeps: limits as a function of detector and source settings.

A sweep varies one or more configuration values (``--vary KEY=lo:hi:n`` for
``numpy.linspace(lo, hi, n)``, or ``KEY=a,b,c``) over their Cartesian
product.  For every configuration it

1. builds the response tables of the chosen detectors once, into
   ``<tables>/sweep/<hash12>/`` where ``hash12`` is the first 12 hex digits of
   the table's configuration hash (:func:`mcscan.config.load.config_hash` of
   :func:`mcscan.config.load.table_config`; for several detectors, of their hashes):
   configurations that only differ in the analysis share tables, and a
   repeated sweep reuses them (:func:`mcscan.api.build_tables` keeps an
   up-to-date table);
2. computes the limit of each ``--param`` with :func:`mcscan.api.limits`
   (the detectors combined, as ``mcscan limits``).

Both stages run as independent tasks on a backend (:mod:`mcscan.scans.backends`).

Keys are dotted paths of the configuration as written in TOML
(``detectors.Ge.threshold_kev``, ``detectors.Ge.bins.start_kev``,
``source.years``, ``analysis.signal_pull``, ``numerics.gauss_order`` ...) or
short aliases:

* ``detector.NAME.threshold`` / ``mass`` / ``background`` / ``qf`` ->
  ``detectors.NAME.threshold_kev`` / ``mass_kg`` / ``background_ckkd`` /
  ``quenching_factor`` (``detector.NAME.KEY`` also takes every real key);
* ``threshold``, ``mass``, ``background``, ``sigma0`` without a detector: the
  one detector of the sweep;
* ``years``, ``distance``, ``pot`` -> ``source.years``, ``source.distance_m``,
  ``source.pot_per_year``; ``signal_pull``, ``background_pull`` -> ``analysis.*``.

**Thresholds move the bins.** A configuration may not have bins below its
threshold.  When a threshold is varied and, in the base configuration, the
first bin edge sits at the threshold, the first edge follows it: for
``bins = {start_kev, width_kev, count}`` the start moves (width and count
stay, so the window shifts); for explicit ``edges_kev`` the first edge is
replaced by the threshold and edges at or below it are dropped.  Giving a
bins key in ``--vary`` as well turns this off.  When the bins start above the
threshold, they stay, and a threshold above the first edge is refused.
"""
from __future__ import annotations

import difflib
import itertools
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..io.registry import register
from ..results import Result

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ALIASES", "MAX_CONFIGURATIONS", "Sweep", "SweepResult", "Vary", "parse_vary",
           "plan_sweep", "run_sweep"]

#: Most configurations one sweep may hold.
MAX_CONFIGURATIONS = 10_000

#: Short keys for values outside the detectors.
ALIASES = {"years": "source.years", "distance": "source.distance_m", "pot": "source.pot_per_year",
           "signal_pull": "analysis.signal_pull", "background_pull": "analysis.background_pull"}
#: Short names of detector keys (after ``detector.NAME.``, or alone with one detector).
_DET_ALIASES = {"threshold": "threshold_kev", "mass": "mass_kg", "background": "background_ckkd",
                "qf": "quenching_factor", "sigma0": "sigma0"}
_UNITS = (("_kev", "keVnr"), ("_kg", "kg"), ("_m", "m"), ("_fm", "fm"), ("_ckkd", "1/(keV kg day)"),
          ("years", "yr"), ("pot_per_year", "1/yr"), ("beam_hours_per_year", "h/yr"))


@register
@dataclass(frozen=True)
class Vary:
    """One varied key: as given (``label``), its dotted configuration path, its values."""

    label: str
    key: str
    values: tuple

    @property
    def unit(self) -> str:
        for suffix, unit in _UNITS:
            if self.key.endswith(suffix):
                return unit
        return ""


def _leaves(d, prefix=""):
    """Dotted paths of the numeric leaves of a nested dict."""
    for k, v in d.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _leaves(v, path + ".")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield path


def valid_keys(config) -> list:
    """Every dotted path a sweep may vary in ``config``."""
    d = config.to_dict()
    d["analysis"].pop("ranges")
    for det in d["detectors"].values():
        det.pop("composition")
        det["bins"] = {"start_kev": 0.0, "width_kev": 0.0, "count": 0}
    return list(_leaves(d))


def canonical_key(key: str, config, detectors=()) -> str:
    """The dotted configuration path of a --vary key (see the module docstring)."""
    valid = valid_keys(config)
    if key in valid:
        return key
    parts = key.split(".")
    if len(parts) >= 3 and parts[0] in ("detector", "detectors"):
        config.detector(parts[1])
        rest = ".".join(parts[2:])
        path = f"detectors.{parts[1]}.{_DET_ALIASES.get(rest, rest)}"
        if path in valid:
            return path
    elif len(parts) == 1 and key in ALIASES:
        return ALIASES[key]
    elif len(parts) == 1 and (key in _DET_ALIASES or f"detectors.{_first(config)}.{key}" in valid):
        dets = list(detectors)
        if len(dets) != 1:
            raise InputError(f"--vary {key}: which detector? give detector.NAME.{key} "
                             f"(NAME one of {', '.join(config.detectors)})")
        path = f"detectors.{dets[0]}.{_DET_ALIASES.get(key, key)}"
        if path in valid:
            return path
    names = valid + list(ALIASES) + [f"detector.NAME.{a}" for a in _DET_ALIASES]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise InputError(f"unknown --vary key {key!r}: expected a dotted configuration path such as "
                     f"detectors.Ge.threshold_kev or source.years, or an alias (years, mass, "
                     f"detector.NAME.threshold, ...){hint}")


def _first(config) -> str:
    return next(iter(config.detectors))


def _number(text, what) -> float:
    try:
        v = float(text)
    except ValueError:
        raise InputError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(v):
        raise InputError(f"{what}: {text!r} is not finite")
    return v


def parse_vary(text: str, config, detectors=()) -> Vary:
    """``KEY=lo:hi:n`` (``n`` values from lo to hi, ends included, rounded to 12
    significant digits) or ``KEY=a,b,c``."""
    if "=" not in text:
        raise InputError(f"--vary {text!r}: expected KEY=lo:hi:n or KEY=a,b,c, "
                         "e.g. detector.Ge.threshold=0.3:1.0:8")
    label, spec = (s.strip() for s in text.split("=", 1))
    key = canonical_key(label, config, detectors)
    what = f"--vary {label}"
    if ":" in spec:
        bits = spec.split(":")
        if len(bits) != 3:
            raise InputError(f"{what}={spec}: expected lo:hi:n")
        lo, hi = _number(bits[0], what), _number(bits[1], what)
        try:
            n = int(bits[2])
        except ValueError:
            raise InputError(f"{what}={spec}: n = {bits[2]!r} is not a whole number") from None
        if not 2 <= n <= MAX_CONFIGURATIONS:
            raise InputError(f"{what}={spec}: n = {n}: expected 2 to {MAX_CONFIGURATIONS}")
        if not lo < hi:
            raise InputError(f"{what}={spec}: expected lo < hi")
        # 12 significant digits: 0.3:0.9:3 gives 0.6 as typed, not 0.6000000000000001
        # (the value enters the configuration hash)
        values = tuple(float(f"{v:.12g}") for v in np.linspace(lo, hi, n))
    else:
        values = tuple(_number(s.strip(), what) for s in spec.split(",") if s.strip())
        if not values:
            raise InputError(f"{what}=: expected at least one value")
    if len(set(values)) != len(values):
        raise InputError(f"{what}: a value is given twice")
    return Vary(label, key, values)


def _binning(config_path, detector) -> str:
    """'bins' or 'edges': how ``detector``'s bins are written (user file over built-in)."""
    from ..config.load import builtin_raw

    for raw in ((tomllib.loads(Path(config_path).read_text()) if config_path else {}), builtin_raw()):
        d = raw.get("detectors", {}).get(detector, {})
        if "edges_kev" in d:
            return "edges"
        if "bins" in d:
            return "bins"
    return "edges"


def _set(d: dict, path: str, value) -> None:
    parts = path.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


@register
@dataclass(frozen=True)
class SweepPoint:
    """One configuration of a sweep: the varied values, the resolved configuration and
    where its tables live."""

    values: tuple
    overrides: dict
    config: object
    table_dir: str
    table_key: str


@register
@dataclass(frozen=True)
class Sweep:
    """A planned sweep: every configuration resolved and checked, nothing computed."""

    varies: tuple
    detectors: tuple
    params: tuple
    cl: float
    channels: tuple
    points: tuple
    base_config: object = field(repr=False)

    @property
    def table_dirs(self) -> list:
        """Distinct table folders, in first-use order."""
        return list(dict.fromkeys(p.table_dir for p in self.points))


def plan_sweep(config_path, varies, params, *, detectors=None, tables_dir="tables", cl=None,
               channels=("nuclear",)) -> Sweep:
    """Resolve every configuration of a sweep (raises on the first invalid one).

    Parameters
    ----------
    config_path : user TOML file of the base configuration, or None (built-in)
    varies : ``--vary`` strings or :class:`Vary` objects
    params : charges whose limits are computed
    detectors : detectors combined in the limits; default those the --vary keys name
    """
    from ..config.load import config_hash, load_config, table_config
    from .grid import check_param

    base = load_config(config_path)
    params = tuple(params)
    if not params:
        raise InputError("a sweep needs at least one --param")
    for p in params:
        check_param(p)
    if len(set(params)) != len(params):
        raise InputError("--param given twice")
    dets = tuple(detectors or ())
    for d in dets:
        base.detector(d)
    if len(set(dets)) != len(dets):
        raise InputError(f"detector named twice in {list(dets)}")
    varies = tuple(v if isinstance(v, Vary) else parse_vary(v, base, dets) for v in varies)
    if not varies:
        raise InputError("a sweep needs at least one --vary KEY=VALUES")
    keys = [v.key for v in varies]
    for k in keys:
        if keys.count(k) > 1:
            raise InputError(f"--vary: {k} is given twice")
    named = list(dict.fromkeys(k.split(".")[1] for k in keys if k.startswith("detectors.")))
    if not dets:
        if not named:
            raise InputError("which detectors? the --vary keys name none: give --detector NAME")
        dets = tuple(named)
    for d in named:
        if d not in dets:
            raise InputError(f"--vary changes detector {d}, but the limits use "
                             f"{', '.join(dets)}: add --detector {d}")
    for d in dets:
        for ch in channels:
            if ch not in base.detector(d).channels:
                raise InputError(f"detector {d} does not enable the {ch!r} channel")
    n = math.prod(len(v.values) for v in varies)
    if n > MAX_CONFIGURATIONS:
        raise InputError(f"{n} configurations: at most {MAX_CONFIGURATIONS} per sweep")
    # a varied threshold drags the first bin edge along when the bins start at it
    moves = {}
    for k in keys:
        parts = k.split(".")
        if parts[0] == "detectors" and parts[2] == "threshold_kev":
            d = base.detector(parts[1])
            explicit = any(kk.startswith(f"detectors.{parts[1]}.bins.") for kk in keys)
            if not explicit and abs(d.edges_kev[0] - d.threshold_kev) <= 1e-12 * d.threshold_kev:
                moves[k] = (parts[1], _binning(config_path, parts[1]), d.edges_kev)
    points = []
    for combo in itertools.product(*(v.values for v in varies)):
        over = {}
        for v, x in zip(varies, combo):
            parts = v.key.split(".")
            if parts[0] == "detectors" and parts[2] == "rms_radius_fm":
                radii = dict(base.detector(parts[1]).rms_radius_fm)
                radii[parts[3]] = x
                _set(over, ".".join(parts[:3]), radii)
            else:
                _set(over, v.key, x)
            if v.key in moves:
                name, how, edges = moves[v.key]
                if how == "bins":
                    _set(over, f"detectors.{name}.bins.start_kev", x)
                else:
                    _set(over, f"detectors.{name}.edges_kev",
                         [x] + [e for e in edges[1:] if e > x * (1 + 1e-12)])
        label = ", ".join(f"{v.label}={x:g}" for v, x in zip(varies, combo))
        try:
            cfg = load_config(config_path, over)
        except ConfigError as exc:
            raise ConfigError(f"sweep configuration {label}: {exc}") from None
        hashes = [config_hash(table_config(cfg, d)) for d in dets]
        key = hashes[0] if len(hashes) == 1 else config_hash(dict(zip(dets, hashes)))
        # absolute: workers of a cluster resolve paths from their own folder
        points.append(SweepPoint(tuple(combo), over, cfg,
                                 str((Path(tables_dir) / "sweep" / key[:12]).resolve()), key))
    return Sweep(varies, dets, params, float(base.analysis.cl if cl is None else cl),
                 tuple(channels), tuple(points), base)


# -------------------------------------------------------------------- tasks

def _build_task(i: int, jobs) -> dict:
    """Build (or keep, if whole and current) the tables of job ``i``: (configuration,
    detectors, folder); returns {detector: "built" | "up to date"}."""
    from ..config.load import config_hash, table_config
    from ..errors import TableError
    from ..io.tables import load_table, save_table, table_path
    from ..tables.build import build_table

    cfg, dets, folder = jobs[i]
    out = {}
    for d in dets:
        path = table_path(folder, d)
        want = config_hash(table_config(cfg, d))
        try:
            load_table(path, expected_hash=want, channels=cfg.detector(d).channels)
            out[d] = "up to date"
        except TableError:
            save_table(build_table(cfg, d), path)
            out[d] = "built"
    return out


def _limit_task(j: int, jobs) -> dict:
    """Limit of job ``j``: (configuration, detectors, folder, param, cl, channels), computed
    as a limit of the detectors combined with the configured range, points and settings."""
    from ..config.load import config_hash, table_config
    from ..io.tables import load_table, table_path
    from ..stats.reference import coefficients
    from .grid import ScanSettings
    from .limits import limit_1d

    cfg, dets, folder, param, cl, channels = jobs[j]
    coefs = [coefficients(load_table(table_path(folder, d), expected_hash=config_hash(table_config(cfg, d)),
                                     channels=channels), channels) for d in dets]
    lim = limit_1d(coefs, param, cl=cl, xrange=cfg.analysis.ranges[param],
                   points=cfg.numerics.scan_points, settings=ScanSettings.from_config(cfg), extend=6,
                   profile_ranges=cfg.analysis.ranges)
    d = lim.to_json()
    return {k: d[k] for k in ("regions", "open_low", "open_high", "chi2_min", "delta_chi2",
                              "table_hashes")}


@dataclass(frozen=True)
class SweepResult(Result):
    """Limits of every configuration of a sweep (kind ``sweep``; save it with ``.save(path)``,
    layout in docs/results.md).

    ``limits[(i, param)]``: {"regions": [[lo, hi], ...] (e), "open_low", "open_high",
    "chi2_min", "delta_chi2", "table_hashes"} of configuration ``sweep.points[i]``.
    """

    kind = "sweep"

    sweep: Sweep
    limits: dict
    built: dict                  # table folder -> {detector: "built" | "up to date"}
    wall_time_s: float
    backend: dict

    def rows(self, param):
        """(varied values, lower end, upper end, limit dict) per configuration."""
        for i, pt in enumerate(self.sweep.points):
            lim = self.limits[(i, param)]
            regs = lim["regions"]
            lo = min(r[0] for r in regs) if regs else float("nan")
            hi = max(r[1] for r in regs) if regs else float("nan")
            yield pt.values, lo, hi, lim

    def to_json(self) -> dict:
        sw = self.sweep
        return {
            "vary": [{"label": v.label, "key": v.key, "unit": v.unit, "values": list(v.values)}
                     for v in sw.varies],
            "detectors": list(sw.detectors), "params": list(sw.params), "cl": sw.cl,
            "channels": list(sw.channels), "unit": "e", "wall_time_s": self.wall_time_s,
            "backend": self.backend,
            "configurations": [
                {"values": dict(zip((v.key for v in sw.varies), pt.values)),
                 "table_dir": pt.table_dir,
                 "limits": {p: self.limits[(i, p)] for p in sw.params}}
                for i, pt in enumerate(sw.points)],
        }


def run_sweep(sweep: Sweep, *, backend=None, progress=False, log=None) -> SweepResult:
    """Build every distinct table set once, then every limit, on ``backend`` (default local)."""
    import time

    from .backends import LocalBackend

    t0 = time.perf_counter()
    backend = backend or LocalBackend()
    folders = sweep.table_dirs
    first = {}
    for pt in sweep.points:
        first.setdefault(pt.table_dir, pt.config)
    jobs = tuple((first[f], sweep.detectors, f) for f in folders)
    built = {}
    for i, status in backend.map(_build_task, range(len(jobs)), args=(jobs,), progress=progress,
                                 desc="sweep tables", unit="set"):
        built[folders[i]] = status
        if log:
            log(f"{folders[i]}: " + ", ".join(f"{d} {s}" for d, s in status.items()))
    todo = [(i, p) for i in range(len(sweep.points)) for p in sweep.params]
    ljobs = tuple((sweep.points[i].config, sweep.detectors, sweep.points[i].table_dir, p, sweep.cl,
                   sweep.channels) for i, p in todo)
    limits = {}
    for j, res in backend.map(_limit_task, range(len(ljobs)), args=(ljobs,), progress=progress,
                              desc="sweep limits", unit="limit"):
        limits[todo[j]] = res
    return SweepResult(sweep, limits, built, time.perf_counter() - t0, backend.describe())
