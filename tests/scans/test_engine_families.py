"""The N-D engine over parameters of any family: twin, planes, files, resume, Dask, CLI.

A scan over the parameter families runs through :func:`mcscan.scans.engine.scan`
like a charge scan; only the coefficients differ (the quadratic forms of
:mod:`mcscan.stats.families`).  Checks:

* every grid point against the NumPy twin :func:`mcscan.stats.families.chi2_all`
  (a separate recombination and profile): chi2 to 1e-9 relative (+1e-15
  absolute), pulls to 1e-9 absolute, the convergence tolerance of the row
  kernel (as in tests/stats/test_kernels_families.py);
* the charge engine (separate coefficients and recombination) on charges only,
  to the same tolerance;
* every plane bit for bit equal to one ``family_grid_scan`` of it, and the
  projections exactly equal to NumPy reductions of the grid, for chunks that
  cut through planes;
* streamed, interrupted and resumed, and on a Dask LocalCluster: files
  bit-identical (np.array_equal, no tolerance) to one uninterrupted local run.
"""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from mcscan.cli import commands as cli
from mcscan.config.load import load_config
from mcscan.errors import InputError
from mcscan.params import ALL_PARAMS, SPEC
from mcscan.results import open_results
from mcscan.scans.backends import TableRef, resolve_coefficients
from mcscan.scans.engine import ScanResult, scan
from mcscan.scans.families import family_grid_scan
from mcscan.stats import kernels_families
from mcscan.stats.families import chi2_all

RTOL = 1e-9          # chi2 against the NumPy twin (relative) ...
ATOL = 1e-15         # ... plus this absolute part (chi2 = 0 at the SM point)
PULL_ATOL = 1e-9     # pulls against the twin (absolute, fractions)

MIXED = ("q_ee", "r2_ee", "eps_u_ee")                  # three families, one flavour: cross terms
AXES = (np.linspace(-3e-8, 2e-8, 5),                   # e
        np.linspace(-8e-31, 3e-31, 6),                 # cm^2
        np.linspace(-0.2, 0.6, 7))                     # 1
FIXED = {"mu_mu": 5e-10}                               # mu_B: an unscanned parameter off its SM value


@pytest.fixture(scope="module", autouse=True)
def _warm():
    kernels_families.warm_up(True)
    kernels_families.warm_up(False)


@pytest.fixture(scope="module")
def refs(table_dir):
    """Xe and Ge as workers find them: tables collapsed into the family forms."""
    return [TableRef.from_config(load_config(), d, table_dir, family=True) for d in ("Xe", "Ge")]


@pytest.fixture(scope="module")
def fcoefs(refs):
    """{detector: FamilyCoefficients} of the on-disk reference tables."""
    return {c.detector: c for c in resolve_coefficients(refs)}


def _theta(fc, params, axes, fixed):
    """(npoints, P) full parameter vectors of every grid point, C order."""
    shape = tuple(a.size for a in axes)
    th = np.repeat(fc.origin[None, :], int(np.prod(shape)), axis=0)
    for k, v in fixed.items():
        th[:, ALL_PARAMS.index(k)] = v
    for p, a, i in zip(params, axes, np.unravel_index(np.arange(th.shape[0]), shape)):
        th[:, ALL_PARAMS.index(p)] = a[i]
    return th


# ------------------------------------------------------------------ numbers

