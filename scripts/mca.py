"""Predicted cycles of the row kernel's bin loops on other CPUs, from llvm-mca.

    python scripts/mca.py [--cpu icelake-server skylake-avx512 znver3 ...] [--json]

For each CPU model, a child process compiles the lockstep row kernel
(:func:`mcscan.stats.kernels._chi2_rows`) with ``NUMBA_CPU_NAME`` set to it and
``NUMBA_CPU_FEATURES`` empty (LLVM takes the model's own instruction sets: AVX-512
for icelake-server, AVX2 for znver3), in a cache folder of its own, and prints
the assembly.  The script then finds the kernel's bin loops (the innermost
self-looping blocks with one packed double division each: the Newton pass that
does not sum the deviance series, and the first loop of the pass that does,
which also takes |u|; that pass's second loop sums the series, 13 fused
multiply-adds per vector and no division) and runs ``llvm-mca -mcpu=<model>``
on each.

It prints, per model and pass: lanes per iteration, cycles per iteration
(llvm-mca's simulation of 200 iterations, which models the out-of-order
window) and the block's reciprocal throughput (the port or divider bound with
unlimited window), of each loop, and the pass's sum per point and bin.  A point of a 2D scan costs
about one series pass (nbins bins), plus the per-point work outside these
loops.  These are predictions: no machine of the model is needed, and none is
measured.  LLVM 14's znver3 model gives a 256-bit FMA one pipe for a whole cycle
(reciprocal throughput 1.0; Zen 3 runs two per cycle), so it overstates the cost of
the fused multiply-adds there; Zen 4 is not modelled.  Needs llvm-mca on PATH (the
system's LLVM package) or --llvm-mca.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# The kernel is compiled, never run: code for a model with instruction sets this machine
# lacks (AVX-512 on an AVX2 machine) would stop the child with "Illegal instruction".
# compile_for.kernel_calls (beside this script) gives the types of warm_up's calls.
CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from compile_for import kernel_calls
from mcscan.stats import kernels as K
(types,) = [t for _, f, t in kernel_calls(K) if f is K._rows]
K._rows.compile(types)
sys.stdout.write(K._rows.inspect_asm(types))
"""

DEFAULT_CPUS = ("icelake-server", "skylake-avx512", "znver3")


def kernel_asm(cpu: str) -> str:
    """Assembly of the lockstep row kernel compiled for ``cpu`` (in a fresh cache folder)."""
    with tempfile.TemporaryDirectory(prefix="mcscan-mca-") as tmp:
        env = dict(os.environ, NUMBA_CPU_NAME=cpu, NUMBA_CPU_FEATURES="", MCSCAN_CACHE_DIR=tmp)
        r = subprocess.run([sys.executable, "-c", CHILD, os.path.dirname(os.path.abspath(__file__))],
                           env=env, capture_output=True, text=True)
    if r.returncode != 0:
        last = r.stderr.strip().splitlines()[-1:] or [f"exit status {r.returncode}"]
        raise SystemExit(f"compiling for {cpu} failed: {last[0]}")
    return r.stdout


def self_loops(asm: str):
    """(label, instructions) of every block that jumps back to its own label."""
    lines = asm.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\.LBB\d+_\d+):", line)
        if not m:
            continue
        label = m.group(1)
        body = []
        for t in lines[i + 1:]:
            s = t.strip()
            if re.match(r"^\.LBB\d+_\d+:", s):
                break
            if s and not s.startswith((".", "#")):
                body.append(s)
            if re.match(rf"^j\w+\s+{re.escape(label)}$", s):
                yield label, body
                break


