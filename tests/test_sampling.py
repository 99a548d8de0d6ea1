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


def test_pytensor_kernel_gives_the_same_draws_as_nutpies_own(small):
    kw = dict(draws=150, tune=150, chains=2, seed=3, method="full", parametrization="noncentered")
    cached = quiet_fit("y ~ x + (1 | g)", small, kernel="pytensor", **kw)
    cfunc = quiet_fit("y ~ x + (1 | g)", small, kernel="cfunc", **kw)
    assert cached.kernel == "pytensor" and cfunc.kernel == "cfunc"
    np.testing.assert_array_equal(cached.draws["b"].values, cfunc.draws["b"].values)
    np.testing.assert_array_equal(cached.draws["sd_g"].values, cfunc.draws["sd_g"].values)


@pytest.mark.parametrize("method", ["full", "collapsed"])
def test_hierfit_kernel_samples_the_pytensor_kernels_posterior(small, method):
    """Same density, same NUTS: the two kernels' posteriors agree (the draws differ: other starting points)."""
    kw = dict(draws=1000, tune=500, chains=2, seed=5, method=method)
    ours = quiet_fit("y ~ x + (1 | g)", small, **kw)
    ref = quiet_fit("y ~ x + (1 | g)", small, kernel="pytensor", **kw)
    assert ours.kernel == "hierfit" and ref.kernel == "pytensor"
    assert set(ours.draws.data_vars) == set(ref.draws.data_vars)
    for name in ("b", "sd_g", "sigma", "r_g"):
        a, b = ours.draws[name], ref.draws[name]
        assert a.dims == b.dims and a.shape == b.shape, name
        sd = b.std(("chain", "draw")).values
        diff = np.abs(a.mean(("chain", "draw")).values - b.mean(("chain", "draw")).values)
        assert np.all(diff < 0.25 * sd), (name, diff / sd)
    pd.testing.assert_index_equal(ours.fixef().index, ref.fixef().index)


@pytest.mark.parametrize("method", ["full", "collapsed"])
def test_jax_kernel_samples_the_same_posterior(small, method):
    """nutpie's JAX backend (the PyMC model compiled by JAX), on the CPU here, for GPUs elsewhere."""
    kw = dict(draws=800, tune=500, chains=2, seed=2, method=method)
    jx = quiet_fit("y ~ x + (1 | g)", small, kernel="jax", **kw)
    ours = quiet_fit("y ~ x + (1 | g)", small, **kw)
    assert jx.kernel == "jax" and jx.method.name == method
    for name in ("b", "sd_g", "sigma", "r_g"):
        a, b = jx.draws[name], ours.draws[name]
        assert a.dims == b.dims
        diff = np.abs(a.mean(("chain", "draw")).values - b.mean(("chain", "draw")).values)
        assert np.all(diff < 0.25 * b.std(("chain", "draw")).values), (name, diff)


def test_kernel_fallback_when_the_compiled_kernel_cannot_evaluate_a_model(small, monkeypatch):
    import hierfit.engine.kernel as kernel_mod

    def unsupported(*args, **kwargs):
        raise kernel_mod.KernelUnsupported("a model the kernel does not know")

    monkeypatch.setattr(kernel_mod, "build_spec", unsupported)
    kw = dict(draws=100, tune=100, chains=1, seed=3)
    m = quiet_fit("y ~ x + (1 | g)", small, **kw)
    assert m.kernel == "pytensor"
    with pytest.raises(hierfit.HierfitError, match="kernel='hierfit' cannot evaluate this model: a model the kernel"):
        hierfit.fit("y ~ x + (1 | g)", small, kernel="hierfit", progressbar=False, **kw)


@pytest.mark.parametrize("kernel", ["auto", "pytensor"])
def test_pymc_sampler(small, kernel):
    """PyMC's NUTS on hierfit's kernel (default) or on the PyMC model's own graph."""
    m = quiet_fit("y ~ x + (1 | g)", small, sampler="pymc", kernel=kernel, draws=300, tune=300, chains=1, seed=2)
    assert m.kernel == ("hierfit" if kernel == "auto" else None)
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
    with pytest.raises(hierfit.HierfitError, match="kernel='cfunc' is one of nutpie's"):
        hierfit.fit("y ~ x + (1 | g)", small, sampler="pymc", kernel="cfunc")
