"""Command-line subcommands that scale out: ``mcscan ndscan`` and ``mcscan sweep``.

:func:`add_commands` adds both to the ``mcscan`` parser and returns their
handlers; :func:`add_backend_options` gives any subcommand
``--backend/--scheduler/--workers``.  As everywhere in the CLI: parse, call
one library function, print; a problem the user can fix raises
:class:`mcscan.errors.McscanError` (one line ``mcscan: error: ...``, exit 2).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from ..errors import InputError
from ..params import display_scale

__all__ = ["add_backend_options", "add_commands", "backend_from_args"]

#: Default points per axis of an N-D scan, by dimension (1D: numerics.scan_points).
_ND_POINTS = {2: 201, 3: 51, 4: 21, 5: 21, 6: 11}


def add_backend_options(p) -> None:
    """``--backend {local,dask,dask-local}``, ``--scheduler ADDRESS``, ``--workers N``."""
    from ..scans.backends import BACKENDS

    p.add_argument("--backend", choices=BACKENDS, default="local",
                   help="where chunks run: local (numba, default), dask (a running scheduler, "
                        "see --scheduler) or dask-local (a LocalCluster on this machine)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address for --backend dask, e.g. tcp://10.0.0.1:8786 "
                        "(workers must see the tables folder)")
    p.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="worker processes of --backend dask-local (default: one per core)")


def _positive_int(text: str) -> int:
    import argparse

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: expected a positive whole number")
    return n


def backend_from_args(args):
    """The backend the options ask for (a context manager; closes what it started)."""
    from ..scans.backends import make_backend

    return make_backend(args.backend, scheduler=args.scheduler, workers=args.workers)


def add_commands(sub) -> dict:
    """Add ``ndscan`` and ``sweep`` to the subparsers ``sub``; returns {name: handler(args, cfg)}."""
    from .commands import _assignment, _cl, _common, _float, _param, _points, _target_options
    from ..params import PARAMS

    nd = sub.add_parser("ndscan", help="N-dimensional profiled chi2 scan (1 to 6 charges), "
                                       "streamed to HDF5, with projections")
    _common(nd)
    _target_options(nd)
    nd.add_argument("--param", action="append", type=_param, required=True, metavar="P",
                    help=f"scanned charge, 1 to 6 times, the last varying fastest ({', '.join(PARAMS)})")
    nd.add_argument("--range", action="append", nargs=2, type=_float, metavar=("LO", "HI"),
                    help="range of each scanned charge in e (default from the configuration)")
    nd.add_argument("--points", action="append", type=_points, metavar="N",
                    help="grid points per scanned charge, once for all or once each "
                         "(default 2001 in 1D, 201 in 2D, 51 in 3D, 21 in 4D and 5D, 11 in 6D)")
    nd.add_argument("--project", action="append", default=None, metavar="P[,P2]",
                    help="projection onto one or two scanned charges, profiled and fixed "
                         "(repeatable; default every scanned charge alone)")
    nd.add_argument("--at", action="append", type=_assignment, default=[], metavar="P=VALUE",
                    help="where fixed projections slice a scanned charge (nearest grid point; "
                         "default 0)")
    nd.add_argument("--out", metavar="FILE", help="results file (default results/ndscan_<params>.h5)")
    nd.add_argument("--resume", action="store_true",
                    help="finish an interrupted scan of the same command from its stored chunks "
                         "(on any backend)")
    nd.add_argument("--chunk-points", type=_positive_int, default=None, metavar="N",
                    help="points per chunk, rounded to whole rows (default about 1/32 of the grid, "
                         "16384 to 1048576)")
    nd.add_argument("--cl", type=_cl, default=None,
                    help="confidence level of the printed 1D intervals (default 0.90)")
    nd.add_argument("--json", action="store_true", help="print one JSON object")
    add_backend_options(nd)

    sw = sub.add_parser("sweep", help="limits over a grid of configurations (thresholds, masses, "
                                      "exposures ...), tables built once per configuration")
    _common(sw)
    sw.add_argument("--vary", action="append", required=True, metavar="KEY=VALUES",
                    help="KEY=lo:hi:n (n values, ends included) or KEY=a,b,c; repeatable "
                         "(Cartesian product). KEY: a dotted configuration path "
                         "(detectors.Ge.threshold_kev, source.years, ...) or an alias "
                         "(detector.Ge.threshold, detector.Ge.mass, years, ...). A varied "
                         "threshold moves the first bin edge if the bins start at it")
    sw.add_argument("--param", action="append", type=_param, required=True, metavar="P",
                    help="charge whose limit is computed (repeatable)")
    sw.add_argument("--detector", action="append", metavar="NAME",
                    help="detector (repeatable: combined chi2; default those the --vary keys name)")
    sw.add_argument("--cl", type=_cl, default=None, help="confidence level (default 0.90)")
    sw.add_argument("--channels", default="nuclear", help="comma-separated channels (default nuclear)")
    sw.add_argument("--out", metavar="FILE", default="results/sweep.h5",
                    help="results file (default results/sweep.h5)")
    sw.add_argument("--plot", metavar="DIR", default=None,
                    help="folder of the figures sweep_<param>.png/.pdf (default: beside --out)")
    sw.add_argument("--no-plot", action="store_true", help="draw no figure")
    sw.add_argument("--json", action="store_true", help="print one JSON object")
    add_backend_options(sw)
    return {"ndscan": _cmd_ndscan, "sweep": _cmd_sweep}


def _err(msg: str) -> None:
    print(f"mcscan: {msg}", file=sys.stderr)


def _scale(p):
    return display_scale(p)


def _cmd_ndscan(args, cfg):
    import numpy as np

    from . import commands as cli
    from ..scans.backends import TableRef
    from ..scans.engine import nd_scan, parse_projections
    from ..api import load_coefficients, parse_channels
    from ..scans.grid import ScanSettings

    params = list(args.param)
    n = len(params)
    if n > 6:
        raise InputError(f"--param given {n} times: an N-D scan takes 1 to 6 charges")
    if len(set(params)) != n:
        raise InputError("--param: a charge is given twice")
    ranges = args.range or [cfg.analysis.ranges[p] for p in params]
    if len(ranges) != n:
        raise InputError(f"{n} charge(s) but {len(ranges)} --range: give one per charge")
    for p, (lo, hi) in zip(params, ranges):
        if not lo < hi:
            raise InputError(f"--range {lo:g} {hi:g} of {p}: expected LO < HI")
    default = cfg.numerics.scan_points if n == 1 else _ND_POINTS[n]
    pts = args.points or [default]
    if len(pts) == 1:
        pts = pts * n
    if len(pts) != n:
        raise InputError(f"{n} charge(s) but {len(pts)} --points: give one for all or one per charge")
    total = math.prod(pts)
    fixed = dict(args.fix)
    for p in params:
        if p in fixed:
            raise InputError(f"{p} is both scanned and fixed")
    at = dict(args.at)
    projections = parse_projections(args.project, params)
    if args.out and Path(args.out).suffix.lower() not in (".h5", ".hdf5"):
        raise InputError(f"--out {args.out!r}: expected an .h5 file name")
    channels = parse_channels(args.channels)
    load_coefficients(cfg, args.detector, args.tables, channels)   # clear errors, here
    refs = [TableRef.from_config(cfg, d, args.tables, channels) for d in args.detector]
    axes = [np.linspace(lo, hi, k) for (lo, hi), k in zip(ranges, pts)]
    out = Path(args.out or f"results/ndscan_{'_'.join(params)}.h5")
    cli._INTERRUPT_HINT[0] = (f"finished chunks are kept in {out}.partial; repeat the same command "
                              "with --resume to finish the scan (any --backend)")
    with backend_from_args(args) as backend:
        res = nd_scan(refs, params, axes, out, fixed=fixed, at=at, projections=projections,
                      settings=ScanSettings.from_config(cfg), backend=backend, resume=args.resume,
                      chunk_points=args.chunk_points, progress=not (args.quiet or args.json),
                      config=cfg.to_dict())
    cli._INTERRUPT_HINT[0] = None
    cl = cfg.analysis.cl if args.cl is None else args.cl
    summary = res.to_json(cl)
    if args.json:
        print(json.dumps(summary))
    else:
        be = res.backend
        where = be["backend"] + (f", {be['workers']} worker(s)" if be["backend"] != "local" else "")
        print(f"scanned {' x '.join(params)} on {' x '.join(map(str, res.shape))} = {total} points "
              f"for {', '.join(res.detectors)} in {res.wall_time_s:.1f} s "
              f"({res.points_per_second:.3g} points/s, {where}); saved to {out}"
              + (f" ({res.resumed_chunks} of {res.chunks} chunks resumed)" if res.resumed_chunks else ""))
        print(f"min chi2 = {res.chi2_min:.4g} at "
              + ", ".join(f"{p} = {v:.4g} e" for p, v in res.argmin.items()))
        for d in summary["projections"].values():
            if "regions" not in d:
                continue
            p = d["params"][0]
            s = _scale(p)
            regs = " U ".join(f"[{lo / s:+.3f}, {hi / s:+.3f}]" for lo, hi in d["regions"]) or "(empty)"
            how = ("profiled over the others" if d["kind"] == "profiled" else
                   "others at " + ", ".join(f"{k} = {v:.3g}" for k, v in d["at"].items()))
            print(f"  {p} {cl:.0%} C.L. (1 d.o.f., grid resolution), {how}: {regs} x {s:g} e")
    if res.unconverged:
        _err(f"warning: the pull profile did not converge at {res.unconverged} points "
             "(flagged in the 'converged' dataset)")
    edges = [k for k, d in summary["projections"].items() if d.get("open_low") or d.get("open_high")]
    if edges:
        _err(f"warning: the allowed set reaches the end of the scanned range in {', '.join(edges)}: "
             "widen --range")


def _cmd_sweep(args, cfg):
    from ..errors import McscanError
    from ..api import parse_channels
    from ..scans.sweep import plan_sweep, run_sweep, save_sweep

    out = Path(args.out)
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise InputError(f"--out {args.out!r}: expected an .h5 file name")
    plan = plan_sweep(args.config, args.vary, args.param, detectors=args.detector,
                      tables_dir=args.tables, cl=args.cl, channels=parse_channels(args.channels))
    log = None if (args.quiet or args.json) else (lambda m: print(m, file=sys.stderr))
    with backend_from_args(args) as backend:
        res = run_sweep(plan, backend=backend, progress=not (args.quiet or args.json), log=log)
    path = save_sweep(res, out)
    figures = []
    if not args.no_plot:
        from ..plot import plot_sweep
        from ..io.tables import load_results

        try:
            figures = [str(f) for f in plot_sweep(load_results(path), args.plot or out.parent)]
        except McscanError as exc:       # matplotlib missing: the table is still written
            _err(f"warning: no figure: {exc}")
    if args.json:
        d = res.to_json()
        d.update({"results_file": str(path), "figures": figures})
        print(json.dumps(d))
        return
    sw = res.sweep
    heads = [f"{v.label}" + (f" [{v.unit}]" if v.unit else "") for v in sw.varies]
    ws = [max(10, len(h) + 2) for h in heads]
    cols = [f"{p} [{_scale(p):g} e]" for p in sw.params]
    w = 24
    print(f"{' + '.join(sw.detectors)}: {sw.cl:.0%} C.L. allowed intervals, channels "
          f"{', '.join(sw.channels)}; {len(sw.points)} configurations, "
          f"{len(sw.table_dirs)} table set(s), {res.wall_time_s:.1f} s on {res.backend['backend']}")
    print("".join(f"{h:<{k}}" for h, k in zip(heads, ws)) + "".join(f"{c:>{w}}" for c in cols))
    for i, pt in enumerate(sw.points):
        cells = []
        for p in sw.params:
            s = _scale(p)
            lim = res.limits[(i, p)]
            txt = " U ".join(f"[{lo / s:.3f}, {hi / s:.3f}]" for lo, hi in lim["regions"]) or "(empty)"
            if lim["open_low"] or lim["open_high"]:
                txt += "*"
            cells.append(txt)
        print("".join(f"{v:<{k}.6g}" for v, k in zip(pt.values, ws)) + "".join(f"{c:>{w}}" for c in cells))
    if any(lim["open_low"] or lim["open_high"] for lim in res.limits.values()):
        print("* the allowed set reaches the end of the widened scan range: not a limit")
    print(f"results saved to {path}" + (f"; figures: {', '.join(figures)}" if figures else ""))
