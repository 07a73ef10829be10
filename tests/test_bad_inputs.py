"""Every input, however absurd, gets one clear line and never a wrong number.

Grouped by category: configuration values, detector names, inputs that used to
crash, budgets, non-finite numbers, library values (C.L., ranges, charges),
command-line values, and parameters the source cannot constrain.  Each case
checks the exception class, that the message is one line naming the value and
what was expected, and (at command level) the exit status, a single line on
stderr without a traceback, and that no file is left behind.
"""
from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

from mcscan import budget
from mcscan.config.load import load_config
from mcscan.errors import ConfigError, InputError, McscanError, TableError
from mcscan.physics.spectra import xsec_view
from mcscan.scans.limits import (CL_RANGE, MAX_CHARGE, MIN_SPAN, check_finite_chi2, delta_chi2_level,
                                 limit_1d)
from mcscan.scans.profile import profiled_chi2
from mcscan.scans.regions import region_2d
from mcscan.tables.build import build_table


def _one_line(exc, *words):
    msg = str(exc)
    assert msg and "\n" not in msg and "Traceback" not in msg
    for w in words:
        assert w in msg, (w, msg)
    return msg


# ------------------------------------------------------------ configuration values
# (overrides, words the one-line message must hold: the key, the value, the range)

CONFIG_VALUES = {
    "background 1e300": ({"detectors": {"Ge": {"background_ckkd": 1e300}}},
                         ("detectors.Ge.background_ckkd", "1e+300", "[0, 1e+06]")),
    "negative background": ({"detectors": {"Ge": {"background_ckkd": -1.0}}},
                            ("detectors.Ge.background_ckkd", "-1.0", "[0, 1e+06]")),
    "pot 1e308": ({"source": {"pot_per_year": 1e308}}, ("source.pot_per_year", "1e+308", "1e+26")),
    "pot 1e50": ({"source": {"pot_per_year": 1e50}}, ("source.pot_per_year", "1e+50", "1e+26")),
    "pot 1e160": ({"source": {"pot_per_year": 1e160}}, ("source.pot_per_year", "1e+160", "1e+26")),
    "pot tiny": ({"source": {"pot_per_year": 1e-300}}, ("source.pot_per_year", "1e-300", "[1e+10")),
    "pot huge integer": ({"source": {"pot_per_year": 10 ** 400}}, ("source.pot_per_year", "finite")),
    "mass 1e300": ({"detectors": {"Ge": {"mass_kg": 1e300}}}, ("detectors.Ge.mass_kg", "1e+300", "1e+06")),
    "mass tiny": ({"detectors": {"Xe": {"mass_kg": 1e-300}}}, ("detectors.Xe.mass_kg", "1e-300", "[1e-06")),
    "distance 1e-200": ({"source": {"distance_m": 1e-200}}, ("source.distance_m", "1e-200", "[1, 100000]")),
    "distance 1e9": ({"source": {"distance_m": 1e9}}, ("source.distance_m", "1000000000.0", "[1, 100000]")),
    "years 1e6": ({"source": {"years": 1e6}}, ("source.years", "1000000.0", "100]")),
    "zero years": ({"source": {"years": 0.0}}, ("source.years", "0.0", "[1e-06, 100]")),
    "neutrinos per pot 1e9": ({"source": {"nu_per_flavour_per_pot": 1e9}},
                              ("source.nu_per_flavour_per_pot", "1000000000.0", "10]")),
    "duty factor 2": ({"source": {"duty_factor": 2.0}}, ("source.duty_factor", "2.0", "1]")),
    "beam hours above a year": ({"source": {"beam_hours_per_year": 9000.0}},
                                ("source.beam_hours_per_year", "9000.0", "8784]")),
    "empty source name": ({"source": {"name": ""}}, ("source.name", "string")),
    "signal pull 1e-300": ({"analysis": {"signal_pull": 1e-300}},
                           ("analysis.signal_pull", "1e-300", "[1e-06, 10]")),
    "signal pull 1e300": ({"analysis": {"signal_pull": 1e300}},
                          ("analysis.signal_pull", "1e+300", "[1e-06, 10]")),
    "background pull 1e-9": ({"analysis": {"background_pull": 1e-9}},
                             ("analysis.background_pull", "1e-09", "[1e-06, 10]")),
    "background pull 100": ({"analysis": {"background_pull": 100.0}},
                            ("analysis.background_pull", "100.0", "[1e-06, 10]")),
    "cl 1e-320": ({"analysis": {"cl": 1e-320}}, ("analysis.cl", "[1e-06")),
    "cl 1 - 1e-12": ({"analysis": {"cl": 1.0 - 1e-12}}, ("analysis.cl", "0.999999999")),
    "sigma0 1e-6": ({"detectors": {"Ge": {"sigma0": 1e-6}}}, ("detectors.Ge.sigma0", "1e-06", "[0.001, 10]")),
    "sigma0 1e6": ({"detectors": {"Ge": {"sigma0": 1e6}}},
                   ("detectors.Ge.sigma0", "1000000.0", "[0.001, 10]")),
    "threshold 1e5 keV": ({"detectors": {"Ge": {"threshold_kev": 1e5}}},
                          ("detectors.Ge.threshold_kev", "100000.0", "10000]")),
    "grid step 1e-9": ({"numerics": {"grid_step_sigma": 1e-9}},
                       ("numerics.grid_step_sigma", "1e-09", "[0.01, 2]")),
    "newton tol 1e-300": ({"numerics": {"newton_tol": 1e-300}}, ("numerics.newton_tol", "1e-300", "[1e-15")),
    "100000 bins": ({"detectors": {"Ge": {"bins": {"count": 100_000}}}},
                    ("detectors.Ge.bins.count", "100000", "10000]")),
    "bins beyond 1e5 keV": ({"detectors": {"Ge": {"bins": {"width_kev": 1e4}}}},
                            ("detectors.Ge.bins", "400001 keV", "<= 100000 keV")),
    "edge 1e300": ({"detectors": {"Ge": {"edges_kev": [0.6, 2.0, 1e300]}}},
                   ("detectors.Ge.edges_kev[2]", "1e+300", "100000]")),
    "radius 1e308": ({"detectors": {"Ge": {"rms_radius_fm": {"Ge": 1e308}}}},
                     ("detectors.Ge.rms_radius_fm.Ge", "1e+308", "20]")),
    "radius below Helm skin": ({"detectors": {"Ge": {"rms_radius_fm": {"Ge": 1.0}}}},
                               ("detectors.Ge.rms_radius_fm.Ge", "1.0", "helm_skin_fm")),
    "Helm skin 1e3": ({"physics": {"helm_skin_fm": 1e3}}, ("physics.helm_skin_fm", "1000.0", "3]")),
    "weak angle 1": ({"physics": {"sin2_theta_w": 1.0}}, ("physics.sin2_theta_w", "1.0", "(0, 1)")),
    "quenching 1e-9": ({"detectors": {"Ge": {"quenching_factor": 1e-9}}},
                       ("detectors.Ge.quenching_factor", "1e-09", "[0.001, 1]")),
    "range 1e308": ({"analysis": {"ranges": {"q_ee": [-1e308, 1e308]}}},
                    ("analysis.ranges.q_ee", "1e+308", "[-1, 1]")),
    "range too narrow": ({"analysis": {"ranges": {"q_ee": [0.0, 1e-300]}}},
                         ("analysis.ranges.q_ee", "1e-30")),
    "atoms 1e9": ({"detectors": {"Ge": {"composition": {"Ge": 10 ** 9}}}},
                  ("detectors.Ge.composition.Ge", "1000000000", "1000]")),
}


