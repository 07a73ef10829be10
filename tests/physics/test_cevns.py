"""The cross-section view (``mcscan xsec``) against closed forms."""
import json

import numpy as np
import pytest

from mcscan.cli.commands import main
from mcscan.config.load import load_config
from mcscan.physics.constants import ALPHA, HBARC2_MEV2_CM2, M_E
from mcscan.physics.spectra import xsec_view


@pytest.fixture(scope="module")
def cfg():
    return load_config()


def test_nuclear_view_cancellation_point(cfg):
    # Q_W + k(T) q_ee = 0 at one T for q_ee > 0 (Q_W < 0): the charged cross
    # section has a deep minimum there, while the SM one does not.
    v = xsec_view(cfg, "Cs", 40.0, "e", charges={"q_ee": 2e-8}, points=2000)
    ratio = v.bsm / np.where(v.sm > 0, v.sm, 1.0)
    k = int(np.argmin(np.where(v.sm > 0, ratio, np.inf)))
    assert ratio[k] < 1e-2          # deep cancellation (exact zero falls between grid points)
    assert ratio[0] > 10.0          # the 1/T^2 charge term overtakes at low T
    # the end point 2E^2/M of Cs-133 (the only Cs isotope), keV
    from mcscan.physics.nuclei import nuclides

    M = nuclides({"Cs": 1}, {"Cs": 4.83})[0].mass
    assert v.t_end_kev == pytest.approx(2 * 40.0**2 / M * 1e3, rel=1e-12)  # closed form


def test_electron_view_low_energy_limit(cfg):
    # For T << E the charge term is 2 pi alpha^2 q^2 Z_eff / (m_e T^2) (docs/physics.md section 5).
    q = 1e-9
    v = xsec_view(cfg, "CsI", 30.0, "mu", charges={"q_mumu": q}, channel="electron",
                  tmin_kev=2.0, tmax_kev=2.4, points=5)
    from mcscan.physics.atomic import z_eff

    T = v.T_kev * 1e-3
    em = 2 * np.pi * ALPHA**2 * q**2 * z_eff(T, {"Cs": 1, "I": 1}) / (M_E * T**2) * HBARC2_MEV2_CM2
    # bsm - sm = interference + EM; the interference is ~1e-3 of EM here, so 1e-2 tolerance
    np.testing.assert_allclose((v.bsm - v.sm) * 1e3, em, rtol=1e-2)


def test_cli_json_and_plot(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["xsec", "--target", "Ge", "--enu", "40", "--flavour", "e", "--param", "q_ee=2e-8",
                 "--points", "5", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["units"]["sm"] == "cm^2/keV per formula unit" and len(d["T_kev"]) == 5
    assert main(["xsec", "--target", "Ge", "--enu", "40", "--flavour", "e", "--out", "x.png"]) == 0
    assert (tmp_path / "x.png").stat().st_size > 1000


@pytest.mark.parametrize("argv, word", [
    (["--target", "Xx", "--enu", "40", "--flavour", "e"], "Xx"),
    (["--target", "Ge", "--enu", "-4", "--flavour", "e"], "neutrino energy"),
    (["--target", "Ge", "--enu", "40", "--flavour", "e", "--param", "q_xx=1"], "q_xx"),
    (["--target", "Ge", "--enu", "40", "--flavour", "e", "--tmin", "5", "--tmax", "1"], "tmin"),
    (["--target", "Ge", "--enu", "40", "--flavour", "e", "--out", "x.txt"], "--out"),
])
def test_cli_bad_input(argv, word, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(["xsec", *argv])
    except SystemExit as exc:   # argparse-level errors exit directly
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0]
    assert list(tmp_path.iterdir()) == []
