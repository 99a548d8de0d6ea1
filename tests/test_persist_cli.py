"""Save/load round trip in a new process, the command line, and reproducibility."""

import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

import hierfit
from hierfit import PersistenceError
from conftest import quiet_fit


def test_save_load_in_new_process(fit_rs, tmp_path):
    path = tmp_path / "rs.hfit"
    fit_rs.save(path)
    code = (
        "import hierfit, sys\n"
        f"m = hierfit.load({str(path)!r})\n"
        "print(m.fixef().to_csv()); print(m.summary().to_text())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert fit_rs.fixef().to_csv() in out.stdout
    assert fit_rs.summary().to_text() in out.stdout


def test_load_errors(tmp_path, fit_ri):
    with pytest.raises(PersistenceError, match="no such file"):
        hierfit.load(tmp_path / "missing.hfit")
    good = tmp_path / "ri.hfit"
    fit_ri.save(good)
    truncated = tmp_path / "truncated.hfit"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(PersistenceError, match="damaged or truncated"):
        hierfit.load(truncated)
    newer = tmp_path / "newer.hfit"
    with zipfile.ZipFile(newer, "w") as zf:
        zf.writestr("meta.json", '{"format": "hierfit-fit", "format_version": 99, "hierfit_version": "9.0"}')
        zf.writestr("arrays/x.npy", b"")
    with pytest.raises(PersistenceError, match=r"format 99, newer than this hierfit reads.*saved by hierfit 9\.0"):
        hierfit.load(newer)
    foreign = tmp_path / "foreign.hfit"
    foreign.write_text("hello")
    with pytest.raises(PersistenceError):
        hierfit.load(foreign)


def test_interrupted_save_leaves_no_file(fit_ri, tmp_path, monkeypatch):
    import os

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        fit_ri.save(tmp_path / "x.hfit")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def small_data():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(12), 8)
    x = rng.normal(size=g.size)
    y = 1 + 0.5 * x + rng.normal(0, 0.7, 12)[g] + rng.normal(0, 1, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def test_same_seed_same_draws_different_seed_differs(small_data):
    a = quiet_fit("y ~ x + (1 | g)", small_data, draws=200, tune=200, chains=2, seed=5)
    b = quiet_fit("y ~ x + (1 | g)", small_data, draws=200, tune=200, chains=2, seed=5)
    c = quiet_fit("y ~ x + (1 | g)", small_data, draws=200, tune=200, chains=2, seed=6)
    np.testing.assert_array_equal(a.draws["b"].values, b.draws["b"].values)
    assert not np.array_equal(a.draws["b"].values, c.draws["b"].values)


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "hierfit", *args], capture_output=True, text=True, timeout=timeout)


def test_cli_fit_save_and_summary(small_data, tmp_path):
    csv = tmp_path / "d.csv"
    small_data.to_csv(csv, index=False)
    out = _cli("fit", str(csv), "y ~ x + (1 | g)", "--draws", "200", "--tune", "200", "--chains", "2",
               "--seed", "1", "--no-progress", "--save", str(tmp_path / "m.hfit"))
    assert out.returncode == 0, out.stderr
    assert "Random effects:" in out.stdout and "Number of obs: 96, groups:  g, 12" in out.stdout
    out2 = _cli("summary", str(tmp_path / "m.hfit"))
    assert out2.returncode == 0 and "Fixed effects:" in out2.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "/no/such.csv", "y ~ x"], "no such file"),
        (["fit", "{dir}", "y ~ x"], "is a directory"),
        (["fit", "{bad}", "y ~ x"], "cannot read"),
        (["fit", "{csv}", "y ~ x + (1 | )"], "empty grouping factor"),
        (["fit", "{csv}", "y ~ nope"], "unknown column 'nope'"),
        (["summary", "{csv}"], "is not a hierfit fit file"),
    ],
)
def test_cli_errors_are_one_clear_line(args, message, tmp_path, small_data):
    csv = tmp_path / "d.csv"
    small_data.to_csv(csv, index=False)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage\x00\n\x00")
    args = [a.format(dir=tmp_path, bad=bad, csv=csv) for a in args]
    out = _cli(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    first = out.stderr.splitlines()[0]
    assert first.startswith("hierfit: error:") and message in out.stderr
