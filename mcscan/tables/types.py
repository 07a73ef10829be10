"""Data types of a response table (what :mod:`mcscan.tables.build` produces and
:mod:`mcscan.io.tables` reads and writes)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from ..config.load import SCHEMA_VERSION

__all__ = ["ChannelTable", "ResponseTable"]


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
