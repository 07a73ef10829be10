"""Subcommands that scale out: ``mcscan ndscan`` and ``mcscan sweep``, and the
scan runner shared with ``mcscan scan``.

:func:`add_commands` adds ``ndscan`` and ``sweep`` to the ``mcscan`` parser
and returns their handlers.  ``mcscan scan`` (one or two parameters) and
``mcscan ndscan`` (one to six), over charges or parameters of any families,
both run :func:`run_scan`: the same API call (:meth:`mcscan.api.Analysis.scan`),
the same engine and writer, the same numbers.
"""
from __future__ import annotations

import sys

from ..errors import InputError
from ..params import PARAMS, SPEC, display_scale
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
    float_arg,
    param_arg,
    points_arg,
    positive_int,
    print_json,
    progress,
    ranges_from,
    scaled_unit,
    short_hash,
    tables_for,
)

__all__ = ["add_commands", "backend_from_args", "run_scan"]


def backend_from_args(args):
    """The backend the options ask for (a context manager; closes what it started)."""
    from ..scans.backends import make_backend

    return make_backend(getattr(args, "backend", "local"), scheduler=getattr(args, "scheduler", None),
                        workers=getattr(args, "workers", None))


def add_commands(sub) -> dict:
    """Add ``ndscan`` and ``sweep`` to the subparsers ``sub``; returns {name: handler(args, cfg)}."""
    nd = sub.add_parser(
        "ndscan", help="N-dimensional profiled chi2 scan (1 to 6 parameters), streamed to HDF5, "
                       "with projections",
        description="Profiled chi2 on a grid of 1 to 6 parameters (the last varying fastest): "
                    "charges or parameters of any families mixed (r2_ee, mu_e, sin2w, eps_u_ee, "
                    "...), streamed to a results file in chunks (resumable with --resume), with "
                    "profiled and fixed projections onto one or two of them.")
    add_common(nd)
    add_target_options(nd, FIX_ANY)
    nd.add_argument("--param", action="append", type=param_arg, required=True, metavar="P",
                    help=f"scanned parameter, 1 to 6 times, the last varying fastest: a charge "
                         f"({', '.join(PARAMS)}) or a parameter of another family (r2_ee, mu_e, "
                         "sin2w, eps_u_ee, ...)")
    nd.add_argument("--range", action="append", nargs=2, type=float_arg, metavar=("LO", "HI"),
                    help="range of each scanned parameter in its unit (e, cm^2, mu_B or 1; "
                         "default from the configuration for charges, else the parameter's own)")
    nd.add_argument("--points", action="append", type=points_arg, metavar="N",
                    help="grid points per scanned charge, once for all or once each "
                         "(default 2001 in 1D, 201 in 2D, 51 in 3D, 21 in 4D and 5D, 11 in 6D)")
    nd.add_argument("--project", action="append", default=None, metavar="P[,P2]",
                    help="projection onto one or two scanned charges, profiled and fixed "
                         "(repeatable; default every scanned charge alone)")
    nd.add_argument("--at", action="append", type=assignment, default=[], metavar="P=VALUE",
                    help="where fixed projections slice a scanned parameter (nearest grid point; "
                         "default 0, sin2w its configured value)")
    add_output_options(nd, "results file (default results/ndscan_<params>_<detectors>.h5)")
    nd.add_argument("--resume", action="store_true",
                    help="finish an interrupted scan of the same command from its stored chunks "
                         "(on any backend)")
    nd.add_argument("--chunk-points", type=positive_int, default=None, metavar="N",
                    help="points per chunk, rounded to whole rows (default: automatic)")
    nd.add_argument("--cl", type=cl_arg, default=None,
                    help="confidence level of the printed 1D intervals (default 0.90)")
    add_budget_options(nd)
    nd.add_argument("--json", action="store_true", help="print one JSON object")
    add_backend_options(nd)

    sw = sub.add_parser(
        "sweep", help="limits over a grid of configurations (thresholds, masses, exposures ...)",
        description="Limits against configuration values: every combination of the --vary "
                    "values is a configuration whose tables are built once (cached under "
                    "<tables>/sweep/); the limits go to one results file, a table and a figure.")
    add_common(sw)
    sw.add_argument("--vary", action="append", required=True, metavar="KEY=VALUES",
                    help="KEY=lo:hi:n (n values, ends included) or KEY=a,b,c; repeatable "
                         "(Cartesian product). KEY: a dotted configuration path "
                         "(detectors.Ge.threshold_kev, source.years, ...) or an alias "
                         "(detector.Ge.threshold, detector.Ge.mass, years, ...). A varied "
                         "threshold moves the first bin edge if the bins start at it")
    sw.add_argument("--param", action="append", type=param_arg, required=True, metavar="P",
                    help="charge whose limit is computed (repeatable)")
    sw.add_argument("--detector", action="append", metavar="NAME",
                    help="detector (repeatable: combined chi2; default those the --vary keys name)")
    sw.add_argument("--cl", type=cl_arg, default=None, help="confidence level (default 0.90)")
    sw.add_argument("--channels", default="nuclear", metavar="LIST",
                    help="comma-separated detection channels: nuclear or nuclear,electron "
                         "(default nuclear)")
    add_output_options(sw, "results file (default results/sweep_<hash of the sweep>.h5)")
    sw.add_argument("--plot", metavar="DIR", default=None,
                    help="folder of the figures sweep_<param>.png/.pdf (default: beside --out)")
    sw.add_argument("--no-plot", action="store_true", help="draw no figure")
    sw.add_argument("--json", action="store_true", help="print one JSON object")
    add_backend_options(sw)
    return {"ndscan": _cmd_ndscan, "sweep": _cmd_sweep}


