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
from ..params import FAMILY_NAMES, FLAVOURS, PARAMS, SPEC, display_scale, scale_label
from .common import (
    FIX_ANY,
    INTERRUPT_HINT,
    add_backend_options,
    add_budget_options,
    add_common,
    add_output_options,
    add_target_options,
    assignment,
    budget_from,
    check_out,
    cl_arg,
    err,
    fixed_from,
    flagify,
    float_arg,
    fmt_regions,
    param_arg,
    Parser,
    points_arg,
    positive_int,
    print_json,
    progress,
    ranges_from,
    scaled_unit,
    seed_arg,
    short_hash,
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
             "Profiled chi2 on a grid of one or two parameters (charges, or of any families), "
             "streamed to a results file in chunks (resumable with --resume). Same engine and "
             "numbers as 'mcscan ndscan'.")
    add_common(s)
    add_target_options(s, FIX_ANY)
    s.add_argument("--param", action="append", type=param_arg, required=True, metavar="P",
                   help=f"scanned parameter, once or twice: a charge ({', '.join(PARAMS)}) or a "
                        "parameter of another family (r2_ee, mu_e, sin2w, eps_u_ee, ...)")
    s.add_argument("--range", action="append", nargs=2, type=float_arg, metavar=("LO", "HI"),
                   help="range of each scanned parameter in its unit (e, cm^2, mu_B or 1; default "
                        "from the configuration for charges, else the parameter's own)")
    s.add_argument("--points", action="append", type=points_arg, metavar="N",
                   help="grid points of each scanned parameter (default 2001 in 1D, 201 in 2D)")
    _add_data(s)
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
              "other charges fixed (--fix, default 0) or profiled (--profile). Writes a results "
              "file only with --out (kind limits, or fc for --method fc).")
    add_common(li)
    add_target_options(li, "value of another charge in e, e.g. q_mumu=1e-9 (default 0; once per charge)")
    li.add_argument("--param", type=param_arg, required=True, metavar="P",
                    help=f"the parameter: a charge ({', '.join(PARAMS)}) or one of another "
                         "family (r2_ee, mu_e, sin2w, eps_u_ee, ...; see 'mcscan sensitivities "
                         "--family')")
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
    _add_data(li)
    li.add_argument("--method", choices=("wilks", "fc"), default="wilks",
                    help="wilks: Delta chi2 below the chi2 quantile (default); fc: Feldman-Cousins "
                         "critical values from toys (charges only; --points grid values, default 201)")
    li.add_argument("--toys", type=positive_int, default=1000, metavar="N",
                    help="toys per grid value of --method fc (default 1000)")
    li.add_argument("--seed", type=seed_arg, default=0, metavar="S",
                    help="random seed of the toys (default 0; same seed, same numbers)")
    li.add_argument("--chunk-toys", type=positive_int, default=None, metavar="N",
                    help="toys per kernel call of --method fc (default 4096; the numbers do not "
                         "depend on it)")
    add_budget_options(li, disk=False)
    add_output_options(li, "also save the result as a results file (.h5): kind limits, or fc "
                           "for --method fc (default: nothing written)")
    li.add_argument("--resume", action="store_true",
                    help="--method fc with --out: continue an interrupted run from the grid values "
                         "kept in OUT.partial")
    li.add_argument("--json", action="store_true", help="print one JSON object")
    add_backend_options(li, "where the toys of --method fc run (one task per grid value)")

    rg = _sub(sub, "region", "allowed region of two charges: polygons, extent, area",
              "Allowed region of two charges at the two-parameter C.L. (Delta chi2 = 4.605 at "
              "90%%): closed contour polygons, extent per charge and area, saved to HDF5.")
    add_common(rg)
    add_target_options(rg, "value of another charge in e, e.g. q_emu=1e-9 (default 0; once per charge)")
    rg.add_argument("--params", nargs=2, type=param_arg, required=True, metavar=("P0", "P1"),
                    help=f"the two charges of the region ({', '.join(PARAMS)}), or two "
                         "parameters of any family (r2_ee, mu_e, sin2w, eps_u_ee, ...)")
    rg.add_argument("--cl", type=cl_arg, default=None, help="confidence level (default 0.90; 2 d.o.f.)")
    rg.add_argument("--ranges", nargs=4, type=float_arg, metavar=("LO0", "HI0", "LO1", "HI1"),
                    help="scan ranges in e (default: configuration, zoomed onto the region)")
    rg.add_argument("--points", type=int, default=201, metavar="N",
                    help="grid points per axis, 11 to 20001 (default 201)")
    _add_data(rg)
    add_output_options(rg, "results file (default results/region_<p0>_<p1>_<detectors>.h5)")
    add_budget_options(rg, disk=False)
    rg.add_argument("--json", action="store_true", help="print one JSON object")

    fg = _sub(sub, "figures", "compute and draw the standard figure set (PNG and PDF)",
              "Build the tables, run every scan of the standard figure set, save the results "
              "files into --out and draw the figures from them.")
    add_common(fg)
    add_output_options(fg, "output folder (default figures)", metavar="DIR")
    fg.add_argument("--families", default="charges", metavar="LIST",
                    help="comma-separated figure sets of parameter families: charges, radii, nsi, "
                         "moments (default charges)")
    fg.add_argument("--frequentist", default="", metavar="LIST",
                    help="comma-separated frequentist figure sets: bands, feldman-cousins "
                         "(default none)")
    fg.add_argument("--toys", type=positive_int, default=1000, metavar="N",
                    help="toys of the frequentist figure sets (default 1000)")
    fg.add_argument("--seed", type=seed_arg, default=0, metavar="S",
                    help="random seed of the toys (default 0)")

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
    se.add_argument("--family", choices=FAMILY_NAMES + ("all",), default="charges",
                    help="parameter family of the table: charges (default), radii (cm^2), "
                         "moments (mu_B), nsi, sin2w or all")
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
                   help="charge in e, e.g. q_ee=2e-8, or a parameter of another family, e.g. "
                        "r2_ee=-3e-31 or mu_e=1e-9 (repeatable, once per parameter)")
    x.add_argument("--channel", choices=("nuclear", "electron"), default="nuclear",
                   help="nuclear recoils (CEvNS, default) or electron recoils (EvES)")
    x.add_argument("--tmin", type=float_arg, metavar="KEV", help="lowest recoil energy, keV")
    x.add_argument("--tmax", type=float_arg, metavar="KEV",
                   help="highest recoil energy, keV (default: end point)")
    x.add_argument("--points", type=points_arg, default=None, metavar="N",
                   help="recoil energies, log-spaced (default 40; 400 with --out)")
    x.add_argument("--radius", type=float_arg, metavar="FM",
                   help="rms radius for an element not in a detector")
    g = x.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true", help="print one JSON object")
    g.add_argument("--out", metavar="FILE.png", help="plot to a PNG, PDF or SVG file")
    x.add_argument("--force", action="store_true", help="overwrite an existing --out file")

    ft = _sub(sub, "fit", "best fit of one or two charges to observed counts",
              "Minimise the chi2 over the charges given, against the observed counts of a data "
              "file: best-fit point, fitted pulls, chi2_min with its degrees of freedom and "
              "p-value, and the Delta chi2 = 1 uncertainties (docs/statistics.md).")
    add_common(ft)
    ft.add_argument("--data", required=True, metavar="FILE",
                    help="observed counts, CSV detector,bin_low,bin_high,counts")
    ft.add_argument("--param", action="append", type=param_arg, required=True, metavar="P",
                    help="fitted charge (once or twice)")
    ft.add_argument("--detector", action="append", metavar="NAME",
                    help="detector (repeatable; default every detector of the data file)")
    ft.add_argument("--channels", default="nuclear", metavar="LIST",
                    help="comma-separated detection channels (default nuclear)")
    ft.add_argument("--fix", action="append", type=assignment, default=[], metavar="P=VALUE",
                    help="value of another charge in e (default 0)")
    ft.add_argument("--out", metavar="FILE", default=None,
                    help="also save the fit as a results file (kind fit, .h5)")
    ft.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    ft.add_argument("--json", action="store_true", help="print one JSON object")

    asm = _sub(sub, "asimov", "write expected counts (Asimov data) as a data file",
               "Write the expected counts N(theta) + B of the detectors at the charges given "
               "(others 0) as a CSV data file detector,bin_low,bin_high,counts.")
    add_common(asm)
    asm.add_argument("--detector", action="append", required=True, metavar="NAME",
                     help="detector (repeatable)")
    asm.add_argument("--channels", default="nuclear", metavar="LIST",
                     help="comma-separated detection channels (default nuclear)")
    asm.add_argument("--param", action="append", type=assignment, default=[], metavar="P=VALUE",
                     help="charge in e at which the counts are expected, e.g. q_ee=3e-9 "
                          "(repeatable; default all 0, the Standard Model)")
    asm.add_argument("--out", required=True, metavar="FILE.csv", help="data file to write")
    asm.add_argument("--force", action="store_true", help="overwrite an existing file")

    bd = _sub(sub, "bands", "expected-limit bands of one charge from toys",
              "Median and 68%%/95%% bands of the lower and upper limits of one charge from toys "
              "generated under the Standard Model (or the --fix values), beside the Asimov "
              "interval (docs/statistics.md).")
    add_common(bd)
    add_target_options(bd)
    bd.add_argument("--param", type=param_arg, required=True, metavar="P", help="the charge")
    bd.add_argument("--toys", type=positive_int, default=1000, metavar="N", help="toys (default 1000)")
    bd.add_argument("--seed", type=seed_arg, default=0, metavar="S", help="random seed (default 0)")
    bd.add_argument("--cl", type=cl_arg, default=None, help="confidence level (default 0.90)")
    bd.add_argument("--points", type=points_arg, default=201, metavar="N",
                    help="grid points of each toy's chi2 (default 201)")
    bd.add_argument("--chunk-toys", type=positive_int, default=None, metavar="N",
                    help="toys per task and kernel call (default 4096, on Dask about four tasks "
                         "per worker thread; the numbers do not depend on it)")
    bd.add_argument("--out", metavar="FILE", default=None,
                    help="also save the bands as a results file (kind bands, .h5)")
    bd.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    bd.add_argument("--json", action="store_true", help="print one JSON object")
    add_backend_options(bd, "where the toys run")

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
    data = getattr(args, "data", None)
    if data is not None:
        from ..io.paths import check_input_file

        check_input_file(data, "data file")
    return Analysis(cfg, detectors, parse_channels(channels), tables, build=build,
                    progress=progress(args), log=log, data=data)


