"""Tests of mcscan.physics.atomic: subshells, Z_eff(T) steps and edges.

Reference values come from independent sources (xraydb edge tables,
periodictable atomic numbers, subshell capacities 2j + 1 read off the edge
label), never from mcscan itself.
"""

from __future__ import annotations

import numpy as np
import periodictable
import pytest
import xraydb

from mcscan.physics import atomic

ELEMENTS = ["Cs", "I", "Xe", "Ge", "Ar", "Na"]
CSI = {"Cs": 1, "I": 1}
# Relative offset used to probe "just below / just above" an edge; edge energies
# are separated by far more than this (the closest distinct pair is ~1e-3 apart).
EPS = 1e-9

# Capacity 2j + 1 of a closed subshell from its edge label's index:
# 1 = s1/2, 2 = p1/2, 3 = p3/2, 4 = d3/2, 5 = d5/2, 6 = f5/2, 7 = f7/2.
_CAPACITY = {1: 2, 2: 2, 3: 4, 4: 4, 5: 6, 6: 6, 7: 8}


def _capacity(label: str) -> int:
    return 2 if label == "K" else _CAPACITY[int(label[1:])]


def _atomic_number(symbol: str) -> int:
    return periodictable.elements.symbol(symbol).number


def _xraydb_edges_mev(symbol: str) -> dict[str, float]:
    return {name: edge.energy * 1e-6 for name, edge in xraydb.xray_edges(symbol).items()}


@pytest.mark.parametrize("symbol", ELEMENTS)
def test_occupancies_sum_to_z(symbol):
    binding, occupancy = atomic.subshells(symbol)
    assert binding.shape == occupancy.shape
    # Integer-valued occupancies: the sum is exact (no tolerance).
    assert occupancy.sum() == _atomic_number(symbol)
    assert np.all(occupancy > 0)
    assert np.all(occupancy == np.round(occupancy))
    assert np.all(binding > 0)
    # Every subshell holds at most 2j + 1 electrons.
    for label, occ in zip(atomic.subshell_labels(symbol), occupancy, strict=True):
        assert occ <= _capacity(label)


@pytest.mark.parametrize("symbol", ELEMENTS)
def test_binding_energies_are_xraydb_edges(symbol):
    binding, _ = atomic.subshells(symbol)
    tabulated = _xraydb_edges_mev(symbol)
    for label, b in zip(atomic.subshell_labels(symbol), binding, strict=True):
        if label in tabulated:
            # Same number converted eV -> MeV: exact up to one rounding (1e-15 rel).
            assert b == pytest.approx(tabulated[label], rel=1e-15, abs=0)
    # The K edge is always tabulated and is the deepest subshell.
    assert binding.max() == pytest.approx(tabulated["K"], rel=1e-15, abs=0)


def test_untabulated_valence_uses_ionization_energy():
    # Cs 6s and Na 3s have no xraydb edge: their binding is the first
    # ionization energy (a few eV), below every tabulated edge of the atom.
    for symbol, label in [("Cs", "P1"), ("Na", "M1")]:
        labels = atomic.subshell_labels(symbol)
        assert label in labels
        assert label not in xraydb.xray_edges(symbol)
        binding, occupancy = atomic.subshells(symbol)
        k = labels.index(label)
        assert occupancy[k] == 1  # one valence s electron (exact)
        assert 1e-6 < binding[k] < 10e-6  # between 1 and 10 eV, in MeV
        assert binding[k] < min(_xraydb_edges_mev(symbol).values())


@pytest.mark.parametrize("symbol", ["Cs", "Na", "Cu"])
def test_ground_state_is_mendeleev_element(symbol):
    # the two values read from mendeleev's database are those of its element() API
    # (Cu: the anomalous [Ar] 3d10 4s1); exact, the same numbers from the same rows
    from mendeleev import element

    atom = element(symbol)
    configuration, ionization_ev = atomic._ground_state(_atomic_number(symbol))
    assert configuration == dict(atom.ec.conf)
    assert ionization_ev == atom.ionenergies[1]


def test_partial_shell_fills_lower_j_first():
    # I is [Kr] 4d10 5s2 5p5: 5p1/2 full (2), 5p3/2 holds 3 (exact integers).
    labels = atomic.subshell_labels("I")
    _, occupancy = atomic.subshells("I")
    assert occupancy[labels.index("O2")] == 2
    assert occupancy[labels.index("O3")] == 3


