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

from dataclasses import dataclass
from pathlib import Path

from .io.registry import register as _register

__all__ = ["KINDS", "Result", "open_results", "Sensitivities"]

#: Every results kind a file can hold.
KINDS = ("scan", "limits", "region", "sensitivities", "sweep", "xsec")

#: Where each kind's types are defined: loaded by :func:`open_results` on first use
#: (by name, so that this module stays below them in the import graph).
_HOMES = {
    "scan": ("mcscan.scans.engine",),
    "limits": ("mcscan.scans.limits",),
    "region": ("mcscan.scans.regions",),
    "sensitivities": ("mcscan.scans.limits",),
    "sweep": ("mcscan.scans.sweep",),
    "xsec": ("mcscan.physics.spectra",),
}


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

    for module in _HOMES.get(io_results.read_kind(path), ()):
        importlib.import_module(module)
    return io_results.open_results(path)


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
