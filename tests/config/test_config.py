"""Tests of mcscan.config.load: the built-in ESS configuration, TOML overrides, errors.

Reference values are docs/physics.md section 2-6 (the detector table of section 5
and the statistics of section 6), not mcscan's own output.
"""

from __future__ import annotations

import json
import math

import pytest

from mcscan.config.load import (
    CHANNELS,
    PARAMS,
    config_hash,
    load_config,
    table_config,
)
from mcscan.errors import ConfigError, McscanError


@pytest.fixture(scope="module")
def builtin():
    return load_config()


def _write(tmp_path, text, name="user.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------- built-in


def test_builtin_resolves(builtin):
    assert set(builtin.detectors) == {"CsI", "Xe", "Ge"}
    assert PARAMS == ("q_ee", "q_mumu", "q_tautau", "q_emu", "q_etau", "q_mutau")
    assert CHANNELS == ("nuclear", "electron")
    # docs/physics.md section 6, detector table: mass (kg), threshold (keV), sigma0,
    # background (counts / keV kg day), bins (start, width, count).
    # Channels: docs/physics.md section 5 (CsI sees EvES too).
    expected = {
        "CsI": (22.5, 1.0, 0.30, 10.0, 1.0, 2.5, 16, ("nuclear", "electron")),
        "Xe": (20.0, 0.9, 0.36, 10.0, 0.9, 1.0, 40, ("nuclear",)),
        "Ge": (7.0, 0.6, 0.09, 3.0, 0.6, 1.0, 40, ("nuclear",)),
    }
    for name, (mass, thr, sigma0, bkg, start, width, count, chans) in expected.items():
        det = builtin.detector(name)
        # Values are copied from the TOML file: exact.
        assert (det.mass_kg, det.threshold_kev, det.sigma0, det.background_ckkd) == (
            mass, thr, sigma0, bkg)
        assert len(det.edges_kev) == count + 1
        for i, e in enumerate(det.edges_kev):
            # Edges are start + width * i: one rounding, abs 1e-12 keV.
            assert e == pytest.approx(start + width * i, abs=1e-12)
        assert det.channels == chans
        assert det.threshold_kev == det.edges_kev[0]
    # docs/physics.md section 8: pull widths 0.10 and 0.01; default C.L. 90% (values exact).
    assert builtin.analysis.signal_pull == 0.10
    assert builtin.analysis.background_pull == 0.01
    assert builtin.analysis.cl == 0.90
    assert set(builtin.analysis.ranges) == set(PARAMS)
    for lo, hi in builtin.analysis.ranges.values():
        assert lo < 0.0 < hi


def test_builtin_is_json_and_hash_is_stable(builtin):
    d = builtin.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    again = load_config()
    for name in builtin.detectors:
        h = config_hash(table_config(builtin, name))
        assert len(h) == 64
        assert h == config_hash(table_config(again, name))
    hashes = {config_hash(table_config(builtin, n)) for n in builtin.detectors}
    assert len(hashes) == 3


def test_unknown_detector_lookup(builtin):
    with pytest.raises(ConfigError, match="unknown detector 'Gee'.*did you mean 'Ge'"):
        builtin.detector("Gee")


# --------------------------------------------------------------- overrides


def test_toml_overrides(tmp_path, builtin):
    path = _write(tmp_path, """
[analysis]
cl = 0.95

[numerics]
scan_points = 101

[detectors.Ge]
mass_kg = 10.0

[detectors.Xe.bins]
count = 20
""")
    cfg = load_config(path)
    # Overridden values are copied: exact.
    assert cfg.analysis.cl == 0.95
    assert cfg.numerics.scan_points == 101
    assert cfg.detector("Ge").mass_kg == 10.0
    # A partial [bins] table merges into the built-in one.
    xe = cfg.detector("Xe")
    assert len(xe.edges_kev) == 21
    assert xe.edges_kev[0] == builtin.detector("Xe").edges_kev[0]
    # Everything else keeps its built-in value.
    assert cfg.analysis.signal_pull == builtin.analysis.signal_pull
    assert cfg.detector("Ge").threshold_kev == builtin.detector("Ge").threshold_kev
    assert cfg.detector("CsI") == builtin.detector("CsI")
    # Only tables that depend on a changed value change their hash.
    assert config_hash(table_config(cfg, "CsI")) == config_hash(table_config(builtin, "CsI"))
    assert config_hash(table_config(cfg, "Ge")) != config_hash(table_config(builtin, "Ge"))
    assert config_hash(table_config(cfg, "Xe")) != config_hash(table_config(builtin, "Xe"))


def test_scan_settings_do_not_change_table_hash(tmp_path, builtin):
    cfg = load_config(_write(tmp_path, "[numerics]\nscan_points = 11\nnewton_tol = 1e-12\n"))
    for name in builtin.detectors:
        assert config_hash(table_config(cfg, name)) == config_hash(table_config(builtin, name))


def test_threshold_below_first_edge_accepted(tmp_path):
    # Bins may start above the threshold (they must not start below it).
    cfg = load_config(_write(tmp_path, "[detectors.Ge]\nthreshold_kev = 0.3\n"))
    assert cfg.detector("Ge").threshold_kev == 0.3
    assert cfg.detector("Ge").edges_kev[0] == 0.6


def test_example_configuration_loads():
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "tables" / "example.toml"
    cfg = load_config(example)
    assert cfg.source.years == 5.0
    assert cfg.detector("Ge").threshold_kev == 0.3 and cfg.detector("Ge").edges_kev[0] == 0.3
    assert cfg.detector("Ar").edges_kev == (20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 120.0)


def test_edges_override_replaces_bins(tmp_path):
    cfg = load_config(_write(tmp_path, """
[detectors.Ge]
edges_kev = [1.0, 2.0, 4.0, 8.0]
threshold_kev = 1.0
"""))
    assert cfg.detector("Ge").edges_kev == (1.0, 2.0, 4.0, 8.0)


def test_dict_overrides_and_new_detector(tmp_path):
    cfg = load_config(overrides={"detectors": {"Ar": {
        "composition": {"Ar": 1}, "rms_radius_fm": {"Ar": 3.43}, "mass_kg": 24.0,
        "threshold_kev": 20.0, "sigma0": 0.5, "background_ckkd": 1.0,
        "bins": {"start_kev": 20.0, "width_kev": 5.0, "count": 10},
        "channels": ["nuclear"], "efficiency": {"nuclear": 0.5}, "quenching_factor": 0.25,
    }}})
    assert set(cfg.detectors) == {"CsI", "Xe", "Ge", "Ar"}
    assert cfg.detector("Ar").edges_kev[-1] == pytest.approx(70.0, abs=1e-12)  # 20 + 10 x 5 keV
    with pytest.raises(ConfigError, match=r"detectors\.Ar: missing key\(s\).*mass_kg"):
        load_config(overrides={"detectors": {"Ar": {
            "composition": {"Ar": 1}, "rms_radius_fm": {"Ar": 3.43},
            "threshold_kev": 20.0, "sigma0": 0.5, "background_ckkd": 1.0,
            "bins": {"start_kev": 20.0, "width_kev": 5.0, "count": 10},
            "channels": ["nuclear"], "efficiency": {"nuclear": 0.5}, "quenching_factor": 0.25,
        }}})


# --------------------------------------------------------------- errors

# (TOML text, regular expression the one-line message must match)
BAD = {
    "unknown key": ("[detectors.Ge]\nmas_kg = 5.0\n", r"mas_kg.*did you mean 'mass_kg'"),
    "unknown section": ("[analysys]\ncl = 0.9\n", r"analysys.*did you mean 'analysis'"),
    "unknown numerics key": ("[numerics]\nnewton_toll = 1e-10\n",
                             r"numerics\.newton_toll.*did you mean 'newton_tol'"),
    "negative mass": ("[detectors.Ge]\nmass_kg = -7.0\n", r"detectors\.Ge\.mass_kg"),
    "zero mass": ("[detectors.Ge]\nmass_kg = 0.0\n", r"detectors\.Ge\.mass_kg"),
    "zero efficiency": ("[detectors.Ge]\nefficiency = { nuclear = 0.0 }\n",
                        r"detectors\.Ge\.efficiency\.nuclear"),
    "efficiency above 1": ("[detectors.Ge]\nefficiency = { nuclear = 1.5 }\n",
                           r"detectors\.Ge\.efficiency\.nuclear"),
    "repeated edge": ("[detectors.Ge]\nedges_kev = [0.6, 2.0, 2.0, 5.0]\n",
                      r"detectors\.Ge.*edges.*increase"),
    "decreasing edges": ("[detectors.Ge]\nedges_kev = [0.6, 3.0, 2.0, 5.0]\n",
                         r"detectors\.Ge.*edges.*increase"),
    "zero bin width": ("[detectors.Ge.bins]\nwidth_kev = 0.0\n", r"detectors\.Ge\.bins\.width_kev"),
    "threshold above bins": ("[detectors.Ge]\nthreshold_kev = 50.0\n", r"detectors\.Ge\.threshold_kev"),
    "threshold at last edge": ("[detectors.Ge]\nthreshold_kev = 40.6\n",
                               r"detectors\.Ge\.threshold_kev"),
    "threshold inside first bin": ("[detectors.Ge]\nthreshold_kev = 0.7\n", r"detectors\.Ge\.threshold_kev"),
    "zero signal pull": ("[analysis]\nsignal_pull = 0.0\n", r"analysis\.signal_pull"),
    "negative background pull": ("[analysis]\nbackground_pull = -0.01\n",
                                 r"analysis\.background_pull"),
    "cl zero": ("[analysis]\ncl = 0.0\n", r"analysis\.cl"),
    "cl one": ("[analysis]\ncl = 1.0\n", r"analysis\.cl"),
    "cl above one": ("[analysis]\ncl = 1.5\n", r"analysis\.cl"),
    "cl negative": ("[analysis]\ncl = -0.9\n", r"analysis\.cl"),
    "unknown element": ("[detectors.Ge]\ncomposition = { Xx = 1 }\nrms_radius_fm = { Xx = 4.0 }\n",
                        r"detectors\.Ge\.composition.*'Xx'"),
    "radius of missing element": ("[detectors.Ge]\ncomposition = { Ge = 1, Si = 1 }\n",
                                  r"detectors\.Ge\.rms_radius_fm.*'Si'"),
    "unknown channel": ("[detectors.Ge]\nchannels = ['nuclear', 'electrn']\n",
                        r"detectors\.Ge\.channels.*'electrn'.*did you mean 'electron'"),
    "string for number": ("[detectors.Ge]\nmass_kg = \"7\"\n",
                          r"detectors\.Ge\.mass_kg = '7': expected a number"),
    "bool for number": ("[detectors.Ge]\nmass_kg = true\n", r"detectors\.Ge\.mass_kg.*expected a number"),
    "fractional integer": ("[numerics]\ngauss_order = 2.5\n", r"numerics\.gauss_order.*whole number"),
    "string for list": ("[detectors.Ge]\nedges_kev = \"1, 2, 3\"\n", r"detectors\.Ge\.edges_kev"),
    "nan mass": ("[detectors.Ge]\nmass_kg = nan\n", r"detectors\.Ge\.mass_kg.*finite"),
    "inf mass": ("[detectors.Ge]\nmass_kg = inf\n", r"detectors\.Ge\.mass_kg.*finite"),
    "nan cl": ("[analysis]\ncl = nan\n", r"analysis\.cl.*finite"),
    "inf pull": ("[analysis]\nsignal_pull = +inf\n", r"analysis\.signal_pull.*finite"),
    "nan threshold": ("[detectors.Ge]\nthreshold_kev = nan\n", r"detectors\.Ge\.threshold_kev.*finite"),
    "inf edge": ("[detectors.Ge]\nedges_kev = [0.6, 2.0, inf]\n", r"detectors\.Ge\.edges_kev\[2\].*finite"),
    "-inf range": ("[analysis.ranges]\nq_ee = [-inf, 6e-8]\n", r"analysis\.ranges\.q_ee.*finite"),
    "reversed range": ("[analysis.ranges]\nq_emu = [3e-7, -3e-7]\n", r"analysis\.ranges\.q_emu.*low < high"),
    "nan background": ("[detectors.Ge]\nbackground_ckkd = nan\n", r"detectors\.Ge\.background_ckkd.*finite"),
}


@pytest.mark.parametrize("text, pattern", list(BAD.values()), ids=list(BAD))
def test_bad_value_names_key(tmp_path, text, pattern):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=pattern) as info:
        load_config(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert isinstance(info.value, McscanError)


def test_bad_toml_syntax(tmp_path):
    path = _write(tmp_path, "[detectors.Ge\nmass_kg = \n", name="broken.toml")
    with pytest.raises(ConfigError, match="broken.toml.*not valid TOML") as info:
        load_config(path)
    assert "\n" not in str(info.value)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes("[source]\nname = \"Sp\xe4llation\"\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="latin1.toml"):
        load_config(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.toml.*not found"):
        load_config(tmp_path / "nope.toml")


def test_folder_is_not_a_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path)


def test_config_errors_are_value_errors():
    assert issubclass(ConfigError, ValueError)
    assert issubclass(ConfigError, McscanError)


def test_overrides_error_names_key():
    with pytest.raises(ConfigError, match=r"detectors\.Ge\.quenching_factor"):
        load_config(overrides={"detectors": {"Ge": {"quenching_factor": math.nan}}})


_AR = """
[detectors.Ar]
composition = { Ar = 1 }
rms_radius_fm = { Ar = 3.43 }
mass_kg = 24.0
threshold_kev = 20.0
sigma0 = 0.58
background_ckkd = 1.0
channels = ["nuclear"]
efficiency = { nuclear = 0.80 }
quenching_factor = 1.0
"""


def test_new_detector_with_bins_and_edges_refused(tmp_path):
    path = _write(tmp_path, _AR + "edges_kev = [20.0, 30.0, 40.0]\n"
                  "bins = { start_kev = 20.0, width_kev = 1.0, count = 10 }\n")
    with pytest.raises(ConfigError, match=r"detectors\.Ar: give either 'bins' or 'edges_kev'"):
        load_config(path)


def test_builtin_detector_with_bins_and_edges_refused(tmp_path):
    path = _write(tmp_path, "[detectors.Ge]\nedges_kev = [0.6, 1.0, 2.0]\n"
                  "bins = { start_kev = 0.6, width_kev = 1.0, count = 10 }\n")
    with pytest.raises(ConfigError, match=r"detectors\.Ge: give either 'bins' or 'edges_kev'"):
        load_config(path)