def test_3d_mixed_families_equal_the_numpy_twin(fcoefs):
    xe = fcoefs["Xe"]
    res = scan([xe], MIXED, AXES, fixed=FIXED, pulls=True)
    assert isinstance(res, ScanResult) and res.shape == (5, 6, 7)
    chi2 = np.asarray(res.chi2)
    assert np.all(np.asarray(res.converged) == 1) and res.unconverged == 0
    twin, a, b, it = chi2_all(xe, _theta(xe, MIXED, AXES, FIXED))
    assert np.all(it > 0)
    np.testing.assert_allclose(chi2.ravel(), twin, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(np.asarray(res.pulls["Xe"][0]).ravel(), a, rtol=0, atol=PULL_ATOL)
    np.testing.assert_allclose(np.asarray(res.pulls["Xe"][1]).ravel(), b, rtol=0, atol=PULL_ATOL)
    # the fixed parameter and the SM value of sin2w travel with the result
    assert res.fixed["mu_mu"] == 5e-10 and res.fixed["sin2w"] == xe.origin[ALL_PARAMS.index("sin2w")]
    j = res.to_json()
    assert j["units"] == {"q_ee": "e", "r2_ee": "cm^2", "eps_u_ee": "1"} and j["unit"] == j["units"]


def test_4d_families_with_damped_starts_equal_the_numpy_twin(fcoefs):
    """From VECTOR_START_DIMS axes on, the first points of each row take damped steps in
    the vector loop, and a chunk's planes (each with its own row polynomial) go to the
    kernel in one call per detector; chunks of 35 points cut the planes of 42."""
    from mcscan.scans.engine import VECTOR_START_DIMS

    params, axes = ("q_mumu",) + MIXED, (np.linspace(-2e-8, 2e-8, 4),) + AXES
    assert len(params) >= VECTOR_START_DIMS
    xe, ge = fcoefs["Xe"], fcoefs["Ge"]
    res = scan([xe, ge], params, axes, fixed=FIXED, chunk_points=35, pulls=True)
    assert res.shape == (4, 5, 6, 7) and res.unconverged == 0
    theta = _theta(xe, params, axes, FIXED)
    total = np.zeros(theta.shape[0])
    for c in (xe, ge):
        twin, a, b, it = chi2_all(c, theta)
        assert np.all(it > 0)
        total += twin
        np.testing.assert_allclose(np.asarray(res.pulls[c.detector][0]).ravel(), a, rtol=0,
                                   atol=PULL_ATOL)
        np.testing.assert_allclose(np.asarray(res.pulls[c.detector][1]).ravel(), b, rtol=0,
                                   atol=PULL_ATOL)
    np.testing.assert_allclose(np.asarray(res.chi2).ravel(), total, rtol=RTOL, atol=ATOL)


def test_charges_through_family_forms_equal_the_charge_engine(fcoefs, coefs):
    params = ("q_ee", "q_mumu", "q_emu")
    axes = tuple(np.linspace(-2e-8, 2.5e-8, n) for n in (4, 5, 6))
    fam = scan([fcoefs["Xe"], fcoefs["Ge"]], params, axes, fixed={"q_tautau": 1e-9})
    chg = scan([coefs["Xe"], coefs["Ge"]], params, axes, fixed={"q_tautau": 1e-9})
    np.testing.assert_allclose(np.asarray(fam.chi2), np.asarray(chg.chi2), rtol=RTOL, atol=ATOL)
    assert fam.base.size == len(ALL_PARAMS) and chg.base.size == 6
    assert fam.to_json()["unit"] == chg.to_json()["unit"] == "e"


@pytest.mark.parametrize("chunk", [None, 14, 56])           # 14 and 56: chunks cut planes of 42
@pytest.mark.parametrize("threads", [1, 2])                 # kernel threads
def test_planes_are_family_grid_scans_and_projections_are_reductions(fcoefs, chunk, threads,
                                                                     monkeypatch):
    from mcscan.stats import _jit

    monkeypatch.setattr(_jit, "threads", lambda: threads)
    fcs = [fcoefs["Xe"], fcoefs["Ge"]]
    res = scan(fcs, MIXED, AXES, fixed=FIXED, chunk_points=chunk, pulls=True,
               projections=["r2_ee", "eps_u_ee", "r2_ee,eps_u_ee", "q_ee,eps_u_ee"])
    chi2 = np.asarray(res.chi2)
    for i, q in enumerate(AXES[0]):
        sc = family_grid_scan(fcs, MIXED[1:], AXES[1:], fixed={**FIXED, "q_ee": float(q)})
        assert np.array_equal(chi2[i], sc.chi2), i                                   # exact
        assert np.array_equal(np.asarray(res.converged)[i].astype(bool), sc.converged)
        for det, (a, b) in sc.pulls.items():
            assert np.array_equal(np.asarray(res.pulls[det][0])[i], a)               # exact
            assert np.array_equal(np.asarray(res.pulls[det][1])[i], b)               # exact
    assert res.chi2_min == chi2.min()
    pr = res.projections
    assert np.array_equal(pr[("profiled", "r2_ee")].chi2, chi2.min(axis=(0, 2)))        # exact
    assert np.array_equal(pr[("profiled", "r2_ee-eps_u_ee")].chi2, chi2.min(axis=0))  # exact
    best = pr[("profiled", "r2_ee")].best
    k = chi2.transpose(1, 0, 2).reshape(6, -1).argmin(axis=1)
    iq, ie = np.unravel_index(k, (5, 7))
    assert np.array_equal(best["q_ee"], AXES[0][iq]) and np.array_equal(best["eps_u_ee"], AXES[2][ie])
    # fixed slices: the grid points nearest the SM values (q_ee = 0, r2_ee = 0, eps_u_ee = 0)
    iq0, ir0, ie0 = (int(np.argmin(np.abs(a))) for a in AXES)
    assert np.array_equal(pr[("fixed", "eps_u_ee")].chi2, chi2[iq0, ir0, :])             # exact
    assert np.array_equal(pr[("fixed", "q_ee-eps_u_ee")].chi2, chi2[:, ir0, :])          # exact
    assert pr[("fixed", "r2_ee")].at == {"q_ee": float(AXES[0][iq0]), "eps_u_ee": float(AXES[2][ie0])}
    assert np.array_equal(pr[("fixed", "r2_ee")].chi2, chi2[iq0, :, ie0])               # exact


def test_sin2w_and_moments_1d_and_2d(fcoefs):
    ge = fcoefs["Ge"]
    s = np.linspace(0.2, 0.28, 4099)                  # 2 row segments of 4096 (1D chunks)
    one = scan([ge], ("sin2w",), (s,), chunk_points=4096)
    ref = family_grid_scan([ge], ("sin2w",), (s,))
    assert one.chunks == 2 and np.array_equal(np.asarray(one.chi2), ref.chi2)           # exact
    assert one.to_json()["unit"] == "1" and "units" in one.to_json()
    mu = np.linspace(-2e-9, 2e-9, 9)
    two = scan([ge], ("sin2w", "mu_e"), (s[::512], mu), chunk_points=18)
    ref2 = family_grid_scan([ge], ("sin2w", "mu_e"), (s[::512], mu))
    assert np.array_equal(np.asarray(two.chi2), ref2.chi2)                               # exact
    # the fixed projection of mu_e slices sin2w at its SM value (the tables'), not at 0
    sm = ge.origin[ALL_PARAMS.index("sin2w")]
    at = two.projections[("fixed", "mu_e")].at["sin2w"]
    assert at == float(s[::512][np.argmin(np.abs(s[::512] - sm))])


@pytest.mark.parametrize("chunk", [7, 21, 10_000])
def test_2d_families_with_fixed_values_equal_family_grid_scan(fcoefs, chunk):
    """A 2D scan over the families writes the kernel's rows straight into its grids:
    chi2, flags and each detector's pulls are those of one family_grid_scan, bit for
    bit, for any chunking; q_ee fixed off its SM value has cross terms with both scanned
    parameters (one flavour), mu_mu another flavour."""
    fcs = [fcoefs["Xe"], fcoefs["Ge"]]
    fixed = {"q_ee": 1e-8, **FIXED}
    res = scan(fcs, MIXED[1:], AXES[1:], fixed=fixed, chunk_points=chunk, pulls=True)
    ref = family_grid_scan(fcs, MIXED[1:], AXES[1:], fixed=fixed)
    assert np.array_equal(np.asarray(res.chi2), ref.chi2)                                # exact
    assert np.array_equal(np.asarray(res.converged), ref.converged.astype(np.int8))
    for det, (a, b) in ref.pulls.items():
        assert np.array_equal(np.asarray(res.pulls[det][0]), a)
        assert np.array_equal(np.asarray(res.pulls[det][1]), b)
    assert res.chunks == -(-ref.chi2.size // res.chunk_points)


# ------------------------------------------------------------------ files, resume, Dask

def test_file_units_and_reading_back(fcoefs, tmp_path):
    path = tmp_path / "f.h5"
    res = scan([fcoefs["Xe"]], MIXED, AXES, path, fixed=FIXED,
               projections=["eps_u_ee", "q_ee,r2_ee"])
    with h5py.File(path, "r") as f:
        g = f["scan"]
        assert [g[f"axis_{i}"].attrs["units"] for i in range(3)] == ["e", "cm^2", "1"]
        assert g["profiled/eps_u_ee/axis_0"].attrs["units"] == "1"
        assert g["profiled/eps_u_ee/best/r2_ee"].attrs["units"] == "cm^2"
        assert [g[f"fixed/q_ee-r2_ee/axis_{i}"].attrs["units"] for i in range(2)] == ["e", "cm^2"]
    back = open_results(path)
    assert type(back) is ScanResult and back.params == MIXED
    assert back.fixed == res.fixed and back.fixed["mu_mu"] == 5e-10
    assert back.to_json()["units"] == {p: SPEC[p].unit for p in MIXED}
    assert np.array_equal(np.asarray(back.chi2), np.asarray(res.chi2))


def test_resume_after_interrupt_is_bit_identical(refs, tmp_path, chunk_interrupt, same_results):
    args = (refs, MIXED, AXES)
    kw = dict(fixed=FIXED, chunk_points=14, projections=["r2_ee", "r2_ee,eps_u_ee"])
    ref = scan(*args, tmp_path / "ref.h5", **kw)
    assert ref.chunks == 15
    chunk_interrupt.arm(6)
    with pytest.raises(KeyboardInterrupt):
        scan(*args, tmp_path / "s.h5", **kw)
    chunk_interrupt.disarm()
    assert not (tmp_path / "s.h5").exists()
    assert len(list((tmp_path / "s.h5.partial").glob("chunk_*.npz"))) == 6
    with pytest.raises(InputError, match="resume"):
        scan(*args, tmp_path / "s.h5", **kw)
    with pytest.raises(InputError, match="differs"):
        scan(*args, tmp_path / "s.h5", **{**kw, "fixed": {"mu_mu": 6e-10}}, resume=True)
    res = scan(*args, tmp_path / "s.h5", **kw, resume=True)
    assert res.resumed_chunks == 6 and not (tmp_path / "s.h5.partial").exists()
    same_results(tmp_path / "ref.h5", tmp_path / "s.h5")


def test_dask_local_equals_local(refs, fcoefs, tmp_path, same_results):
    pytest.importorskip("distributed")
    from mcscan.scans.backends import make_backend

    kw = dict(fixed=FIXED, chunk_points=14, projections=["q_ee", "r2_ee,eps_u_ee"])
    scan(refs, MIXED, AXES, tmp_path / "local.h5", **kw)
    with make_backend("dask-local", workers=2) as dask:
        res = scan(refs, MIXED, AXES, tmp_path / "dask.h5", backend=dask, **kw)
        assert res.backend["backend"] == "dask-local" and res.backend["workers"] == 2
        # the in-memory forms travel to the workers as they are
        scan([fcoefs["Xe"], fcoefs["Ge"]], MIXED, AXES, tmp_path / "mem.h5", backend=dask, **kw)
    same_results(tmp_path / "local.h5", tmp_path / "dask.h5")
    same_results(tmp_path / "local.h5", tmp_path / "mem.h5")


def test_one_line_errors(fcoefs, coefs, tmp_path):
    xe = fcoefs["Xe"]
    with pytest.raises(InputError, match="belongs to the radii family"):
        scan([coefs["Xe"]], ("r2_ee",), (AXES[1],))
    with pytest.raises(InputError, match="mix millicharge coefficients and parameter-family"):
        scan([coefs["Xe"], fcoefs["Ge"]], ("q_ee",), (AXES[0],))
    with pytest.raises(InputError, match="at q_mumu: not a scanned parameter"):
        scan([xe], MIXED, AXES, at={"q_mumu": 0.0})
    with pytest.raises(InputError, match="projection onto mu_e: not a scanned parameter"):
        scan([xe], MIXED, AXES, projections=["mu_e"])
    with pytest.raises(InputError, match="r2_ee is both scanned and fixed"):
        scan([xe], MIXED, AXES, fixed={"r2_ee": 1e-31})
    with pytest.raises(InputError, match=r"mu_e = nan: expected a finite value in mu_B"):
        scan([xe], MIXED, AXES, fixed={"mu_e": float("nan")})
    with pytest.raises(InputError, match="1 to 6 parameters, got 7"):
        scan([xe], ALL_PARAMS[6:13], (AXES[2],) * 7)
    with pytest.raises(InputError, match="unknown parameter 'r2_xx'"):
        scan([xe], ("r2_xx",), (AXES[1],))
    assert not list(tmp_path.iterdir())


def test_nan_chi2_of_a_plane_named_with_units(fcoefs, monkeypatch):
    # a NaN from the kernel of an N-D family chunk is refused where the chunk is
    # computed, naming the first such grid point with each parameter's unit
    from mcscan.scans.engine import ChunkTask, compute_chunk, make_grid

    real = kernels_families.chi2_rows_poly

    def nan_rows(*args, out, **kw):
        st = real(*args, out=out, **kw)
        out[0][7] = np.nan
        return st

    monkeypatch.setattr(kernels_families, "chi2_rows_poly", nan_rows)
    grid = make_grid(MIXED, AXES, origin=fcoefs["Xe"].origin)
    task = ChunkTask((fcoefs["Xe"],), grid, AXES[1].size * AXES[2].size * 2)
    at = np.unravel_index(task.chunk_points + 7, grid.shape)
    want = ", ".join(f"{p} = {float(a[i]):.6g} {SPEC[p].unit}" if SPEC[p].unit != "1"
                     else f"{p} = {float(a[i]):.6g}" for p, a, i in zip(MIXED, AXES, at))
    with pytest.raises(InputError) as info:
        compute_chunk(1, task)
    msg = str(info.value)
    assert msg.startswith(f"chi2 is nan (not a number) at {want} (1 point(s) of this chunk)"), msg
    assert "\n" not in msg


# ------------------------------------------------------------------ command line

def _main(argv):
    """cli.main with every argument as a string; argparse errors give their exit code."""
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


ND = ["ndscan", "--detector", "Xe", "--detector", "Ge", "--param", "r2_ee", "--param", "eps_u_ee",
      "--range", "-8e-31", "3e-31", "--range", "-0.2", "0.6", "--points", "11", "--fix",
      "mu_e=3e-10", "--chunk-points", "22", "--quiet", "--json"]


def test_cli_ndscan_families_resume_open_and_plot(table_dir, tmp_path, capsys, chunk_interrupt):
    out = tmp_path / "nd.h5"
    argv = ND + ["--tables", table_dir, "--out", out]
    chunk_interrupt.arm(2)
    code = _main(argv)
    chunk_interrupt.disarm()
    o, e = capsys.readouterr()
    assert code != 0 and o == "" and "--resume" in e and not out.exists()
    code = _main(argv + ["--resume"])
    o, e = capsys.readouterr()
    assert code == 0, e
    d = json.loads(o)
    assert d["shape"] == [11, 11] and d["resumed_chunks"] == 2 and d["chunks"] == 6
    assert d["units"] == {"r2_ee": "cm^2", "eps_u_ee": "1"} and d["fixed"]["mu_e"] == 3e-10
    assert d["results_file"] == str(out)
    res = open_results(out)
    assert res.params == ("r2_ee", "eps_u_ee") and res.detectors == ("Xe", "Ge")
    # the same scan through the API, uninterrupted: the same numbers
    from mcscan.api import Analysis

    a = Analysis(detectors=["Xe", "Ge"], tables=table_dir, build=False)
    again = a.scan(["r2_ee", "eps_u_ee"], ranges=[(-8e-31, 3e-31), (-0.2, 0.6)], points=11,
                   fixed={"mu_e": 3e-10}, chunk_points=22)
    assert np.array_equal(np.asarray(res.chi2), again.chi2)                               # exact
    figs = tmp_path / "figs"
    assert _main(["plot", out, "--out", figs, "--quiet"]) == 0
    assert {p.name for p in figs.iterdir()} == {"nd.png", "nd.pdf"}
    # three parameters: the stored projections are drawn
    out3 = tmp_path / "nd3.h5"
    code = _main(["ndscan", "--detector", "Ge", "--param", "mu_e", "--param", "r2_ee", "--param",
                  "sin2w", "--points", "5", "--tables", table_dir, "--out", out3, "--quiet",
                  "--project", "r2_ee,sin2w"])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    assert _main(["plot", out3, "--out", figs, "--quiet"]) == 0
    assert {"nd3_profiled_r2_ee-sin2w.png", "nd3_fixed_r2_ee-sin2w.png"} <= {p.name for p in figs.iterdir()}
