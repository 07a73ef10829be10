"""Completed chunks of a running scan, so an interrupted scan resumes.

The folder ``<results file>.partial/`` holds ``spec.json`` (what the scan
is; the SHA-256 of its canonical JSON is the scan's identity) and
``chunk_<k>.npz`` per finished chunk.  Every chunk file carries its arrays,
``spec_sha256`` (the scan it belongs to) and ``sha256`` (digest of its
arrays).  Each is written to a temporary name, fsynced and renamed, so a
process killed at any moment leaves only whole chunks.  Nothing here is
HDF5: a half-written HDF5 file can be unreadable, a missing chunk cannot.

A chunk that is unreadable, fails its digest, belongs to another scan
(foreign) or has an unexpected name or index (stray) is reported in one
line (:class:`mcscan.errors.ResultsError`); :meth:`ChunkStore.check`
(used on resume) removes such files so they are recomputed.

:class:`WriteBehind` stores a chunk on a second thread while the next one is
computed; :func:`read_ahead` reads the next chunk on one while the current one is
used.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import InputError, McscanError, ResultsError
from .h5 import _pid_alive, feed, fsync_path, output_error

__all__ = ["ChunkStore", "MemoryStore", "WriteBehind", "read_ahead", "spec_digest", "arrays_digest"]

_CHUNK = re.compile(r"^chunk_(\d{8})\.npz$")
_TMP = re.compile(r"^\.chunk_\d{8}\.(\d+)\.[^.]+\.npz$")
_META = ("spec_sha256", "sha256")


def spec_digest(spec: dict) -> str:
    """SHA-256 of the canonical JSON of a scan spec."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def arrays_digest(arrays: dict) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of ``arrays`` (sorted by name)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode() + b"\0" + a.dtype.str.encode() + str(a.shape).encode())
        feed(h, a)
    return h.hexdigest()


class MemoryStore:
    """Chunks of an in-memory scan (same face as :class:`ChunkStore`)."""

    folder = None

    def __init__(self):
        self._chunks = {}

    def done(self) -> set:
        return set(self._chunks)

    def write(self, k: int, arrays: dict) -> None:
        self._chunks[k] = arrays

    def read(self, k: int) -> dict:
        return self._chunks[k]

    def remove(self) -> None:
        self._chunks.clear()


