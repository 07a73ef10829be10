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