# ------------------------------------------------------------------ scans

def run_scan(args, cfg, command: str) -> None:
    """Parse the scan options of ``scan``/``ndscan``, run Analysis.scan, print."""
    from ..api import parse_channels

    params = list(args.param)
    n = len(params)
    # the words of the messages: "charge" for a scan of charges, else "parameter"
    what = "charge" if all(p in PARAMS for p in [*params, *(k for k, _ in args.fix)]) else "parameter"
    if n > 6:
        raise InputError(f"--param given {n} times: a scan takes 1 to 6 {what}s")
    if len(set(params)) != n:
        raise InputError(f"--param: a {what} is given twice")
    ranges = None
    if args.range:
        if len(args.range) != n:
            raise InputError(f"{n} {what}(s) but {len(args.range)} --range: give one per {what}")
        ranges = ranges_from(args.range, params)
    pts = args.points
    if pts is not None and len(pts) not in (1, n):
        raise InputError(f"{n} {what}(s) but {len(pts)} --points: give one for all or one per "
                         f"{what}")
    fixed = fixed_from(args.fix)
    for p in params:
        if p in fixed:
            raise InputError(f"{p} is both scanned and fixed")
    at = fixed_from(getattr(args, "at", []), "--at")
    dets = args.detector
    tables = tables_for(args, cfg)
    out = check_out(args.out if args.out is not None else
                    f"results/{command}_{'_'.join(params)}_{'+'.join(dets)}.h5", args, tables=tables)
    a = _analysis(args, cfg, dets, parse_channels(args.channels), tables)
    INTERRUPT_HINT[0] = (f"finished chunks are kept in {out}.partial; repeat the same command "
                         "with --resume to finish the scan")
    with backend_from_args(args) as backend:
        res = a.scan(params, ranges=ranges, points=pts, fixed=fixed, out=out, resume=args.resume,
                     projections=getattr(args, "project", None), at=at or None, backend=backend,
                     chunk_points=args.chunk_points, force=args.force, progress=progress(args),
                     **budget_from(args))
    INTERRUPT_HINT[0] = None
    cl = cfg.analysis.cl if args.cl is None else args.cl
    summary = res.to_json(cl)
    if args.json:
        summary.setdefault("results_file", str(out))
        print_json(summary)
    else:
        _print_scan(res, summary, out, cl)
    if res.unconverged:
        err(f"warning: the pull profile did not converge at {res.unconverged} points "
            "(flagged in the 'converged' dataset)")
    edges = [k for k, d in summary["projections"].items() if d.get("open_low") or d.get("open_high")]
    if edges:
        err(f"warning: the allowed set reaches the end of the scanned range in {', '.join(edges)}: "
            "widen --range")


def _analysis(args, cfg, detectors, channels, tables):
    from ..api import Analysis

    data = getattr(args, "data", None)
    if data is not None:
        from ..io.paths import check_input_file

        check_input_file(data, "data file")
    return Analysis(cfg, detectors, channels, tables, build=False, data=data)