def _add_data(p) -> None:
    p.add_argument("--data", metavar="FILE", default=None,
                   help="observed counts (CSV detector,bin_low,bin_high,counts) instead of the "
                        "expected Standard Model counts")


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
    if args.method != "fc":
        for flag, given in (("--resume", args.resume), ("--chunk-toys", args.chunk_toys is not None),
                            ("--backend", args.backend != "local"),
                            ("--scheduler", args.scheduler is not None),
                            ("--workers", args.workers is not None)):
            if given:
                raise InputError(f"{flag} is for --method fc")
    if args.resume and args.out is None:
        raise InputError("--resume needs --out FILE (the unfinished run is kept in FILE.partial)")
    xrange = ranges_from([args.range], [args.param])[0] if args.range else None
    out = check_out(args.out, args, tables=tables_for(args, cfg)) if args.out else None
    a = _analysis(args, cfg, args.detector, args.channels)
    if args.method == "fc":
        _limits_fc(args, cfg, a, xrange, out)
        return
    lim = a.limits(args.param, cl=args.cl, profile=tuple(args.profile), fixed=fixed_from(args.fix),
                   xrange=xrange, points=args.points, level=args.level, progress=progress(args),
                   **budget_from(args))
    unconstrained = bool(getattr(lim, "unconstrained", False))
    if out is not None:
        lim.save(out, config=cfg, force=args.force)
    if args.json:
        d = lim.to_json()
        d.setdefault("unconstrained", unconstrained)
        if out is not None:
            d["results_file"] = str(out)
        print_json(d)
        return
    if unconstrained:
        print(f"{args.param}: not constrained: {getattr(lim, 'reason', '') or 'flat chi2'}")
        return
    scale = display_scale(args.param)
    prof = f", profiled over {', '.join(lim.profile)}" if lim.profile else ""
    print(f"{args.param} allowed at {lim.cl:.0%} C.L. (Delta chi2 <= {lim.delta_chi2:.4f}{prof}), "
          f"{' + '.join(lim.detectors)}: {fmt_regions(lim.regions, scale)}{scaled_unit(args.param)}")
    if lim.profile_at_edge:
        err("warning: a profiled parameter reached the end of its search range inside the allowed "
            "set; widen analysis.ranges for it")
    if lim.open_low or lim.open_high:
        side = " and ".join(s for s, o in (("low", lim.open_low), ("high", lim.open_high)) if o)
        err(f"warning: the allowed set reaches the {side} end of the scanned range; "
            "that end is not a limit: widen --range")


