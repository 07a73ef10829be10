"""The ``mcscan`` command: parse, make one API call, format.

Exit status: 0 on success; 2 for bad input or configuration (one line
``mcscan: error: ...`` on stderr, nothing written); 1 when a table, results
file or output cannot be used or written; 130 when interrupted (Ctrl-C or
SIGTERM), with a one-line hint on how to resume a scan.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

from .. import __version__
from ..errors import ConfigError, InputError, McscanError
from ..params import FLAVOURS, PARAMS, display_scale, scale_label
from .common import (
    INTERRUPT_HINT,
    Parser,
    add_budget_options,
    add_common,
    add_output_options,
    add_target_options,
    assignment,
    budget_from,
    check_out,
    cl_arg,
    err,
    flagify,
    fixed_from,
    float_arg,
    fmt_regions,
    param_arg,
    points_arg,
    positive_int,
    print_json,
    progress,
    ranges_from,
    tables_for,
)

__all__ = ["main"]

_DESCRIPTION = """\
Neutrino millicharge sensitivities at spallation sources (ESS: CsI, Xe, Ge).
Start with 'mcscan sensitivities' (builds the response tables, prints the 90%
C.L. table); 'mcscan COMMAND --help' describes each command."""


def _sub(sub, name, help_, description, **kw):
    return sub.add_parser(name, help=help_, description=description, **kw)


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="mcscan", description=_DESCRIPTION,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-V", "--version", action="version", version=f"mcscan {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")

    b = _sub(sub, "build", "build response tables (only those whose configuration changed)",
             "Build the HDF5 response table of each detector. A table whose configuration "
             "hash matches is kept; --force rebuilds it.")
    add_common(b)
    b.add_argument("--detector", action="append", metavar="NAME",
                   help="detector to build (repeatable; default every detector of the configuration)")
    b.add_argument("--force", action="store_true", help="rebuild even tables that are up to date")

    s = _sub(sub, "scan", "1D or 2D profiled chi2 grid scan, streamed to HDF5",
             "Profiled chi2 on a grid of one or two charges, streamed to a results file in "
             "chunks (resumable with --resume). Same engine and numbers as 'mcscan ndscan'.")
    add_common(s)
    add_target_options(s)
    s.add_argument("--param", action="append", type=param_arg, required=True, metavar="P",
                   help=f"scanned charge, once or twice ({', '.join(PARAMS)})")
    s.add_argument("--range", action="append", nargs=2, type=float_arg, metavar=("LO", "HI"),
                   help="range of each scanned charge in e (default from the configuration)")
    s.add_argument("--points", action="append", type=points_arg, metavar="N",
                   help="grid points of each scanned charge (default 2001 in 1D, 201 in 2D)")
    add_output_options(s, "results file (default results/scan_<params>_<detectors>.h5)")
    s.add_argument("--resume", action="store_true",
                   help="finish an interrupted scan of the same command from its stored chunks")
    s.add_argument("--chunk-points", type=positive_int, default=None, metavar="N",
                   help="points per stored chunk, rounded to whole rows (default: automatic)")
    s.add_argument("--cl", type=cl_arg, default=None,
                   help="confidence level of the printed 1D intervals (default 0.90)")
    add_budget_options(s)
    s.add_argument("--json", action="store_true", help="print one JSON object")

    li = _sub(sub, "limits", "allowed intervals of one charge at a C.L.",
              "Allowed set of one charge at a confidence level, as a union of intervals; the "
              "other charges fixed (--fix, default 0) or profiled (--profile). Writes nothing.")
    add_common(li)
    add_target_options(li, "value of another charge in e, e.g. q_mumu=1e-9 (default 0; once per charge)")
    li.add_argument("--param", type=param_arg, required=True, metavar="P",
                    help=f"the charge ({', '.join(PARAMS)})")
    li.add_argument("--cl", type=cl_arg, default=None,
                    help="confidence level, from 1e-6 to 1 - 1e-9 (default 0.90)")
    li.add_argument("--range", nargs=2, type=float_arg, metavar=("LO", "HI"),
                    help="scan range in e (default: configuration, widened while the set is open)")
    li.add_argument("--points", type=points_arg, default=None, metavar="N",
                    help="grid points (default 2001; 801 with --profile)")
    li.add_argument("--profile", action="append", type=param_arg, default=[], metavar="P",
                    help="charge minimised over at each point (repeatable), searched over its "
                         "configured range")
    li.add_argument("--level", type=float_arg, default=None, metavar="DCHI2",
                    help="Delta chi2 threshold instead of the --cl quantile (e.g. 4.61)")
    add_budget_options(li, disk=False)
    li.add_argument("--json", action="store_true", help="print one JSON object")

    rg = _sub(sub, "region", "allowed region of two charges: polygons, extent, area",
              "Allowed region of two charges at the two-parameter C.L. (Delta chi2 = 4.605 at "
              "90%%): closed contour polygons, extent per charge and area, saved to HDF5.")
    add_common(rg)
    add_target_options(rg, "value of another charge in e, e.g. q_emu=1e-9 (default 0; once per charge)")
    rg.add_argument("--params", nargs=2, type=param_arg, required=True, metavar=("P0", "P1"),
                    help=f"the two charges of the region ({', '.join(PARAMS)})")
    rg.add_argument("--cl", type=cl_arg, default=None, help="confidence level (default 0.90; 2 d.o.f.)")
    rg.add_argument("--ranges", nargs=4, type=float_arg, metavar=("LO0", "HI0", "LO1", "HI1"),
                    help="scan ranges in e (default: configuration, zoomed onto the region)")
    rg.add_argument("--points", type=int, default=201, metavar="N",
                    help="grid points per axis, 11 to 20001 (default 201)")
    add_output_options(rg, "results file (default results/region_<p0>_<p1>_<detectors>.h5)")
    add_budget_options(rg, disk=False)
    rg.add_argument("--json", action="store_true", help="print one JSON object")

    fg = _sub(sub, "figures", "compute and draw the standard figure set (PNG and PDF)",
              "Build the tables, run every scan of the standard figure set, save the results "
              "files into --out and draw the figures from them.")
    add_common(fg)
    add_output_options(fg, "output folder (default figures)", metavar="DIR")

    pl = _sub(sub, "plot", "draw figures from a results file or a 'mcscan figures' folder",
              "Draw the figures of any results file (scan, limits, region, sensitivities, "
              "sweep, xsec), or the standard figure set from the folder 'mcscan figures' wrote.")
    pl.add_argument("path", nargs="+", metavar="PATH",
                    help="results file, or the folder of 'mcscan figures' (an older form "
                         "'mcscan plot KIND PATH' is still accepted)")
    pl.add_argument("--out", metavar="DIR", default=None, help="output folder (default: beside the input)")
    pl.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")

    se = _sub(sub, "sensitivities", "main job: detector x charge table of 90%% C.L. intervals",
              "Build missing tables, then the allowed interval of every charge the source can "
              "see for each detector and their combination; print the table and save every "
              "profile.")
    add_common(se)
    se.add_argument("--cl", type=cl_arg, default=None, help="confidence level (default 0.90)")
    se.add_argument("--channels", default="nuclear", metavar="LIST",
                    help="comma-separated detection channels: nuclear or nuclear,electron "
                         "(default nuclear)")
    add_output_options(se, "results file (default results/sensitivities_<channels>.h5, e.g. "
                           "results/sensitivities_nuclear.h5)")
    se.add_argument("--json", action="store_true", help="print one JSON object")

    x = _sub(sub, "xsec", "print or plot dsigma/dT, SM and with charges",
             "Differential cross section against recoil energy for one target and neutrino "
             "energy, in the Standard Model and with the charges given.")
    x.add_argument("--config", metavar="FILE", help="user TOML file (for radii and couplings)")
    x.add_argument("-q", "--quiet", action="store_true", help="(no progress output; accepted everywhere)")
    x.add_argument("--target", required=True, help="detector name (CsI, Xe, Ge) or element symbol (Cs)")
    x.add_argument("--enu", type=float_arg, required=True, metavar="MEV", help="neutrino energy, MeV")
    x.add_argument("--flavour", choices=FLAVOURS, required=True,
                   help=f"flavour of the incoming neutrino ({', '.join(FLAVOURS)})")
    x.add_argument("--anti", action="store_true", help="antineutrino")
    x.add_argument("--param", action="append", type=assignment, default=[], metavar="P=VALUE",
                   help="charge in e, e.g. q_ee=2e-8 (repeatable, once per charge)")
    x.add_argument("--channel", choices=("nuclear", "electron"), default="nuclear",
                   help="nuclear recoils (CEvNS, default) or electron recoils (EvES)")
    x.add_argument("--tmin", type=float_arg, metavar="KEV", help="lowest recoil energy, keV")
    x.add_argument("--tmax", type=float_arg, metavar="KEV",
                   help="highest recoil energy, keV (default: end point)")
    x.add_argument("--points", type=points_arg, default=None, metavar="N",
                   help="recoil energies, log-spaced (default 40; 400 with --out)")
    x.add_argument("--radius", type=float_arg, metavar="FM", help="rms radius for an element not in a detector")
    g = x.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true", help="print one JSON object")
    g.add_argument("--out", metavar="FILE.png", help="plot to a PNG, PDF or SVG file")
    x.add_argument("--force", action="store_true", help="overwrite an existing --out file")

    from .scale import add_commands   # ndscan, sweep (local or Dask backends)

    handlers = dict(_COMMANDS)
    handlers.update(add_commands(sub))
    return p, handlers


# ------------------------------------------------------------------ helpers

def _config(args):
    """The configuration of --config (checked as a file first), or the built-in one."""
    from ..api import load_config

    path = getattr(args, "config", None)
    if path is not None:
        from ..io.paths import check_input_file

        check_input_file(path, "configuration file")
    return load_config(path)


def _analysis(args, cfg, detectors, channels="nuclear", build=False, log=None):
    from ..api import Analysis, parse_channels

    tables = tables_for(args, cfg)
    return Analysis(cfg, detectors, parse_channels(channels), tables, build=build,
                    progress=progress(args), log=log)


def _label(detectors) -> str:
    return "+".join(detectors)


# ------------------------------------------------------------------ commands

def _cmd_build(args, cfg):
    from ..api import build_tables

    t0 = time.perf_counter()
    res = build_tables(cfg, args.detector, tables_for(args, cfg), force=args.force,
                       progress=progress(args), log=print)
    print(f"{len(res)} table(s) ready in {time.perf_counter() - t0:.1f} s")


def _cmd_limits(args, cfg):
    if args.level is not None and not args.level > 0:
        raise InputError(f"--level {args.level:g}: expected a positive Delta chi2")
    xrange = ranges_from([args.range], [args.param])[0] if args.range else None
    a = _analysis(args, cfg, args.detector, args.channels)
    lim = a.limits(args.param, cl=args.cl, profile=tuple(args.profile), fixed=fixed_from(args.fix),
                   xrange=xrange, points=args.points, level=args.level, progress=progress(args),
                   **budget_from(args))
    unconstrained = bool(getattr(lim, "unconstrained", False))
    if args.json:
        d = lim.to_json()
        d.setdefault("unconstrained", unconstrained)
        print_json(d)
        return
    if unconstrained:
        print(f"{args.param}: not constrained: {getattr(lim, 'reason', '') or 'flat chi2'}")
        return
    scale = display_scale(args.param)
    prof = f", profiled over {', '.join(lim.profile)}" if lim.profile else ""
    print(f"{args.param} allowed at {lim.cl:.0%} C.L. (Delta chi2 <= {lim.delta_chi2:.4f}{prof}), "
          f"{' + '.join(lim.detectors)}: {fmt_regions(lim.regions, scale)} x {scale:g} e")
    if lim.profile_at_edge:
        err("warning: a profiled charge reached the end of its search range inside the allowed "
            "set; widen analysis.ranges for it")
    if lim.open_low or lim.open_high:
        side = " and ".join(s for s, o in (("low", lim.open_low), ("high", lim.open_high)) if o)
        err(f"warning: the allowed set reaches the {side} end of the scanned range; "
            "that end is not a limit: widen --range")


def _cmd_region(args, cfg):
    ranges = None
    if args.ranges:
        r = args.ranges
        ranges = ranges_from([(r[0], r[1]), (r[2], r[3])], args.params, "--ranges")
    if not 11 <= args.points <= 20001:
        raise InputError(f"--points {args.points}: expected 11 to 20001 per axis")
    fixed = fixed_from(args.fix)
    for p in args.params:
        if p in fixed:
            raise InputError(f"{p} is both scanned (--params) and fixed (--fix)")
    out = check_out(args.out if args.out is not None else
                    f"results/region_{args.params[0]}_{args.params[1]}_{_label(args.detector)}.h5",
                    args, tables=tables_for(args, cfg))
    a = _analysis(args, cfg, args.detector, args.channels)
    reg = a.region(args.params, cl=args.cl, fixed=fixed, ranges=ranges, points=args.points,
                   progress=progress(args), **budget_from(args))
    path = reg.save(out, config=cfg, force=args.force)
    if args.json:
        d = reg.to_json()
        d["results_file"] = str(path)
        print_json(d)
        return
    print(f"{args.params[0]} x {args.params[1]} allowed at {reg.cl:.0%} C.L. (2 d.o.f., "
          f"Delta chi2 <= {reg.delta_chi2:.3f}), {' + '.join(reg.detectors)}: "
          f"{len(reg.polygons)} region(s)")
    for p in args.params:
        s = display_scale(p)
        ext = reg.extent.get(p) or []
        txt = f"[{ext[0] / s:+.3f}, {ext[1] / s:+.3f}] x {s:g} e" if ext else "(empty)"
        print(f"  {p}: {txt}")
    print(f"  area: {reg.area:.4g} e^2; saved to {path}")
    if reg.touches_edge:
        err("warning: the region reaches the edge of the scanned ranges; widen --ranges")


def _cmd_scan(args, cfg):
    from .scale import run_scan

    params = args.param
    if len(params) > 2:
        raise InputError(f"--param given {len(params)} times: a scan takes one or two parameters "
                         "('mcscan ndscan' takes up to six)")
    if len(set(params)) != len(params):
        raise InputError(f"--param {params[0]} given twice: scan two different charges")
    run_scan(args, cfg, "scan")


def _sens_name(channels) -> str:
    return f"results/sensitivities_{'+'.join(channels)}.h5"


def _cmd_sensitivities(args, cfg):
    from ..api import parse_channels

    t0 = time.perf_counter()
    channels = parse_channels(args.channels)
    out = check_out(args.out if args.out is not None else _sens_name(channels), args,
                    tables=tables_for(args, cfg))
    log = None if (args.json or args.quiet) else (lambda m: print(m, file=sys.stderr))
    a = _analysis(args, cfg, None, channels, build=True, log=log)
    sens = a.sensitivities(cl=args.cl, progress=progress(args))
    path = sens.save(out, config=cfg, force=args.force)
    elapsed = time.perf_counter() - t0
    if args.json:
        d = sens.to_json()
        d.update({"results_file": str(path), "wall_time_s": elapsed})
        print_json(d)
        return
    heads = [f"{p} [{scale_label(p)}]" for p in sens.params]
    w = 22
    print(f"Expected {sens.cl:.0%} C.L. allowed intervals, channels: {', '.join(sens.channels)}")
    print(f"{'detector':<10}" + "".join(f"{h:>{w}}" for h in heads))
    for r in sens.rows:
        cells = []
        for p in sens.params:
            lim = sens.limits[(r, p)]
            if getattr(lim, "unconstrained", False):
                cells.append("not constrained")
                continue
            scale = display_scale(p)
            cells.append(" U ".join(f"[{_num3(lo / scale)}, {_num3(hi / scale)}]" for lo, hi in lim.regions))
        print(f"{r:<10}" + "".join(f"{c:>{w}}" for c in cells))
    print(f"profiles saved to {path} ({elapsed:.1f} s)")


def _num3(v: float) -> str:
    """Two decimals, or three significant digits for values below 1."""
    return f"{v:.2f}" if abs(v) >= 1 else f"{v:.3g}"


def _cmd_figures(args, cfg):
    from .. import plot
    from ..figures import compute_figure_data

    out = Path(args.out if args.out is not None else "figures")
    if str(args.out).strip() == "" or (out.exists() and not out.is_dir()):
        raise InputError(f"--out {str(args.out)!r}: expected a folder name")
    tables = tables_for(args, cfg)
    check_out(out / "figures.json", args, tables=tables, suffixes=(".json",))   # a figure set there?
    t0 = time.perf_counter()
    log = None if args.quiet else (lambda m: print(m, file=sys.stderr))
    compute_figure_data(cfg, out, tables_dir=tables, progress=progress(args), log=log)
    written = plot.plot_folder(out)
    print(f"{len(written)} figure files in {out}/ ({time.perf_counter() - t0:.1f} s):")
    for w in written:
        print(f"  {w}")


_PLOT_KINDS = ("all", "profiles", "regions", "xsec")


def _cmd_plot(args, cfg):
    from .. import plot

    items = list(args.path)
    if len(items) == 2 and items[0] in _PLOT_KINDS:     # 'mcscan plot KIND PATH' (older form)
        items = items[1:]
    if len(items) != 1:
        raise InputError(f"plot takes one PATH, got {len(items)}: {' '.join(items)}")
    src = Path(items[0])
    if not src.exists():
        raise InputError(f"{str(src)!r} not found: expected a results file or a folder of "
                         "'mcscan figures'")
    written = plot.plot_folder(src, args.out) if src.is_dir() else plot.plot_file(src, args.out)
    if not written:
        raise InputError(f"nothing to draw from {str(src)!r}")
    if not args.quiet:
        for w in written:
            print(w)


def _cmd_xsec(args, cfg):
    from ..api import xsec

    if args.out is not None:
        check_out(args.out, args, suffixes=(".png", ".pdf", ".svg"))
    charges = fixed_from(args.param, "--param")
    v = xsec(cfg, args.target, args.enu, args.flavour, antineutrino=args.anti, charges=charges,
             channel=args.channel, tmin_kev=args.tmin, tmax_kev=args.tmax,
             points=args.points or (400 if args.out else 40), radius_fm=args.radius)
    if args.json:
        print_json(v.to_json())
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


_COMMANDS = {"build": _cmd_build, "scan": _cmd_scan, "limits": _cmd_limits,
             "sensitivities": _cmd_sensitivities, "xsec": _cmd_xsec, "region": _cmd_region,
             "figures": _cmd_figures, "plot": _cmd_plot}


# ------------------------------------------------------------------ main

#: Set once SIGINT or SIGTERM arrived (a C extension may turn the interrupt of its
#: import into an ImportError: that is an interrupt too, not a broken install).
_SIGNALLED = [False]


def _interrupt(signum, frame):
    _SIGNALLED[0] = True
    raise KeyboardInterrupt


def _quiet_stdout() -> None:
    """After a broken pipe: send what is left of stdout nowhere (no error at exit)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv=None) -> int:
    """Run ``mcscan argv``; returns the exit status."""
    import signal

    INTERRUPT_HINT[0] = None
    _SIGNALLED[0] = False
    restore = {}
    try:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):   # SIGTERM stops as cleanly as Ctrl-C
                restore[sig] = signal.signal(sig, _interrupt)
        parser, handlers = _parser()
        args = parser.parse_args(argv)
        cfg = _config(args) if args.command != "plot" else None
        handlers[args.command](args, cfg)
        sys.stdout.flush()
    except (InputError, ConfigError) as exc:
        err(f"error: {flagify(str(exc))}")
        return 2
    except McscanError as exc:
        err(f"error: {flagify(str(exc))}")
        return 1
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:       # e.g. 'mcscan sensitivities | head -1'
        _quiet_stdout()
        return 141
    except Exception:
        if _SIGNALLED[0]:         # an import cut short by Ctrl-C
            return _interrupted()
        raise
    finally:
        for sig, handler in restore.items():
            signal.signal(sig, handler)
    return 0


def _interrupted() -> int:
    try:
        err(f"interrupted: {INTERRUPT_HINT[0] or 'nothing was written for the unfinished step'}")
    except (BrokenPipeError, OSError):
        pass
    return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
