"""Figures: every results kind is drawn by its kind, names and colours follow the
stored configuration, the example scripts fail cleanly, every import is declared."""
from __future__ import annotations

import ast
import configparser
import importlib.metadata as md
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import mcscan
from mcscan import plot
from mcscan.errors import McscanError, ResultsError

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"

USER_TOML = """
[source]
years = 5.0

[detectors.Ge2]
composition = { Ge = 1 }
rms_radius_fm = { Ge = 4.06 }
mass_kg = 10.0
threshold_kev = 0.6
sigma0 = 0.09
background_ckkd = 3.0
bins = { start_kev = 0.6, width_kev = 1.0, count = 40 }
channels = ["nuclear"]
efficiency = { nuclear = 0.80 }
quenching_factor = 1.0
"""

# tab10, the default matplotlib colour cycle: C0, C1, C2
C0, C1, C2 = "#1f77b4", "#ff7f0e", "#2ca02c"


# ---------------------------------------------------------------- colours, names, titles

def test_reference_detectors_keep_their_colours_and_combined_is_black():
    c = plot.detector_colors(["CsI", "Xe", "Ge", "combined"])
    assert c == {"CsI": C0, "Xe": C1, "Ge": C2, "combined": "#000000"}
    # the order given does not change the fixed colours
    assert plot.detector_colors(["Ge", "combined", "CsI"]) == {"Ge": C2, "combined": "#000000", "CsI": C0}


def test_every_detector_gets_a_distinct_colour():
    names = ["CsI", "Xe", "Ge", "Ge2"] + [f"D{i}" for i in range(40)] + ["combined"]
    c = plot.detector_colors(names)
    assert set(c) == set(names)
    assert len(set(c.values())) == len(names)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", v) for v in c.values())
    assert c["Ge2"] not in (C0, C1, C2, "#000000")
    # a further detector takes the next free colour, the same in every figure
    assert plot.detector_colors(["CsI", "Xe", "Ge", "Ge2"])["Ge2"] == c["Ge2"]


def test_labels_speak_physics():
    assert plot.param_label("q_ee") == r"$q_{ee}$ [$10^{-9}\,e$]"
    assert plot.param_label("q_mutau") == r"$q_{\mu\tau}$ [$10^{-8}\,e$]"
    assert plot.row_label("CsI_nuclear+electron") == "CsI, nuclear + electron"
    assert plot.row_label("CsI", ("nuclear", "electron")) == "CsI, nuclear + electron"
    assert plot.row_label("combined") == "combined"


@pytest.fixture(scope="module")
def user_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "user.toml"
    path.write_text(USER_TOML)
    return mcscan.load_config(path)


def test_titles_follow_the_configuration(config, user_config):
    assert plot.title(config, "x") == "ESS, 3 years: x"
    assert plot.title(user_config, "x") == "ESS, 5 years: x"
    assert plot.run_label({"source": {"name": "ESS", "years": 1.0}}) == "ESS, 1 year"
    assert plot.title(None, "x") == "x"
    assert plot.row_label("Ge2", None, user_config.to_dict()) == "Ge2 (10 kg)"


def _figures(monkeypatch):
    """Keep the figures drawn (they are still saved) so a test can read their texts."""
    seen = []

    def keep(plt, fig, path):
        seen.append(fig)
        return plot._save(fig, path)

    monkeypatch.setattr(plot, "_finish", keep)
    return seen


