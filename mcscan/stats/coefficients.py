"""Per-bin coefficients: a detector's response table collapsed for the chi2 kernels.

The counts per bin are written in terms of the parameters theta_k (order
:data:`mcscan.params.PARAMS`) as

    N_i(theta) = S_i + sum_k theta_k (L_ki + theta_k Q_ki),

where S is the SM count, L = 2 I of the flavour for a diagonal charge (0 for
a transition charge) and Q the matching E (a transition charge q_ab collects
the E of both flavours a and b).  There are no cross terms between charges
(docs/physics.md section 7).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import TableError
from ..params import FLAVOURS, PARAMS, charge_name

__all__ = ["Coefficients", "coefficients"]


@dataclass(frozen=True)
class Coefficients:
    """Per-bin polynomial coefficients of one detector (channels summed).

    Attributes
    ----------
    S : (nbins,) SM counts;  L, Q : (6, nbins);  B : (nbins,) background;
    D : (nbins,) Asimov data S + B.  All in counts.
    """

    detector: str
    channels: tuple
    S: np.ndarray
    L: np.ndarray
    Q: np.ndarray
    B: np.ndarray
    D: np.ndarray
    edges_kev: np.ndarray
    table_hash: str


def _param_index(a: str, b: str) -> int:
    return PARAMS.index(charge_name(a, b))


def coefficients(table, channels=("nuclear",)) -> Coefficients:
    """Collapse a ResponseTable's components into per-bin coefficients.

    Channels are summed bin by bin: a detector that cannot tell electron
    from nuclear recoils sees both in the same reco bins.
    """
    channels = tuple(channels)
    nb = table.edges_kev.size - 1
    S = np.zeros(nb)
    L = np.zeros((len(PARAMS), nb))
    Q = np.zeros((len(PARAMS), nb))
    for ch in channels:
        if ch not in table.channels:
            raise TableError(
                f"table for {table.detector} has no {ch!r} channel (it has "
                f"{', '.join(table.channels)}); enable it in the detector's 'channels' and "
                f"rebuild with 'mcscan build'"
            )
        cnt = table.channels[ch].counts
        for ic, fl in enumerate(table.flavours):
            s, i, e = cnt[ic]
            S += s
            d = _param_index(fl, fl)
            L[d] += 2.0 * i
            Q[d] += e
            for other in FLAVOURS:
                if other != fl:
                    Q[_param_index(fl, other)] += e
    B = np.asarray(table.background, dtype=float).copy()
    return Coefficients(table.detector, channels, S, L, Q, B, S + B,
                        np.asarray(table.edges_kev, dtype=float), table.config_hash)


