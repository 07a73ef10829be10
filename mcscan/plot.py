"""matplotlib figures (the only module that imports matplotlib, lazily).

Every function draws from data already computed: a results file written by
``mcscan sensitivities``/``scan``/``region``/``figures`` (read with
:func:`mcscan.io.tables.load_results`) or a view object.  Each figure is saved
as PNG and PDF.  Install with the ``plots`` extra.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .params import SPEC, display_scale, tex, visible_params

VISIBLE_PARAMS = visible_params(("e", "mu"))

__all__ = ["plot_xsec", "plot_profiles", "plot_regions", "plot_electron", "plot_xsec_file",
           "plot_all", "plot_sweep"]

_DIAG = tuple(p for p in VISIBLE_PARAMS if SPEC[p].diagonal)
_TRANS = tuple(p for p in VISIBLE_PARAMS if not SPEC[p].diagonal)
_TEX = {"q_ee": r"q_{ee}", "q_mumu": r"q_{\mu\mu}", "q_tautau": r"q_{\tau\tau}",
        "q_emu": r"q_{e\mu}", "q_etau": r"q_{e\tau}", "q_mutau": r"q_{\mu\tau}"}
_COLORS = {"CsI": "C0", "Xe": "C1", "Ge": "C2", "combined": "k"}


def _order(name):
    row = name.split("/")[0]
    known = list(_COLORS)
    return (known.index(row) if row in known else len(known), name)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        from .errors import McscanError

        raise McscanError("plotting needs matplotlib: pip install 'mcscan[plots]'") from None
    return plt


def _save(fig, path, formats=(".png", ".pdf")):
    """Save atomically in each format; returns the written paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    suffixes = (path.suffix,) if path.suffix else formats
    for suf in suffixes:
        target = path.with_suffix(suf)
        tmp = target.with_name(f".{target.stem}.tmp{suf}")
        fig.savefig(tmp, dpi=150, bbox_inches="tight")
        tmp.replace(target)
        out.append(target)
    return out


def _scale(p):
    return display_scale(p)


def _label(p, s=None):
    s = s or _scale(p)
    return rf"${tex(p)}$ [$10^{{{int(round(np.log10(s)))}}}\,e$]"


