"""Figures of results (the only module that imports matplotlib, lazily).

One entry point draws any results file: :func:`plot_file` opens it with
:func:`mcscan.open_results` and dispatches on its ``kind``:

=================  ===========================================================
kind               figure(s)
=================  ===========================================================
``scan``           1 charge: Delta chi2 profile; 2 charges: Delta chi2 map with
                   the 68/90/95% C.L. contours; more: every stored projection
``limits``         Delta chi2 profile with the allowed set shaded
``fc``             Feldman-Cousins limits: critical values t_c(theta) against
                   the Wilks level and the Wilks coverage with its Monte Carlo
                   error (:func:`plot_critical_values`)
``bands``          expected-limit bands (:func:`plot_bands`)
``region``         Delta chi2 map with the allowed region's boundary
``sensitivities``  Delta chi2 profiles, detectors overlaid: diagonal charges
                   and transition charges (other families: one figure each)
``sweep``          allowed interval of each charge against the varied value
``xsec``           dsigma/dT, Standard Model and with charges
=================  ===========================================================

:func:`plot_result` does the same for an object in memory, and
:func:`plot_folder` draws the standard figure set of
:func:`mcscan.figures.compute_figure_data`.  Titles (source, years), legend
names and colours come from the configuration stored in the results file;
parameters of every family are labelled with their symbol and display unit
(:mod:`mcscan.params`).  :func:`plot_regions`, :func:`plot_profiles`,
:func:`plot_bands` and :func:`plot_critical_values` draw the figures of
several objects in memory (or, for bands and critical values, their JSON);
each detector keeps one colour in every figure (:func:`detector_colors`).
Every figure is written as PNG and PDF, atomically.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .errors import InputError, McscanError, ResultsError
from .params import SPEC, display_scale, tex

__all__ = [
    "BAND_COLORS",
    "COMBINED_COLOR",
    "FAMILY_TEXT",
    "FIGURE_SET",
    "channel_label",
    "detector_colors",
    "others_text",
    "param_label",
    "plot_all",
    "plot_bands",
    "plot_critical_values",
    "plot_file",
    "plot_folder",
    "plot_profiles",
    "plot_regions",
    "plot_result",
    "row_label",
    "run_label",
    "title",
    "unit_tex",
]

#: Manifest of the standard figure set (written by mcscan.figures).
FIGURE_SET = "figures.json"

#: The first three detectors of the reference configuration keep the first
#: three colours of matplotlib's default cycle in every figure.
_FIXED = {"CsI": "#1f77b4", "Xe": "#ff7f0e", "Ge": "#2ca02c"}
#: The combination of detectors is drawn in black.
COMBINED_COLOR = "#000000"
# the rest of the default cycle (grey left out: it marks C.L. levels), then the
# lighter tab20 shades
_CYCLE = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
          "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
          "#dbdb8d", "#9edae5")
_SM_COLOR = "#000000"
_LEVEL_COLOR = "#7f7f7f"


# ---------------------------------------------------------------- names, colours, titles

def detector_colors(names) -> dict:
    """A distinct colour (hex) for each name: CsI, Xe and Ge keep matplotlib's
    C0, C1, C2; ``combined`` is black; any other detector takes the next free
    colour of a fixed cycle, in the order given (pass the configuration's
    detector order so a detector keeps its colour in every figure)."""
    out, used = {}, set()
    for n in names:
        if n in _FIXED:
            out[n] = _FIXED[n]
        elif n == "combined":
            out[n] = COMBINED_COLOR
        if n in out:
            used.add(out[n])
    free = iter(c for c in _CYCLE if c not in used)
    k = 0
    for n in names:
        if n in out:
            continue
        c = next(free, None)
        if c is None:      # beyond the cycle: hues spread by the golden angle, all distinct
            import colorsys

            h = (0.11 + 0.618033988749895 * k) % 1.0
            k += 1
            c = "#%02x%02x%02x" % tuple(round(255 * v) for v in colorsys.hsv_to_rgb(h, 0.75, 0.8))
            while c in used:  # pragma: no cover - needs hundreds of detectors
                h = (h + 0.013) % 1.0
                c = "#%02x%02x%02x" % tuple(round(255 * v) for v in colorsys.hsv_to_rgb(h, 0.75, 0.8))
        out[n] = c
        used.add(c)
    return out


#: Units as TeX (inside math mode).
_UNIT_TEX = {"e": "e", "cm^2": r"\mathrm{cm}^2", "mu_B": r"\mu_B", "1": ""}


def unit_tex(p: str) -> str:
    """Display unit of ``p`` as TeX (no dollar signs): ``10^{-9}\\,e``; ``""`` for a
    dimensionless parameter printed as it is."""
    exp = round(math.log10(display_scale(p)))
    u = _UNIT_TEX.get(SPEC[p].unit, rf"\mathrm{{{SPEC[p].unit}}}")
    if exp == 0:
        return u
    return rf"10^{{{exp}}}\,{u}" if u else rf"10^{{{exp}}}"


def param_label(p: str) -> str:
    """Axis label of a parameter in its display unit: ``$q_{ee}$ [$10^{-9}\\,e$]``,
    ``$\\langle r^2\\rangle_{ee}$ [$10^{-32}\\,\\mathrm{cm}^2$]``; a dimensionless
    parameter shown as it is has no unit: ``$\\varepsilon^{uV}_{ee}$``."""
    u = unit_tex(p)
    return rf"${tex(p)}$ [${u}$]" if u else rf"${tex(p)}$"


def others_text(params) -> str:
    """How the parameters not shown are set: charges at 0, others at their SM values."""
    if all(SPEC[p].family == "charges" for p in params):
        return "other charges fixed at 0"
    return "other parameters at their Standard Model values"


def channel_label(channels) -> str:
    """``('nuclear', 'electron')`` -> ``'nuclear + electron'``."""
    return " + ".join(channels)


def row_label(row: str, channels=None, config=None) -> str:
    """Legend name of a detector row: ``CsI``, ``CsI, nuclear + electron``,
    ``combined``; with ``config``, a detector's mass is added (``Ge2 (10 kg)``).

    Old-style row names ``CsI_nuclear+electron`` are spelled out too."""
    name, chans = row, tuple(channels or ())
    if "_" in row and row.split("_", 1)[1].replace("+", "").isalpha() and \
            all(c in ("nuclear", "electron") for c in row.split("_", 1)[1].split("+")):
        name, chans = row.split("_", 1)[0], tuple(row.split("_", 1)[1].split("+"))
    text = name
    det = (_as_dict(config) or {}).get("detectors", {}).get(name)
    if det and "mass_kg" in det:
        text += f" ({float(det['mass_kg']):g} kg)"
    if chans and tuple(chans) != ("nuclear",):
        text += ", " + channel_label(chans)
    return text


def _years(y) -> str:
    y = float(y)
    return f"{y:g} year" + ("" if y == 1 else "s")


def run_label(config, years: bool = True) -> str:
    """``ESS, 3 years`` from a configuration (dict of Config.to_dict(), or a Config)."""
    config = _as_dict(config)
    if not config:
        return ""
    src = config.get("source", {})
    parts = [str(src["name"])] if src.get("name") else []
    if years and "years" in src:
        parts.append(_years(src["years"]))
    return ", ".join(parts)


def title(config, what: str, years: bool = True) -> str:
    """Figure title: ``ESS, 5 years: <what>`` (just ``what`` without a configuration;
    ``years=False`` leaves the years out, e.g. when a sweep varies them)."""
    run = run_label(config, years)
    return f"{run}: {what}" if run else what


def _as_dict(config):
    if config is None:
        return None
    if hasattr(config, "to_dict"):
        return config.to_dict()
    return dict(config)


def _detector_order(config, rows) -> list:
    """Names to colour, configuration order first, so colours agree between figures."""
    names = list((_as_dict(config) or {}).get("detectors", {}))
    for r in rows:
        if r not in names:
            names.append(r)
    return names


def _row_colors(config, rows) -> dict:
    base = {r: r.split("_", 1)[0] if "_" in r else r for r in rows}
    colors = detector_colors(_detector_order(config, list(dict.fromkeys(base.values()))))
    return {r: colors[b] for r, b in base.items()}


def _fmt_cl(cl) -> str:
    return f"{float(cl) * 100:g}% C.L."


# ---------------------------------------------------------------- matplotlib plumbing

def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        raise McscanError("plotting needs matplotlib: pip install matplotlib") from None
    plt.rcParams.update({"font.size": 10, "axes.titlesize": 10, "legend.fontsize": 8,
                         "figure.dpi": 100, "savefig.dpi": 200, "axes.grid": True,
                         "grid.alpha": 0.3, "legend.framealpha": 0.9})
    return plt


def _save(fig, path, formats=(".png", ".pdf")) -> list:
    """Save atomically in each format (temp file, then rename); returns the paths."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for suf in ((path.suffix,) if path.suffix in (".png", ".pdf", ".svg") else formats):
        target = path.with_name(path.name if path.suffix == suf else path.name + suf)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{suf}", dir=target.parent)
        os.close(fd)
        try:
            fig.savefig(tmp, bbox_inches="tight", format=suf[1:])
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        out.append(target)
    return out


