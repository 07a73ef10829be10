"""The one home of parameter names, flavours, units and display scales.

Every other module takes the names of the new-physics parameters from here:
the order of :data:`PARAMS` is the order of a parameter vector ``theta`` in
the statistics kernels and of the ``fixed`` arrays in results files.

A parameter belongs to a *family*: ``charges`` (q_ab, e), ``radii``
(<r^2>_ab, cm^2), ``moments`` (mu_a, Bohr magnetons), ``sin2w``
(sin^2 theta_W itself) and ``nsi`` (vector eps^{u,d}_ab, dimensionless).
Each family has one unit, and each parameter a display scale (the power of
ten its intervals are printed in), the flavours it couples, its Standard
Model value and a default scan range.  See ``docs/physics.md`` section 4 for
the millicharge convention and section 11 for the other families.

:data:`PARAMS` stays the six charges: the millicharge kernels and files keep
their six-entry vectors.  :data:`ALL_PARAMS` (charges first) orders the full
parameter vector of :mod:`mcscan.stats.families`.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

from .errors import InputError

__all__ = [
    "CL_RANGE",
    "MAX_CHARGE",
    "MIN_SPAN",
    "FLAVOURS",
    "PARAMS",
    "ALL_PARAMS",
    "FAMILY_NAMES",
    "SIN2W_DEFAULT",
    "check_any_param",
    "acts_on",
    "FAMILIES",
    "Param",
    "SPEC",
    "check_param",
    "default_range",
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
    family : ``charges``, ``radii``, ``moments``, ``sin2w`` or ``nsi``
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
    #: value at which the parameter has no effect (the Standard Model); 0 except sin2w
    reference: float = 0.0
    #: default scan range (low, high) in ``unit``; None: taken from the configuration
    scan_range: tuple | None = None
    #: physically allowed values (low, high): a limit is never extended beyond them
    bounds: tuple = (-math.inf, math.inf)

    @property
    def diagonal(self) -> bool:
        return len(self.flavours) == 2 and self.flavours[0] == self.flavours[1]

    @property
    def universal(self) -> bool:
        """True for a parameter acting on every flavour alike (sin2w)."""
        return not self.flavours


def _charge(a: str, b: str) -> Param:
    scale = 1e-9 if a == b else 1e-8
    return Param(f"q_{a}{b}", "charges", "e", scale, (a, b),
                 f"q_{{{_FLAVOUR_TEX[a]}{_FLAVOUR_TEX[b]}}}")


_PAIRS = (("e", "e"), ("mu", "mu"), ("tau", "tau"), ("e", "mu"), ("e", "tau"), ("mu", "tau"))

#: Default weak mixing angle sin^2(theta_W) (low-energy value, docs/physics.md section 2).
SIN2W_DEFAULT = 0.23857


def _radius(a: str, b: str) -> Param:
    # the weak charge flips sign near -6e-31 cm^2 (diagonal radii): the range holds both pieces
    rng = (-1.2e-30, 6e-31) if a == b else (-6e-31, 6e-31)
    return Param(f"r2_{a}{b}", "radii", "cm^2", 1e-32, (a, b),
                 rf"\langle r^2\rangle_{{{_FLAVOUR_TEX[a]}{_FLAVOUR_TEX[b]}}}", scan_range=rng)


def _moment(a: str) -> Param:
    return Param(f"mu_{a}", "moments", "mu_B", 1e-10, (a, a),
                 rf"\mu_{{\nu_{{{_FLAVOUR_TEX[a]}}}}}", scan_range=(-2e-8, 2e-8))


def _nsi(q: str, a: str, b: str) -> Param:
    # diagonal couplings flip the weak charge near +0.4: the range holds both pieces
    rng = (-0.6, 1.0) if a == b else (-0.5, 0.5)
    return Param(f"eps_{q}_{a}{b}", "nsi", "1", 1.0, (a, b),
                 rf"\varepsilon^{{{q}V}}_{{{_FLAVOUR_TEX[a]}{_FLAVOUR_TEX[b]}}}", scan_range=rng)


_SIN2W = Param("sin2w", "sin2w", "1", 1.0, (), r"\sin^2\theta_W", reference=SIN2W_DEFAULT,
               scan_range=(SIN2W_DEFAULT - 0.1, SIN2W_DEFAULT + 0.1), bounds=(0.0, 1.0))

#: Every parameter: the six charges first (in the order of a charge vector), then
#: charge radii, magnetic moments, sin2w and the vector NSI (u, then d).
SPEC: dict = {p.name: p for p in (
    [_charge(a, b) for a, b in _PAIRS]
    + [_radius(a, b) for a, b in _PAIRS]
    + [_moment(a) for a in FLAVOURS]
    + [_SIN2W]
    + [_nsi(q, a, b) for q in ("u", "d") for a, b in _PAIRS]
)}

#: Names of the six charges, in the order of a charge vector ``theta`` of the
#: millicharge kernels (:mod:`mcscan.stats.kernels`) and of results files.
PARAMS = tuple(p for p in SPEC if SPEC[p].family == "charges")

#: Every parameter name, charges first: the order of a full parameter vector
#: (:mod:`mcscan.stats.families`).  ``ALL_PARAMS[:6] == PARAMS``.
ALL_PARAMS = tuple(SPEC)

#: Confidence levels accepted, by the configuration and by every command: the
#: Delta chi2 level stays finite and representable.
CL_RANGE = (1e-6, 1.0 - 1e-9)
#: Largest |charge| of a scan range or a fixed value, e (a millicharge is a fraction of e).
MAX_CHARGE = 1.0
#: Smallest span of a scan range, e (narrower cannot be gridded in double precision).
MIN_SPAN = 1e-30

#: Family names, in order.
FAMILY_NAMES = ("charges", "radii", "moments", "sin2w", "nsi")

#: Family name -> its parameter names.
FAMILIES = {f: tuple(p for p in ALL_PARAMS if SPEC[p].family == f) for f in FAMILY_NAMES}


def check_param(name) -> int:
    """Index of the charge ``name`` in :data:`PARAMS`, or an InputError naming the choices.

    The millicharge machinery takes charges only; a parameter of another
    family is refused with a pointer to :func:`check_any_param`'s users.
    """
    if name in SPEC and name not in PARAMS:
        raise InputError(f"parameter {name!r} belongs to the {SPEC[name].family} family: "
                         f"this takes a charge, one of {', '.join(PARAMS)}")
    if name not in SPEC:
        close = difflib.get_close_matches(str(name), PARAMS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"unknown parameter {name!r}: expected one of {', '.join(PARAMS)}{hint}")
    return PARAMS.index(name)


def check_any_param(name) -> int:
    """Index of ``name`` in :data:`ALL_PARAMS` (any family), or an InputError naming the choices."""
    if name not in SPEC:
        close = difflib.get_close_matches(str(name), ALL_PARAMS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"unknown parameter {name!r}: expected one of {', '.join(ALL_PARAMS)}{hint}")
    return ALL_PARAMS.index(name)


def acts_on(name: str) -> frozenset:
    """Flavours of incoming neutrinos a parameter acts on (every flavour for sin2w)."""
    p = SPEC[name]
    return frozenset(FLAVOURS) if p.universal else frozenset(p.flavours)


def param_index(name: str) -> int:
    """Index of a known parameter in :data:`PARAMS` (no check beyond KeyError)."""
    return PARAMS.index(name)


def charge_name(a: str, b: str) -> str:
    """Name of the charge coupling flavours ``a`` and ``b`` (either order)."""
    a, b = sorted((a, b), key=FLAVOURS.index)
    return f"q_{a}{b}"


def family_params(family: str) -> tuple:
    """Parameter names of one family (``all``: every parameter)."""
    if family == "all":
        return ALL_PARAMS
    if family not in FAMILIES:
        raise InputError(f"unknown family {family!r}: expected one of {', '.join(FAMILIES)}")
    return FAMILIES[family]


def visible_params(flavours_emitted, family: str = "charges") -> tuple:
    """Parameters of ``family`` that act on at least one emitted flavour.

    A pion-decay-at-rest source emits nu_e, nu_mu and anti-nu_mu: every
    parameter touching e or mu is visible, q_tautau is not.
    """
    seen = set(flavours_emitted)
    return tuple(p for p in family_params(family) if acts_on(p) & seen)


def display_scale(name: str) -> float:
    """Power of ten that intervals of ``name`` are printed in."""
    return SPEC[name].scale


def scale_label(name: str) -> str:
    """The display unit of ``name`` as text, e.g. ``1e-9 e`` (``1`` for dimensionless values)."""
    exp = round(math.log10(SPEC[name].scale))
    if exp == 0:
        return SPEC[name].unit
    return f"1e{exp} {SPEC[name].unit}"


def default_range(name: str, config=None) -> tuple:
    """Default scan range (lo, hi) of ``name``: the configuration's (``analysis.ranges``)
    for a charge, else the one here."""
    p = SPEC[name]
    if p.scan_range is None:
        if config is None:
            raise InputError(f"no default range for {name}: give one")
        return tuple(config.analysis.ranges[name])
    return tuple(p.scan_range)


def unit(name: str) -> str:
    """Unit of ``name``'s values."""
    return SPEC[name].unit


def tex(name: str) -> str:
    """LaTeX symbol of ``name`` (without dollar signs)."""
    return SPEC[name].tex
