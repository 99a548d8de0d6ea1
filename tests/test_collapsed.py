"""The collapsed Gaussian sampler: exact marginal likelihood, same posterior as the full sampler."""

import numpy as np
import pandas as pd
import pytensor
import pytest
from scipy import stats

import hierfit
from conftest import quiet_fit
from hierfit.spec.layout import collapsed_layout, collapsible, sufficient_stats
from hierfit.engine.collapsed import build_collapsed_model
from hierfit.spec.design import build_design
from hierfit.spec.priors import resolve_priors


def _marginal_at_random_point(d, rng):
    """The collapsed model's marginal log-likelihood at a random point, and b, sigma, sd_*, cor_* there."""
    m = build_collapsed_model(d, resolve_priors(d))
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in m.initial_point().items()}
    loglik = m.compile_logp(vars=m.potentials, jacobian=False)(point)
    names = ["b", "sigma"] + [f"sd_{b.key}" for b in d.blocks] + [f"cor_{b.key}" for b in d.blocks if b.is_correlated]
    fn = pytensor.function(m.value_vars, m.replace_rvs_by_values([m[n] for n in names]), on_unused_input="ignore")
    return loglik, dict(zip(names, fn(**point)))


@pytest.mark.parametrize("formula, q", [("y ~ x + (1 | g)", 1), ("y ~ x + (x | g)", 2), ("y ~ x + (x || g)", 2),
                                        ("y ~ x + z + (x + z | g)", 3)])
def test_marginal_likelihood_equals_dense_normal(formula, q):
    rng = np.random.default_rng(q)
    g = np.repeat(np.arange(6), 5)
    df = pd.DataFrame({"y": rng.normal(size=30), "x": rng.normal(size=30), "z": rng.normal(size=30), "g": g})
    d = build_design(formula, df)
    loglik, vals = _marginal_at_random_point(d, rng)
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


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g/h)", "y ~ x + (x | g/h)", "y ~ x + (x || g) + (1 | g:h)",
                                     "y ~ x + (1 | g:h) + (x | g)"])
def test_nested_marginal_likelihood_equals_dense_normal(formula):
    """An inner factor nested in an outer one: the arrow-shaped Woodbury equals the dense marginal normal."""
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(4), 9)
    h = np.tile(np.repeat(np.arange(3), 3), 4)  # 3 inner levels of 3 rows in each outer level
    df = pd.DataFrame({"y": rng.normal(size=36), "x": rng.normal(size=36), "g": g, "h": h})
    d = build_design(formula, df)
    ok, why = collapsible(d)
    assert ok and why.startswith("Gaussian with ") and why.endswith(" nested in g")
    loglik, vals = _marginal_at_random_point(d, rng)
    V = vals["sigma"] ** 2 * np.eye(36)
    for blk in d.blocks:  # each block adds Z_b Sigma_b Z_b' within its levels
        sd = vals[f"sd_{blk.key}"]
        Sigma = np.outer(sd, sd) * (vals[f"cor_{blk.key}"] if blk.is_correlated else np.eye(len(sd)))
        same = blk.index[:, None] == blk.index[None, :]
        V += same * (blk.Z @ Sigma @ blk.Z.T)
    assert loglik == pytest.approx(stats.multivariate_normal(d.X @ vals["b"], V).logpdf(d.y), rel=1e-10)


def test_crossed_factors_are_not_collapsible():
    df = pd.DataFrame({"y": np.arange(12.0), "g": np.repeat([0, 1, 2], 4), "h": np.tile([0, 1], 6)})
    ok, why = collapsible(build_design("y ~ (1 | g) + (1 | h)", df))
    assert not ok and "crossed, not nested" in why
    ok, why = collapsible(build_design("y ~ (1 | g) + (1 | g:h) + (1 | h)", df))
    assert not ok and why.startswith("several grouping factors (") and "one nested in another" in why
    with pytest.raises(hierfit.HierfitError, match="collapsed sampler does not apply: several grouping factors"):
        collapsed_layout(build_design("y ~ (1 | g) + (1 | h)", df))


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


