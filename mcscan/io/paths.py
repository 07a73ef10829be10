"""Checks of input and output files, made before any work starts.

:func:`check_output` refuses, in one line, an output target that cannot or
must not be written (empty name, a folder, an unwritable place, a name too
long, an input of the run, an existing file unless ``force``), and removes
temporary files that killed runs left beside it.  :func:`check_input_file`
refuses an input that is missing or not a regular file.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import InputError, OutputError
from .h5 import remove_stale_temporaries

__all__ = ["check_output", "check_input_file", "NAME_MARGIN"]

#: Bytes a file name needs beyond its own for its temporary and chunk-folder names.
NAME_MARGIN = 40


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _short(p: Path) -> str:
    text = str(p)
    return repr(text if len(text) <= 60 else text[:28] + "..." + text[-28:])


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except OSError:             # a name too long, a component that is a file, ...
        return False


def _existing_ancestor(p: Path) -> Path:
    q = p
    while not _exists(q):
        if q.parent == q:
            break
        q = q.parent
    return q


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.abspath(a) == os.path.abspath(b)


def check_output(path, *, force: bool = False, protected=()) -> Path:
    """Check that ``path`` can be written as an output file; returns it as a Path.

    Raises
    ------
    InputError
        empty name, a folder, an input of the run (``protected``: config file,
        tables, ...), not a regular file, or an existing file without ``force``
    OutputError
        a parent that is a file, a folder without write permission, a name
        longer than the file system allows (with room for the temporary name)
    """
    if path is None or not str(path).strip():
        raise InputError("output file name is empty: expected a file path")
    p = Path(path)
    base = _existing_ancestor(p.parent if str(p.parent) else Path("."))
    limit = _name_max(base if base.is_dir() else Path("."))
    nbytes = len(p.name.encode())
    if nbytes + NAME_MARGIN > limit:
        raise OutputError(f"cannot write {_short(p)}: file name too long ({nbytes} bytes, at most "
                          f"{limit - NAME_MARGIN} here)")
    for part in p.parent.parts:
        if len(part.encode()) > limit:
            raise OutputError(f"cannot write {_short(p)}: folder name {part[:20]!r}... too long "
                              f"({len(part.encode())} bytes, at most {limit})")
    if str(path).endswith(os.sep) or p.is_dir():
        raise InputError(f"output {str(p)!r} is a folder: expected a file name")
    for q in protected:
        if q is not None and str(q) and _same(p, Path(q)):
            raise InputError(f"output {str(p)!r} is an input of this run: choose another file name")
    if not base.is_dir():
        raise OutputError(f"cannot write {str(p)!r}: {str(base)!r} is not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {str(p)!r}: folder {str(base)!r} is not writable")
    if p.exists() or p.is_symlink():
        try:
            mode = p.stat().st_mode
        except OSError:
            mode = 0
        if not stat.S_ISREG(mode):
            raise InputError(f"output {str(p)!r} exists and is not a regular file: choose another name")
        if not force:
            raise InputError(f"output file {str(p)!r} exists: choose another name or pass force "
                             "to overwrite it")
    if p.parent.is_dir():
        remove_stale_temporaries(p)
    return p


def check_input_file(path, what: str = "input file") -> Path:
    """Check that ``path`` is an existing, readable regular file; returns it as a Path."""
    if path is None or not str(path).strip():
        raise InputError(f"{what}: empty file name")
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{what} {str(p)!r} not found") from None
    except OSError as exc:
        raise InputError(f"{what} {str(p)!r} is not accessible: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{what} {str(p)!r} is a folder: expected a file")
    if stat.S_ISFIFO(mode):
        raise InputError(f"{what} {str(p)!r} is a FIFO: expected a regular file")
    if not stat.S_ISREG(mode):
        raise InputError(f"{what} {str(p)!r} is not a regular file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{what} {str(p)!r} is not readable (permission denied)")
    return p
