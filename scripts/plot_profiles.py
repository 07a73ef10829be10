#!/usr/bin/env python
"""Draw Delta chi2 profiles of each charge, detectors overlaid, from results files.

    python scripts/plot_profiles.py RESULTS.h5 [--out FIGURE.png]

RESULTS.h5 is a results file of kind "sensitivities" or "limits" (layout in
docs/results.md).  This
script reads the file with h5py alone: copy it and change it freely.
"""
import argparse
import sys
from pathlib import Path

import h5py
import numpy as np

COLORS = {"CsI": "C0", "Xe": "C1", "Ge": "C2", "combined": "k"}
TEX = {"q_ee": r"q_{ee}", "q_mumu": r"q_{\mu\mu}", "q_tautau": r"q_{\tau\tau}",
       "q_emu": r"q_{e\mu}", "q_etau": r"q_{e\tau}", "q_mutau": r"q_{\mu\tau}"}
SCALE = {"q_ee": -9, "q_mumu": -9, "q_tautau": -9, "q_emu": -8, "q_etau": -8, "q_mutau": -8}


def fail(msg):
    sys.exit(f"plot_profiles.py: {msg}")


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def run_title(f):
    """'ESS, 3 years' from the configuration stored in the file (empty if none)."""
    if "config/source" not in f:
        return ""
    src = f["config/source"].attrs
    years = float(src["years"]) if "years" in src else None
    name = text(src["name"]) if "name" in src else ""
    return ", ".join(x for x in (name, f"{years:g} years" if years else "") if x)


def curves(f):
    """{param: [(label, x, delta_chi2, level, cl)]} from a sensitivities or limits file."""
    kind = text(f.attrs.get("kind", ""))
    out = {}
    if kind == "sensitivities":
        g = f["sensitivities"]
        rows = [text(r) for r in g.attrs["rows"]]
        params = [text(p) for p in g.attrs["params"]]
        groups = [(r, p, g[f"{r}/{p}"]) for r in rows for p in params if f"{r}/{p}" in g]
    elif kind == "limits":
        g = f["limit"]
        dets = [text(d) for d in g.attrs["detectors"]]
        groups = [(dets[0] if len(dets) == 1 else "combined", text(g.attrs["param"]), g)]
    else:
        fail(f"{f.filename}: results of kind {kind!r}: expected 'sensitivities' or 'limits'")
    for row, p, g in groups:
        out.setdefault(p, []).append((row, g["x"][()], g["delta_chi2"][()],
                                      float(g.attrs["delta_chi2"]), float(g.attrs["cl"])))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", help="results file of kind sensitivities or limits")
    ap.add_argument("--out", help="figure file (.png or .pdf; default: beside the results file)")
    a = ap.parse_args(argv)
    path = Path(a.results)
    if not path.is_file():
        fail(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            data, run = curves(f), run_title(f)
    except (OSError, KeyError) as e:
        fail(f"{path}: not a readable results file ({e})")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = list(data)
    fig, axes = plt.subplots(1, len(params), figsize=(4.4 * len(params) + 0.4, 3.9), squeeze=False)
    extra = iter(f"C{i}" for i in range(3, 10))
    colors = dict(COLORS)
    for ax, p in zip(axes[0], params):
        s = 10.0 ** SCALE[p]
        for row, x, d, level, cl in data[p]:
            if row not in colors:
                colors[row] = next(extra, None)
            ax.plot(x / s, d, color=colors[row], lw=2.2 if row == "combined" else 1.6, label=row)
        ax.axhline(level, color="gray", ls=":", lw=1.2)
        ax.text(0.98, level, f"{cl:.0%} C.L.", transform=ax.get_yaxis_transform(), ha="right",
                va="bottom", color="gray", fontsize=8)
        near = np.concatenate([x[d <= 4 * level] for _, x, d, _, _ in data[p]]) / s
        if near.size:
            pad = 0.08 * (near.max() - near.min())
            ax.set_xlim(near.min() - pad, near.max() + pad)
        ax.set_ylim(0, 3.5 * level)
        ax.set_xlabel(rf"${TEX[p]}$ [$10^{{{SCALE[p]}}}\,e$]")
        ax.set_ylabel(r"$\Delta\chi^2$")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle((run + ": " if run else "") + r"expected $\Delta\chi^2$ profiles", fontsize=10)
    fig.tight_layout()
    out = Path(a.out) if a.out else path.with_suffix(".png")
    fig.savefig(out, dpi=200, bbox_inches="tight")
    print(out)


if __name__ == "__main__":
    main()
