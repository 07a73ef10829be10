"""Small HDF5 helpers shared by table and results files (h5py is used only in mcscan.io).

* :func:`atomic_h5`: a file written to a temporary name beside its target,
  closed, optionally verified, fsynced and renamed into place; any failure
  removes the temporary file and leaves the target untouched.  Write errors
  (disk full, read-only folder, name too long, an error while h5py closes the
  file) become one-line :class:`mcscan.errors.OutputError`.
* Native attributes (:func:`set_attr`, :func:`get_attr`, :func:`write_tree`,
  :func:`read_tree`): strings, numbers, booleans, arrays of numbers and of
  UTF-8 strings; dictionaries become groups.  No JSON text in attributes.
* :func:`digest`: SHA-256 over every attribute and dataset of a file,
  streamed in bounded memory.
* :class:`LazyArray`: a dataset read on access (the file is opened and closed
  per read, so no HDF5 object outlives the call).
"""
from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import math
import os
import queue
import re
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
from h5py import h5a, h5d, h5o, h5s, h5t

from ..errors import McscanError, OutputError

__all__ = ["atomic_h5", "digest", "feed", "set_attr", "get_attr", "write_tree", "read_tree", "dataset",
           "set_strs", "LazyArray", "now", "remove_stale_temporaries", "STR", "output_error", "flat_boxes"]

#: h5py dtype of UTF-8 strings.
STR = h5py.string_dtype("utf-8")
#: Values per read when a dataset is streamed.
_BLOCK = 1 << 20
#: Blocks read ahead of the one being hashed (:class:`_Feeder`): at most this many
#: plus two blocks of a dataset are held at once.
_READ_AHEAD = 2


def now() -> str:
    """UTC time, ISO 8601, seconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def output_error(path, exc: BaseException, doing: str = "cannot write") -> OutputError:
    """One-line OutputError for an OSError (or h5py error) while writing ``path``."""
    reason = getattr(exc, "strerror", None)
    if not reason:
        text = str(exc)
        for code, name in ((errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system"),
                           (errno.EACCES, "Permission denied"), (errno.ENAMETOOLONG, "File name too long"),
                           (errno.EDQUOT, "Disk quota exceeded")):
            if name.lower() in text.lower() or f"errno = {code}" in text:
                reason = name
                break
        else:
            reason = text.splitlines()[0] if text else type(exc).__name__
    return OutputError(f"{doing} {str(path)!r}: {reason}")


# ------------------------------------------------------------ temporary files

_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path) -> list:
    """Remove ``.<name>.<pid>.<random>.tmp`` files beside ``path`` left by dead processes."""
    path = Path(path)
    removed = []
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TMP.match(p.name)
        if m and m.group("name") == path.name and not _pid_alive(int(m.group("pid"))):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def temporary_beside(path) -> str:
    """Create an empty temporary file ``.<name>.<pid>.<random>.tmp`` beside ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return tmp


