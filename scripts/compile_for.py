"""Compile every kernel of :mod:`mcscan.stats.kernels` for a CPU model, without running any.

    python scripts/compile_for.py [--cpu icelake-server] [--list]
    valgrind --tool=callgrind python scripts/compile_for.py --cpu icelake-server

It compiles what ``scripts/bench.py`` times as ``kernel_compile.empty_cache_s`` (the
point kernel, the one-row and the lockstep row kernels, and their helpers, one build
each), in a new empty cache folder, for the CPU model ``--cpu`` names (LLVM's name:
``icelake-server``, ``skylake-avx512``, ``znver3``, ...; default this machine's).  The
kernels are compiled, never run, so code for instruction sets this machine lacks
(AVX-512 on an AVX2 machine) is built without stopping on an illegal instruction.

It prints one JSON line: the CPU model, the kernels, the seconds to import
:mod:`mcscan.stats.kernels` and to compile.  Seconds on a busy or throttled machine
vary by a third from run to run; run it under callgrind (as above) for the
instructions of the compile, which do not (callgrind's own report at the end; the
import is in the same count, about 1.2 G instructions).  That is how the README
compares the compile work of two versions for an Intel model on an AMD machine.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time


def kernel_calls(kernels):
    """[(name, dispatcher, argument types)] of the calls ``kernels.warm_up`` makes, in its
    order, from its arguments alone: ``run_blocks`` is replaced for the call, so nothing
    is compiled or run."""
    import numba

    calls = []
    run_blocks = kernels.run_blocks

    def record(f, args, nblk, **kw):
        types = tuple(numba.typeof(a) for a in (*args, 0, int(nblk)))
        calls.append((f.py_func.__name__, f, types))

    kernels.run_blocks = record
    try:
        kernels.warm_up(False, processes=1)     # every kernel here: no child process
    finally:
        kernels.run_blocks = run_blocks
    return calls


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu", help="LLVM's name of the CPU model to compile for "
                                  "(default: this machine's)")
    ap.add_argument("--list", action="store_true", help="list the kernels, compile nothing")
    args = ap.parse_args(argv)
    if "numba" in sys.modules:
        raise SystemExit("compile_for: numba is imported already: run it as a script")
    if args.cpu:
        # numba reads these when it is imported; empty features: the model's own
        os.environ["NUMBA_CPU_NAME"] = args.cpu
        os.environ["NUMBA_CPU_FEATURES"] = ""
    with tempfile.TemporaryDirectory(prefix="mcscan-compile-") as tmp:
        os.environ["MCSCAN_CACHE_DIR"] = tmp
        os.environ.pop("NUMBA_CACHE_DIR", None)
        t0 = time.perf_counter()
        from mcscan.stats import kernels
        t1 = time.perf_counter()
        calls = kernel_calls(kernels)
        if not args.list:
            for _, f, types in calls:
                f.compile(types)
        t2 = time.perf_counter()
    print(json.dumps({"cpu": args.cpu or "this machine's", "kernels": [c[0] for c in calls],
                      "import_s": round(t1 - t0, 3),
                      "compile_s": None if args.list else round(t2 - t1, 3)}))


if __name__ == "__main__":
    main()