def plot_xsec(view, path):
    """dsigma/dT against recoil energy, SM and with charges, from an XsecView."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    unit = "keVnr" if view.channel == "nuclear" else "keVee"
    ax.loglog(view.T_kev, view.sm, label="Standard Model", color="k")
    label = ", ".join(f"{k} = {v:.3g} e" for k, v in view.charges.items()) or "no charges"
    ax.loglog(view.T_kev, view.bsm, label=label, color="C3", ls="--")
    nu = ("anti-" if view.antineutrino else "") + {"e": "nu_e", "mu": "nu_mu", "tau": "nu_tau"}[view.flavour]
    ax.set_title(f"{view.target}, {view.channel} channel, {nu}, E = {view.enu_mev:g} MeV")
    ax.set_xlabel(f"recoil energy T [{unit}]")
    ax.set_ylabel(r"$d\sigma/dT$ [cm$^2$ / keV per formula unit]")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    out = _save(fig, path)
    plt.close(fig)
    return out[0]


def _profiles_from(results):
    """{row: {param: (x, dchi2, level, cl)}} from a sensitivities-layout file."""
    out = {}
    for name, g in sorted(results["groups"].items(), key=lambda kv: _order(kv[0])):
        if "/" not in name or "x" not in g["data"]:
            continue
        row, p = name.split("/", 1)
        out.setdefault(row, {})[p] = (g["data"]["x"], g["data"]["delta_chi2"],
                                      float(g["attrs"]["delta_chi2_level"]), float(g["attrs"]["cl"]))
    return out


def _profile_panel(ax, curves, p, title=None, colors=None, scale=None, labels=None):
    level = cl = None
    scale = scale or _scale(p)
    for row, (x, d, level, cl) in curves.items():
        ax.plot(x / scale, d, label=(labels or {}).get(row, row), color=(colors or _COLORS).get(row))
    if level is not None:
        ax.axhline(level, color="gray", ls=":", lw=1.2)
        ax.text(0.02, level, f" {cl:.0%} C.L.", transform=ax.get_yaxis_transform(),
                va="bottom", color="gray")
    ax.set_xlabel(_label(p, scale) if labels is None else rf"charge [$10^{{{int(round(np.log10(scale)))}}}\,e$]")
    ax.set_ylabel(r"$\Delta\chi^2$")
    ax.set_ylim(0, 3.5 * (level or 2.71))
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)


def _xlim_from(curves, p, level, scale=None):
    lo, hi = np.inf, -np.inf
    for x, d, *_ in curves.values():
        inside = x[d <= 3.5 * level]
        if inside.size:
            lo, hi = min(lo, inside.min()), max(hi, inside.max())
    scale = scale or _scale(p)
    return lo / scale, hi / scale


def plot_profiles(results, outdir):
    """Delta chi2 profiles, detectors overlaid: one figure for the diagonal and
    one for the transition charges. ``results``: load_results() of a
    sensitivities-layout file. Returns the written paths."""
    plt = _pyplot()
    prof = _profiles_from(results)
    written = []
    for name, params in (("profiles_diagonal", _DIAG), ("profiles_transition", _TRANS)):
        params = [p for p in params if any(p in v for v in prof.values())]
        if not params:
            continue
        fig, axes = plt.subplots(1, len(params), figsize=(5 * len(params), 4), squeeze=False)
        for ax, p in zip(axes[0], params):
            curves = {row: v[p] for row, v in prof.items() if p in v}
            _profile_panel(ax, curves, p)
            level = next(iter(curves.values()))[2]
            ax.set_xlim(*_xlim_from(curves, p, level))
        fig.suptitle("ESS, 3 years: expected $\\Delta\\chi^2$ profiles (others fixed at 0)")
        fig.tight_layout()
        written += _save(fig, Path(outdir) / name)
        plt.close(fig)
    return written


def _regions_from(results):
    """{pair: {row: (polygons, holes, attrs)}} from a regions file."""
    out = {}
    for name, g in sorted(results["groups"].items(), key=lambda kv: _order(kv[0])):
        if "n_polygons" not in g["attrs"]:
            continue
        row, pair = name.split("/", 1)
        n = int(g["attrs"]["n_polygons"])
        polys = [g["data"][f"polygon_{i}"] for i in range(n)]
        holes = [[v for k, v in g["data"].items() if k.startswith(f"polygon_{i}_hole_")] for i in range(n)]
        out.setdefault(pair, {})[row] = (polys, holes, g["attrs"])
    return out


def _region_panel(ax, rows, colors=None, scale=None):
    import json

    params = None
    for row, (polys, holes, attrs) in rows.items():
        params = json.loads(attrs["params"]) if isinstance(attrs["params"], str) else list(attrs["params"])
        c = (colors or _COLORS).get(row, None)
        for i, poly in enumerate(polys):
            s0, s1 = scale or _scale(params[0]), scale or _scale(params[1])
            ax.fill(poly[:, 0] / s0, poly[:, 1] / s1, color=c, alpha=0.15, lw=0)
            ax.plot(poly[:, 0] / s0, poly[:, 1] / s1, color=c, lw=1.5, label=row if i == 0 else None)
            for h in holes[i]:
                ax.plot(h[:, 0] / s0, h[:, 1] / s1, color=c, lw=1.0, ls="--")
        cl = float(attrs["cl"])
    ax.plot([0], [0], marker="*", color="k", ls="none", ms=9, label="SM")
    ax.set_xlabel(_label(params[0], scale))
    ax.set_ylabel(_label(params[1], scale))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title=f"{cl:.0%} C.L. (2 d.o.f.)", title_fontsize=8,
              loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def plot_regions(results, outdir):
    """Allowed regions, detectors overlaid, one figure per parameter pair."""
    plt = _pyplot()
    written = []
    for pair, rows in _regions_from(results).items():
        fig, ax = plt.subplots(figsize=(5.6, 4.8))
        _region_panel(ax, rows)
        ax.set_title("ESS, 3 years: expected allowed regions (others fixed at 0)", fontsize=10)
        written += _save(fig, Path(outdir) / f"region_{pair.replace('-', '_')}")
        plt.close(fig)
    return written


def plot_electron(profiles, regions, outdir):
    """A detector with and without the electron channel: profiles of q_ee and
    q_mumu (top), and a zoom on the much narrower combined-channel profiles
    and region (bottom)."""
    plt = _pyplot()
    prof = _profiles_from(profiles)
    regs = _regions_from(regions)
    rows = sorted(prof, key=len)                       # "<det>_nuclear" first
    colors = {rows[0]: "C0", rows[-1]: "C3"}
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    for ax, p in zip(axes[0], ("q_ee", "q_mumu")):
        curves = {row: prof[row][p] for row in rows if p in prof[row]}
        _profile_panel(ax, curves, p, colors=colors)
        ax.set_xlim(*_xlim_from(curves, p, next(iter(curves.values()))[2]))
    # zoom: the combined-channel curves of both charges on their own scale
    both = rows[-1]
    zoom = {p: prof[both][p] for p in ("q_ee", "q_mumu") if p in prof[both]}
    lo, hi = _xlim_from(zoom, "q_ee", next(iter(zoom.values()))[2], scale=1.0)
    zs = 10.0 ** np.floor(np.log10(max(abs(lo), abs(hi))))
    _profile_panel(axes[1, 0], zoom, "q_ee", colors={"q_ee": "C3", "q_mumu": "C4"}, scale=zs,
                   labels={"q_ee": rf"$q_{{ee}}$ ({both})", "q_mumu": rf"$q_{{\mu\mu}}$ ({both})"})
    axes[1, 0].set_xlim(lo / zs, hi / zs)
    for pair, rr in regs.items():
        _region_panel(axes[1, 1], {both: rr[both]} if both in rr else rr, colors=colors, scale=zs)
    axes[1, 1].set_title(f"allowed region, {both}", fontsize=10)
    fig.suptitle("CsI: nuclear recoils alone and with neutrino-electron scattering")
    fig.tight_layout()
    written = _save(fig, Path(outdir) / "csi_electron")
    plt.close(fig)
    return written


def plot_xsec_file(results, outdir):
    """dsigma/dT for each target in an xsec results file, SM and several charges."""
    plt = _pyplot()
    written = []
    for target, g in results["groups"].items():
        d, a = g["data"], g["attrs"]
        fig, ax = plt.subplots(figsize=(6, 4.2))
        T = d["T_kev"]
        ax.loglog(T, d["sm"], color="k", lw=2, label="Standard Model")
        keys = sorted((k for k in d if k.startswith("q_")), key=lambda k: float(k.split("=")[1]))
        for i, k in enumerate(keys):
            q = float(k.split("=")[1])
            ax.loglog(T, d[k], color=f"C{i}", ls="--",
                      label=rf"${tex(k.split('=')[0])} = {q / 1e-9:+g}\times10^{{-9}}\,e$")
        ax.set_xlabel("nuclear recoil energy T [keVnr]")
        ax.set_ylabel(r"$d\sigma/dT$ [cm$^2$/keV per atom]")
        ax.set_title(rf"{target}: $\nu_e$ CEvNS at $E_\nu$ = {float(a['enu_mev']):g} MeV")
        ax.set_ylim(np.max(d["sm"]) * 1e-3, np.max([np.max(d[k]) for k in keys] + [np.max(d["sm"])]) * 3)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        written += _save(fig, Path(outdir) / f"xsec_{target}")
        plt.close(fig)
    return written


def plot_all(folder, outdir=None):
    """Draw every figure whose results file is in ``folder``."""
    from .io.tables import load_results

    folder = Path(folder)
    outdir = Path(outdir or folder)
    written = []
    if (folder / "profiles.h5").is_file():
        written += plot_profiles(load_results(folder / "profiles.h5"), outdir)
    if (folder / "regions.h5").is_file():
        written += plot_regions(load_results(folder / "regions.h5"), outdir)
    if (folder / "csi_electron.h5").is_file() and (folder / "csi_electron_regions.h5").is_file():
        written += plot_electron(load_results(folder / "csi_electron.h5"),
                                 load_results(folder / "csi_electron_regions.h5"), outdir)
    if (folder / "xsec.h5").is_file():
        written += plot_xsec_file(load_results(folder / "xsec.h5"), outdir)
    return written


def plot_sweep(results, outdir):
    """Allowed interval of each charge against the first varied value of a sweep
    (``load_results()`` of a file of :func:`mcscan.scans.sweep.save_sweep`): the lower and
    upper ends of the allowed set, the band between them shaded; one curve per
    combination of the other varied values.  One figure ``sweep_<param>`` per charge
    (PNG and PDF, imports matplotlib).  Returns the written paths."""
    import json

    plt = _pyplot()

    def load(v):
        return json.loads(v) if isinstance(v, str) else list(v)

    written = []
    for name, g in sorted(results["groups"].items()):
        if not name.startswith("sweep/") or "lower" not in g["data"]:
            continue
        a, d = g["attrs"], g["data"]
        p = str(a["param"])
        labels, units = load(a["vary_labels"]), load(a["vary_units"])
        values = np.asarray(d["values"], dtype=float).reshape(len(d["lower"]), -1)
        # x: the first varied value that takes more than one value
        ix = next((i for i in range(values.shape[1]) if np.unique(values[:, i]).size > 1), 0)
        rest = [i for i in range(values.shape[1]) if i != ix]
        combos = sorted({tuple(row[rest]) for row in values})
        s = _scale(p)
        fig, ax = plt.subplots(figsize=(6, 4.2))
        for c, combo in enumerate(combos):
            sel = np.all(values[:, rest] == np.array(combo), axis=1) if rest else np.ones(len(values), bool)
            order = np.argsort(values[sel, ix])
            x = values[sel, ix][order]
            lo, hi = d["lower"][sel][order] / s, d["upper"][sel][order] / s
            lab = ", ".join(f"{labels[i]} = {v:g}" for i, v in zip(rest, combo)) or None
            ax.fill_between(x, lo, hi, color=f"C{c}", alpha=0.15, lw=0)
            ax.plot(x, hi, color=f"C{c}", marker="o", ms=3, label=lab)
            ax.plot(x, lo, color=f"C{c}", marker="o", ms=3)
        ax.axhline(0.0, color="gray", lw=0.8)
        unit = f" [{units[ix]}]" if units[ix] else ""
        ax.set_xlabel(f"{labels[ix]}{unit}")
        ax.set_ylabel(f"allowed {_label(p)}")
        dets = " + ".join(load(a["detectors"]))
        ax.set_title(f"{dets}: {float(a['cl']):.0%} C.L. allowed interval of ${tex(p)}$", fontsize=10)
        ax.grid(alpha=0.3)
        if len(combos) > 1:
            ax.legend(fontsize=8)
        written += _save(fig, Path(outdir) / f"sweep_{p}")
        plt.close(fig)
    return written
