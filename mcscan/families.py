"""User-level functions for every parameter family (docs/physics.md section 11).

Function forms of :class:`mcscan.Analysis` for parameters of any family, taking a
configuration, detector names and a tables folder.  ``sensitivities(config,
family=...)`` is the main job for a family: the detector x parameter table of
allowed sets at one C.L., with units (:meth:`mcscan.Analysis.sensitivities`).
Parameters that act only on nu_tau are reported as unconstrained: a
pion-decay-at-rest source emits no nu_tau.

:func:`limits` and :func:`scan` take parameters of any family, the others
``fixed`` or (limits) ``profile``-d.
"""
from __future__ import annotations

from .api import DEFAULT_TABLES
from .errors import InputError
from .params import FAMILY_NAMES, PARAMS, check_any_param
from .results import FamilySensitivities
from .scans.grid import ScanSettings

__all__ = ["FAMILY_CHOICES", "FamilySensitivities", "load_family_coefficients", "limits", "scan",
           "sensitivities"]

#: What ``family`` may be.
FAMILY_CHOICES = FAMILY_NAMES + ("all",)


def load_family_coefficients(config, detectors, tables_dir=DEFAULT_TABLES, channels=("nuclear",)) -> list:
    """Load and check each detector's table (no building); return per-detector quadratic
    forms: :meth:`mcscan.Analysis.family_coefficients`."""
    from .api import Analysis

    return Analysis(config, detectors, channels, tables_dir, build=False).family_coefficients()


def _charges_only(names) -> bool:
    return all(n in PARAMS for n in names)


def limits(config, detectors, param, *, tables_dir=DEFAULT_TABLES, cl=None, channels=("nuclear",),
           xrange=None, points=None, fixed=None, profile=(), level=None, progress=False):
    """Allowed set of ``param`` (any family) for the (combined) detectors, tables read
    (not built): :func:`mcscan.api.limits`, i.e. :meth:`mcscan.Analysis.limits`.

    ``xrange`` defaults to the parameter's range (the configuration's for a charge, else
    :mod:`mcscan.params`), extended while the allowed set reaches an end; ``profile``
    parameters are searched over their default ranges; a parameter that acts only on
    flavours the source does not emit gets an unconstrained limit.
    """
    from .api import limits as api_limits

    return api_limits(config, detectors, param, tables_dir=tables_dir, cl=cl, channels=channels,
                      xrange=xrange, points=points, fixed=fixed, profile=tuple(profile), level=level,
                      progress=progress)


def scan(config, detectors, params, axes, *, tables_dir=DEFAULT_TABLES, channels=("nuclear",),
         fixed=None, progress=False):
    """Grid scan over one or two parameters of any family (the others ``fixed``)."""
    from .api import load_coefficients
    from .scans.families import family_grid_scan
    from .scans.grid import grid_scan

    fixed = dict(fixed or {})
    for p in list(params) + list(fixed):
        check_any_param(p)
    settings = ScanSettings.from_config(config)
    if _charges_only([*params, *fixed]):
        coefs = load_coefficients(config, detectors, tables_dir, channels)
        return grid_scan(coefs, params, axes, fixed=fixed, settings=settings, progress=progress)
    fcoefs = load_family_coefficients(config, detectors, tables_dir, channels)
    return family_grid_scan(fcoefs, params, axes, fixed=fixed, settings=settings, progress=progress)


def sensitivities(config, family: str = "charges", *, tables_dir=DEFAULT_TABLES, cl=None,
                  channels=("nuclear",), detectors=None, combined=True, progress=False,
                  log=None) -> FamilySensitivities:
    """The main job for a family: build missing tables, then every detector's 1D limits
    (:meth:`mcscan.Analysis.sensitivities` with ``family``).  ``detectors`` default to
    every detector that enables all of ``channels``; a detector named in ``detectors``
    must enable them.

    Parameters
    ----------
    family : "charges" (default: the millicharge limits, as a family table that lists
        q_tautau as unconstrained), "radii", "moments", "nsi", "sin2w" or "all"
    channels : detection channels (CsI may add "electron": EvES sees charges, radii,
        moments and sin2w, not quark NSI)

    Every visible parameter is scanned one at a time (the others at the SM point);
    a parameter acting only on flavours the source does not emit is listed in
    ``unconstrained`` instead of getting a (meaningless) huge interval.
    """
    from .api import Analysis

    if family not in FAMILY_CHOICES:       # before any table is built
        raise InputError(f"unknown family {family!r}: expected one of {', '.join(FAMILY_CHOICES)}")
    a = Analysis(config, detectors, channels, tables_dir, progress=progress, log=log)
    # the family table for "charges" too (q_tautau listed as unconstrained), where
    # Analysis.sensitivities() gives the millicharge table itself
    return a._family_sensitivities(family, cl, combined, progress=progress)
