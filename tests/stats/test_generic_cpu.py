"""The same bits on every machine: the kernels write their fused multiply-adds out
(``mcscan.stats._jit.fma``, LLVM's llvm.fma, rounded once), so a build for a generic
x86-64 CPU without FMA units (the C library's fma, no vector loop of 512 bits) gives
the bits of this machine's build: the lockstep and one-row grid kernels, and the lane
and one-toy kernels.  One child process compiles them all for the generic CPU.

The child's fresh builds also show which helpers LLVM left as calls: the small
straight-line ones (``mcscan.stats._jit.helper`` without ``inline``) must be inlined
into the lockstep and lane kernels, or their bin loops would call a function per bin."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mcscan.scans.grid import grid_scan
from mcscan.stats import toys

CHILD = """
import sys, numpy as np
from mcscan.api import load_coefficients
from mcscan.scans.grid import grid_scan
from mcscan.stats import kernels, toys
from test_generic_cpu import INLINED, outputs
c, = load_coefficients(None, ['Ge'], sys.argv[1])
kernels.warm_up_rows(False)     # the 2D scan then runs on the lockstep kernel, not its stand-in
np.save(sys.argv[2], outputs(c))
for k in (kernels._rows, toys._lanes):
    asm = k.inspect_asm(k.signatures[0])
    print('vfmadd' in asm, 'fma' in asm)
    # a helper LLVM inlined at every call leaves no function of its own in the module
    # (only its environment, _ZN08NumbaEnv6mcscan...); one it calls is named in a movabsq
    print(' '.join(h for h in INLINED if f'_ZN6mcscan5stats7kernels{len(h)}{h}B' in asm) or '-')
"""

#: Helpers compiled once (no numba inlining) whose every call LLVM must inline.
INLINED = ("_log1p", "_bin_terms", "_add_gradient", "_newton_step", "_penalised")


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


@pytest.fixture(scope="module")
def generic(table_dir, tmp_path_factory):
    """(stdout lines, outputs) of the child: kernels built for the generic CPU."""
    tmp = tmp_path_factory.mktemp("generic")
    out = tmp / "generic.npy"
    env = dict(os.environ, NUMBA_CPU_NAME="generic", NUMBA_CPU_FEATURES="",
               MCSCAN_CACHE_DIR=str(tmp / "cache"),
               PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", CHILD, str(table_dir), str(out)], env=env,
                       check=True, capture_output=True, text=True)
    return r.stdout.splitlines(), np.load(out)


def test_same_bits_on_a_cpu_without_fma_units(coefs, generic):
    lines, out = generic
    # no FMA instruction in either kernel: the C library's fma
    assert lines[0].split() == ["False", "True"] and lines[2].split() == ["False", "True"]
    assert np.array_equal(out, outputs(coefs["Ge"]))                              # exact


def test_llvm_inlines_the_small_helpers(generic):
    lines, _ = generic
    # the lockstep row kernel and the toy lane kernel: no call to any of them is left
    assert lines[1] == "-" and lines[3] == "-"
