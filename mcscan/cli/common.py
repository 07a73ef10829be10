"""What every ``mcscan`` subcommand shares: the parser, argument types, option
groups, output checks and output formatting.

Nothing here computes: a command parses its arguments, makes one call of
:mod:`mcscan.api` and formats the result.  This module imports nothing heavy
at import time (``mcscan --version`` and ``--help`` stay fast).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
from pathlib import Path

from ..errors import InputError, OutputError
from ..params import ALL_PARAMS, PARAMS, SPEC

__all__ = [
    "Parser", "float_arg", "assignment", "param_arg", "points_arg", "cl_arg", "positive_int",
    "seed_arg",
    "gib_arg", "count_arg", "add_common", "add_target_options", "add_output_options",
    "add_budget_options", "add_backend_options", "fixed_from", "ranges_from", "budget_from",
    "tables_for", "check_out", "protected_inputs", "progress", "print_json", "err", "fmt_regions",
    "short_hash", "flagify", "INTERRUPT_HINT", "FIX_ANY", "scaled_unit",
]

#: What to tell the user when a long command is interrupted (set while it runs).
INTERRUPT_HINT = [None]


class Parser(argparse.ArgumentParser):
    """One-line errors; '-1e-8' is a value, not an option."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message):  # one line, no usage dump
        self.exit(2, f"mcscan: error: {message} (see 'mcscan {self.prog.split()[-1]} --help')\n"
                  if " " in self.prog else f"mcscan: error: {message} (see 'mcscan --help')\n")


# ------------------------------------------------------------ argument types