def _finish(plt, fig, path) -> list:
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- data out of result objects

def _limit_curve(lim):
    """(x in e, Delta chi2, level, cl) of a Limit."""
    scan = lim.scan
    x = np.asarray(scan.axes[0], dtype=float)
    chi2 = np.asarray(scan.chi2, dtype=float)
    return x, chi2 - float(lim.chi2_min), float(lim.delta_chi2), float(lim.cl)


def _level(cl, dof):
    from .scans.limits import delta_chi2_level

    return delta_chi2_level(cl, dof)


def _levels_of(obj, dof) -> dict:
    """{cl: Delta chi2} of a scan or projection: its own stored levels, else 68/90/95% for dof."""
    lv = getattr(obj, "cl_levels", None)
    if isinstance(lv, dict) and lv:
        return {float(k): float(v) for k, v in lv.items()}
    return {cl: _level(cl, dof) for cl in (0.68, 0.90, 0.95)}


def _xlim(curves, level, pad=0.08):
    """x range (e) where any curve is below 4 x level, padded; None if nowhere."""
    lo, hi = np.inf, -np.inf
    for x, d in curves:
        inside = x[np.isfinite(d) & (d <= 4.0 * level)]
        if inside.size:
            lo, hi = min(lo, inside.min()), max(hi, inside.max())
    if not np.isfinite(lo) or hi <= lo:
        return None
    w = hi - lo
    return lo - pad * w, hi + pad * w


# ---------------------------------------------------------------- panels

def _profile_panel(ax, curves, p, level, cl, *, shade=None):
    """Delta chi2 curves of charge ``p``: curves = [(x e, dchi2, label, colour, style)]."""
    s = display_scale(p)
    for x, d, label, color, style in curves:
        ax.plot(np.asarray(x) / s, d, label=label, color=color, **{"lw": 1.6, **(style or {})})
    for lo, hi in shade or ():
        ax.axvspan(lo / s, hi / s, color=curves[0][3], alpha=0.12, lw=0)
    ax.axhline(level, color=_LEVEL_COLOR, ls=":", lw=1.2)
    ax.annotate(_fmt_cl(cl), xy=(1.0, level), xycoords=("axes fraction", "data"), xytext=(-3, 3),
                textcoords="offset points", ha="right", va="bottom", color=_LEVEL_COLOR, fontsize=8)
    lim = _xlim([(np.asarray(c[0]), np.asarray(c[1])) for c in curves], level)
    if lim:
        ax.set_xlim(lim[0] / s, lim[1] / s)
    ax.set_ylim(0.0, 3.5 * level)
    ax.set_xlabel(param_label(p))
    ax.set_ylabel(r"$\Delta\chi^2$")


