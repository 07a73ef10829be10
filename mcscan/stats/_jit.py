"""The one place that sets numba options for every kernel.

Kernels are compiled twice, serial and parallel, from the same Python
function; ``cache=True`` keeps the machine code on disk so a second process
starts without recompiling.  Helpers called from kernels are compiled once
with the same options (LLVM may inline them).

No fastmath: flags such as 'reassoc' reorder sums (results would then
depend on the vector width of the machine) and 'nnan'/'ninf' would break the
NaN and infinity checks the kernels rely on.  Even 'contract' (FMA
formation) is left off: the scan kernels are fast enough without it and
their results stay identical on machines with and without FMA units
({"contract"} measured +12% on the row kernel, Zen 5).

numba's cache is keyed on the source file of each kernel: after changing an
option here, delete the cached files (``mcscan/__pycache__/*.nbi``, ``*.nbc``)
or the kernels keep their old machine code.
"""
from __future__ import annotations

import numba as nb

__all__ = ["helper", "kernel"]

_OPTIONS = dict(cache=True, error_model="numpy", nogil=True, fastmath=False)


def kernel(func):
    """Compile ``func`` in serial and parallel mode; returns (serial, parallel)."""
    return nb.njit(parallel=False, **_OPTIONS)(func), nb.njit(parallel=True, **_OPTIONS)(func)


def helper(func=None, *, inline=False):
    """Compile a scalar helper that kernels call; ``inline=True`` inlines it in numba IR."""

    def wrap(f):
        return nb.njit(inline="always" if inline else "never", **_OPTIONS)(f)
    return wrap if func is None else wrap(func)
