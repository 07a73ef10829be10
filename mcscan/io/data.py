"""Observed counts: the CSV data file (read, check against the tables, write).

Format (docs/statistics.md section 1): UTF-8 text, one header line

    detector,bin_low,bin_high,counts

then one line per reconstructed-energy bin: the detector name, the bin edges
in keV (the tables' unit, ``Coefficients.edges_kev``) and the counts, a
non-negative integer or a non-negative real (Asimov-like data).  Blank lines
and lines starting with ``#`` are ignored; rows may come in any order.
Every bin of a detector must appear exactly once and the edges must match
the table's bins (to :data:`EDGE_RTOL` of the bin width: decimal text with
10 significant digits is enough).  Anything else is refused with one
:class:`~mcscan.errors.InputError` line naming the row and the value.
"""
from __future__ import annotations

import csv
import io
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError

__all__ = ["HEADER", "EDGE_RTOL", "read_counts", "check_bins", "write_counts"]

#: The header line, column by column.
HEADER = ("detector", "bin_low", "bin_high", "counts")
#: Bin edges match when they differ by at most this fraction of the bin width.
EDGE_RTOL = 1e-9

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _number(text: str, where: str, what: str, *, counts: bool = False) -> float:
    s = text.strip()
    if not _NUMBER.match(s):
        expected = "a non-negative number of counts" if counts else "a number in keV"
        raise InputError(f"{where}: {what} {text!r} is not a number: expected {expected}")
    v = float(s)
    if not math.isfinite(v):
        raise InputError(f"{where}: {what} {text!r} is out of range: expected a finite number")
    if counts and v < 0:
        raise InputError(f"{where}: counts {text!r} are negative: expected a non-negative number")
    return v


def read_counts(path, edges=None) -> dict:
    """Read a data file.

    Parameters
    ----------
    path : the CSV file
    edges : optional {detector: (nbins + 1,) edges in keV}; every detector
        named here must be in the file with exactly these bins (other
        detectors in the file are ignored)

    Returns
    -------
    {detector: counts (nbins,) float array} in bin order; with ``edges`` only
    its detectors, else every detector of the file (bins sorted by bin_low).
    """
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise InputError(f"data file {name!r} does not exist")
    if path.is_dir():
        raise InputError(f"data file {name!r} is a directory: expected a CSV file")
    if not path.is_file():
        raise InputError(f"data file {name!r} is not a regular file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"data file {name!r} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"data file {name!r} cannot be read: {exc.strerror}") from None
    rows = {}
    header_seen = False
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        where = f"{name} line {lineno}"
        cells = [c.strip() for c in row]
        if not header_seen:
            if tuple(c.lower() for c in cells) != HEADER:
                raise InputError(f"{where}: header {','.join(cells)!r}: expected {','.join(HEADER)!r}")
            header_seen = True
            continue
        if len(cells) != len(HEADER):
            raise InputError(f"{where}: {len(cells)} columns: expected {len(HEADER)} "
                             f"({','.join(HEADER)})")
        det = cells[0]
        if not det:
            raise InputError(f"{where}: empty detector name")
        lo = _number(cells[1], where, "bin_low")
        hi = _number(cells[2], where, "bin_high")
        if not hi > lo:
            raise InputError(f"{where}: bin [{cells[1]}, {cells[2]}] keV: expected bin_low < bin_high")
        n = _number(cells[3], where, "counts", counts=True)
        rows.setdefault(det, []).append((lo, hi, n, lineno))
    if not header_seen:
        raise InputError(f"data file {name!r} is empty: expected the header {','.join(HEADER)!r} "
                         "and one line per bin")
    if not rows:
        raise InputError(f"data file {name!r} has a header but no bins")
    out = {}
    wanted = rows if edges is None else edges
    for det in wanted:
        if det not in rows:
            raise InputError(f"data file {name!r} has no counts for detector {det} "
                             f"(it has {', '.join(sorted(rows))})")
        got = sorted(rows[det])
        for (lo1, hi1, _, l1), (lo2, hi2, _, l2) in zip(got, got[1:]):
            if lo2 < hi1 - EDGE_RTOL * (hi1 - lo1):
                raise InputError(f"{name} lines {min(l1, l2)} and {max(l1, l2)}: {det} bins "
                                 f"[{lo1:g}, {hi1:g}] and [{lo2:g}, {hi2:g}] keV overlap")
        lows = np.array([r[0] for r in got])
        highs = np.array([r[1] for r in got])
        if edges is not None:
            check_bins(det, lows, highs, edges[det], where=f"{name} line", lines=[r[3] for r in got])
        out[det] = np.array([r[2] for r in got])
    return out


