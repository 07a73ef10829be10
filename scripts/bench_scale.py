#!/usr/bin/env python
"""Benchmark of issue 6: an N-D scan locally (numba) and on a Dask LocalCluster,
and a configuration sweep.  Prints a table and one JSON object.

    python scripts/bench_scale.py [--points 21] [--detector Xe] [--workers 1,2]
                                  [--out bench_scale] [--tables DIR] [--no-sweep]

* 5D scan over q_ee, q_mumu, q_emu, q_etau, q_mutau (``--points`` per axis, ranges
  a quarter of the configured ones), streamed to HDF5 with the five 1D projections
  and the (q_ee, q_mumu) projection, on the local backend and on a LocalCluster of
  each ``--workers`` count (1 thread per worker, numba threads = cores / workers).
  "points/s" counts grid points over the compute phase (chunks sent, computed and
  stored); "wall" adds the HDF5 assembly and projections.  Cluster start-up and a
  warm-up scan (workers import mcscan and load the numba cache) are timed apart.
  Every Dask result file is checked bit for bit against the local one.
* Sweep: the Ge q_ee limit against the threshold 0.3 .. 1.0 keVnr (8 values, bins
  moving with the threshold), locally and on a 2-worker LocalCluster; the table,
  the results file and the figure (PNG, PDF) go to ``--out``.

A benchmark, not a test: nothing here asserts a time.  On a shared machine the
numbers move with the load; the load average is reported before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PARAMS = ("q_ee", "q_mumu", "q_emu", "q_etau", "q_mutau")


def _same(a, b) -> bool:
    """chi2, convergence flags and every projection of two scan files are bit-identical."""
    import mcscan

    ra, rb = mcscan.open_results(a), mcscan.open_results(b)
    if not (np.array_equal(np.asarray(ra.chi2), np.asarray(rb.chi2))
            and np.array_equal(np.asarray(ra.converged), np.asarray(rb.converged))):
        return False
    return ra.projections.keys() == rb.projections.keys() and all(
        np.array_equal(ra.projections[k].chi2, rb.projections[k].chi2) for k in ra.projections)


def _scan(coefs, axes, path, backend):
    from mcscan.scans.engine import scan

    res = scan(coefs, PARAMS, axes, path, backend=backend, force=True,
               projections=list(PARAMS) + ["q_ee,q_mumu"])
    return {"points": int(np.prod(res.shape)), "chunks": res.chunks,
            "compute_s": round(res.compute_time_s, 3), "wall_s": round(res.wall_time_s, 3),
            "points_per_s": round(res.points_per_second), "chi2_min": res.chi2_min,
            "profiled_q_ee_90": res.to_json()["projections"]["profiled/q_ee"]["regions"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=21, help="points per axis of the 5D grid")
    ap.add_argument("--detector", default="Xe")
    ap.add_argument("--workers", default="1,2", help="LocalCluster sizes, comma-separated")
    ap.add_argument("--out", default="bench_scale", help="folder for results files and figures")
    ap.add_argument("--tables", default=None, help="tables folder (default: a temporary one)")
    ap.add_argument("--no-sweep", action="store_true")
    args = ap.parse_args(argv)

    from mcscan import __version__

    from mcscan.stats import kernels
    from mcscan.scans.backends import DaskBackend, LocalBackend, TableRef
    from mcscan.config.load import load_config
    from mcscan.api import build_tables

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.TemporaryDirectory()
    tables = Path(args.tables or tmp.name)
    cfg = load_config()
    build_tables(cfg, [args.detector], tables)
    refs = [TableRef.from_config(cfg, args.detector, tables)]
    axes = [np.linspace(*(np.array(cfg.analysis.ranges[p]) / 4), args.points) for p in PARAMS]
    small = [a[:: max(1, args.points // 5)] for a in axes]
    kernels.warm_up()
    report = {"mcscan": __version__, "python": platform.python_version(), "cores": os.cpu_count(),
              "detector": args.detector, "grid": [args.points] * 5,
              "loadavg_before": os.getloadavg(), "scan": {}, "sweep": {}}
    work = Path(tmp.name) / "scans"
    work.mkdir(exist_ok=True)
    _scan(refs, small, work / "warm.h5", LocalBackend())
    report["scan"]["local"] = _scan(refs, axes, work / "local.h5", LocalBackend())
    print(f"local: {report['scan']['local']}", file=sys.stderr)
    for w in (int(s) for s in args.workers.split(",")):
        t0 = time.perf_counter()
        with DaskBackend(workers=w) as be:
            start = time.perf_counter() - t0
            t1 = time.perf_counter()
            _scan(refs, small, work / "warm.h5", be)
            warm = time.perf_counter() - t1
            r = _scan(refs, axes, work / f"dask{w}.h5", be)
            r.update(startup_s=round(start, 2), warmup_s=round(warm, 2),
                     numba_threads=be.numba_threads,
                     bit_identical_to_local=_same(work / "local.h5", work / f"dask{w}.h5"))
        report["scan"][f"dask-local {w} worker(s)"] = r
        print(f"dask-local {w}: {r}", file=sys.stderr)

    if not args.no_sweep:
        from mcscan.scans.sweep import plan_sweep, run_sweep

        plan = plan_sweep(None, ["detector.Ge.threshold=0.3:1.0:8"], ["q_ee"], tables_dir=tables)
        res = run_sweep(plan, backend=LocalBackend())       # builds the 8 table sets
        report["sweep"]["build_and_limits_local_s"] = round(res.wall_time_s, 2)
        res = run_sweep(plan, backend=LocalBackend())       # tables cached: limits only
        report["sweep"]["limits_local_s"] = round(res.wall_time_s, 2)
        with DaskBackend(workers=2) as be:
            run_sweep(plan, backend=be)                     # warm the workers
            dres = run_sweep(plan, backend=be)
        report["sweep"]["limits_dask_local_2_s"] = round(dres.wall_time_s, 2)
        report["sweep"]["identical_local_dask"] = dres.limits == res.limits
        path = res.save(out / "sweep_ge_threshold.h5", force=True)
        from mcscan.plot import plot_file

        figs = plot_file(path, out)
        report["sweep"].update(results_file=str(path), figures=[str(f) for f in figs],
                               rows=[{"threshold_kev": v[0], "q_ee_90cl_e": [lo, hi]}
                                     for v, lo, hi, _ in res.rows("q_ee")])
    report["loadavg_after"] = os.getloadavg()

    print(f"5D scan {' x '.join(PARAMS)}, {args.points}^5 = {args.points ** 5} points, "
          f"{args.detector}, {os.cpu_count()} cores")
    print(f"{'backend':<26}{'points/s':>12}{'compute s':>11}{'wall s':>9}{'start s':>9}  identical")
    for name, r in report["scan"].items():
        print(f"{name:<26}{r['points_per_s']:>12,}{r['compute_s']:>11.2f}{r['wall_s']:>9.2f}"
              f"{r.get('startup_s', 0):>9.2f}  {r.get('bit_identical_to_local', '-')}")
    if report["sweep"]:
        print("\nGe q_ee 90% C.L. allowed interval [1e-9 e] against the threshold (bins move with it)")
        for row in report["sweep"]["rows"]:
            lo, hi = row["q_ee_90cl_e"]
            print(f"  {row['threshold_kev']:.1f} keVnr  [{lo / 1e-9:+.3f}, {hi / 1e-9:+.3f}]")
        s = report["sweep"]
        print(f"sweep: {s['build_and_limits_local_s']} s with table builds, {s['limits_local_s']} s "
              f"limits only (local), {s['limits_dask_local_2_s']} s on 2 workers; "
              f"identical: {s['identical_local_dask']}")
    print(json.dumps(report))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