@pytest.mark.parametrize("symbol", ["Cs", "I"])
def test_z_eff_equals_z_above_k_edge(symbol):
    k_edge = _xraydb_edges_mev(symbol)["K"]
    T = k_edge * np.array([1 + EPS, 1.5, 10.0])
    # Integer-valued step function: exact comparison.
    np.testing.assert_array_equal(atomic.z_eff(T, {symbol: 1}), _atomic_number(symbol))
    assert atomic.z_eff(k_edge * (1 - EPS), {symbol: 1}) == _atomic_number(symbol) - 2


@pytest.mark.parametrize("symbol", ["Cs", "I"])
def test_z_eff_steps_at_tabulated_edges(symbol):
    tabulated = _xraydb_edges_mev(symbol)
    labels = atomic.subshell_labels(symbol)
    _, occupancy = atomic.subshells(symbol)
    comp = {symbol: 1}
    for energy in sorted(set(tabulated.values())):
        names = [name for name, e in tabulated.items() if e == energy]
        below = atomic.z_eff(energy * (1 - EPS), comp)
        above = atomic.z_eff(energy * (1 + EPS), comp)
        at = atomic.z_eff(energy, comp)
        # Convention: an electron counts only if B < T, so at the edge it is not counted.
        assert at == below
        expected = sum(occupancy[labels.index(name)] for name in names)
        assert above - below == expected  # exact (integer-valued)
        for name in names:
            if name not in ("O2", "O3") or symbol != "I":  # I 5p is partly filled
                assert occupancy[labels.index(name)] == _capacity(name)


@pytest.mark.parametrize("symbol", ["Cs", "I"])
def test_z_eff_flat_between_edges(symbol):
    rng = np.random.default_rng(1)
    breaks = atomic.edges([symbol])
    lo = np.concatenate([[breaks[0] * 1e-3], breaks])
    hi = np.concatenate([breaks, [breaks[-1] * 10]])
    for a, b in zip(lo, hi, strict=True):
        T = rng.uniform(a, b, size=20)
        T = T[(T > a) & (T < b)]
        values = atomic.z_eff(T, {symbol: 1})
        # Constant on every open interval between edges (exact).
        assert np.all(values == values[0])
    assert atomic.z_eff(breaks[0] * 0.5, {symbol: 1}) == 0  # below all binding energies


def test_z_eff_monotone_and_additive():
    T = np.geomspace(1e-7, 0.1, 4001)  # 0.1 eV to 100 keV, in MeV
    z_csi = atomic.z_eff(T, CSI)
    assert np.all(np.diff(z_csi) >= 0)
    assert z_csi[0] == 0
    assert z_csi[-1] == _atomic_number("Cs") + _atomic_number("I")
    # Additive over the composition, linear in the counts (exact, integer-valued).
    np.testing.assert_array_equal(z_csi, atomic.z_eff(T, {"Cs": 1}) + atomic.z_eff(T, {"I": 1}))
    np.testing.assert_array_equal(atomic.z_eff(T, {"Cs": 2, "I": 2}), 2 * z_csi)


def test_z_eff_broadcasts():
    T = np.linspace(0, 0.04, 12).reshape(3, 4)
    out = atomic.z_eff(T, CSI)
    assert out.shape == (3, 4)
    assert atomic.z_eff(0.0, CSI) == 0
    assert np.ndim(atomic.z_eff(1e-3, CSI)) == 0


def test_edges_sorted_unique_and_cover_all():
    breaks = atomic.edges(CSI)
    assert np.all(np.diff(breaks) > 0)
    expected = np.unique(np.concatenate([atomic.subshells("Cs")[0], atomic.subshells("I")[0]]))
    np.testing.assert_array_equal(breaks, expected)
    np.testing.assert_array_equal(atomic.edges(["Cs", "I"]), breaks)
    for symbol in CSI:
        for energy in _xraydb_edges_mev(symbol).values():
            assert np.any(breaks == energy)


def test_arrays_are_read_only():
    binding, occupancy = atomic.subshells("Cs")
    with pytest.raises(ValueError):
        binding[0] = 0.0
    with pytest.raises(ValueError):
        occupancy[0] = 0.0


@pytest.mark.parametrize("bad", ["Xx", "cs", "n", "D", "", 55])
def test_unknown_symbol_raises(bad):
    with pytest.raises(ValueError):
        atomic.subshells(bad)
    with pytest.raises(ValueError):
        atomic.z_eff(1e-3, {bad: 1})


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="-1"):
        atomic.z_eff(-1.0, CSI)
    with pytest.raises(ValueError):
        atomic.z_eff(np.nan, CSI)
    with pytest.raises(ValueError):
        atomic.z_eff(1e-3, {"Cs": -1})
    with pytest.raises(ValueError):
        atomic.z_eff(1e-3, {})
    with pytest.raises(ValueError):
        atomic.edges([])