def float_arg(text: str) -> float:
    """A finite number."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} is not finite: expected a finite number")
    return v


def assignment(text: str) -> tuple[str, float]:
    """NAME=VALUE with a known parameter name (any family) and a finite value."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE, e.g. q_mumu=1e-9")
    k, v = text.split("=", 1)
    k = k.strip()
    if k not in SPEC:
        import difflib

        close = difflib.get_close_matches(k, ALL_PARAMS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise argparse.ArgumentTypeError(f"unknown parameter {k!r}: expected one of "
                                         f"{', '.join(ALL_PARAMS)}{hint}")
    return k, float_arg(v.strip())


def param_arg(text: str) -> str:
    """A known parameter name of any family (closest one suggested)."""
    if text not in SPEC:
        import difflib

        close = difflib.get_close_matches(text, ALL_PARAMS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise argparse.ArgumentTypeError(f"unknown parameter {text!r}: expected one of "
                                         f"{', '.join(ALL_PARAMS)}{hint}")
    return text


def points_arg(text: str) -> int:
    """Grid points: a whole number from 3 to 10000001."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 3 <= n <= 10_000_001:
        raise argparse.ArgumentTypeError(f"{n} points: expected 3 to 10000001")
    return n


def cl_arg(text: str) -> float:
    """A confidence level from 1e-6 to 1 - 1e-9."""
    from ..api import CL_MAX, CL_MIN

    v = float_arg(text)
    if not CL_MIN <= v <= CL_MAX:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a confidence level from {CL_MIN:g} to 1 - {1 - CL_MAX:.0e} (e.g. 0.9)")
    return v


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: expected a positive whole number")
    return n


def seed_arg(text: str) -> int:
    """A random seed: a whole number from 0 to 2**63 - 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= n < 2**63:
        raise argparse.ArgumentTypeError(f"{n}: expected a seed from 0 to 2**63 - 1")
    return n


def gib_arg(text: str) -> float:
    """A positive, finite size in GiB."""
    v = float_arg(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive size in GiB")
    return v


def count_arg(text: str) -> float:
    """A positive count, written as 2e9 or 2000000000."""
    v = float_arg(text)
    if not v >= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive count, e.g. 2e9")
    return v


# ------------------------------------------------------------ option groups

def add_common(p, tables=True, config=True) -> None:
    """--config FILE, --tables DIR and -q/--quiet."""
    if config:
        p.add_argument("--config", metavar="FILE",
                       help="user TOML file overriding the built-in ESS configuration")
    if tables:
        p.add_argument("--tables", metavar="DIR", default=None,
                       help="folder of response tables (default: tables/ for the built-in "
                            "configuration, tables/<FILE stem>-<hash>/ for a --config FILE)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bars or progress messages")


#: --fix help of the scans: an unscanned parameter of any family.
FIX_ANY = ("value of an unscanned parameter in its unit, e.g. q_mumu=1e-9 or mu_e=5e-10 "
           "(default 0, sin2w its configured value; once per parameter)")


def add_target_options(p, fix_help="value of an unscanned charge in e, e.g. q_mumu=1e-9 "
                                   "(default 0; once per charge)") -> None:
    """--detector (repeatable, required), --channels and --fix, shared by the analysis commands."""
    p.add_argument("--detector", action="append", metavar="NAME", required=True,
                   help="detector of the configuration (CsI, Xe, Ge); repeat it to combine "
                        "detectors in one chi2")
    p.add_argument("--channels", default="nuclear", metavar="LIST",
                   help="comma-separated detection channels: nuclear or nuclear,electron "
                        "(default nuclear)")
    p.add_argument("--fix", action="append", type=assignment, default=[], metavar="P=VALUE",
                   help=fix_help)


def add_output_options(p, default_help: str, metavar="FILE") -> None:
    """--out FILE and --force."""
    p.add_argument("--out", metavar=metavar, help=default_help)
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing output file (default: refuse)")


def add_budget_options(p, memory=True, disk=True, points=True) -> None:
    """--max-memory-gib, --max-disk-gib, --max-points (API budget keywords)."""
    if memory:
        p.add_argument("--max-memory-gib", type=gib_arg, default=None, metavar="GIB",
                       help="refuse up front a run that needs more memory (default 4)")
    if disk:
        p.add_argument("--max-disk-gib", type=gib_arg, default=None, metavar="GIB",
                       help="refuse up front a run that writes more (default 20)")
    if points:
        p.add_argument("--max-points", type=count_arg, default=None, metavar="N",
                       help="refuse up front a grid of more points (default 2e9 for scans, "
                            "4e6 for regions)")


def add_backend_options(p, what="where chunks run") -> None:
    """``--backend {local,dask,dask-local}``, ``--scheduler ADDRESS``, ``--workers N``."""
    p.add_argument("--backend", choices=("local", "dask", "dask-local"), default="local",
                   help=f"{what}: local (numba, default), dask (a running scheduler, "
                        "see --scheduler) or dask-local (a LocalCluster on this machine)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address for --backend dask, e.g. tcp://10.0.0.1:8786 "
                        "(workers must see the tables folder)")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="worker processes of --backend dask-local (default: one per core)")


# ------------------------------------------------------------ argument checks

def fixed_from(pairs, flag="--fix") -> dict:
    """{charge: value} from repeated P=VALUE options; a charge given twice is refused."""
    out = {}
    for k, v in pairs:
        if k in out:
            raise InputError(f"{flag} {k} given twice ({out[k]:g} and {v:g}): give each charge once")
        out[k] = v
    return out


def ranges_from(ranges, params, flag="--range"):
    """[(lo, hi), ...] checked up front (lo < hi, charges within [-1, 1] e), naming ``flag``."""
    if ranges is None:
        return None
    from ..scans.limits import check_range

    out = []
    for p, (lo, hi) in zip(params, ranges):
        if not lo < hi:
            raise InputError(f"{flag} {lo:g} {hi:g} of {p}: expected LO < HI")
        if p not in PARAMS:          # other families: checked by the API against their bounds
            out.append((lo, hi))
            continue
        try:
            out.append(check_range(p, lo, hi))
        except InputError as exc:
            raise InputError(f"{flag}: {exc}") from None
    return out


def budget_from(args) -> dict:
    """API budget keywords from --max-memory-gib/--max-disk-gib/--max-points (None if absent)."""
    return {k: getattr(args, k) for k in ("max_memory_gib", "max_disk_gib", "max_points")
            if getattr(args, k, None) is not None}


def tables_for(args, cfg) -> Path:
    """--tables, or the default folder of the configuration (see mcscan.api.default_tables_dir)."""
    if getattr(args, "tables", None) is not None:
        if str(args.tables).strip() == "":
            raise InputError("--tables '': expected a folder name")
        if Path(args.tables).exists() and not Path(args.tables).is_dir():
            raise InputError(f"--tables {str(args.tables)!r} is not a folder: expected the folder "
                             "of the response tables")
        return Path(args.tables)
    from ..api import default_tables_dir

    path = getattr(args, "config", None)
    return default_tables_dir(cfg if path is not None else None, path)


def protected_inputs(args, tables=None) -> list:
    """Inputs of a run that no output may replace: the config file and the response tables."""
    out = []
    if getattr(args, "config", None):
        out.append(Path(args.config))
    if tables is not None and Path(tables).is_dir():
        out.extend(sorted(Path(tables).glob("*.h5")))
    return out


def check_out(path, args, *, tables=None, suffixes=(".h5", ".hdf5"), flag="--out") -> Path:
    """Check an output file up front: a name, a writable place, not an input, not existing
    unless --force."""
    from ..errors import McscanError
    from ..io.paths import check_output

    text = str(path)
    if text.strip() == "":
        raise InputError(f"{flag} {text!r}: expected a file name")
    if suffixes and Path(text).suffix.lower() not in suffixes:
        raise InputError(f"{flag} {text!r}: expected a file name ending in {' or '.join(suffixes)}")
    try:
        return check_output(path, force=getattr(args, "force", False),
                            protected=protected_inputs(args, tables))
    except McscanError as exc:
        msg = flagify(str(exc))
        if getattr(args, flag.lstrip("-").replace("-", "_"), None) is not None:
            msg = f"{flag}: {msg}"
        else:      # a default name: say how to choose another
            msg = msg.replace("choose another name", f"choose another with {flag}")
        raise type(exc)(msg) from None


def short_hash(obj) -> str:
    """First 8 hex digits of the SHA-256 of ``obj`` as canonical JSON (for file names)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:8]


#: API keywords -> command-line flags in error messages.
_FLAGS = {
    r"\bpass force=True\b": "add --force",
    r"\bpass force\b": "add --force",
    r"\bforce=True\b": "--force",
    r"\bmax_memory_gib\b": "--max-memory-gib",
    r"\bmax_disk_gib\b": "--max-disk-gib",
    r"\bmax_points\b": "--max-points",
    r"\bchunk_points\b": "--chunk-points",
    r"\bresume=True\b": "--resume",
    r"(?<![\w-])at (q_[a-z]+): not a scanned": r"--at \1: not a scanned",
}


def flagify(message: str) -> str:
    """A library message with its API keywords replaced by the command-line flags."""
    for pat, flag in _FLAGS.items():
        message = re.sub(pat, flag, message)
    return message


# ------------------------------------------------------------ output

def progress(args) -> bool:
    """Progress bars: only on a terminal, and not with --quiet or --json."""
    return not (getattr(args, "quiet", False) or getattr(args, "json", False)) and sys.stderr.isatty()


def print_json(obj) -> None:
    """Print one line of strict JSON (a non-finite number is an error, never printed)."""
    try:
        text = json.dumps(obj, allow_nan=False)
    except ValueError:
        raise OutputError("the result holds a non-finite number; nothing printed") from None
    print(text)


def err(msg: str) -> None:
    """One line on stderr: ``mcscan: <msg>``."""
    print(f"mcscan: {msg}", file=sys.stderr)


def scaled_unit(p: str) -> str:
    """' x <display scale> <unit>' of parameter ``p`` ('x 1e-09 e'), '' for plain numbers."""
    scale, unit = SPEC[p].scale, SPEC[p].unit
    if scale == 1 and unit == "1":
        return ""
    if scale == 1:
        return f" {unit}"
    return f" x {scale:g} {unit}"


def fmt_regions(regions, scale) -> str:
    """Allowed intervals in units of ``scale``: '[-4.016, +4.898] U ...' or '(empty)'."""
    return " U ".join(f"[{lo / scale:+.3f}, {hi / scale:+.3f}]" for lo, hi in regions) or "(empty)"
