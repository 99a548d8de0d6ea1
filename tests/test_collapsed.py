"""The collapsed Gaussian sampler: exact marginal likelihood, same posterior as the full sampler."""

import numpy as np
import pandas as pd
import pytensor
import pytest
from scipy import stats

import hierfit
from conftest import quiet_fit
from hierfit.collapsed import build_collapsed_model, collapsible, sufficient_stats
from hierfit.design import build_design
from hierfit.priors import resolve_priors


@pytest.mark.parametrize("formula, q", [("y ~ x + (1 | g)", 1), ("y ~ x + (x | g)", 2), ("y ~ x + (x || g)", 2),
                                        ("y ~ x + z + (x + z | g)", 3)])
def test_marginal_likelihood_equals_dense_normal(formula, q):
    rng = np.random.default_rng(q)
    g = np.repeat(np.arange(6), 5)
    df = pd.DataFrame({"y": rng.normal(size=30), "x": rng.normal(size=30), "z": rng.normal(size=30), "g": g})
    d = build_design(formula, df)
    m = build_collapsed_model(d, resolve_priors(d))
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in m.initial_point().items()}
    loglik = m.compile_logp(vars=m.potentials, jacobian=False)(point)
    names = ["b", "sigma"] + [f"sd_{b.key}" for b in d.blocks] + [f"cor_{b.key}" for b in d.blocks if b.is_correlated]
    fn = pytensor.function(m.value_vars, m.replace_rvs_by_values([m[n] for n in names]), on_unused_input="ignore")
    vals = dict(zip(names, fn(**point)))
    Z = np.hstack([blk.Z for blk in d.blocks])
    sds = np.concatenate([vals[f"sd_{blk.key}"] for blk in d.blocks])
    cor = np.eye(len(sds))
    start = 0
    for blk in d.blocks:
        if blk.is_correlated:
            cor[start:start + blk.n_coefs, start:start + blk.n_coefs] = vals[f"cor_{blk.key}"]
        start += blk.n_coefs
    Sigma = np.outer(sds, sds) * cor
    V = vals["sigma"] ** 2 * np.eye(30)
    for j in range(6):
        rows = g == j
        V[np.ix_(rows, rows)] += Z[rows] @ Sigma @ Z[rows].T
    assert loglik == pytest.approx(stats.multivariate_normal(d.X @ vals["b"], V).logpdf(d.y), rel=1e-10)


def test_sufficient_stats_are_group_sums(exam):
    d = build_design("normexam ~ standLRT + (standLRT | school)", exam)
    s = sufficient_stats(d)
    rows = exam["school"] == 7
    X = d.X[rows.to_numpy()]
    np.testing.assert_allclose(s.XX[6], X.T @ X)
    np.testing.assert_allclose(s.yy[6], (exam.loc[rows, "normexam"] ** 2).sum())
    assert s.n.sum() == 4059


def test_eligibility():
    exam = hierfit.datasets.load("exam")
    assert collapsible(build_design("normexam ~ standLRT + (standLRT || school)", exam))[0]
    ok, why = collapsible(build_design("normexam ~ standLRT + (1 | school) + (1 | student)", exam))
    assert not ok and "several grouping factors" in why
    ok, why = collapsible(build_design("normexam ~ standLRT", exam))
    assert not ok and "no group terms" in why


def test_fallback_message(exam):
    d = exam.iloc[:600]
    with pytest.warns(hierfit.HierfitWarning, match="method='collapsed' is not available: several grouping factors"):
        m = hierfit.fit("normexam ~ standLRT + (1 | school) + (1 | student)", d, method="collapsed", draws=100,
                        tune=100, chains=1, seed=1, progressbar=False, warn=True)
    assert m.method.name == "full"


def test_collapsed_agrees_with_full_sampler(fit_rs, exam):
    """Every summary quantity within 0.2 posterior sd of the non-centred sampler's (benchmarks: 0.1 at larger draws)."""
    assert fit_rs.method.name == "collapsed"
    full = quiet_fit("normexam ~ standLRT + sex + (standLRT | school)", exam, method="full",
                     parametrization="noncentered", seed=3)
    fa, fb = fit_rs.fixef(), full.fixef()
    assert (np.abs(fa["Estimate"] - fb["Estimate"]) < 0.2 * fb["Est.Error"]).all()
    va, vb = fit_rs.VarCorr(), full.VarCorr()
    sd_b = (vb["u-95% CI"] - vb["l-95% CI"]) / 3.92
    assert (np.abs(va["sdcor"] - vb["sdcor"]) < 0.2 * sd_b).all()
    ra = fit_rs.ranef()["school"]
    rb = full.ranef()["school"]
    for coef in ("(Intercept)", "standLRT"):
        diff = np.abs(ra[(coef, "Estimate")] - rb[(coef, "Estimate")])
        assert (diff < 0.2 * rb[(coef, "Est.Error")]).all()
    # and it mixes better: the group effects no longer slow NUTS down
    assert fit_rs.diagnostics["Bulk_ESS"].min() > full.diagnostics["Bulk_ESS"].min()
    assert "Method: collapsed" in fit_rs.summary().to_text()


@pytest.mark.parametrize("q", [1, 2, 3])
def test_gaussian_conditional_draws_have_the_right_moments(q):
    from hierfit.collapsed import _gaussian_conditional

    rng = np.random.default_rng(q)
    A = rng.normal(size=(q, q))
    M = A @ A.T + q * np.eye(q)
    u = rng.normal(size=q)
    n = 200_000
    draws = _gaussian_conditional(np.broadcast_to(M, (n, q, q)), np.broadcast_to(u, (n, q)),
                                  rng.standard_normal((n, q)))
    cov = np.linalg.inv(M)
    np.testing.assert_allclose(draws.mean(axis=0), cov @ u, atol=4 * np.sqrt(np.diag(cov).max() / n))
    np.testing.assert_allclose(np.cov(draws, rowvar=False).reshape(q, q), cov, rtol=0.02, atol=1e-3)
