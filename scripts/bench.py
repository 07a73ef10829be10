#!/usr/bin/env python
"""Benchmark of issue 7: 2D scan throughput (row kernel) against the NumPy twin
and a per-point SciPy fit, the 5D scan, toys, arithmetic efficiency against the
predicted FP64 peak of this CPU, table build, kernel compile and start-up times,
peak memory; and the waiting time of a user's main job (``main_job``: ``mcscan
sensitivities`` with an empty and a warm kernel cache).  Prints one JSON object
(stdout) and a short summary (stderr).

    python scripts/bench.py [--points 2001] [--repeat 3] [--numpy-points 200000]
                            [--scipy-points 200] [--toys 2000]
    python scripts/bench.py --main-job-only     # just the main-job figures

It is a benchmark, not a test: nothing here asserts a time.  Every figure
says what it measures; "assumptions" lists how the peak is estimated.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

#: Floating-point operations per bin and Newton pass of the row kernel's vector loop
#: (mcscan.stats.kernels._chi2_rows; add, mul and div count 1 each, a fused multiply-add
#: 2, abs/max/compare are not counted): counts 5, T - D 4, T 3, 1/T 1, u and w 3,
#: gradient and Hessian sums 11, deviance polynomial (degree 12, Horner, 12 fused
#: multiply-adds) 24, its sum 3.  The compiled loop (icelake-server, AVX-512) has these:
#: 21 vfmadd, 6 vmulpd, 1 vdivpd per 8 lanes, and the counts loop 5 more.
FLOP_PER_BIN = 54
#: ... of which the counts (once per point, not per pass) and the deviance series with
#: its sum (only in the pass a point converges in: mcscan.stats.kernels.PREDICT_STEP).
FLOP_PER_BIN_COUNTS = 5
FLOP_PER_BIN_SERIES = 27
#: Scalar operations per point and pass outside the bin loop: the 2x2 Newton step,
#: checks, the quadratic-model chi2 and the 4-point extrapolation of the start.
FLOP_PER_POINT = 70
#: Scalar Newton iteration of the point kernel per bin (T, u, w, gradient and Hessian
#: sums, the step-to-zero limit) and the final chi2 with a logarithm per bin (log1p
#: counted as 20 operations).
FLOP_PER_BIN_SCALAR = 25
FLOP_PER_BIN_LOG_CHI2 = 26
#: Double-precision lanes of one AVX-512 register; kept for the JSON "assumptions".
SIMD_DOUBLES = 8
FLOP_PER_CYCLE = 32


def _cpu():
    """Model name, clock (MHz), AVX-512 and FMA flags from /proc/cpuinfo (in a VM the
    clock is the nominal one)."""
    info = _cpuinfo()
    flags = info.get("flags", "").split()
    mhz = float(info["cpu MHz"]) if "cpu MHz" in info else None
    return info.get("model name", platform.processor()), mhz, "avx512f" in flags, "fma" in flags


def _cpuinfo():
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                info.setdefault(key.strip(), val.strip())
    except OSError:
        pass
    return info


def physical_cores(path="/proc/cpuinfo"):
    """(physical cores, hardware threads per core) of the online CPUs, from
    /proc/cpuinfo ("physical id" and "core id" of each processor).  Cloud VMs on
    Intel usually give two hyperthreads of one core per pair of vCPUs: they share
    that core's FP pipes and divider, so the peak counts physical cores."""
    cores, procs = set(), 0
    phys = core = None
    try:
        with open(path) as f:
            for line in list(f) + [""]:
                key, _, val = line.partition(":")
                key = key.strip()
                if key == "processor":
                    procs += 1
                elif key == "physical id":
                    phys = val.strip()
                elif key == "core id":
                    core = val.strip()
                elif not key and core is not None:
                    cores.add((phys, core))
                    phys = core = None
    except OSError:
        pass
    if not cores or not procs:
        return os.cpu_count() or 1, 1
    return len(cores), max(1, procs // len(cores))


def fp64_peak():
    """Predicted FP64 peak of this machine from /proc/cpuinfo: cores x nominal clock x
    flop per cycle and core, by vector width and floating-point pipes.

    * Intel with AVX-512 (Skylake-SP ... Sapphire Rapids, Xeon Gold/Platinum): two 512-bit
      FMA pipes, 2 x 8 lanes x 2 = 32 flop/cycle with FMA, 16 for a mul/add mix (no FMA);
    * AMD Zen 4 (family 0x19 with AVX-512): four 256-bit pipes (2 FMA/MUL + 2 ADD),
      2 x 4 x 2 = 16 with FMA, 16 for a mul/add mix (MUL and ADD pipes at once);
    * AMD Zen 5 (family 0x1a): the same pipes 512 bits wide: 32 and 32;
    * other AVX2 + FMA cores: two 256-bit FMA pipes: 16 and 8; else SSE2: 8 and 4.

    The kernels are compiled without FMA contraction (results independent of the
    machine), so the mul/add figure is the one they can reach; "fraction_of_peak"
    figures use the FMA peak (the usual definition) and say so.
    """
    info = _cpuinfo()
    flags = info.get("flags", "").split()
    vendor = info.get("vendor_id", "")
    family = int(info.get("cpu family", "0") or 0)
    mhz = float(info["cpu MHz"]) if "cpu MHz" in info else None
    if vendor == "AuthenticAMD" and family >= 0x1a and "avx512f" in flags:
        fma, mix, basis = 32, 32, "AMD Zen 5: 2 FMA/MUL + 2 ADD pipes, 512 bits"
    elif vendor == "AuthenticAMD" and "avx512f" in flags:
        fma, mix, basis = 16, 16, "AMD Zen 4: 2 FMA/MUL + 2 ADD pipes, 256 bits (AVX-512 in two halves)"
    elif "avx512f" in flags:
        fma, mix, basis = 32, 16, "Intel AVX-512: 2 FMA pipes, 512 bits"
    elif "avx2" in flags and "fma" in flags:
        fma, mix, basis = 16, 8, "AVX2 + FMA: 2 FMA pipes, 256 bits"
    else:
        fma, mix, basis = 8, 4, "SSE2: 2 pipes, 128 bits"
    cores, smt = physical_cores()
    peak = None if mhz is None else cores * mhz * 1e6 * fma
    return {"flop_per_cycle_per_core_fma": fma, "flop_per_cycle_per_core_mul_add": mix,
            "fp64_peak_gflops": None if peak is None else peak / 1e9,
            "fp64_peak_gflops_without_fma": None if peak is None else peak / fma * mix / 1e9,
            "physical_cores": cores, "threads_per_core": smt,
            "peak_basis": f"{cores} physical cores ({smt} hardware thread{'s' if smt > 1 else ''} "
                          f"each) x {mhz} MHz (nominal, /proc/cpuinfo) x {fma} flop/cycle; "
                          + basis}


#: Dependent integer additions per loop iteration of the clock probe (:func:`delivered_clock`).
CLOCK_CHAIN = 16


def _clock_probe():
    """``chain(n, 1)``: 16 n dependent 64-bit integer additions of a register holding 1,
    then their sum (16 n), compiled by llvmlite (numba's LLVM) from inline assembly, one
    ``add`` per cycle on every x86-64 core since the first; called through ctypes, which
    releases the GIL.  None off x86-64.  A register, not an immediate: Intel cores since
    Golden Cove (Sapphire Rapids, Alder Lake) fold chains of ``add $1`` at renaming and ran
    such a chain at 3.5 times their clock (8.5 GHz reported for a 2.4 GHz Xeon)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    import ctypes

    import llvmlite.binding as llvm

    adds = "".join(f'  %x{k + 1} = call i64 asm sideeffect "add $2, $0", "=r,0,r"(i64 %x{k}, i64 %one)\n'
                   for k in range(CLOCK_CHAIN))
    text = ("define i64 @chain(i64 %n, i64 %one) {\nentry:\n  br label %loop\nloop:\n"
            "  %i = phi i64 [0, %entry], [%i1, %loop]\n"
            f"  %x0 = phi i64 [0, %entry], [%x{CLOCK_CHAIN}, %loop]\n{adds}"
            "  %i1 = add i64 %i, 1\n  %c = icmp ult i64 %i1, %n\n"
            f"  br i1 %c, label %loop, label %exit\nexit:\n  ret i64 %x{CLOCK_CHAIN}\n}}\n")
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.initialize_native_asmparser()
    mod = llvm.parse_assembly(text)
    mod.verify()
    engine = llvm.create_mcjit_compiler(mod, llvm.Target.from_default_triple().create_target_machine())
    engine.finalize_object()
    chain = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)(
        engine.get_function_address("chain"))
    chain.engine = engine           # the machine code lives as long as the function
    return chain


def delivered_clock(threads, n=4_000_000, repeat=5):
    """The clock the cores deliver while busy, in MHz, from a chain of dependent integer
    additions (:func:`_clock_probe`): the best of ``repeat`` runs of 16 ``n`` additions on
    one thread, then on ``threads`` threads at once (one per core the kernels use).  A VM's
    /proc/cpuinfo gives the nominal clock; boost, power limits and a busy neighbour on
    the same core move the real one.  None off x86-64."""
    import threading

    chain = _clock_probe()
    if chain is None:
        return None

    def best():
        rates = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            got = chain(n, 1)
            dt = time.perf_counter() - t0
            if got != CLOCK_CHAIN * n:
                raise RuntimeError(f"clock probe summed {got}, expected {CLOCK_CHAIN * n}")
            rates.append(CLOCK_CHAIN * n / dt / 1e6)
        return max(rates)

    one = best()
    each = [None] * max(1, int(threads))

    def work(k):
        each[k] = best()

    pool = [threading.Thread(target=work, args=(k,)) for k in range(len(each))]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return {"one_thread_mhz": one, "every_thread_mhz": each, "mhz": float(np.median(each)),
            "note": f"dependent 64-bit integer additions of a register (one cycle each on "
                    f"x86-64), {CLOCK_CHAIN} x {n} per run, best of {repeat}: one thread alone, then "
                    "one per numba thread at once ('mhz': their median); on Intel, 512-bit vector code may "
                    "run below this clock (AVX-512 frequency licence)"}


def _with_delivered_clock(peak, clock):
    """``peak`` (:func:`fp64_peak`) with the delivered clock and the FP64 peak at it."""
    if clock is None:
        return {**peak, "delivered_clock": None, "fp64_peak_gflops_at_delivered_clock": None}
    g = peak["physical_cores"] * clock["mhz"] * 1e6 * peak["flop_per_cycle_per_core_fma"] / 1e9
    return {**peak, "delivered_clock": clock, "fp64_peak_gflops_at_delivered_clock": g}


def _runs(f, repeat):
    """Wall times (s) of ``repeat`` calls of ``f`` (at least one)."""
    times = []
    for _ in range(max(1, int(repeat))):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return times


def _efficiency(points_per_s, flop_per_point, peak):
    """GFLOP/s and fraction of the FMA peak for a kernel figure."""
    g = points_per_s * flop_per_point
    return {"flop_per_point": flop_per_point, "achieved_gflops": g / 1e9,
            "fraction_of_peak": None if not peak["fp64_peak_gflops"] else
            g / (peak["fp64_peak_gflops"] * 1e9),
            "fraction_of_peak_without_fma": None if not peak["fp64_peak_gflops_without_fma"] else
            g / (peak["fp64_peak_gflops_without_fma"] * 1e9),
            "fraction_of_peak_at_delivered_clock":
            None if not peak.get("fp64_peak_gflops_at_delivered_clock") else
            g / (peak["fp64_peak_gflops_at_delivered_clock"] * 1e9)}


def row_flop(nbins, passes, series_passes=1.0):
    """Flop per point of the row kernel: counts once, ``passes`` Newton passes, the
    deviance series in ``series_passes`` of them."""
    return nbins * (FLOP_PER_BIN_COUNTS + passes * (FLOP_PER_BIN - FLOP_PER_BIN_COUNTS
                                                    - FLOP_PER_BIN_SERIES)
                    + series_passes * FLOP_PER_BIN_SERIES) + passes * FLOP_PER_POINT


def scipy_chi2(coef, theta, sa=0.10, sb=0.01):
    """What users do without mcscan: a per-point SciPy fit of the two pulls
    (Nelder-Mead on the chi2, vectorised over bins with NumPy)."""
    from scipy.optimize import minimize

    N = np.maximum(coef.S + theta @ coef.L + (theta**2) @ coef.Q, 0.0)
    B, D = coef.B, coef.D

    def f(p):
        T = (1 + p[0]) * N + (1 + p[1]) * B
        if np.any(T <= 0):
            return np.inf
        return 2 * np.sum(T - D + D * np.log(D / T)) + (p[0] / sa) ** 2 + (p[1] / sb) ** 2

    return minimize(f, np.zeros(2), method="Nelder-Mead",
                    options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000}).fun


_COMPILE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from mcscan.stats import kernels
t1 = time.perf_counter()
procs = None
if sys.argv[1] == "rows":
    kernels.warm_up_rows(False, lanes=1)
else:
    procs = kernels.warm_up(True, processes=1 if sys.argv[1] == "one" else None)
    kernels.warm_up(False)
t2 = time.perf_counter()
child = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"import_s": t1 - t0, "compile_or_load_s": t2 - t1, "processes": procs,
                  "cpu_s": time.process_time() + child.ru_utime + child.ru_stime}))
"""

_BUILD = r"""
import json, time
from mcscan.tables.build import build_table
from mcscan.config.load import load_config
cfg = load_config()
t0 = time.perf_counter()
out = {}
for d in cfg.detectors:
    t = time.perf_counter()
    build_table(cfg, d)
    out[d] = time.perf_counter() - t
out["all"] = time.perf_counter() - t0
print(json.dumps(out))
"""


def _subprocess(code, env=None, args=()):
    env = {**os.environ, **(env or {})}
    for k in [k for k, v in env.items() if v is None]:
        env.pop(k)
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       check=True, env=env)
    return json.loads(r.stdout.strip().splitlines()[-1])


