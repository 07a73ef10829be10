"""Differential cross sections of a target, SM against given charges.

What ``mcscan xsec`` shows: dsigma/dT per formula unit of a target (a
detector's material or one element with natural isotopes) at one neutrino
energy, in the nuclear (CEvNS) or electron (EvES with Z_eff) channel.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import atomic

from . import eves
from ..errors import InputError
from ..results import Result
from .nuclei import check_element, nuclides
from .cevns import FLAVOURS, cevns_dsigma, t_max

__all__ = ["XsecView", "xsec_view", "target_composition"]

_KEV = 1e-3


@dataclass(frozen=True)
class XsecView(Result):
    """dsigma/dT on a recoil grid. ``T_kev`` in keV (true recoil energy of the
    channel: keVnr for nuclear, keVee for electron); cross sections in cm^2/keV
    per formula unit of the target."""

    kind = "xsec"

    target: str
    channel: str
    enu_mev: float
    flavour: str
    antineutrino: bool
    charges: dict
    T_kev: np.ndarray
    sm: np.ndarray
    bsm: np.ndarray
    t_end_kev: float

    def to_json(self) -> dict:
        return {
            "target": self.target, "channel": self.channel, "enu_mev": self.enu_mev,
            "flavour": self.flavour, "antineutrino": self.antineutrino, "charges": self.charges,
            "T_kev": self.T_kev.tolist(), "sm": self.sm.tolist(), "with_charges": self.bsm.tolist(),
            "kinematic_end_kev": self.t_end_kev,
            "units": {"T_kev": "keV", "sm": "cm^2/keV per formula unit",
                      "with_charges": "cm^2/keV per formula unit", "charges": "e"},
        }


def target_composition(config, target: str):
    """(composition, radii) of a detector name or an element symbol."""
    if target in config.detectors:
        d = config.detectors[target]
        return dict(d.composition), dict(d.rms_radius_fm)
    check_element("--target", target)
    for d in config.detectors.values():
        if target in d.rms_radius_fm:
            return {target: 1}, {target: d.rms_radius_fm[target]}
    raise InputError(f"no rms radius known for {target!r}: use a detector name "
                     f"({', '.join(config.detectors)}) or an element of one, or pass --radius")


def xsec_view(config, target: str, enu_mev: float, flavour: str, *, antineutrino=False,
              charges=None, channel="nuclear", tmin_kev=None, tmax_kev=None, points=200,
              radius_fm=None) -> XsecView:
    """Differential cross section of ``target`` on a log grid of recoil energies."""
    if flavour not in FLAVOURS:
        raise InputError(f"unknown flavour {flavour!r}: expected one of {', '.join(FLAVOURS)}")
    if not (np.isfinite(enu_mev) and enu_mev > 0):
        raise InputError(f"neutrino energy {enu_mev!r} MeV: expected a positive number")
    if channel not in ("nuclear", "electron"):
        raise InputError(f"unknown channel {channel!r}: expected nuclear or electron")
    if not 2 <= int(points) <= 1_000_000:
        raise InputError(f"points = {points}: expected 2 to 1000000")
    charges = {k: float(v) for k, v in (charges or {}).items()}
    if radius_fm is not None:
        check_element("--target", target)
        comp, radii = {target: 1}, {target: float(radius_fm)}
    else:
        comp, radii = target_composition(config, target)
    phys = config.physics
    if channel == "nuclear":
        nucs = nuclides(comp, radii)
        t_end = max(float(t_max(enu_mev, n.mass)) for n in nucs) / _KEV
    else:
        t_end = float(eves.t_max(enu_mev)) / _KEV
    lo = tmin_kev if tmin_kev is not None else (0.1 if channel == "nuclear" else 0.01)
    hi = tmax_kev if tmax_kev is not None else t_end
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
        raise InputError(f"recoil range [{lo!r}, {hi!r}] keV: expected 0 < tmin < tmax")
    T = np.geomspace(lo, hi, int(points))
    if channel == "nuclear":
        def total(q):
            return sum(n.per_unit * cevns_dsigma(enu_mev, T * _KEV, n, flavour, phys.sin2_theta_w,
                                                 phys.helm_skin_fm, q) for n in nucs)
    else:
        z = atomic.z_eff(T * _KEV, comp)

        def total(q):
            return eves.dsigma_dT(enu_mev, T * _KEV, flavour, bool(antineutrino), phys.sin2_theta_w,
                                  q or None, z_eff=z)
    return XsecView(target, channel, float(enu_mev), flavour, bool(antineutrino), charges, T,
                    total({}) * _KEV, total(charges) * _KEV, t_end)