def _print_scan(res, summary, out, cl) -> None:
    be = res.backend or {"backend": "local"}
    where = be.get("backend", "local")
    if where != "local" and be.get("workers"):
        where += f", {be['workers']} worker(s)"
    pps = summary.get("points_per_second")
    rate = f"{pps:.3g} points/s, " if pps else ""
    kernels = summary.get("compile_time_s", 0.0)
    kernels = f"{kernels:.1f} s of it compiling or loading the kernels, " if kernels >= 0.05 else ""
    print(f"scanned {' x '.join(res.params)} on {' x '.join(map(str, res.shape))} = "
          f"{summary['points']} points for {', '.join(res.detectors)} in {res.wall_time_s:.1f} s "
          f"({kernels}{rate}{where}); saved to {out}"
          + (f" ({res.resumed_chunks} of {res.chunks} chunks resumed)" if res.resumed_chunks else ""))
    print(f"min chi2 = {res.chi2_min:.4g} at "
          + ", ".join(f"{p} = {v:.4g}{_unit(p)}" for p, v in res.argmin.items()))
    for d in summary["projections"].values():
        if "regions" not in d or (len(res.params) == 1 and d["kind"] != "profiled"):
            continue      # a 1D scan: its profiled and fixed projections are the scan itself
        p = d["params"][0]
        s = display_scale(p)
        regs = " U ".join(f"[{lo / s:+.3f}, {hi / s:+.3f}]" for lo, hi in d["regions"]) or "(empty)"
        how = ("profiled over the others" if d["kind"] == "profiled" else
               "others at " + ", ".join(f"{k} = {v:.3g}" for k, v in d.get("at", {}).items()))
        if len(res.params) == 1:
            how = "others fixed"
        step = d.get("grid_step")
        est = f"grid estimate, step {step:.3g}{_unit(p)}" if step else "grid estimate"
        print(f"  {p} {cl:.0%} C.L. (1 d.o.f., {est}), {how}: {regs}{scaled_unit(p)}")


def _unit(p: str) -> str:
    """' <unit>' of a parameter ('' for plain numbers)."""
    u = SPEC[p].unit
    return "" if u == "1" else f" {u}"


def _cmd_ndscan(args, cfg):
    run_scan(args, cfg, "ndscan")


# ------------------------------------------------------------------ sweeps

def _cmd_sweep(args, cfg):
    from ..api import parse_channels, sweep
    from ..errors import McscanError

    channels = parse_channels(args.channels)
    spec = {"config": args.config, "vary": args.vary, "param": args.param, "detector": args.detector,
            "cl": args.cl, "channels": list(channels)}
    tables = tables_for(args, cfg)
    out = check_out(args.out if args.out is not None else f"results/sweep_{short_hash(spec)}.h5", args,
                    tables=tables)
    log = None if (args.quiet or args.json) else (lambda m: print(m, file=sys.stderr))
    with backend_from_args(args) as backend:
        res, path = sweep(args.config, args.vary, args.param, detectors=args.detector,
                          tables=tables, cl=args.cl, channels=channels, backend=backend,
                          out=out, force=args.force, progress=progress(args), log=log)
    figures = []
    if not args.no_plot:
        from ..plot import plot_sweep

        try:
            figures = [str(f) for f in plot_sweep(res, args.plot or out.parent, config=cfg)]
        except McscanError as exc:       # the table is still written
            err(f"warning: no figure: {exc}")
    if args.json:
        d = res.to_json()
        d.update({"results_file": str(path), "figures": figures})
        print_json(d)
        return
    sw = res.sweep
    heads = [f"{v.label}" + (f" [{v.unit}]" if v.unit else "") for v in sw.varies]
    ws = [max(10, len(h) + 2) for h in heads]
    cols = [f"{p} [{display_scale(p):g} e]" for p in sw.params]
    w = 24
    print(f"{' + '.join(sw.detectors)}: {sw.cl:.0%} C.L. allowed intervals, channels "
          f"{', '.join(sw.channels)}; {len(sw.points)} configurations, "
          f"{len(sw.table_dirs)} table set(s), {res.wall_time_s:.1f} s on {res.backend['backend']}")
    print("".join(f"{h:<{k}}" for h, k in zip(heads, ws)) + "".join(f"{c:>{w}}" for c in cols))
    for i, pt in enumerate(sw.points):
        cells = []
        for p in sw.params:
            s = display_scale(p)
            lim = res.limits[(i, p)]
            txt = " U ".join(f"[{lo / s:.3f}, {hi / s:.3f}]" for lo, hi in lim["regions"]) or "(empty)"
            if lim["open_low"] or lim["open_high"]:
                txt += "*"
            cells.append(txt)
        print("".join(f"{v:<{k}.6g}" for v, k in zip(pt.values, ws)) + "".join(f"{c:>{w}}" for c in cells))
    if any(lim["open_low"] or lim["open_high"] for lim in res.limits.values()):
        print("* the allowed set reaches the end of the widened scan range: not a limit")
    print(f"results saved to {path}" + (f"; figures: {', '.join(figures)}" if figures else ""))
