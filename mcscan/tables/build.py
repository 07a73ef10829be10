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

from dataclasses import dataclass, field, replace

import numpy as np
from tqdm.auto import tqdm

from .. import __version__
from ..config.load import SCHEMA_VERSION, Config, config_hash, table_config
from ..physics import eves
from ..physics import flux
from ..physics.flux import fluence_per_flavour, live_days, spectrum
from ..physics.nuclei import nuclides, targets_per_kg
from ..physics.response import background_counts, bin_probability, true_grid
from ..physics.cevns import folded_components, t_max

__all__ = ["ChannelTable", "ResponseTable", "build_table", "PIECES"]

#: The three rate pieces stored per component and bin.
PIECES = ("S", "I", "E")
_KEV = 1e-3  # MeV per keV


@dataclass(frozen=True)
class ChannelTable:
    """Rate components of one detection channel.

    Attributes
    ----------
    true_kev : (nT,) true-energy nodes on the reco (keVnr) scale
    weights_kev : (nT,) quadrature weights, keV
    smearing : (nbins, nT) probability of reco bin i for true energy T_j
    density : (ncomp, 3, nT) S, I, E rate densities, counts per keV (true)
    counts : (ncomp, 3, nbins) S, I, E counts per reco bin
    efficiency : float
    pairs : (ncomp, npairs, nbins) counts of the entries of the quadratic form of
        the other parameter families (:func:`mcscan.physics.families.pairs`), or None
    """

    name: str
    true_kev: np.ndarray
    weights_kev: np.ndarray
    smearing: np.ndarray
    density: np.ndarray
    counts: np.ndarray
    efficiency: float
    pairs: np.ndarray | None = None


@dataclass(frozen=True)
class ResponseTable:
    """Everything a scan needs for one detector, with its provenance."""

    detector: str
    edges_kev: np.ndarray
    background: np.ndarray
    channels: dict
    components: tuple
    flavours: tuple
    antineutrino: tuple
    config: dict
    config_hash: str
    schema_version: int = SCHEMA_VERSION
    mcscan_version: str = __version__
    meta: dict = field(default_factory=dict)


def _nuclear(config: Config, det, progress: bool) -> ChannelTable:
    phys, num = config.physics, config.numerics
    nucs = nuclides(det.composition, det.rms_radius_fm)
    # kinematic end points of every component on every nuclide (keV)
    ends = [float(t_max(c.e_max, n.mass)) / _KEV for n in nucs for c in flux.COMPONENTS]
    T, w = true_grid(det.edges_kev, det.sigma0, det.threshold_kev,
                     step_sigma=num.grid_step_sigma, order=num.gauss_order,
                     n_sigma=num.n_sigma, t_cap=max(ends), breakpoints=ends)
    eff = det.efficiency["nuclear"]
    scale = eff * det.mass_kg * targets_per_kg(det.composition) * fluence_per_flavour(config.source) * _KEV
    density = np.zeros((len(flux.COMPONENTS), 3, T.size))
    todo = [(n, ic, c) for n in nucs for ic, c in enumerate(flux.COMPONENTS)]
    for n, ic, c in tqdm(todo, desc=f"{det.name} nuclear", disable=not progress, leave=False):
        pieces = folded_components(T * _KEV, n, c, phys.sin2_theta_w, phys.helm_skin_fm)
        density[ic] += n.per_unit * np.stack(pieces)
    density *= scale
    P = bin_probability(T, det.edges_kev, det.sigma0, det.threshold_kev)
    counts = np.einsum("ij,cpj->cpi", P * w[None, :], density)
    return ChannelTable("nuclear", T, w, P, density, counts, eff)


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


def _electron(config: Config, det, progress: bool) -> ChannelTable:
    """Neutrino-electron scattering on the atomic electrons (docs/physics.md section 5).

    Integrated in the electron recoil T_e = QF * T (T on the nuclear-recoil
    scale, where smearing and bins act); Z_eff(T_e) counts the electrons
    bound by less than T_e, so every atomic edge is a panel edge.
    """
    from ..physics import atomic   # atomic data are needed for this channel only

    qf = det.quenching_factor
    num = config.numerics
    comp = dict(det.composition)
    kin_ends = [float(eves.t_max(c.e_max)) / _KEV / qf for c in flux.COMPONENTS]
    atomic_edges = list(atomic.edges(comp) / _KEV / qf)
    T, w = true_grid(det.edges_kev, det.sigma0, det.threshold_kev,
                     step_sigma=num.grid_step_sigma, order=num.gauss_order,
                     n_sigma=num.n_sigma, t_cap=max(kin_ends),
                     breakpoints=kin_ends + atomic_edges)
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
    density *= scale
    P = bin_probability(T, det.edges_kev, det.sigma0, det.threshold_kev)
    counts = np.einsum("ij,cpj->cpi", P * w[None, :], density)
    return ChannelTable("electron", T, w, P, density, counts, eff)


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
    return np.einsum("ij,cpj->cpi", ch.smearing * ch.weights_kev[None, :], density)


#: Gauss-Legendre order of the neutrino-energy integral of the electron channel.
_E_ORDER = 64

_CHANNEL_BUILDERS = {"nuclear": _nuclear, "electron": _electron}


def build_table(config: Config, detector: str, *, progress: bool = False) -> ResponseTable:
    """Integrate flux x cross section x response for one detector.

    Parameters
    ----------
    config : Config
    detector : str
        Name of a detector in ``config``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    ResponseTable
    """
    det = config.detector(detector)
    channels = {}
    for ch in det.channels:
        channels[ch] = _CHANNEL_BUILDERS[ch](config, det, progress)
        channels[ch] = replace(channels[ch], pairs=_family_pairs(config, det, channels[ch]))
    tc = table_config(config, detector)
    return ResponseTable(
        detector=det.name,
        edges_kev=np.asarray(det.edges_kev, dtype=float),
        background=background_counts(det.edges_kev, det.background_ckkd, det.mass_kg,
                                     live_days(config.source)),
        channels=channels,
        components=tuple(c.name for c in flux.COMPONENTS),
        flavours=tuple(c.flavour for c in flux.COMPONENTS),
        antineutrino=tuple(c.antineutrino for c in flux.COMPONENTS),
        config=tc,
        config_hash=config_hash(tc),
    )
