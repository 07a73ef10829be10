"""matplotlib figures (the only module that imports matplotlib, lazily).

Install with the ``plots`` extra: ``pip install -e ".[plots]"``.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["plot_xsec", "plot_profile"]


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        from .errors import McscanError

        raise McscanError("plotting needs matplotlib: pip install 'mcscan[plots]'") from None
    return plt


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=150, bbox_inches="tight")
    tmp.replace(path)
    return path


def plot_xsec(view, path):
    """dsigma/dT against recoil energy, SM and with charges (matplotlib)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    unit = "keVnr" if view.channel == "nuclear" else "keVee"
    ax.loglog(view.T_kev, view.sm, label="Standard Model", color="k")
    label = ", ".join(f"{k} = {v:.3g} e" for k, v in view.charges.items()) or "no charges"
    ax.loglog(view.T_kev, view.bsm, label=label, color="C3", ls="--")
    nu = ("anti-" if view.antineutrino else "") + {"e": "nu_e", "mu": "nu_mu", "tau": "nu_tau"}[view.flavour]
    ax.set_title(f"{view.target}, {view.channel} channel, {nu}, E = {view.enu_mev:g} MeV")
    ax.set_xlabel(f"recoil energy T [{unit}]")
    ax.set_ylabel(r"$d\sigma/dT$ [cm$^2$ / keV per formula unit]")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_profile(x, dchi2, level, path, *, label="", param="q"):
    """One Delta chi2 profile with its C.L. line (matplotlib)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot(x, dchi2, label=label)
    ax.axhline(level, color="k", ls=":", label=f"Delta chi2 = {level:.2f}")
    ax.set_xlabel(f"{param} [e]")
    ax.set_ylabel(r"$\Delta\chi^2$")
    ax.legend()
    out = _save(fig, path)
    plt.close(fig)
    return out
