"""Per-term parametrization chosen from the data; convergence problems are never silent."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import hierfit
from conftest import grouped_data, quiet_fit
from hierfit.spec.design import build_design
from hierfit.spec.parametrization import choose_parametrization

FAST = dict(draws=500, tune=500, chains=2, seed=1, method="full")  # sample the group effects (no collapsing)


@pytest.fixture(scope="module")
def rich():
    """8 groups x 400 rows: every level's mean is pinned by its data."""
    return grouped_data(8, 400, intercept=1.0, slope=0.5, sd=1.0, seed=1)


@pytest.fixture(scope="module")
def poor():
    """100 groups x 3 rows with a small group sd: the prior dominates each level."""
    return grouped_data(100, 3, intercept=1.0, slope=0.5, sd=0.3, seed=2)


def _min_ess(fit):
    return float(fit.diagnostics["Bulk_ESS"].min())


def test_data_rich_term_is_centred_and_mixes_better(rich):
    auto = quiet_fit("y ~ x + (1 | g)", rich, **FAST)
    assert auto.parametrization.by_name() == {"g": "centered"}
    assert "median 400 rows per level" in auto.parametrization.reasons["g"]
    nc = quiet_fit("y ~ x + (1 | g)", rich, parametrization="noncentered", **FAST)
    assert _min_ess(auto) > 3 * _min_ess(nc), (_min_ess(auto), _min_ess(nc))
    # both describe the same posterior: same group effects up to Monte Carlo error
    a = auto.ranef()["g"][("(Intercept)", "Estimate")].to_numpy()
    b = nc.ranef()["g"][("(Intercept)", "Estimate")].to_numpy()
    np.testing.assert_allclose(a, b, atol=0.1)
    assert "Group effects: g: centered (auto:" in auto.summary().to_text()


def test_data_poor_term_is_noncentred(poor):
    auto = quiet_fit("y ~ x + (1 | g)", poor, **FAST)
    assert auto.parametrization.by_name() == {"g": "noncentered"}
    centred = quiet_fit("y ~ x + (1 | g)", poor, parametrization="centered", **FAST)
    assert _min_ess(auto) > 3 * _min_ess(centred)
    assert centred.converged is False
    msgs = " ".join(centred.warnings)
    assert "parametrization={'g': 'noncentered'}" in msgs  # the remedy names the term and the other choice


def test_choice_per_term_and_forcing(exam):
    d = build_design("normexam ~ standLRT + (1 | school) + (1 | student)", exam)
    p = choose_parametrization(d, "auto")
    assert p.by_name() == {"student": "noncentered", "school": "centered"}
    forced = choose_parametrization(d, {"school": "noncentered"})
    assert forced.by_name() == {"student": "noncentered", "school": "noncentered"}
    assert forced.reasons["school"] == "forced"
    with pytest.raises(hierfit.HierfitError, match="not a group term"):
        choose_parametrization(d, {"class": "centered"})
    with pytest.raises(hierfit.HierfitError, match="must be 'auto'"):
        choose_parametrization(d, "sideways")


def test_same_seed_same_draws_cold_and_warm_cache(tmp_path):
    """Two fresh processes, the first with an empty compile cache, give bit-identical draws."""
    code = (
        "import sys, warnings, numpy as np, pandas as pd, hierfit\n"
        "warnings.simplefilter('ignore')\n"
        "rng = np.random.default_rng(0); g = np.repeat(np.arange(10), 10)\n"
        "df = pd.DataFrame({'y': rng.normal(size=100) + rng.normal(size=10)[g], 'x': rng.normal(size=100), 'g': g})\n"
        "m = hierfit.fit('y ~ x + (x | g)', df, draws=100, tune=100, chains=2, seed=9, progressbar=False)\n"
        "np.save(sys.argv[1], m.draws['b'].values)\n"
    )
    env_cache = {"PYTENSOR_FLAGS": f"base_compiledir={tmp_path}/ptc", "NUMBA_CACHE_DIR": f"{tmp_path}/nbc"}
    import os

    for name in ("cold", "warm"):
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / f"{name}.npy")], capture_output=True,
                             text=True, env={**os.environ, **env_cache}, timeout=600)
        assert out.returncode == 0, out.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "cold.npy"), np.load(tmp_path / "warm.npy"))
