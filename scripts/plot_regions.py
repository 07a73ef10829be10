#!/usr/bin/env python
"""Draw allowed regions of two charges, one or more results files overlaid.

    python scripts/plot_regions.py REGION.h5 [REGION.h5 ...] [--out FIGURE.png]

Each file is a results file of kind "region" (layout in docs/results.md),
all of the same two charges.  This script reads the files
with h5py alone: copy it and change it freely.
"""
import argparse
import sys
from pathlib import Path

import h5py

COLORS = {"CsI": "C0", "Xe": "C1", "Ge": "C2", "combined": "k"}
TEX = {"q_ee": r"q_{ee}", "q_mumu": r"q_{\mu\mu}", "q_tautau": r"q_{\tau\tau}",
       "q_emu": r"q_{e\mu}", "q_etau": r"q_{e\tau}", "q_mutau": r"q_{\mu\tau}"}
SCALE = {"q_ee": -9, "q_mumu": -9, "q_tautau": -9, "q_emu": -8, "q_etau": -8, "q_mutau": -8}


def fail(msg):
    sys.exit(f"plot_regions.py: {msg}")


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def read(path):
    """(label, params, cl, [(outer, [holes])], run title) of one region file."""
    if not path.is_file():
        fail(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            kind = text(f.attrs.get("kind", ""))
            if kind != "region":
                fail(f"{path}: results of kind {kind!r}: expected 'region'")
            g = f["region"]
            dets = [text(d) for d in g.attrs["detectors"]]
            chans = [text(c) for c in g.attrs["channels"]]
            label = dets[0] if len(dets) == 1 else "combined"
            if chans != ["nuclear"]:
                label += ", " + " + ".join(chans)
            polys = []
            for i in range(int(g.attrs["n_polygons"])):
                pg = g[f"polygons/{i}"]
                holes = [pg[k][()] for k in sorted(pg) if k.startswith("hole_")]
                polys.append((pg["outer"][()], holes))
            run = ""
            if "config/source" in f:
                src = f["config/source"].attrs
                run = f"{text(src['name'])}, {float(src['years']):g} years"
            return label, [text(p) for p in g.attrs["params"]], float(g.attrs["cl"]), polys, run
    except (OSError, KeyError) as e:
        fail(f"{path}: not a readable results file ({e})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="results files of kind region")
    ap.add_argument("--out", help="figure file (.png or .pdf; default: beside the first file)")
    a = ap.parse_args(argv)
    regions = [read(Path(p)) for p in a.results]
    params = regions[0][1]
    if any(r[1] != params for r in regions):
        fail("the files hold regions of different charges: expected one pair of charges")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sx, sy = 10.0 ** SCALE[params[0]], 10.0 ** SCALE[params[1]]
    fig, ax = plt.subplots(figsize=(5.8, 4.8))
    extra = iter(f"C{i}" for i in range(3, 10))
    for label, _, cl, polys, _ in regions:
        c = COLORS.get(label.split(",")[0]) or next(extra, "C9")
        for i, (outer, holes) in enumerate(polys):
            ax.fill(outer[:, 0] / sx, outer[:, 1] / sy, color=c, alpha=0.15, lw=0)
            ax.plot(outer[:, 0] / sx, outer[:, 1] / sy, color=c, lw=1.6, label=label if i == 0 else None)
            for h in holes:
                ax.plot(h[:, 0] / sx, h[:, 1] / sy, color=c, lw=1.0, ls="--")
    ax.plot([0], [0], marker="*", color="k", ls="none", ms=9, label="Standard Model")
    ax.set_xlabel(rf"${TEX[params[0]]}$ [$10^{{{SCALE[params[0]]}}}\,e$]")
    ax.set_ylabel(rf"${TEX[params[1]]}$ [$10^{{{SCALE[params[1]]}}}\,e$]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title=f"{regions[0][2]:.0%} C.L., 2 d.o.f.", title_fontsize=8,
              loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    run = regions[0][4]
    ax.set_title((run + ": " if run else "") + "expected allowed regions", fontsize=10)
    out = Path(a.out) if a.out else Path(a.results[0]).with_suffix(".png")
    fig.savefig(out, dpi=200, bbox_inches="tight")
    print(out)


if __name__ == "__main__":
    main()
