"""Configuration: the built-in ESS reference and user TOML overrides.

The built-in configuration (``mcscan/config/ess.toml``) is docs/physics.md's
reference setup.  A user TOML file overrides any value of it, section by
section; a detector that is not built in must give every detector key.
Every value is checked on load: an unknown key, a wrong type or a value out
of range raises :class:`ConfigError` with one line naming the key, the value
and what was expected.

Units are in the key names: ``_kev`` (keV, nuclear-recoil scale),
``_kg``, ``_m``, ``_fm``; ``background_ckkd`` is counts / (keV kg day).

Validation ranges
-----------------
Values are checked by meaning: each key has the range a physicist would
accept for a stopped-pion source, and a value outside it is refused before
anything is computed (so no table or limit is ever built from an absurd
input).  Ranges and why:

=================================  ======================  ==================================================
key                                accepted                why
=================================  ======================  ==================================================
source.name                        1-100 characters        a label
source.pot_per_year                [1e10, 1e26]            ESS 2.8e23; 1e26 is 300x any planned source, 1e10
                                                           a test beam (below, no count is representable)
source.nu_per_flavour_per_pot      [1e-6, 10]              ~0.1-0.3 per flavour at spallation sources
source.distance_m                  [1, 1e5]                point-source flux 1/(4 pi L^2): L >> target size
source.years                       [1e-6, 100]             30 s to a century of data
source.beam_hours_per_year         [1e-3, 8784]            hours in a (leap) year
source.duty_factor                 [1e-6, 1]               a fraction
physics.sin2_theta_w               (0, 1)                  sin^2 of an angle
physics.helm_skin_fm               (0, 3]                  Helm surface thickness ~0.9 fm; needs R^2 > 3 s^2
analysis.signal_pull               [1e-6, 10]              fractional normalisation uncertainties: the pull
analysis.background_pull           [1e-6, 10]              fit is well-posed here (no 1/0, no overflow)
analysis.cl                        [1e-6, 1 - 1e-9]        Delta chi2 level finite and representable
analysis.ranges.*                  finite, |q| <= 1 e,     a millicharge is a fraction of e; a span below
                                   span >= 1e-30 e         1e-30 e cannot be gridded in double precision
numerics.grid_step_sigma           [0.01, 2]               0.25 default; 0.01 already needs 25x the nodes
numerics.gauss_order               2-20                    Gauss-Legendre nodes per panel
numerics.n_sigma                   [4, 40]                 Gaussian tails beyond 40 sigma are exactly zero
numerics.newton_tol                [1e-15, 1e-4]           double-precision floor; looser is not converged
numerics.newton_max_iter           5-10000                 bounded run time
numerics.scan_points               3-10000001              bounded memory (80 MB per array)
detector names                     [A-Za-z][A-Za-z0-9_-]*  become file names of tables and results groups
detectors.*.composition.*          1-1000 atoms            natural elements with stable isotopes only
detectors.*.rms_radius_fm.*        (0, 20]                 nuclear rms radii are 0.8-6 fm
detectors.*.mass_kg                [1e-6, 1e6]             a milligram to a kilotonne
detectors.*.threshold_kev          (0, 1e4]                recoils of a 53 MeV neutrino stay far below 10 MeV
detectors.*.sigma0                 [1e-3, 10]              resolution sigma0 sqrt(T T_th); smaller needs an
                                                           unbounded true-energy grid
detectors.*.background_ckkd        [0, 1e6]                counts / (keV kg day); 1e6 is a bare detector
detectors.*.bins / edges_kev       1-10000 bins, edges     bounded table size; the first edge must lie below
                                   (0, 1e5] keV            the largest recoil energy the source can produce
detectors.*.efficiency.*           [1e-6, 1]               a probability (zero would hide the channel)
detectors.*.quenching_factor       [1e-3, 1]               a fraction (electron recoils in keVnr stay finite)
=================================  ======================  ==================================================

What a table costs is checked separately when it is built
(:mod:`mcscan.budget`: at most 1e7 true-energy grid points by default).
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import re
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
    "check_detector_name",
]

# PARAMS (the six charges, in the order of every array of charges) is re-exported for
# configuration keys; the accepted ranges are those of every command.
from ..params import CL_RANGE, MAX_CHARGE, MIN_SPAN, PARAMS  # noqa: E402,F401
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


def _interval(lo, hi, lo_open, hi_open) -> str:
    a = "(" if lo_open else "["
    b = ")" if hi_open else "]"
    return f"{a}{lo:g}, {hi:g}{b}"


def _num(where: str, v: Any, *, lo=None, hi=None, lo_open=False, hi_open=False,
         integer=False, why: str = "") -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{where} = {v!r}: expected a number")
    if integer and isinstance(v, float) and math.isfinite(v) and not v.is_integer():
        raise ConfigError(f"{where} = {v!r}: expected a whole number")
    try:
        x = float(v)
    except OverflowError:       # an integer beyond double range
        x = math.inf if v > 0 else -math.inf
    if not math.isfinite(x):
        raise ConfigError(f"{where} = {v!r}: expected a finite number")
    bad = ((lo is not None and (x < lo or (lo_open and x == lo)))
           or (hi is not None and (x > hi or (hi_open and x == hi))))
    if bad:
        why = f" ({why})" if why else ""
        if lo is not None and hi is not None:
            raise ConfigError(f"{where} = {v!r}: expected a value in {_interval(lo, hi, lo_open, hi_open)}"
                              f"{why}")
        if lo is not None:
            rel = ">" if lo_open else ">="
            raise ConfigError(f"{where} = {v!r}: expected a value {rel} {lo:g}{why}")
        rel = "<" if hi_open else "<="
        raise ConfigError(f"{where} = {v!r}: expected a value {rel} {hi:g}{why}")
    return int(x) if integer else x


def _rng(lo, hi, *, lo_open=False, hi_open=False, integer=False, why=""):
    """A checker of values in a range (see the table of ranges above)."""
    return lambda w, v: _num(w, v, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open,
                             integer=integer, why=why)


#: Detector names: identifiers, because they name table files and results groups.
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
_NAME_MAX = 64


def check_detector_name(name) -> str:
    """Raise ConfigError unless ``name`` is a detector identifier."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > _NAME_MAX:
        raise ConfigError(
            f"detector name {name!r}: expected a letter followed by letters, digits, '_' or '-' "
            f"(at most {_NAME_MAX} characters)")
    return name


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


