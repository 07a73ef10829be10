"""Atomic subshells and the effective electron number Z_eff(T) for EvES.

Neutrino-electron elastic scattering on an atom is treated in the stepping
approximation (docs/physics.md section 5): an atomic electron takes part only when
the recoil energy exceeds its binding energy, so the cross section per atom is
``Z_eff(T) * (free-electron cross section)``.

Data sources (nothing is hand-typed)
------------------------------------
* Binding energies: X-ray absorption-edge energies from ``xraydb``
  (``xraydb.xray_edges``; Elam, Ravel & Sieber tables), converted eV -> MeV.
  Edge names map to subshells in the usual way: ``K`` = 1s;
  ``X1`` = ns, ``X2`` = np1/2, ``X3`` = np3/2, ``X4`` = nd3/2, ``X5`` = nd5/2,
  ``X6`` = nf5/2, ``X7`` = nf7/2 with X = L, M, N, O, P, Q for n = 2..7.
* Occupancies: the neutral ground-state configuration from ``mendeleev``
  (``element(symbol).ec``), e.g. Cs = [Xe] 6s1, I = [Kr] 4d10 5s2 5p5.
* Outer (valence) subshells for which ``xraydb`` tabulates no edge (e.g. the
  6s electron of Cs, 4s of K-Zn, partly filled d shells of transition
  metals) get the first ionization energy of the atom (NIST values via
  ``mendeleev``, ``element(symbol).ionenergies[1]``), i.e. the binding
  energy of the least-bound electron.  For every element up to Cf the
  untabulated subshells are outermost valence subshells, so this is a
  few-eV choice that matters only far below any keV threshold.

Conventions
-----------
* An nl shell with l > 0 is split into j = l - 1/2 and j = l + 1/2 subshells
  with capacities 2j + 1 (p1/2:p3/2 = 2:4, d3/2:d5/2 = 4:6, f5/2:f7/2 = 6:8).
  A partly filled shell fills the lower-j (more strongly bound) subshell
  first (jj-coupling filling order), so all occupancies are integers and sum
  exactly to Z; e.g. I 5p5 -> 5p1/2: 2, 5p3/2: 3, and Ge 4p2 -> 4p1/2: 2.
  Subshells left empty by this filling are dropped.
* An electron with binding energy B counts in ``z_eff(T)`` if and only if
  ``B < T`` (strict): exactly at an edge the electron is *not* counted, so
  ``z_eff`` is continuous from the left at every edge.
* Energies are in MeV everywhere (inputs and outputs).

``mendeleev`` is imported lazily (on the first uncached look-up) because its
import pulls in pandas and SQLAlchemy; only the two values above are read from
its database (:func:`_ground_state`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["edges", "subshell_labels", "subshells", "z_eff"]

#: eV -> MeV.
_EV_TO_MEV = 1e-6
#: Shell letter for principal quantum number n (index n - 1).
_SHELL_LETTERS = "KLMNOPQ"
#: Orbital angular momentum for each spectroscopic letter.
_L_OF = {"s": 0, "p": 1, "d": 2, "f": 3, "g": 4}


def _xraydb():
    """The ``xraydb`` module, imported on first use (its import takes ~0.2 s; the
    nuclear channel never needs it)."""
    import xraydb

    return xraydb


def _check_symbol(element: str) -> int:
    """Return the atomic number of an exactly spelled element symbol."""
    if not isinstance(element, str):
        raise ValueError(f"element symbol must be a str, got {element!r}")
    try:
        z = int(_xraydb().atomic_number(element))
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"unknown element symbol {element!r}") from None
    # xraydb is case-insensitive ('n' -> N); insist on the canonical spelling.
    if z < 1 or _xraydb().atomic_symbol(z) != element:
        raise ValueError(
            f"unknown element symbol {element!r} (symbols are case-sensitive, e.g. 'Cs')"
        )
    return z


def _edge_name(n: int, ell: int, two_j: int) -> str:
    """xraydb edge label of subshell (n, l = ell, j = two_j / 2)."""
    if n > len(_SHELL_LETTERS):
        raise ValueError(f"no edge label for principal quantum number n={n}")
    if n == 1:
        return "K"
    # Index within the shell: s1/2 -> 1, p1/2 -> 2, p3/2 -> 3, d3/2 -> 4, ...
    index = 2 * ell if two_j == 2 * ell - 1 else 2 * ell + 1
    return f"{_SHELL_LETTERS[n - 1]}{index}"


def _ground_state(z: int) -> tuple[dict, float]:
    """``({(n, letter): electrons}, first ionization energy in eV)`` of the neutral atom
    of atomic number ``z``, from ``mendeleev``'s database: the two values that
    ``mendeleev.element(z).ec.conf`` and ``.ionenergies[1]`` give, read with two
    queries and parsed by ``mendeleev``'s own ``ElectronicConfiguration``.
    ``element()`` loads every related table of the element (isotopes, radii,
    screening constants: about 0.35 s per element) to use none of them."""
    # heavy imports (pandas, SQLAlchemy), only when an electron channel is built
    from mendeleev.db import get_session
    from mendeleev.econf import ElectronicConfiguration
    from mendeleev.models import Element, IonizationEnergy

    with get_session() as session:
        (econf,) = session.query(Element.econf).filter(Element.atomic_number == z).one()
        ionization = (session.query(IonizationEnergy.energy)
                      .filter(IonizationEnergy.atomic_number == z, IonizationEnergy.degree == 1)
                      .scalar())
    if ionization is None:
        raise ValueError(f"mendeleev has no first ionization energy for Z = {z}")
    return dict(ElectronicConfiguration(econf).conf), float(ionization)


@functools.cache
def _table(element: str) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Cached (labels, binding_MeV, occupancy) for one element (read-only arrays)."""
    z = _check_symbol(element)
    tabulated = _xraydb().xray_edges(element)
    if not tabulated:
        raise ValueError(f"xraydb has no X-ray edge energies for element {element!r}")

    configuration, ionization_ev = _ground_state(z)

    labels: list[str] = []
    binding: list[float] = []
    occupancy: list[int] = []
    # Order by (n, l): K, L1, L2, L3, M1, ..., independent of the aufbau order.
    shells = sorted(configuration.items(), key=lambda item: (item[0][0], _L_OF[item[0][1]]))
    for (n, letter), count in shells:
        ell = _L_OF[letter]
        remaining = int(count)
        # Lower-j subshell first (more strongly bound), capacity 2j + 1.
        two_js = [1] if ell == 0 else [2 * ell - 1, 2 * ell + 1]
        for two_j in two_js:
            filled = min(remaining, two_j + 1)
            remaining -= filled
            if filled == 0:
                continue
            name = _edge_name(n, ell, two_j)
            edge = tabulated.get(name)
            energy_ev = float(edge.energy) if edge is not None else ionization_ev
            labels.append(name)
            binding.append(energy_ev * _EV_TO_MEV)
            occupancy.append(filled)
        if remaining != 0:
            raise ValueError(
                f"configuration of {element!r} overfills the {n}{letter} shell ({count})"
            )
    if sum(occupancy) != z:
        raise ValueError(f"occupancies of {element!r} sum to {sum(occupancy)}, not Z = {z}")
    binding_arr = np.array(binding, dtype=float)
    occupancy_arr = np.array(occupancy, dtype=float)
    binding_arr.flags.writeable = False
    occupancy_arr.flags.writeable = False
    return tuple(labels), binding_arr, occupancy_arr


