"""Targets: nuclides, natural abundances and the Helm form factor.

Isotopic abundances and masses come from the ``periodictable`` package.
Natural elements are taken as abundance-weighted sums of their isotopes
(docs/physics.md section 3), each isotope with its own N and nuclear mass.
Nuclear mass = atomic mass - Z m_e (electron binding neglected, < 1e-6).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import periodictable

from ..errors import ConfigError

__all__ = ["Nuclide", "check_element", "check_radius", "nuclides", "molar_mass", "helm", "targets_per_kg"]


def _const():
    """The physical constants (imported on first use: checking a configuration's
    element symbols needs only ``periodictable``, not SciPy)."""
    from . import constants

    return constants


@dataclass(frozen=True)
class Nuclide:
    """One isotope in a target.

    ``per_unit`` is the number of such nuclei per formula unit of the
    detector material (atoms of the element x isotopic abundance).
    """

    element: str
    Z: int
    A: int
    mass: float          # nuclear mass, MeV
    per_unit: float
    rms_radius_fm: float

    @property
    def N(self) -> int:
        return self.A - self.Z

    @property
    def label(self) -> str:
        return f"{self.element}-{self.A}"


def check_element(where: str, symbol, *, natural: bool = False, error=ConfigError) -> None:
    """Raise ``error`` (ConfigError) unless ``symbol`` is a chemical element symbol.

    With ``natural``, the element must also have natural isotopes (targets are
    natural elements: docs/physics.md section 3); Tc, Pm and the elements
    beyond Bi except Th and U have none.
    """
    try:
        el = periodictable.elements.symbol(str(symbol))
    except ValueError:
        el = None
    if el is None or el.number == 0:
        raise error(f"{where}: unknown element {symbol!r}: expected a chemical symbol like 'Cs'")
    if natural and not any(iso.abundance > 0 for iso in el):
        raise error(f"{where}: element {symbol} has no stable isotope (no natural abundance): "
                    f"expected an element found in nature, like 'Cs'")


#: Largest nuclear rms radius accepted, fm (the heaviest nuclei have about 6 fm).
MAX_RADIUS_FM = 20.0


def check_radius(where: str, radius_fm, error=ConfigError) -> float:
    """Raise ``error`` unless ``radius_fm`` is a nuclear rms radius in (0, 20] fm."""
    try:
        r = float(radius_fm)
    except (TypeError, ValueError, OverflowError):
        r = float("nan")
    if not (math.isfinite(r) and 0.0 < r <= MAX_RADIUS_FM):
        raise error(f"{where} = {radius_fm!r}: expected a nuclear rms radius in (0, {MAX_RADIUS_FM:g}] fm")
    return r


def _element(symbol: str):
    check_element("composition", symbol, natural=True)
    return periodictable.elements.symbol(symbol)


def nuclides(composition, radii) -> list[Nuclide]:
    """Expand a composition {element: atoms per unit} into natural isotopes."""
    c = _const()
    out = []
    for sym, count in composition.items():
        el = _element(sym)
        isos = [iso for iso in el if iso.abundance > 0]
        total = sum(iso.abundance for iso in isos)
        for iso in isos:
            out.append(Nuclide(
                element=sym, Z=el.number, A=iso.isotope,
                mass=iso.mass * c.AMU_MEV - el.number * c.M_E,
                per_unit=count * iso.abundance / total,
                rms_radius_fm=float(radii[sym]),
            ))
    return out


def molar_mass(composition) -> float:
    """Molar mass of one formula unit with natural isotopes, g/mol."""
    return float(sum(count * _element(sym).mass for sym, count in composition.items()))


def targets_per_kg(composition) -> float:
    """Formula units per kg of detector material."""
    return 1000.0 / molar_mass(composition) * _const().AVOGADRO


def helm(q, rms_radius_fm: float, skin_fm: float):
    """Helm form factor F(q) (dimensionless, F(0) = 1).

    Parameters
    ----------
    q : array_like
        Momentum transfer, MeV.
    rms_radius_fm, skin_fm : float
        rms radius R and surface thickness s, fm;
        R0^2 = (5/3)(R^2 - 3 s^2).
    """
    r0sq = 5.0 / 3.0 * (rms_radius_fm**2 - 3.0 * skin_fm**2)
    if r0sq <= 0:
        raise ConfigError(
            f"rms radius {rms_radius_fm} fm is too small for a Helm skin of {skin_fm} fm "
            "(need R^2 > 3 s^2)"
        )
    from scipy.special import spherical_jn      # here: validating a configuration needs no SciPy

    qfm = np.asarray(q, dtype=float) / (_const().HBARC_MEV_CM * 1e13)
    x = qfm * np.sqrt(r0sq)
    xs = np.where(x == 0.0, 1.0, x)
    j = np.where(x < 1e-3, 1.0 - x**2 / 10.0, 3.0 * spherical_jn(1, xs) / xs)
    return j * np.exp(-0.5 * (qfm * skin_fm) ** 2)
