#!/usr/bin/env python
"""Benchmark: scan throughput (numba kernels vs NumPy twin vs per-point SciPy
fit), table build time and kernel compile time. Prints one JSON object.

    python scripts/bench.py [--points 2001] [--scipy-points 200] [--tables DIR]

It is a benchmark, not a test: nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
from scipy.optimize import minimize

from mcscan.build import build_table
from mcscan.config import PARAMS, load_config
from mcscan.kernels import chi2_points, warm_up
from mcscan.model import chi2 as chi2_numpy
from mcscan.model import coefficients
from mcscan.scan import ScanSettings, grid_scan


def scipy_chi2(coef, theta, sa=0.10, sb=0.01):
    """What users do today: a per-point SciPy fit of the two pulls, vectorised over bins."""
    N = np.maximum(coef.S + theta @ coef.L + (theta**2) @ coef.Q, 0.0)
    B, D = coef.B, coef.D

    def f(p):
        T = (1 + p[0]) * N + (1 + p[1]) * B
        if np.any(T <= 0):
            return np.inf
        return 2 * np.sum(T - D + D * np.log(D / T)) + (p[0] / sa) ** 2 + (p[1] / sb) ** 2

    return minimize(f, np.zeros(2), method="Nelder-Mead",
                    options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000}).fun


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--points", type=int, default=2001, help="grid points per axis of the 2D scan")
    ap.add_argument("--numpy-points", type=int, default=200_000, help="points for the NumPy twin")
    ap.add_argument("--scipy-points", type=int, default=200, help="points for the SciPy fit")
    args = ap.parse_args()
    out = {"threads": int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count()))}

    t0 = time.perf_counter()
    warm_up(True)
    warm_up(False)
    out["kernel_load_or_compile_s"] = time.perf_counter() - t0

    cfg = load_config()
    t0 = time.perf_counter()
    tables = {d: build_table(cfg, d) for d in cfg.detectors}
    out["table_build_all_s"] = time.perf_counter() - t0

    coef = coefficients(tables["Xe"])
    n = args.points
    x = np.linspace(-2e-8, 2e-8, n)
    y = np.linspace(-1e-8, 1e-8, n)
    settings = ScanSettings.from_config(cfg)
    t0 = time.perf_counter()
    sc = grid_scan([coef], ("q_ee", "q_mumu"), (x, y), settings=settings)
    dt = time.perf_counter() - t0
    out["scan_2d"] = {"detector": "Xe", "grid": [n, n], "seconds": dt,
                      "points_per_s": n * n / dt, "all_converged": bool(sc.converged.all())}

    rng = np.random.default_rng(1)
    flat = rng.choice(n * n, size=min(args.numpy_points, n * n), replace=False)
    theta = np.zeros((flat.size, len(PARAMS)))
    theta[:, 0] = x[flat // n]
    theta[:, 1] = y[flat % n]
    t0 = time.perf_counter()
    ref = chi2_numpy(coef, theta, **settings.kwargs())
    dt_np = time.perf_counter() - t0
    t0 = time.perf_counter()
    ker = chi2_points(coef, theta, **settings.kwargs())
    dt_k = time.perf_counter() - t0
    rel = np.max(np.abs(ker[0] - ref[0]) / np.maximum(np.abs(ref[0]), 1e-300))
    out["numpy_twin"] = {"points": int(flat.size), "points_per_s": flat.size / dt_np,
                         "kernel_points_per_s_same_points": flat.size / dt_k,
                         "kernel_over_numpy": dt_np / dt_k, "max_rel_chi2_diff": float(rel),
                         "mean_newton_iterations": float(np.mean(ker[3]))}

    m = args.scipy_points
    t0 = time.perf_counter()
    sp = np.array([scipy_chi2(coef, t) for t in theta[:m]])
    dt_sp = time.perf_counter() - t0
    out["scipy_per_point"] = {"points": m, "points_per_s": m / dt_sp,
                              "kernel_over_scipy": (m / dt_sp) ** -1 * out["scan_2d"]["points_per_s"],
                              "max_abs_chi2_diff_vs_kernel": float(np.max(np.abs(sp - ker[0][:m])))}
    with tempfile.TemporaryDirectory() as d:
        from mcscan.tables import save_scan

        t0 = time.perf_counter()
        save_scan(os.path.join(d, "s.h5"), sc)
        out["scan_2d"]["write_s"] = time.perf_counter() - t0
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