def subshells(element: str) -> tuple[np.ndarray, np.ndarray]:
    """Occupied subshells of the neutral ground-state atom.

    Parameters
    ----------
    element : str
        Element symbol with canonical capitalisation (``"Cs"``, ``"I"``, ...),
        H to Cf (the range of ``xraydb`` edge tables).

    Returns
    -------
    binding : ndarray, shape (n_subshells,), MeV
        Binding energy of each occupied subshell: the ``xraydb`` edge energy,
        or the first ionization energy (NIST, via ``mendeleev``) for outer
        valence subshells that ``xraydb`` does not tabulate.
    occupancy : ndarray, shape (n_subshells,), float with integer values
        Electrons in each subshell; ``occupancy.sum() == Z`` exactly.
        Partly filled nl shells fill the lower-j subshell first.

    Both arrays are read-only views of a cached table, ordered by (n, l, j):
    1s, 2s, 2p1/2, 2p3/2, 3s, ... (edge labels K, L1, L2, L3, M1, ...); the
    labels are given by :func:`subshell_labels`.

    Raises
    ------
    ValueError
        For an unknown symbol or an element without edge data.
    """
    _, binding, occupancy = _table(element)
    return binding, occupancy


def subshell_labels(element: str) -> tuple[str, ...]:
    """Edge labels (``"K"``, ``"L1"``, ``"L2"``, ...) matching :func:`subshells`.

    Parameters
    ----------
    element : str
        Element symbol, as for :func:`subshells`.

    Returns
    -------
    tuple of str, length n_subshells
        The xraydb-style label of each occupied subshell.
    """
    return _table(element)[0]