def _limits_fc(args, cfg, a, xrange, out):
    from .scale import backend_from_args

    if args.param not in PARAMS:
        raise InputError(f"--method fc takes a charge ({', '.join(PARAMS)}), not {args.param}")
    if args.profile or args.level is not None:
        raise InputError("--method fc takes no --profile and no --level (its critical values "
                         "come from the toys)")
    store = None if out is None else Path(f"{out}.partial")
    if store is not None:
        INTERRUPT_HINT[0] = (f"finished grid values are kept in {store}; repeat the same command "
                             "with --resume to finish")
    with backend_from_args(args) as backend:
        lim = a.limits(args.param, cl=args.cl, fixed=fixed_from(args.fix), xrange=xrange,
                       points=args.points, method="fc", toys=args.toys, seed=args.seed,
                       progress=progress(args), store=store, resume=args.resume, backend=backend,
                       chunk=args.chunk_toys)
    INTERRUPT_HINT[0] = None
    if out is not None:
        lim.save(out, config=cfg, force=args.force)
    if args.json:
        d = lim.to_json()
        if out is not None:
            d["results_file"] = str(out)
        print_json(d)
        return
    scale = display_scale(args.param)
    print(f"{args.param} allowed at {lim.cl:.0%} C.L. (Feldman-Cousins, {lim.toys} toys per "
          f"value, seed {lim.seed}), {' + '.join(lim.detectors)}: "
          f"{fmt_regions(lim.regions, scale)}{scaled_unit(args.param)}")
    print(f"  Wilks (Delta chi2 <= {lim.delta_chi2:.4f}): "
          f"{fmt_regions(lim.wilks_regions, scale)}{scaled_unit(args.param)}")
    cov, grid = [float(c) for c in lim.coverage], [float(x) for x in lim.grid]
    j = min(range(len(grid)), key=lambda i: abs(grid[i]))
    print(f"  Wilks coverage: {min(cov):.3f} to {max(cov):.3f} over {len(grid)} values "
          f"(at {args.param} = {grid[j]:.3g}: {cov[j]:.3f} +- {float(lim.coverage_error[j]):.3f}); "
          f"critical values {float(min(lim.critical)):.3f} to {float(max(lim.critical)):.3f}")
    if out is not None:
        print(f"  saved to {out}")
    if lim.open_low or lim.open_high:
        err("warning: the Feldman-Cousins set reaches an end of its grid; widen --range")


