"""Samplers and kernels: the same posterior whichever way the model is evaluated."""

import numpy as np
import pandas as pd
import pytest

import hierfit
from conftest import quiet_fit


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(12), 8)
    x = rng.normal(size=g.size)
    y = 1 + 0.5 * x + rng.normal(0, 0.7, 12)[g] + rng.normal(0, 1, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def test_cached_kernel_gives_the_same_draws_as_nutpies_own(small):
    kw = dict(draws=150, tune=150, chains=2, seed=3, method="full", parametrization="noncentered")
    cached = quiet_fit("y ~ x + (1 | g)", small, kernel="cached", **kw)
    cfunc = quiet_fit("y ~ x + (1 | g)", small, kernel="cfunc", **kw)
    assert cached.kernel == "cached" and cfunc.kernel == "cfunc"
    np.testing.assert_array_equal(cached.draws["b"].values, cfunc.draws["b"].values)
    np.testing.assert_array_equal(cached.draws["sd_g"].values, cfunc.draws["sd_g"].values)


def test_pymc_sampler(small):
    m = quiet_fit("y ~ x + (1 | g)", small, sampler="pymc", draws=300, tune=300, chains=1, seed=2)
    assert m.draws["b"].shape == (1, 300, 2)
    ref = quiet_fit("y ~ x + (1 | g)", small, draws=300, tune=300, chains=2, seed=2)
    a, b = m.fixef(), ref.fixef()
    assert (np.abs(a["Estimate"] - b["Estimate"]) < 0.5 * b["Est.Error"]).all()
    assert "NUTS (pymc)" in m.summary().to_text()


def test_bad_settings(small):
    with pytest.raises(hierfit.HierfitError, match="kernel must be one of"):
        hierfit.fit("y ~ x + (1 | g)", small, kernel="gpu")
    with pytest.raises(hierfit.HierfitError, match="method must be one of"):
        hierfit.fit("y ~ x + (1 | g)", small, method="laplace")
    with pytest.raises(hierfit.HierfitError, match="sampler must be one of"):
        hierfit.fit("y ~ x + (1 | g)", small, sampler="stan")
