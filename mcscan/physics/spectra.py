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
from ..params import check_param
from ..results import Result
from .nuclei import check_element, check_radius, nuclides
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


#: Largest neutrino energy, MeV (the model is a low-energy one: docs/physics.md section 4).
MAX_ENU_MEV = 1e4
#: Largest recoil energy of a view, keV.
MAX_RECOIL_KEV = 1e7


def _finite(what: str, value, unit: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{what} {value!r} {unit}: expected a number") from None
    if not np.isfinite(x):
        raise InputError(f"{what} {value!r} {unit}: expected a finite number")
    return x


def target_composition(config, target: str):
    """(composition, radii) of a detector name or an element symbol."""
    if target in config.detectors:
        d = config.detectors[target]
        return dict(d.composition), dict(d.rms_radius_fm)
    check_element("target", target, natural=True, error=InputError)
    for d in config.detectors.values():
        if target in d.rms_radius_fm:
            return {target: 1}, {target: d.rms_radius_fm[target]}
    raise InputError(f"no rms radius known for {target!r}: use a detector name "
                     f"({', '.join(config.detectors)}) or an element of one, or give its rms radius")


def xsec_view(config, target: str, enu_mev: float, flavour: str, *, antineutrino=False,
              charges=None, channel="nuclear", tmin_kev=None, tmax_kev=None, points=200,
              radius_fm=None) -> XsecView:
    """Differential cross section of ``target`` on a log grid of recoil energies."""
    if flavour not in FLAVOURS:
        raise InputError(f"unknown flavour {flavour!r}: expected one of {', '.join(FLAVOURS)}")
    enu_mev = _finite("neutrino energy", enu_mev, "MeV")
    if not 0.0 < enu_mev <= MAX_ENU_MEV:
        raise InputError(f"neutrino energy {enu_mev!r} MeV: expected a value in (0, {MAX_ENU_MEV:g}] MeV")
    if channel not in ("nuclear", "electron"):
        raise InputError(f"unknown channel {channel!r}: expected nuclear or electron")
    if isinstance(points, bool) or not isinstance(points, (int, float, np.integer, np.floating)) \
            or not float(points).is_integer() or not 2 <= points <= 1_000_000:
        raise InputError(f"points = {points!r}: expected a whole number from 2 to 1000000")
    charges = {str(k): _finite(f"charge {k}", v, "e") for k, v in (charges or {}).items()}
    for k, v in charges.items():
        check_param(k)
        if abs(v) > 1.0:
            raise InputError(f"charge {k} = {v!r} e: expected |{k}| <= 1 e")
    if radius_fm is not None:
        check_element("target", target, natural=True, error=InputError)
        comp, radii = {target: 1}, {target: check_radius("rms radius", radius_fm, error=InputError)}
    else:
        comp, radii = target_composition(config, target)
    skin = config.physics.helm_skin_fm
    for el, r in radii.items():
        if not r * r > 3.0 * skin * skin:
            raise InputError(f"rms radius {r!r} fm of {el}: expected more than sqrt(3) x the Helm skin "
                             f"{skin:g} fm = {np.sqrt(3.0) * skin:.4g} fm")
    phys = config.physics
    if channel == "nuclear":
        nucs = nuclides(comp, radii)
        t_end = max(float(t_max(enu_mev, n.mass)) for n in nucs) / _KEV
    else:
        t_end = float(eves.t_max(enu_mev)) / _KEV
    lo = _finite("lowest recoil energy", tmin_kev, "keV") if tmin_kev is not None else (
        0.1 if channel == "nuclear" else 0.01)
    hi = _finite("highest recoil energy", tmax_kev, "keV") if tmax_kev is not None else t_end
    if not (0 < lo < hi <= MAX_RECOIL_KEV):
        raise InputError(f"recoil range [{lo!r}, {hi!r}] keV: expected 0 < tmin < tmax <= "
                         f"{MAX_RECOIL_KEV:g} keV")
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
