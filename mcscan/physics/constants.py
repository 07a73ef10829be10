"""Physical constants, all taken from maintained sources in one place.

Sources: ``scipy.constants`` (CODATA) for G_F, alpha, hbar*c, the electron
and muon masses, the atomic mass unit and Avogadro's number; the ``particle``
package (PDG) for the charged-pion mass.  Nothing here is hand-typed.

Units: energies and masses in MeV, G_F in MeV^-2, hbar*c in MeV cm.
"""
from __future__ import annotations

import scipy.constants as _sc

__all__ = [
    "ALPHA",
    "AMU_MEV",
    "AVOGADRO",
    "G_FERMI",
    "HBARC_MEV_CM",
    "HBARC2_MEV2_CM2",
    "M_E",
    "M_MU",
    "M_PI",  # noqa: F822 - defined on first use by the module's __getattr__
]


def _pc(name: str) -> float:
    return float(_sc.physical_constants[name][0])


#: Fermi coupling constant G_F / (hbar c)^3, MeV^-2.
G_FERMI = _pc("Fermi coupling constant") * 1e-6
#: Fine-structure constant (dimensionless).
ALPHA = _pc("fine-structure constant")
#: hbar * c in MeV cm.
HBARC_MEV_CM = _pc("reduced Planck constant times c in MeV fm") * 1e-13
#: (hbar c)^2 in MeV^2 cm^2: converts MeV^-2 to cm^2.
HBARC2_MEV2_CM2 = HBARC_MEV_CM**2
#: Electron mass, MeV.
M_E = _pc("electron mass energy equivalent in MeV")
#: Muon mass, MeV.
M_MU = _pc("muon mass energy equivalent in MeV")
#: Atomic mass unit, MeV.
AMU_MEV = _pc("atomic mass constant energy equivalent in MeV")
#: Avogadro constant, mol^-1.
AVOGADRO = _sc.Avogadro


def __getattr__(name: str):
    # M_PI, the charged-pion mass in MeV (PDG, via the ``particle`` package), is
    # looked up on first use: loading the particle table costs ~0.1 s.
    if name == "M_PI":
        from particle import Particle

        value = float(Particle.from_pdgid(211).mass)
        globals()["M_PI"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
