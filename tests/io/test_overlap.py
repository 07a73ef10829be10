"""A streamed scan stores chunk k while chunk k + 1 is computed (WriteBehind) and reads
chunk k + 1 while chunk k goes into the results file (read_ahead): the same chunks, the
same errors (one chunk later at most), no thread left behind.  The end-to-end checks
(faults, interrupts, resume, bit-identical files) are in test_faults.py and
test_interrupt.py."""
import threading

import numpy as np
import pytest

from mcscan.errors import OutputError
from mcscan.io.chunks import ChunkStore, MemoryStore, WriteBehind, read_ahead

WAIT_S = 20.0      # a generous bound: only a broken overlap waits this long


class _Store:
    """A stand-in for ChunkStore: records who wrote what, fails where told."""

    folder = "somewhere"

    def __init__(self, fail_at=None, error=OutputError("cannot write 'x': No space left on device")):
        self.written, self.threads, self.fail_at, self.error = [], [], fail_at, error
        self.release = threading.Event()

    def write(self, k, arrays):
        self.threads.append(threading.current_thread().name)
        if k == self.fail_at:
            raise self.error
        self.written.append((k, arrays["x"].copy()))

    def read(self, k):
        self.threads.append(threading.current_thread().name)
        if k == self.fail_at:
            raise self.error
        return {"x": np.full(3, float(k))}


def _live(name):
    return [t for t in threading.enumerate() if t.name.startswith(name)]


def _named(names, prefix):
    return len(names) > 0 and all(n.startswith(prefix) for n in names)


def test_write_behind_stores_every_chunk_in_order_on_another_thread():
    store = _Store()
    with WriteBehind(store) as w:
        for k in range(5):
            w.write(k, {"x": np.arange(4.0) + k})
    assert [k for k, _ in store.written] == list(range(5))
    assert all(np.array_equal(x, np.arange(4.0) + k) for k, x in store.written)
    assert _named(store.threads, "mcscan-chunk-writer")
    assert not _live("mcscan-chunk-writer")


def test_write_behind_returns_before_the_chunk_is_stored():
    """write() hands the chunk over and returns: the store's write waits for an event the
    caller sets only after write() returned (a synchronous write would time out)."""
    seen = {}

    class Slow(_Store):
        def write(self, k, arrays):
            seen[k] = self.release.wait(WAIT_S)
            super().write(k, arrays)

    store = Slow()
    with WriteBehind(store) as w:
        w.write(0, {"x": np.zeros(2)})
        store.release.set()
    assert seen == {0: True} and len(store.written) == 1


def test_write_behind_reports_a_failed_write_at_the_next_call():
    store = _Store(fail_at=2)
    with pytest.raises(OutputError, match="No space left"):
        with WriteBehind(store) as w:
            for k in range(5):
                w.write(k, {"x": np.zeros(1)})
    assert [k for k, _ in store.written] == [0, 1]       # nothing stored after the failure
    assert not _live("mcscan-chunk-writer")


def test_write_behind_keyboard_interrupt_in_a_write_reaches_the_caller():
    store = _Store(fail_at=1, error=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        with WriteBehind(store) as w:
            for k in range(3):
                w.write(k, {"x": np.zeros(1)})
    assert [k for k, _ in store.written] == [0]


def test_write_behind_the_callers_error_wins_and_the_last_write_ends():
    """An error of the caller (a non-finite chi2, Ctrl-C in the kernel) is the one raised;
    the write in flight still ends (its chunk is whole on disk), its own error dropped."""
    store = _Store(fail_at=1)
    with pytest.raises(ValueError, match="caller"):
        with WriteBehind(store) as w:
            w.write(0, {"x": np.zeros(1)})
            w.write(1, {"x": np.zeros(1)})
            raise ValueError("caller")
    assert [k for k, _ in store.written] == [0]
    assert not _live("mcscan-chunk-writer")


def test_write_behind_writes_a_store_in_memory_at_once():
    store = MemoryStore()
    with WriteBehind(store) as w:
        w.write(3, {"x": np.ones(2)})
        assert store.done() == {3}                         # no thread: already there


def test_read_ahead_reads_the_next_chunk_while_the_current_one_is_used():
    """Chunk k + 1 is read on another thread while the caller holds chunk k: the read of
    k + 1 has happened before the caller asks for it (it waits on an event)."""
    store = _Store()
    got, ahead = [], []
    for k, c in read_ahead(store, range(4)):
        got.append((k, c["x"][0]))
        if k < 3:
            ahead.append(_wait_for(lambda: len(store.threads) >= k + 2))
    assert got == [(k, float(k)) for k in range(4)] and all(ahead)
    assert _named(store.threads, "mcscan-chunk-reader")
    assert not _live("mcscan-chunk-reader")


def _wait_for(cond):
    ev = threading.Event()
    for _ in range(int(WAIT_S / 0.01)):
        if cond():
            return True
        ev.wait(0.01)
    return False


def test_read_ahead_raises_at_the_failed_chunk_and_stops():
    store = _Store(fail_at=2)
    got = []
    with pytest.raises(OutputError):
        for k, _ in read_ahead(store, range(5)):
            got.append(k)
    assert got == [0, 1] and len(store.threads) == 3     # nothing read after the failure
    assert not _live("mcscan-chunk-reader")


def test_read_ahead_caller_stopping_early_leaves_no_thread():
    store = _Store()
    for k, _ in read_ahead(store, range(5)):
        if k == 1:
            break
    assert not _live("mcscan-chunk-reader") and len(store.threads) == 3
    assert list(read_ahead(store, [])) == []


def test_real_store_round_trip(tmp_path):
    """WriteBehind then read_ahead on a ChunkStore on disk: every chunk verified and equal."""
    store = ChunkStore(tmp_path / "s.partial", {"scan": 1}, resume=False, n_chunks=6, names=("x",))
    data = {k: np.random.default_rng(k).random(1000) for k in range(6)}
    with WriteBehind(store) as w:
        for k in range(6):
            w.write(k, {"x": data[k]})
    assert store.done() == set(range(6))
    for k, c in read_ahead(store, range(6)):
        assert np.array_equal(c["x"], data[k])


def test_streamed_scan_writes_and_reads_chunks_on_their_threads(coefs, tmp_path, monkeypatch):
    """engine.scan stores every chunk behind the computation and reads it ahead of the
    results file, and the file equals the in-memory scan bit for bit."""
    from mcscan.scans.engine import scan

    names = {"write": [], "read": []}
    real_write, real_read = ChunkStore.write, ChunkStore.read

    def write(self, k, arrays):
        names["write"].append(threading.current_thread().name)
        real_write(self, k, arrays)

    def read(self, k):
        names["read"].append(threading.current_thread().name)
        return real_read(self, k)

    monkeypatch.setattr(ChunkStore, "write", write)
    monkeypatch.setattr(ChunkStore, "read", read)
    axes = (np.linspace(-2e-8, 2e-8, 13), np.linspace(-1e-8, 1e-8, 11))
    res = scan([coefs["Xe"]], ("q_ee", "q_mumu"), axes, tmp_path / "s.h5", chunk_points=22)
    mem = scan([coefs["Xe"]], ("q_ee", "q_mumu"), axes, chunk_points=22)
    assert res.chunks == 7 and len(names["write"]) == 7 and _named(names["write"], "mcscan-chunk-writer")
    assert len(names["read"]) == 7 and _named(names["read"], "mcscan-chunk-reader")
    assert np.array_equal(np.asarray(res.chi2), mem.chi2)
