"""Posterior analysis: predictions, comparisons, slopes, emmeans, hypothesis, ICC (issue 16).

Numbers are checked against closed forms of the draws (Gaussian identity-link
models: comparisons and slopes are coefficients), against direct computations from
``fit.predict(..., summary=False)`` on modified rows, and against a brute-force Monte
Carlo over simulated new groups for population-averaged predictions.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import special

import hierfit
from conftest import grouped_data, quiet_fit
from hierfit.results.draws import stack

FAST = dict(chains=2, draws=250, tune=250)


@pytest.fixture(scope="module")
def exam_ix(exam):
    """normexam ~ standLRT * sex + (1 | school)."""
    return quiet_fit("normexam ~ standLRT * sex + (1 | school)", exam, seed=3, **FAST)


def _b(fit, name):
    return stack(fit.draws, "b")[:, list(fit.draws["b"].coords["coef"].values).index(name)]


@pytest.fixture(scope="module")
def logit_ri():
    rng = np.random.default_rng(5)
    df = grouped_data(40, 25, intercept=1.5, slope=0.8, sd=1.5, family="bernoulli", rng=rng)
    df["trt"] = rng.choice(["a", "b"], len(df))
    return quiet_fit("y ~ x + trt + (1 | g)", df, family="bernoulli", seed=2, **FAST), df


# -- Gaussian identities ------------------------------------------------------------------------
def test_avg_comparison_of_sex_is_the_coefficient_draw_by_draw(exam_ix, exam):
    cmp = exam_ix.avg_comparisons("sex", summary=False).iloc[:, 0].to_numpy()
    # with standLRT * sex the gap at the mean standLRT of the fitted rows
    expected = _b(exam_ix, "sexM") + _b(exam_ix, "standLRT:sexM") * exam["standLRT"].mean()
    np.testing.assert_allclose(cmp, expected, atol=1e-10)
    grid = hierfit.datagrid(exam_ix, standLRT=0.0)
    at0 = exam_ix.avg_comparisons("sex", newdata=grid, re_form=hierfit.NA, summary=False).iloc[:, 0]
    np.testing.assert_allclose(at0, _b(exam_ix, "sexM"), atol=1e-10)


def test_slopes_by_group_are_coefficient_sums(exam_ix, exam):
    s = exam_ix.avg_slopes("standLRT", by="sex", summary=False)
    np.testing.assert_allclose(s.iloc[:, 0], _b(exam_ix, "standLRT"), atol=1e-6)
    np.testing.assert_allclose(s.iloc[:, 1], _b(exam_ix, "standLRT") + _b(exam_ix, "standLRT:sexM"), atol=1e-6)
    tab = exam_ix.avg_slopes("standLRT", by="sex")
    assert list(tab["sex"]) == ["F", "M"] and list(tab.columns[-5:]) == ["Estimate", "Est.Error", "l-95% CI",
                                                                         "u-95% CI", "pd"]
    # per school (random intercept only): standLRT + standLRT:sexM x the school's share of boys
    per_school = exam_ix.avg_slopes("standLRT", by="school", summary=False)
    share = (exam["sex"] == "M").groupby(exam["school"]).mean().to_numpy()
    expected = _b(exam_ix, "standLRT")[:, None] + _b(exam_ix, "standLRT:sexM")[:, None] * share[None, :]
    np.testing.assert_allclose(per_school.to_numpy(), expected, atol=1e-6)
    plus10 = exam_ix.avg_comparisons({"standLRT": 10}, by="sex", summary=False)
    np.testing.assert_allclose(plus10.iloc[:, 0], 10 * _b(exam_ix, "standLRT"), atol=1e-8)


def test_emmeans_pairwise_is_minus_the_coefficient(exam_ix, exam):
    x = exam["standLRT"].mean()
    gap = _b(exam_ix, "sexM") + _b(exam_ix, "standLRT:sexM") * x
    pw = exam_ix.emmeans("sex", contrasts="pairwise", summary=False)
    np.testing.assert_allclose(pw.iloc[:, 0], -gap, atol=1e-10)
    rev = exam_ix.emmeans("sex", contrasts="revpairwise")
    assert rev["contrast"].tolist() == ["M - F"]
    assert rev["Estimate"].iloc[0] == pytest.approx(gap.mean(), abs=1e-10)
    em = exam_ix.emmeans("sex", at={"standLRT": 0.0}, summary=False)
    np.testing.assert_allclose(em.iloc[:, 0], _b(exam_ix, "(Intercept)"), atol=1e-10)


def test_predictions_by_and_marginal_equals_na_for_identity(exam_ix):
    grid = hierfit.datagrid(exam_ix, sex=["F", "M"], standLRT=[-1.0, 1.0])
    assert len(grid) == 4
    na = exam_ix.predictions(grid, re_form=hierfit.NA, summary=False)
    pop = exam_ix.predictions(grid, re_form="marginal", summary=False)
    np.testing.assert_allclose(na, pop)
    expected = _b(exam_ix, "(Intercept)") + _b(exam_ix, "standLRT") * 1.0 + _b(exam_ix, "sexM") \
        + _b(exam_ix, "standLRT:sexM")
    np.testing.assert_allclose(na.iloc[:, 3], expected, atol=1e-10)
    avg = exam_ix.avg_predictions(grid, by="sex", re_form=hierfit.NA, summary=False)
    np.testing.assert_allclose(avg.iloc[:, 0], na.iloc[:, [0, 1]].mean(axis=1))


def test_icc_is_variance_ratio_per_draw(exam_ix):
    sd = stack(exam_ix.draws, "sd_school")[:, 0]
    sigma = stack(exam_ix.draws, "sigma")
    icc = exam_ix.icc(summary=False)
    np.testing.assert_allclose(icc.iloc[:, 0], sd**2 / (sd**2 + sigma**2), rtol=1e-10)
    tab = exam_ix.icc()
    assert tab["ICC"].tolist() == ["adjusted", "conditional"]
    assert tab["Estimate"].iloc[1] < tab["Estimate"].iloc[0]
    assert exam_ix.icc(by_group=True)["Group"].tolist() == ["school"]


def test_hypothesis_evidence_ratio_is_posterior_odds(exam_ix):
    sexm = _b(exam_ix, "sexM")
    tab = exam_ix.hypothesis(["sexM < -0.15", "standLRT + sexM = 0.4", "sd(Intercept | school) > 0.3",
                              "sd_school__Intercept > 0.3", "sigma^2 < 0.57"])
    p = float((sexm < -0.15).mean())
    assert tab["Post.Prob"].iloc[0] == pytest.approx(p)
    assert tab["Evid.Ratio"].iloc[0] == pytest.approx(p / (1 - p))
    assert tab["CI.Lower"].iloc[0] == -np.inf
    assert tab["CI.Upper"].iloc[0] == pytest.approx(np.quantile(sexm + 0.15, 0.95))
    assert np.isnan(tab["Evid.Ratio"].iloc[1])
    assert tab["Estimate"].iloc[1] == pytest.approx((_b(exam_ix, "standLRT") + sexm - 0.4).mean())
    assert tab["Estimate"].iloc[2] == tab["Estimate"].iloc[3]
    sigma = stack(exam_ix.draws, "sigma")
    assert tab["Post.Prob"].iloc[4] == pytest.approx(float((sigma**2 < 0.57).mean()))
    assert list(tab.columns) == ["Hypothesis", "Estimate", "Est.Error", "CI.Lower", "CI.Upper", "Evid.Ratio",
                                 "Post.Prob", "Star"]
    per = exam_ix.hypothesis("Intercept > 0", group="school", summary=False)
    r = stack(exam_ix.draws, "r_school")[:, 0, 0]
    np.testing.assert_allclose(per.iloc[:, 0], _b(exam_ix, "(Intercept)") + r)


@pytest.mark.parametrize("text", ["__import__('os').system('true') > 0", "sexM.real > 0", "sexM() > 0",
                                  "sexM", "foo > 1", "sexM < 0 < 1", "[sexM][0] > 0", "sexM sexM > 0"])
def test_hypothesis_language_is_parsed_not_run(exam_ix, text):
    with pytest.raises(hierfit.HierfitError):
        exam_ix.hypothesis(text)


def test_saved_and_loaded_fit_answers_the_same(exam_ix, tmp_path):
    path = tmp_path / "m.hfit"
    exam_ix.save(path)
    again = hierfit.load(path)
    a = exam_ix.avg_comparisons("sex")
    b = again.avg_comparisons("sex")
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(exam_ix.emmeans("sex"), again.emmeans("sex"))


def test_bad_arguments_name_the_problem(exam_ix):
    with pytest.raises(hierfit.HierfitError, match="unknown variable"):
        exam_ix.avg_comparisons("nope")
    with pytest.raises(hierfit.HierfitError, match="comparison"):
        exam_ix.avg_comparisons("sex", comparison="log")
    with pytest.raises(hierfit.HierfitError, match="factor"):
        exam_ix.slopes("sex")
    with pytest.raises(hierfit.HierfitError, match="by"):
        exam_ix.avg_predictions(by="nope")
    with pytest.raises(hierfit.HierfitError, match="not a factor"):
        exam_ix.emmeans("standLRT")
    with pytest.raises(hierfit.DataError, match="datagrid"):
        hierfit.datagrid(exam_ix, nope=1)


# -- non-Gaussian -------------------------------------------------------------------------------
def test_logistic_comparisons_equal_direct_predictions(logit_ri):
    fit, df = logit_ri
    rows = df.iloc[:50]
    lo, hi = rows.assign(trt="a"), rows.assign(trt="b")
    p_lo = fit.predict(lo, summary=False).values.reshape(-1, len(rows))
    p_hi = fit.predict(hi, summary=False).values.reshape(-1, len(rows))
    got = fit.comparisons("trt", newdata=rows, summary=False).to_numpy()
    np.testing.assert_allclose(got, p_hi - p_lo, atol=1e-12)
    avg = fit.avg_comparisons("trt", newdata=rows, comparison="lnor", summary=False).iloc[:, 0]
    np.testing.assert_allclose(avg, (special.logit(p_hi) - special.logit(p_lo)).mean(axis=1), atol=1e-9)
    ratio = fit.avg_comparisons("trt", newdata=rows, comparison="ratioavg", summary=False).iloc[:, 0]
    np.testing.assert_allclose(ratio, p_hi.mean(axis=1) / p_lo.mean(axis=1), atol=1e-12)
    # a slope of a probability: the derivative p (1 - p) b_x at each row
    s = fit.slopes("x", newdata=rows, re_form=hierfit.NA, summary=False).to_numpy()
    p0 = fit.predict(rows, re_form=hierfit.NA, summary=False).values.reshape(-1, len(rows))
    np.testing.assert_allclose(s, p0 * (1 - p0) * _b(fit, "x")[:, None], rtol=1e-5, atol=1e-8)


def test_population_average_of_logistic_ri_matches_brute_force(logit_ri):
    fit, _ = logit_ri
    grid = hierfit.datagrid(fit, x=[0.0, 1.0])
    cond = fit.predictions(grid, re_form=hierfit.NA)["Estimate"].to_numpy()
    pop_draws = fit.predictions(grid, re_form="marginal", nsim=400, seed=1, summary=False).to_numpy()
    pop = pop_draws.mean(axis=0)
    assert np.all((0.5 < pop) & (pop < cond)), (pop, cond)
    # brute force, independently of hierfit: new groups u ~ N(0, sd) per draw
    rng = np.random.default_rng(9)
    b0, bx, sd = _b(fit, "(Intercept)"), _b(fit, "x"), stack(fit.draws, "sd_g")[:, 0]
    u = rng.standard_normal((len(sd), 4000)) * sd[:, None]
    brutes = []
    for j, x in enumerate([0.0, 1.0]):
        brute = special.expit(b0[:, None] + bx[:, None] * x + u).mean(axis=1)
        brutes.append(brute)
        assert np.abs(pop_draws[:, j] - brute).max() < 0.06
        assert abs(pop_draws[:, j].mean() - brute.mean()) < 0.004
    amp = fit.avg_comparisons("x", newdata=grid.iloc[:1], re_form="marginal", nsim=400, seed=1)
    assert amp["Estimate"].iloc[0] == pytest.approx((brutes[1] - brutes[0]).mean(), abs=0.004)
    acn = fit.avg_comparisons("x", newdata=grid.iloc[:1], re_form=hierfit.NA)
    assert abs(acn["Estimate"].iloc[0] - amp["Estimate"].iloc[0]) > 0.005  # the two questions differ


@pytest.mark.parametrize("family", ["gaussian", "student", "poisson", "negbinomial", "binomial", "bernoulli",
                                    "gamma"])
def test_every_family(family):
    rng = np.random.default_rng(3)
    J, n = 12, 8
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=g.size)
    f = rng.choice(["u", "v"], g.size)
    eta = 0.3 + 0.4 * x + 0.3 * (f == "v") + rng.normal(0, 0.4, J)[g]
    df = pd.DataFrame({"x": x, "f": f, "g": g, "n": rng.integers(3, 8, g.size)})
    mu = special.expit(eta) if family in ("binomial", "bernoulli") else (eta if family in ("gaussian", "student")
                                                                          else np.exp(eta))
    df["y"] = {"gaussian": lambda: mu + rng.normal(0, 0.5, g.size), "student": lambda: mu + rng.normal(0, 0.5, g.size),
               "poisson": lambda: rng.poisson(mu), "negbinomial": lambda: rng.poisson(mu),
               "binomial": lambda: rng.binomial(df["n"], mu), "bernoulli": lambda: rng.binomial(1, mu),
               "gamma": lambda: rng.gamma(5.0, mu / 5.0)}[family]()
    formula = ("y | trials(n)" if family == "binomial" else "y") + " ~ x + f + (1 | g)"
    fit = quiet_fit(formula, df, family=family, seed=1, chains=2, draws=100, tune=150)
    rows = df.iloc[:10]
    direct = (fit.predict(rows.assign(f="v"), summary=False).values
              - fit.predict(rows.assign(f="u"), summary=False).values).reshape(-1, 10).mean(axis=1)
    np.testing.assert_allclose(fit.avg_comparisons("f", newdata=rows, summary=False).iloc[:, 0], direct,
                               atol=1e-10)
    if fit.family.link.name == "log":  # closed form: E[exp(eta + u)] = exp(eta + sd^2 / 2)
        grid = hierfit.datagrid(fit, f=["u", "v"])
        cond = fit.predictions(grid, re_form=hierfit.NA, summary=False).to_numpy()
        pop = fit.predictions(grid, re_form="marginal", nsim=400, seed=2, summary=False).to_numpy()
        sd = stack(fit.draws, "sd_g")[:, 0]
        ratio = pop / (cond * np.exp(sd**2 / 2)[:, None])
        assert abs(ratio.mean() - 1) < 0.01 and np.abs(ratio - 1).max() < 0.2, (family, ratio.mean())
    for tab in (fit.avg_predictions(by="f"), fit.avg_slopes("x"), fit.emmeans("f", contrasts="pairwise"),
                fit.icc(), fit.hypothesis("x > 0"),
                fit.avg_predictions(newdata=hierfit.datagrid(fit, f=["u", "v"]), re_form="marginal", nsim=50, seed=1)):
        assert np.isfinite(tab["Estimate"]).all(), (family, tab)


# -- plots ----------------------------------------------------------------------------------------
def _gid(ax, gid):
    return [c for c in list(ax.lines) + list(ax.collections) if c.get_gid() == gid]


def test_plot_effects_draws_the_interaction(exam_ix):
    import matplotlib.pyplot as plt

    fig = exam_ix.plot_effects(ndraws=200)
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in axes] == ["standLRT:sex effect plot"]
    lines = _gid(axes[0], "effect-line")
    assert [ln.get_label() for ln in lines] == ["sex = F", "sex = M"]
    fe = exam_ix.fixef()["Estimate"]
    x = np.asarray(lines[1].get_xdata())
    slope_m = _b(exam_ix, "standLRT") + _b(exam_ix, "standLRT:sexM")
    idx = np.linspace(0, len(_b(exam_ix, "sexM")) - 1, 200).round().astype(int)
    expected = (_b(exam_ix, "(Intercept)") + _b(exam_ix, "sexM"))[idx].mean() + slope_m[idx].mean() * x
    np.testing.assert_allclose(lines[1].get_ydata(), expected, atol=1e-10)
    assert fe.index.tolist() == ["(Intercept)", "standLRT", "sexM", "standLRT:sexM"]
    extra = exam_ix.plot_effects(points=True, spaghetti=3, re_form=None, ndraws=100)
    ax = extra.axes[0]
    assert _gid(ax, "data") and len(_gid(ax, "spaghetti")) == 6 and _gid(ax, "group-lines")
    for f in (fig, extra):
        plt.close(f)


def test_plot_predictions_comparisons_slopes(exam_ix):
    import matplotlib.pyplot as plt

    fig = exam_ix.plot_predictions(["standLRT", "sex"], points=True, spaghetti=5)
    ax = fig.axes[0]
    assert len(_gid(ax, "effect-line")) == 2 and len(_gid(ax, "spaghetti")) == 10 and _gid(ax, "data")
    fig2 = exam_ix.plot_predictions("standLRT", re_form=None)
    assert len(_gid(fig2.axes[0], "group-lines")[0].get_segments()) == 65
    fig3 = exam_ix.plot_comparisons("sex", condition="standLRT")
    line = _gid(fig3.axes[0], "effect-line")[0]
    xs = np.asarray(line.get_xdata())
    gap = _b(exam_ix, "sexM").mean() + _b(exam_ix, "standLRT:sexM").mean() * xs
    np.testing.assert_allclose(line.get_ydata(), gap, atol=1e-10)
    fig4 = exam_ix.plot_slopes("standLRT", condition="sex")
    pts = _gid(fig4.axes[0], "effect-points")[0]
    np.testing.assert_allclose(pts.get_ydata(), [_b(exam_ix, "standLRT").mean(),
                                                 (_b(exam_ix, "standLRT") + _b(exam_ix, "standLRT:sexM")).mean()],
                               atol=1e-6)
    with pytest.raises(hierfit.HierfitError, match="condition"):
        exam_ix.plot_predictions(["nope"])
    for f in (fig, fig2, fig3, fig4):
        plt.close(f)


def test_pd_and_rope_columns(exam_ix):
    tab = exam_ix.avg_comparisons("sex", rope=(-0.2, 0.2))
    draws = exam_ix.avg_comparisons("sex", summary=False).iloc[:, 0].to_numpy()
    assert tab["pd"].iloc[0] == pytest.approx(max((draws > 0).mean(), (draws < 0).mean()))
    assert tab["ROPE"].iloc[0] == pytest.approx(((draws >= -0.2) & (draws <= 0.2)).mean())
    lo, hi = np.quantile(draws, [0.025, 0.975])
    assert tab["l-95% CI"].iloc[0] == pytest.approx(lo) and tab["u-95% CI"].iloc[0] == pytest.approx(hi)
    with pytest.raises(hierfit.HierfitError, match="rope"):
        exam_ix.avg_comparisons("sex", rope=(0.2, -0.2))


def test_pointwise_log_likelihood_in_blocks_of_draws_equals_all_at_once(logit_ri):
    from hierfit.analysis.loo import pointwise_log_likelihood
    from hierfit.analysis.prepare import prepare_draws

    fit, _ = logit_ri
    whole = prepare_draws(fit).logpdf(fit.design.y)
    n = fit.design.nobs
    blocked = pointwise_log_likelihood(fit, block=7 * n + 3)  # blocks of 7 draws, the last one shorter
    assert blocked.shape == whole.shape
    np.testing.assert_allclose(blocked, whole, rtol=1e-12, atol=1e-12)  # matrix products may round differently
    # one draw by its position: the same row of the matrix
    np.testing.assert_allclose(prepare_draws(fit, draw_ids=[5]).logpdf(fit.design.y)[0], whole[5],
                               rtol=1e-12, atol=1e-12)
    with pytest.raises(hierfit.HierfitError, match="draw_ids"):
        prepare_draws(fit, draw_ids=[whole.shape[0]])


def test_prepare_draws_coded_rows_equal_newdata(fit_rs, exam):
    """Rows coded beforehand (the engine's numpy coding) give the same linear predictor as newdata."""
    from hierfit.analysis.prepare import prepare_draws
    from hierfit.data.coding import fast_coder
    from hierfit.data.stats import formulaic_code

    d = fit_rs.design
    used = ["normexam", "standLRT", "sex", "school"]
    rows = exam.sample(300, random_state=3)
    coder = fast_coder(d, used)
    assert coder is not None  # numeric, treatment factor and a grouping column: numpy codes them
    y, X, Z, index = coder.code(rows[used], lambda p: formulaic_code(p, d, used))
    coded = {"mu": {"X": X, "blocks": [(z, i, None) for z, i in zip(Z, index)], "offset": None}}
    for point in (False, True):
        a = prepare_draws(fit_rs, coded=coded, point=point, ndraws=50)
        b = prepare_draws(fit_rs, rows, point=point, ndraws=50)
        np.testing.assert_allclose(a.eta["mu"], b.eta["mu"], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(y, rows["normexam"].to_numpy())
    bad = {"mu": {"X": X, "blocks": [(Z[0], np.r_[index[0][:-1], d.mu.blocks[0].n_levels], None)], "offset": None}}
    with pytest.raises(hierfit.DataError, match=r"valid range 0\.\.64"):
        prepare_draws(fit_rs, coded=bad)
    with pytest.raises(hierfit.HierfitError, match="replaces newdata"):
        prepare_draws(fit_rs, rows, coded=coded)