@pytest.mark.parametrize("overrides, words", list(CONFIG_VALUES.values()), ids=list(CONFIG_VALUES))
def test_configuration_value_refused(overrides, words):
    with pytest.raises(ConfigError) as info:
        load_config(overrides=overrides)
    _one_line(info.value, *words, "expected")


def test_configuration_value_refused_from_toml(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[source]\npot_per_year = 1e308\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    _one_line(info.value, "source.pot_per_year", "1e+308", "[1e+10, 1e+26]")


@pytest.mark.parametrize("overrides", [
    {"source": {"pot_per_year": 1e26, "distance_m": 1.0, "years": 100.0}},
    {"detectors": {"Ge": {"mass_kg": 1e6, "background_ckkd": 1e6}}},
    {"analysis": {"signal_pull": 1e-6, "background_pull": 10.0}},
    {"source": {"pot_per_year": 1e10, "distance_m": 1e5, "years": 1e-6}},
], ids=["brightest", "heaviest", "extreme pulls", "faintest"])
def test_range_ends_give_finite_limits(overrides, tmp_path):
    # The ends of the accepted ranges still give finite tables and limits:
    # nothing accepted by validation produces NaN or [0, 0].
    cfg = load_config(overrides=overrides)
    table = build_table(cfg, "Ge")
    for ch in table.channels.values():
        assert np.all(np.isfinite(ch.counts))
    from mcscan.scans.grid import ScanSettings
    from mcscan.stats.reference import coefficients

    lim = limit_1d([coefficients(table)], "q_ee", xrange=cfg.analysis.ranges["q_ee"], points=101,
                   settings=ScanSettings.from_config(cfg))
    assert math.isfinite(lim.chi2_min) and lim.regions
    for lo, hi in lim.regions:
        assert math.isfinite(lo) and math.isfinite(hi) and lo < hi
    json.dumps(lim.to_json(), allow_nan=False)


def test_config_and_library_share_ranges():
    from mcscan import params
    from mcscan.config import load

    # one definition, in mcscan.params, used by the configuration and the commands
    assert load.CL_RANGE is params.CL_RANGE is CL_RANGE
    assert load.MAX_CHARGE is params.MAX_CHARGE is MAX_CHARGE
    assert load.MIN_SPAN is params.MIN_SPAN is MIN_SPAN


# ------------------------------------------------------------ detector names

BAD_NAMES = ["../../evil", "a/b", "", "1Ge", "Ge Det", "Ge.x", "x" * 65, "Gé"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=["dotdot", "slash", "empty", "digit first", "space", "dot",
                                                 "too long", "non-ascii"])
def test_detector_name_refused(name):
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"detectors": {name: {"mass_kg": 1.0}}})
    _one_line(info.value, "detector name", repr(name), "expected a letter")