def _cmd_fit(args, cfg):
    params = list(args.param)
    if len(params) > 2:
        raise InputError(f"--param given {len(params)} times: fit takes one or two charges")
    if len(set(params)) != len(params):
        raise InputError(f"--param {params[0]} given twice: fit two different charges")
    for p in params:
        if p not in PARAMS:
            raise InputError(f"--param {p}: fit takes charges ({', '.join(PARAMS)})")
    fixed = fixed_from(args.fix)
    for p in params:
        if p in fixed:
            raise InputError(f"{p} is both fitted (--param) and fixed (--fix)")
    out = check_out(args.out, args, tables=tables_for(args, cfg)) if args.out else None
    a = _analysis(args, cfg, args.detector, args.channels)
    f = a.fit(params, fixed=fixed)
    if out is not None:
        f.save(out, config=cfg, force=args.force)
    if args.json:
        print_json(f.to_json())
        return
    pv = "n/a" if f.p_value is None else f"{f.p_value:.4g}"
    print(f"best fit to {a.data} ({' + '.join(f.detectors)}): chi2_min = {f.chi2_min:.4g} for "
          f"{f.ndof} degrees of freedom, p-value {pv}" + ("" if f.converged else " (NOT converged)"))
    for p in params:
        s = display_scale(p)
        lo, hi = f.errors.get(p, (None, None))
        minus = "open" if lo is None else f"{(f.best[p] - lo) / s:.4g}"
        plus = "open" if hi is None else f"{(hi - f.best[p]) / s:.4g}"
        print(f"  {p} = {f.best[p] / s:+.4g} -{minus} +{plus}{scaled_unit(p)} (Delta chi2 = 1)")
    for d, (sp, bp) in f.pulls.items():
        print(f"  pulls {d}: signal {sp:+.4g}, background {bp:+.4g}")


