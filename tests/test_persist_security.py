"""Fit files are data only, reads are bounded, writes are atomic, compile caches are private.

Exploits from the issue: a crafted pickle-bearing fit file (old format and an array member)
must not run anything; a zip bomb must be refused before memory is used; a compile-cache
folder planted by someone else must not be used.
"""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import stat
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest

import hierfit
from hierfit import PersistenceError
from hierfit.results import persist
from conftest import quiet_fit


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(8)
    n = 90
    g = rng.integers(0, 9, n)
    df = pd.DataFrame({"y": rng.normal(size=n) + rng.normal(0, 1, 9)[g], "x": rng.normal(2, 3, n),
                       "s": pd.Categorical(rng.choice(["lo", "mid", "hi"], n), categories=["mid", "lo", "hi"]),
                       "g": g * 10}, index=pd.Index(rng.permutation(n) + 1000, name="id"))
    df.iloc[[4, 50], df.columns.get_loc("x")] = np.nan
    fit = quiet_fit("y ~ scale(x) + s + (1 | g)", df, draws=150, tune=150, chains=2, seed=2)
    return df, fit


@pytest.fixture(scope="module")
def saved(small, tmp_path_factory):
    path = tmp_path_factory.mktemp("fits") / "m.hfit"
    small[1].save(path)
    return path


