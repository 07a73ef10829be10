"""Results files: every kind round-trips unchanged; edited or foreign files are refused.

Round trips are exact (np.array_equal, same dtype; floats compared with ==):
a results file stores the bits it was given.
"""
from __future__ import annotations

import dataclasses
import json
import os

import h5py
import numpy as np
import pytest

from mcscan.errors import InputError, ResultsError
from mcscan.io.h5 import LazyArray
from mcscan.io.results import SCHEMA_VERSION, open_results, read_config, save
from mcscan.io.tables import table_path
from mcscan.physics.spectra import xsec_view
from mcscan.results import KINDS, Sensitivities
from mcscan.scans.engine import ScanResult, scan
from mcscan.scans.limits import limit_1d
from mcscan.scans.regions import region_2d
from mcscan.scans.sweep import Sweep, SweepPoint, SweepResult, Vary


@pytest.fixture(scope="module")
def ge(coefs):
    return [coefs["Ge"]]


@pytest.fixture(scope="module")
def limit(ge):
    return limit_1d(ge, "q_ee", xrange=(-2e-8, 2e-8), points=61, extend=0)


@pytest.fixture(scope="module")
def profiled_limit(ge):
    return limit_1d(ge, "q_ee", xrange=(-2e-8, 2e-8), points=11, extend=0, profile=("q_mumu",),
                    profile_ranges={"q_mumu": (-1e-8, 1e-8)})


@pytest.fixture(scope="module")
def region(coefs):
    return region_2d([coefs["Xe"], coefs["Ge"]], ("q_ee", "q_mumu"),
                     ranges=((-2e-8, 2e-8), (-1e-8, 1e-8)), points=31, zoom=False)


@pytest.fixture(scope="module")
def sens(limit, ge):
    other = limit_1d(ge, "q_mumu", xrange=(-1e-8, 1e-8), points=41, extend=0)
    return Sensitivities(0.9, ("nuclear",), ("Ge",), ("q_ee", "q_mumu"),
                         {("Ge", "q_ee"): limit, ("Ge", "q_mumu"): other})


@pytest.fixture(scope="module")
def scan2(coefs):
    return scan([coefs["Xe"], coefs["Ge"]], ("q_ee", "q_mumu"),
                (np.linspace(-2e-8, 2e-8, 9), np.linspace(-1e-8, 1e-8, 7)), chunk_points=14,
                projections=["q_ee", "q_ee,q_mumu"], fixed={"q_emu": 1e-9})


@pytest.fixture(scope="module")
def scan3(coefs):
    return scan([coefs["Ge"]], ("q_emu", "q_ee", "q_mumu"),
                (np.linspace(-6e-8, 6e-8, 3), np.linspace(-2e-8, 2e-8, 5), np.linspace(-1e-8, 1e-8, 4)),
                at={"q_emu": 6e-8})


@pytest.fixture(scope="module")
def sweep_result():
    varies = (Vary("threshold", "detectors.Ge.threshold_kev", (0.4, 0.6)),
              Vary("years", "source.years", (3.0,)))
    points = (SweepPoint((0.4, 3.0), {}, None, "/t/sweep/aaa", "a" * 64),
              SweepPoint((0.6, 3.0), {}, None, "/t/sweep/bbb", "b" * 64))
    sw = Sweep(varies, ("Ge",), ("q_ee",), 0.9, ("nuclear",), points, None)
    limits = {(0, "q_ee"): {"regions": [[-3e-9, 4e-9]], "open_low": False, "open_high": False,
                            "chi2_min": 0.1, "delta_chi2": 2.705, "table_hashes": ["a" * 64]},
              (1, "q_ee"): {"regions": [[-5e-9, -1e-9], [1e-9, 6e-9]], "open_low": False,
                            "open_high": True, "chi2_min": 0.2, "delta_chi2": 2.705,
                            "table_hashes": ["b" * 64]}}
    return SweepResult(sw, limits, {"/t/sweep/aaa": {"Ge": "built"}, "/t/sweep/bbb": {"Ge": "up to date"}},
                       1.5, {"backend": "local", "workers": 1})


@pytest.fixture(scope="module")
def xsec(config):
    return xsec_view(config, "Ge", 30.0, "mu", charges={"q_mumu": 1e-9}, points=50)


@pytest.fixture(scope="module")
def fit_result(coefs):
    from mcscan.scans.frequentist import fit, with_data

    ge = coefs["Ge"]
    data = with_data(ge, {"Ge": np.random.default_rng(7).poisson(ge.S + ge.B).astype(float)})
    return fit(data, ("q_ee", "q_mumu"), fixed={"q_emu": 1e-9})


@pytest.fixture(scope="module")
def fit_open(coefs):
    """A fit whose Delta chi2 = 1 interval leaves the search range on both sides (None ends)."""
    from mcscan.scans.frequentist import fit

    r = fit(coefs["Ge"], "q_ee", ranges={"q_ee": (-1e-10, 1e-10)})
    assert r.errors["q_ee"] == (None, None)
    return r