def _map_panel(fig, ax, x, y, dchi2, params, levels, *, cmap="viridis", vmax=None):
    """Delta chi2 map with C.L. contours; x, y in e; levels {cl: Delta chi2}."""
    sx, sy = display_scale(params[0]), display_scale(params[1])
    d = np.asarray(dchi2, dtype=float)
    top = vmax or 3.0 * max(levels.values())
    mesh = ax.pcolormesh(np.asarray(x) / sx, np.asarray(y) / sy, np.clip(d.T, 0, top), cmap=cmap,
                         vmin=0.0, vmax=top, shading="auto", rasterized=True)
    cb = fig.colorbar(mesh, ax=ax, extend="max", pad=0.02)
    cb.set_label(r"$\Delta\chi^2$")
    ordered = sorted(levels.items())
    styles = ("-",) if len(ordered) == 1 else ("--", "-", ":")
    for (cl, lv), ls in zip(ordered, styles):
        ax.contour(np.asarray(x) / sx, np.asarray(y) / sy, d.T, levels=[lv], colors="w",
                   linestyles=ls, linewidths=1.4)
        ax.plot([], [], color="w", ls=ls, lw=1.4, label=_fmt_cl(cl))
    ax.plot([_sm(params[0])], [_sm(params[1])], marker="*", color="w", mec="k", ls="none", ms=10,
            label="Standard Model")
    # zoom onto the part of the grid below 4 x the largest level, a little padded
    near = np.argwhere(np.isfinite(d) & (d <= 4.0 * max(levels.values())))
    if near.size:
        for k, (axis, setter, s) in enumerate(((x, ax.set_xlim, sx), (y, ax.set_ylim, sy))):
            axis = np.asarray(axis, dtype=float)
            lo, hi = axis[max(near[:, k].min() - 1, 0)], axis[min(near[:, k].max() + 1, axis.size - 1)]
            pad = 0.1 * (hi - lo)
            setter(max(lo - pad, axis[0]) / s, min(hi + pad, axis[-1]) / s)
    ax.set_xlabel(param_label(params[0]))
    ax.set_ylabel(param_label(params[1]))
    ax.grid(False)
    ax.legend(loc="upper right", facecolor="0.25", labelcolor="w", edgecolor="0.5")


def _sm(p) -> float:
    """Standard Model value of ``p`` in its display unit."""
    return SPEC[p].reference / display_scale(p)


def _region_outline(ax, region, color, label, *, fill=True, lw=1.6, ls="-", alpha=0.15):
    """Every allowed piece of a region: filled (holes left open, so regions drawn
    below stay visible), its boundary and its holes' boundaries drawn."""
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MPath

    sx, sy = display_scale(region.params[0]), display_scale(region.params[1])
    first = True
    for outer, holes in region.polygons:
        rings = [np.asarray(r, dtype=float) / (sx, sy) for r in (outer, *holes)]
        if fill:
            verts = np.vstack(rings)
            codes = np.concatenate([[MPath.MOVETO] + [MPath.LINETO] * (len(r) - 2) + [MPath.CLOSEPOLY]
                                    for r in rings])
            ax.add_patch(PathPatch(MPath(verts, codes), facecolor=color, alpha=alpha, lw=0))
        ax.plot(rings[0][:, 0], rings[0][:, 1], color=color, lw=lw, ls=ls,
                label=label if first else None)
        first = False
        for h in rings[1:]:
            ax.plot(h[:, 0], h[:, 1], color=color, lw=lw, ls=ls)
    if first and label:          # an empty region still gets its legend entry
        ax.plot([], [], color=color, lw=lw, ls=ls, label=f"{label} (none)")


def _region_limits(regions, pad=0.12):
    """Axis limits (scaled) around the union of the regions' polygons."""
    p = regions[0].params
    pts = [np.asarray(o, dtype=float) for r in regions for o, _ in r.polygons]
    if not pts:
        return None
    allp = np.vstack(pts)
    out = []
    for k in range(2):
        lo, hi = allp[:, k].min(), allp[:, k].max()
        w = (hi - lo) or abs(hi) or 1e-12
        out.append(((lo - pad * w) / display_scale(p[k]), (hi + pad * w) / display_scale(p[k])))
    return out


# ---------------------------------------------------------------- one figure per kind

def _dets_text(dets) -> str:
    dets = list(dets)
    return " + ".join(dets) if len(dets) <= 4 else f"{len(dets)} detectors combined"


def _plot_limits(lim, outdir, stem, config):
    plt = _pyplot()
    x, d, level, cl = _limit_curve(lim)
    dets = list(lim.detectors)
    color = COMBINED_COLOR if len(dets) > 1 else detector_colors(_detector_order(config, dets))[dets[0]]
    label = row_label(dets[0], getattr(lim.scan, "channels", None), config) if len(dets) == 1 \
        else "combined: " + _dets_text(dets)
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    _profile_panel(ax, [(x, d, label, color, None)], lim.param, level, cl, shade=lim.regions)
    prof = tuple(getattr(lim, "profile", ()) or ())
    how = f"{', '.join('$' + tex(q) + '$' for q in prof)} profiled" if prof else others_text([lim.param])
    ax.set_title(title(config, f"${tex(lim.param)}$, {how}"))
    ax.legend(loc="upper center")
    return _finish(plt, fig, Path(outdir) / stem)


def _plot_region(reg, outdir, stem, config):
    plt = _pyplot()
    scan = reg.scan
    x, y = (np.asarray(a, dtype=float) for a in scan.axes[:2])
    d = np.asarray(scan.chi2, dtype=float) - float(reg.chi2_min)
    fig, ax = plt.subplots(figsize=(6.0, 4.8))
    _map_panel(fig, ax, x, y, d, reg.params, {float(reg.cl): float(reg.delta_chi2)}, cmap="Blues_r",
               vmax=3.0 * float(reg.delta_chi2))
    dets = list(reg.detectors)
    ax.set_title(title(config, f"{_dets_text(dets)}, allowed region at {_fmt_cl(reg.cl)} (2 d.o.f.)"))
    return _finish(plt, fig, Path(outdir) / stem)


_DIAGONAL, _TRANSITION = "diagonal", "transition"

#: Names of the parameter families in figure titles.
FAMILY_TEXT = {"charges": "millicharges", "radii": "charge radii", "moments": "magnetic moments",
               "sin2w": "weak mixing angle", "nsi": "vector NSI couplings"}


