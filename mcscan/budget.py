"""Resource budgets: refuse a run up front when it would exceed memory, disk or time.

Every long or large computation first estimates what it needs and calls
:func:`check_budget`; a request beyond the budget raises a one-line
:class:`~mcscan.errors.InputError` that states the estimate, the budget and the
keyword that raises it, e.g.::

    scan needs 12.4 GiB of memory (budget 4 GiB): raise it with max_memory_gib

Messages name API keywords, never command-line flags.

Default budgets (chosen so that a run within them finishes on a laptop):

================================  ==========  =======================================
budget                            default     keyword
================================  ==========  =======================================
memory                            4 GiB       ``max_memory_gib``
disk                              20 GiB      ``max_disk_gib``
scan grid points                  2e9         ``max_points``
region grid points                2001**2     ``max_points`` (4.0e6: 2001 per axis)
sweep configurations              10,000      ``max_configs``
table true-energy grid points     1e7         ``max_grid_points``
profiled chi2 evaluations         2e8         ``max_evaluations`` (about 25 min on two cores)
================================  ==========  =======================================
"""

from __future__ import annotations

import math

from .errors import InputError

__all__ = [
    "GIB",
    "MAX_MEMORY_GIB",
    "MAX_DISK_GIB",
    "MAX_SCAN_POINTS",
    "MAX_REGION_POINTS",
    "MAX_SWEEP_CONFIGS",
    "MAX_TABLE_GRID_POINTS",
    "MAX_PROFILE_EVALUATIONS",
    "check_budget",
    "check_memory",
    "check_disk",
    "check_points",
    "format_amount",
    "grid_memory_bytes",
]

GIB = float(1 << 30)

MAX_MEMORY_GIB = 4.0
MAX_DISK_GIB = 20.0
MAX_SCAN_POINTS = 2e9
MAX_REGION_POINTS = 2001 ** 2          # 4.0e6: 2001 points per axis
MAX_SWEEP_CONFIGS = 10_000
MAX_TABLE_GRID_POINTS = 1e7
MAX_PROFILE_EVALUATIONS = 2e8


def format_amount(value: float, unit: str) -> str:
    """``value`` in ``unit`` as a short human string (``12.4 GiB``, ``2.1e+09 points``)."""
    if not math.isfinite(value):
        return f"unbounded {unit}".rstrip()
    if unit in ("GiB", "B", "bytes"):
        gib = value if unit == "GiB" else value / GIB
        if gib >= 1024:
            return f"{gib / 1024:.3g} TiB"
        if gib >= 1:
            return f"{gib:.3g} GiB"
        mib = gib * 1024
        if mib >= 1:
            return f"{mib:.3g} MiB"
        return f"{gib * GIB:.0f} B"
    if abs(value) >= 1e6:
        text = f"{value:.3g}"
    elif float(value).is_integer():
        text = f"{int(value):,}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".rstrip()


def check_budget(what: str, need: float, limit: float, unit: str, option: str) -> None:
    """Raise :class:`InputError` if ``need`` exceeds ``limit``.

    ``what`` names the run ("scan", "region", "table for CsI"), ``need`` and
    ``limit`` are in ``unit`` ("GiB", "points", "configurations", ...; bytes may
    be given as unit "B" and are shown in GiB/MiB), and ``option`` is the API
    keyword that raises the budget.  A non-finite or negative ``need`` is
    refused as well (it means the request itself is absurd).
    """
    need = float(need)
    limit = float(limit)
    kind = {"GiB": "memory", "B": "memory"}.get(unit, "")
    if unit in ("GiB", "B") and option.startswith("max_disk"):
        kind = "disk"
    noun = f"{format_amount(need, unit)} of {kind}" if kind else format_amount(need, unit)
    if not math.isfinite(need) or need < 0:
        raise InputError(
            f"{what} needs an unbounded amount of {kind or unit} (budget {format_amount(limit, unit)}): "
            f"reduce the request")
    if need > limit:
        raise InputError(
            f"{what} needs {noun} (budget {format_amount(limit, unit)}): "
            f"reduce the request or raise it with {option}")


def check_memory(what: str, nbytes: float, max_memory_gib: float | None = None) -> None:
    """Refuse ``nbytes`` of working memory above ``max_memory_gib`` (default 4 GiB)."""
    limit = MAX_MEMORY_GIB if max_memory_gib is None else float(max_memory_gib)
    check_budget(what, float(nbytes) / GIB, limit, "GiB", "max_memory_gib")


def check_disk(what: str, nbytes: float, max_disk_gib: float | None = None) -> None:
    """Refuse ``nbytes`` of output above ``max_disk_gib`` (default 20 GiB)."""
    limit = MAX_DISK_GIB if max_disk_gib is None else float(max_disk_gib)
    check_budget(what, float(nbytes) / GIB, limit, "GiB", "max_disk_gib")


def check_points(what: str, points: float, max_points: float, option: str = "max_points",
                 unit: str = "points") -> None:
    """Refuse a count of grid points (or configurations) above ``max_points``."""
    check_budget(what, float(points), float(max_points), unit, option)


def grid_memory_bytes(points: float, bytes_per_point: float = 8.0, copies: float = 1.0) -> float:
    """Bytes held by ``copies`` arrays of ``points`` float64 values (no overflow: float maths)."""
    return float(points) * float(bytes_per_point) * float(copies)