def compile_times():
    """Kernel compile time with an empty cache, then a cache hit, in fresh processes."""
    out = {}
    with tempfile.TemporaryDirectory() as d:
        # MCSCAN_CACHE_DIR wins over NUMBA_CACHE_DIR (mcscan.stats._jit.cache_dir)
        env = {"MCSCAN_CACHE_DIR": d, "NUMBA_CACHE_DIR": None}
        cold = _subprocess(_COMPILE, env, ["all"])
        hit = _subprocess(_COMPILE, env, ["all"])
    with tempfile.TemporaryDirectory() as d:
        rows = _subprocess(_COMPILE, {"MCSCAN_CACHE_DIR": d, "NUMBA_CACHE_DIR": None}, ["rows"])
    with tempfile.TemporaryDirectory() as d:
        one = _subprocess(_COMPILE, {"MCSCAN_CACHE_DIR": d, "NUMBA_CACHE_DIR": None}, ["one"])
    out.update({"empty_cache_s": cold["compile_or_load_s"], "cache_hit_s": hit["compile_or_load_s"],
                "import_s": hit["import_s"],
                "empty_cache_cpu_s": cold["cpu_s"],
                "empty_cache_processes": cold["processes"],
                "empty_cache_one_process_s": one["compile_or_load_s"],
                "empty_cache_one_process_cpu_s": one["cpu_s"],
                "rows_only_empty_cache_s": rows["compile_or_load_s"],
                "note": "fresh subprocesses sharing one empty MCSCAN_CACHE_DIR: every "
                        "kernel of mcscan.stats.kernels (the lockstep and the one-row row "
                        "kernels, the point kernel, their helpers), one build each, by "
                        "kernels.warm_up: with two numba threads or more it builds the "
                        "lockstep kernel in a second process meanwhile (processes); a "
                        "parallel run calls the same build on threads; cache_hit = the same "
                        "in a second process; one_process = warm_up(processes=1), every "
                        "kernel in one process; rows_only = the one-row kernel alone (all "
                        "that 1D scans, limits and sensitivities compile); cpu_s = CPU time "
                        "of the whole process and its children (import included)"})
    return out


