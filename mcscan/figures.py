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
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

__all__ = ["compute_figure_data", "REGION_PAIRS", "ELECTRON_PARAMS", "XSEC_CHARGES", "XSEC_ENU"]

REGION_PAIRS = (("q_ee", "q_mumu"), ("q_etau", "q_mutau"))
#: Charges of the electron-channel figure.
ELECTRON_PARAMS = ("q_ee", "q_mumu")
#: Values of q_ee drawn in the cross-section figures (nu_e), e.
XSEC_CHARGES = (-1e-8, 5e-9, 1e-8, 2e-8)
#: Neutrino energy of the cross-section figures, MeV.
XSEC_ENU = 40.0


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


def compute_figure_data(config=None, outdir="figures", *, tables_dir=None, progress=True, log=None,
                        points=201) -> dict:
    """Build missing tables and compute every result of the figure set into ``outdir``.

    ``config``: a Config, a TOML path or None (built-in); ``tables_dir``: the
    tables folder (default as :class:`mcscan.Analysis`); ``points``: grid
    points per axis of the regions.  Existing files in ``outdir`` are
    replaced.  Returns {figure name: [file names]}.
    """
    from tqdm.auto import tqdm

    from .api import Analysis
    from .physics.spectra import xsec_view

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    a = Analysis(config, tables=tables_dir, progress=progress, log=log)
    cfg = a.config
    names = list(a.detectors)
    rows = [(n, n) for n in names] + ([("combined", names)] if len(names) > 1 else [])
    electron = [n for n in cfg.detectors if "electron" in cfg.detector(n).channels]
    n_steps = 1 + len(rows) * len(REGION_PAIRS) + (2 * (len(ELECTRON_PARAMS) + 1) if electron else 0) + 1
    bar = tqdm(total=n_steps, desc="figure data", disable=not progress)
    figures = []

    def save(obj, name):
        obj.save(outdir / name, config=cfg, force=True)
        bar.update()
        return name

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
    bar.close()
    _write_json(outdir / "figures.json", {"figures": figures})
    return {f["name"]: f for f in figures}