def test_detector_name_refused_from_toml(tmp_path):
    path = tmp_path / "evil.toml"
    path.write_text('[detectors."../../evil"]\nmass_kg = 1.0\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    _one_line(info.value, "'../../evil'")


@pytest.mark.parametrize("name", ["Ar", "Ge_2", "CsI-low", "x1"])
def test_detector_names_accepted(name):
    det = {"composition": {"Ge": 1}, "rms_radius_fm": {"Ge": 4.06}, "mass_kg": 7.0, "threshold_kev": 0.6,
           "sigma0": 0.09, "background_ckkd": 3.0, "bins": {"start_kev": 0.6, "width_kev": 1.0, "count": 4},
           "channels": ["nuclear"], "efficiency": {"nuclear": 0.8}, "quenching_factor": 1.0}
    assert name in load_config(overrides={"detectors": {name: det}}).detectors


# ------------------------------------------------------------ configurations that used to crash

def test_element_without_stable_isotope():
    # was: ValueError 'max() arg is an empty sequence' while building the table
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"detectors": {"Ge": {"composition": {"Tc": 1}, "rms_radius_fm": {"Tc": 4.4}}}})
    _one_line(info.value, "detectors.Ge.composition", "Tc", "no stable isotope")


@pytest.mark.parametrize("start", [200.0, 86.0, 1e4])
def test_bins_above_kinematic_end_point(start):
    # was: ValueError 'empty true-energy range' (also through a sweep)
    bins = {"start_kev": start, "width_kev": 1.0, "count": 5}
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"detectors": {"Ge": {"threshold_kev": start, "bins": bins}}})
    msg = _one_line(info.value, "detectors.Ge", f"{start:g}", "largest recoil energy", "keV")
    assert "85.7" in msg          # Ge-70 recoil end point of a 52.8 MeV neutrino, keV


