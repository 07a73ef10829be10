"""Data of the standard figure set, computed through the public API and saved
as results files that :func:`mcscan.plot.plot_folder` draws.  No matplotlib here.

Files written into the output folder (every one a results file of its own
kind, see ``docs/results.md``, with the configuration stored in it):

* ``profiles.h5`` (sensitivities): Delta chi2 profiles of the visible charges
  for each detector and their combination;
* ``region_<row>_<p0>-<p1>.h5`` (region): allowed regions in (q_ee, q_mumu)
  and (q_etau, q_mutau) for each detector (``<row>``) and ``combined``;
* for the first detector that enables the electron channel (CsI in the
  built-in configuration), ``electron_<det>_<channels>_<param>.h5`` (limits)
  and ``electron_<det>_<channels>_region.h5`` (region), nuclear recoils alone
  and with neutrino-electron scattering;
* ``xsec_<det>_<k>.h5`` (xsec): dsigma/dT of each detector's target per
  formula unit for nu_e at :data:`XSEC_ENU` MeV, the Standard Model and the
  charges :data:`XSEC_CHARGES`;
* ``figures.json``: which files make which figure.

Optional sets (``families`` beyond the default ``("charges",)``, and
``frequentist``), see ``docs/physics.md`` section 11 and ``docs/statistics.md``:

* ``radii``: ``region_<row>_r2_ee-r2_mumu.h5`` (region), the
  (<r^2>_ee, <r^2>_mumu) plane for each detector and ``combined``;
* ``nsi``: ``region_<row>_eps_u_ee-eps_d_ee.h5`` (region), the
  (eps^u_ee, eps^d_ee) plane over :data:`NSI_RANGES`;
* ``moments``: ``moments_<row>_<param>.h5`` (limits), the Delta chi2 profiles
  of mu_e and mu_mu;
* ``bands``: ``bands.json``, expected-limit bands of the visible charges for
  each detector (a list of ``Bands.to_json()`` with the configuration);
* ``feldman-cousins``: ``fc_<det>_<param>.h5`` (fc), the Feldman-Cousins
  critical values and Wilks coverage of :data:`FC_CASE`.

Family regions are computed on grids that hold the parameters' Standard Model
values; every allowed piece (a ring with its hole for the charge radii, two
bands for NSI) is kept as a polygon.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .params import default_range

__all__ = ["compute_figure_data", "family_region", "REGION_PAIRS", "ELECTRON_PARAMS", "XSEC_CHARGES",
           "XSEC_ENU", "FAMILY_SETS", "FAMILY_PAIRS", "NSI_RANGES", "MOMENT_PARAMS", "FREQUENTIST_SETS",
           "FC_CASE"]

REGION_PAIRS = (("q_ee", "q_mumu"), ("q_etau", "q_mutau"))
#: Charges of the electron-channel figure.
ELECTRON_PARAMS = ("q_ee", "q_mumu")
#: Values of q_ee drawn in the cross-section figures (nu_e), e.
XSEC_CHARGES = (-1e-8, 5e-9, 1e-8, 2e-8)
#: Neutrino energy of the cross-section figures, MeV.
XSEC_ENU = 40.0

#: Figure sets ``families`` may name (``charges``: the standard set above).
FAMILY_SETS = ("charges", "radii", "nsi", "moments")
#: Planes of the family figures.
FAMILY_PAIRS = {"radii": ("r2_ee", "r2_mumu"), "nsi": ("eps_u_ee", "eps_d_ee")}
#: Ranges of the NSI plane: each detector allows two bands that run through it.
NSI_RANGES = {"eps_u_ee": (-1.0, 1.0), "eps_d_ee": (-1.0, 1.0)}
#: Magnetic moments of the profile figure (mu_tau: no nu_tau at the source).
MOMENT_PARAMS = ("mu_e", "mu_mu")
#: Sets ``frequentist`` may name.
FREQUENTIST_SETS = ("bands", "feldman-cousins")
#: (detector, charge) of the Feldman-Cousins figure.
FC_CASE = ("Ge", "q_ee")


def _write_json(path: Path, data) -> None:
    """Atomic write of a small JSON file (temp file in the same folder, fsync, rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _choices(value, allowed, what) -> tuple:
    from .errors import InputError

    value = (value,) if isinstance(value, str) else tuple(value or ())
    for v in value:
        if v not in allowed:
            raise InputError(f"unknown {what} {v!r}: expected any of {', '.join(allowed)}")
    return tuple(dict.fromkeys(value))


def family_region(config, detectors, params, ranges, *, tables_dir, points=201, cl=None):
    """Allowed region of two parameters of any family as a :class:`Region`.

    A grid scan (:func:`mcscan.families.scan`) of ``points`` values per axis over
    ``ranges`` {param: (low, high)}, the Standard Model value added to each axis
    so that the Asimov minimum (0 at the SM) lies on the grid; every allowed
    piece is a polygon (with its holes).  ``touches_edge``: a piece reaches the
    border of the ranges.
    """
    import numpy as np

    from . import families
    from .params import SPEC
    from .scans.limits import delta_chi2_level
    from .scans.regions import Region, polygon_area, polygons

    params = tuple(params)
    cl = float(config.analysis.cl if cl is None else cl)
    axes = []
    for p in params:
        lo, hi = (float(v) for v in ranges[p])
        ax = np.linspace(lo, hi, int(points))
        if lo < SPEC[p].reference < hi:
            ax = np.unique(np.append(ax, SPEC[p].reference))
        axes.append(ax)
    sc = families.scan(config, list(detectors), params, axes, tables_dir=tables_dir)
    chi2 = np.asarray(sc.chi2, dtype=float)
    cmin = float(np.min(chi2))
    level = delta_chi2_level(cl, 2)
    d = chi2 - cmin
    polys = polygons(axes[0], axes[1], d, level)
    inside = d <= level
    edge = bool(inside[0].any() or inside[-1].any() or inside[:, 0].any() or inside[:, -1].any())
    extent = {}
    if polys:
        pts = np.vstack([o for o, _ in polys])
        extent = {p: [float(pts[:, k].min()), float(pts[:, k].max())] for k, p in enumerate(params)}
    area = float(sum(polygon_area(o) - sum(polygon_area(h) for h in hs) for o, hs in polys))
    return Region(tuple(sc.detectors), params, cl, float(level), polys, extent, area, edge, sc, cmin)


def compute_figure_data(config=None, outdir="figures", *, tables_dir=None, progress=True, log=None,
                        points=201, families=("charges",), frequentist=(), toys=1000, seed=0,
                        fc_points=41, detectors=None) -> dict:
    """Build missing tables and compute every result of the figure set into ``outdir``.

    ``config``: a Config, a TOML path or None (built-in); ``tables_dir``: the
    tables folder (default as :class:`mcscan.Analysis`); ``points``: grid
    points per axis of the regions.  ``families``: which parameter-family
    figures (:data:`FAMILY_SETS`; default the charges only); ``frequentist``:
    any of :data:`FREQUENTIST_SETS`, with ``toys`` per band (per grid value for
    Feldman-Cousins, on ``fc_points`` grid values) and ``seed``.  Existing
    files in ``outdir`` are replaced.  ``detectors``: names (default: every
    detector of the configuration).  Returns {figure name: manifest entry}.
    """
    from tqdm.auto import tqdm

    from .api import Analysis

    families = _choices(families, FAMILY_SETS, "figure set")
    frequentist = _choices(frequentist, FREQUENTIST_SETS, "frequentist figure set")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    a = Analysis(config, detectors=detectors, tables=tables_dir, progress=progress, log=log)
    cfg = a.config
    names = list(a.detectors)
    rows = [(n, n) for n in names] + ([("combined", names)] if len(names) > 1 else [])
    electron = [n for n in cfg.detectors if "electron" in cfg.detector(n).channels] \
        if "charges" in families else []
    n_steps = (1 + len(rows) * len(REGION_PAIRS) + 1 if "charges" in families else 0) \
        + (2 * (len(ELECTRON_PARAMS) + 1) if electron else 0) \
        + len(rows) * (("radii" in families) + ("nsi" in families)
                       + len(MOMENT_PARAMS) * ("moments" in families)) \
        + len(frequentist)
    bar = tqdm(total=n_steps, desc="figure data", disable=not progress)
    figures = []

    def save(obj, name):
        obj.save(outdir / name, config=cfg, force=True)
        bar.update()
        return name

    if "charges" in families:
        _charge_figures(a, cfg, names, rows, electron, outdir, figures, save, bar, points, progress, log)
    for fam in ("radii", "nsi"):
        if fam not in families:
            continue
        pair = FAMILY_PAIRS[fam]
        ranges = NSI_RANGES if fam == "nsi" else {p: default_range(p, cfg) for p in pair}
        files = {label: save(family_region(cfg, [dets] if isinstance(dets, str) else dets, pair, ranges,
                                           tables_dir=a.tables, points=points),
                             f"region_{label}_{pair[0]}-{pair[1]}.h5")
                 for label, dets in rows}
        figures.append({"name": f"region_{pair[0]}_{pair[1]}", "draw": "regions", "files": files})
    if "moments" in families:
        from . import families as fam_api

        files = {p: {label: save(fam_api.limits(cfg, [dets] if isinstance(dets, str) else dets, p,
                                                tables_dir=a.tables),
                                 f"moments_{label}_{p}.h5")
                     for label, dets in rows}
                 for p in MOMENT_PARAMS}
        figures.append({"name": "moments", "draw": "profiles", "params": list(MOMENT_PARAMS), "files": files})
    if frequentist:
        from .params import visible_params
        from .physics.flux import COMPONENTS
        from .scans.frequentist import expected_bands, feldman_cousins

        settings = a.settings
        if "bands" in frequentist:
            charges = visible_params(sorted({c.flavour for c in COMPONENTS}))
            items = [expected_bands(a.coefficients(det), p, toys=toys, seed=seed, cl=cfg.analysis.cl,
                                    settings=settings).to_json()
                     for det in names for p in charges]
            _write_json(outdir / "bands.json", {"kind": "bands", "config": cfg.to_dict(), "results": items})
            bar.update()
            figures.append({"name": "bands", "draw": "bands", "file": "bands.json"})
        if "feldman-cousins" in frequentist and FC_CASE[0] in names:
            det, p = FC_CASE
            fc = feldman_cousins(a.coefficients(det), p, toys=toys, seed=seed, cl=cfg.analysis.cl,
                                 settings=settings, points=fc_points)
            name = f"fc_{det}_{p}"
            fc.save(outdir / f"{name}.h5", config=cfg, force=True)
            bar.update()
            figures.append({"name": name, "draw": "file", "file": f"{name}.h5"})
    bar.close()
    _write_json(outdir / "figures.json", {"figures": figures})
    return {f["name"]: f for f in figures}


def _charge_figures(a, cfg, names, rows, electron, outdir, figures, save, bar, points, progress, log):
    """The standard (charges) figures: profiles, regions, electron channel, cross sections."""
    from .api import Analysis
    from .physics.spectra import xsec_view

    figures.append({"name": "profiles", "draw": "file",
                    "file": save(a.sensitivities(combined=True), "profiles.h5")})
    for pair in REGION_PAIRS:
        files = {}
        for label, dets in rows:
            files[label] = save(a.region(pair, detectors=dets, points=points),
                                f"region_{label}_{pair[0]}-{pair[1]}.h5")
        figures.append({"name": f"region_{pair[0]}_{pair[1]}", "draw": "regions", "files": files})
    if electron:
        det = electron[0]
        sets = [("nuclear",), ("nuclear", "electron")]
        lims, regs = [], []
        for chans in sets:
            an = a if chans == a.channels and det in a.detectors else Analysis(
                cfg, detectors=[det], channels=chans, tables=a.tables, progress=progress, log=log)
            tag = f"electron_{det}_{'+'.join(chans)}"
            lims.append({p: save(an.limits(p, detectors=det), f"{tag}_{p}.h5") for p in ELECTRON_PARAMS})
            regs.append(save(an.region(ELECTRON_PARAMS, detectors=det, points=points), f"{tag}_region.h5"))
        figures.append({"name": f"{det.lower()}_electron", "draw": "electron", "detector": det,
                        "channel_sets": [list(c) for c in sets], "params": list(ELECTRON_PARAMS),
                        "limits": lims, "regions": regs})
    for det in names:
        files = []
        for k, q in enumerate((0.0,) + XSEC_CHARGES):
            v = xsec_view(cfg, det, XSEC_ENU, "e", charges={"q_ee": q} if q else {}, points=400)
            v.save(outdir / f"xsec_{det}_{k}.h5", config=cfg, force=True)
            files.append(f"xsec_{det}_{k}.h5")
        figures.append({"name": f"xsec_{det}", "draw": "xsec", "files": files})
    bar.update()