def startup():
    """Wall time of fresh processes: the interpreter, importing mcscan and its CLI, and
    the smallest CLI call (median of 5 each)."""
    def med(cmd):
        return float(np.median([_timed(cmd, None, os.environ.copy()) for _ in range(5)]))

    return {"python_start_s": med([sys.executable, "-c", "pass"]),
            "import_mcscan_s": med([sys.executable, "-c", "import mcscan"]),
            "import_mcscan_cli_s": med([sys.executable, "-c", "import mcscan.cli"]),
            "mcscan_version_s": med(_mcscan_cmd() + ["--version"]),
            "note": "wall time of whole processes, median of 5; modules load from their "
                    "byte-code cache"}


def _child(cmd, cwd):
    """Run a command; return (wall s, CPU s of the child, peak RSS MB of the child)."""
    import shlex

    wrapper = ("import resource, subprocess, sys, time, json; t = time.perf_counter(); "
               f"r = subprocess.run({shlex.split(cmd)!r}, capture_output=True, text=True); "
               "w = time.perf_counter() - t; u = resource.getrusage(resource.RUSAGE_CHILDREN); "
               "print(json.dumps([r.returncode, w, u.ru_utime + u.ru_stime, u.ru_maxrss / 1024, "
               "r.stderr[-2000:] if r.returncode else '']))")
    rc, wall, cpu, rss, err = _subprocess_in(wrapper, cwd)
    if rc:
        raise SystemExit(f"benchmark command failed (exit {rc}): {cmd}\n{err}")
    return wall, cpu, rss


def _subprocess_in(code, cwd):
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd)
    return json.loads(r.stdout.strip().splitlines()[-1])


def limits_cli(d):
    """`mcscan limits` on warm tables: process (CPU) time of a second call."""
    exe = f"{sys.executable} -m mcscan"
    _child(f"{exe} build --quiet --tables {d}", d)
    first = _child(f"{exe} limits --detector Xe --param q_ee --quiet --tables {d}", d)
    again = [_child(f"{exe} limits --detector Xe --param q_ee --quiet --tables {d}", d) for _ in range(3)]
    return {"first_call_wall_s": first[0], "first_call_cpu_s": first[1],
            "later_calls_cpu_s": [a[1] for a in again], "later_calls_wall_s": [a[0] for a in again],
            "note": "whole process (interpreter start, imports, numba cache load, scan of 2001 "
                    "points, root refinement), Xe, q_ee"}


def ndscan_backends(d, points=31):
    """The default `mcscan ndscan` against its alternatives on this machine: whole
    processes (warm kernel cache), a 4-charge Xe scan of points^4, streamed to a file.

    Compared: the default (local backend, numba's default threads), local with one
    numba thread, and dask-local with one worker process per core (when Dask is
    installed).  The default should never be the slowest."""
    import importlib.util

    exe = f"{sys.executable} -m mcscan"
    _child(f"{exe} build --quiet --tables {d}", d)
    base = (f"{exe} ndscan --detector Xe --param q_ee --param q_mumu --param q_emu --param q_etau "
            f"--points {points} --quiet --force --tables {d} --out {d}/results/nd.h5")
    cases = {"default": base, "local_1_thread": f"env NUMBA_NUM_THREADS=1 {base}"}
    if importlib.util.find_spec("distributed") is not None:
        cases["dask_local_workers_per_core"] = f"{base} --backend dask-local --workers {os.cpu_count()}"
    _child(base, d)                                     # kernels in the cache
    res = {}
    for name, cmd in cases.items():
        walls = [_child(cmd, d)[0] for _ in range(3)]
        res[name] = {"wall_s_each": walls, "wall_s_best": min(walls)}
    best = {k: v["wall_s_best"] for k, v in res.items()}
    return {"grid": [points] * 4, "points": points ** 4, "cases": res,
            "default_is_slowest": bool(len(best) > 1 and best["default"] == max(best.values())),
            "fastest": min(best, key=best.get),
            "note": "whole processes, best of 3 each; dask-local includes starting its cluster"}


