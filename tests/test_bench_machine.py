"""scripts/bench.py's view of the machine: the FP64 peak counts physical cores.

Two vCPUs of a cloud VM are often two hardware threads of one core (they share its
FP pipes and divider); the peak and every fraction of it must then count one core.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench", ROOT / "scripts" / "bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