def check_bins(detector, lows, highs, edges, *, where="data", lines=None) -> None:
    """InputError naming the first bin of ``lows``/``highs`` that differs from ``edges``."""
    edges = np.asarray(edges, dtype=float)
    want_lo, want_hi = edges[:-1], edges[1:]
    tol = EDGE_RTOL * (want_hi - want_lo)
    for k in range(max(len(lows), want_lo.size)):
        line = f"{where} {lines[k]}" if lines is not None and k < len(lines) else where
        if k >= want_lo.size:
            raise InputError(f"{line}: {detector} bin [{lows[k]:g}, {highs[k]:g}] keV is beyond the "
                             f"table's last bin [{want_lo[-1]:g}, {want_hi[-1]:g}] keV")
        if k >= len(lows):
            raise InputError(f"{where}: {detector} has no counts for the table's bin {k} "
                             f"[{want_lo[k]:g}, {want_hi[k]:g}] keV ({len(lows)} bins given, "
                             f"the table has {want_lo.size})")
        if abs(lows[k] - want_lo[k]) > tol[k] or abs(highs[k] - want_hi[k]) > tol[k]:
            raise InputError(f"{line}: {detector} bin [{lows[k]:g}, {highs[k]:g}] keV does not match "
                             f"the table's bin {k} [{want_lo[k]:g}, {want_hi[k]:g}] keV")


def _fmt(v: float) -> str:
    v = float(v)
    if v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    return repr(v)


def write_counts(path, counts: dict, *, force: bool = False) -> Path:
    """Write {detector: (edges (nbins + 1,) keV, counts (nbins,))} as a data file.

    Edges and counts are written with 17 significant digits (integers as
    integers), so :func:`read_counts` gives back the same numbers.  The file
    is written atomically; an existing file is refused unless ``force``.
    """
    path = Path(path)
    if not str(path) or path.name in ("", ".", ".."):
        raise InputError(f"output name {str(path)!r}: expected a file name")
    if path.is_dir():
        raise InputError(f"output {str(path)!r} is a directory: expected a file name")
    if path.exists() and not force:
        raise InputError(f"output {str(path)!r} exists: choose another name or overwrite it (force)")
    lines = [",".join(HEADER)]
    for det, (edges, n) in counts.items():
        edges = np.asarray(edges, dtype=float)
        n = np.asarray(n, dtype=float)
        if edges.ndim != 1 or n.shape != (edges.size - 1,):
            raise InputError(f"{det}: {n.size} counts for {edges.size - 1} bins")
        if not (np.all(np.isfinite(n)) and np.all(n >= 0)):
            raise InputError(f"{det}: counts must be finite and non-negative")
        for k in range(n.size):
            lines.append(f"{det},{_fmt(edges[k])},{_fmt(edges[k + 1])},{_fmt(n[k])}")
    data = ("\n".join(lines) + "\n").encode()
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write {str(path)!r}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if Path(tmp).read_bytes() != data:
            raise OutputError(f"cannot write {str(path)!r}: the written file does not read back")
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write {str(path)!r}: {exc.strerror}") from None
    return path