def test_empty_true_grid_named_in_build(config):
    # bins just below the end point but a cap of the smearing reach: the builder
    # names the detector and the end point instead of a bare ValueError
    from mcscan.physics.response import EmptyGridError, true_grid

    with pytest.raises(EmptyGridError):
        true_grid([100.0, 101.0], 0.1, 1.0, step_sigma=0.25, order=4, n_sigma=9.0, t_cap=50.0)
    from mcscan.tables import build

    det = dataclasses.replace(config.detectors["Ge"], edges_kev=(100.0, 101.0), threshold_kev=100.0)
    with pytest.raises(ConfigError) as info:
        build._grid(config, det, "nuclear", 20.0, [20.0], (None, None))
    _one_line(info.value, "detectors.Ge", "[100, 101] keV", "20 keV")


@pytest.mark.parametrize("kwargs, words", [
    ({"radius_fm": 1e308}, ("rms radius", "1e+308", "(0, 20] fm")),
    ({"radius_fm": -1.0}, ("rms radius", "-1.0", "(0, 20] fm")),
    ({"radius_fm": 0.5}, ("0.5", "Helm skin")),
    ({"enu_mev": 1e308}, ("neutrino energy", "1e+308", "MeV")),
    ({"enu_mev": math.nan}, ("neutrino energy", "nan", "finite")),
    ({"tmax_kev": 1e308}, ("recoil range", "1e+308", "tmax")),
    ({"tmin_kev": -math.inf}, ("lowest recoil energy", "-inf", "finite")),
    ({"charges": {"q_ee": 1e300}}, ("q_ee", "1e+300", "<= 1 e")),
    ({"charges": {"q_ee": math.inf}}, ("q_ee", "inf", "finite")),
    ({"points": 10 ** 9}, ("points", "1000000")),
], ids=["radius 1e308", "negative radius", "radius below skin", "enu 1e308", "enu nan", "tmax 1e308",
        "tmin -inf", "charge 1e300", "charge inf", "points 1e9"])
def test_xsec_values(config, kwargs, words):
    kw = {"enu_mev": 30.0, **kwargs}
    enu = kw.pop("enu_mev")
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no numpy warning before the error
        with pytest.raises(InputError) as info:
            xsec_view(config, "Ge", enu, "e", **kw)
    _one_line(info.value, *words, "expected")


@pytest.mark.parametrize("target, word", [("Tc", "no stable isotope"), ("Xx", "unknown element")])
def test_xsec_target(config, target, word):
    with pytest.raises(InputError) as info:
        xsec_view(config, target, 30.0, "e", radius_fm=4.0)
    _one_line(info.value, target, word)


# ------------------------------------------------------------ budgets

@pytest.mark.parametrize("args, words", [
    (("scan", 12.4, 4.0, "GiB", "max_memory_gib"), ("scan needs 12.4 GiB of memory", "budget 4 GiB",
                                                    "max_memory_gib")),
    (("scan", 30.0, 20.0, "GiB", "max_disk_gib"), ("30 GiB of disk", "budget 20 GiB", "max_disk_gib")),
    (("region", 2e8, 4e6, "points", "max_points"), ("2e+08 points", "budget 4e+06 points", "max_points")),
    (("sweep", 20_000, 10_000, "configurations", "max_configs"), ("20,000 configurations", "max_configs")),
    (("x", math.inf, 4.0, "GiB", "max_memory_gib"), ("unbounded",)),
    (("x", math.nan, 4.0, "points", "max_points"), ("unbounded",)),
], ids=["memory", "disk", "points", "configurations", "infinite need", "nan need"])
def test_check_budget_messages(args, words):
    with pytest.raises(InputError) as info:
        budget.check_budget(*args)
    _one_line(info.value, *words)


def test_check_budget_within():
    budget.check_budget("scan", 3.9, 4.0, "GiB", "max_memory_gib")
    budget.check_memory("scan", 1 << 20)
    assert budget.format_amount(1.3 * (1 << 40), "B") == "1.3 TiB"