def _check_composition(elements: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    """Validate a composition mapping and return it as a hashable, sorted tuple."""
    if not isinstance(elements, Mapping):
        raise ValueError(f"composition must be a mapping symbol -> count, got {elements!r}")
    if len(elements) == 0:
        raise ValueError("composition is empty")
    items = []
    for symbol, count in elements.items():
        _check_symbol(symbol)
        try:
            weight = float(count)
        except (TypeError, ValueError):
            raise ValueError(f"count of {symbol!r} must be a number, got {count!r}") from None
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"count of {symbol!r} must be finite and >= 0, got {count!r}")
        items.append((symbol, weight))
    return tuple(sorted(items))


@functools.lru_cache(maxsize=64)
def _step_table(composition: tuple[tuple[str, float], ...]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted binding energies and cumulative electron counts of a composition.

    Returns ``(b_sorted, cumulative)`` with ``cumulative[k]`` the number of
    electrons in the k lowest-binding subshells (``cumulative[0] == 0``).
    """
    binding = []
    weight = []
    for symbol, count in composition:
        b, occ = subshells(symbol)
        binding.append(b)
        weight.append(occ * count)
    b_all = np.concatenate(binding)
    w_all = np.concatenate(weight)
    order = np.argsort(b_all, kind="stable")
    b_sorted = b_all[order]
    cumulative = np.concatenate([[0.0], np.cumsum(w_all[order])])
    b_sorted.flags.writeable = False
    cumulative.flags.writeable = False
    return b_sorted, cumulative


def z_eff(T_MeV, elements: Mapping[str, float]) -> np.ndarray:
    """Number of atomic electrons with binding energy below the recoil energy.

    Step function ``Z_eff(T) = sum_elements count * sum_subshells
    occupancy * [B < T]`` (strict inequality: at T exactly equal to an edge the
    electrons of that subshell are not yet counted).

    Parameters
    ----------
    T_MeV : array_like, any shape, MeV
        Electron recoil energies, finite and >= 0.
    elements : mapping str -> float
        Composition per formula unit, e.g. ``{"Cs": 1, "I": 1}`` for CsI.

    Returns
    -------
    ndarray, same shape as ``T_MeV`` (0-d for a scalar), float
        Effective electron number per formula unit; equals the total electron
        count (108 for CsI) above the highest K edge.

    Raises
    ------
    ValueError
        For negative or non-finite energies, unknown symbols or negative counts.
    """
    T = np.asarray(T_MeV, dtype=float)
    if not np.all(np.isfinite(T)):
        raise ValueError(f"recoil energies must be finite, got {T_MeV!r}")
    if np.any(T < 0):
        raise ValueError(f"recoil energies must be >= 0 MeV, got min {T.min()!r}")
    b_sorted, cumulative = _step_table(_check_composition(elements))
    # side="left" counts the edges strictly below T.
    return cumulative[np.searchsorted(b_sorted, T, side="left")]


def edges(elements: Mapping[str, float] | Iterable[str]) -> np.ndarray:
    """Sorted unique binding energies of a composition (quadrature breakpoints).

    Parameters
    ----------
    elements : mapping str -> float, or iterable of str
        Composition as for :func:`z_eff` (elements with count 0 are skipped),
        or simply element symbols.

    Returns
    -------
    ndarray, shape (n_edges,), MeV
        Strictly increasing binding energies at which ``z_eff`` may jump.
    """
    if isinstance(elements, Mapping):
        symbols = [s for s, count in _check_composition(elements) if count > 0]
    elif isinstance(elements, str):
        symbols = [elements]
    else:
        symbols = list(elements)
        if not symbols:
            raise ValueError("no elements given")
    return np.unique(np.concatenate([subshells(s)[0] for s in symbols]))