def _panel_grid(plt, n):
    """Figure with ``n`` profile panels, at most three per line (spare panels removed)."""
    ncols = min(3, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols + 0.4, 4.0 * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        fig.delaxes(ax)
    return fig, flat[:n]


def _plot_sensitivities(sens, outdir, stem, config):
    """Delta chi2 profiles, detectors overlaid: diagonal and transition charges."""
    plt = _pyplot()
    rows = list(sens.rows)
    colors = _row_colors(config, rows)
    written = []
    charges = [p for p in sens.params if SPEC[p].family == "charges"]
    groups = [(_DIAGONAL, [p for p in charges if SPEC[p].diagonal]),
              (_TRANSITION, [p for p in charges if not SPEC[p].diagonal])]
    groups += [(f, [p for p in sens.params if SPEC[p].family == f])
               for f in dict.fromkeys(SPEC[p].family for p in sens.params) if f != "charges"]
    for name, params in groups:
        params = [p for p in params if any(sens.limits.get((r, p)) is not None for r in rows)]
        if not params:
            continue
        fig, axes = _panel_grid(plt, len(params))
        for ax, p in zip(axes, params):
            curves, level, cl = [], None, sens.cl
            for r in rows:
                if sens.limits.get((r, p)) is None:
                    continue
                x, d, level, cl = _limit_curve(sens.limits[(r, p)])
                style = {"lw": 2.2} if r == "combined" else None
                curves.append((x, d, row_label(r, None, config), colors[r], style))
            _profile_panel(ax, curves, p, level, cl)
        axes[0].legend(loc="upper left")
        if name in (_DIAGONAL, _TRANSITION):
            what = f"expected $\\Delta\\chi^2$ profiles, {name} charges (one at a time, others fixed at 0)"
        else:
            what = (f"expected $\\Delta\\chi^2$ profiles, {FAMILY_TEXT[name]} (one at a time, "
                    f"{others_text(params)})")
        chans = tuple(sens.channels)
        if chans != ("nuclear",):
            what += f"; channels {channel_label(chans)}"
        fig.suptitle(title(config, what), fontsize=10)
        fig.tight_layout()
        written += _finish(plt, fig, Path(outdir) / f"{stem}_{name}")
    return written


def _plot_xsec(view, outdir, stem, config):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.8, 4.2))
    T = np.asarray(view.T_kev, dtype=float)
    unit = "keVnr" if view.channel == "nuclear" else "keVee"
    ax.loglog(T, view.sm, color=_SM_COLOR, lw=2, label="Standard Model")
    charges = {k: float(v) for k, v in dict(view.charges).items() if float(v) != 0.0}
    if charges:
        ax.loglog(T, view.bsm, color="#d62728", ls="--", lw=1.6, label=_charges_text(charges))
    _xsec_axes(ax, view, unit)
    ax.legend()
    return _finish(plt, fig, Path(outdir) / stem)


def _charges_text(charges) -> str:
    parts = []
    for p, q in charges.items():
        exp = math.floor(math.log10(abs(q)))
        mant = q / 10.0 ** exp
        parts.append(rf"${tex(p)} = {mant:+.3g}\times10^{{{exp}}}\,{SPEC[p].unit}$")
    return ", ".join(parts)


def _nu_tex(flavour, anti) -> str:
    f = {"e": "e", "mu": r"\mu", "tau": r"\tau"}[flavour]
    return rf"$\bar\nu_{f}$" if anti else rf"$\nu_{f}$"


def _xsec_axes(ax, view, unit):
    what = "nuclear recoil" if view.channel == "nuclear" else "electron recoil"
    ax.set_xlabel(f"{what} energy $T$ [{unit}]")
    ax.set_ylabel(r"$d\sigma/dT$ [cm$^2$ keV$^{-1}$ per formula unit]")
    chan = "CEvNS" if view.channel == "nuclear" else r"$\nu$-$e$ scattering"
    ax.set_title(rf"{view.target}: {_nu_tex(view.flavour, view.antineutrino)} {chan}, "
                 rf"$E_\nu$ = {float(view.enu_mev):g} MeV")
    ax.grid(alpha=0.3, which="both")


def _plot_sweep(res, outdir, stem, config):
    """Allowed interval of each charge against the first varied value that changes."""
    plt = _pyplot()
    sw = res.sweep
    written = []
    values = np.array([list(pt.values) for pt in sw.points], dtype=float).reshape(len(sw.points), -1)
    ix = next((i for i in range(values.shape[1]) if np.unique(values[:, i]).size > 1), 0)
    rest = [i for i in range(values.shape[1]) if i != ix]
    combos = sorted({tuple(row[rest]) for row in values})
    palette = detector_colors([f"_{k}" for k in range(len(combos))])
    if len(combos) == 1 and len(sw.detectors) == 1:
        palette = {"_0": detector_colors(_detector_order(config, list(sw.detectors)))[sw.detectors[0]]}
    years_fixed = not any(v.key == "source.years" for v in sw.varies)
    for p in sw.params:
        s = display_scale(p)
        lo = np.array([r[1] for r in res.rows(p)], dtype=float)
        hi = np.array([r[2] for r in res.rows(p)], dtype=float)
        fig, ax = plt.subplots(figsize=(5.8, 4.2))
        for c, combo in enumerate(combos):
            sel = np.all(values[:, rest] == np.array(combo), axis=1) if rest else np.ones(len(values), bool)
            sel &= np.isfinite(lo) & np.isfinite(hi)
            order = np.argsort(values[sel, ix])
            xs = values[sel, ix][order]
            col = palette[f"_{c}"]
            lab = ", ".join(f"{sw.varies[i].label} = {v:g}" for i, v in zip(rest, combo)) or None
            ax.fill_between(xs, lo[sel][order] / s, hi[sel][order] / s, color=col, alpha=0.15, lw=0)
            ax.plot(xs, hi[sel][order] / s, color=col, marker="o", ms=3, label=lab)
            ax.plot(xs, lo[sel][order] / s, color=col, marker="o", ms=3)
        ax.axhline(0.0, color=_LEVEL_COLOR, lw=0.8)
        v = sw.varies[ix]
        ax.set_xlabel(f"{v.label}" + (f" [{v.unit}]" if v.unit else ""))
        ax.set_ylabel(f"allowed {param_label(p)}")
        ax.set_title(title(config, f"{_dets_text(sw.detectors)}: {_fmt_cl(sw.cl)} allowed "
                                   f"interval of ${tex(p)}$", years=years_fixed))
        if len(combos) > 1:
            ax.legend()
        written += _finish(plt, fig, Path(outdir) / f"{stem}_{p}")
    return written


def _projection_data(pr):
    """(params, axes, delta_chi2, levels) of a stored scan projection."""
    params = tuple(pr.params)
    axes = tuple(np.asarray(a, dtype=float) for a in pr.axes)
    d = np.asarray(pr.delta_chi2, dtype=float)
    return params, axes, d, _levels_of(pr, len(params))


def _unit_text(p: str) -> str:
    """' <unit>' of a parameter's plain value in a title ('' for dimensionless ones)."""
    u = SPEC[p].unit
    return "" if u == "1" else " " + u.replace("^2", "$^2$")


