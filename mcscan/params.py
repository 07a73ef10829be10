"""The one home of parameter names, flavours, units and display scales.

Every other module takes the names of the new-physics parameters from here:
the order of :data:`PARAMS` is the order of a parameter vector ``theta`` in
the statistics kernels and of the ``fixed`` arrays in results files.

A parameter belongs to a *family* (``charges`` today); each family has one
unit, and each parameter a display scale (the power of ten its intervals are
printed in) and the flavours it couples.  See ``docs/physics.md`` section 4
for the millicharge convention.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

from .errors import InputError

__all__ = [
    "FLAVOURS",
    "PARAMS",
    "FAMILIES",
    "Param",
    "SPEC",
    "check_param",
    "param_index",
    "charge_name",
    "family_params",
    "visible_params",
    "display_scale",
    "scale_label",
    "tex",
    "unit",
]

#: Neutrino flavours, in the order of the charge matrix.
FLAVOURS = ("e", "mu", "tau")

#: Neutrino components a source can emit: (flavour, antineutrino).
_FLAVOUR_TEX = {"e": "e", "mu": r"\mu", "tau": r"\tau"}


@dataclass(frozen=True)
class Param:
    """One new-physics parameter.

    Attributes
    ----------
    name : the name used in commands, files and the API (``q_ee``)
    family : ``charges``
    unit : unit of its values (``e``)
    scale : display scale: intervals are printed in units of ``scale * unit``
    flavours : the (incoming, outgoing) flavour pair it couples
    tex : LaTeX symbol (no dollar signs)
    """

    name: str
    family: str
    unit: str
    scale: float
    flavours: tuple
    tex: str

    @property
    def diagonal(self) -> bool:
        return self.flavours[0] == self.flavours[1]


def _charge(a: str, b: str) -> Param:
    scale = 1e-9 if a == b else 1e-8
    return Param(f"q_{a}{b}", "charges", "e", scale, (a, b),
                 f"q_{{{_FLAVOUR_TEX[a]}{_FLAVOUR_TEX[b]}}}")


_PAIRS = (("e", "e"), ("mu", "mu"), ("tau", "tau"), ("e", "mu"), ("e", "tau"), ("mu", "tau"))

#: Every parameter, in the order of a parameter vector.
SPEC: dict = {p.name: p for p in (_charge(a, b) for a, b in _PAIRS)}

#: Parameter names in vector order.
PARAMS = tuple(SPEC)

#: Family name -> its parameter names.
FAMILIES = {"charges": tuple(p for p in PARAMS if SPEC[p].family == "charges")}


def check_param(name) -> int:
    """Index of ``name`` in :data:`PARAMS`, or an InputError naming the choices."""
    if name not in SPEC:
        close = difflib.get_close_matches(str(name), PARAMS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"unknown parameter {name!r}: expected one of {', '.join(PARAMS)}{hint}")
    return PARAMS.index(name)


def param_index(name: str) -> int:
    """Index of a known parameter in :data:`PARAMS` (no check beyond KeyError)."""
    return PARAMS.index(name)


def charge_name(a: str, b: str) -> str:
    """Name of the charge coupling flavours ``a`` and ``b`` (either order)."""
    a, b = sorted((a, b), key=FLAVOURS.index)
    return f"q_{a}{b}"


def family_params(family: str) -> tuple:
    """Parameter names of one family."""
    if family not in FAMILIES:
        raise InputError(f"unknown family {family!r}: expected one of {', '.join(FAMILIES)}")
    return FAMILIES[family]


def visible_params(flavours_emitted, family: str = "charges") -> tuple:
    """Parameters of ``family`` that act on at least one emitted flavour.

    A pion-decay-at-rest source emits nu_e, nu_mu and anti-nu_mu: every
    parameter touching e or mu is visible, q_tautau is not.
    """
    seen = set(flavours_emitted)
    return tuple(p for p in family_params(family) if set(SPEC[p].flavours) & seen)


def display_scale(name: str) -> float:
    """Power of ten that intervals of ``name`` are printed in."""
    return SPEC[name].scale


def scale_label(name: str) -> str:
    """The display unit of ``name`` as text, e.g. ``1e-9 e``."""
    exp = round(math.log10(SPEC[name].scale))
    return f"1e{exp} {SPEC[name].unit}"


def unit(name: str) -> str:
    """Unit of ``name``'s values."""
    return SPEC[name].unit


def tex(name: str) -> str:
    """LaTeX symbol of ``name`` (without dollar signs)."""
    return SPEC[name].tex
