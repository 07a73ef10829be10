"""Data for the standard figure set: every scan the figures need, saved as
HDF5 results files that :mod:`mcscan.plot` (and ``scripts/plot_results.py``)
draw from.  No matplotlib here.

Files written into the output folder:

* ``profiles.h5``: Delta chi2 profiles of the five visible charges for each
  detector and their combination (layout of ``mcscan sensitivities``);
* ``regions.h5``: 90% C.L. regions in (q_ee, q_mumu) and (q_etau, q_mutau)
  for each detector and combined, groups ``<row>/<p0>-<p1>``;
* ``csi_electron.h5``: CsI profiles of q_ee and q_mumu with and without the
  electron channel (rows ``CsI_nuclear``, ``CsI_nuclear+electron``) and
  ``csi_electron_regions.h5`` the (q_ee, q_mumu) regions;
* ``xsec.h5``: dsigma/dT for Ge and Cs at one neutrino energy, SM and
  several charges.
"""
from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from .api import (Sensitivities, build_tables, limits, region, save_region,
                       save_sensitivities, sensitivities)
from .physics.spectra import xsec_view
from .io.tables import save_results

__all__ = ["compute_figure_data", "REGION_PAIRS", "XSEC_CHARGES"]

REGION_PAIRS = (("q_ee", "q_mumu"), ("q_etau", "q_mutau"))
#: Charges drawn in the cross-section figures (nu_e, E = 40 MeV), e.
XSEC_CHARGES = (-1e-8, 5e-9, 1e-8, 2e-8)
XSEC_ENU = 40.0


def compute_figure_data(config, outdir, *, tables_dir="tables", progress=True, log=None) -> dict:
    """Build tables and run every scan of the figure set; returns {name: path}."""
    outdir = Path(outdir)
    names = list(config.detectors)
    steps = tqdm(total=5, desc="figure data", disable=not progress)
    paths = {}
    build_tables(config, names, tables_dir, progress=False, log=log)
    steps.update()
    sens = sensitivities(config, tables_dir=tables_dir, progress=False)
    paths["profiles"] = save_sensitivities(sens, outdir / "profiles.h5", config)
    steps.update()
    rows = [[n] for n in names] + ([names] if len(names) > 1 else [])
    regs = {}
    for r in rows:
        label = r[0] if len(r) == 1 else "combined"
        for pair in REGION_PAIRS:
            regs[f"{label}/{pair[0]}-{pair[1]}"] = region(config, r, pair, tables_dir=tables_dir)
    paths["regions"] = save_region(outdir / "regions.h5", regs, config)
    steps.update()
    el = [n for n in names if "electron" in config.detector(n).channels]
    if el:
        d = el[0]
        lims, eregs = {}, {}
        for chans, label in ((("nuclear",), f"{d}_nuclear"),
                             (("nuclear", "electron"), f"{d}_nuclear+electron")):
            for p in ("q_ee", "q_mumu"):
                lims[(label, p)] = limits(config, [d], p, tables_dir=tables_dir, channels=chans)
            eregs[f"{label}/q_ee-q_mumu"] = region(config, [d], ("q_ee", "q_mumu"),
                                                   tables_dir=tables_dir, channels=chans)
        sens_e = Sensitivities(sens.cl, ("nuclear", "electron"),
                               (f"{d}_nuclear", f"{d}_nuclear+electron"), ("q_ee", "q_mumu"), lims)
        paths["csi_electron"] = save_sensitivities(sens_e, outdir / "csi_electron.h5", config)
        paths["csi_electron_regions"] = save_region(outdir / "csi_electron_regions.h5", eregs, config)
    steps.update()
    groups = {}
    for target in ("Ge", "Cs"):
        for q in (0.0,) + XSEC_CHARGES:
            v = xsec_view(config, target, XSEC_ENU, "e", charges={"q_ee": q}, points=400)
            g = groups.setdefault(target, {"attrs": {"enu_mev": XSEC_ENU, "flavour": "e",
                                                     "channel": "nuclear", "param": "q_ee",
                                                     "charges": list(XSEC_CHARGES)},
                                           "data": {"T_kev": (v.T_kev, "keV")}})
            key = "sm" if q == 0.0 else f"q_ee={q:g}"
            g["data"][key] = (v.bsm, "cm^2/keV per formula unit")
    paths["xsec"] = save_results(outdir / "xsec.h5", groups, {"kind_detail": "xsec"})
    steps.update()
    steps.close()
    return paths