def streamed_scan(d, n):
    """An n x n scan through `mcscan scan`: chunks streamed to disk, peak memory of the process."""
    exe = f"{sys.executable} -m mcscan"
    out = os.path.join(d, "big.h5")
    wall, cpu, rss = _child(f"{exe} scan --detector Xe --param q_ee --param q_mumu --points {n} "
                            f"--range -2e-8 2e-8 --range -1e-8 1e-8 --quiet --tables {d} --out {out}", d)
    size = os.path.getsize(out)
    os.unlink(out)
    return {"grid": [n, n], "wall_s": wall, "cpu_s": cpu, "points_per_s_wall": n * n / wall,
            "peak_rss_mb": rss, "results_file_bytes": size,
            "note": "end to end through the CLI: scan, chunk store, assembly of the HDF5 "
                    "results file (chi2, delta_chi2, pulls, converged) and its rename"}


def nd_families(coef, fcoef, settings, repeat=3, n=21):
    """An n^3 scan over three families (q_ee x r2_ee x eps_u_ee: cross terms) against an n^3
    scan of three charges, both through engine.scan in memory, Xe; best of ``repeat`` runs."""
    from mcscan.scans.engine import scan

    cases = {
        "charges": (coef, ("q_ee", "q_mumu", "q_emu"), tuple(np.linspace(-2e-8, 2e-8, n) for _ in range(3))),
        "families": (fcoef, ("q_ee", "r2_ee", "eps_u_ee"),
                     (np.linspace(-2e-8, 2e-8, n), np.linspace(-1e-31, 1e-31, n),
                      np.linspace(-0.05, 0.05, n))),
        "families_wide": (fcoef, ("q_ee", "r2_ee", "eps_u_ee"),
                          (np.linspace(-2e-8, 2e-8, n), np.linspace(-8e-31, 3e-31, n),
                           np.linspace(-0.2, 0.6, n))),
        # five parameters of three families, 21^5 points, as the charges' ndscan_5d
        "families_5d": (fcoef, ("q_mumu", "q_ee", "eps_d_ee", "r2_ee", "eps_u_ee"),
                        (np.linspace(-2e-8, 2e-8, 21), np.linspace(-2e-8, 2e-8, 21),
                         np.linspace(-0.05, 0.05, 21), np.linspace(-1e-31, 1e-31, 21),
                         np.linspace(-0.05, 0.05, 21))),
    }
    out = {}
    for name, (c, params, axes) in cases.items():
        scan([c], params, tuple(a[:5] for a in axes), settings=settings)       # warm
        wall, cpu = [], []
        for _ in range(max(1, repeat)):
            t0, c0 = time.perf_counter(), time.process_time()
            res = scan([c], params, axes, settings=settings)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        npts = int(np.prod([a.size for a in axes]))
        out[name] = {"params": list(params), "ranges": [[float(a[0]), float(a[-1])] for a in axes],
                     "points": npts, "seconds_each_run": wall, "cpu_seconds_each_run": cpu,
                     "points_per_s": npts / min(wall), "points_per_cpu_s": npts / min(cpu),
                     "max_delta_chi2": float(np.max(np.asarray(res.chi2)) - res.chi2_min)}
    out["families_over_charges"] = out["families"]["points_per_s"] / out["charges"]["points_per_s"]
    out["note"] = (f"{n}^3 grids (families_5d: 21^5), engine.scan in memory (no file), projections "
                   "included; charges and families alike: every row of a chunk in one kernel call "
                   "per detector (families: each plane with its own row polynomial, those of a "
                   "chunk's planes formed at once); 'families_wide' spans the default ranges (larger Delta "
                   "chi2: more points leave the vector loop); compare families_5d with "
                   "ndscan_5d of the charges")
    return out


def _save_scan(path, sc):
    """Write a grid scan with the results writer of the old layout; None when this
    version of mcscan has none (the key stays in the JSON output, as null)."""
    try:
        from mcscan.io.tables import save_scan
    except ImportError:
        return None
    return save_scan(path, sc)


def _mcscan_cmd() -> list:
    """The ``mcscan`` console script of this interpreter (``python -m mcscan`` if absent)."""
    exe = os.path.join(os.path.dirname(sys.executable), "mcscan")
    return [exe] if os.path.isfile(exe) else [sys.executable, "-m", "mcscan"]


