#!/usr/bin/env python
"""Draw dsigma/dT, Standard Model and with charges, from cross-section results files.

    python scripts/plot_xsec.py XSEC.h5 [XSEC.h5 ...] [--out FIGURE.png]

Each file is a results file of kind "xsec" (layout in docs/results.md), all
of the same target: the Standard Model
curve of the first file is drawn once, then each file's curve with charges.
Cross sections are per formula unit of the target.  This script reads the
files with h5py alone: copy it and change it freely.
"""
import argparse
import sys
from pathlib import Path

import h5py

TEX = {"q_ee": r"q_{ee}", "q_mumu": r"q_{\mu\mu}", "q_tautau": r"q_{\tau\tau}",
       "q_emu": r"q_{e\mu}", "q_etau": r"q_{e\tau}", "q_mutau": r"q_{\mu\tau}"}
NU = {"e": r"\nu_e", "mu": r"\nu_\mu", "tau": r"\nu_\tau"}


def fail(msg):
    sys.exit(f"plot_xsec.py: {msg}")


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def read(path):
    if not path.is_file():
        fail(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            kind = text(f.attrs.get("kind", ""))
            if kind != "xsec":
                fail(f"{path}: results of kind {kind!r}: expected 'xsec'")
            g = f["xsec"]
            a = g.attrs
            charges = {text(n): float(v) for n, v in zip(a["charge_names"], a["charge_values"]) if v != 0}
            return {"target": text(a["target"]), "channel": text(a["channel"]),
                    "enu": float(a["enu_mev"]), "flavour": text(a["flavour"]),
                    "anti": bool(a["antineutrino"]), "charges": charges,
                    "T": g["T_kev"][()], "sm": g["sm"][()], "bsm": g["with_charges"][()]}
    except (OSError, KeyError) as e:
        fail(f"{path}: not a readable results file ({e})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="results files of kind xsec")
    ap.add_argument("--out", help="figure file (.png or .pdf; default: beside the first file)")
    a = ap.parse_args(argv)
    views = [read(Path(p)) for p in a.results]
    v0 = views[0]
    if any(v["target"] != v0["target"] or v["channel"] != v0["channel"] for v in views):
        fail("the files hold different targets or channels: expected one target and channel")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.8, 4.2))
    ax.loglog(v0["T"], v0["sm"], color="k", lw=2.2, label="Standard Model")
    top = v0["sm"].max()
    for i, v in enumerate(x for x in views if x["charges"]):
        label = ", ".join(rf"${TEX[p]} = {q:.3g}\,e$" for p, q in v["charges"].items())
        ax.loglog(v["T"], v["bsm"], color=f"C{i}", ls="--", lw=1.5, label=label)
        top = max(top, v["bsm"].max())
    unit = "keVnr" if v0["channel"] == "nuclear" else "keVee"
    ax.set_ylim(v0["sm"].max() * 1e-3, top * 3)
    ax.set_xlabel(f"{v0['channel']} recoil energy $T$ [{unit}]")
    ax.set_ylabel(r"$d\sigma/dT$ [cm$^2$ keV$^{-1}$ per formula unit]")
    nu = NU[v0["flavour"]].replace(r"\nu", r"\bar\nu") if v0["anti"] else NU[v0["flavour"]]
    ax.set_title(rf"{v0['target']}: ${nu}$, $E_\nu$ = {v0['enu']:g} MeV", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    out = Path(a.out) if a.out else Path(a.results[0]).with_suffix(".png")
    fig.savefig(out, dpi=200, bbox_inches="tight")
    print(out)


if __name__ == "__main__":
    main()