def test_table_grid_budget_refused_up_front(config):
    # fine grid, fine resolution, many bins: every value in range, the product not
    cfg = load_config(overrides={"numerics": {"grid_step_sigma": 0.01},
                                 "detectors": {"Ge": {"sigma0": 0.001,
                                                      "bins": {"count": 10_000, "width_kev": 0.008}}}})
    with pytest.raises(InputError) as info:
        build_table(cfg, "Ge")
    _one_line(info.value, "nuclear table of Ge", "true-energy grid points", "budget 1e+07", "max_grid_points")


def test_table_memory_budget(config):
    cfg = load_config(overrides={"detectors": {"Ge": {"bins": {"count": 10_000, "width_kev": 0.008}}}})
    with pytest.raises(InputError) as info:
        build_table(cfg, "Ge", max_memory_gib=0.01)
    _one_line(info.value, "of memory", "max_memory_gib")


def test_table_grid_budget_raisable(config):
    with pytest.raises(InputError, match="max_grid_points"):
        build_table(config, "Ge", max_grid_points=100)


def test_region_points_budget(coefs):
    # was: accepted, then MemoryError
    with pytest.raises(InputError) as info:
        region_2d([coefs["Ge"]], ("q_ee", "q_mumu"), ranges=((-6e-8, 6e-8), (-6e-8, 6e-8)), points=14142)
    _one_line(info.value, "region of q_ee and q_mumu", "2e+08 points", "budget 4e+06 points", "max_points")


def test_region_memory_budget(coefs):
    with pytest.raises(InputError) as info:
        region_2d([coefs["Ge"]], ("q_ee", "q_mumu"), ranges=((-6e-8, 6e-8), (-6e-8, 6e-8)), points=2001,
                  max_memory_gib=0.01)
    _one_line(info.value, "of memory", "max_memory_gib")


def test_profiled_limit_budget(coefs):
    # was: four profiled charges at 1e7 points ran for hours without a word
    with pytest.raises(InputError) as info:
        limit_1d([coefs["Xe"]], "q_ee", points=10_000_000,
                 profile=("q_mumu", "q_emu", "q_etau", "q_mutau"),
                 profile_ranges={p: (-3e-7, 3e-7) for p in ("q_mumu", "q_emu", "q_etau", "q_mutau")})
    _one_line(info.value, "profiled limit of q_ee", "chi2 evaluations", "max_evaluations")


def test_profiled_chi2_budget(coefs):
    rows = np.zeros((1000, 6))
    with pytest.raises(InputError) as info:
        profiled_chi2([coefs["Ge"]], rows, ("q_mumu", "q_emu"),
                      {"q_mumu": (-1e-8, 1e-8), "q_emu": (-1e-8, 1e-8)}, points=10_000)
    _one_line(info.value, "chi2 evaluations", "max_evaluations")


# ------------------------------------------------------------ non-finite numbers

@pytest.mark.parametrize("section, field, value, word", [
    ("source", "pot_per_year", 1e308, "nuclear table of Ge"),
    ("detector", "mass_kg", 1e300, "nuclear table of Ge"),
    ("detector", "background_ckkd", 1e307, "background of Ge"),
], ids=["pot", "mass", "background"])
def test_table_with_non_finite_entries_refused(config, section, field, value, word):
    # bypass the validation (as a Config built by hand would): the builder still
    # refuses to return a table holding inf or NaN
    if section == "source":
        cfg = dataclasses.replace(config, source=dataclasses.replace(config.source, **{field: value}))
    else:
        det = dataclasses.replace(config.detectors["Ge"], **{field: value})
        cfg = dataclasses.replace(config, detectors={**config.detectors, "Ge": det})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TableError) as info:
            build_table(cfg, "Ge")
    _one_line(info.value, word, "not finite" if "background" in word else "non-finite")