def _cmd_asimov(args, cfg):
    fixed = fixed_from(args.param, "--param")
    for p in fixed:
        if p not in PARAMS:
            raise InputError(f"--param {p}: Asimov data take charges ({', '.join(PARAMS)})")
    out = check_out(args.out, args, tables=tables_for(args, cfg), suffixes=(".csv",))
    a = _analysis(args, cfg, args.detector, args.channels)
    path = a.asimov(out, fixed=fixed, force=args.force)
    if not args.quiet:
        at = ", ".join(f"{k}={v:g} e" for k, v in fixed.items()) or "the Standard Model"
        print(f"expected counts of {' + '.join(a.detectors)} at {at} written to {path}")


#: Keys of the JSON of 'mcscan bands'.
BANDS_KEYS = ("param", "cl", "toys", "seed", "asimov_regions", "lower", "upper", "unit")


def _cmd_bands(args, cfg):
    if args.param not in PARAMS:
        raise InputError(f"--param {args.param}: bands take a charge ({', '.join(PARAMS)})")
    fixed = fixed_from(args.fix)
    if args.param in fixed:
        raise InputError(f"{args.param} is both --param and fixed (--fix)")
    out = check_out(args.out, args, tables=tables_for(args, cfg)) if args.out else None
    a = _analysis(args, cfg, args.detector, args.channels)
    from .scale import backend_from_args

    with backend_from_args(args) as backend:
        b = a.bands(args.param, toys=args.toys, seed=args.seed, cl=args.cl, fixed=fixed,
                    points=args.points, progress=progress(args), backend=backend,
                    chunk=args.chunk_toys)
    if out is not None:
        b.save(out, config=cfg, force=args.force)
    d = b.to_json()
    if args.json:
        print_json({k: d[k] for k in BANDS_KEYS})
        return
    s = display_scale(args.param)
    u = scaled_unit(args.param)
    print(f"{args.param} expected {b.cl:.0%} C.L. limits, {' + '.join(b.detectors)}, {b.toys} toys "
          f"(seed {b.seed}); Asimov: {fmt_regions(b.asimov_regions, s)}{u}")
    for side in ("lower", "upper"):
        q = d[side]
        print(f"  {side}: median {q['median'] / s:+.3f}, 68% [{q['p16'] / s:+.3f}, {q['p84'] / s:+.3f}], "
              f"95% [{q['p2.5'] / s:+.3f}, {q['p97.5'] / s:+.3f}]{u}")
    if b.open_low or b.open_high or b.unconverged:
        err(f"warning: {b.open_low} toy(s) open below, {b.open_high} above, {b.unconverged} with "
            "unconverged pulls")


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
        txt = f"[{ext[0] / s:+.3f}, {ext[1] / s:+.3f}]{scaled_unit(p)}" if ext else "(empty)"
        print(f"  {p}: {txt}")
    units = [SPEC[p].unit for p in args.params]
    area_unit = f"{units[0]}^2" if units[0] == units[1] else " x ".join(units)
    print(f"  area: {reg.area:.4g} {area_unit}; saved to {path}")
    if reg.touches_edge:
        err("warning: the region reaches the edge of the scanned ranges; widen --ranges")