def _plot_scan(scan, outdir, stem, config):
    """1 charge: profile; 2: map with contours; more: every stored projection."""
    plt = _pyplot()
    params = tuple(scan.params)
    dets = _dets_text(scan.detectors)
    items = []
    if len(params) <= 2:
        items.append(("", params, tuple(np.asarray(a, dtype=float) for a in scan.axes),
                      np.asarray(scan.chi2, dtype=float) - float(scan.chi2_min),
                      _levels_of(scan, len(params)), "scan"))
    else:
        for key, pr in dict(getattr(scan, "projections", {}) or {}).items():
            kind, name = key if isinstance(key, tuple) else str(key).split("/", 1)
            p, a, d, lv = _projection_data(pr)
            at = dict(getattr(pr, "at", {}) or {})
            how = kind
            if kind == "fixed" and at:
                how = "fixed at " + ", ".join(f"${tex(k)}$ = {float(v):.3g}{_unit_text(k)}"
                                              for k, v in at.items())
            items.append((f"_{kind}_{name}", p, a, d, lv, how))
        if not items:
            raise ResultsError(f"scan of {len(params)} parameters has no stored projection to "
                               "draw: expected at least one projection")
    written = []
    for suffix, p, a, d, levels, kind in items:
        how = {"scan": "", "profiled": ", others profiled", "fixed": ", others fixed"}.get(
            kind, f", {kind}" if kind.startswith("fixed at") else "")
        if len(p) == 1:
            fig, ax = plt.subplots(figsize=(5.6, 4.0))
            lv90 = levels.get(0.9, _level(0.9, 1))
            ax.plot(a[0] / display_scale(p[0]), d, color="k", lw=1.6, label=dets)
            for (cl, lv), ls in zip(sorted(levels.items()), ("--", ":", "-.")):
                ax.axhline(lv, color=_LEVEL_COLOR, ls=ls, lw=1.0, label=_fmt_cl(cl))
            lim = _xlim([(a[0], d)], lv90)
            if lim:
                ax.set_xlim(lim[0] / display_scale(p[0]), lim[1] / display_scale(p[0]))
            ax.set_ylim(0, 3.5 * lv90)
            ax.set_xlabel(param_label(p[0]))
            ax.set_ylabel(r"$\Delta\chi^2$")
            ax.legend(loc="upper center")
            ax.set_title(title(config, f"{dets}: $\\Delta\\chi^2$ of ${tex(p[0])}${how}"))
        else:
            fig, ax = plt.subplots(figsize=(6.0, 4.8))
            _map_panel(fig, ax, a[0], a[1], d, p, levels)
            ax.set_title(title(config, f"{dets}: $\\Delta\\chi^2$ in (${tex(p[0])}$, ${tex(p[1])}$){how}"))
        written += _finish(plt, fig, Path(outdir) / f"{stem}{suffix}")
    return written


def _plot_bands_kind(bands, outdir, stem, config):
    return plot_bands([bands], Path(outdir) / stem, config)


def _plot_fc(fc, outdir, stem, config):
    return plot_critical_values(fc, Path(outdir) / stem, config)


_DRAW = {"bands": _plot_bands_kind, "fc": _plot_fc, "limits": _plot_limits, "region": _plot_region,
         "sensitivities": _plot_sensitivities,
         "xsec": _plot_xsec, "sweep": _plot_sweep, "scan": _plot_scan}


def plot_result(obj, outdir, stem=None, config=None) -> list:
    """Draw a result object by its ``kind`` into ``outdir``; returns the written paths.

    ``config``: the configuration it was computed with (Config or its dict),
    for titles, legend names and colours.  ``stem``: file name without
    suffix (default: the kind).
    """
    kind = getattr(obj, "kind", None)
    if kind not in _DRAW:
        raise ResultsError(f"cannot draw a result of kind {kind!r}: expected one of {', '.join(_DRAW)}")
    if config is None:
        config = getattr(obj, "config", None)
    return _DRAW[kind](obj, Path(outdir), stem or kind, _as_dict(config))


def _stored_config(obj, path):
    cfg = getattr(obj, "config", None)
    if cfg is not None:
        return _as_dict(cfg)
    try:
        from .io.results import read_config
    except ImportError:
        return None
    return _as_dict(read_config(path))


def plot_file(path, outdir=None) -> list:
    """Draw the results file ``path`` by its ``kind``; figures go to ``outdir``
    (default: beside the file), named after the file.  Returns the written paths."""
    from .results import open_results

    path = Path(path)
    obj = open_results(path)
    return plot_result(obj, Path(outdir) if outdir is not None else path.parent, path.stem,
                       _stored_config(obj, path))


# ---------------------------------------------------------------- the standard figure set

def _open(folder, name):
    from .results import open_results

    path = Path(folder) / name
    obj = open_results(path)
    return obj, _stored_config(obj, path)


def _regions_figure(folder, outdir, spec):
    """Allowed regions of several detectors overlaid in one plane."""
    regs = [(row, *_open(folder, f)) for row, f in spec["files"].items()]
    config = next((c for _, _, c in regs if c), None)
    return plot_regions({row: reg for row, reg, _ in regs}, Path(outdir) / spec["name"], config)


def plot_regions(regions, path, config=None) -> list:
    """Allowed regions of several detectors in one plane, overlaid: ``regions``
    {row: Region} (row a detector name or ``combined``), parameters of any family.
    Every allowed piece is filled (holes left open) and outlined; the Standard
    Model point is marked.  Written as PNG and PDF (see :func:`_save`)."""
    plt = _pyplot()
    config = _as_dict(config)
    regs = [(row, reg, None) for row, reg in dict(regions).items()]
    if not regs:
        raise InputError("no region to draw: expected at least one")
    colors = _row_colors(config, [r for r, _, _ in regs])
    fig, ax = plt.subplots(figsize=(5.8, 4.8))
    for row, reg, _ in regs:
        _region_outline(ax, reg, colors[row], row_label(row, None, config),
                        lw=2.2 if row == "combined" else 1.6)
    first = regs[0][1]
    lim = _region_limits([r for _, r, _ in regs])
    if lim and any(getattr(r, "touches_edge", False) for _, r, _ in regs):
        # a region cut by the scanned range: show that range, its border is the frame
        for k in range(2):
            axs = [np.asarray(r.scan.axes[k], dtype=float) / display_scale(first.params[k])
                   for _, r, _ in regs if getattr(r, "scan", None) is not None]
            if axs:
                lim[k] = (max(lim[k][0], min(a[0] for a in axs)), min(lim[k][1], max(a[-1] for a in axs)))
    if lim:
        ax.set_xlim(*lim[0])
        ax.set_ylim(*lim[1])
    ax.plot([_sm(first.params[0])], [_sm(first.params[1])], marker="*", color=_SM_COLOR, ls="none",
            ms=9, label="Standard Model")
    ax.set_xlabel(param_label(first.params[0]))
    ax.set_ylabel(param_label(first.params[1]))
    ax.legend(title=f"{_fmt_cl(first.cl)}, 2 d.o.f.", loc="upper left", bbox_to_anchor=(1.02, 1.0),
              borderaxespad=0.0)
    ax.set_title(title(config, f"expected allowed regions ({others_text(first.params)})"))
    return _finish(plt, fig, path)


