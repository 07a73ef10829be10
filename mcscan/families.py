"""User-level functions for every parameter family (docs/physics.md section 11).

``sensitivities(config, family=...)`` is the main job for a family: the
detector x parameter table of allowed sets at one C.L., with units.  Charges
go through the millicharge pipeline (:func:`mcscan.api.sensitivities`, the
default, unchanged); the other families through the quadratic forms of
:mod:`mcscan.stats.families`.  Parameters that act only on nu_tau are reported
as unconstrained: a pion-decay-at-rest source emits no nu_tau.

:func:`limits` and :func:`scan` take parameters of any family, the others
``fixed`` or (limits) ``profile``-d.
"""
from __future__ import annotations

from pathlib import Path

from .api import DEFAULT_TABLES, _detectors, build_tables
from .errors import InputError, TableError
from .params import FAMILY_NAMES, PARAMS, SPEC, check_any_param, family_params
from .results import FamilySensitivities
from .scans.grid import ScanSettings

__all__ = ["FAMILY_CHOICES", "FamilySensitivities", "load_family_coefficients", "limits", "scan",
           "sensitivities"]

#: What ``family`` may be.
FAMILY_CHOICES = FAMILY_NAMES + ("all",)


def load_family_coefficients(config, detectors, tables_dir=DEFAULT_TABLES, channels=("nuclear",)) -> list:
    """Load and check each detector's table; return per-detector quadratic forms."""
    from .config.load import config_hash, table_config
    from .io.tables import load_table, table_path
    from .stats.families import family_coefficients

    out = []
    for name in _detectors(config, detectors):
        det = config.detector(name)
        for ch in channels:
            if ch not in det.channels:
                raise InputError(f"detector {name} does not enable the {ch!r} channel: add it to "
                                 f"detectors.{name}.channels in your configuration")
        path = table_path(tables_dir, name)
        if not path.is_file():
            raise TableError(f"no table for {name} in {str(Path(tables_dir))!r}: build it first "
                             f"(same configuration and tables folder)")
        table = load_table(path, expected_hash=config_hash(table_config(config, name)),
                           channels=channels)
        out.append(family_coefficients(table, channels))
    return out


def _charges_only(names) -> bool:
    return all(n in PARAMS for n in names)


def limits(config, detectors, param, *, tables_dir=DEFAULT_TABLES, cl=None, channels=("nuclear",),
           xrange=None, points=None, fixed=None, profile=(), level=None, progress=False):
    """Allowed set of ``param`` (any family) for the (combined) detectors.

    Charges with only charges fixed or profiled: :func:`mcscan.api.limits` itself.
    Otherwise ``xrange`` defaults to the parameter's range in :mod:`mcscan.params`
    (extended while the allowed set reaches an end), ``profile`` parameters are
    searched over their default ranges.
    """
    from .api import limits as charge_limits
    from .scans.families import family_limit

    check_any_param(param)
    fixed = dict(fixed or {})
    for p in list(fixed) + list(profile):
        check_any_param(p)
    if _charges_only([param, *fixed, *profile]):
        return charge_limits(config, detectors, param, tables_dir=tables_dir, cl=cl,
                             channels=channels, xrange=xrange, points=points, fixed=fixed,
                             profile=tuple(profile), level=level, progress=progress)
    fcoefs = load_family_coefficients(config, detectors, tables_dir, channels)
    if points is None:
        points = config.numerics.scan_points if not profile else min(config.numerics.scan_points, 801)
    auto = xrange is None
    if auto and SPEC[param].scan_range is None:
        xrange = config.analysis.ranges[param]
    ranges = {p: tuple(config.analysis.ranges[p]) for p in profile if p in PARAMS}
    return family_limit(fcoefs, param, cl=config.analysis.cl if cl is None else cl,
                        xrange=xrange, points=points, fixed=fixed,
                        settings=ScanSettings.from_config(config), extend=6 if auto else 0,
                        progress=progress, profile=tuple(profile), profile_ranges=ranges,
                        level=level)


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
    """The main job for a family: build missing tables, then every detector's 1D limits.

    Parameters
    ----------
    family : "charges" (default: the millicharge table, unchanged), "radii", "moments",
        "nsi", "sin2w" or "all"
    channels : detection channels (CsI may add "electron": EvES sees charges, radii,
        moments and sin2w, not quark NSI)

    Every visible parameter is scanned one at a time (the others at the SM point);
    a parameter acting only on flavours the source does not emit is listed in
    ``unconstrained`` instead of getting a (meaningless) huge interval.
    """
    from tqdm.auto import tqdm

    from .api import sensitivities as charge_sensitivities
    from .params import acts_on, visible_params

    if family not in FAMILY_CHOICES:
        raise InputError(f"unknown family {family!r}: expected one of {', '.join(FAMILY_CHOICES)}")
    names = _detectors(config, detectors)
    chan_ok = [n for n in names if all(c in config.detector(n).channels for c in channels)]
    if not chan_ok:
        raise InputError(f"no detector enables the channels {','.join(channels)}")
    build_tables(config, chan_ok, tables_dir, progress=progress, log=log)
    cl = float(config.analysis.cl if cl is None else cl)
    rows = [[n] for n in chan_ok]
    if combined and len(chan_ok) > 1:
        rows.append(chan_ok)
    labels = tuple(r[0] if len(r) == 1 else "combined" for r in rows)
    fams = FAMILY_NAMES if family == "all" else (family,)
    out, params, unconstrained, reasons = {}, [], [], {}
    from .physics.flux import COMPONENTS

    emitted = sorted({c.flavour for c in COMPONENTS})
    for fam in fams:
        visible = visible_params(emitted, fam)
        for p in family_params(fam):
            if p not in visible:
                unconstrained.append(p)
                reasons[p] = (f"acts on nu_{'/nu_'.join(sorted(acts_on(p)))} only; the source "
                              f"emits {', '.join('nu_' + f for f in emitted)}")
        if fam == "charges":
            sens = charge_sensitivities(config, tables_dir=tables_dir, cl=cl, channels=channels,
                                        detectors=chan_ok, combined=combined, progress=progress)
            out.update(sens.limits)
            params.extend(sens.params)
            continue
        fcoefs = {n: load_family_coefficients(config, [n], tables_dir, channels)[0] for n in chan_ok}
        settings = ScanSettings.from_config(config)
        from .scans.families import family_limit

        todo = [(r, p) for r in rows for p in visible]
        for r, p in tqdm(todo, desc=f"sensitivities {fam}", disable=not progress):
            label = r[0] if len(r) == 1 else "combined"
            out[(label, p)] = family_limit([fcoefs[n] for n in r], p, cl=cl,
                                           points=config.numerics.scan_points, settings=settings)
        params.extend(visible)
    params.extend(unconstrained)
    return FamilySensitivities(cl, family, tuple(channels), labels, tuple(params), out,
                               tuple(unconstrained), reasons)