def test_check_finite_chi2():
    x = np.array([1.0, 2.0, 3.0])
    check_finite_chi2("q_ee", (("q_ee", x),), np.array([0.0, 1.0, 2.0]))
    # +inf is an excluded point (a dead bin), not an error
    check_finite_chi2("q_ee", (("q_ee", x),), np.array([0.0, np.inf, 2.0]))
    with pytest.raises(McscanError) as info:
        check_finite_chi2("q_ee", (("q_ee", x),), np.array([0.0, -np.inf, np.nan]))
    _one_line(info.value, "q_ee", "2 of 3 points", "q_ee = 2")
    with pytest.raises(McscanError) as info:
        check_finite_chi2("q_ee", (("q_ee", x),), np.full(3, np.inf))
    _one_line(info.value, "q_ee", "3 of 3 points", "q_ee = 1")


@pytest.mark.parametrize("what", ["limit", "region"])
def test_non_finite_chi2_never_returned(coefs, what):
    bad = dataclasses.replace(coefs["Ge"], S=coefs["Ge"].S * np.nan)
    with pytest.raises(McscanError) as info:
        if what == "limit":
            limit_1d([bad], "q_ee", points=21, extend=0)
        else:
            region_2d([bad], ("q_ee", "q_mumu"), ranges=((-6e-8, 6e-8), (-6e-8, 6e-8)), points=21)
    _one_line(info.value, "nan")


# ------------------------------------------------------------ library values

@pytest.mark.parametrize("cl", [1e-320, 1e-7, 0.0, 1.0, 1.0 - 1e-12, -0.5, 1.5, math.nan, math.inf, "x"],
                         ids=["1e-320", "1e-7", "0", "1", "1-1e-12", "negative", "1.5", "nan", "inf", "text"])
def test_delta_chi2_level_refuses_cl(cl):
    with pytest.raises(InputError) as info:
        delta_chi2_level(cl)
    _one_line(info.value, "confidence level", repr(cl) if not isinstance(cl, float) else "", "expected")


@pytest.mark.parametrize("cl", [CL_RANGE[0], 0.9, CL_RANGE[1]])
def test_delta_chi2_level_range_ends(cl):
    assert 0.0 < delta_chi2_level(cl) < 100.0


@pytest.mark.parametrize("dof", [0, 7, 1.5, True])
def test_delta_chi2_level_refuses_dof(dof):
    with pytest.raises(InputError, match="degrees of freedom"):
        delta_chi2_level(0.9, dof)


@pytest.mark.parametrize("kwargs, words", [
    ({"xrange": (-1e308, 1e308)}, ("q_ee", "1e+308", "[-1, 1] e")),
    ({"xrange": (-2.0, 2.0)}, ("q_ee", "[-1, 1] e")),
    ({"xrange": (0.0, 1e-320)}, ("q_ee", "span")),
    ({"xrange": (1.0, -1.0)}, ("q_ee", "low < high")),
    ({"fixed": {"q_mumu": 1e300}}, ("q_mumu", "1e+300", "[-1, 1] e")),
    ({"fixed": {"q_mumu": math.nan}}, ("q_mumu", "nan", "finite")),
    ({"fixed": {"q_xx": 1e-9}}, ("q_xx", "expected one of")),
    ({"fixed": {"q_ee": 1e-9}}, ("q_ee", "scanned and fixed")),
    ({"points": 2.5}, ("points", "whole number")),
    ({"level": math.inf}, ("Delta chi2 level", "inf")),
    ({"level": -1.0}, ("Delta chi2 level", "-1.0")),
    ({"cl": 1e-320}, ("confidence level",)),
    ({"profile": ("q_mumu",), "profile_ranges": {"q_mumu": (-1e308, 1e308)}}, ("q_mumu", "[-1, 1] e")),
    ({"profile": ("q_mumu",), "profile_ranges": {}}, ("q_mumu", "search range")),
], ids=["range 1e308", "range 2e", "range tiny", "range reversed", "fixed 1e300", "fixed nan",
        "fixed unknown", "fixed scanned", "points fraction", "level inf", "level negative", "cl 1e-320",
        "profile range 1e308", "profile range missing"])
def test_limit_values(coefs, kwargs, words):
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # checked before any numpy work
        with pytest.raises(InputError) as info:
            limit_1d([coefs["Ge"]], "q_ee", **{"points": 21, **kwargs})
    _one_line(info.value, *words)


