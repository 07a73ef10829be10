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
