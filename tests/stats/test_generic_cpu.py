"""The same bits on every machine: the kernels write their fused multiply-adds out
(``mcscan.stats._jit.fma``, LLVM's llvm.fma, rounded once), so a build for a generic
x86-64 CPU without FMA units (the C library's fma, no vector loop of 512 bits) gives
the bits of this machine's build: the lockstep and one-row grid kernels, and the lane
and one-toy kernels.  One child process compiles them all for the generic CPU."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from mcscan.scans.grid import grid_scan
from mcscan.stats import toys

CHILD = """
import sys, numpy as np
from mcscan.api import load_coefficients
from mcscan.scans.grid import grid_scan
from mcscan.stats import kernels, toys
from test_generic_cpu import outputs
c, = load_coefficients(None, ['Ge'], sys.argv[1])
kernels.warm_up_rows(False)     # the 2D scan then runs on the lockstep kernel, not its stand-in
np.save(sys.argv[2], outputs(c))
for k in (kernels._rows, toys._lanes):
    asm = k.inspect_asm(k.signatures[0])
    print('vfmadd' in asm, 'fma' in asm)
"""


def outputs(c):
    """A 2D and a 1D scan (lockstep and one-row kernels) and toys in lanes and one by one,
    one hard toy among them, as one array."""
    x = np.linspace(-3e-8, 3e-8, 40)
    xs = np.linspace(-6e-8, 6e-8, 61)
    N = toys.grid_counts(c, np.zeros(6), 0, xs)
    D, a0, b0 = toys.generate_toys(c.S + c.B, 9, 0, 40)
    D[0] = 3.0 * (c.S + c.B)
    tc = [np.ravel(toys.toy_chi2(N, c.S, c.B, D, a0, b0, lanes=n)[:3]) for n in (32, 0)]
    return np.concatenate([grid_scan([c], ("q_ee", "q_mumu"), (x, x)).chi2.ravel(),
                           grid_scan([c], ("q_mumu",), (x,)).chi2.ravel(), *tc])


def test_same_bits_on_a_cpu_without_fma_units(coefs, table_dir, tmp_path):
    out = tmp_path / "generic.npy"
    env = dict(os.environ, NUMBA_CPU_NAME="generic", NUMBA_CPU_FEATURES="",
               MCSCAN_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", CHILD, str(table_dir), str(out)], env=env,
                       check=True, capture_output=True, text=True)
    # no FMA instruction in either kernel: the C library's fma
    assert r.stdout.split() == ["False", "True", "False", "True"]
    assert np.array_equal(np.load(out), outputs(coefs["Ge"]))                     # exact