@pytest.mark.parametrize("kwargs, words", [
    ({"ranges": ((-1e308, 1e308), (-1e-8, 1e-8))}, ("q_ee", "1e+308", "[-1, 1] e")),
    ({"ranges": ((-1e-8, 1e-8), (math.nan, 1e-8))}, ("q_mumu", "nan", "low < high")),
    ({"ranges": ((-1e-8, 1e-8),)}, ("two ranges",)),
    ({"cl": 1e-320}, ("confidence level",)),
    ({"points": 5}, ("points", "11 to 20001")),
    ({"fixed": {"q_emu": -math.inf}}, ("q_emu", "-inf")),
], ids=["range 1e308", "range nan", "one range", "cl 1e-320", "points 5", "fixed -inf"])
def test_region_values(coefs, kwargs, words):
    kw = {"ranges": ((-6e-8, 6e-8), (-6e-8, 6e-8)), "points": 21, **kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError) as info:
            region_2d([coefs["Ge"]], ("q_ee", "q_mumu"), **kw)
    _one_line(info.value, *words)


# ------------------------------------------------------------ parameters the source cannot see

def test_unconstrained_parameter(coefs):
    lim = limit_1d([coefs["Xe"], coefs["Ge"]], "q_tautau", xrange=(-6e-8, 6e-8), points=2001)
    assert lim.unconstrained and lim.regions == []
    assert lim.reason == "no nu_tau flux at this source"
    assert lim.scan.axes[0].size == 2          # no scan: the two range ends only
    d = lim.to_json()
    assert d["unconstrained"] is True and d["reason"] == "no nu_tau flux at this source"
    json.dumps(d, allow_nan=False)


def test_unconstrained_profiled(coefs):
    lim = limit_1d([coefs["Ge"]], "q_tautau", profile=("q_ee",), profile_ranges={"q_ee": (-6e-8, 6e-8)})
    assert lim.unconstrained and lim.regions == []


def test_constrained_parameter_says_so(coefs):
    lim = limit_1d([coefs["Ge"]], "q_etau", xrange=(-3e-7, 3e-7), points=201, extend=0)
    assert not lim.unconstrained and lim.reason == "" and lim.regions
    assert lim.to_json()["unconstrained"] is False


def test_unconstrained_round_trip(coefs, tmp_path):
    from mcscan.results import open_results

    lim = limit_1d([coefs["Ge"]], "q_tautau")
    path = tmp_path / "tautau.h5"
    lim.save(path)
    back = open_results(path)
    assert back.unconstrained and back.reason == lim.reason and back.regions == []


# ------------------------------------------------------------ command-line values

def _cli(argv, capsys):
    from mcscan.cli import main

    try:
        rc = main(argv)
    except SystemExit as exc:          # argparse-level errors exit directly
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err.strip().splitlines()