def _cmd_scan(args, cfg):
    from .scale import run_scan

    params = args.param
    if len(params) > 2:
        raise InputError(f"--param given {len(params)} times: a scan takes one or two parameters "
                         "('mcscan ndscan' takes up to six)")
    if len(set(params)) != len(params):
        raise InputError(f"--param {params[0]} given twice: scan two different parameters")
    run_scan(args, cfg, "scan")


def _sens_name(channels, family="charges", args=None, cfg=None) -> str:
    """Default results file of the main job, named after what it holds: family, channels,
    the user configuration (stem and hash) and a C.L. other than the configured one."""
    fam = "" if family == "charges" else f"{family}_"
    tag = ""
    if args is not None and getattr(args, "config", None) and cfg is not None:
        tag += f"_{Path(args.config).stem}-{short_hash(cfg.to_dict())}"
    if args is not None and getattr(args, "cl", None) is not None and cfg is not None \
            and args.cl != cfg.analysis.cl:
        tag += f"_cl{args.cl:g}"
    return f"results/sensitivities_{fam}{'+'.join(channels)}{tag}.h5"


def _cmd_sensitivities(args, cfg):
    from ..api import parse_channels

    t0 = time.perf_counter()
    channels = parse_channels(args.channels)
    family = getattr(args, "family", "charges")
    default = _sens_name(channels, family, args, cfg)
    # the default file holds exactly what this run computes: a rerun keeps it (no
    # overwrite without --force) and still prints the table
    keep = args.out is None and not args.force and Path(default).is_file()
    out = None if keep else check_out(args.out if args.out is not None else default, args,
                                      tables=tables_for(args, cfg))
    log = None if (args.json or args.quiet) else (lambda m: print(m, file=sys.stderr))
    a = _analysis(args, cfg, None, channels, build=True, log=log)
    # a kept file made from the same inputs (configuration, tables, C.L., code) is the answer
    sens = a.stored_sensitivities(default, cl=args.cl) if keep and family == "charges" else None
    reused = sens is not None
    if sens is None:
        sens = a.sensitivities(cl=args.cl, family=family, progress=progress(args))
    path = Path(default) if keep else sens.save(out, config=cfg, force=args.force)
    elapsed = time.perf_counter() - t0
    if reused:
        saved = (f"read from {path}: it is up to date (same configuration, tables, C.L. and "
                 "code; --force recomputes)")
    elif keep:
        saved = f"{path} exists and was kept (--force replaces it)"
    else:
        saved = f"profiles saved to {path}"
    if args.json:
        d = sens.to_json()
        d.update({"results_file": str(path), "results_file_kept": keep, "results_reused": reused,
                  "wall_time_s": elapsed})
        print_json(d)
        return
    if family != "charges":
        print(sens.format_table())
        print(f"{saved} ({elapsed:.1f} s)")
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
    print(f"{saved} ({elapsed:.1f} s)")


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
    families = tuple(x.strip() for x in args.families.split(",") if x.strip())
    freq = tuple(x.strip() for x in args.frequentist.split(",") if x.strip())
    extra = {}
    if families != ("charges",):
        extra["families"] = families
    if freq:
        extra.update(frequentist=freq, toys=args.toys, seed=args.seed)
    compute_figure_data(cfg, out, tables_dir=tables, progress=progress(args), log=log, **extra)
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
    q = ", ".join(f"{k}={val:g}" + ("" if SPEC[k].unit == "1" else f" {SPEC[k].unit}")
                  for k, val in v.charges.items()) or "none"
    print(f"# {v.target} {v.channel}, E = {v.enu_mev:g} MeV, {'anti-' if v.antineutrino else ''}"
          f"nu_{v.flavour}; charges: {q}; end point {v.t_end_kev:.4g} {unit}")
    print(f"# {'T [' + unit + ']':>12} {'SM [cm^2/keV]':>16} {'charged [cm^2/keV]':>20} {'ratio':>10}")
    for t, a, b in zip(v.T_kev, v.sm, v.bsm):
        r = f"{b / a:10.5g}" if a > 0 else f"{'-':>10}"
        print(f"  {t:12.5g} {a:16.6g} {b:20.6g} {r}")


