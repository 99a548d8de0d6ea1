"""Reproducibility across processes, and save/load round trips of non-default models.

(tests/test_persist_cli.py covers the Gaussian round trip, a truncated file, a newer
format version, a foreign file and the command line; this file adds the rest.)
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest

import hierfit
from hierfit import PersistenceError

_DATA_CODE = """
import numpy as np, pandas as pd
rng = np.random.default_rng(21)
g = np.repeat(np.arange(10), 6)
x = rng.normal(size=g.size)
data = pd.DataFrame({"y": 0.5 + 0.8 * x + rng.normal(0, 0.6, 10)[g] + rng.normal(0, 1, g.size), "x": x, "g": g})
"""


def _run(code: str, timeout: int = 600) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_same_seed_bit_identical_across_processes(tmp_path):
    script = _DATA_CODE + textwrap.dedent("""
        import sys, warnings, hierfit
        warnings.simplefilter("ignore")
        out = {}
        for seed in (7, 8):
            fit = hierfit.fit("y ~ x + (1 | g)", data, draws=150, tune=150, chains=2, seed=seed, progressbar=False)
            for name, da in fit.draws.data_vars.items():
                out[f"{seed}:{name}"] = da.values
        np.savez(sys.argv[1], **out)
    """)
    files = []
    for k in range(2):
        path = tmp_path / f"draws{k}.npz"
        subprocess.run([sys.executable, "-c", script, str(path)], check=True, capture_output=True, timeout=600)
        files.append(np.load(path))
    a, b = files
    assert sorted(a.files) == sorted(b.files) and "7:b" in a.files and "7:sd_g" in a.files
    for key in a.files:  # bit-identical, not merely close
        assert a[key].tobytes() == b[key].tobytes(), key
    for name in ("b", "sd_g", "sigma", "r_g"):
        assert not np.array_equal(a[f"7:{name}"], a[f"8:{name}"]), name


# -- save/load of a model with a non-default family, an offset, a distributional formula and priors ----------------

@pytest.fixture(scope="module")
def rich_fit():
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(10), 8)
    x = rng.normal(size=g.size)
    expo = rng.uniform(0.5, 2.0, g.size)
    y = 1.0 + 0.7 * x + np.log(expo) + rng.normal(0, 0.5, 10)[g] + np.exp(-0.3 + 0.4 * x) * rng.standard_t(5, g.size)
    data = pd.DataFrame({"y": y, "x": x, "g": g, "expo": expo})
    priors = [hierfit.prior("normal(0, 2)", "b", coef="x"), hierfit.prior("exponential(2)", "sd", group="g")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hierfit.fit(hierfit.bf("y ~ x + offset(log(expo)) + (1 | g)", sigma="~ x"), data, family="student",
                          priors=priors, draws=150, tune=150, chains=2, seed=3, progressbar=False)
    return fit


NEW = pd.DataFrame({"x": [-1.0, 0.0, 2.0], "g": [0, 3, 9], "expo": [1.0, 2.0, 0.5]})


def test_round_trip_preserves_everything_in_process(rich_fit, tmp_path):
    path = tmp_path / "rich.hfit"
    rich_fit.save(path)
    back = hierfit.load(path)
    assert back.family.name == "student" and back.family.link.name == "identity"
    assert list(back.design.predictors) == ["mu", "sigma"]
    pd.testing.assert_frame_equal(back.priors.table(), rich_fit.priors.table())
    assert "exponential(2)" in set(back.priors.table()["prior"]) and "normal(0, 2)" in set(back.priors.table()["prior"])
    assert back.summary().to_text() == rich_fit.summary().to_text()
    pd.testing.assert_frame_equal(back.fixef(), rich_fit.fixef())
    pd.testing.assert_frame_equal(back.VarCorr(), rich_fit.VarCorr())
    for kind in ("link", "mean"):
        pd.testing.assert_frame_equal(back.predict(NEW, kind=kind), rich_fit.predict(NEW, kind=kind))
    pd.testing.assert_frame_equal(back.predict(NEW, kind="response", seed=4),
                                  rich_fit.predict(NEW, kind="response", seed=4))
    # the offset is still applied to new data: doubling the exposure adds log(2) to the linear predictor
    link = back.predict(NEW.assign(expo=[1.0, 1.0, 1.0]).iloc[[0]], kind="link")["Estimate"].iloc[0]
    link2 = back.predict(NEW.assign(expo=[2.0, 2.0, 2.0]).iloc[[0]], kind="link")["Estimate"].iloc[0]
    assert link2 - link == pytest.approx(np.log(2.0))


def test_round_trip_in_a_new_process(rich_fit, tmp_path):
    path = tmp_path / "rich.hfit"
    rich_fit.save(path)
    NEW.to_csv(tmp_path / "new.csv", index=False)
    out = _run(f"""
        import hierfit, pandas as pd
        m = hierfit.load({str(path)!r})
        new = pd.read_csv({str(tmp_path / "new.csv")!r})
        print(m.summary().to_text())
        print(m.predict(new, kind="mean").to_csv(float_format="%.17g"))
    """)
    expected = rich_fit.summary().to_text() + "\n" + rich_fit.predict(NEW, kind="mean").to_csv(float_format="%.17g")
    assert out.stdout.strip() == expected.strip()


# -- damaged files -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved(rich_fit, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "rich.hfit"
    rich_fit.save(path)
    return path


@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.25, 0.5, 0.75, 0.999])
def test_truncated_anywhere_gives_a_clear_error(saved, tmp_path, fraction):
    raw = saved.read_bytes()
    cut = tmp_path / "cut.hfit"
    cut.write_bytes(raw[: int(len(raw) * fraction)])
    with pytest.raises(PersistenceError, match="damaged or truncated"):
        hierfit.load(cut)


_PAYLOAD = "arrays/tree/1/v0.npy"  # the first posterior variable's draws


def _rewrite(saved, path, meta=None, payload=None):
    """Copy a saved fit, replacing meta.json and/or one array member."""
    with zipfile.ZipFile(saved) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    old_payload = members[_PAYLOAD]
    if meta is not None:
        members["meta.json"] = meta
    if payload is not None:
        members[_PAYLOAD] = payload
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return old_payload


def test_damaged_payload_gives_a_clear_error(saved, tmp_path):
    bad = tmp_path / "bad.hfit"
    payload = _rewrite(saved, bad)
    _rewrite(saved, bad, payload=payload[: len(payload) // 2])
    with pytest.raises(PersistenceError, match="damaged or truncated"):
        hierfit.load(bad)
    _rewrite(saved, bad, meta=b"{not json")
    with pytest.raises(PersistenceError, match="damaged or truncated"):
        hierfit.load(bad)
    newer = json.dumps({"format": "hierfit-fit", "format_version": 3, "hierfit_version": "0.2.0"})
    _rewrite(saved, bad, meta=newer)
    with pytest.raises(PersistenceError, match=r"format 3, newer than this hierfit reads \(2\); upgrade hierfit"):
        hierfit.load(bad)


@pytest.mark.parametrize("meta, payload", [
    (None, pickle.dumps(3)),  # an array member that is a pickle, not an array
    (b"[]", None),  # meta.json that is not an object
])
def test_file_that_is_not_a_fit_gives_a_clear_error(saved, tmp_path, meta, payload):
    bad = tmp_path / "bad.hfit"
    _rewrite(saved, bad, meta=meta, payload=payload)
    with pytest.raises(PersistenceError):
        hierfit.load(bad)