class ChunkStore:
    """Chunks of a scan streamed to a file, in ``folder`` (see the module docstring).

    Parameters
    ----------
    spec : what the scan is (JSON-serialisable); a stored scan with another spec
        is refused
    resume : continue a stored scan; without it a stored scan is refused
    n_chunks : number of chunks of the scan (indices 0 .. n_chunks-1)
    names : array names every chunk holds
    """

    def __init__(self, folder, spec: dict, *, resume: bool, n_chunks: int, names=()):
        self.folder = Path(folder)
        self.spec = json.loads(json.dumps(spec, sort_keys=True))
        self.sha = spec_digest(self.spec)
        self.n_chunks = int(n_chunks)
        self.names = set(names)
        spec_file = self.folder / "spec.json"
        if self.folder.exists():
            if not resume:
                raise InputError(
                    f"an interrupted scan is stored in {str(self.folder)!r}: finish it with the same "
                    "request and resume=True, or delete that folder to start again")
            if not self.folder.is_dir():
                raise InputError(f"{str(self.folder)!r} is not a folder: delete it and run the scan again")
            try:
                have = json.loads(spec_file.read_text())
            except (OSError, ValueError):
                raise ResultsError(f"{str(spec_file)!r} is missing or unreadable: delete "
                                   f"{str(self.folder)!r} and run the scan again") from None
            if have != self.spec:
                diff = sorted(k for k in set(have) | set(self.spec) if have.get(k) != self.spec.get(k))
                raise InputError(
                    f"the stored scan in {str(self.folder)!r} differs from this request in "
                    f"{', '.join(diff)}: repeat the original request, or delete the folder")
        else:
            try:
                self.folder.mkdir(parents=True)
                _atomic_bytes(spec_file, json.dumps(self.spec, sort_keys=True, indent=1).encode())
            except OSError as exc:
                raise output_error(self.folder, exc, "cannot create") from None

    def _path(self, k: int) -> Path:
        return self.folder / f"chunk_{k:08d}.npz"

    def done(self) -> set:
        """Indices of the chunk files present (not verified; see :meth:`check`)."""
        out = set()
        for p in self.folder.iterdir():
            m = _CHUNK.match(p.name)
            if m and int(m.group(1)) < self.n_chunks:
                out.add(int(m.group(1)))
        return out

    def check(self) -> tuple:
        """Verify every stored file; remove corrupt, foreign and stray chunks and stale
        temporaries.  Returns (indices of the good chunks, one line per removed chunk)."""
        good, notes = set(), []
        for p in sorted(self.folder.iterdir()):
            if p.name == "spec.json":
                continue
            tmp = _TMP.match(p.name)
            if tmp:
                if not _pid_alive(int(tmp.group(1))):
                    _remove(p)
                continue
            m = _CHUNK.match(p.name)
            if not m or int(m.group(1)) >= self.n_chunks:
                notes.append(f"stray file {str(p)!r} (not a chunk of this scan) removed")
                _remove(p)
                continue
            k = int(m.group(1))
            try:
                self.read(k)
            except ResultsError as exc:
                notes.append(f"{str(exc).split(': resume=True')[0]}: removed and recomputed")
                _remove(p)
                continue
            good.add(k)
        return good, notes

    def write(self, k: int, arrays: dict) -> None:
        """Store chunk ``k`` atomically, with the scan's identity and its digest."""
        out = {name: np.asarray(a) for name, a in arrays.items()}
        out["spec_sha256"] = np.array(self.sha)
        out["sha256"] = np.array(arrays_digest({n: v for n, v in out.items() if n not in _META}))
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".chunk_{k:08d}.{os.getpid()}.", suffix=".npz",
                                       dir=self.folder)
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **out)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path(k))
        except McscanError:
            _remove(tmp)
            raise
        except OSError as exc:
            _remove(tmp)
            raise output_error(self._path(k), exc) from None
        except BaseException:
            _remove(tmp)
            raise

    def read(self, k: int) -> dict:
        """Chunk ``k``, verified (ResultsError naming the file if it is not whole and ours)."""
        p = self._path(k)
        try:
            with np.load(p, allow_pickle=False) as z:
                data = {name: z[name] for name in z.files}
        except FileNotFoundError:
            raise ResultsError(f"stored chunk {str(p)!r} is missing: resume=True recomputes it") from None
        except Exception as exc:         # a damaged zip raises many kinds of errors
            raise ResultsError(f"stored chunk {str(p)!r} is unreadable ({type(exc).__name__}): "
                               "resume=True recomputes it") from None
        if "spec_sha256" not in data or "sha256" not in data:
            raise ResultsError(f"stored chunk {str(p)!r} carries no scan identity: resume=True recomputes it")
        if str(data.pop("spec_sha256")) != self.sha:
            raise ResultsError(f"stored chunk {str(p)!r} belongs to another scan: resume=True recomputes it")
        want = str(data.pop("sha256"))
        if arrays_digest(data) != want:
            raise ResultsError(f"stored chunk {str(p)!r} does not match its digest (corrupt): "
                               "resume=True recomputes it")
        if self.names and set(data) != self.names:
            raise ResultsError(f"stored chunk {str(p)!r} holds {', '.join(sorted(data))}, expected "
                               f"{', '.join(sorted(self.names))}: resume=True recomputes it")
        return data

    def remove(self) -> None:
        """Delete the folder (after the results file is in place and verified)."""
        for p in self.folder.iterdir():
            _remove(p)
        try:
            self.folder.rmdir()
        except OSError:
            pass


class WriteBehind:
    """``write(k, arrays)`` of a :class:`ChunkStore` on a thread of its own, while the
    caller computes the next chunk: the digest, the zip checksums, the copy to the
    operating system and the fsync of chunk k overlap the kernel of chunk k + 1 (most
    of that work releases the GIL).  One chunk is written at a time: ``write`` first
    waits for the previous one and raises its error (an OutputError, or the
    KeyboardInterrupt of a Ctrl-C that arrived in it), so a failure is reported one
    chunk later than without this, and the same chunks are stored.  Leaving the ``with``
    block waits for the last write; if the block is left by an exception, that one is
    raised and a second failure of the last write is dropped.  The pool's thread is
    joined when the interpreter exits: a write in flight finishes.  A store in memory is
    written at once (``folder`` None: nothing to overlap)."""

    def __init__(self, store):
        self.store = store
        self._pool = None
        self._pending = None

    def _wait(self):
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def write(self, k: int, arrays: dict) -> None:
        self._wait()
        if self.store.folder is None:
            self.store.write(k, arrays)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="mcscan-chunk-writer")
        self._pending = self._pool.submit(self.store.write, k, arrays)

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        try:
            self._wait()
        except BaseException:
            if kind is None:
                raise
            # the first error is the one to report
        finally:
            if self._pool is not None:
                self._pool.shutdown()
        return False


def read_ahead(store, ks):
    """``(k, store.read(k))`` for each k of ``ks``, the next chunk read (and verified) on a
    second thread while the caller uses the current one; nothing is read after a failed
    read, and leaving early waits for the read in flight."""
    ks = list(ks)
    if not ks:
        return
    with ThreadPoolExecutor(1, thread_name_prefix="mcscan-chunk-reader") as pool:
        pending = pool.submit(store.read, ks[0])
        for i, k in enumerate(ks):
            c = pending.result()
            if i + 1 < len(ks):
                pending = pool.submit(store.read, ks[i + 1])
            yield k, c


def _remove(p) -> None:
    if p is None:
        return
    try:
        os.unlink(p)
    except OSError:
        pass


def _atomic_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_path(path.parent, directory=True)
    except BaseException:
        _remove(tmp)
        raise