_COMMANDS = {"build": _cmd_build, "scan": _cmd_scan, "limits": _cmd_limits,
             "sensitivities": _cmd_sensitivities, "xsec": _cmd_xsec, "region": _cmd_region,
             "figures": _cmd_figures, "plot": _cmd_plot, "fit": _cmd_fit, "asimov": _cmd_asimov,
             "bands": _cmd_bands}


# ------------------------------------------------------------------ main

#: Set once SIGINT or SIGTERM arrived (a C extension may turn the interrupt of its
#: import into an ImportError: that is an interrupt too, not a broken install).
_SIGNALLED = [False]


def _in_c_callback(frame) -> bool:
    """The signal arrived inside a Python callback called from C, where an exception is
    printed ("Exception ignored in ...", with its traceback) and dropped: numba's
    compiler caching through llvmlite, or the weakref callback by which the import
    system forgets a module's lock once the import is done (``cb`` in importlib's
    ``_get_module_lock``)."""
    if (frame is not None and frame.f_code.co_name == "cb"
            and frame.f_code.co_filename.startswith("<frozen importlib")):
        return True
    while frame is not None:
        if "llvmlite" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _take_later() -> None:
    """Deliver the interrupt again in 20 ms (SIGALRM, handled by :func:`_interrupt`),
    once Python is out of the C callback where raising it would be swallowed."""
    import signal

    signal.setitimer(signal.ITIMER_REAL, 0.02)


def _interrupt(signum, frame):
    _SIGNALLED[0] = True
    if _in_c_callback(frame):
        _take_later()
        return
    raise KeyboardInterrupt


def _unraisable(previous):
    """A ``sys.unraisablehook`` for the time :func:`main` runs: a ``KeyboardInterrupt``
    from :func:`_interrupt` that was raised in a callback Python runs from C (a finalizer,
    a weakref or garbage-collector callback not known to :func:`_in_c_callback`), and so
    dropped, is taken again 20 ms later outside it, without the "Exception ignored"
    report; everything else goes to ``previous``."""
    def hook(unraisable):
        if _SIGNALLED[0] and isinstance(unraisable.exc_value, KeyboardInterrupt):
            _take_later()
            return
        previous(unraisable)
    return hook


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
    unraisable = None
    try:
        if threading.current_thread() is threading.main_thread():
            # SIGTERM stops as cleanly as Ctrl-C; SIGALRM re-delivers an interrupt deferred
            # out of a C callback (see _interrupt)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
                restore[sig] = signal.signal(sig, _interrupt)
            unraisable = sys.unraisablehook
            sys.unraisablehook = _unraisable(unraisable)
        parser, handlers = _parser()
        args = parser.parse_args(argv)
        cfg = _config(args) if args.command != "plot" else None
        handlers[args.command](args, cfg)
        sys.stdout.flush()
        if _SIGNALLED[0]:         # an interrupt that could not be raised where it arrived
            return _interrupted()
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
        if restore:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if unraisable is not None:
            sys.unraisablehook = unraisable
        for sig, handler in restore.items():
            signal.signal(sig, handler)
    return 0


def run() -> None:
    """The console command: :func:`main`, then exit without tearing down the interpreter.

    Every file the command writes is closed (and renamed into place) before
    :func:`main` returns, so after flushing stdout and stderr nothing is left
    to do but free memory: a normal interpreter exit spends about 0.3 s
    finalising the compiled kernels' LLVM objects and the loaded modules,
    longer than a warm ``mcscan limits`` computes.  Under a profiler, a tracer
    or coverage measurement the interpreter exits normally, so they can write
    their data.
    """
    try:
        code = main()
    except KeyboardInterrupt:     # Ctrl-C before main set its handlers or after it restored them
        code = _interrupted()
    if sys.gettrace() is not None or sys.getprofile() is not None or "coverage" in sys.modules:
        sys.exit(code)            # a profiler or coverage writes its data at exit
    try:
        sys.stdout.flush()
    except BrokenPipeError:       # the reader went away after the last write
        _quiet_stdout()
        code = code or 141
    except (OSError, ValueError):
        pass
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)


def _interrupted() -> int:
    try:
        err(f"interrupted: {INTERRUPT_HINT[0] or 'nothing was written for the unfinished step'}")
    except (BrokenPipeError, OSError):
        pass
    return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