def bin_loops(asm: str) -> dict:
    """{"gradient-only pass": [loop], "series pass": [loop, loop]}, each loop a tuple
    (label, body, register, lanes per iteration), from the self-loops on the widest
    vector registers: the loops with one packed double division per vector are the
    bin loops (the one that also takes |u| for the series pass); the series pass's
    second loop (:func:`mcscan.stats.kernels._add_series`) has no division and 13
    multiply-adds per vector (12 of Horner's scheme, one into the sum)."""
    div, series = [], []
    for label, body in self_loops(asm):
        text = "\n".join(body)
        reg = next((r for r in ("zmm", "ymm", "xmm") if f"%{r}" in text), None)
        if reg is None:
            continue
        ndiv = len(re.findall(rf"vdivpd\s[^\n]*%{reg}", text))
        nfma = len(re.findall(r"vf(n)?m(add|sub)\w*pd", text))
        if ndiv == 1:       # the Newton steps of the lanes have two
            div.append((label, body, reg, lanes_per_iteration(body, reg), "vandpd" in text))
        elif ndiv == 0 and nfma >= 13 and "vfmadd213pd" in text:
            width = {"zmm": 8, "ymm": 4, "xmm": 2}[reg]
            series.append((label, body, reg, nfma // 13 * width, nfma))
    rank = ("xmm", "ymm", "zmm").index
    out = {}
    if div:
        top = max(rank(f[2]) for f in div)
        div = [f for f in div if rank(f[2]) == top]
        grad = [f for f in div if not f[4]]
        ser = [f for f in div if f[4]]
        if grad:
            out["gradient-only pass"] = [grad[0][:4]]
        if ser and series:
            best = max(series, key=lambda f: (rank(f[2]), f[4]))
            out["series pass"] = [ser[0][:4], best[:4]]
    return out


def lanes_per_iteration(body, reg: str) -> int:
    """Vector lanes one iteration handles: the byte increment of the induction register
    compared before the back edge, in doubles (vector width if not found)."""
    width = {"zmm": 8, "ymm": 4, "xmm": 2}[reg]
    cmp = [s for s in body if s.startswith("cmpq")]
    if cmp:
        for r in re.findall(r"%(r\w+)", cmp[-1]):
            inc = [int(x) for s in body for x in re.findall(rf"^addq\s+\$(\d+),\s+%{r}$", s)]
            if inc:
                return max(inc[-1] // 8, width)
    return width


def mca(body, cpu: str, tool: str, iterations: int = 200) -> tuple:
    r = subprocess.run([tool, f"-mcpu={cpu}", f"-iterations={iterations}"],
                       input="\n".join(body) + "\n", capture_output=True, text=True)
    total = re.search(r"Total Cycles:\s+(\d+)", r.stdout)
    rt = re.search(r"Block RThroughput:\s+([\d.]+)", r.stdout)
    if not total or not rt:
        raise SystemExit(f"llvm-mca -mcpu={cpu} failed: {r.stderr.strip()[:200]}")
    return int(total.group(1)) / iterations, float(rt.group(1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu", nargs="+", default=list(DEFAULT_CPUS),
                    help="LLVM CPU models (default: %(default)s)")
    ap.add_argument("--llvm-mca", default=shutil.which("llvm-mca") or "llvm-mca")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args = ap.parse_args(argv)
    if not shutil.which(args.llvm_mca):
        raise SystemExit(f"llvm-mca not found ({args.llvm_mca}): install the system's LLVM package")
    res = {}
    for cpu in args.cpu:
        loops = bin_loops(kernel_asm(cpu))
        if not loops:
            raise SystemExit(f"{cpu}: no vectorised bin loop found in the kernel's assembly")
        res[cpu] = {}
        for kind, parts in loops.items():
            d = {"loops": []}
            for label, body, reg, lanes in parts:
                cyc, rt = mca(body, cpu, args.llvm_mca)
                d["loops"].append({"instructions": len(body), "register": reg,
                                   "lanes_per_iteration": lanes, "cycles_per_iteration": cyc,
                                   "rthroughput_per_iteration": rt})
            d["cycles_per_point_bin"] = sum(x["cycles_per_iteration"] / x["lanes_per_iteration"]
                                            for x in d["loops"])
            d["rthroughput_per_point_bin"] = sum(x["rthroughput_per_iteration"] / x["lanes_per_iteration"]
                                                 for x in d["loops"])
            res[cpu][kind] = d
    if args.json:
        print(json.dumps(res, indent=1))
        return
    print(f"{'cpu':16s} {'loop':19s} {'lanes':>9s} {'cycles/iter':>13s} {'RThr/iter':>13s} "
          f"{'cycles/point-bin':>16s} {'RThr/point-bin':>14s}")
    for cpu, loops in res.items():
        for kind, d in loops.items():
            lanes = " + ".join(str(x["lanes_per_iteration"]) for x in d["loops"])
            cyc = " + ".join(f"{x['cycles_per_iteration']:.1f}" for x in d["loops"])
            rt = " + ".join(f"{x['rthroughput_per_iteration']:.1f}" for x in d["loops"])
            print(f"{cpu:16s} {kind:19s} {lanes:>9s} {cyc:>13s} {rt:>13s} "
                  f"{d['cycles_per_point_bin']:16.2f} {d['rthroughput_per_point_bin']:14.2f}")

if __name__ == "__main__":
    main()