def _unlink_quietly(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def fsync_path(path, directory: bool = False) -> None:
    fd = os.open(path, (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) if directory else os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if not directory or exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _close(f) -> None:
    """Close an h5py file (one place, so failures while closing can be tested)."""
    f.close()


@contextmanager
def atomic_h5(path: str | Path, *, verify=None, error=OutputError):
    """Open a temporary HDF5 file beside ``path``; on success close it, run
    ``verify(tmp_path)`` (if given), fsync and rename it into place.

    On any exception (including KeyboardInterrupt) the temporary file is
    removed and ``path`` is left untouched.  OSErrors (h5py's included) while
    creating, writing, closing, verifying or renaming become one-line
    :class:`mcscan.errors.OutputError`; other exceptions pass through.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(path.parent, exc, "cannot create folder") from None
    remove_stale_temporaries(path)
    try:
        tmp = temporary_beside(path)
    except OSError as exc:
        raise output_error(path, exc) from None
    f = None
    try:
        try:
            # libver="latest": the file's internal headers carry checksums too
            f = h5py.File(tmp, "w", libver="latest")
        except OSError as exc:
            raise output_error(path, exc) from None
        try:
            yield f
        except BaseException:
            try:
                _close(f)
            except Exception:                # the first error is the one to report
                pass
            raise
        try:
            _close(f)
        except McscanError:
            raise
        except Exception as exc:             # an error while freeing: the file is not whole
            raise output_error(path, exc) from None
        if verify is not None:
            verify(tmp)
        fsync_path(tmp)
        os.replace(tmp, path)
        try:
            fsync_path(path.parent, directory=True)
        except OSError:
            pass
    except McscanError:
        _unlink_quietly(tmp)
        raise
    except OSError as exc:
        _unlink_quietly(tmp)
        raise output_error(path, exc) from None
    except BaseException:
        _unlink_quietly(tmp)
        raise


# ------------------------------------------------------------ attributes

def _is_str_list(v) -> bool:
    return all(isinstance(x, str) for x in v)


def set_attr(obj, name: str, value) -> None:
    """Store ``value`` as a native HDF5 attribute (see the module docstring)."""
    if isinstance(value, (bool, np.bool_)):
        obj.attrs[name] = np.bool_(value)
    elif isinstance(value, (int, np.integer)):
        obj.attrs[name] = np.int64(value)
    elif isinstance(value, (float, np.floating)):
        obj.attrs[name] = np.float64(value)
    elif isinstance(value, str):
        obj.attrs[name] = value
    elif isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        obj.attrs[name] = value
    elif isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        if items and _is_str_list(items):
            obj.attrs.create(name, np.array(items, dtype=object), dtype=STR)
        elif not items:
            obj.attrs[name] = np.zeros(0)
        else:
            arr = np.asarray(items)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"attribute {name}: cannot store {value!r} natively")
            obj.attrs[name] = arr
    else:
        raise TypeError(f"attribute {name}: cannot store {type(value).__name__} natively")


def set_strs(obj, name: str, items) -> None:
    """A list of names as a native array of UTF-8 strings (also when empty)."""
    obj.attrs.create(name, np.array([str(x) for x in items], dtype=object).reshape(-1), dtype=STR)


def _plain(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "OSU":
            return [x.decode() if isinstance(x, bytes) else str(x) for x in v.ravel()]
        return v.tolist()
    return v


def get_attr(obj, name: str, default=None):
    """An attribute as plain Python (str, bool, int, float, list)."""
    if name not in obj.attrs:
        return default
    return _plain(obj.attrs[name])


def write_tree(group, mapping: dict) -> None:
    """A nested dict as groups (dicts) and native attributes (everything else)."""
    for k, v in mapping.items():
        if isinstance(v, dict):
            write_tree(group.require_group(str(k)), v)
        elif v is not None:
            set_attr(group, str(k), v)


def read_tree(group) -> dict:
    out = {k: get_attr(group, k) for k in group.attrs}
    for k, v in group.items():
        if isinstance(v, h5py.Group):
            out[k] = read_tree(v)
    return out


def dataset(group, name, data, units: str):
    """A whole dataset with its ``units`` (checksummed when not empty and numeric)."""
    data = np.asarray(data)
    if data.dtype.kind in "OU" or (data.dtype.kind == "S"):
        ds = group.create_dataset(name, data=np.array([str(x) for x in data.ravel()], dtype=object)
                                  .reshape(data.shape), dtype=STR)
    else:
        ds = group.create_dataset(name, data=data, fletcher32=data.size > 0,
                                  chunks=True if data.size > 0 else None)
    ds.attrs["units"] = units
    return ds


# ------------------------------------------------------------ digests

def feed(h, a) -> None:
    """``h.update`` with the bytes of the array ``a`` in C order (``a.tobytes()``), read
    straight from a contiguous array instead of from a copy of it: the copy took as long
    as SHA-256 itself (a 48 MB array: 55 ms with it, 27 ms without)."""
    a = np.ascontiguousarray(a)
    try:
        h.update(a)
    except (BufferError, TypeError, ValueError):    # a dtype without a plain buffer
        h.update(a.tobytes())


def _canon(h, v) -> None:
    if isinstance(v, (bytes, np.bytes_)):
        v = bytes(v).decode()
    if isinstance(v, str):
        b = v.encode()
        h.update(b"s%d:" % len(b))
        h.update(b)
        return
    a = np.asarray(v)
    if a.dtype.kind in "OSU":
        h.update(b"a" + str(a.shape).encode())
        for x in a.ravel():
            b = (x.decode() if isinstance(x, bytes) else str(x)).encode()
            h.update(b"%d:" % len(b))
            h.update(b)
        return
    h.update(b"n" + a.dtype.str.encode() + str(a.shape).encode())
    feed(h, a)


def flat_boxes(lo: int, hi: int, shape: tuple):
    """Hyperslabs covering the flat C-order range [lo, hi) of ``shape``:
    yields (index tuple, flat lo, flat hi), at most 2 per dimension."""
    if lo >= hi:
        return
    if len(shape) == 1:
        yield (slice(lo, hi),), lo, hi
        return
    inner = math.prod(shape[1:])
    a, ra = divmod(lo, inner)
    b, rb = divmod(hi, inner)
    if a == b:
        for sl, f0, f1 in flat_boxes(ra, rb, shape[1:]):
            yield (a,) + sl, a * inner + f0, a * inner + f1
        return
    if ra:
        for sl, f0, f1 in flat_boxes(ra, inner, shape[1:]):
            yield (a,) + sl, a * inner + f0, a * inner + f1
        a += 1
    if b > a:
        yield (slice(a, b),) + (slice(None),) * (len(shape) - 1), a * inner, b * inner
    if rb:
        for sl, f0, f1 in flat_boxes(0, rb, shape[1:]):
            yield (b,) + sl, b * inner + f0, b * inner + f1


def _hash_dataset(h, ds) -> None:
    dtype, shape = ds.dtype, ds.shape
    h.update(b"d" + dtype.str.encode() + str(shape).encode())
    if dtype.kind == "O" or h5py.check_string_dtype(dtype) is not None:
        _canon(h, ds[()])
        return
    n = math.prod(shape)
    if n == 0:
        return
    if not shape or n <= _BLOCK:
        if dtype.kind in "biuf" and dtype.subdtype is None:
            # plain numbers: one low-level read of the whole dataset (the bytes of ds[()])
            arr = np.empty(shape, dtype=dtype)
            ds.id.read(h5s.ALL, h5s.ALL, arr)
        else:
            arr = ds[()]
        feed(h, arr)
        return
    with _Feeder(h) as put:
        for lo in range(0, n, _BLOCK):
            for index, _, _ in flat_boxes(lo, min(n, lo + _BLOCK), shape):
                put(ds[index])


class _Feeder:
    """:func:`feed` on a thread of its own, block after block in call order, while the
    caller reads the next blocks.  hashlib releases the GIL while it hashes a block,
    so the reads of a big dataset and its SHA-256 overlap: the digest of the 2.5 GB file
    of a 10001 x 10001 scan took 1.6 s instead of 2.85 s, about the time of the reads.  The
    caller waits when :data:`_READ_AHEAD` blocks are queued; leaving the ``with`` block
    waits for the last one (and raises what the thread raised).  The digest is the same
    as with ``feed`` called in turn."""

    def __init__(self, h):
        self._h = h
        self._q = queue.Queue(maxsize=_READ_AHEAD)
        self._error = None
        self._thread = threading.Thread(target=self._run, name="mcscan-digest", daemon=True)

    def _run(self):
        while True:
            a = self._q.get()
            if a is None:
                return
            if self._error is None:          # after an error, drain: the caller never blocks
                try:
                    feed(self._h, a)
                except BaseException as exc:
                    self._error = exc

    def __enter__(self):
        self._thread.start()
        return self._q.put

    def __exit__(self, kind, exc, tb):
        self._q.put(None)
        self._thread.join()
        if kind is None and self._error is not None:
            raise self._error
        return False


def _attr_names(oid) -> list:
    """Names of the attributes of a low-level object, sorted (as ``sorted(obj.attrs)``)."""
    names = []
    h5a.iterate(oid, lambda name, *_: names.append(name.decode("utf-8", "surrogateescape")))
    return sorted(names)


def _attr_value(oid, name: str):
    """An attribute read as ``obj.attrs[name]`` reads it (h5py's AttributeManager
    step for step), without its per-call wrappers: the digest reads every attribute."""
    attr = h5a.open(oid, name.encode("utf-8", "surrogateescape"))
    shape = attr.shape
    if shape is None:                   # empty dataspace
        return h5py.Empty(attr.dtype)
    dtype = attr.dtype
    htype = h5t.py_create(dtype)
    if dtype.subdtype is not None:
        dtype, subshape = dtype.subdtype[0], dtype.subdtype[1]
        shape = attr.shape + subshape
    arr = np.zeros(shape, dtype=dtype, order="C")
    attr.read(arr, mtype=htype)
    info = h5t.check_string_dtype(dtype)
    if info and info.length is None:    # variable-length strings: bytes -> str
        arr = np.array([b.decode("utf-8", "surrogateescape") for b in arr.flat],
                       dtype=dtype).reshape(arr.shape)
    return arr[()] if arr.ndim == 0 else arr


def digest(f) -> str:
    """SHA-256 over every path, attribute (the root ``digest`` excepted) and dataset of ``f``.

    Objects and attributes are read through h5py's low-level interface (the
    same values as ``f[name].attrs[k]``, a fraction of the cost: a results file
    holds hundreds of attributes and is digested twice per write)."""
    h = hashlib.sha256()
    names = []
    f.visit(names.append)
    root = f.id
    for name in [""] + sorted(names):
        oid = h5o.open(root, name.encode()) if name else root
        h.update(b"p" + name.encode() + b"\0")
        for k in _attr_names(oid):
            if name == "" and k == "digest":
                continue
            h.update(b"k" + k.encode() + b"\0")
            _canon(h, _attr_value(oid, k))
        if isinstance(oid, h5d.DatasetID):
            _hash_dataset(h, h5py.Dataset(oid))
    return h.hexdigest()


# ------------------------------------------------------------ lazy datasets

class LazyArray:
    """A dataset of a results file, read on access.

    ``x[index]`` reads only that part; ``numpy.asarray(x)`` reads it whole.
    The file is opened and closed for every read.
    """

    def __init__(self, path, name: str, shape: tuple, dtype):
        self.path, self.name = str(path), name
        self.shape, self.dtype = tuple(int(s) for s in shape), np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LazyArray({self.path!r}, {self.name!r}, shape={self.shape}, dtype={self.dtype})"

    def _read(self, index):
        from ..errors import ResultsError

        try:
            f = h5py.File(self.path, "r")
        except OSError as exc:
            raise ResultsError(f"results file {self.path!r} is not readable: "
                               f"{getattr(exc, 'strerror', None) or exc}") from None
        try:
            return f[self.name][index]
        except (OSError, KeyError) as exc:
            raise ResultsError(f"results file {self.path!r}: dataset {self.name} is unreadable "
                               f"({type(exc).__name__})") from None
        finally:
            f.close()

    def __getitem__(self, index):
        return self._read(index)

    def __array__(self, dtype=None, copy=None):
        a = self._read(())
        return a if dtype is None else a.astype(dtype)