def test_nested_collapsed_agrees_with_full_sampler():
    """Classes nested in schools: collapsed and full samplers agree on every summary quantity and group effect."""
    rng = np.random.default_rng(11)
    J, C, n = 15, 4, 6
    g = np.repeat(np.arange(J), C * n)
    h = np.tile(np.repeat(np.arange(C), n), J)
    x = rng.normal(size=g.size)
    y = 1 + 0.5 * x + rng.normal(0, 0.6, J)[g] + rng.normal(0, 0.4, J * C)[g * C + h] + rng.normal(0, 0.5, g.size)
    df = pd.DataFrame({"y": y, "x": x, "school": g, "class": h})
    formula = "y ~ x + (1 | school/class)"
    col = quiet_fit(formula, df, seed=1)
    full = quiet_fit(formula, df, method="full", seed=2)
    assert col.method.name == "collapsed" and "class:school nested in school" in col.method.reason
    assert full.method.name == "full"
    fa, fb = col.fixef(), full.fixef()
    assert (np.abs(fa["Estimate"] - fb["Estimate"]) < 0.2 * fb["Est.Error"]).all()
    va, vb = col.VarCorr(), full.VarCorr()
    sd_b = (vb["u-95% CI"] - vb["l-95% CI"]) / 3.92
    assert (np.abs(va["sdcor"] - vb["sdcor"]) < 0.2 * sd_b).all()
    for group in ("school", "class:school"):
        ra, rb = col.ranef()[group], full.ranef()[group]
        assert list(ra.index) == list(rb.index) and len(ra) == (J if group == "school" else J * C)
        diff = np.abs(ra[("(Intercept)", "Estimate")] - rb[("(Intercept)", "Estimate")])
        assert (diff < 0.25 * rb[("(Intercept)", "Est.Error")]).all()
    assert col.diagnostics["Bulk_ESS"].min() > full.diagnostics["Bulk_ESS"].min()


@pytest.mark.parametrize("q", [1, 2, 3])
def test_gaussian_conditional_draws_have_the_right_moments(q):
    from hierfit.engine.group_draws import _gaussian_conditional

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


@pytest.mark.parametrize("formula", ["y ~ x + (x | g)", "y ~ x + (1 | g)", "y ~ 0 + (x | g)", "y ~ x + (1 | g) + (0 + x | g)"])
def test_compiled_group_draws_equal_the_numpy_algebra(formula):
    """One factor with q <= 2: the compiled sweep gives the numpy closed forms' draws from the same normals."""
    from hierfit.engine.group_draws import _conditional_chunk, _one_factor_draws
    from hierfit.spec.design import build_design
    from hierfit.spec.layout import collapsed_layout, sufficient_stats

    rng = np.random.default_rng(5)
    g = rng.integers(0, 30, 600)
    x = rng.normal(size=600)
    df = pd.DataFrame({"y": rng.normal(size=30)[g] + 0.5 * x + rng.normal(size=600), "x": x, "g": g})
    design = build_design(formula, df)
    lay = collapsed_layout(design)
    stats = sufficient_stats(design, lay)
    K, q = stats.Zy.shape
    S, p = 7, stats.ZX.shape[-1]
    A = rng.normal(size=(S, q, q))
    sigma_inv = A @ np.swapaxes(A, 1, 2) + np.eye(q)
    b, s2 = rng.normal(size=(S, p)), rng.uniform(0.5, 2.0, S)
    z = rng.standard_normal((S, K, q))
    (ref,) = _conditional_chunk(lay, stats, sigma_inv, b, s2, [z])
    out = np.empty((S, K, q))
    ZX, bb = (stats.ZX, b) if p else (np.zeros((K, q, 1)), np.zeros((S, 1)))
    _one_factor_draws(sigma_inv, bb, s2, stats.Zy, ZX, stats.ZZ, z, out)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)


def _one_row_levels():
    """Nested data whose inner factor has one row per level (as students within schools in Exam)."""
    rng = np.random.default_rng(11)
    school = np.repeat(np.arange(8), 6)
    y = 0.4 * rng.normal(size=8)[school] + rng.normal(size=school.size)
    student = np.arange(school.size)
    student[[1, 7, 13, 19]] = student[[0, 6, 12, 18]]  # four students with two rows
    return pd.DataFrame({"y": y, "x": rng.normal(size=school.size), "school": school, "student": student})


