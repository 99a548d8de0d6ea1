"""Convergence of the group effects: the screened exact statistics, the warning, fit.converged."""

from types import SimpleNamespace

import numpy as np
import xarray as xr

from conftest import grouped_data, quiet_fit
from hierfit.results.diagnostics import convergence_stats
from hierfit.results.group_diagnostics import group_effect_diagnostics, group_effect_message


def _posterior(n_levels, n_coefs, rng, chains=4, draws=400):
    r = rng.normal(size=(chains, draws, n_levels, n_coefs))
    levels = [f"L{i}" for i in range(n_levels)]
    coefs = ["(Intercept)", "x"][:n_coefs]
    post = xr.Dataset({"r_g": (("chain", "draw", "g__level", "g__coef"), r)},
                      coords={"g__level": levels, "g__coef": coefs})
    design = SimpleNamespace(all_blocks=[SimpleNamespace(key="g", name="g", levels=levels, coefs=coefs)])
    return post, design


def _ar1(rng, rho, chains, draws):
    e = rng.normal(size=(chains, draws)) * np.sqrt(1 - rho ** 2)
    x = np.empty((chains, draws))
    x[:, 0] = rng.normal(size=chains)
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + e[:, t]
    return x


def test_screening_finds_the_least_converged_among_thousands():
    rng = np.random.default_rng(3)
    post, design = _posterior(1500, 2, rng)
    r = post["r_g"].values
    r[2, :, 700, 1] += 1.5  # one chain away from the others: R-hat
    r[:, :, 1234, 0] = _ar1(rng, 0.9, 4, 400)  # sticky chains: low ESS, R-hat near 1
    tab = group_effect_diagnostics(post, design, exact_elements=0)  # screened, not all exact
    assert tab.index[0] == "r_g[L700,x]"
    # the screened statistics are the exact ones of the full computation
    full = convergence_stats(np.moveaxis(r.reshape(4, 400, -1), -1, 0))
    flat = {f"r_g[L{i // 2},{('(Intercept)', 'x')[i % 2]}]": i for i in range(3000)}
    # the two injected problems are the full computation's two worst by R-hat and by ESS, and the table's
    by_rhat = [int(i) for i in np.argsort(-full[0])[:2]]
    by_ess = [int(i) for i in np.argsort(np.minimum(full[1], full[2]))[:2]]
    assert sorted(by_rhat) == sorted(by_ess) == sorted([flat["r_g[L700,x]"], flat["r_g[L1234,(Intercept)]"]])
    assert [flat[n] for n in tab.index[:2]] == by_rhat
    for name in tab.index[:2]:
        i = flat[name]
        np.testing.assert_allclose(tab.loc[name].to_numpy(), [full[0][i], full[1][i], full[2][i]], rtol=1e-12)
    assert len(tab) <= 200
    msg = group_effect_message(tab, 400)
    assert "r_g[L700,x]" in msg and "fit.update(draws=800)" in msg


def test_screening_finds_a_chain_with_another_spread():
    rng = np.random.default_rng(8)
    post, design = _posterior(1500, 1, rng)
    post["r_g"].values[3, :, 222, 0] *= 3.0  # same location, three times the spread: the folded R-hat
    tab = group_effect_diagnostics(post, design, exact_elements=0)
    assert tab.index[0] == "r_g[L222,(Intercept)]" and tab["Rhat"].iloc[0] > 1.01
    # below the bound every group effect gets the exact statistics, worst first
    full = group_effect_diagnostics(post, design)
    assert len(full) == 1500 and full.index[0] == "r_g[L222,(Intercept)]"
    x = np.moveaxis(post["r_g"].values.reshape(4, 400, -1), -1, 0)
    np.testing.assert_allclose(np.sort(full["Rhat"].to_numpy()), np.sort(convergence_stats(x)[0]), rtol=1e-12)


def test_no_message_when_every_group_effect_passes():
    post, design = _posterior(40, 1, np.random.default_rng(4), draws=1000)
    tab = group_effect_diagnostics(post, design)
    assert group_effect_message(tab, 1000) is None
    assert group_effect_diagnostics(post, None).empty  # collapsed fits: not screened


def test_a_short_full_fit_warns_about_its_group_effects_and_is_not_converged():
    d = grouped_data(12, 8, intercept=0.5, slope=0.3, sd=0.7, family="poisson", seed=5)
    fit = quiet_fit("y ~ x + (1 | g)", d, family="poisson", draws=100, tune=200, chains=2, seed=1)
    assert fit.method.name != "collapsed"
    tab = fit.group_diagnostics
    assert set(tab.index) <= {f"r_g[{lev},(Intercept)]" for lev in range(12)} and len(tab) == 12
    assert (tab[["Bulk_ESS", "Tail_ESS"]].min(axis=1) < 400).any()  # 200 draws in all
    assert any("group effect(s)" in w and "r_g[" in w for w in fit.warnings)
    assert not fit.converged


def test_collapsed_fits_do_not_screen_exact_group_draws():
    d = grouped_data(10, 6, intercept=1.0, slope=0.5, sd=0.8, seed=6)
    fit = quiet_fit("y ~ x + (1 | g)", d, draws=300, tune=300, chains=2, seed=2)
    assert fit.method.name == "collapsed" and fit.group_diagnostics.empty