def _text(w, v):
    if not isinstance(v, str) or not v.strip() or len(v) > 100 or not v.isprintable():
        _bad(w, v, "a non-empty printable string of at most 100 characters")
    return v


_SOURCE = {
    "name": _text,
    "pot_per_year": _rng(1e10, 1e26, why="protons on target per year"),
    "nu_per_flavour_per_pot": _rng(1e-6, 10.0, why="neutrinos per flavour per proton"),
    "distance_m": _rng(1.0, 1e5, why="source-detector distance in m"),
    "years": _rng(1e-6, 100.0, why="years of data"),
    "beam_hours_per_year": _rng(1e-3, 8784.0, why="hours in a year"),
    "duty_factor": _rng(1e-6, 1.0, why="a fraction"),
}
_PHYSICS = {
    "sin2_theta_w": _rng(0.0, 1.0, lo_open=True, hi_open=True),
    "helm_skin_fm": _rng(0.0, 3.0, lo_open=True, why="Helm surface thickness in fm"),
}
_NUMERICS = {
    "grid_step_sigma": _rng(0.01, 2.0, why="finer grids cost memory without changing the tables"),
    "gauss_order": _rng(2, 20, integer=True),
    "n_sigma": _rng(4.0, 40.0),
    "newton_tol": _rng(1e-15, 1e-4, why="double precision floor to a converged fit"),
    "newton_max_iter": _rng(5, 10000, integer=True),
    "scan_points": _rng(3, 10_000_001, integer=True),
}
#: Pull widths (fractional normalisation uncertainties) that keep the fit well-posed.
PULL_RANGE = (1e-6, 10.0)
_ANALYSIS = {
    "signal_pull": _rng(*PULL_RANGE, why="fractional signal normalisation uncertainty"),
    "background_pull": _rng(*PULL_RANGE, why="fractional background normalisation uncertainty"),
    "cl": _rng(*CL_RANGE, why="confidence level"),
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


#: Most reco bins of a detector (bounds the size of a table).
MAX_BINS = 10_000
#: Largest bin edge, keV: recoils of a 53 MeV neutrino stay far below.
MAX_EDGE_KEV = 1e5


def _edges(where: str, raw: Mapping) -> tuple[float, ...]:
    if "edges_kev" in raw and "bins" in raw:
        raise ConfigError(f"{where}: give either 'bins' or 'edges_kev', not both")
    if "edges_kev" in raw:
        e = raw["edges_kev"]
        if not isinstance(e, (list, tuple)) or len(e) < 2:
            raise ConfigError(f"{where}.edges_kev = {e!r}: expected a list of at least 2 edges")
        if len(e) > MAX_BINS + 1:
            raise ConfigError(f"{where}.edges_kev: {len(e) - 1} bins: expected at most {MAX_BINS:,} bins")
        edges = tuple(_num(f"{where}.edges_kev[{i}]", x, lo=0.0, lo_open=True, hi=MAX_EDGE_KEV,
                           why="recoil energy in keV")
                      for i, x in enumerate(e))
    elif "bins" in raw:
        b = raw["bins"]
        _check_keys(f"{where}.bins", b, ("start_kev", "width_kev", "count"),
                    required=("start_kev", "width_kev", "count"))
        start = _num(f"{where}.bins.start_kev", b["start_kev"], lo=0.0, lo_open=True, hi=1e4,
                     why="recoil energy in keV")
        width = _num(f"{where}.bins.width_kev", b["width_kev"], lo=0.0, lo_open=True, hi=MAX_EDGE_KEV,
                     why="bin width in keV")
        count = _num(f"{where}.bins.count", b["count"], lo=1, hi=MAX_BINS, integer=True,
                     why="bounded table size")
        end = start + width * count
        if end > MAX_EDGE_KEV:
            raise ConfigError(f"{where}.bins: {count} bins of {width:g} keV from {start:g} keV end at "
                              f"{end:g} keV: expected the last edge <= {MAX_EDGE_KEV:g} keV")
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


def _recoil_end_kev(composition, radii) -> float:
    """Largest nuclear recoil energy (keV) the source's neutrinos can give the target."""
    from ..physics.flux import max_energy
    from ..physics.cevns import t_max
    from ..physics.nuclei import nuclides

    # t_max grows with the neutrino energy: the largest energy of the source
    # (flux.max_energy, no particle-table lookup) gives the largest recoil
    e_max = max_energy()
    return max(float(t_max(e_max, n.mass)) for n in nuclides(composition, radii)) * 1e3


def _detector(name: str, raw: Mapping, skin_fm: float | None = None) -> Detector:
    check_detector_name(name)
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
        check_element(f"{where}.composition", el, natural=True)
        composition[el] = _num(f"{where}.composition.{el}", n, lo=1, hi=1000, integer=True,
                               why="atoms per formula unit")
    radii = raw["rms_radius_fm"]
    if not isinstance(radii, Mapping):
        raise ConfigError(f"{where}.rms_radius_fm = {radii!r}: expected a table of radii per element")
    _check_keys(f"{where}.rms_radius_fm", radii, list(composition), required=list(composition))
    rms = {el: _num(f"{where}.rms_radius_fm.{el}", radii[el], lo=0.0, lo_open=True, hi=20.0,
                    why="nuclear rms radius in fm") for el in composition}
    if skin_fm is not None:
        for el, r in rms.items():
            if not r * r > 3.0 * skin_fm * skin_fm:
                raise ConfigError(
                    f"{where}.rms_radius_fm.{el} = {r!r}: expected a radius > sqrt(3) x "
                    f"physics.helm_skin_fm = {math.sqrt(3.0) * skin_fm:.4g} fm (Helm form factor)")
    edges = _edges(where, raw)
    thr = _num(f"{where}.threshold_kev", raw["threshold_kev"], lo=0.0, lo_open=True, hi=1e4,
               why="recoil energy in keV")
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
    efficiency = {c: _num(f"{where}.efficiency.{c}", v, lo=1e-6, hi=1.0, why="a probability")
                  for c, v in eff.items()}
    for c in ch:
        if c not in efficiency:
            raise ConfigError(f"{where}.efficiency: missing value for channel {c!r}")
    t_end = _recoil_end_kev(composition, rms)
    if not edges[0] < t_end:
        raise ConfigError(
            f"{where}: the bins [{edges[0]:g}, {edges[-1]:g}] keV start above the largest recoil energy the "
            f"source can give {'+'.join(composition)} ({t_end:.4g} keV): expected a first bin edge "
            f"below {t_end:.4g} keV")
    return Detector(
        name=name,
        composition=composition,
        rms_radius_fm=rms,
        mass_kg=_num(f"{where}.mass_kg", raw["mass_kg"], lo=1e-6, hi=1e6,
                     why="detector mass in kg"),
        threshold_kev=thr,
        sigma0=_num(f"{where}.sigma0", raw["sigma0"], lo=1e-3, hi=10.0,
                    why="resolution sigma0 sqrt(T T_th)"),
        background_ckkd=_num(f"{where}.background_ckkd", raw["background_ckkd"], lo=0.0, hi=1e6,
                             why="counts / (keV kg day)"),
        edges_kev=edges,
        channels=tuple(c for c in CHANNELS if c in ch),
        efficiency=efficiency,
        quenching_factor=_num(f"{where}.quenching_factor", raw["quenching_factor"],
                              lo=1e-3, hi=1.0, why="a fraction"),
    )


def _ranges(where: str, raw: Mapping) -> dict[str, tuple[float, float]]:
    _check_keys(where, raw, PARAMS, required=PARAMS)
    out = {}
    for p in PARAMS:
        r = raw[p]
        if not isinstance(r, (list, tuple)) or len(r) != 2:
            raise ConfigError(f"{where}.{p} = {r!r}: expected [low, high] in units of e")
        lo, hi = (_num(f"{where}.{p}", x, lo=-MAX_CHARGE, hi=MAX_CHARGE, why="charge in e")
                  for x in r)
        if not lo < hi:
            raise ConfigError(f"{where}.{p} = {r!r}: expected low < high")
        if not hi - lo >= MIN_SPAN:
            raise ConfigError(f"{where}.{p} = {r!r}: expected a span of at least {MIN_SPAN:g} e")
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
    for name in dets:
        check_detector_name(name)
    physics = Physics(**_section("physics", raw["physics"], _PHYSICS))
    return Config(
        source=Source(**_section("source", raw["source"], _SOURCE)),
        physics=physics,
        analysis=Analysis(**analysis),
        numerics=Numerics(**_section("numerics", raw["numerics"], _NUMERICS)),
        detectors={name: _detector(name, d, physics.helm_skin_fm) for name, d in dets.items()},
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