def _electron_figure(folder, outdir, spec):
    """One detector with nuclear recoils alone and with neutrino-electron
    scattering: q_ee and q_mumu profiles (top), the (q_ee, q_mumu) regions of
    both (bottom left) and a zoom on the much smaller combined-channel region
    (bottom right)."""
    plt = _pyplot()
    det = spec["detector"]
    sets = spec["channel_sets"]                   # [[channels...], ...], nuclear alone first
    colors = [detector_colors(_detector_order(None, [det]))[det], "#d62728"]
    fig, axes = plt.subplots(2, 2, figsize=(10.5, 8.2))
    config = None
    label = [f"{det}, {channel_label(chans)}" for chans in sets]
    for ax, p in zip(axes[0], spec["params"]):
        curves, level, cl = [], None, None
        for k, chans in enumerate(sets):
            lim, cfg = _open(folder, spec["limits"][k][p])
            config = config or cfg
            x, d, level, cl = _limit_curve(lim)
            curves.append((x, d, label[k], colors[k], None))
        _profile_panel(ax, curves, p, level, cl)
        ax.legend(loc="upper left")
        # inset: the much narrower profile with the electron channel, on its own scale
        x, d = curves[-1][0], curves[-1][1]
        lim = _xlim([(x, d)], level)
        if lim:
            ins = ax.inset_axes([0.64, 0.52, 0.33, 0.42])
            s = display_scale(p) / 10.0
            ins.plot(x / s, d, color=colors[-1], lw=1.4)
            ins.axhline(level, color=_LEVEL_COLOR, ls=":", lw=1.0)
            ins.set_xlim(lim[0] / s, lim[1] / s)
            ins.set_ylim(0.0, 3.5 * level)
            ins.tick_params(labelsize=7)
            ins.set_xlabel(rf"${tex(p)}$ [$10^{{{round(math.log10(s))}}}\,e$]", fontsize=7)
    regs = []
    for k, chans in enumerate(sets):
        reg, cfg = _open(folder, spec["regions"][k])
        regs.append(reg)
    for ax, zoom in zip(axes[1], (False, True)):
        for k, (chans, reg) in enumerate(zip(sets, regs)):
            _region_outline(ax, reg, colors[k], label[k])
        lim = _region_limits(regs[-1:] if zoom else regs, pad=0.6 if zoom else 0.12)
        if lim:
            ax.set_xlim(*lim[0])
            ax.set_ylim(*lim[1])
        ax.plot([0], [0], marker="*", color=_SM_COLOR, ls="none", ms=9, label="Standard Model")
        ax.set_xlabel(param_label(regs[0].params[0]))
        ax.set_ylabel(param_label(regs[0].params[1]))
        ax.legend(loc="upper right", title=f"{_fmt_cl(regs[0].cl)}, 2 d.o.f.")
        ax.set_title("allowed regions" + (f" (zoom on {channel_label(sets[-1])})" if zoom else ""))
    fig.suptitle(title(config, f"{det}: nuclear recoils alone and with neutrino-electron scattering"),
                 fontsize=11)
    fig.tight_layout()
    return _finish(plt, fig, Path(outdir) / spec["name"])


def _xsec_figure(folder, outdir, spec):
    """dsigma/dT of one target, Standard Model and several values of one charge."""
    plt = _pyplot()
    views = [_open(folder, f)[0] for f in spec["files"]]
    fig, ax = plt.subplots(figsize=(5.8, 4.2))
    v0 = views[0]
    T = np.asarray(v0.T_kev, dtype=float)
    ax.loglog(T, v0.sm, color=_SM_COLOR, lw=2.2, label="Standard Model")
    charged = [v for v in views if any(float(q) != 0.0 for q in dict(v.charges).values())]
    palette = detector_colors([f"_{k}" for k in range(len(charged))])
    top = float(np.max(v0.sm))
    for k, v in enumerate(charged):
        charges = {p: float(q) for p, q in dict(v.charges).items() if float(q) != 0.0}
        ax.loglog(np.asarray(v.T_kev, dtype=float), v.bsm, color=palette[f"_{k}"], ls="--", lw=1.5,
                  label=_charges_text(charges))
        top = max(top, float(np.max(v.bsm)))
    _xsec_axes(ax, v0, "keVnr" if v0.channel == "nuclear" else "keVee")
    ax.set_ylim(float(np.max(v0.sm)) * 1e-3, top * 3)
    ax.legend()
    return _finish(plt, fig, Path(outdir) / spec["name"])


# ---------------------------------------------------------------- parameter families

def plot_profiles(limits, path, config=None) -> list:
    """Delta chi2 profiles of parameters of any family, detectors overlaid, one
    panel per parameter: ``limits`` {(row, param): Limit} (row a detector name or
    ``combined``).  Written as PNG and PDF; returns the paths."""
    plt = _pyplot()
    config = _as_dict(config)
    limits = {k: v for k, v in dict(limits).items() if v is not None}
    if not limits:
        raise InputError("no profile to draw: expected at least one limit")
    rows = list(dict.fromkeys(r for r, _ in limits))
    params = list(dict.fromkeys(p for _, p in limits))
    colors = _row_colors(config, rows)
    fig, axes = _panel_grid(plt, len(params))
    cl = None
    for ax, p in zip(axes, params):
        curves, level = [], None
        for r in rows:
            if (r, p) not in limits:
                continue
            x, d, level, cl = _limit_curve(limits[(r, p)])
            curves.append((x, d, row_label(r, None, config), colors[r],
                           {"lw": 2.2} if r == "combined" else None))
        _profile_panel(ax, curves, p, level, cl)
    axes[0].legend(loc="upper left", title="1 d.o.f.")
    fams = list(dict.fromkeys(SPEC[p].family for p in params))
    what = ", ".join(FAMILY_TEXT[f] for f in fams)
    fig.suptitle(title(config, f"expected $\\Delta\\chi^2$ profiles, {what} (one at a time, "
                               f"{others_text(params)})"), fontsize=10)
    fig.tight_layout()
    return _finish(plt, fig, path)


