"""Configuration: the built-in ESS reference and user TOML overrides.

The built-in configuration (``mcscan/config/ess.toml``) is docs/physics.md's
reference setup.  A user TOML file overrides any value of it, section by
section; a detector that is not built in must give every detector key.
Every value is checked on load: an unknown key, a wrong type or a value out
of range raises :class:`ConfigError` with one line naming the key, the value
and what was expected.

Units are in the key names: ``_kev`` (keV, nuclear-recoil scale),
``_kg``, ``_m``, ``_fm``; ``background_ckkd`` is counts / (keV kg day).
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import ConfigError

__all__ = [
    "CHANNELS",
    "PARAMS",
    "Analysis",
    "Config",
    "Detector",
    "Numerics",
    "Physics",
    "Source",
    "load_config",
    "table_config",
    "config_hash",
]

#: The six charges, in the order used by every array of charges.
from ..params import PARAMS  # noqa: E402  (re-exported for configuration keys)
#: Detection channels a detector may enable.
CHANNELS = ("nuclear", "electron")
#: Table schema version; bump on any change of what a table holds.
SCHEMA_VERSION = 3


@dataclass(frozen=True)
class Source:
    """Pion-decay-at-rest source and exposure."""

    name: str
    pot_per_year: float
    nu_per_flavour_per_pot: float
    distance_m: float
    years: float
    beam_hours_per_year: float
    duty_factor: float


@dataclass(frozen=True)
class Physics:
    """Coupling and nuclear-structure conventions."""

    sin2_theta_w: float
    helm_skin_fm: float


@dataclass(frozen=True)
class Analysis:
    """Statistical treatment: pull widths, default C.L. and scan ranges (e)."""

    signal_pull: float
    background_pull: float
    cl: float
    ranges: Mapping[str, tuple[float, float]]


@dataclass(frozen=True)
class Numerics:
    """Integration grid and profile-fit settings."""

    grid_step_sigma: float
    gauss_order: int
    n_sigma: float
    newton_tol: float
    newton_max_iter: int
    scan_points: int


@dataclass(frozen=True)
class Detector:
    """One detector: target composition, response, background and bins."""

    name: str
    composition: Mapping[str, int]
    rms_radius_fm: Mapping[str, float]
    mass_kg: float
    threshold_kev: float
    sigma0: float
    background_ckkd: float
    edges_kev: tuple[float, ...]
    channels: tuple[str, ...]
    efficiency: Mapping[str, float]
    quenching_factor: float


@dataclass(frozen=True)
class Config:
    """A fully resolved and validated configuration."""

    source: Source
    physics: Physics
    analysis: Analysis
    numerics: Numerics
    detectors: Mapping[str, Detector] = field(default_factory=dict)

    def detector(self, name: str) -> Detector:
        """Return detector ``name`` or raise a ConfigError naming the choices."""
        if name not in self.detectors:
            raise ConfigError(
                f"unknown detector {name!r}: expected one of {', '.join(self.detectors)}"
                + _suggest(name, self.detectors)
            )
        return self.detectors[name]

    def to_dict(self) -> dict:
        """Plain, JSON-serialisable form of the whole configuration."""
        d = asdict(self)
        for det in d["detectors"].values():
            det["edges_kev"] = list(det["edges_kev"])
            det["channels"] = list(det["channels"])
        d["analysis"]["ranges"] = {k: list(v) for k, v in d["analysis"]["ranges"].items()}
        return d


# ---------------------------------------------------------------- validation

def _suggest(name: str, choices) -> str:
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _num(where: str, v: Any, *, lo=None, hi=None, lo_open=False, integer=False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{where} = {v!r}: expected a number")
    if integer and not (isinstance(v, int) or float(v).is_integer()):
        raise ConfigError(f"{where} = {v!r}: expected a whole number")
    x = float(v)
    if not math.isfinite(x):
        raise ConfigError(f"{where} = {v!r}: expected a finite number")
    if lo is not None and (x < lo or (lo_open and x == lo)):
        rel = ">" if lo_open else ">="
        raise ConfigError(f"{where} = {v!r}: expected a value {rel} {lo:g}")
    if hi is not None and x > hi:
        raise ConfigError(f"{where} = {v!r}: expected a value <= {hi:g}")
    return int(x) if integer else x


def _pos(where, v):
    return _num(where, v, lo=0.0, lo_open=True)


def _check_keys(where: str, got: Mapping, allowed, required=()) -> None:
    if not isinstance(got, Mapping):
        raise ConfigError(f"{where}: expected a table, got {got!r}")
    for k in got:
        if k not in allowed:
            raise ConfigError(
                f"unknown key {where + '.' if where else ''}{k}: expected one of "
                f"{', '.join(allowed)}" + _suggest(k, allowed)
            )
    for k in required:
        if k not in got:
            raise ConfigError(f"{where}: missing key {k!r}")


_SOURCE = {
    "name": lambda w, v: v if isinstance(v, str) and v else _bad(w, v, "a non-empty string"),
    "pot_per_year": _pos,
    "nu_per_flavour_per_pot": _pos,
    "distance_m": _pos,
    "years": _pos,
    "beam_hours_per_year": lambda w, v: _num(w, v, lo=0.0, lo_open=True, hi=8784.0),
    "duty_factor": lambda w, v: _num(w, v, lo=0.0, lo_open=True, hi=1.0),
}
_PHYSICS = {
    "sin2_theta_w": lambda w, v: _num(w, v, lo=0.0, lo_open=True, hi=1.0),
    "helm_skin_fm": _pos,
}
_NUMERICS = {
    "grid_step_sigma": lambda w, v: _num(w, v, lo=0.0, lo_open=True, hi=2.0),
    "gauss_order": lambda w, v: _num(w, v, lo=2, hi=20, integer=True),
    "n_sigma": lambda w, v: _num(w, v, lo=4.0, hi=40.0),
    "newton_tol": lambda w, v: _num(w, v, lo=0.0, lo_open=True, hi=1e-4),
    "newton_max_iter": lambda w, v: _num(w, v, lo=5, hi=10000, integer=True),
    "scan_points": lambda w, v: _num(w, v, lo=3, hi=10_000_001, integer=True),
}
_ANALYSIS = {
    "signal_pull": _pos,
    "background_pull": _pos,
    "cl": lambda w, v: _num(w, v, lo=0.0, lo_open=True, hi=1.0 - 1e-15),
    "ranges": None,  # checked separately
}
_DETECTOR_KEYS = (
    "composition", "rms_radius_fm", "mass_kg", "threshold_kev", "sigma0",
    "background_ckkd", "bins", "edges_kev", "channels", "efficiency",
    "quenching_factor",
)


def _bad(where, v, expected):
    raise ConfigError(f"{where} = {v!r}: expected {expected}")


def _section(where: str, raw: Mapping, schema: Mapping) -> dict:
    _check_keys(where, raw, schema, required=[k for k in schema])
    return {k: (schema[k](f"{where}.{k}", raw[k]) if schema[k] else raw[k]) for k in schema}


def _edges(where: str, raw: Mapping) -> tuple[float, ...]:
    if "edges_kev" in raw and "bins" in raw:
        raise ConfigError(f"{where}: give either 'bins' or 'edges_kev', not both")
    if "edges_kev" in raw:
        e = raw["edges_kev"]
        if not isinstance(e, (list, tuple)) or len(e) < 2:
            raise ConfigError(f"{where}.edges_kev = {e!r}: expected a list of at least 2 edges")
        edges = tuple(_num(f"{where}.edges_kev[{i}]", x, lo=0.0, lo_open=True) for i, x in enumerate(e))
    elif "bins" in raw:
        b = raw["bins"]
        _check_keys(f"{where}.bins", b, ("start_kev", "width_kev", "count"),
                    required=("start_kev", "width_kev", "count"))
        start = _num(f"{where}.bins.start_kev", b["start_kev"], lo=0.0, lo_open=True)
        width = _num(f"{where}.bins.width_kev", b["width_kev"], lo=0.0, lo_open=True)
        count = _num(f"{where}.bins.count", b["count"], lo=1, hi=100_000, integer=True)
        edges = tuple(start + width * i for i in range(count + 1))
    else:
        raise ConfigError(f"{where}: missing 'bins' (start_kev, width_kev, count) or 'edges_kev'")
    for i in range(1, len(edges)):
        if not edges[i] > edges[i - 1]:
            raise ConfigError(
                f"{where}: bin edges must increase strictly, but edge {i} = {edges[i]!r} "
                f"<= edge {i - 1} = {edges[i - 1]!r}"
            )
    return edges


def _detector(name: str, raw: Mapping) -> Detector:
    where = f"detectors.{name}"
    _check_keys(where, raw, _DETECTOR_KEYS)
    missing = [k for k in _DETECTOR_KEYS if k not in raw and k not in ("bins", "edges_kev")]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}")
    from ..physics.nuclei import check_element  # physics lookup of element symbols

    comp = raw["composition"]
    if not isinstance(comp, Mapping) or not comp:
        raise ConfigError(f"{where}.composition = {comp!r}: expected a table like {{ Cs = 1, I = 1 }}")
    composition = {}
    for el, n in comp.items():
        check_element(f"{where}.composition", el)
        composition[el] = _num(f"{where}.composition.{el}", n, lo=1, hi=1000, integer=True)
    radii = raw["rms_radius_fm"]
    if not isinstance(radii, Mapping):
        raise ConfigError(f"{where}.rms_radius_fm = {radii!r}: expected a table of radii per element")
    _check_keys(f"{where}.rms_radius_fm", radii, list(composition), required=list(composition))
    rms = {el: _pos(f"{where}.rms_radius_fm.{el}", radii[el]) for el in composition}
    edges = _edges(where, raw)
    thr = _pos(f"{where}.threshold_kev", raw["threshold_kev"])
    if not thr <= edges[0] * (1 + 1e-12):
        # bins below the threshold would count recoils the detector cannot see
        raise ConfigError(
            f"{where}.threshold_kev = {thr!r}: the first bin edge {edges[0]:g} keV lies below "
            f"the threshold: expected a threshold <= {edges[0]:g} keV (bins at or above it)"
        )
    ch = raw["channels"]
    if isinstance(ch, str) or not isinstance(ch, (list, tuple)) or not ch:
        raise ConfigError(f"{where}.channels = {ch!r}: expected a list from {list(CHANNELS)}")
    for c in ch:
        if c not in CHANNELS:
            raise ConfigError(f"{where}.channels: unknown channel {c!r}: expected one of "
                              f"{', '.join(CHANNELS)}" + _suggest(c, CHANNELS))
    if "nuclear" not in ch:
        raise ConfigError(f"{where}.channels = {ch!r}: the nuclear channel is required")
    eff = raw["efficiency"]
    _check_keys(f"{where}.efficiency", eff, CHANNELS, required=tuple(ch))
    efficiency = {c: _num(f"{where}.efficiency.{c}", v, lo=0.0, lo_open=True, hi=1.0)
                  for c, v in eff.items()}
    for c in ch:
        if c not in efficiency:
            raise ConfigError(f"{where}.efficiency: missing value for channel {c!r}")
    return Detector(
        name=name,
        composition=composition,
        rms_radius_fm=rms,
        mass_kg=_pos(f"{where}.mass_kg", raw["mass_kg"]),
        threshold_kev=thr,
        sigma0=_pos(f"{where}.sigma0", raw["sigma0"]),
        background_ckkd=_num(f"{where}.background_ckkd", raw["background_ckkd"], lo=0.0),
        edges_kev=edges,
        channels=tuple(c for c in CHANNELS if c in ch),
        efficiency=efficiency,
        quenching_factor=_num(f"{where}.quenching_factor", raw["quenching_factor"],
                              lo=0.0, lo_open=True, hi=1.0),
    )


def _ranges(where: str, raw: Mapping) -> dict[str, tuple[float, float]]:
    _check_keys(where, raw, PARAMS, required=PARAMS)
    out = {}
    for p in PARAMS:
        r = raw[p]
        if not isinstance(r, (list, tuple)) or len(r) != 2:
            raise ConfigError(f"{where}.{p} = {r!r}: expected [low, high] in units of e")
        lo, hi = (_num(f"{where}.{p}", x) for x in r)
        if not lo < hi:
            raise ConfigError(f"{where}.{p} = {r!r}: expected low < high")
        out[p] = (lo, hi)
    return out


def _merge(base: dict, over: Mapping, where: str = "") -> dict:
    """Deep-merge ``over`` into a copy of ``base``; tables merge, values replace."""
    if "bins" in over and "edges_kev" in over:
        raise ConfigError(f"{where or 'configuration'}: give either 'bins' or 'edges_kev', not both")
    out = copy.deepcopy(base)
    for k, v in over.items():
        path = f"{where}.{k}" if where else k
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) and k not in (
            "composition", "rms_radius_fm"
        ):
            out[k] = _merge(out[k], v, path)
        else:
            out[k] = copy.deepcopy(v)
        # A detector's binning is given one way: the user's way wins.
        if k == "edges_kev":
            out.pop("bins", None)
        elif k == "bins":
            out.pop("edges_kev", None)
    return out


def builtin_raw() -> dict:
    """The built-in ESS configuration as a raw TOML dictionary."""
    text = resources.files("mcscan.config").joinpath("ess.toml").read_text()
    return tomllib.loads(text)


def resolve(raw: Mapping) -> Config:
    """Validate a raw (merged) configuration dictionary into a Config."""
    _check_keys("", raw, ("source", "physics", "analysis", "numerics", "detectors"),
                required=("source", "physics", "analysis", "numerics", "detectors"))
    analysis = _section("analysis", raw["analysis"], _ANALYSIS)
    analysis["ranges"] = _ranges("analysis.ranges", analysis["ranges"])
    dets = raw["detectors"]
    if not isinstance(dets, Mapping) or not dets:
        raise ConfigError("detectors: expected at least one [detectors.NAME] table")
    return Config(
        source=Source(**_section("source", raw["source"], _SOURCE)),
        physics=Physics(**_section("physics", raw["physics"], _PHYSICS)),
        analysis=Analysis(**analysis),
        numerics=Numerics(**_section("numerics", raw["numerics"], _NUMERICS)),
        detectors={name: _detector(name, d) for name, d in dets.items()},
    )


def load_config(path: str | Path | None = None, overrides: Mapping | None = None) -> Config:
    """Load the built-in ESS configuration, overridden by a TOML file and a dict.

    Parameters
    ----------
    path : str or Path, optional
        User TOML file; any key of the built-in configuration may be given.
    overrides : mapping, optional
        Further overrides with the same nesting as the TOML file.

    Raises
    ------
    ConfigError
        For a missing or unreadable file, TOML syntax errors, unknown keys
        and values of the wrong type or range.
    """
    raw = builtin_raw()
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"configuration file {str(p)!r} not found")
        try:
            user = tomllib.loads(p.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"configuration file {str(p)!r} is not valid TOML: {exc}") from None
        raw = _merge(raw, user)
    if overrides:
        raw = _merge(raw, overrides)
    return resolve(raw)


def table_config(config: Config, detector: str) -> dict:
    """The part of the configuration a detector's response table depends on."""
    d = config.to_dict()
    return {
        "schema_version": SCHEMA_VERSION,
        "source": d["source"],
        "physics": d["physics"],
        "numerics": {k: d["numerics"][k] for k in ("grid_step_sigma", "gauss_order", "n_sigma")},
        "detector": d["detectors"][config.detector(detector).name],
    }


def config_hash(d: Mapping) -> str:
    """SHA-256 of the canonical JSON form of a configuration dictionary."""
    text = json.dumps(d, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()
