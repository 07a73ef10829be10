"""Digests read array bytes without copying them (mcscan.io.h5.feed): the same digests
as hashing ``tobytes()``, so files, tables and chunk stores written before still verify."""
import hashlib

import numpy as np
import pytest

from mcscan.io.chunks import arrays_digest
from mcscan.io.h5 import feed


def _arrays():
    rng = np.random.default_rng(7)
    big = rng.random((300, 200))
    return {
        "float64": big,
        "transposed (not contiguous)": big.T,
        "strided slice": big[::3, 1::2],
        "0-d": np.array(2.5),
        "empty": np.empty((0, 4)),
        "int8": rng.integers(-5, 5, size=(7, 3)).astype(np.int8),
        "bool": rng.random(11) < 0.5,
        "big-endian": big[:5].astype(">f8"),
        "structured": np.array([(1, 2.0), (3, 4.0)], dtype=[("i", "<i4"), ("x", "<f8")]),
        "fortran order": np.asfortranarray(big[:20, :30]),
    }


@pytest.mark.parametrize("name", list(_arrays()))
def test_feed_hashes_the_bytes_of_tobytes(name):
    a = _arrays()[name]
    h = hashlib.sha256()
    feed(h, a)
    assert h.hexdigest() == hashlib.sha256(a.tobytes()).hexdigest()


def test_chunk_digest_is_the_stored_definition():
    """The digest a chunk store keeps, written out: names sorted, then name, dtype,
    shape and the C-order bytes of each array."""
    arrays = {"chi2": np.linspace(0.0, 1.0, 12).reshape(3, 4)[:, ::2],
              "converged": np.ones(6, dtype=np.int8)}
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        h.update(name.encode() + b"\0" + a.dtype.str.encode() + str(a.shape).encode())
        h.update(a.tobytes())
    assert arrays_digest(arrays) == h.hexdigest()


def _threads_named(name):
    import threading

    return [t for t in threading.enumerate() if t.name == name]


def test_blocked_digest_equals_one_read(tmp_path, monkeypatch):
    """A dataset larger than a block is hashed on a second thread while the next blocks
    are read (mcscan.io.h5._Feeder): the digest is the one of a single whole read, also
    with blocks that start and end inside rows and a queue of one block."""
    import h5py

    import mcscan.io.h5 as H

    rng = np.random.default_rng(3)
    p = tmp_path / "big.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("x", data=rng.random((301, 207)), chunks=(7, 207), fletcher32=True)
        f.create_dataset("ok", data=rng.integers(0, 2, size=(90, 77)).astype(np.int8))
        f.create_dataset("v", data=rng.random(5003))
    with h5py.File(p, "r") as f:
        whole = H.digest(f)                      # every dataset below one block: one read each
        for block, ahead in ((1000, 2), (997, 1), (64, 3)):
            monkeypatch.setattr(H, "_BLOCK", block)
            monkeypatch.setattr(H, "_READ_AHEAD", ahead)
            assert H.digest(f) == whole, (block, ahead)
    assert not _threads_named("mcscan-digest")


def test_blocked_digest_errors_reach_the_caller(tmp_path, monkeypatch):
    """An error of the hashing thread is raised by the digest; an error of a read stops
    the hashing thread; neither leaves a thread behind."""
    import h5py

    import mcscan.io.h5 as H

    p = tmp_path / "big.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("x", data=np.arange(40000.0).reshape(200, 200))
    monkeypatch.setattr(H, "_BLOCK", 1000)
    calls = []

    def failing_feed(h, a):
        calls.append(1)
        if len(calls) == 5:
            raise MemoryError("hash thread failed")
        hashlib.sha256().update(a)

    with h5py.File(p, "r") as f:
        with monkeypatch.context() as m:
            m.setattr(H, "feed", failing_feed)
            with pytest.raises(MemoryError, match="hash thread failed"):
                H.digest(f)
        assert not _threads_named("mcscan-digest")
        assert len(calls) == 5                   # nothing hashed after the error

        class Failing:
            dtype, shape, reads = f["x"].dtype, f["x"].shape, []

            def __getitem__(self, index):
                self.reads.append(index)
                if len(self.reads) == 7:
                    raise OSError("Can't read data (fletcher32 checksum failed)")
                return f["x"][index]

        with pytest.raises(OSError, match="fletcher32"):
            H._hash_dataset(hashlib.sha256(), Failing())
        assert not _threads_named("mcscan-digest")