@pytest.fixture(scope="module")
def bands(coefs, warm):
    from mcscan.scans.frequentist import expected_bands

    return expected_bands(coefs["Ge"], "q_ee", toys=70, seed=2, points=31, fixed={"q_mumu": 1e-9})


@pytest.fixture(scope="module")
def fc(coefs, warm):
    from mcscan.scans.frequentist import feldman_cousins

    return feldman_cousins([coefs["Xe"], coefs["Ge"]], "q_mumu", toys=40, seed=3, points=11,
                           fixed={"q_emu": 2e-9})


def _same(a, b, where="result"):
    """Exact equality of result objects, field by field (arrays: same dtype and bits)."""
    if isinstance(a, LazyArray) or isinstance(b, LazyArray) or isinstance(a, np.ndarray):
        x, y = np.asarray(a), np.asarray(b)
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), where
    elif dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            _same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def _attrs(path):
    """[(object path, attribute name, value)] of every attribute of a file."""
    out = []
    with h5py.File(path, "r") as f:
        objs = [("", f)]
        f.visititems(lambda n, o: objs.append((n, o)))
        for name, obj in objs:
            out += [(name, k, obj.attrs[k]) for k in obj.attrs]
    return out


def _datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.update({n: dict(o.attrs)}) if isinstance(o, h5py.Dataset) else None)
    return out


CASES = ["limit", "profiled_limit", "region", "sens", "scan2", "scan3", "sweep_result", "xsec",
         "fit_result", "fit_open", "bands", "fc"]


@pytest.mark.parametrize("name", CASES)
def test_round_trip_every_kind(request, tmp_path, config, name):
    obj = request.getfixturevalue(name)
    path = obj.save(tmp_path / f"{name}.h5", config=config)
    back = open_results(path)
    assert back.kind == obj.kind and back.kind in KINDS
    assert back.to_json() == obj.to_json()
    json.dumps(back.to_json(), allow_nan=False)                  # strict JSON
    if name == "sweep_result":       # configurations are not stored, only their values
        _same(back.limits, obj.limits)
        _same(back.built, obj.built)
        _same(back.sweep.varies, obj.sweep.varies)
        assert [(p.values, p.table_dir, p.table_key) for p in back.sweep.points] == \
               [(p.values, p.table_dir, p.table_key) for p in obj.sweep.points]
    elif isinstance(obj, ScanResult):
        _same(dataclasses.replace(back, path=None), obj)
    else:
        _same(back, obj)
    if name in ("bands", "fc", "fit_result", "fit_open"):
        assert back == obj                     # the frequentist results compare equal
    assert read_config(path) == config.to_dict()
    assert os.listdir(tmp_path) == [f"{name}.h5"]                   # no temporary file left


@pytest.mark.parametrize("name", CASES)
def test_native_attributes_units_and_header(request, tmp_path, name):
    obj = request.getfixturevalue(name)
    path = save(obj, tmp_path / "r.h5")
    root = {k: v for n, k, v in _attrs(path) if n == ""}
    assert root["kind"] == obj.kind and root["schema_version"] == SCHEMA_VERSION
    assert len(root["digest"]) == 64 and root["created"] and root["mcscan_version"]
    for where, key, value in _attrs(path):
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except ValueError:
                continue
            assert not isinstance(parsed, (list, dict)), (where, key, value)   # no JSON text
    for ds, attrs in _datasets(path).items():
        assert attrs.get("units"), ds
    assert read_config(path) is None


def test_scan_from_file_is_lazy(coefs, tmp_path, scan2):
    res = scan([coefs["Xe"], coefs["Ge"]], scan2.params, scan2.axes, tmp_path / "s.h5", chunk_points=14,
               projections=["q_ee", "q_ee,q_mumu"], fixed={"q_emu": 1e-9})
    assert isinstance(res.chi2, LazyArray) and res.chi2.shape == (9, 7)
    assert np.array_equal(res.chi2[2:4], scan2.chi2[2:4])
    assert np.array_equal(res.pulls["Xe"][1][5], scan2.pulls["Xe"][1][5])
    assert res.delta_chi2.min() == 0.0
    assert res.to_json()["projections"]["profiled/q_ee"]["grid_estimate"] is True
    assert res.to_json()["projections"]["profiled/q_ee"]["grid_step"] == pytest.approx(5e-9, rel=1e-12)
    assert "regions" not in res.to_json()["projections"]["profiled/q_ee-q_mumu"]


def test_existing_file_refused_unless_force(tmp_path, limit):
    path = limit.save(tmp_path / "l.h5")
    before = path.read_bytes()
    with pytest.raises(InputError, match="exists"):
        limit.save(path)
    assert path.read_bytes() == before
    limit.save(path, force=True)
    assert open_results(path).param == "q_ee"


