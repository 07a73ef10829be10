"""Typed result objects: the common face of every results kind.

Every result the API returns (a limit, a region, a sensitivity table, a scan,
a sweep, a cross-section view) is an immutable object with

* ``kind``: its results kind, one of :data:`KINDS`;
* ``to_json()``: a dictionary that ``json.dumps`` writes as strict JSON;
* ``save(path)``: writes it as a results file of its kind (see
  ``docs/results.md``), atomically and verified;

and :func:`open_results` reads any results file back into the same type.
This module holds no file code: reading and writing live in
:mod:`mcscan.io.results`, the one writer of results files.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["KINDS", "Result", "open_results"]

#: Every results kind a file can hold.
KINDS = ("scan", "limits", "region", "sensitivities", "sweep", "xsec")


class Result:
    """Mixin of every result object: ``kind``, ``to_json()`` and ``save(path)``."""

    kind: str = ""

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
    """Read a results file of any kind into its typed result object (datasets lazily)."""
    from .io.results import open_results as _open

    return _open(path)