def test_user_configuration_figure(tmp_path, user_config, table_dir, warm, monkeypatch):
    """5 years and an extra detector Ge2: the title says 5 years, the legend
    names Ge2 (with its mass), every curve has its own colour."""
    import shutil

    tables = tmp_path / "tables"
    shutil.copytree(table_dir, tables)
    a = mcscan.Analysis(user_config, detectors=["Xe", "Ge", "Ge2"], tables=tables)
    sens = a.sensitivities()
    path = sens.save(tmp_path / "sens.h5", config=user_config)
    figs = _figures(monkeypatch)
    written = plot.plot_file(path, tmp_path / "fig")
    assert sorted(p.name for p in written) == ["sens_diagonal.pdf", "sens_diagonal.png",
                                               "sens_transition.pdf", "sens_transition.png"]
    for fig in figs:
        assert fig._suptitle.get_text().startswith("ESS, 5 years:")
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels == ["Xe (20 kg)", "Ge (7 kg)", "Ge2 (10 kg)", "combined"]
        colors = [line.get_color() for line in ax.get_lines() if not line.get_label().startswith("_")]
        assert colors == [C1, C2, plot.detector_colors(list(user_config.detectors))["Ge2"], "#000000"]
        assert len(set(colors)) == 4
        for a_ in fig.axes:
            assert a_.get_xlabel().startswith("$q_") and a_.get_xlabel() != "charge"
    import matplotlib.pyplot as plt

    for fig in figs:
        plt.close(fig)


# ---------------------------------------------------------------- every kind, by its kind

@pytest.fixture(scope="module")
def results(tmp_path_factory, config, table_dir, warm):
    """One small results file of every kind, each with its configuration."""
    from mcscan.physics.spectra import xsec_view
    from mcscan.scans.sweep import plan_sweep, run_sweep

    d = tmp_path_factory.mktemp("results")
    a = mcscan.Analysis(config, tables=table_dir)
    objs = {
        "limits": a.limits("q_ee", detectors="Ge", points=201),
        "region": a.region(("q_ee", "q_mumu"), detectors="Xe", points=41),
        "sensitivities": a.sensitivities(),
        "scan1": a.scan("q_mumu", points=101, detectors="Ge"),
        "scan2": a.scan(["q_ee", "q_mumu"], points=21, detectors="Ge"),
        "scan3": a.scan(["q_ee", "q_mumu", "q_emu"], points=7, detectors="Ge",
                        projections=["q_ee", "q_ee,q_mumu"]),
        "xsec": xsec_view(config, "Ge", 40.0, "e", charges={"q_ee": 1e-8}, points=100),
    }
    objs["sweep"] = run_sweep(plan_sweep(None, ["years=2,3,5"], ["q_ee"], detectors=["Ge"],
                                         tables_dir=d / "sweep_tables"))
    return {k: v.save(d / f"{k}.h5", config=config) for k, v in objs.items()}


