"""Model checks that say what to fit instead: DHARMa-style tests, pp_check types, check_model."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import hierfit
from hierfit.analysis.checks import (dispersion_test, dispersion_verdict, outlier_test, two_sided_p,
                                     zero_inflation_test)
from hierfit.errors import HierfitError
from hierfit.plots.ppc import PP_TYPES

from conftest import grouped_data

OWLS_FORMULA = "SiblingNegotiation ~ FoodTreatment * SexParent + offset(log(BroodSize)) + (1 | Nest)"
KW = dict(chains=2, draws=300, tune=300, seed=1, progressbar=False, warn=False)


@pytest.fixture(scope="module")
def owls_poisson():
    return hierfit.fit(OWLS_FORMULA, hierfit.datasets.load("owls"), family="poisson", **KW)


def test_owls_poisson_is_flagged_for_zero_inflation_and_overdispersion(owls_poisson):
    tab = owls_poisson.check_residuals(nsim=200).set_index("test")
    assert list(tab.columns) == ["statistic", "p_value", "verdict"]
    assert tab.loc["dispersion", "p_value"] < 0.05 and tab.loc["dispersion", "statistic"] > 2
    assert "overdispersion" in tab.loc["dispersion", "verdict"] and "negbinomial" in tab.loc["dispersion", "verdict"]
    zi = tab.loc["zero-inflation"]
    assert zi["p_value"] < 0.05 and zi["statistic"] > 5  # 156 zeros against ~10 expected
    assert "zero-inflated" in zi["verdict"]
    assert tab.loc["uniformity (KS)", "p_value"] < 0.05


def test_a_well_specified_model_passes_every_test():
    data = grouped_data(15, 20, intercept=0.5, slope=0.4, sd=0.3, family="poisson", seed=4)
    m = hierfit.fit("y ~ x + (1 | g)", data, family="poisson", **KW)
    tab = m.check_residuals(nsim=200).set_index("test")
    assert (tab["p_value"].dropna() > 0.01).all(), tab
    assert tab.loc["dispersion", "verdict"].startswith("dispersion fits")


def test_statistics_against_their_definitions():
    rng = np.random.default_rng(0)
    sims = rng.poisson(4.0, (400, 300)).astype(float)
    ok = rng.poisson(4.0, 300).astype(float)
    ratio, p, _ = dispersion_test(ok, sims)
    assert 0.8 < ratio < 1.2 and p > 0.05
    over = rng.negative_binomial(2, 2 / 6, 300).astype(float)  # mean 4, variance 12
    ratio, p, _ = dispersion_test(over, sims)
    assert 2.0 < ratio < 4.5 and p < 0.01
    zi = np.where(rng.uniform(size=300) < 0.25, 0.0, ok)
    zratio, zp, simz = zero_inflation_test(zi, sims)
    assert zratio == pytest.approx(np.sum(zi == 0) / simz.mean()) and zp < 0.01
    freq, op, count = outlier_test(ok, sims)
    assert count == int(np.sum((ok < sims.min(0)) | (ok > sims.max(0)))) and op > 0.05


def test_p_value_and_statistic_are_dharmas():
    # DHARMa's getP (two-sided): min(2 min(mean(sim <= obs), mean(sim >= obs)), 1), counted by hand
    sim = np.array([0.5, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.6, 2.0, 2.5])
    assert two_sided_p(0.85, sim) == pytest.approx(2 * 2 / 10)
    assert two_sided_p(2.2, sim) == pytest.approx(2 * 1 / 10)
    assert two_sided_p(1.15, sim) == 1.0 and two_sided_p(3.0, sim) == 0.0
    # testDispersion(type = "DHARMa"): var(y - fitted) / mean over simulations of var(sim - fitted)
    rng = np.random.default_rng(3)
    fitted = rng.uniform(1, 8, 50)
    sims = rng.poisson(fitted, (200, 50)).astype(float)
    y = rng.poisson(fitted).astype(float)
    ratio, p, simulated = dispersion_test(y, sims, fitted)
    by_hand = [np.mean((s - fitted - np.mean(s - fitted)) ** 2) for s in sims]
    assert simulated == pytest.approx(by_hand)
    assert ratio == pytest.approx(np.var(y - fitted) / np.mean(by_hand))


def test_dispersion_verdict_names_the_direction():
    assert dispersion_verdict(0.75, 0.03, discrete=True).startswith("underdispersion")
    assert dispersion_verdict(5.2, 0.0, discrete=True).startswith("overdispersion")
    assert "negbinomial" in dispersion_verdict(5.2, 0.0, discrete=True)
    assert "student" in dispersion_verdict(1.6, 0.001, discrete=False)
    for ratio in (0.75, 1.3):
        assert dispersion_verdict(ratio, 0.2, discrete=True).startswith("dispersion fits")


@pytest.mark.parametrize("kind", PP_TYPES)
def test_pp_check_types_draw_observed_and_replicated(owls_poisson, kind):
    fig = owls_poisson.pp_check(kind, ndraws=20, group="Nest", stat="prop_zero", max_panels=4)
    gids = {artist.get_gid() for ax in fig.axes for artist in ax.get_children()}
    assert any(g and g.startswith("y-rep") for g in gids)
    assert "y-observed" in gids
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_pp_check_stat_reports_observed_statistic(owls_poisson):
    fig = owls_poisson.pp_check("stat", stat=["mean", "prop_zero"], ndraws=50)
    y = owls_poisson.design.y
    titles = [ax.get_title() for ax in fig.axes]
    assert f"{np.mean(y == 0):.3g}" in titles[1] and f"{np.mean(y):.3g}" in titles[0]
    with pytest.raises(HierfitError, match="type must be one of"):
        owls_poisson.pp_check("violin")
    with pytest.raises(HierfitError, match="group="):
        owls_poisson.pp_check("stat_grouped")


def test_check_model_panel_carries_the_verdicts(owls_poisson):
    fig = owls_poisson.check_model(nsim=100, ndraws=10)
    text = " ".join(ax.get_title() for ax in fig.axes)
    assert "overdispersion" in text and "zero-inflation" in text
    assert len(fig.axes) == 6