def test_variance_decomposition_keeps_pymcs_log_density_and_its_gradient():
    """The sampler's (total sd, log ratio) coordinates: Jacobian 1, so the kernel's log density at y is PyMC's at
    the mapped point; its gradient is checked against central differences."""
    from hierfit.engine.kernel import build_spec, load
    from hierfit.engine.kernel.vardec import forward, inverse

    entry = load()
    d = build_design("y ~ x + (1 | school/student)", _one_row_levels())
    pr = resolve_priors(d)
    spec = build_spec(d, pr, collapsed=True)
    names = {v.name: int(v.positions[0]) for v in spec.value_vars}
    assert spec.vardec == (names["sigma_log__"], (names["sd_student_school_log__"],))
    model = build_collapsed_model(d, pr)
    logp = model.compile_logp(mode="FAST_COMPILE")
    rng = np.random.default_rng(2)
    for _ in range(3):
        y = spec.init_centre + rng.uniform(-1.5, 1.5, spec.n_dim)
        np.testing.assert_allclose(inverse(forward(y, spec.vardec), spec.vardec), y, rtol=1e-12, atol=1e-12)
        x = spec.pymc_point(y)
        sigma, tau = np.exp(x["sigma_log__"]), np.exp(x["sd_student_school_log__"])
        assert np.log(np.hypot(sigma, tau)) == pytest.approx(y[spec.vardec[0]], rel=1e-12)
        grad = np.zeros(spec.n_dim)
        lp = entry.logp_and_grad(y, grad, spec.ints, spec.floats)
        assert lp == pytest.approx(float(logp(x)), rel=1e-9)
        h = 1e-6
        for i in range(spec.n_dim):
            e = np.zeros(spec.n_dim)
            e[i] = h
            up = entry.logp_and_grad(y + e, np.zeros(spec.n_dim), spec.ints, spec.floats)
            down = entry.logp_and_grad(y - e, np.zeros(spec.n_dim), spec.ints, spec.floats)
            assert grad[i] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-5)
    # with two rows per inner level sigma is identified on its own: PyMC's coordinates are kept
    two = _one_row_levels()
    two["student"] = np.arange(len(two)) // 2
    assert build_spec(build_design("y ~ x + (1 | school/student)", two), pr, collapsed=True).vardec is None


def test_decomposed_model_samples_at_target_accept_09_by_default():
    d = _one_row_levels()
    kw = dict(draws=100, tune=100, chains=1, seed=1, progressbar=False, warn=False, ess_target=None)
    m = hierfit.fit("y ~ x + (1 | school/student)", d, **kw)
    assert m.method.name == "collapsed" and m.settings.target_accept == 0.9
    assert "sigma and sd of student:school sampled as their total sd and ratio" in str(m)
    assert np.all(m.posterior["posterior"]["sd_student_school"].values > 0)
    assert hierfit.fit("y ~ x + (1 | school)", d, **kw).settings.target_accept == 0.8
    assert hierfit.fit("y ~ x + (1 | school/student)", d, target_accept=0.85, **kw).settings.target_accept == 0.85


def test_group_draws_in_many_chunks_equal_one_sweep(monkeypatch):
    """The compiled draws of a chunk run in a second thread while the next chunk's normals are drawn: the result
    is that of one sweep over all the seed's normals (drawn in order)."""
    from hierfit.engine import group_draws
    from hierfit.engine.group_draws import _one_factor_draws, draw_group_effects
    from hierfit.results.draws import stack

    rng = np.random.default_rng(8)
    g = rng.integers(0, 25, 500)
    x = rng.normal(size=500)
    df = pd.DataFrame({"y": rng.normal(size=25)[g] + 0.5 * x + rng.normal(size=500), "x": x, "g": g})
    fit = hierfit.fit("y ~ x + (x | g)", df, chains=2, draws=60, tune=100, seed=3, progressbar=False, warn=False)
    post = fit.posterior["posterior"].to_dataset().drop_vars(["r_g"])
    monkeypatch.setattr(group_draws, "NORMAL_ELEMENTS", 25 * 4 * 7)  # chunks of 7 draws: 18 chunks for 120 draws
    got = stack(draw_group_effects(post, fit.design, 11), "r_g")
    lay = collapsed_layout(fit.design)
    suff = sufficient_stats(fit.design, lay)
    b, s2 = stack(post, "b"), stack(post, "sigma") ** 2
    L = stack(post, "sd_g")[:, :, None] * np.linalg.cholesky(stack(post, "cor_g") + 1e-12 * np.eye(2))
    Linv = np.linalg.solve(L, np.eye(2)[None])
    ref = np.empty_like(got)
    z = np.random.default_rng(11).standard_normal(ref.shape)
    _one_factor_draws(np.einsum("sji,sjk->sik", Linv, Linv), b, s2, suff.Zy, suff.ZX, suff.ZZ, z, ref)
    np.testing.assert_array_equal(got, ref)
