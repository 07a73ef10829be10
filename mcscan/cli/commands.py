"""The ``mcscan`` command: parse, call one pipeline function, print.

Every problem a user can fix ends as one line ``mcscan: error: ...`` on
stderr and exit status 2; nothing is written in that case.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import threading
import time
from pathlib import Path

from .. import __version__
from ..config.load import load_config
from ..params import FLAVOURS, PARAMS, display_scale, scale_label
from ..errors import InputError, McscanError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """One-line errors; '-1e-8' is a value, not an option."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message):  # one line, no usage dump
        self.exit(2, f"mcscan: error: {message} (see 'mcscan {self.prog.split()[-1]} --help')\n"
                  if " " in self.prog else f"mcscan: error: {message} (see 'mcscan --help')\n")


def _float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} is not finite: expected a finite number")
    return v


def _assignment(text: str) -> tuple[str, float]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE, e.g. q_mumu=1e-9")
    k, v = text.split("=", 1)
    k = k.strip()
    if k not in PARAMS:
        raise argparse.ArgumentTypeError(f"unknown parameter {k!r}: expected one of {', '.join(PARAMS)}")
    return k, _float(v.strip())


def _param(text: str) -> str:
    if text not in PARAMS:
        import difflib

        close = difflib.get_close_matches(text, PARAMS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise argparse.ArgumentTypeError(f"unknown parameter {text!r}: expected one of "
                                         f"{', '.join(PARAMS)}{hint}")
    return text


def _points(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 3 <= n <= 10_000_001:
        raise argparse.ArgumentTypeError(f"{n} points: expected 3 to 10000001")
    return n


def _cl(text: str) -> float:
    v = _float(text)
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a confidence level strictly between 0 and 1")
    return v


def _common(p, tables=True):
    p.add_argument("--config", metavar="FILE", help="user TOML file overriding the built-in ESS configuration")
    if tables:
        p.add_argument("--tables", metavar="DIR", default="tables", help="folder of response tables (default: tables)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _target_options(p, fix_help="value of an unscanned charge (default 0)"):
    """--detector (repeatable, required), --channels and --fix, shared by the analysis commands."""
    p.add_argument("--detector", action="append", metavar="NAME", required=True,
                   help="detector (repeatable: combined chi2)")
    p.add_argument("--channels", default="nuclear", help="comma-separated channels (default nuclear)")
    p.add_argument("--fix", action="append", type=_assignment, default=[], metavar="P=VALUE",
                   help=fix_help)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mcscan", description="Neutrino millicharge sensitivity scans at spallation sources.")
    p.add_argument("--version", action="version", version=f"mcscan {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    b = sub.add_parser("build", help="build response tables (only those whose configuration changed)")
    _common(b)
    b.add_argument("--detector", action="append", metavar="NAME", help="detector (repeatable; default all)")
    b.add_argument("--force", action="store_true", help="rebuild even if up to date")

    s = sub.add_parser("scan", help="1D or 2D profiled chi2 scan, saved to HDF5")
    _common(s)
    _target_options(s)
    s.add_argument("--param", action="append", type=_param, required=True, metavar="P",
                   help=f"scanned charge, once or twice ({', '.join(PARAMS)})")
    s.add_argument("--range", action="append", nargs=2, type=_float, metavar=("LO", "HI"),
                   help="range of each scanned charge in e (default from the configuration)")
    s.add_argument("--points", action="append", type=_points, metavar="N",
                   help="grid points of each scanned charge (default 2001 in 1D, 201 in 2D)")
    s.add_argument("--out", metavar="FILE", help="results file (default results/scan_<params>.h5)")
    s.add_argument("--resume", action="store_true",
                   help="finish an interrupted scan of the same command from its stored chunks")
    s.add_argument("--chunk-points", type=int, default=None, metavar="N",
                   help="points per stored chunk (default about 1 million, whole rows)")
    s.add_argument("--json", action="store_true", help="print a JSON summary")

    li = sub.add_parser("limits", help="allowed intervals of one charge at a C.L.")
    _common(li)
    _target_options(li, "value of another charge (default 0)")
    li.add_argument("--param", type=_param, required=True, metavar="P", help=", ".join(PARAMS))
    li.add_argument("--cl", type=_cl, default=None, help="confidence level (default 0.90)")
    li.add_argument("--range", nargs=2, type=_float, metavar=("LO", "HI"),
                    help="scan range in e (default: configuration, widened while the set is open)")
    li.add_argument("--points", type=_points, default=None, help="grid points (default 2001)")
    li.add_argument("--profile", action="append", type=_param, default=[], metavar="P",
                    help="charge minimised over at each point (repeatable), searched over its configured range")
    li.add_argument("--level", type=_float, default=None, metavar="DCHI2",
                    help="Delta chi2 threshold instead of the --cl quantile (e.g. 4.61)")
    li.add_argument("--json", action="store_true", help="print one JSON object")

    rg = sub.add_parser("region", help="allowed region of two charges: polygons, extent, area")
    _common(rg)
    _target_options(rg, "value of another charge (default 0)")
    rg.add_argument("--params", nargs=2, type=_param, required=True, metavar=("P0", "P1"))
    rg.add_argument("--cl", type=_cl, default=None, help="confidence level (default 0.90; 2 d.o.f.)")
    rg.add_argument("--ranges", nargs=4, type=_float, metavar=("LO0", "HI0", "LO1", "HI1"),
                    help="scan ranges in e (default: configuration, zoomed onto the region)")
    rg.add_argument("--points", type=int, default=201, help="grid points per axis (default 201)")
    rg.add_argument("--out", metavar="FILE", help="results file (default results/region_<p0>_<p1>.h5)")
    rg.add_argument("--json", action="store_true", help="print one JSON object")

    fg = sub.add_parser("figures", help="compute and draw the standard figure set (PNG and PDF)")
    _common(fg)
    fg.add_argument("--out", metavar="DIR", default="figures", help="output folder (default figures)")

    pl = sub.add_parser("plot", help="draw figures from results files")
    pl.add_argument("kind", choices=("all", "profiles", "regions", "xsec"),
                    help="all: every figure from the files of 'mcscan figures' in FOLDER")
    pl.add_argument("path", help="results file (a folder for 'all')")
    pl.add_argument("--out", metavar="DIR", default=None, help="output folder (default: beside the input)")

    se = sub.add_parser("sensitivities", help="main job: detector x charge table of 90%% C.L. intervals")
    _common(se)
    se.add_argument("--cl", type=_cl, default=None, help="confidence level (default 0.90)")
    se.add_argument("--channels", default="nuclear", help="comma-separated channels (default nuclear)")
    se.add_argument("--out", metavar="FILE", default="results/sensitivities.h5",
                    help="results file (default results/sensitivities.h5)")
    se.add_argument("--json", action="store_true", help="print one JSON object")
    x = sub.add_parser("xsec", help="print or plot dsigma/dT, SM and with charges")
    x.add_argument("--config", metavar="FILE", help="user TOML file (for radii and couplings)")
    x.add_argument("--target", required=True, help="detector name (CsI, Xe, Ge) or element symbol (Cs)")
    x.add_argument("--enu", type=_float, required=True, metavar="MEV", help="neutrino energy, MeV")
    x.add_argument("--flavour", choices=FLAVOURS, required=True)
    x.add_argument("--anti", action="store_true", help="antineutrino")
    x.add_argument("--param", action="append", type=_assignment, default=[], metavar="P=VALUE",
                   help="charge in e, e.g. q_ee=2e-8 (repeatable)")
    x.add_argument("--channel", choices=("nuclear", "electron"), default="nuclear")
    x.add_argument("--tmin", type=_float, metavar="KEV", help="lowest recoil energy, keV")
    x.add_argument("--tmax", type=_float, metavar="KEV", help="highest recoil energy, keV (default: end point)")
    x.add_argument("--points", type=_points, default=None,
                   help="recoil energies, log-spaced (default 40; 400 with --out)")
    x.add_argument("--radius", type=_float, metavar="FM", help="rms radius for an element not in a detector")
    g = x.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true", help="print one JSON object")
    g.add_argument("--out", metavar="FILE.png", help="plot to a PNG or PDF file")

    from .scale import add_commands   # ndscan, sweep (local or Dask backends)

    _COMMANDS.update(add_commands(sub))
    return p


def _cmd_region(args, cfg):
    from ..api import parse_channels, region, save_region

    ranges = None
    if args.ranges:
        r = args.ranges
        ranges = [(r[0], r[1]), (r[2], r[3])]
        for p, (lo, hi) in zip(args.params, ranges):
            if not lo < hi:
                raise InputError(f"--ranges {lo:g} {hi:g} of {p}: expected LO < HI")
    if not 11 <= args.points <= 20001:
        raise InputError(f"--points {args.points}: expected 11 to 20001 per axis")
    fixed = dict(args.fix)
    for p in args.params:
        if p in fixed:
            raise InputError(f"{p} is both scanned and fixed")
    reg = region(cfg, args.detector, args.params, tables_dir=args.tables, cl=args.cl,
                 channels=parse_channels(args.channels), ranges=ranges, points=args.points,
                 fixed=fixed, progress=not (args.quiet or args.json))
    out = Path(args.out or f"results/region_{args.params[0]}_{args.params[1]}.h5")
    label = "combined" if len(reg.detectors) > 1 else reg.detectors[0]
    save_region(out, {f"{label}/{args.params[0]}-{args.params[1]}": reg}, cfg)
    if args.json:
        d = reg.to_json()
        d["results_file"] = str(out)
        print(json.dumps(d))
        return
    s0, s1 = (display_scale(p) for p in args.params)
    print(f"{args.params[0]} x {args.params[1]} allowed at {reg.cl:.0%} C.L. (2 d.o.f., "
          f"Delta chi2 <= {reg.delta_chi2:.3f}), {' + '.join(reg.detectors)}: "
          f"{len(reg.polygons)} region(s)")
    for p, s in zip(args.params, (s0, s1)):
        lo, hi = reg.extent[p] or (float("nan"), float("nan"))
        print(f"  {p}: [{lo / s:+.3f}, {hi / s:+.3f}] x {s:g} e")
    print(f"  area: {reg.area:.4g} e^2; saved to {out}")
    if reg.touches_edge:
        _err("warning: the region reaches the edge of the scanned ranges; widen --ranges")


def _cmd_figures(args, cfg):
    from ..figures import compute_figure_data
    from ..plot import plot_all

    t0 = time.perf_counter()
    log = None if args.quiet else (lambda m: print(m, file=sys.stderr))
    compute_figure_data(cfg, args.out, tables_dir=args.tables, progress=not args.quiet, log=log)
    written = plot_all(args.out)
    print(f"{len(written)} figure files in {args.out}/ ({time.perf_counter() - t0:.1f} s):")
    for w in written:
        print(f"  {w}")


def _cmd_plot(args, cfg):
    from .. import plot
    from ..io.tables import load_results

    src = Path(args.path)
    if args.kind == "all":
        if not src.is_dir():
            raise InputError(f"{str(src)!r} is not a folder: 'mcscan plot all' takes the folder of 'mcscan figures'")
        written = plot.plot_all(src, args.out)
    else:
        res = load_results(src)
        fn = {"profiles": plot.plot_profiles, "regions": plot.plot_regions, "xsec": plot.plot_xsec_file}
        written = fn[args.kind](res, args.out or src.parent)
    if not written:
        raise InputError(f"nothing to draw from {str(src)!r} as {args.kind}")
    for w in written:
        print(w)


def _cmd_xsec(args, cfg):
    from ..physics.spectra import xsec_view

    if args.out and Path(args.out).suffix.lower() not in (".png", ".pdf", ".svg"):
        raise InputError(f"--out {args.out!r}: expected a .png, .pdf or .svg file name")
    v = xsec_view(cfg, args.target, args.enu, args.flavour, antineutrino=args.anti,
                  charges=dict(args.param), channel=args.channel, tmin_kev=args.tmin,
                  tmax_kev=args.tmax, points=args.points or (400 if args.out else 40),
                  radius_fm=args.radius)
    if args.json:
        print(json.dumps(v.to_json()))
        return
    if args.out:
        from ..plot import plot_xsec

        print(f"saved {plot_xsec(v, args.out)}")
        return
    unit = "keVnr" if v.channel == "nuclear" else "keVee"
    q = ", ".join(f"{k}={val:g} e" for k, val in v.charges.items()) or "none"
    print(f"# {v.target} {v.channel}, E = {v.enu_mev:g} MeV, {'anti-' if v.antineutrino else ''}"
          f"nu_{v.flavour}; charges: {q}; end point {v.t_end_kev:.4g} {unit}")
    print(f"# {'T [' + unit + ']':>12} {'SM [cm^2/keV]':>16} {'charged [cm^2/keV]':>20} {'ratio':>10}")
    for t, a, b in zip(v.T_kev, v.sm, v.bsm):
        r = f"{b / a:10.5g}" if a > 0 else f"{'-':>10}"
        print(f"  {t:12.5g} {a:16.6g} {b:20.6g} {r}")


def _err(msg: str) -> None:
    print(f"mcscan: {msg}", file=sys.stderr)


def _cmd_build(args, cfg):
    from ..api import build_tables

    t0 = time.perf_counter()
    res = build_tables(cfg, args.detector, args.tables, force=args.force, progress=not args.quiet,
                       log=print)
    print(f"{len(res)} table(s) ready in {time.perf_counter() - t0:.1f} s")


def _cmd_scan(args, cfg):
    import numpy as np

    from ..api import load_coefficients, parse_channels
    from ..scans.grid import ScanSettings, scan_to_file

    params = args.param
    if len(params) > 2:
        raise InputError(f"--param given {len(params)} times: a scan takes one or two parameters")
    if len(set(params)) != len(params):
        raise InputError(f"--param {params[0]} given twice: scan two different charges")
    ranges = args.range or [cfg.analysis.ranges[p] for p in params]
    if len(ranges) != len(params):
        raise InputError(f"{len(params)} parameter(s) but {len(ranges)} --range: give one per parameter")
    pts = args.points or [cfg.numerics.scan_points if len(params) == 1 else 201] * len(params)
    if len(pts) == 1 and len(params) == 2:
        pts = pts * 2
    if len(pts) != len(params):
        raise InputError(f"{len(params)} parameter(s) but {len(pts)} --points")
    for p, (lo, hi) in zip(params, ranges):
        if not lo < hi:
            raise InputError(f"--range {lo:g} {hi:g} of {p}: expected LO < HI")
    fixed = dict(args.fix)
    for p in params:
        if p in fixed:
            raise InputError(f"{p} is both scanned and fixed")
    if args.chunk_points is not None and not 1 <= args.chunk_points <= 100_000_000:
        raise InputError(f"--chunk-points {args.chunk_points}: expected 1 to 100000000")
    channels = parse_channels(args.channels)
    coefs = load_coefficients(cfg, args.detector, args.tables, channels)
    axes = [np.linspace(lo, hi, n) for (lo, hi), n in zip(ranges, pts)]
    out = Path(args.out or f"results/scan_{'_'.join(params)}.h5")
    _INTERRUPT_HINT[0] = (f"finished chunks are kept in {out}.partial; repeat the same command "
                          "with --resume to finish the scan")
    t0 = time.perf_counter()
    res = scan_to_file(coefs, params, axes, out, fixed=fixed, settings=ScanSettings.from_config(cfg),
                       resume=args.resume, chunk_points=args.chunk_points,
                       progress=not (args.quiet or args.json), config=cfg.to_dict())
    _INTERRUPT_HINT[0] = None
    res.update({"detectors": [c.detector for c in coefs], "params": list(params), "unit": "e",
                "points": res["shape"], "at": res["argmin"], "out": res["path"],
                "wall_time_s": time.perf_counter() - t0})
    if args.json:
        print(json.dumps(res))
    else:
        print(f"scanned {' x '.join(params)} on {' x '.join(map(str, res['shape']))} points for "
              f"{', '.join(res['detectors'])}: min chi2 = {res['chi2_min']:.4g} at "
              f"{', '.join(f'{p} = {v:.4g} e' for p, v in zip(params, res['argmin']))}; "
              f"saved to {out}" + (f" ({res['resumed_chunks']} of {res['chunks']} chunks resumed)"
                                   if res["resumed_chunks"] else ""))
    if res["unconverged"]:
        _err(f"warning: the pull profile did not converge at {res['unconverged']} points "
             "(flagged in the 'converged' dataset)")


#: What to tell the user when a long command is interrupted (set while it runs).
_INTERRUPT_HINT = [None]


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def _fmt_regions(regions, scale):
    return " U ".join(f"[{lo / scale:+.3f}, {hi / scale:+.3f}]" for lo, hi in regions) or "(empty)"


def _cmd_limits(args, cfg):
    from ..api import limits, parse_channels

    if args.level is not None and not args.level > 0:
        raise InputError(f"--level {args.level:g}: expected a positive Delta chi2")
    lim = limits(cfg, args.detector, args.param, tables_dir=args.tables, cl=args.cl,
                 channels=parse_channels(args.channels), xrange=args.range, points=args.points,
                 fixed=dict(args.fix), profile=tuple(args.profile), level=args.level,
                 progress=not args.quiet and not args.json)
    if args.json:
        print(json.dumps(lim.to_json()))
        return
    scale = display_scale(args.param)
    prof = f", profiled over {', '.join(lim.profile)}" if lim.profile else ""
    print(f"{args.param} allowed at {lim.cl:.0%} C.L. (Delta chi2 <= {lim.delta_chi2:.4f}{prof}), "
          f"{' + '.join(lim.detectors)}: {_fmt_regions(lim.regions, scale)} x {scale:g} e")
    if lim.profile_at_edge:
        _err("warning: a profiled charge reached the end of its search range inside the allowed "
             "set; widen analysis.ranges for it")
    if lim.open_low or lim.open_high:
        side = " and ".join(s for s, o in (("low", lim.open_low), ("high", lim.open_high)) if o)
        _err(f"warning: the allowed set reaches the {side} end of the scanned range; "
             "that end is not a limit: widen --range")


def _num3(v: float) -> str:
    """Two decimals, or three significant digits for values below 1."""
    return f"{v:.2f}" if abs(v) >= 1 else f"{v:.3g}"


def _cmd_sensitivities(args, cfg):
    from ..api import parse_channels, save_sensitivities, sensitivities

    t0 = time.perf_counter()
    channels = parse_channels(args.channels)
    log = None if (args.json or args.quiet) else (lambda m: print(m, file=sys.stderr))
    sens = sensitivities(cfg, tables_dir=args.tables, cl=args.cl, channels=channels,
                         progress=not (args.quiet or args.json), log=log)
    path = save_sensitivities(sens, args.out, cfg)
    elapsed = time.perf_counter() - t0
    if args.json:
        print(json.dumps({
            "cl": sens.cl, "channels": list(sens.channels), "unit": "e",
            "results_file": str(path), "wall_time_s": elapsed,
            "intervals": {r: {p: sens.limits[(r, p)].to_json()["regions"] for p in sens.params}
                          for r in sens.rows},
            "open_ends": {r: [p for p in sens.params if sens.limits[(r, p)].open_low
                              or sens.limits[(r, p)].open_high] for r in sens.rows},
            "table_hashes": {r: sens.limits[(r, sens.params[0])].to_json()["table_hashes"]
                             for r in sens.rows},
        }))
        return
    heads = [f"{p} [{scale_label(p)}]" for p in sens.params]
    w = 22
    print(f"Expected {sens.cl:.0%} C.L. allowed intervals, channels: {', '.join(sens.channels)}")
    print(f"{'detector':<10}" + "".join(f"{h:>{w}}" for h in heads))
    for r in sens.rows:
        cells = []
        for p in sens.params:
            scale = display_scale(p)
            regs = sens.limits[(r, p)].regions
            cells.append(" U ".join(f"[{_num3(lo / scale)}, {_num3(hi / scale)}]" for lo, hi in regs))
        print(f"{r:<10}" + "".join(f"{c:>{w}}" for c in cells))
    print(f"profiles saved to {path} ({elapsed:.1f} s)")


_COMMANDS = {"build": _cmd_build, "scan": _cmd_scan, "limits": _cmd_limits,
             "sensitivities": _cmd_sensitivities, "xsec": _cmd_xsec, "region": _cmd_region,
             "figures": _cmd_figures, "plot": _cmd_plot}


def main(argv=None) -> int:
    import signal

    args = _parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm)   # SIGTERM stops as cleanly as Ctrl-C
    try:
        cfg = load_config(getattr(args, "config", None))
        _COMMANDS[args.command](args, cfg)
    except McscanError as exc:
        _err(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        _err(f"interrupted: {_INTERRUPT_HINT[0] or 'nothing was written for the unfinished step'}")
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