class Marker:
    """Unpickling this creates a file: the proof that code ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


# -- the file holds data only ----------------------------------------------------------------------------------------

def test_file_holds_json_and_plain_arrays_only(saved):
    with zipfile.ZipFile(saved) as zf:
        names = zf.namelist()
        assert names[0] == "meta.json" and all(n.startswith("arrays/") and n.endswith(".npy") for n in names[1:])
        meta = json.loads(zf.read("meta.json"))
        assert meta["format"] == "hierfit-fit" and meta["format_version"] == 2
        assert meta["model"]["formula"] == "y ~ scale(x) + s + (1 | g)"
        assert meta["model"]["columns"]["s"]["levels"] == ["mid", "lo", "hi"]  # the caller's level order, as values
        for n in names[1:]:
            arr = np.load(io.BytesIO(zf.read(n)), allow_pickle=False)  # would raise for an object array
            assert arr.dtype.kind in "biufcUmM"


def test_round_trip_gives_an_identical_design_and_results(small, saved):
    _, fit = small
    back = hierfit.load(saved)
    d0, d1 = fit.design, back.design
    np.testing.assert_array_equal(d0.X, d1.X)  # scale() keeps the training mean and sd exactly
    np.testing.assert_array_equal(d0.y, d1.y)
    assert d0.fixed_names == d1.fixed_names == ["(Intercept)", "scale(x)", "slo", "shi"]
    assert d0.categories == d1.categories
    for b0, b1 in zip(d0.blocks, d1.blocks):
        assert b0.levels == b1.levels and b0.coefs == b1.coefs
        np.testing.assert_array_equal(b0.index, b1.index)
        np.testing.assert_array_equal(b0.Z, b1.Z)
    assert back.summary().to_text() == fit.summary().to_text()
    assert str(back.method) == str(fit.method) and dict(back.parametrization) == dict(fit.parametrization)
    pd.testing.assert_frame_equal(back.priors.table(), fit.priors.table())
    pd.testing.assert_frame_equal(back.fixef(), fit.fixef())
    pd.testing.assert_frame_equal(back.ranef()["g"], fit.ranef()["g"])
    pd.testing.assert_frame_equal(back.fitted(), fit.fitted())
    pd.testing.assert_series_equal(back.residuals(), fit.residuals())
    pd.testing.assert_frame_equal(back.r2(), fit.r2())
    new = pd.DataFrame({"x": [0.0, 5.0], "s": ["hi", "mid"], "g": [10, 80]})
    pd.testing.assert_frame_equal(back.predict(new), fit.predict(new))
    assert back.timing == fit.timing and back.kernel == fit.kernel and back.settings == fit.settings


def test_loaded_fit_plots(saved):
    import matplotlib.pyplot as plt

    back = hierfit.load(saved)
    fig = back.plot_residuals()
    assert fig is not None
    plt.close("all")


# -- crafted files never run code ------------------------------------------------------------------------------------

def test_old_pickle_format_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.hfit"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("meta.json", json.dumps({"format": "hierfit-fit", "format_version": 1, "hierfit_version": "0.0.9"}))
        zf.writestr("fit.pkl", pickle.dumps(Marker(marker)))
    with pytest.raises(PersistenceError, match=r"written by hierfit 0\.0\.9 in the old pickle format, which is not "
                                               r"loaded for safety.*refit"):
        hierfit.load(evil)
    out = subprocess.run([sys.executable, "-m", "hierfit", "summary", str(evil)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "old pickle format" in out.stderr and "Traceback" not in out.stderr
    assert not marker.exists()


def test_pickle_in_an_array_member_is_refused_without_running_it(saved, tmp_path):
    marker = tmp_path / "PWNED"
    payload = io.BytesIO()
    np.save(payload, np.array([Marker(marker)], dtype=object), allow_pickle=True)
    evil = tmp_path / "evil.hfit"
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(evil, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, payload.getvalue() if name == "arrays/data/0.npy" else src.read(name))
    with pytest.raises(PersistenceError, match="holds Python objects"):
        hierfit.load(evil)
    assert not marker.exists()


def test_a_pickle_instead_of_a_zip_is_not_a_fit_file(tmp_path):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.hfit"
    evil.write_bytes(pickle.dumps(Marker(marker)))
    with pytest.raises(PersistenceError, match="is not a hierfit fit file"):
        hierfit.load(evil)
    assert not marker.exists()


# -- bounded reads ---------------------------------------------------------------------------------------------------

def test_zip_bomb_is_refused_before_memory_is_used(tmp_path):
    bomb = tmp_path / "bomb.hfit"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("meta.json", json.dumps({"format": "hierfit-fit", "format_version": 2}))
        with zf.open("arrays/x.npy", "w", force_zip64=True) as fh:
            chunk = bytes(2**24)
            for _ in range(10):  # 160 MiB of zeros
                fh.write(chunk)
    assert bomb.stat().st_size < 2**20  # under 1 MB on disk
    tracemalloc.start()
    try:
        with pytest.raises(PersistenceError, match="zip bomb"):
            hierfit.load(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20


def _patch_declared_size(path, name: str, size: int) -> None:
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    struct.pack_into("<I", raw, info.header_offset + 22, size)  # local header: uncompressed size
    central = raw.index(b"PK\x01\x02")
    while True:  # the central directory entry of that member
        fname_len = struct.unpack_from("<H", raw, central + 28)[0]
        if raw[central + 46:central + 46 + fname_len] == name.encode():
            break
        central = raw.index(b"PK\x01\x02", central + 4)
    struct.pack_into("<I", raw, central + 24, size)
    path.write_bytes(bytes(raw))


def test_member_larger_than_it_declares_is_refused(tmp_path):
    path = tmp_path / "liar.hfit"
    persist.write_fit_file(path, {"format": "hierfit-fit", "format_version": 2}, {"a": np.zeros(100_000)})
    _patch_declared_size(path, "arrays/a.npy", 1000)
    with pytest.raises(PersistenceError, match="damaged or truncated|larger or smaller"):
        persist.read_fit_file(path)


def test_array_header_claiming_more_than_it_holds_is_refused(tmp_path):
    path = tmp_path / "claim.hfit"
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("meta.json", json.dumps({"format": "hierfit-fit", "format_version": 2}))
        zf.writestr("arrays/a.npy", buf.getvalue() + bytes(8))
    with pytest.raises(PersistenceError, match="declares"):
        persist.read_fit_file(path)


def test_too_many_members_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(persist, "MAX_MEMBERS", 20)
    path = tmp_path / "many.hfit"
    persist.write_fit_file(path, {"format": "hierfit-fit", "format_version": 2},
                           {f"a{i}": np.zeros(1) for i in range(30)})
    with pytest.raises(PersistenceError, match="members"):
        persist.read_fit_file(path)


def test_other_version_either_loads_or_says_who_wrote_it(saved, tmp_path):
    with zipfile.ZipFile(saved) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    original = members["meta.json"]
    meta = json.loads(original)
    meta["hierfit_version"] = "0.0.7"
    meta["model"]["fingerprint"]["predictors"]["mu"]["X"][1] += 1.0  # its design differs from what this one builds
    members["meta.json"] = json.dumps(meta).encode()
    other = tmp_path / "other.hfit"
    with zipfile.ZipFile(other, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    with pytest.raises(PersistenceError, match=r"written by hierfit 0\.0\.7.*could not be rebuilt identically"):
        hierfit.load(other)
    meta = json.loads(original)
    meta["hierfit_version"] = "0.0.7"
    del meta["model"]["priors"]  # a half-written description: an error, never a half-loaded fit
    members["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(other, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    with pytest.raises(PersistenceError, match=r"cannot rebuild the model.*written by hierfit 0\.0\.7"):
        hierfit.load(other)


# -- atomic, checked writes ------------------------------------------------------------------------------------------

META = {"format": "hierfit-fit", "format_version": 2}


def test_existing_permission_bits_are_kept_and_new_files_follow_umask(tmp_path):
    target = tmp_path / "m.hfit"
    persist.write_fit_file(target, META, {"a": np.arange(3)})
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    os.chmod(target, 0o640)
    persist.write_fit_file(target, META, {"a": np.arange(4)})
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    np.testing.assert_array_equal(persist.read_fit_file(target)[1]["a"], np.arange(4))


def test_fsync_comes_before_the_rename(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    persist.write_fit_file(tmp_path / "m.hfit", META, {"a": np.arange(3)})
    assert calls[:2] == ["fsync", "replace"]


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left"), (errno.EFBIG, "too large"),
                                         (errno.EACCES, "permission denied")])
def test_os_errors_are_persistence_errors_naming_the_path(tmp_path, monkeypatch, code, words):
    target = tmp_path / "m.hfit"

    def fail(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(PersistenceError, match=f"{words}") as info:
        persist.write_fit_file(target, META, {"a": np.arange(3)})
    assert str(target) in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no .part file left behind


def test_permission_denied_when_creating_the_temporary_file(tmp_path, monkeypatch):
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(PersistenceError, match=r"m\.hfit.*permission denied"):
        persist.write_fit_file(tmp_path / "m.hfit", META, {"a": np.arange(3)})


def test_directory_targets_are_persistence_errors(tmp_path):
    (tmp_path / "adir").mkdir()
    with pytest.raises(PersistenceError, match="it is a directory"):
        persist.write_fit_file(tmp_path / "adir", META, {})
    (tmp_path / "afile").write_text("x")
    with pytest.raises(PersistenceError, match="is not a folder"):
        persist.write_fit_file(tmp_path / "afile" / "m.hfit", META, {})
    with pytest.raises(PersistenceError, match="it is a directory"):
        persist.read_fit_file(tmp_path / "adir")
    with pytest.raises(PersistenceError):
        persist.read_fit_file(tmp_path / "afile" / "m.hfit")


# -- compile caches --------------------------------------------------------------------------------------------------

@pytest.fixture
def user_cache(tmp_path, monkeypatch):
    import numba

    from hierfit.engine import kernel

    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    monkeypatch.setattr(kernel, "_PRIVATE", {})
    return tmp_path, kernel


def test_cache_folder_is_created_private(user_cache):
    tmp, kernel = user_cache
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        base = kernel.cache_base()
    assert base == str(tmp / "xdg" / "hierfit")
    assert stat.S_IMODE(os.stat(base).st_mode) == 0o700
    folder = kernel.kernel_cache_folder()
    assert os.path.dirname(folder) == base and stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert kernel.__name__ and "hierfit-" in os.path.basename(folder) and hierfit.__version__ in folder


def test_own_readable_cache_folder_is_made_private(user_cache):
    tmp, kernel = user_cache
    (tmp / "xdg" / "hierfit").mkdir(parents=True)
    os.chmod(tmp / "xdg" / "hierfit", 0o755)  # as an older hierfit created it
    assert kernel.cache_base() == str(tmp / "xdg" / "hierfit")
    assert stat.S_IMODE(os.stat(tmp / "xdg" / "hierfit").st_mode) == 0o700


def test_planted_writable_cache_folder_is_refused(user_cache):
    tmp, kernel = user_cache
    planted = tmp / "xdg" / "hierfit"
    planted.mkdir(parents=True)
    os.chmod(planted, 0o777)
    with pytest.warns(hierfit.HierfitWarning, match="cannot be used safely"):
        base = kernel.cache_base()
    assert base != str(planted) and not base.startswith(str(planted))
    assert stat.S_IMODE(os.stat(base).st_mode) == 0o700 and os.path.basename(base).startswith("hierfit-kernel-")
    assert os.path.dirname(base) == str(tmp / "tmp")  # a fresh private temporary folder
    assert kernel.cache_base() == base  # one replacement per process, warned once


def test_cache_folder_of_another_user_is_refused(user_cache, monkeypatch):
    tmp, kernel = user_cache
    (tmp / "xdg" / "hierfit").mkdir(parents=True, mode=0o700)
    monkeypatch.setattr(os, "getuid", lambda: os.stat(tmp).st_uid + 1)  # as if another user owned it
    with pytest.warns(hierfit.HierfitWarning, match="not yours"):
        base = kernel.cache_base()
    assert base != str(tmp / "xdg" / "hierfit")


def test_planted_folder_in_the_shared_temp_dir_is_never_used(user_cache):
    tmp, kernel = user_cache
    (tmp / "xdg").write_text("not a folder")  # the user cache cannot be created
    planted = tmp / "tmp" / f"hierfit-{os.getuid()}"  # the old predictable fallback
    planted.mkdir()
    os.chmod(planted, 0o777)
    with pytest.warns(hierfit.HierfitWarning):
        base = kernel.cache_base()
    assert base != str(planted) and os.path.basename(base).startswith("hierfit-kernel-")
    assert stat.S_IMODE(os.stat(base).st_mode) == 0o700


def test_symlinked_cache_folder_is_refused(user_cache):
    tmp, kernel = user_cache
    (tmp / "elsewhere").mkdir(mode=0o700)
    (tmp / "xdg").mkdir()
    os.symlink(tmp / "elsewhere", tmp / "xdg" / "hierfit")
    with pytest.warns(hierfit.HierfitWarning):
        assert kernel.cache_base() != str(tmp / "xdg" / "hierfit")


def test_second_process_in_another_folder_compiles_nothing(tmp_path):
    """One per-user cache: a second process (another working directory) loads the kernel without compiling.

    Uses the small "expand" entry point (compiled in about a second); the log densities use the same cache.
    """
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd()] + sys.path)
    code = ("import time; from hierfit.engine import kernel; t = time.perf_counter(); "
            "kernel.entry_point('expand'); print(kernel.compiled_now(), round(time.perf_counter() - t, 1))")
    results = []
    for k in range(2):
        cwd = tmp_path / f"cwd{k}"
        cwd.mkdir()
        out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        results.append(out.stdout.strip())
    assert results[0].startswith("['expand']"), results  # the first process compiled
    assert results[1].startswith("[]"), results  # the second loaded it from the shared cache