def _profiles_figure(folder, outdir, spec):
    """Profiles of several parameters, detectors overlaid (files {param: {row: file}})."""
    limits, config = {}, None
    for p, files in spec["files"].items():
        for row, f in files.items():
            lim, cfg = _open(folder, f)
            limits[(row, p)] = lim
            config = config or cfg
    return plot_profiles(limits, Path(outdir) / spec["name"], config)


# ---------------------------------------------------------------- frequentist statistics

#: Colours of the expected-limit bands: 68% (+-1 sigma) green, 95% (+-2 sigma) yellow.
BAND_COLORS = {"68": "#00c000", "95": "#ffe000"}


def _as_json(obj) -> dict:
    return dict(obj) if isinstance(obj, dict) else obj.to_json()


def _row_of(detectors) -> str:
    dets = list(detectors)
    return dets[0] if len(dets) == 1 else "combined"


def plot_bands(bands_list, path, config=None) -> list:
    """Expected-limit ("Brazil") bands: one panel per parameter, one row per
    detector (or combination).  For each row the upper limit (upper bar) and the
    lower limit (lower bar) of the toys: median (dashed), 68% (+-1 sigma, green)
    and 95% (+-2 sigma, yellow) bands; the Asimov allowed set is the line
    between the bars (every piece).  ``bands_list``: :class:`Bands` objects or
    their ``to_json()`` dicts.  Written as PNG and PDF; returns the paths."""
    from matplotlib.patches import Patch

    plt = _pyplot()
    config = _as_dict(config)
    items = [_as_json(b) for b in bands_list]
    if not items:
        raise InputError("no bands to draw: expected at least one")
    params = list(dict.fromkeys(b["param"] for b in items))
    rows = list(dict.fromkeys(_row_of(b["detectors"]) for b in items))
    colors = _row_colors(config, rows)
    n = len(params)
    ncols = min(3, n)
    nrows = -(-n // ncols)
    spare = nrows * ncols - n
    height = 0.55 * len(rows) * nrows + 1.3 * nrows + 0.6
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(3.9 * ncols, 6.0), height),
                             squeeze=False)
    flat = list(axes.ravel())
    h, gap = 0.32, 0.04
    for ax, p in zip(flat, params):
        s = display_scale(p)
        ends = []
        for b in items:
            if b["param"] != p:
                continue
            y = -rows.index(_row_of(b["detectors"]))
            for side, off in (("lower", -(gap + h / 2)), ("upper", gap + h / 2)):
                q = {k: float(v) / s for k, v in b[side].items()}
                ax.barh(y + off, q["p97.5"] - q["p2.5"], left=q["p2.5"], height=h, color=BAND_COLORS["95"],
                        lw=0)
                ax.barh(y + off, q["p84"] - q["p16"], left=q["p16"], height=h, color=BAND_COLORS["68"], lw=0)
                ax.plot([q["median"]] * 2, [y + off - h / 2, y + off + h / 2], color="k", ls="--", lw=1.3)
                ends += [q["p2.5"], q["p97.5"]]
            for lo, hi in b["asimov_regions"]:
                ax.plot([lo / s, hi / s], [y, y], color=colors[_row_of(b["detectors"])], lw=2.0,
                        marker="|", ms=9, mew=2.0, solid_capstyle="butt")
                ends += [lo / s, hi / s]
        ax.axvline(_sm(p), color=_LEVEL_COLOR, lw=0.8, zorder=0)
        lo, hi = min(ends), max(ends)
        pad = 0.06 * (hi - lo or 1.0)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(-len(rows) + 0.5, 0.5)
        ax.set_yticks([-k for k in range(len(rows))])
        ax.set_yticks([-k + off for k in range(len(rows)) for off in (-(gap + h / 2), gap + h / 2)],
                      minor=True)
        if flat.index(ax) % ncols == 0:
            ax.set_yticklabels([row_label(r, None, config) for r in rows])
            ax.set_yticklabels(["lower", "upper"] * len(rows), minor=True, fontsize=7, color="0.3")
            ax.tick_params(axis="y", which="major", pad=34, length=0)
        else:
            ax.set_yticklabels([])
            ax.set_yticklabels([], minor=True)
        ax.set_xlabel(param_label(p))
        ax.grid(axis="y", visible=False)
    handles = [plt.Line2D([], [], color="k", ls="--", lw=1.3, label="median expected"),
               Patch(color=BAND_COLORS["68"], label=r"68% expected ($\pm1\sigma$)"),
               Patch(color=BAND_COLORS["95"], label=r"95% expected ($\pm2\sigma$)"),
               plt.Line2D([], [], color="0.3", lw=2.0, marker="|", ms=9, mew=2.0,
                          label="Asimov allowed set")]
    b0 = items[0]
    cl = _fmt_cl(b0["cl"])
    legend_title = f"{cl} limits, 1 d.o.f.\n{int(b0['toys'])} toys each"
    if spare:
        for ax in flat[n:]:
            ax.axis("off")
        flat[n].legend(handles=handles, loc="center", title=legend_title, fontsize=9)
    fixed = {k: float(v) for k, v in dict(b0.get("fixed", {})).items() if float(v) != 0.0}
    where = "the Standard Model" if not fixed else \
        ", ".join(f"${tex(k)}$ = {v:.3g}" for k, v in fixed.items())
    sep = ":\n" if ncols < 3 else ": "
    fig.suptitle(title(config, f"expected {cl} limits from toys under {where}{sep}"
                               "upper and lower limits with their 68% and 95% bands"), fontsize=10)
    fig.tight_layout()
    if not spare:      # below the panels (the saved figure's bounding box takes it in)
        fig.legend(handles=handles, loc="upper center", ncol=2 if ncols < 3 else 4,
                   title=legend_title.replace("\n", ", "), bbox_to_anchor=(0.5, 0.0))
    return _finish(plt, fig, path)


