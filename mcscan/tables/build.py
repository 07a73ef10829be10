"""Response-table builder: configuration -> per-bin rate components.

Pure computation, no file I/O (see :mod:`mcscan.io.tables` for that).  For each
channel, beam component c and reco bin i it integrates

    N_ci = eps * n_targets * Phi * Int dT P_i(T) Int dE f_c(E) dsigma/dT(E, T)

for the three pieces of dsigma/dT (SM, interference, pure EM; docs/physics.md
section 7).  The E integral is closed-form (:func:`mcscan.physics.cevns.folded_components`);
the T integral is a Gauss-Legendre rule on a grid uniform in sqrt(T) with
panel edges at every kinematic end point (:func:`mcscan.physics.response.true_grid`).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from tqdm.auto import tqdm

from .. import budget
from ..config.load import Config, config_hash, table_config
from ..errors import ConfigError, TableError
from ..physics import eves
from ..physics import flux
from ..physics.flux import fluence_per_flavour, live_days, spectrum
from ..physics.nuclei import nuclides, targets_per_kg
from ..physics.response import (EmptyGridError, background_counts, bin_probability, true_grid,
                                true_grid_size)
from ..physics.cevns import folded_components, t_max
from .types import ChannelTable, ResponseTable

__all__ = ["ChannelTable", "ResponseTable", "build_table", "PIECES"]

#: The three rate pieces stored per component and bin.
PIECES = ("S", "I", "E")
_KEV = 1e-3  # MeV per keV


def _grid(config: Config, det, channel: str, t_cap: float, breakpoints, limits) -> tuple:
    """The true-energy grid of one channel, refused up front if it exceeds the budgets.

    ``limits`` is (max_grid_points, max_memory_gib), None for the defaults of
    :mod:`mcscan.budget`.
    """
    num = config.numerics
    kw = dict(step_sigma=num.grid_step_sigma, order=num.gauss_order, n_sigma=num.n_sigma,
              t_cap=t_cap, breakpoints=breakpoints)
    nbins = len(det.edges_kev) - 1
    try:
        size = true_grid_size(det.edges_kev, det.sigma0, det.threshold_kev, **kw)
        what = f"the {channel} table of {det.name}"
        max_points, max_gib = limits
        budget.check_points(what, size, budget.MAX_TABLE_GRID_POINTS if max_points is None
                            else max_points, option="max_grid_points", unit="true-energy grid points")
        # smearing matrix and its temporaries (~10 arrays of (nbins + 1) x nT), the
        # neutrino-energy quadrature of the electron channel (nT x 64, a few arrays)
        budget.check_memory(what, budget.grid_memory_bytes(size, copies=10 * (nbins + 1) + 6 * _E_ORDER
                                                           + 20), max_gib)
        return true_grid(det.edges_kev, det.sigma0, det.threshold_kev, **kw)
    except EmptyGridError:
        raise ConfigError(
            f"detectors.{det.name}: no {channel} recoil reaches the bins "
            f"[{det.edges_kev[0]:g}, {det.edges_kev[-1]:g}] keV: the largest recoil energy the source "
            f"can produce is {t_cap:.4g} keV (on the reco scale): expected bins below it") from None


def _finite(det, ch: ChannelTable) -> ChannelTable:
    """Refuse a channel table with a non-finite entry (an absurd input got through)."""
    for name in ("true_kev", "weights_kev", "smearing", "density", "counts"):
        if not np.all(np.isfinite(getattr(ch, name))):
            raise TableError(f"the {ch.name} table of {det.name} has non-finite {name}: "
                             f"check the detector's and the source's values")
    return ch


def _nuclear(config: Config, det, progress: bool, limits=(None, None)) -> ChannelTable:
    phys = config.physics
    nucs = nuclides(det.composition, det.rms_radius_fm)
    # kinematic end points of every component on every nuclide (keV)
    ends = [float(t_max(c.e_max, n.mass)) / _KEV for n in nucs for c in flux.COMPONENTS]
    T, w = _grid(config, det, "nuclear", max(ends), ends, limits)
    eff = det.efficiency["nuclear"]
    scale = eff * det.mass_kg * targets_per_kg(det.composition) * fluence_per_flavour(config.source) * _KEV
    density = np.zeros((len(flux.COMPONENTS), 3, T.size))
    todo = [(n, ic, c) for n in nucs for ic, c in enumerate(flux.COMPONENTS)]
    for n, ic, c in tqdm(todo, desc=f"{det.name} nuclear", disable=not progress, leave=False):
        pieces = folded_components(T * _KEV, n, c, phys.sin2_theta_w, phys.helm_skin_fm)
        density[ic] += n.per_unit * np.stack(pieces)
    with np.errstate(all="ignore"):
        density *= scale
    P = bin_probability(T, det.edges_kev, det.sigma0, det.threshold_kev)
    with np.errstate(all="ignore"):
        counts = np.einsum("ij,cpj->cpi", P * w[None, :], density)
    return _finite(det, ChannelTable("nuclear", T, w, P, density, counts, eff))


def _electron_folded(Te, component, sin2w: float, order: int):
    """Int dE f(E) dsigma/dT_e per free electron for one beam component.

    Returns (3, nT) pieces in cm^2/MeV; Gauss-Legendre in E on
    [E_min(T_e), E_max] (the integrand is smooth there).
    """
    gV, gA = eves.couplings(component.flavour, component.antineutrino, sin2w)
    if component.is_line:
        return np.stack(eves.dsigma_components(component.e_max, Te, gV, gA))
    emin = eves.e_min(Te)
    x, w = np.polynomial.legendre.leggauss(order)
    lo = np.minimum(emin, component.e_max)[:, None]
    half = 0.5 * (component.e_max - lo)
    E = lo + half * (x[None, :] + 1.0)
    wE = half * w[None, :] * spectrum(component, E)
    pieces = eves.dsigma_components(E, np.broadcast_to(Te[:, None], E.shape), gV, gA)
    return np.stack([(p * wE).sum(-1) for p in pieces])


def _electron(config: Config, det, progress: bool, limits=(None, None)) -> ChannelTable:
    """Neutrino-electron scattering on the atomic electrons (docs/physics.md section 5).

    Integrated in the electron recoil T_e = QF * T (T on the nuclear-recoil
    scale, where smearing and bins act); Z_eff(T_e) counts the electrons
    bound by less than T_e, so every atomic edge is a panel edge.
    """
    from ..physics import atomic   # atomic data are needed for this channel only

    qf = det.quenching_factor
    comp = dict(det.composition)
    kin_ends = [float(eves.t_max(c.e_max)) / _KEV / qf for c in flux.COMPONENTS]
    atomic_edges = list(atomic.edges(comp) / _KEV / qf)
    T, w = _grid(config, det, "electron", max(kin_ends), kin_ends + atomic_edges, limits)
    Te = T * qf * _KEV                                         # MeV
    zeff = atomic.z_eff(Te, comp)
    eff = det.efficiency["electron"]
    # counts per keV on the nuclear-recoil scale: dT_e/dT = QF
    scale = (eff * det.mass_kg * targets_per_kg(det.composition) * fluence_per_flavour(config.source)
             * _KEV * qf)
    density = np.zeros((len(flux.COMPONENTS), 3, T.size))
    for ic, c in enumerate(tqdm(flux.COMPONENTS, desc=f"{det.name} electron", disable=not progress,
                                leave=False)):
        density[ic] = _electron_folded(Te, c, config.physics.sin2_theta_w, _E_ORDER) * zeff
    with np.errstate(all="ignore"):
        density *= scale
    P = bin_probability(T, det.edges_kev, det.sigma0, det.threshold_kev)
    with np.errstate(all="ignore"):
        counts = np.einsum("ij,cpj->cpi", P * w[None, :], density)
    return _finite(det, ChannelTable("electron", T, w, P, density, counts, eff))


def _family_pairs(config: Config, det, ch: ChannelTable) -> np.ndarray:
    """Counts of the quadratic-form entries of every parameter family (docs/physics.md section 11).

    Same true-energy nodes, weights, smearing and normalisation as the channel's
    S, I, E (which stay as they are); per nuclide the entries carry that nuclide's
    Z, N and M, so sums over isotopes recombine exactly.
    """
    from ..physics import families

    phys = config.physics
    T = ch.true_kev
    ncomp = len(flux.COMPONENTS)
    density = np.zeros((ncomp, len(families.pairs(ch.name)), T.size))
    units_fluence = det.mass_kg * targets_per_kg(det.composition) * fluence_per_flavour(config.source)
    if ch.name == "nuclear":
        for n in nuclides(det.composition, det.rms_radius_fm):
            for ic, c in enumerate(flux.COMPONENTS):
                density[ic] += n.per_unit * families.folded_pairs_nuclear(
                    T * _KEV, n, c, phys.sin2_theta_w, phys.helm_skin_fm)
        density *= ch.efficiency * units_fluence * _KEV
    else:
        from ..physics import atomic

        qf = det.quenching_factor
        Te = T * qf * _KEV
        zeff = atomic.z_eff(Te, dict(det.composition))
        for ic, c in enumerate(flux.COMPONENTS):
            density[ic] = families.folded_pairs_electron(Te, c, phys.sin2_theta_w, _E_ORDER) * zeff
        density *= ch.efficiency * units_fluence * _KEV * qf
    pairs = np.einsum("ij,cpj->cpi", ch.smearing * ch.weights_kev[None, :], density)
    if not np.all(np.isfinite(pairs)):
        raise TableError(f"the {ch.name} table of {det.name} has non-finite family entries: "
                         "check the detector's and the source's values")
    return pairs


#: Gauss-Legendre order of the neutrino-energy integral of the electron channel.
_E_ORDER = 64

_CHANNEL_BUILDERS = {"nuclear": _nuclear, "electron": _electron}


def build_table(config: Config, detector: str, *, progress: bool = False,
                max_grid_points: float | None = None, max_memory_gib: float | None = None
                ) -> ResponseTable:
    """Integrate flux x cross section x response for one detector.

    Parameters
    ----------
    config : Config
    detector : str
        Name of a detector in ``config``.
    progress : bool
        Show a progress bar.
    max_grid_points, max_memory_gib : float, optional
        Budgets of the true-energy grid of a channel (default 1e7 points) and of
        the memory its integration takes (default 4 GiB): a table beyond them is
        refused before anything is computed (:mod:`mcscan.budget`).

    Returns
    -------
    ResponseTable

    Raises
    ------
    ConfigError
        No recoil reaches the detector's bins.
    InputError
        The table would exceed a budget.
    TableError
        An entry of the table came out non-finite.
    """
    det = config.detector(detector)
    limits = (max_grid_points, max_memory_gib)
    channels = {}
    for ch in det.channels:
        channels[ch] = _CHANNEL_BUILDERS[ch](config, det, progress, limits)
        channels[ch] = replace(channels[ch], pairs=_family_pairs(config, det, channels[ch]))
    tc = table_config(config, detector)
    with np.errstate(all="ignore"):
        background = background_counts(det.edges_kev, det.background_ckkd, det.mass_kg,
                                       live_days(config.source))
    if not np.all(np.isfinite(background)):
        raise TableError(f"the background of {det.name} is not finite: check background_ckkd, "
                         f"mass_kg and the source's exposure")
    return ResponseTable(
        detector=det.name,
        edges_kev=np.asarray(det.edges_kev, dtype=float),
        background=background,
        channels=channels,
        components=tuple(c.name for c in flux.COMPONENTS),
        flavours=tuple(c.flavour for c in flux.COMPONENTS),
        antineutrino=tuple(c.antineutrino for c in flux.COMPONENTS),
        config=tc,
        config_hash=config_hash(tc),
    )
