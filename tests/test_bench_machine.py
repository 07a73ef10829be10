"""scripts/bench.py's view of the machine: the FP64 peak counts physical cores.

Two vCPUs of a cloud VM are often two hardware threads of one core (they share its
FP pipes and divider); the peak and every fraction of it must then count one core.
"""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bench(script):
    return script("bench")


def _cpuinfo(tmp_path, cores):
    """A /proc/cpuinfo with one processor per (physical id, core id) in ``cores``."""
    text = "".join(f"processor\t: {k}\nvendor_id\t: GenuineIntel\nphysical id\t: {p}\n"
                   f"core id\t\t: {c}\n\n" for k, (p, c) in enumerate(cores))
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return path


@pytest.mark.parametrize("cores, expected", [
    ([(0, 0), (0, 0)], (1, 2)),                    # two hyperthreads of one core
    ([(0, 0), (0, 1)], (2, 1)),                    # two cores
    ([(0, 0), (1, 0), (0, 1), (1, 1)], (4, 1)),    # two sockets: core ids repeat
    ([(0, 0), (0, 1), (0, 0), (0, 1)], (2, 2)),
])
def test_physical_cores(bench, tmp_path, cores, expected):
    assert bench.physical_cores(_cpuinfo(tmp_path, cores)) == expected


def test_physical_cores_without_topology(bench, tmp_path):
    import os

    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\n\nprocessor\t: 1\n\n")       # no core ids (some VMs)
    assert bench.physical_cores(path) == (os.cpu_count() or 1, 1)
    assert bench.physical_cores(tmp_path / "missing") == (os.cpu_count() or 1, 1)


@pytest.mark.skipif(__import__("platform").machine().lower() not in ("x86_64", "amd64"),
                    reason="the clock probe is x86-64 assembly")
def test_delivered_clock_counts_one_addition_per_cycle(bench):
    # the probe's chain of dependent additions ran to its sum (checked inside), and
    # gives a clock between 0.2 and 6.5 GHz (no x86-64 core boosts past 6.2 GHz), alone and
    # on each of two threads at once; an immediate ``add $1`` chain, which Intel cores since
    # Golden Cove fold at renaming, gave 8.5 GHz on a 2.4 GHz Xeon
    clock = bench.delivered_clock(2, n=200_000, repeat=2)
    assert len(clock["every_thread_mhz"]) == 2
    for mhz in (clock["one_thread_mhz"], clock["mhz"], *clock["every_thread_mhz"]):
        assert 200.0 < mhz < 6_500.0


def test_fraction_of_peak_at_the_delivered_clock(bench):
    # 2 cores x 3000 MHz x 16 flop per cycle = 96 GFLOP/s; 1e7 points/s x 2000 flop
    # = 20 GFLOP/s is 0.2083 of it (to 1e-12 relative), next to the nominal figure
    peak = {"physical_cores": 2, "flop_per_cycle_per_core_fma": 16,
            "fp64_peak_gflops": 2 * 2.0 * 16, "fp64_peak_gflops_without_fma": 2 * 2.0 * 8}
    clock = {"mhz": 3000.0, "one_thread_mhz": 3100.0, "every_thread_mhz": [3000.0, 3000.0]}
    p = bench._with_delivered_clock(peak, clock)
    assert p["fp64_peak_gflops_at_delivered_clock"] == pytest.approx(96.0, rel=1e-12)
    eff = bench._efficiency(1e7, 2000.0, p)
    assert eff["fraction_of_peak_at_delivered_clock"] == pytest.approx(20 / 96, rel=1e-12)
    assert eff["fraction_of_peak"] == pytest.approx(20 / 64, rel=1e-12)
    none = bench._with_delivered_clock(peak, None)
    assert bench._efficiency(1e7, 2000.0, none)["fraction_of_peak_at_delivered_clock"] is None