def _edit_attr(path, obj, key, value):
    with h5py.File(path, "r+") as f:
        f[obj].attrs[key] = value


def test_edited_attribute_refused(tmp_path, limit):
    path = limit.save(tmp_path / "l.h5")
    _edit_attr(path, "limit", "cl", 0.95)
    with pytest.raises(ResultsError, match="digest") as info:
        open_results(path)
    assert "\n" not in str(info.value)


def test_edited_data_refused(tmp_path, scan2):
    path = scan2.save(tmp_path / "s.h5")
    with h5py.File(path, "r+") as f:
        f["scan/chi2"][0, 0] = 0.0
    with pytest.raises(ResultsError, match="digest"):
        open_results(path)


def test_added_dataset_refused(tmp_path, region):
    path = region.save(tmp_path / "r.h5")
    with h5py.File(path, "r+") as f:
        f["region"].create_dataset("extra", data=np.arange(3.0))
    with pytest.raises(ResultsError, match="digest"):
        open_results(path)


def test_flipped_byte_refused(tmp_path, scan2):
    path = scan2.save(tmp_path / "s.h5")
    with h5py.File(path, "r") as f:
        info = f["scan/chi2"].id.get_chunk_info(0)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        b = fh.read(1)
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(ResultsError, match="checksum|digest"):
        open_results(path)


def test_truncated_and_foreign_files_refused(tmp_path, table_dir, limit):
    path = limit.save(tmp_path / "l.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ResultsError, match="not a readable HDF5 file"):
        open_results(path)
    with pytest.raises(ResultsError, match="response table"):
        open_results(table_path(table_dir, "Ge"))
    (tmp_path / "t.txt").write_text("hello\n")
    with pytest.raises(ResultsError):
        open_results(tmp_path / "t.txt")
    with pytest.raises(InputError, match="not found"):
        open_results(tmp_path / "nope.h5")
    with pytest.raises(InputError, match="folder"):
        open_results(tmp_path)


@pytest.mark.parametrize("key, value, message", [
    ("schema_version", SCHEMA_VERSION + 1, "schema version"),
    ("kind", "banana", "not an mcscan results file"),
    ("kind", "mcscan-results", "older mcscan"),
])
def test_unknown_kind_or_version_refused(tmp_path, limit, key, value, message):
    path = limit.save(tmp_path / "l.h5")
    with h5py.File(path, "r+") as f:
        f.attrs[key] = value
    with pytest.raises(ResultsError, match=message):
        open_results(path)


def _digest_by_high_level_reads(f) -> str:
    """The digest written out with h5py's high-level objects (``f[name].attrs[k]``):
    the definition :func:`mcscan.io.h5.digest` must reproduce bit for bit."""
    import hashlib

    from mcscan.io.h5 import _canon, _hash_dataset

    h = hashlib.sha256()
    names = []
    f.visit(names.append)
    for name in [""] + sorted(names):
        obj = f[name] if name else f
        h.update(b"p" + name.encode() + b"\0")
        for k in sorted(obj.attrs):
            if name == "" and k == "digest":
                continue
            h.update(b"k" + k.encode() + b"\0")
            _canon(h, obj.attrs[k])
        if isinstance(obj, h5py.Dataset):
            _hash_dataset(h, obj)
    return h.hexdigest()


def test_digest_reads_attributes_as_h5py_does(tmp_path, table_dir):
    from mcscan.io.h5 import STR, digest, set_attr, set_strs

    p = tmp_path / "odd.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("g/ü")
        set_attr(g, "b", True)
        set_attr(g, "i", 7)
        set_attr(g, "x", 0.1)
        set_attr(g, "s", "text é")
        set_attr(g, "v", np.arange(3.0))
        set_attr(g, "none", [])
        set_strs(g, "names", ["a", "bé"])
        set_strs(g, "no_names", [])
        g.attrs["empty"] = h5py.Empty("f8")
        g.attrs["fixed"] = np.bytes_(b"abc")
        g.attrs.create("sub", np.zeros((2, 3)), dtype=np.dtype("(3,)f8"))
        g.attrs.create("vlen_bytes", b"raw", dtype=h5py.string_dtype("ascii"))
        g.attrs.create("str_2d", np.array([["a", "b"], ["c", "d"]], dtype=object), dtype=STR)
        ds = g.create_dataset("d", data=np.arange(5), fletcher32=True, chunks=True)
        ds.attrs["units"] = "e"
        f.create_dataset("names", data=np.array(["x", "y"], dtype=object), dtype=STR)
        f.attrs["kind"] = "scan"
        f.attrs["digest"] = "ignored"
    files = [p] + sorted(table_dir.glob("*.h5"))
    for path in files:
        with h5py.File(path, "r") as f:
            assert digest(f) == _digest_by_high_level_reads(f), path.name