EXPECTED = {
    "limits": ["limits"],
    "region": ["region"],
    "sensitivities": ["sensitivities_diagonal", "sensitivities_transition"],
    "scan1": ["scan1"],
    "scan2": ["scan2"],
    "scan3": ["scan3_profiled_q_ee", "scan3_profiled_q_ee-q_mumu", "scan3_fixed_q_ee",
              "scan3_fixed_q_ee-q_mumu"],
    "xsec": ["xsec"],
    "sweep": ["sweep_q_ee"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_plot_file_draws_every_kind(results, name, tmp_path):
    written = plot.plot_file(results[name], tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{s}{x}" for s in EXPECTED[name]
                                                     for x in (".png", ".pdf"))
    for p in written:
        assert p.stat().st_size > 5000


def test_plot_file_refuses_what_it_cannot_draw(tmp_path, results):
    bad = tmp_path / "edited.h5"
    bad.write_bytes(Path(results["limits"]).read_bytes())
    with h5py.File(bad, "r+") as f:
        f.attrs["kind"] = "histogram"
    with pytest.raises(McscanError) as e:
        plot.plot_file(bad, tmp_path)
    assert "\n" not in str(e.value)
    with pytest.raises(ResultsError):
        plot.plot_result(object(), tmp_path)


def test_plot_folder_of_plain_results(results, tmp_path):
    import shutil

    folder = tmp_path / "plain"
    folder.mkdir()
    for k in ("limits", "xsec"):
        shutil.copy(results[k], folder)
    written = plot.plot_folder(folder, tmp_path / "out")
    assert sorted(p.name for p in written) == ["limits.pdf", "limits.png", "xsec.pdf", "xsec.png"]
    with pytest.raises(McscanError):
        plot.plot_folder(tmp_path / "missing")


# ---------------------------------------------------------------- example scripts

SCRIPT_INPUTS = {"plot_profiles.py": "sensitivities", "plot_regions.py": "region", "plot_xsec.py": "xsec"}


def _script(name, *args, cwd=None):
    return subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def test_the_scripts_are_the_ones_tested():
    assert sorted(p.name for p in SCRIPTS.glob("plot_*.py")) == sorted(SCRIPT_INPUTS)


@pytest.mark.parametrize("name", sorted(SCRIPT_INPUTS))
def test_script_help_and_bad_input(name, tmp_path, results):
    r = _script(name, "--help")
    assert r.returncode == 0 and "usage:" in r.stdout
    r = _script(name, tmp_path / "missing.h5")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "no such file" in r.stderr
    wrong = "region" if SCRIPT_INPUTS[name] != "region" else "limits"
    r = _script(name, results[wrong])
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "kind" in r.stderr
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    r = _script(name, junk)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("name", sorted(SCRIPT_INPUTS))
def test_script_draws(name, tmp_path, results):
    out = tmp_path / "fig.png"
    r = _script(name, results[SCRIPT_INPUTS[name]], "--out", out)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 5000


def test_scripts_need_no_mcscan():
    for p in SCRIPTS.glob("plot_*.py"):
        tree = ast.parse(p.read_text())
        mods = {n.names[0].name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)}
        mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert "mcscan" not in mods, p.name


# ---------------------------------------------------------------- declared dependencies

def _requirements():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")

    def names(text):
        return {re.split(r"[\s;<>=!~\[]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")
                for line in text.strip().splitlines() if line.strip()}

    core = names(cfg["options"]["install_requires"])
    extras = {k: names(v) for k, v in cfg["options.extras_require"].items()}
    return core, extras


def _imports():
    """{top-level module: [(file, module level?)]} of every absolute import in mcscan/."""
    found = {}
    for path in (ROOT / "mcscan").rglob("*.py"):
        tree = ast.parse(path.read_text())
        top_level = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            else:
                continue
            for m in mods:
                found.setdefault(m.split(".")[0], []).append((path.relative_to(ROOT).as_posix(),
                                                              id(node) in top_level))
    return found


def _distribution(module):
    dists = md.packages_distributions().get(module, [])
    return {d.lower().replace("_", "-") for d in dists}


def test_every_third_party_import_is_declared():
    core, extras = _requirements()
    assert {"numpy", "scipy", "numba", "h5py", "tqdm", "particle", "periodictable", "xraydb",
            "mendeleev", "tomli", "contourpy", "matplotlib"} <= core
    optional = set().union(*extras.values()) - core
    third = {m: where for m, where in _imports().items()
             if m not in sys.stdlib_module_names and m not in ("mcscan", "__future__")}
    for mod, where in third.items():
        dists = _distribution(mod) or {mod.lower()}
        if dists & core:
            continue
        assert dists & optional, f"{mod} (imported in {where[0][0]}) is not declared in setup.cfg"
        # optional packages are imported lazily, only by the scan backends
        for f, module_level in where:
            assert f == "mcscan/scans/backends.py" and not module_level, (mod, f)


# ---------------------------------------------------------------- the standard figure set

def test_figure_set(tmp_path, config, table_dir, warm):
    import json
    import shutil

    from mcscan.figures import compute_figure_data

    tables = tmp_path / "tables"
    shutil.copytree(table_dir, tables)
    out = tmp_path / "figs"
    figures = compute_figure_data(config, out, tables_dir=tables, progress=False, points=41)
    manifest = json.loads((out / "figures.json").read_text())["figures"]
    assert [f["name"] for f in manifest] == list(figures)
    # every data file is a results file of its own kind, with the configuration stored
    from mcscan.io.results import read_config

    for f in out.glob("*.h5"):
        assert read_config(f)["source"]["years"] == config.source.years
    kinds = {f.name: mcscan.open_results(f).kind for f in out.glob("*.h5")}
    assert kinds["profiles.h5"] == "sensitivities"
    assert kinds["region_combined_q_ee-q_mumu.h5"] == "region"
    assert kinds["electron_CsI_nuclear+electron_region.h5"] == "region"
    assert kinds["electron_CsI_nuclear_q_ee.h5"] == "limits"
    assert {k for n, k in kinds.items() if n.startswith("xsec_")} == {"xsec"}
    written = plot.plot_folder(out)
    stems = {p.stem for p in written}
    assert stems == {"profiles_diagonal", "profiles_transition", "region_q_ee_q_mumu",
                     "region_q_etau_q_mutau", "csi_electron", "xsec_CsI", "xsec_Xe", "xsec_Ge"}
    assert all(p.stat().st_size > 5000 for p in written)


# ---------------------------------------------------------------- parameter families

def _texts(fig):
    """Every text of a figure: titles, axis labels, tick labels, legends, annotations."""
    return [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text")) if t.get_text()]


def _close(figs):
    import matplotlib.pyplot as plt

    for fig in figs:
        plt.close(fig)


@pytest.fixture(scope="module")
def family_results(config, table_dir, warm):
    """Family regions and moment limits of CsI, Ge and their combination (small grids)."""
    from mcscan import families
    from mcscan.figures import NSI_RANGES, family_region
    from mcscan.scans.families import default_range

    rows = {"CsI": ["CsI"], "Ge": ["Ge"], "combined": ["CsI", "Ge"]}
    radii = {r: family_region(config, d, ("r2_ee", "r2_mumu"),
                              {p: default_range(p, config) for p in ("r2_ee", "r2_mumu")},
                              tables_dir=table_dir, points=61) for r, d in rows.items()}
    nsi = {r: family_region(config, d, ("eps_u_ee", "eps_d_ee"), NSI_RANGES, tables_dir=table_dir,
                            points=61) for r, d in rows.items()}
    moments = {(r, p): families.limits(config, d, p, tables_dir=table_dir, points=401)
               for r, d in rows.items() for p in ("mu_e", "mu_mu")}
    return {"radii": radii, "nsi": nsi, "moments": moments}


def test_family_labels_carry_units():
    assert plot.param_label("r2_ee") == r"$\langle r^2\rangle_{ee}$ [$10^{-32}\,\mathrm{cm}^2$]"
    assert plot.param_label("mu_mu") == r"$\mu_{\nu_{\mu}}$ [$10^{-10}\,\mu_B$]"
    # dimensionless and shown as they are: no unit bracket
    assert plot.param_label("eps_d_ee") == r"$\varepsilon^{dV}_{ee}$"
    assert plot.others_text(["q_ee"]) == "other charges fixed at 0"
    assert plot.others_text(["r2_ee"]) == "other parameters at their Standard Model values"


def test_family_regions_keep_every_piece(family_results):
    """The charge-radius region is a ring (a polygon with a hole); NSI allows two
    disjoint bands per detector."""
    for row in ("CsI", "Ge"):
        reg = family_results["radii"][row]
        assert len(reg.polygons) == 1 and len(reg.polygons[0][1]) == 1, row
    for row in ("CsI", "Ge"):
        assert len(family_results["nsi"][row].polygons) == 2
        assert family_results["nsi"][row].touches_edge      # the bands cross the whole plane


@pytest.mark.parametrize("plane", ["radii", "nsi"])
def test_family_plane_figure(family_results, plane, tmp_path, config, monkeypatch):
    figs = _figures(monkeypatch)
    regions = family_results[plane]
    written = plot.plot_regions(regions, tmp_path / plane, config)
    assert sorted(p.name for p in written) == [f"{plane}.pdf", f"{plane}.png"]
    assert all(p.stat().st_size > 5000 for p in written)
    (fig,) = figs
    ax = fig.axes[0]
    p0, p1 = regions["CsI"].params
    assert ax.get_xlabel() == plot.param_label(p0) and ax.get_ylabel() == plot.param_label(p1)
    if plane == "radii":
        assert r"\mathrm{cm}^2" in ax.get_xlabel()
    else:
        assert r"\varepsilon^{uV}_{ee}" in ax.get_xlabel()
    leg = ax.get_legend()
    assert leg.get_title().get_text() == "90% C.L., 2 d.o.f."
    assert [t.get_text() for t in leg.get_texts()] == ["CsI (22.5 kg)", "Ge (7 kg)", "combined",
                                                       "Standard Model"]
    assert "Standard Model values" in ax.get_title()
    # one filled patch per allowed piece; a ring's patch keeps its hole (two sub-paths)
    from matplotlib.path import Path as MPath

    patches = ax.patches
    assert len(patches) == sum(len(r.polygons) for r in regions.values())
    if plane == "radii":
        assert any(int(np.sum(pt.get_path().codes == MPath.MOVETO)) >= 2 for pt in patches)
    _close(figs)


def test_moment_profiles_figure(family_results, tmp_path, config, monkeypatch):
    figs = _figures(monkeypatch)
    written = plot.plot_profiles(family_results["moments"], tmp_path / "moments.png", config)
    assert [p.name for p in written] == ["moments.png"] and written[0].stat().st_size > 5000
    (fig,) = figs
    assert [a.get_xlabel() for a in fig.axes] == [plot.param_label("mu_e"), plot.param_label("mu_mu")]
    assert all(r"\mu_B" in a.get_xlabel() for a in fig.axes)
    sup = fig._suptitle.get_text()
    assert "magnetic moments" in sup and sup.startswith("ESS, 3 years")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["CsI (22.5 kg)", "Ge (7 kg)",
                                                                           "combined"]
    assert "90% C.L." in _texts(fig)
    _close(figs)


# ---------------------------------------------------------------- frequentist statistics

@pytest.fixture(scope="module")
def toy_results(coefs, config, warm):
    """Small toy computations: bands of two charges for CsI and Ge, Feldman-Cousins of Ge q_ee."""
    from mcscan.scans.frequentist import expected_bands, feldman_cousins
    from mcscan.scans.grid import ScanSettings

    st = ScanSettings.from_config(config)
    bands = [expected_bands([coefs[d]], p, toys=200, seed=3, points=41, settings=st)
             for d in ("CsI", "Ge") for p in ("q_ee", "q_emu")]
    fc = feldman_cousins([coefs["Ge"]], "q_ee", toys=200, seed=3, points=41, settings=st)
    return {"bands": bands, "fc": fc}


def test_brazil_bands_figure(toy_results, tmp_path, config, monkeypatch):
    figs = _figures(monkeypatch)
    written = plot.plot_bands(toy_results["bands"], tmp_path / "bands", config)
    assert sorted(p.name for p in written) == ["bands.pdf", "bands.png"]
    assert all(p.stat().st_size > 5000 for p in written)
    fig = figs[0]
    xlabels = [a.get_xlabel() for a in fig.axes if a.get_xlabel()]
    assert xlabels == [plot.param_label("q_ee"), plot.param_label("q_emu")]
    texts = _texts(fig)
    for want in ("median expected", r"68% expected ($\pm1\sigma$)", r"95% expected ($\pm2\sigma$)",
                 "Asimov allowed set", "CsI (22.5 kg)", "Ge (7 kg)", "upper", "lower"):
        assert want in texts, want
    sup = fig._suptitle.get_text()
    assert sup.startswith("ESS, 3 years:") and "90% C.L." in sup and "Standard Model" in sup
    assert any("200 toys" in t for t in texts)
    # green (68%) and yellow (95%) bars: 2 per (row, charge, side)
    import matplotlib.colors as mc

    faces = [mc.to_hex(p.get_facecolor()) for a in fig.axes for p in a.patches]
    assert faces.count(plot.BAND_COLORS["68"]) == faces.count(plot.BAND_COLORS["95"]) == 2 * 2 * 2
    # the same figure from the JSON form of the bands, and by kind from plot_result
    again = plot.plot_bands([b.to_json() for b in toy_results["bands"]], tmp_path / "json.png", config)
    assert again[0].stat().st_size > 5000
    by_kind = plot.plot_result(toy_results["bands"][0], tmp_path, "one", config)
    assert sorted(p.name for p in by_kind) == ["one.pdf", "one.png"]
    _close(figs)


def test_critical_values_figure(toy_results, tmp_path, config, monkeypatch):
    fc = toy_results["fc"]
    figs = _figures(monkeypatch)
    written = plot.plot_critical_values(fc, tmp_path / "fc", config)
    assert sorted(p.name for p in written) == ["fc.pdf", "fc.png"]
    assert all(p.stat().st_size > 5000 for p in written)
    fig = figs[0]
    top, bottom = fig.axes
    assert "Feldman-Cousins" in top.get_title() and "$q_{ee}$" in top.get_title()
    assert "90% C.L." in top.get_title() and "200 toys" in top.get_title()
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert r"critical value $t_c(\theta)$" in legend
    assert r"Wilks: $\chi^2_1$ quantile 2.71" in legend
    assert "Feldman-Cousins 90% C.L. interval" in legend
    assert bottom.get_ylabel() == "Wilks coverage" and bottom.get_xlabel() == plot.param_label("q_ee")
    # the Wilks line is at the one-parameter 90% level
    wilks = [ln for ln in top.get_lines() if ln.get_label().startswith("Wilks:")]
    assert abs(wilks[0].get_ydata()[0] - 2.705543454095404) < 1e-9
    # dispatch by kind (fc)
    by_kind = plot.plot_result(fc, tmp_path, "by_kind", config)
    assert sorted(p.name for p in by_kind) == ["by_kind.pdf", "by_kind.png"]
    assert len(figs) == 2 and len(figs[1].axes) == 2
    _close(figs)


# ---------------------------------------------------------------- optional figure sets

def test_optional_figure_sets(tmp_path, config, table_dir, warm):
    import json
    import shutil
    import time

    from mcscan.errors import InputError
    from mcscan.figures import compute_figure_data

    tables = tmp_path / "tables"
    shutil.copytree(table_dir, tables)
    out = tmp_path / "figs"
    t0 = time.perf_counter()
    figures = compute_figure_data(config, out, tables_dir=tables, progress=False, points=41,
                                  families=("radii", "nsi", "moments"),
                                  frequentist=("bands", "feldman-cousins"), toys=100, fc_points=21,
                                  detectors=("Xe", "Ge"))
    assert time.perf_counter() - t0 < 60.0
    assert list(figures) == ["region_r2_ee_r2_mumu", "region_eps_u_ee_eps_d_ee", "moments", "bands",
                             "fc_Ge_q_ee"]
    manifest = json.loads((out / "figures.json").read_text())["figures"]
    assert [f["name"] for f in manifest] == list(figures)
    kinds = {f.name: mcscan.open_results(f).kind for f in out.glob("*.h5")}
    assert kinds["region_combined_r2_ee-r2_mumu.h5"] == "region"
    assert kinds["region_Ge_eps_u_ee-eps_d_ee.h5"] == "region"
    assert kinds["moments_combined_mu_mu.h5"] == "limits"
    assert kinds["fc_Ge_q_ee.h5"] == "fc"
    bands = json.loads((out / "bands.json").read_text())["results"]
    assert [(b["detectors"], b["param"]) for b in bands] == [
        ([d], p) for d in ("Xe", "Ge") for p in ("q_ee", "q_mumu", "q_emu", "q_etau", "q_mutau")]
    written = plot.plot_folder(out)
    assert {p.stem for p in written} == set(figures)
    assert all(p.stat().st_size > 5000 for p in written)
    with pytest.raises(InputError, match="unknown figure set 'radius'"):
        compute_figure_data(config, out, tables_dir=tables, progress=False, families=("radius",))