def _timed(cmd, cwd, env, cpu=False):
    """Wall time (s) of one command, interpreter start included; stops on failure.
    With ``cpu``: (wall, CPU seconds user + system of the command and its children)."""
    u0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    u1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        raise SystemExit(f"benchmark command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    if cpu:
        return wall, (u1.ru_utime - u0.ru_utime) + (u1.ru_stime - u0.ru_stime)
    return wall


def main_job(repeat=3):
    """``mcscan sensitivities`` as a user runs it: tables present, numba cache empty
    (cold: every kernel compiled), then with that cache (warm, median of ``repeat``)."""
    mcscan = _mcscan_cmd()
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "MCSCAN_CACHE_DIR": os.path.join(d, "cache")}
        env.pop("NUMBA_CACHE_DIR", None)
        # as in a user's installation, modules load from their byte-code cache
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        build_s = _timed(mcscan + ["build", "--quiet"], d, env)
        cmd = mcscan + ["sensitivities", "--quiet", "--force"]
        cold = _timed(cmd, d, env)
        # a user's first 2D scan, as in the README, with a kernel cache of its own (empty)
        scan_cmd = mcscan + ["scan", "--detector", "Xe", "--param", "q_ee", "--param", "q_mumu",
                             "--range", "-4e-8", "4e-8", "--range", "-2e-8", "2e-8", "--points", "201",
                             "--out", "first_scan.h5", "--quiet"]
        scan_first = _timed(scan_cmd, d, {**env, "MCSCAN_CACHE_DIR": os.path.join(d, "cache_scan")})
        # a user's first expected-limit bands (1000 toys of Ge), a kernel cache of its own
        bands_cmd = mcscan + ["bands", "--detector", "Ge", "--param", "q_ee", "--quiet"]
        bands_first = _timed(bands_cmd, d, {**env, "MCSCAN_CACHE_DIR": os.path.join(d, "cache_bands")})
        load_before = list(os.getloadavg())
        runs = [_timed(cmd, d, env, cpu=True) for _ in range(max(3, repeat))]
        load_after = list(os.getloadavg())
        warm = [w for w, _ in runs]
        # the README's command as a user reruns it: the stored table is up to date
        rerun = [_timed(mcscan + ["sensitivities", "--quiet"], d, env, cpu=True)
                 for _ in range(max(3, repeat))]
        print(f"main job: warm 'mcscan sensitivities' median {np.median(warm):.3f} s wall, "
              f"{np.median([c for _, c in runs]):.3f} s CPU; load average {load_before[0]:.2f} "
              f"before, {load_after[0]:.2f} after; rerun (table up to date) median "
              f"{np.median([w for w, _ in rerun]):.3f} s wall", file=sys.stderr)
        probe = ("import json, numba, mcscan.cli, mcscan.stats._jit as j; "
                 "print(json.dumps([numba.get_num_threads(), numba.config.NUMBA_NUM_THREADS, "
                 "str(j.CACHE_DIR)]))")
        r = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                           check=True)
        threads, threads_max, cache = json.loads(r.stdout.strip().splitlines()[-1])
        import_s = _timed([sys.executable, "-c", "import mcscan.cli"], d, env)
        interp_s = _timed([sys.executable, "-c", "pass"], d, env)
    return {
        "command": "mcscan sensitivities --quiet --force",
        "cold_wall_s": cold,
        "warm_wall_s": float(np.median(warm)),
        "warm_wall_s_each": warm,
        "warm_cpu_s": float(np.median([c for _, c in runs])),
        "warm_cpu_s_each": [c for _, c in runs],
        "rerun_command": "mcscan sensitivities --quiet",
        "rerun_wall_s": float(np.median([w for w, _ in rerun])),
        "rerun_wall_s_each": [w for w, _ in rerun],
        "rerun_cpu_s": float(np.median([c for _, c in rerun])),
        "loadavg_1min_before_after_warm": [load_before[0], load_after[0]],
        "numba_threads": threads,
        "numba_threads_available": threads_max,
        "table_build_wall_s": build_s,
        "scan_2d_command": " ".join(["mcscan"] + scan_cmd[len(mcscan):]),
        "scan_2d_first_wall_s": scan_first,
        "bands_command": " ".join(["mcscan"] + bands_cmd[len(mcscan):]),
        "bands_first_wall_s": bands_first,
        "import_mcscan_cli_wall_s": import_s,
        "python_start_wall_s": interp_s,
        "cache_dir_during_run": cache,
        "note": "wall time of whole processes (interpreter start included) in a fresh folder: "
                "tables built first by 'mcscan build'; cold = empty kernel cache "
                "(MCSCAN_CACHE_DIR), so every kernel is compiled; warm = the same cache and "
                f"tables, results file overwritten (--force), median of {max(3, repeat)} runs; "
                "CPU = user + system time of the process; on a shared machine compare with "
                "the load average; rerun = the command without --force after those runs, "
                "which reads the up-to-date stored table instead of computing it; "
                "scan_2d_first = scan_2d_command once, in the same folder, with an empty "
                "kernel cache of its own (what a user's first 2D scan waits for); "
                "bands_first = bands_command the same way (its toy kernels compiled)",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--points", type=int, default=2001, help="grid points per axis of the 2D scan")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions of the 2D scan")
    ap.add_argument("--numpy-points", type=int, default=200_000, help="points for the NumPy twin")
    ap.add_argument("--scipy-points", type=int, default=200, help="points for the SciPy fit")
    ap.add_argument("--big-points", type=int, default=10001,
                    help="points per axis of the streamed 2D scan through the CLI (0: skip)")
    ap.add_argument("--toys", type=int, default=2000,
                    help="toys of the expected-limit bands (best of 5 runs)")
    ap.add_argument("--main-job-only", action="store_true",
                    help="measure only the main job (cold and warm 'mcscan sensitivities')")
    ap.add_argument("--backends-only", action="store_true",
                    help="measure only the default ndscan against one thread and dask-local")
    ap.add_argument("--nd-families-only", action="store_true",
                    help="measure only the 21^3 scan over three families against three charges")
    args = ap.parse_args()
    if args.main_job_only:
        print(json.dumps({"main_job": main_job(args.repeat)}, indent=1))
        return
    if args.backends_only:
        with tempfile.TemporaryDirectory() as d:
            print(json.dumps({"loadavg_at_start": list(os.getloadavg()),
                              "ndscan_backends": ndscan_backends(d)}, indent=1))
        return
    if args.nd_families_only:
        from mcscan.config.load import load_config
        from mcscan.scans.grid import ScanSettings
        from mcscan.stats.families import family_coefficients
        from mcscan.stats.reference import coefficients
        from mcscan.tables.build import build_table

        cfg = load_config()
        xe = build_table(cfg, "Xe")
        res = nd_families(coefficients(xe), family_coefficients(xe), ScanSettings.from_config(cfg),
                          max(args.repeat, 5))
        print(json.dumps({"loadavg_at_start": list(os.getloadavg()), "ndscan_3d_families": res},
                         indent=1))
        return

    import numba

    from mcscan.tables.build import build_table
    from mcscan.config.load import PARAMS, load_config
    from mcscan.stats.kernels import warm_up
    from mcscan.stats.reference import chi2 as chi2_numpy
    from mcscan.stats.reference import coefficients
    from mcscan.scans.grid import ScanSettings, grid_scan

    name, mhz, avx512, fma = _cpu()
    peak = _with_delivered_clock(fp64_peak(), delivered_clock(numba.get_num_threads()))
    out = {"machine": {"cpu": name, "cores": os.cpu_count(), "numba_threads": numba.get_num_threads(),
                       "clock_mhz_cpuinfo": mhz, "avx512": avx512, "fma": fma,
                       "loadavg_at_start": list(os.getloadavg()), **peak}}
    print(f"cpu: {name}, {os.cpu_count()} logical CPUs = {peak['physical_cores']} cores x "
          f"{peak['threads_per_core']} threads, {mhz} MHz; predicted FP64 peak "
          f"{peak['fp64_peak_gflops']:.1f} GFLOP/s ({peak['fp64_peak_gflops_without_fma']:.1f} "
          f"without FMA); load average {os.getloadavg()[0]:.2f}", file=sys.stderr)

    t0 = time.perf_counter()
    warm_up(True)
    warm_up(False)
    out["kernel_load_s_this_process"] = time.perf_counter() - t0

    cfg = load_config()
    t0 = time.perf_counter()
    tables = {d: build_table(cfg, d) for d in cfg.detectors}
    out["table_build_in_process_s"] = time.perf_counter() - t0
    out["table_build_cold_s"] = _subprocess(_BUILD)

    coef = coefficients(tables["Xe"])
    n = args.points
    x = np.linspace(-2e-8, 2e-8, n)
    y = np.linspace(-1e-8, 1e-8, n)
    settings = ScanSettings.from_config(cfg)
    times, cpu = [], []
    for _ in range(max(1, args.repeat)):
        stats = {}
        sc = None
        t0, c0 = time.perf_counter(), time.process_time()
        sc = grid_scan([coef], ("q_ee", "q_mumu"), (x, y), settings=settings, stats=stats)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    rss_scan = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best = min(times)
    med = float(np.median(times))
    iters = stats["iterations"] / stats["points"]
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        wrote = _save_scan(os.path.join(d, "s.h5"), sc)
        write_s = time.perf_counter() - t0 if wrote is not None else None
        size = os.path.getsize(os.path.join(d, "s.h5")) if wrote is not None else None
    out["scan_2d"] = {
        "detector": "Xe", "params": ["q_ee", "q_mumu"], "grid": [n, n],
        "ranges_e": [[x[0], x[-1]], [y[0], y[-1]]], "tol": settings.tol,
        "seconds_each_run": times, "cpu_seconds_each_run": cpu,
        "points_per_s_best": n * n / best, "points_per_s_median": n * n / med,
        "points_per_s_first_run": n * n / times[0],
        "note": "grid_scan end to end: output allocation (chi2, pulls, converged) and "
                "row layout included, result writing excluded; the first run of a "
                "process also pays first-touch page faults of fresh memory",
        "all_converged": bool(sc.converged.all()),
        "newton_iterations_per_point_mean": iters,
        "scalar_path_points": stats["scalar_path"], "log_chi2_points": stats["log_chi2"],
        "write_s": write_s, "write_bytes": size,
        "peak_rss_mb_after_scans": rss_scan,
    }

    # N-D: five charges on one grid, every row of a chunk in one kernel call
    from mcscan.scans.engine import scan as nd_scan_engine

    p5 = ("q_ee", "q_mumu", "q_emu", "q_etau", "q_mutau")
    ax5 = tuple(np.linspace(-2e-8, 2e-8, 21) for _ in p5)
    nd_scan_engine([coef], p5, tuple(a[:5] for a in ax5), settings=settings)      # warm
    t5 = []
    for _ in range(max(1, args.repeat)):
        t0 = time.perf_counter()
        nd_scan_engine([coef], p5, ax5, settings=settings)
        t5.append(time.perf_counter() - t0)
    st5 = _rows_5d_stats(coef, p5, ax5, settings)
    rate5 = 21 ** 5 / min(t5)
    out["ndscan_5d"] = {
        "detector": "Xe", "params": list(p5), "grid": [21] * 5, "points": 21 ** 5,
        "seconds_each_run": t5, "points_per_s": rate5,
        "ratio_to_scan_2d_best": rate5 / (n * n / best),
        "newton_iterations_per_point_mean": st5["iterations"] / st5["points"],
        "scalar_path_points_fraction": st5["scalar_path"] / st5["points"],
        **_efficiency(rate5, row_flop(coef.S.size, st5["iterations"] / st5["points"]), peak),
        "note": "engine.scan in memory (no file), projections included; rows of 21 points: "
                "on this coarse grid every point needs two Newton passes (the first without "
                "the deviance series), and the first points of each row start far (damped "
                "passes in the vector loop: scans of four or more charges); iterations from "
                "the row kernel's statistics over the first 400 planes",
    }

    # the users' 2D path: engine.scan in memory (Analysis.scan, `mcscan scan` without --out)
    te = _runs(lambda: nd_scan_engine([coef], ("q_ee", "q_mumu"), (x, y), settings=settings),
               args.repeat)
    out["scan_2d_engine"] = {
        "detector": "Xe", "params": ["q_ee", "q_mumu"], "grid": [n, n], "seconds_each_run": te,
        "points_per_s_best": n * n / min(te), "ratio_to_scan_2d_best": best / min(te),
        "note": "engine.scan in memory, as Analysis.scan and `mcscan scan` without --out run "
                "it: result grids, minimum and projections included; the kernel of scan_2d",
    }
    # rows longer than one segment (4096 points): 5001 = 4096 + 905
    yr = np.linspace(-1e-8, 1e-8, 5001)
    xr = x[:: max(1, n // 512)][:512]
    tr = _runs(lambda: grid_scan([coef], ("q_ee", "q_mumu"), (xr, yr), settings=settings), args.repeat)
    out["scan_2d_long_rows"] = {
        "detector": "Xe", "params": ["q_ee", "q_mumu"], "grid": [int(xr.size), 5001],
        "seconds_each_run": tr, "points_per_s_best": xr.size * 5001 / min(tr),
        "ratio_to_scan_2d_best": (xr.size * 5001 / min(tr)) / (n * n / best),
        "note": "grid_scan with rows of 5001 points, each cut into segments of 4096 and 905 "
                "points (mcscan.scans.grid.row_segments)",
    }

    # the default ranges, where most points take their chi2 bin by bin (some |1 - D/T|
    # beyond the deviance series): Ge, q_emu x q_etau, 1001 x 1001
    from mcscan.params import default_range

    ge = coefficients(tables["Ge"])
    pd = ("q_emu", "q_etau")
    axd = tuple(np.linspace(*default_range(p, cfg), 1001) for p in pd)
    std = {}
    grid_scan([ge], pd, tuple(a[:64] for a in axd), settings=settings)       # warm
    grid_scan([ge], pd, axd, settings=settings, stats=std)
    td = _runs(lambda: grid_scan([ge], pd, axd, settings=settings), args.repeat)
    out["scan_2d_default_range"] = {
        "detector": "Ge", "params": list(pd), "ranges": [[float(a[0]), float(a[-1])] for a in axd],
        "grid": [1001, 1001], "seconds_each_run": td, "points_per_s_best": 1001 ** 2 / min(td),
        "ratio_to_scan_2d_best": (1001 ** 2 / min(td)) / (n * n / best),
        "chi2_bin_by_bin_fraction": std["log_chi2"] / std["points"],
        "newton_iterations_per_point_mean": std["iterations"] / std["points"],
        "note": "grid_scan over the parameters' default ranges (mcscan.params.default_range): "
                "most points end with some bins beyond the deviance series and take their "
                "chi2 bin by bin at the converged pulls (kernels._lanes_chi2), with a "
                "logarithm in those bins",
    }

    from mcscan.stats.families import family_coefficients

    out["ndscan_3d_families"] = nd_families(coef, family_coefficients(tables["Xe"]), settings,
                                            args.repeat)
    out["ndscan_3d_families"]["families_5d_over_charges_5d"] = (
        out["ndscan_3d_families"]["families_5d"]["points_per_s"] / out["ndscan_5d"]["points_per_s"])

    # arithmetic efficiency
    flop_pt = row_flop(coef.S.size, iters)
    out["scan_2d"].update(_efficiency(n * n / best, flop_pt, peak))
    peak_fma = peak["fp64_peak_gflops"]
    peak = None if peak_fma is None else peak_fma * 1e9
    rate = n * n / best
    k = int(np.argmin(times))
    per_cpu_s = n * n / cpu[k]
    out["efficiency"] = {
        "flop_per_point": flop_pt,
        "achieved_gflops": rate * flop_pt / 1e9,
        "peak_gflops_2_cores": None if peak is None else peak / 1e9,
        "fraction_of_peak": None if peak is None else rate * flop_pt / peak,
        "points_per_cpu_second": per_cpu_s,
        "fraction_of_one_core_peak_per_cpu_second": None if peak is None else
        per_cpu_s * flop_pt / (peak / 2),
        "assumptions": (f"{FLOP_PER_BIN} flop per bin and pass ({FLOP_PER_BIN_COUNTS} of them "
                        f"once per point, {FLOP_PER_BIN_SERIES} only in the last pass) + "
                        f"{FLOP_PER_POINT} per point and pass (counted from the kernel source, "
                        f"add/mul/div = 1, a fused multiply-add 2), times the mean iterations, "
                        f"{coef.S.size} bins; "
                        f"peak: {out['machine']['peak_basis']} (fp64_peak in 'machine'; a VM "
                        "hides boost); divides (1 per bin) take more than one pipe slot, so "
                        "100% is out of reach; best run; the per-cpu-second figure divides by "
                        "the process CPU time of that run (page faults included) instead of "
                        "wall time"),
    }

    # NumPy twin on random points of the same grid
    rng = np.random.default_rng(1)
    flat = rng.choice(n * n, size=min(args.numpy_points, n * n), replace=False)
    theta = np.zeros((flat.size, len(PARAMS)))
    theta[:, 0] = x[flat // n]
    theta[:, 1] = y[flat % n]
    t0 = time.perf_counter()
    ref = chi2_numpy(coef, theta, **settings.kwargs())
    dt_np = time.perf_counter() - t0
    got = sc.chi2.ravel()[flat]
    rel = np.max(np.abs(got - ref[0]) / np.abs(ref[0]))
    out["numpy_twin"] = {
        "points": int(flat.size), "points_per_s": flat.size / dt_np,
        "vectorised": "model.chi2 on all points at once: (points, bins) arrays, Newton "
                      "iterations on the shrinking set of active points, cold start (0, 0)",
        "scan_over_numpy": rate / (flat.size / dt_np),
        "max_rel_chi2_diff_scan_vs_twin": float(rel),
        "max_abs_pull_diff": float(max(np.max(np.abs(sc.pulls["Xe"][0].ravel()[flat] - ref[1])),
                                       np.max(np.abs(sc.pulls["Xe"][1].ravel()[flat] - ref[2])))),
        "twin_newton_iterations_mean": float(np.mean(ref[3])),
    }

    # the previous kernel (every point from zero pulls) on the same points
    from mcscan.stats.kernels import chi2_points

    t0 = time.perf_counter()
    pk = chi2_points(coef, theta, **settings.kwargs())
    dt_k = time.perf_counter() - t0
    it_pk = float(np.mean(np.abs(pk[3])))
    out["point_kernel"] = {"points": int(flat.size), "points_per_s": flat.size / dt_k,
                           "scan_over_point_kernel": rate / (flat.size / dt_k),
                           "newton_iterations_per_point_mean": it_pk,
                           **_efficiency(flat.size / dt_k, coef.S.size * (
                               it_pk * FLOP_PER_BIN_SCALAR + FLOP_PER_BIN_LOG_CHI2), out["machine"])}

    m = min(args.scipy_points, flat.size)
    t0 = time.perf_counter()
    sp = np.array([scipy_chi2(coef, t) for t in theta[:m]])
    dt_sp = time.perf_counter() - t0
    out["scipy_per_point"] = {
        "points": m, "points_per_s": m / dt_sp, "method": "scipy.optimize.minimize Nelder-Mead, "
        "xatol 1e-10, fatol 1e-12, chi2 vectorised over bins",
        "scan_over_scipy": rate / (m / dt_sp),
        "max_abs_chi2_diff_vs_scan": float(np.max(np.abs(sp - got[:m]))),
    }

    out["toys"] = toys_bench(cfg, args.toys, out["machine"])
    out["kernel_compile"] = compile_times()
    out["startup"] = startup()
    out["main_job"] = main_job(args.repeat)
    out["kernel_compile"]["sensitivities_first_run_empty_cache_s"] = out["main_job"]["cold_wall_s"]
    out["kernel_compile"]["sensitivities_warm_s"] = out["main_job"]["warm_wall_s"]
    out["kernel_compile"]["scan_2d_first_run_empty_cache_s"] = out["main_job"]["scan_2d_first_wall_s"]
    out["kernel_compile"]["bands_first_run_empty_cache_s"] = out["main_job"]["bands_first_wall_s"]
    with tempfile.TemporaryDirectory() as d:
        out["limits_cli"] = limits_cli(d)
        out["ndscan_backends"] = ndscan_backends(d)
        if args.big_points:
            out["streamed_scan"] = streamed_scan(d, args.big_points)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out["peak_rss_mb"] = ru.ru_maxrss / 1024
    out["peak_rss_children_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out["loadavg_at_end"] = list(os.getloadavg())
    _summary(out)
    print(json.dumps(out, indent=1))


def _summary(out):
    """The headline figures, one line each, on stderr."""
    m = out["machine"]
    lines = [f"cpu {m['cpu']} ({m['cores']} cores, {m['clock_mhz_cpuinfo']} MHz), predicted FP64 "
             f"peak {m['fp64_peak_gflops']:.1f} GFLOP/s ({m['peak_basis']})"]
    clock = m.get("delivered_clock")
    if clock:
        lines.append(f"delivered clock {clock['mhz']:.0f} MHz with every thread busy (one thread "
                     f"alone {clock['one_thread_mhz']:.0f} MHz): FP64 peak at it "
                     f"{m['fp64_peak_gflops_at_delivered_clock']:.1f} GFLOP/s")

    def frac(d):
        f = d.get("fraction_of_peak")
        fd = d.get("fraction_of_peak_at_delivered_clock")
        at = "" if fd is None else f"; {100 * fd:.1f}% at the delivered clock"
        return "" if f is None else f", {100 * f:.1f}% of peak ({d['achieved_gflops']:.1f} GFLOP/s{at})"

    s2, s5 = out["scan_2d"], out["ndscan_5d"]
    lines.append(f"2D scan: {s2['points_per_s_best'] / 1e6:.2f} M points/s best{frac(s2)}")
    lines.append(f"5D scan: {s5['points_per_s'] / 1e6:.2f} M points/s, "
                 f"{s5['ratio_to_scan_2d_best']:.2f} of 2D{frac(s5)}")
    lines.append(f"2D scan in memory through engine.scan: "
                 f"{out['scan_2d_engine']['points_per_s_best'] / 1e6:.2f} M points/s best, "
                 f"{out['scan_2d_engine']['ratio_to_scan_2d_best']:.2f} of scan_2d; rows of 5001 "
                 f"points: {out['scan_2d_long_rows']['points_per_s_best'] / 1e6:.2f} M")
    sd = out["scan_2d_default_range"]
    lines.append(f"2D scan over the default ranges (Ge q_emu x q_etau, "
                 f"{100 * sd['chi2_bin_by_bin_fraction']:.0f}% of the points with the chi2 bin "
                 f"by bin): {sd['points_per_s_best'] / 1e6:.2f} M points/s best, "
                 f"{sd['ratio_to_scan_2d_best']:.2f} of scan_2d")
    f5 = out["ndscan_3d_families"]
    lines.append(f"5D scan over three families: {f5['families_5d']['points_per_s'] / 1e6:.2f} M "
                 f"points/s, {f5['families_5d_over_charges_5d']:.2f} of the charges' 5D")
    pk = out["point_kernel"]
    lines.append(f"point kernel: {pk['points_per_s'] / 1e3:.0f} k points/s{frac(pk)}")
    t = out["toys"]
    lines.append(f"toys: {t['toys_per_s']:.0f} profiled toys/s ({t['points_per_toy']} points "
                 f"each){frac(t)}")
    k = out["kernel_compile"]
    lines.append(f"compile: empty cache {k['empty_cache_s']:.2f} s in {k['empty_cache_processes']} "
                 f"process(es) ({k['empty_cache_one_process_s']:.2f} s in one; one-row kernel alone "
                 f"{k['rows_only_empty_cache_s']:.2f} s), cache hit {k['cache_hit_s']:.2f} s; "
                 f"first 'mcscan sensitivities' from an empty cache "
                 f"{k['sensitivities_first_run_empty_cache_s']:.2f} s, warm "
                 f"{k['sensitivities_warm_s']:.2f} s; first 2D 'mcscan scan' (201^2) from an "
                 f"empty cache {k['scan_2d_first_run_empty_cache_s']:.2f} s; first 'mcscan "
                 f"bands' (Ge, 1000 toys) {k['bands_first_run_empty_cache_s']:.2f} s")
    st = out["startup"]
    lines.append(f"start-up: python {st['python_start_s']:.3f} s, import mcscan.cli "
                 f"{st['import_mcscan_cli_s']:.3f} s, 'mcscan --version' {st['mcscan_version_s']:.3f} s")
    lines.append(f"load average {out['machine']['loadavg_at_start'][0]:.2f} at start, "
                 f"{out['loadavg_at_end'][0]:.2f} at end")
    print("\n".join(lines), file=sys.stderr)


def _rows_5d_stats(coef, params, axes, settings, planes=400):
    """Row-kernel statistics of the rows of the first ``planes`` planes of the 5D grid, as
    the engine runs them (vector_start): points, iterations, scalar_path."""
    from mcscan.params import PARAMS
    from mcscan.scans.grid import row_segments
    from mcscan.stats.kernels import chi2_rows

    ny, nx = axes[-1].size, axes[-2].size
    outer = np.array(np.meshgrid(*axes[:-2], indexing="ij")).reshape(len(axes) - 2, -1).T[:planes]
    bases = np.zeros((outer.shape[0], len(PARAMS)))
    for j, p in enumerate(params[:-2]):
        bases[:, PARAMS.index(p)] = outer[:, j]
    nrows = outer.shape[0] * nx
    _, y0, cnt, o0 = row_segments(nrows, ny)
    rows = np.arange(nrows)
    n = nrows * ny
    out = np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=bool)
    st = chi2_rows(coef, bases, PARAMS.index(params[-2]), PARAMS.index(params[-1]),
                   axes[-2][rows % nx], axes[-1], y0, cnt, o0, out=out, base_rows=rows // nx,
                   vector_start=True, **settings.kwargs())
    return {"points": n, **st}


def toys_bench(cfg, ntoys, machine):
    """Expected-limit bands of q_ee for Xe through the public API (Analysis.bands): toys per
    second, each toy profiled over the pulls at every point of its q_ee grid."""
    from mcscan.api import Analysis
    from mcscan.stats import toys

    # the lane kernel, compiled or loaded: on a fresh machine the bands below would
    # otherwise run on its stand-in, the one-toy kernel (toys.STAND_IN_TOY_POINTS)
    toys.warm_up(True)
    with tempfile.TemporaryDirectory() as d:
        a = Analysis(cfg, detectors=["Xe"], tables=d)
        a.bands("q_ee", toys=64, detectors=["Xe"], seed=1)           # warm: Asimov limit
        runs = []
        for _ in range(5):            # one run of 2000 toys takes about 0.05 s: best of 5
            t0, c0 = time.perf_counter(), time.process_time()
            b = a.bands("q_ee", toys=ntoys, detectors=["Xe"], seed=2)
            runs.append((time.perf_counter() - t0, time.process_time() - c0))
        dt, dc = min(runs)
    points = int(np.size(b.grid)) if hasattr(b, "grid") else 201
    nbins = a.coefficients(["Xe"])[0].S.size
    rate = ntoys / dt
    return {"detector": "Xe", "param": "q_ee", "toys": ntoys, "points_per_toy": points,
            "seconds": dt, "cpu_seconds": dc, "toys_per_s": rate,
            "seconds_each_run": [r[0] for r in runs],
            "toy_points_per_s": rate * points,
            **_efficiency(rate * points, row_flop(nbins, 1.0), machine),
            "note": "Analysis.bands (public API): toys generated, each profiled at every "
                    "point of its grid (the toy kernel, warm-started along the grid), limits "
                    "found and windows extended for open toys; flop per toy point assumes one "
                    "Newton pass (a lower bound)"}


if __name__ == "__main__":
    main()
