"""Where chunks run: in this process (numba) or on a Dask cluster.

A backend maps a pure function ``fn(item, *args)`` over a list of items
(chunk indices, sweep points) and yields ``(item, result)`` **in the order of
the items**, with a progress bar that follows completed work.  Because the
function is pure and its result depends only on its arguments (see
:mod:`mcscan.scans.grid`: a grid point depends only on its row segment), every
backend returns the same bits.

* :class:`LocalBackend` -- a plain loop in this process; the numba kernels use
  every core.  The default; needs nothing beyond mcscan.
* :class:`DaskBackend` -- one task per item on a ``dask.distributed`` cluster
  (an existing scheduler, or a :class:`distributed.LocalCluster` on this
  machine).  Tasks have deterministic keys; at most ``window`` of them are
  submitted or held at a time, so memory stays bounded by ``window`` results;
  results are gathered as they complete and handed out in order.  A worker
  that dies takes its running tasks and stored results with it: the scheduler
  recomputes them elsewhere (Dask's own lineage; a task that kills
  ``distributed.scheduler.allowed-failures`` workers, 3 by default, is given
  up with an error).  Install with the ``dask`` extra.

Response tables travel as :class:`TableRef` (path, configuration hash,
channels): each worker process loads a table once and keeps its coefficients
in a module-level cache (:func:`resolve_coefficients`), so the table folder
must be visible to the workers (the same machine, or a shared file system).
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import InputError, McscanError

__all__ = [
    "BACKENDS",
    "Backend",
    "DaskBackend",
    "LocalBackend",
    "TableRef",
    "family_coefficients_given",
    "make_backend",
    "resolve_coefficients",
]

#: Backend names the command line accepts.
BACKENDS = ("local", "dask", "dask-local")


# ------------------------------------------------------------- tables on workers

@dataclass(frozen=True)
class TableRef:
    """A response table as workers find it: absolute path, configuration hash, channels.

    ``family``: workers collapse it into the quadratic forms of every parameter family
    (:func:`mcscan.stats.families.family_coefficients`) instead of the millicharge
    coefficients."""

    detector: str
    path: str
    config_hash: str
    channels: tuple = ("nuclear",)
    family: bool = False

    @classmethod
    def from_config(cls, config, detector: str, tables_dir, channels=("nuclear",),
                    family: bool = False) -> TableRef:
        """The table ``detector`` of ``config`` in ``tables_dir``, as
        :func:`mcscan.api.load_coefficients` reads it."""
        from ..config.load import config_hash, table_config
        from ..io.tables import table_path

        return cls(detector, str(table_path(tables_dir, detector).resolve()),
                   config_hash(table_config(config, detector)), tuple(channels), bool(family))


#: (path, hash, channels) -> Coefficients, per process (a Dask worker loads a table once).
_CACHE: dict = {}
_LOCK = threading.Lock()
#: Tables this process has loaded for the cache (a check that each is loaded once).
_STATS = {"loads": 0}


def family_coefficients_given(items) -> bool:
    """True when ``items`` are the quadratic forms of the parameter families
    (:class:`mcscan.stats.families.FamilyCoefficients` or TableRefs with ``family``),
    False for millicharge coefficients; a mixture is refused.  Loads nothing."""
    from ..stats.families import FamilyCoefficients

    kinds = {isinstance(it, FamilyCoefficients) or (isinstance(it, TableRef) and it.family)
             for it in items}
    if len(kinds) > 1:
        raise InputError("the detectors mix millicharge coefficients and parameter-family "
                         "coefficients: give one kind for all")
    return kinds == {True}


def resolve_coefficients(items) -> list:
    """Coefficients for each item: a :class:`TableRef` is loaded (once per process,
    checked against its hash), a :class:`mcscan.stats.reference.Coefficients` or
    :class:`mcscan.stats.families.FamilyCoefficients` passes through."""
    from ..stats.families import FamilyCoefficients, family_coefficients
    from ..stats.reference import Coefficients, coefficients
    from ..io.tables import load_table

    out = []
    for it in items:
        if isinstance(it, (Coefficients, FamilyCoefficients)):
            out.append(it)
            continue
        if not isinstance(it, TableRef):
            raise InputError(f"expected Coefficients or TableRef, got {type(it).__name__}")
        key = (it.path, it.config_hash, tuple(it.channels), it.family)
        with _LOCK:
            coef = _CACHE.get(key)
            if coef is None:
                table = load_table(Path(it.path), expected_hash=it.config_hash, channels=it.channels)
                collapse = family_coefficients if it.family else coefficients
                coef = _CACHE[key] = collapse(table, it.channels)
                _STATS["loads"] += 1
        out.append(coef)
    return out


def _clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


# ------------------------------------------------------------------- backends

class Backend:
    """Interface: ``map(fn, items, args=...)`` yields (item, fn(item, *args)) in item order."""

    name = "base"

    def map(self, fn, items, *, args=(), progress=False, desc=None, weights=None, unit="it"):
        raise NotImplementedError

    def describe(self) -> dict:
        return {"backend": self.name}

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LocalBackend(Backend):
    """Items one after the other in this process (numba uses every core)."""

    name = "local"

    def map(self, fn, items, *, args=(), progress=False, desc=None, weights=None, unit="it"):
        items = list(items)
        weights = _weights(items, weights)
        with tqdm(total=sum(weights), desc=desc, unit=unit, unit_scale=True,
                  disable=not progress) as bar:
            for it, w in zip(items, weights):
                res = fn(it, *args)
                bar.update(w)
                yield it, res

    def describe(self) -> dict:
        import numba

        return {"backend": "local", "workers": 1, "numba_threads": numba.get_num_threads()}


def _weights(items, weights):
    if weights is None:
        return [1] * len(items)
    weights = list(weights)
    if len(weights) != len(items):
        raise ValueError("one weight per item")
    return weights


def _call(fn, item, args, numba_threads):
    """Run one item on a worker, with the numba thread count this worker should use."""
    if numba_threads:
        import numba

        numba.set_num_threads(max(1, min(int(numba_threads), numba.config.NUMBA_NUM_THREADS)))
    return fn(item, *args)


class DaskBackend(Backend):
    """Items as tasks on a ``dask.distributed`` cluster.

    Parameters
    ----------
    client : an existing :class:`distributed.Client` (left open by :meth:`close`)
    scheduler : address of a running scheduler (``tcp://host:8786``), when no client
    workers : start a :class:`distributed.LocalCluster` with this many worker
        processes, when neither client nor scheduler is given
    threads_per_worker : Dask threads per worker process of a LocalCluster (1: the
        numba kernels are the parallel part)
    numba_threads : numba threads per task.  Default: for a LocalCluster the cores
        divided among the worker threads; otherwise numba's own default (every core
        of the worker's machine)
    window : most tasks submitted but not yet handed out (default 4 per worker thread,
        at least 8): bounds the memory the results take
    connect_timeout : seconds to wait for the scheduler and for a first worker
    """

    def __init__(self, client=None, *, scheduler=None, workers=None, threads_per_worker=1,
                 numba_threads=None, window=None, connect_timeout=20.0):
        try:
            import distributed
        except ImportError:  # pragma: no cover - the extra is installed in tests
            raise McscanError("the Dask backends need dask.distributed: "
                              "pip install 'mcscan[dask]'") from None
        self._own_client = client is None
        self._cluster = None
        if client is not None:
            self.name = "dask"
            self.client = client
        elif scheduler is not None:
            self.name = "dask"
            try:
                self.client = distributed.Client(scheduler, timeout=connect_timeout)
            except (OSError, TimeoutError, ValueError) as exc:
                raise McscanError(f"cannot connect to the Dask scheduler {scheduler!r}: "
                                  f"{exc}") from None
        else:
            workers = int(workers or os.cpu_count() or 1)
            if workers < 1:
                raise InputError(f"--workers {workers}: expected at least 1")
            self.name = "dask-local"
            # the scheduler's HTTP server (dashboard, health) on a free local port: never
            # the default 8787, which another cluster may hold
            self._cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=int(threads_per_worker), processes=True,
                dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
            self.client = distributed.Client(self._cluster)
            if numba_threads is None:
                numba_threads = max(1, (os.cpu_count() or 1) // (workers * int(threads_per_worker)))
        try:
            self.client.wait_for_workers(1, timeout=connect_timeout)
        except (TimeoutError, OSError):
            self.close()
            raise McscanError(f"no Dask worker joined the scheduler {self.address} within "
                              f"{connect_timeout:g} s") from None
        self.numba_threads = numba_threads
        self.window = window

    @property
    def address(self) -> str:
        return str(self.client.scheduler.address)

    def _threads(self) -> int:
        info = self.client.scheduler_info()
        return max(1, sum(int(w.get("nthreads", 1)) for w in info["workers"].values()))

    def describe(self) -> dict:
        info = self.client.scheduler_info()["workers"]
        return {"backend": self.name, "scheduler": self.address, "workers": len(info),
                "threads": sum(int(w.get("nthreads", 1)) for w in info.values()),
                "numba_threads": self.numba_threads}

    def map(self, fn, items, *, args=(), progress=False, desc=None, weights=None, unit="it"):
        from dask.base import tokenize
        from distributed import as_completed

        items = list(items)
        weights = _weights(items, weights)
        window = int(self.window or max(8, 4 * self._threads()))
        token = tokenize(fn.__module__, fn.__qualname__, args)
        name = f"mcscan-{fn.__name__.strip('_')}-{token}"
        pending = {}                     # position -> future, submitted and not yet handed out
        ready = {}                       # position -> result, out of order
        where = {}                       # key -> position
        ac = as_completed()
        nxt_submit = nxt_yield = 0

        def submit(pos):
            key = f"{name}-{items[pos]}"
            fut = self.client.submit(_call, fn, items[pos], args, self.numba_threads, key=key,
                                     pure=True, priority=len(items) - pos)
            pending[pos] = fut
            where[fut.key] = pos
            ac.add(fut)

        bar = tqdm(total=sum(weights), desc=desc, unit=unit, unit_scale=True, disable=not progress)
        try:
            while nxt_submit < len(items) and nxt_submit < window:
                submit(nxt_submit)
                nxt_submit += 1
            for fut in ac:
                pos = where.pop(fut.key)
                try:
                    ready[pos] = fut.result()
                except _killed_worker() as exc:
                    raise McscanError(f"item {items[pos]} was lost with {exc}: the task kills "
                                      "its workers (out of memory?)") from None
                del pending[pos]
                fut.release()
                bar.update(weights[pos])
                while nxt_yield in ready:
                    yield items[nxt_yield], ready.pop(nxt_yield)
                    nxt_yield += 1
                while nxt_submit < len(items) and nxt_submit - nxt_yield < window:
                    submit(nxt_submit)
                    nxt_submit += 1
        finally:
            bar.close()
            if pending:
                self.client.cancel(list(pending.values()))

    def close(self) -> None:
        if self._own_client:
            try:
                self.client.close()
            finally:
                if self._cluster is not None:
                    self._cluster.close()


def _killed_worker():
    from distributed import KilledWorker

    return KilledWorker


def make_backend(name: str = "local", *, scheduler=None, workers=None, threads_per_worker=1,
                 numba_threads=None) -> Backend:
    """A backend by name: ``local``, ``dask`` (needs ``scheduler``) or ``dask-local``
    (a LocalCluster of ``workers`` processes, default one per core)."""
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}: expected one of {', '.join(BACKENDS)}")
    if name == "dask" and not scheduler:
        raise InputError("--backend dask needs --scheduler ADDRESS (or use --backend dask-local)")
    if name != "dask" and scheduler:
        raise InputError(f"--scheduler is for --backend dask, not {name}")
    if name != "dask-local" and workers is not None:
        raise InputError(f"--workers is for --backend dask-local, not {name}")
    if name == "local":
        return LocalBackend()
    if name == "dask":
        return DaskBackend(scheduler=scheduler, numba_threads=numba_threads)
    return DaskBackend(workers=workers, threads_per_worker=threads_per_worker,
                       numba_threads=numba_threads)