def _fc_arrays(fc):
    """(grid, t_c, coverage, error, Delta chi2 of the data or None) of an FCLimit or its JSON."""
    if isinstance(fc, dict):
        cv = np.asarray(fc["critical_values"], dtype=float).reshape(-1, 2)
        cov = np.asarray(fc.get("wilks_coverage") or [], dtype=float).reshape(-1, 3)
        d = fc.get("delta_chi2_data")
        return (cv[:, 0], cv[:, 1], (cov[:, 1] if cov.size else None), (cov[:, 2] if cov.size else None),
                None if d is None else np.asarray(d, dtype=float))
    d = getattr(fc, "delta_chi2_data", None)
    cov = getattr(fc, "coverage", None)
    return (np.asarray(fc.grid, dtype=float), np.asarray(fc.critical, dtype=float),
            None if cov is None else np.asarray(cov, dtype=float),
            None if cov is None else np.asarray(fc.coverage_error, dtype=float),
            None if d is None else np.asarray(d, dtype=float))


def plot_critical_values(fc, path, config=None) -> list:
    """Feldman-Cousins critical values t_c(theta) against the Wilks level (upper
    panel, with the data's Delta chi2 and both intervals) and the coverage of the
    Wilks interval per theta with its binomial error (lower panel).  ``fc``: an
    :class:`FCLimit` or its ``to_json()`` dict.  Written as PNG and PDF."""
    plt = _pyplot()
    config = _as_dict(config)
    js = _as_json(fc)
    p, cl = js["param"], float(js["cl"])
    level = float(js["wilks_delta_chi2"])
    x, tc, cov, err, dchi = _fc_arrays(fc)
    s = display_scale(p)
    xs = x / s
    lower = cov is not None and cov.size == x.size
    if lower:
        fig, (ax, bx) = plt.subplots(2, 1, figsize=(6.0, 5.8), sharex=True,
                                     gridspec_kw={"height_ratios": (2.2, 1.0), "hspace": 0.06})
    else:
        fig, ax = plt.subplots(figsize=(6.0, 4.2))
    for k, (a, b) in enumerate(js["regions"]):
        ax.axvspan(a / s, b / s, color="#1f77b4", alpha=0.13, lw=0,
                   label=f"Feldman-Cousins {_fmt_cl(cl)} interval" if k == 0 else None)
    for k, (a, b) in enumerate(js.get("wilks_regions", [])):
        for v in (a, b):
            ax.axvline(v / s, color="#d62728", ls=":", lw=1.2,
                       label=f"Wilks {_fmt_cl(cl)} interval" if k == 0 and v == a else None)
    ax.plot(xs, tc, color="k", lw=1.6, marker="o", ms=2.5, label=r"critical value $t_c(\theta)$")
    ax.axhline(level, color="#d62728", ls="--", lw=1.2,
               label=rf"Wilks: $\chi^2_1$ quantile {level:.2f}")
    if dchi is not None and dchi.size == x.size:
        ax.plot(xs, dchi, color="#1f77b4", lw=1.4, label=r"$\Delta\chi^2$ of the data")
    top = max(float(np.nanmax(tc)), level) * 1.6
    ax.set_ylim(0.0, top)
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylabel(r"$\Delta\chi^2$")
    ax.legend(loc="upper center", ncol=2, fontsize=7)
    dets = _dets_text(js["detectors"])
    ax.set_title(title(config, f"{dets}: Feldman-Cousins critical values of ${tex(p)}$ at {_fmt_cl(cl)} "
                               f"({int(js['toys'])} toys per value)"))
    if lower:
        bx.errorbar(xs, cov, yerr=err, color="k", fmt="o", ms=2.5, lw=0.8, capsize=0)
        bx.axhline(cl, color="#d62728", ls="--", lw=1.2, label=f"nominal {cl * 100:g}%")
        lo = min(float(np.nanmin(cov - err)), cl) - 0.02
        hi = max(float(np.nanmax(cov + err)), cl) + 0.02
        bx.set_ylim(max(lo, 0.0), min(hi, 1.0))
        bx.set_ylabel("Wilks coverage")
        bx.legend(loc="lower right", fontsize=7)
        bx.set_xlabel(param_label(p))
    else:
        ax.set_xlabel(param_label(p))
    return _finish(plt, fig, path)


def _read_json_results(folder, name):
    path = Path(folder) / name
    try:
        data = json.loads(path.read_text())
        return data["results"], data.get("config")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ResultsError(f"{path}: not a results list ({e})") from None


def _bands_figure(folder, outdir, spec):
    items, config = _read_json_results(folder, spec["file"])
    return plot_bands(items, Path(outdir) / spec["name"], config)


def _critical_figure(folder, outdir, spec):
    items, config = _read_json_results(folder, spec["file"])
    written = []
    for fc in items:
        written += plot_critical_values(fc, Path(outdir) / spec["name"], config)
    return written


_SET_DRAW = {"regions": _regions_figure, "electron": _electron_figure, "xsec": _xsec_figure,
             "profiles": _profiles_figure, "bands": _bands_figure, "critical_values": _critical_figure}


def plot_folder(folder, outdir=None) -> list:
    """Draw a folder of results files; figures go to ``outdir`` (default: the folder).

    A folder written by :func:`mcscan.figures.compute_figure_data` (it has
    ``figures.json``) gives the standard figure set; any other folder gives
    one figure set per results file (:func:`plot_file`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{str(folder)!r} is not a folder: expected a folder of results files")
    outdir = Path(outdir) if outdir is not None else folder
    manifest = folder / FIGURE_SET
    written = []
    if manifest.is_file():
        try:
            figures = json.loads(manifest.read_text())["figures"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ResultsError(f"{manifest}: not a figure-set manifest ({e})") from None
        for spec in figures:
            draw = spec.get("draw")
            if draw == "file":
                obj, cfg = _open(folder, spec["file"])
                written += plot_result(obj, outdir, spec["name"], cfg)
            elif draw in _SET_DRAW:
                written += _SET_DRAW[draw](folder, outdir, spec)
            else:
                raise ResultsError(f"{manifest}: unknown figure type {draw!r}: "
                                   f"expected file, {', '.join(_SET_DRAW)}")
        return written
    files = sorted(folder.glob("*.h5"))
    if not files:
        raise InputError(f"{str(folder)!r} holds no results file (*.h5)")
    for f in files:
        written += plot_file(f, outdir)
    return written


#: Former name of :func:`plot_folder`.
plot_all = plot_folder


def plot_xsec(view, path) -> Path:
    """Draw one XsecView to ``path`` (.png, .pdf or .svg; no suffix: both PNG and
    PDF); returns the first written path."""
    path = Path(path)
    return plot_result(view, path.parent, path.name)[0]


def plot_sweep(result, outdir, config=None) -> list:
    """Figures ``sweep_<param>`` of a SweepResult (see :func:`plot_result`)."""
    return plot_result(result, outdir, "sweep", config)
