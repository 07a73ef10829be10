"""The one place that sets numba options for every kernel.

Kernels are compiled twice, serial and parallel, from the same Python
function; ``cache=True`` keeps the machine code on disk so a second process
starts without recompiling.  No fastmath: it would reorder sums and break
the NaN checks the kernels rely on.
"""
from __future__ import annotations

import numba as nb

__all__ = ["kernel"]

_OPTIONS = dict(cache=True, error_model="numpy", nogil=True, fastmath=False)


def kernel(func):
    """Compile ``func`` in serial and parallel mode; returns (serial, parallel)."""
    return nb.njit(parallel=False, **_OPTIONS)(func), nb.njit(parallel=True, **_OPTIONS)(func)
