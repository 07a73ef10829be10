"""Pion-decay-at-rest neutrino source (docs/physics.md section 2).

Three components, each normalised to one neutrino per proton on target:
a prompt nu_mu line and the delayed anti-nu_mu and nu_e Michel spectra.
Energies in MeV, spectra in MeV^-1, fluences in cm^-2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import constants
from .constants import M_MU

__all__ = ["Component",
           "COMPONENTS",  # noqa: F822 - defined on first use by the module's __getattr__
           "max_energy", "prompt_energy", "fluence_per_flavour", "live_days", "spectrum"]


@dataclass(frozen=True)
class Component:
    """One neutrino component of the beam.

    ``poly`` holds the coefficients c_k of the spectrum f(E) = sum_k c_k E^k
    on [0, e_max] (MeV^-1, E in MeV); it is empty for the monochromatic line,
    whose energy is ``e_max``.
    """

    name: str
    flavour: str          # "e", "mu" or "tau"
    antineutrino: bool
    e_max: float          # MeV
    poly: tuple[float, ...]

    @property
    def is_line(self) -> bool:
        return not self.poly

    def moment(self, n: int, e_lo):
        """Integral of f(E) E^n dE from ``e_lo`` (array, MeV) to ``e_max``.

        For the line: e_max^n where e_lo <= e_max, else 0.
        """
        e_lo = np.asarray(e_lo, dtype=float)
        if self.is_line:
            return np.where(e_lo <= self.e_max, self.e_max**n, 0.0)
        lo = np.clip(e_lo, 0.0, self.e_max)
        out = np.zeros_like(lo)
        for k, c in enumerate(self.poly):
            p = k + n + 1
            if c == 0.0:
                continue
            if p == 0:
                raise ValueError("log moment not supported")
            out += c * (self.e_max**p - lo**p) / p
        return out


def prompt_energy(m_pi: float | None = None, m_mu: float = M_MU) -> float:
    """Energy of the prompt nu_mu line, (m_pi^2 - m_mu^2) / (2 m_pi), MeV
    (default pion mass: :data:`mcscan.physics.constants.M_PI`)."""
    m_pi = constants.M_PI if m_pi is None else m_pi
    return (m_pi**2 - m_mu**2) / (2.0 * m_pi)


def max_energy() -> float:
    """Largest neutrino energy of the source, MeV: the end point m_mu / 2 of the
    delayed spectra, equal to ``max(c.e_max for c in COMPONENTS)``.  The prompt
    line lies below it, since (m_pi^2 - m_mu^2) / (2 m_pi) < m_mu / 2 whenever
    m_pi < (1 + sqrt 5) / 2 m_mu (m_pi / m_mu = 1.32).  Needs no pion mass, so
    validating a configuration does not load the particle table."""
    return M_MU / 2.0


def _components() -> tuple[Component, ...]:
    m = M_MU
    # f(E) = (64 E^2/m^3)(3/4 - E/m) and (192 E^2/m^3)(1/2 - E/m) on [0, m/2]
    numubar = (0.0, 0.0, 64.0 * 0.75 / m**3, -64.0 / m**4)
    nue = (0.0, 0.0, 192.0 * 0.5 / m**3, -192.0 / m**4)
    return (
        Component("prompt_numu", "mu", False, prompt_energy(), ()),
        Component("delayed_numubar", "mu", True, m / 2.0, numubar),
        Component("delayed_nue", "e", False, m / 2.0, nue),
    )


def __getattr__(name: str):
    # COMPONENTS, the three ESS components in the order used by every table, is
    # built on first use (it needs the pion mass from the particle table).
    if name == "COMPONENTS":
        value = _components()
        globals()["COMPONENTS"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def spectrum(component: Component, E) -> np.ndarray:
    """Spectrum f(E) of a continuous component, MeV^-1 (zero outside [0, e_max])."""
    if component.is_line:
        raise ValueError(f"{component.name} is a line at {component.e_max:.4f} MeV, not a spectrum")
    E = np.asarray(E, dtype=float)
    f = sum(c * E**k for k, c in enumerate(component.poly))
    return np.where((E >= 0) & (E <= component.e_max), f, 0.0)


def fluence_per_flavour(source) -> float:
    """Time-integrated neutrinos per flavour per cm^2: r N_POT years / (4 pi L^2)."""
    L_cm = source.distance_m * 100.0
    return source.nu_per_flavour_per_pot * source.pot_per_year * source.years / (4.0 * math.pi * L_cm**2)


def live_days(source) -> float:
    """Days of beam windows in which steady-state background counts."""
    return source.years * source.beam_hours_per_year / 24.0 * source.duty_factor