@pytest.mark.parametrize("toml, word", [
    ("[source]\npot_per_year = 1e308\n", "source.pot_per_year"),
    ("[detectors.Ge]\nbackground_ckkd = 1e300\n", "detectors.Ge.background_ckkd"),
    ("[analysis]\nsignal_pull = 1e300\n", "analysis.signal_pull"),
    ('[detectors."../../evil"]\nmass_kg = 1.0\n', "../../evil"),
    ("[detectors.Ge]\ncomposition = { Tc = 1 }\nrms_radius_fm = { Tc = 4.4 }\n", "Tc"),
    ("[numerics]\ngrid_step_sigma = 1e-9\n", "numerics.grid_step_sigma"),
], ids=["pot", "background", "signal pull", "evil name", "Tc", "grid step"])
def test_cli_bad_configuration(toml, word, tmp_path, capsys, monkeypatch):
    cfgdir = tmp_path / "cfg"
    cfgdir.mkdir()
    (cfgdir / "bad.toml").write_text(toml)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    rc, out, err = _cli(["build", "--config", str(cfgdir / "bad.toml")], capsys)
    assert rc == 2
    assert len(err) == 1 and word in err[0] and "Traceback" not in err[0]
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("argv, word", [
    (["limits", "--detector", "Ge", "--param", "q_ee", "--cl", "1e-320"], "1e-320"),
    (["limits", "--detector", "Ge", "--param", "q_ee", "--range", "-1e308", "1e308"], "1e+308"),
    (["limits", "--detector", "Ge", "--param", "q_ee", "--fix", "q_mumu=1e300"], "q_mumu"),
    (["region", "--detector", "Ge", "--params", "q_ee", "q_mumu", "--points", "14142"], "2e+08 points"),
    (["limits", "--detector", "Xe", "--param", "q_ee", "--points", "10000000", "--profile", "q_mumu",
      "--profile", "q_emu", "--profile", "q_etau", "--profile", "q_mutau"], "evaluations"),
    (["xsec", "--target", "Ge", "--enu", "30", "--flavour", "e", "--radius", "1e308"], "1e+308"),
    (["xsec", "--target", "Tc", "--enu", "30", "--flavour", "e", "--radius", "4"], "Tc"),
    (["limits", "--detector", "Ge", "--param", "q_tautau", "--method", "fc", "--toys", "20",
      "--points", "11", "--json", "--out", "fc.h5"], "q_tautau is not constrained by Ge"),
    (["bands", "--detector", "CsI", "--detector", "Ge", "--param", "q_tautau", "--toys", "20",
      "--points", "11", "--out", "bands.h5"], "q_tautau is not constrained by CsI, Ge"),
    (["region", "--detector", "Ge", "--params", "q_ee", "q_tautau", "--out", "r.h5"],
     "q_tautau is not constrained by Ge"),
    (["region", "--detector", "Xe", "--params", "mu_tau", "r2_ee", "--out", "r.h5"],
     "mu_tau is not constrained by Xe"),
], ids=["cl 1e-320", "range 1e308", "fix 1e300", "region 14142 points", "profile 1e7 points",
        "xsec radius 1e308", "xsec Tc", "fc of a tau-only charge", "bands of a tau-only charge",
        "region of a tau-only charge", "region of a tau-only moment"])
def test_cli_bad_values(argv, word, table_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if argv[0] != "xsec":
        argv = argv + ["--tables", str(table_dir)]
    rc, out, err = _cli(argv, capsys)
    assert rc == 2
    assert len(err) == 1 and word in err[0] and "Traceback" not in err[0]
    assert out == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("param", ["q_ee", "q_emu"])
def test_cli_limits_of_data_beyond_double_precision(param, coefs, table_dir, tmp_path, capsys, monkeypatch):
    # counts of 1e300: their squares overflow in the profile; one line, no NumPy warnings
    from mcscan.io.data import write_counts

    monkeypatch.chdir(tmp_path)
    ge = coefs["Ge"]
    data = write_counts(tmp_path / "huge.csv", {"Ge": (ge.edges_kev, np.full(ge.S.size, 1e300))})
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        rc, out, err = _cli(["limits", "--detector", "Ge", "--param", param, "--data", str(data),
                             "--tables", str(table_dir), "--json"], capsys)
    assert rc == 2 and out == ""
    assert len(err) == 1 and "chi2 is nan" in err[0] and "the data" in err[0], err


def test_cli_unconstrained_json(table_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err = _cli(["limits", "--detector", "Ge", "--param", "q_tautau", "--tables", str(table_dir),
                         "--json", "--quiet"], capsys)
    assert rc == 0
    d = json.loads(out)
    assert d["unconstrained"] is True and "nu_tau" in d["reason"] and d["regions"] == []


@pytest.mark.parametrize("argv, word", [
    (["xsec", "--target", "Ge", "--enu", "30", "--flavour", "e", "--radius", "1e308"], "1e+308"),
    (["limits", "--detector", "Ge", "--param", "q_ee", "--cl", "1e-320", "--tables", "nowhere"], "1e-320"),
], ids=["xsec radius", "cl"])
def test_module_entry_point_no_traceback(argv, word, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mcscan", *argv], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2
    assert len(err) == 1 and word in err[0] and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []
