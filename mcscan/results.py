"""Typed result objects: the common face of every results kind.

Every result the API returns (a limit, a region, a sensitivity table, a scan,
a sweep, a cross-section view) is an immutable object with

* ``kind``: its results kind, one of :data:`KINDS`;
* ``to_json()``: a dictionary that ``json.dumps`` writes as strict JSON;
* ``save(path)``: writes it as a results file of its kind (see
  ``docs/results.md``), atomically and verified;

and :func:`open_results` reads any results file back into the same type.
This module holds no file code: reading and writing live in
:mod:`mcscan.io.results`, the one writer of results files, which knows the
result types through a registry (every :class:`Result` subclass registers
itself) and so never imports the modules that define them.  The type
defined here is the sensitivity table (:class:`Sensitivities`); the others
live beside the code that computes them (the grid scan's ``ScanResult`` in
:mod:`mcscan.scans.engine`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .io.registry import TYPES as _TYPES
from .io.registry import register as _register
from .params import PARAMS, SPEC, display_scale, scale_label

__all__ = ["KINDS", "Result", "open_results", "Sensitivities", "FamilySensitivities"]

#: Every results kind a file can hold.
KINDS = ("scan", "limits", "region", "sensitivities", "sweep", "xsec", "fit", "bands", "fc")

#: Where each kind's types are defined: loaded by :func:`open_results` on first use
#: (by name, so that this module stays below them in the import graph).
_HOMES = {
    "scan": ("mcscan.scans.engine",),
    "limits": ("mcscan.scans.limits",),
    "region": ("mcscan.scans.regions",),
    "sensitivities": ("mcscan.scans.limits",),
    "sweep": ("mcscan.scans.sweep",),
    "xsec": ("mcscan.physics.spectra",),
    "fit": ("mcscan.scans.frequentist",),
    "bands": ("mcscan.scans.frequentist",),
    "fc": ("mcscan.scans.frequentist",),
}

#: Modules holding the types of results over parameters of any family (loaded by
#: name when a file holds such parameters).
_FAMILY_HOMES = ("mcscan.scans.families",)


class Result:
    """Mixin of every result object: ``kind``, ``to_json()`` and ``save(path)``."""

    kind: str = ""

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        _register(cls)

    def to_json(self) -> dict:  # pragma: no cover - every kind overrides it
        raise NotImplementedError

    def save(self, path, *, config=None, force: bool = False) -> Path:
        """Write this result to ``path`` as a results file of its kind.

        ``config`` (a :class:`mcscan.config.Config`) is stored for provenance.
        An existing file is refused unless ``force``.
        """
        from .io.results import save

        return save(self, path, config=config, force=force)


def open_results(path):
    """Read a results file of any kind into its typed result object (scan grids lazily).

    Raises InputError (missing file, a folder) or ResultsError (not a results file,
    unknown kind or version, corrupt, or edited after it was written)."""
    import importlib

    from .io import results as io_results

    kind = io_results.read_kind(path)
    for module in _HOMES.get(kind, ()):
        importlib.import_module(module)
    obj = io_results.open_results(path)
    return _as_family(obj, importlib)


def _family_of(params) -> str:
    fams = {SPEC[p].family for p in params if p in SPEC}
    return fams.pop() if len(fams) == 1 else "all"


def _as_family(obj, importlib):
    """A result read back over parameters beyond the charges: its family type."""
    kind = getattr(obj, "kind", "")
    if kind == "sensitivities" and isinstance(obj, Sensitivities) and any(
            p not in PARAMS for p in obj.params):
        from .params import acts_on

        unconstrained = tuple(p for p in obj.params
                              if not any((r, p) in obj.limits for r in obj.rows))
        reasons = {p: f"acts on nu_{'/nu_'.join(sorted(acts_on(p)))} only" for p in unconstrained}
        return FamilySensitivities(obj.cl, _family_of(obj.params), tuple(obj.channels),
                                   tuple(obj.rows), tuple(obj.params), dict(obj.limits),
                                   unconstrained, reasons)
    if kind == "region" and any(p not in PARAMS for p in obj.params):
        for module in _FAMILY_HOMES:
            importlib.import_module(module)
        cls = _TYPES["FamilyRegion"]
        import dataclasses

        return cls(**{f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    return obj


@dataclass(frozen=True)
class Sensitivities(Result):
    """Detector x charge table of allowed sets at one C.L.

    ``rows`` are detector names, then "combined" if asked; ``limits`` maps
    (row, param) to a :class:`mcscan.scans.limits.Limit`.
    """

    kind = "sensitivities"

    cl: float
    channels: tuple
    rows: tuple
    params: tuple
    limits: dict
    #: SHA-256 of everything the table was computed from (configuration, tables, counts,
    #: settings, C.L., package code): :meth:`mcscan.Analysis.stored_sensitivities`
    #: reuses a saved table only when it matches; "" when unknown.
    inputs: str = ""

    def to_json(self) -> dict:
        lj = {k: lim.to_json() for k, lim in self.limits.items()}
        return {
            "cl": self.cl, "channels": list(self.channels), "unit": "e",
            "rows": list(self.rows), "params": list(self.params),
            "intervals": {r: {p: lj[(r, p)]["regions"] for p in self.params} for r in self.rows},
            "open_ends": {r: [p for p in self.params if lj[(r, p)]["open_low"] or lj[(r, p)]["open_high"]]
                          for r in self.rows},
            "table_hashes": {r: lj[(r, self.params[0])]["table_hashes"] for r in self.rows},
            "limits": {r: {p: lj[(r, p)] for p in self.params} for r in self.rows},
        }


@dataclass(frozen=True)
class FamilySensitivities(Result):
    """Detector x parameter table of allowed sets at one C.L., for one family (or all).

    ``limits[(row, param)]`` is a :class:`mcscan.scans.limits.Limit` (its
    ``regions`` in the parameter's unit: every allowed piece), or None for a
    parameter in ``unconstrained``.
    """

    kind = "sensitivities"

    cl: float
    family: str
    channels: tuple
    rows: tuple
    params: tuple
    limits: dict
    unconstrained: tuple = ()
    reasons: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        def cell(r, p):
            lim = self.limits.get((r, p))
            if lim is None:
                return {"unconstrained": True, "reason": self.reasons.get(p, "")}
            return {"regions": [[float(lo), float(hi)] for lo, hi in lim.regions],
                    "open_low": bool(lim.open_low), "open_high": bool(lim.open_high)}

        units = {p: SPEC[p].unit for p in self.params}
        return {
            "cl": self.cl, "family": self.family,
            "unit": (next(iter(units.values())) if len(set(units.values())) == 1 else units),
            "channels": list(self.channels),
            "rows": list(self.rows), "params": list(self.params),
            "units": units,
            "display_scale": {p: display_scale(p) for p in self.params},
            "intervals": {r: {p: cell(r, p) for p in self.params} for r in self.rows},
        }

    def format_table(self) -> str:
        """The table as text: one line per parameter (with its display unit), one column per row."""
        def num(v, p):
            v = v / display_scale(p)
            if p == "sin2w":
                return f"{v:.4f}"
            return f"{v:.2f}" if abs(v) >= 1 else f"{v:.3g}"

        def cell(r, p):
            lim = self.limits.get((r, p))
            if lim is None:
                return "unconstrained"
            text = " U ".join(f"[{num(lo, p)}, {num(hi, p)}]" for lo, hi in lim.regions) or "(empty)"
            if lim.open_low or lim.open_high:
                text += " (open)"
            return text

        cells = {(r, p): cell(r, p) for r in self.rows for p in self.params}
        heads = {p: f"{p} [{_unit_label(p)}]" for p in self.params}
        w0 = max(len(h) for h in heads.values()) + 2
        w = {r: max([len(r)] + [len(cells[(r, p)]) for p in self.params]) + 2 for r in self.rows}
        lines = [f"Expected {self.cl:.0%} C.L. allowed sets ({self.family}), channels: "
                 f"{', '.join(self.channels)}",
                 f"{'parameter':<{w0}}" + "".join(f"{r:>{w[r]}}" for r in self.rows)]
        for p in self.params:
            lines.append(f"{heads[p]:<{w0}}" + "".join(f"{cells[(r, p)]:>{w[r]}}" for r in self.rows))
        if self.unconstrained:
            lines.append(", ".join(self.unconstrained) + ": not constrained: no nu_tau flux at "
                         "this source (unconstrained at any C.L.)")
        return "\n".join(lines)

    def save(self, path, *, config=None, force: bool = False) -> Path:
        """Write the table as a ``sensitivities`` results file (unconstrained cells are
        not stored; :func:`open_results` gives a FamilySensitivities back)."""
        from .io.results import save

        return save(_SensRecord(self.cl, tuple(self.channels), tuple(self.rows), tuple(self.params),
                                {k: v for k, v in self.limits.items() if v is not None}),
                    path, config=config, force=force)


@dataclass(frozen=True)
class _SensRecord:
    """What the ``sensitivities`` writer reads (the cells that hold a limit)."""

    cl: float
    channels: tuple
    rows: tuple
    params: tuple
    limits: dict
    kind: str = "sensitivities"
    inputs: str = ""              # family tables are not reused by a rerun


def _unit_label(p: str) -> str:
    return scale_label(p)
