"""compile_clock: the time numba spends compiling or loading code, on any thread."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from mcscan.stats._jit import compile_clock


def _fresh():
    # a new dispatcher each call: nothing compiled yet, nothing cached
    @numba.njit(cache=False)
    def inner(x):
        return np.sqrt(x) + 1.0

    @numba.njit(cache=False)
    def outer(x):
        return inner(x) * 2.0

    return outer


def test_a_compile_is_timed_and_a_call_of_compiled_code_is_not():
    f = _fresh()
    t0 = time.perf_counter()
    with compile_clock() as clock:
        assert f(4.0) == 6.0
    wall = time.perf_counter() - t0
    # outer compiles inner inside its own compile: counted once, within the block's time
    assert 0.0 < clock.seconds <= wall
    with compile_clock() as again:
        assert f(9.0) == 8.0
    assert again.seconds == 0.0                          # exact: no compiler lock taken


def test_a_compile_on_another_thread_is_timed():
    f = _fresh()
    with compile_clock() as clock, ThreadPoolExecutor(1) as pool:
        assert pool.submit(f, 1.0).result() == 4.0
    assert clock.seconds > 0.0


def test_the_clock_stops_with_its_block():
    with compile_clock() as clock:
        pass
    _fresh()(1.0)                                        # compiled after the block
    assert clock.seconds == 0.0
