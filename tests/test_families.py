"""Families, links, offsets and distributional regression (issue: families)."""

import numpy as np
import pandas as pd
import pytest
from scipy import special

import hierfit
from conftest import quiet_fit
from hierfit import DataError, FormulaError
from hierfit.spec.design import build_design

J, NJ = 30, 10
FAST = dict(draws=500, tune=500, chains=2)


def _ri_data(seed, family):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), NJ)
    x = rng.normal(size=g.size)
    truth = {"(Intercept)": 0.3, "x": 0.6, "sd": 0.5}
    eta = truth["(Intercept)"] + truth["x"] * x + rng.normal(0, truth["sd"], J)[g]
    df = pd.DataFrame({"x": x, "g": g})
    if family == "gaussian":
        truth["sigma"] = 0.8
        df["y"] = eta + rng.normal(0, 0.8, g.size)
    elif family == "student":
        truth["sigma"] = 0.8
        df["y"] = eta + 0.8 * rng.standard_t(4, g.size)
    elif family == "poisson":
        df["y"] = rng.poisson(np.exp(eta))
    elif family == "negbinomial":
        truth["shape"] = 3.0
        mu = np.exp(eta)
        df["y"] = rng.negative_binomial(3.0, 3.0 / (3.0 + mu))
    elif family == "binomial":
        df["n"] = rng.integers(5, 15, g.size)
        df["y"] = rng.binomial(df["n"], special.expit(eta))
    elif family == "bernoulli":
        df["y"] = rng.binomial(1, special.expit(eta))
    elif family == "gamma":
        truth["shape"] = 5.0
        df["y"] = rng.gamma(5.0, np.exp(eta) / 5.0)
    return df, truth


FORMULAS = {"binomial": "y | trials(n) ~ x + (1 | g)"}


@pytest.mark.parametrize("family", ["gaussian", "student", "poisson", "negbinomial", "binomial", "bernoulli", "gamma"])
def test_recovery_random_intercept(family):
    df, truth = _ri_data(100, family)
    m = quiet_fit(FORMULAS.get(family, "y ~ x + (1 | g)"), df, family=family, seed=4, **FAST)
    fe = m.fixef()
    # 7 families x 3 quantities: 95% intervals would miss about once by chance; 3 posterior sds miss 1 in 370
    for name in ("(Intercept)", "x"):
        assert abs(fe.loc[name, "Estimate"] - truth[name]) < 3 * fe.loc[name, "Est.Error"], (family, name, fe)
    vc = m.VarCorr()
    sd = vc[vc["grp"] == "g"].iloc[0]
    assert sd["l-95% CI"] < truth["sd"] < sd["u-95% CI"], (family, vc)
    s = m.summary()
    for dp in ("sigma", "shape"):
        if dp in truth:
            tab = s.distributional if dp in s.distributional.index else vc.set_index("grp").rename(
                index={"Residual": "sigma"}).rename(columns={"sdcor": "Estimate"})
            row = tab.loc[dp]
            assert row["l-95% CI"] < truth[dp] < row["u-95% CI"], (family, dp, row)
    assert f"Family: {m.family.name} ( {m.family.link.name} )" in str(s)


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_recovery_correlated_slope(family):
    rng = np.random.default_rng(10)
    g = np.repeat(np.arange(40), 15)
    x = rng.normal(size=g.size)
    cov = np.array([[0.5**2, 0.5 * 0.5 * 0.4], [0.5 * 0.5 * 0.4, 0.4**2]])
    u = rng.multivariate_normal([0, 0], cov, 40)
    eta = 0.2 + u[g, 0] + (0.5 + u[g, 1]) * x
    df = pd.DataFrame({"x": x, "g": g})
    if family == "poisson":
        df["y"] = rng.poisson(np.exp(eta))
        formula = "y ~ x + (x | g)"
    else:
        df["n"] = 10
        df["y"] = rng.binomial(10, special.expit(eta))
        df["f"] = df["n"] - df["y"]
        formula = "cbind(y, f) ~ x + (x | g)"
    m = quiet_fit(formula, df, family=family, seed=5, **FAST)
    fe = m.fixef()
    assert fe.loc["(Intercept)", "l-95% CI"] < 0.2 < fe.loc["(Intercept)", "u-95% CI"]
    assert fe.loc["x", "l-95% CI"] < 0.5 < fe.loc["x", "u-95% CI"]
    vc = m.VarCorr()
    for var1, var2, true in (("(Intercept)", None, 0.5), ("x", None, 0.4), ("(Intercept)", "x", 0.4)):
        row = vc[(vc["var1"] == var1) & ((vc["var2"] == var2) if var2 else vc["var2"].isna())].iloc[0]
        assert row["l-95% CI"] < true < row["u-95% CI"], (family, var1, var2, row)


def test_binomial_syntaxes_agree():
    df = pd.DataFrame({"s": [1, 3, 5, 2, 4, 6], "f": [4, 2, 0, 3, 1, 0], "x": [0.1, 0.5, 0.9, 0.2, 0.4, 1.0],
                       "g": [1, 1, 1, 2, 2, 2]})
    df["n"] = df["s"] + df["f"]
    a = build_design("cbind(s, f) ~ x", df, family="binomial")
    b = build_design("s | trials(n) ~ x", df, family="binomial")
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.trials, b.trials)
    np.testing.assert_array_equal(a.trials, [5, 5, 5, 5, 5, 6])


@pytest.mark.parametrize(
    "family, y, match",
    [
        ("poisson", [1, -2, 3, 0], r"non-negative whole numbers.*1 row"),
        ("poisson", [1, 2.5, 3, 0.5], r"non-negative whole numbers.*2 row"),
        ("negbinomial", [1, -1, 3, 0], "non-negative whole numbers"),
        ("bernoulli", [0, 1, 2, 1], r"0/1 or boolean; 1 row"),
        ("gamma", [1.0, 0.0, -2.0, 3.0], r"must be positive; 2 row"),
        ("binomial", [1, 2, 3, 0], "needs trials"),
    ],
)
def test_bad_responses(family, y, match):
    df = pd.DataFrame({"y": y, "x": [0.1, 0.2, 0.3, 0.4]})
    with pytest.raises(DataError, match=match):
        build_design("y ~ x", df, family=family)


def test_successes_exceed_trials():
    df = pd.DataFrame({"y": [1, 7, 3], "n": [5, 5, 5], "x": [0.1, 0.2, 0.3]})
    with pytest.raises(DataError, match=r"successes exceed trials.*1 row"):
        build_design("y | trials(n) ~ x", df, family="binomial")


def test_bernoulli_accepts_booleans():
    df = pd.DataFrame({"y": [True, False, True, False], "x": [0.1, 0.2, 0.3, 0.5]})
    d = build_design("y ~ x", df, family="bernoulli")
    np.testing.assert_array_equal(d.y, [1, 0, 1, 0])


def test_family_objects_and_links():
    assert hierfit.families.binomial(link="probit").link.name == "probit"
    fam = hierfit.families.get("bernoulli", link="cloglog")
    p = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(fam.link.inv(fam.link.fun(p)), p)
    with pytest.raises(hierfit.HierfitError, match="no link"):
        hierfit.families.poisson(link="logit")
    with pytest.raises(hierfit.HierfitError, match="unknown family"):
        hierfit.families.get("zero_one_inflated_beta")


def test_response_syntax_errors():
    with pytest.raises(FormulaError, match="cbind"):
        hierfit.parse_formula("cbind(a) ~ x")
    with pytest.raises(FormulaError, match="may follow"):
        hierfit.parse_formula("a | foo(w) ~ x")


@pytest.fixture(scope="module")
def owls_fit():
    return quiet_fit("SiblingNegotiation ~ FoodTreatment * SexParent + offset(log(BroodSize)) + (1 | Nest)",
                     hierfit.datasets.load("owls"), family="poisson", seed=1)


def test_owls_poisson_matches_glmer(owls_fit, lme4_cases):
    ref = lme4_cases["owls_poisson"]
    fe = owls_fit.fixef()
    for name, r in ref["fixed_effects"].items():
        assert abs(fe.loc[name, "Estimate"] - r["estimate"]) < 0.5 * fe.loc[name, "Est.Error"], name
    sd = owls_fit.VarCorr()["sdcor"].iloc[0]
    assert sd == pytest.approx(ref["varcorr_table"][0]["sdcor"], rel=0.15)


def test_offset_honoured_in_new_data(owls_fit):
    new = pd.DataFrame({"FoodTreatment": ["Deprived", "Deprived"], "SexParent": ["Male", "Male"],
                        "BroodSize": [2, 4], "Nest": ["Forel", "Forel"]})
    p = owls_fit.predict(new)["Estimate"].to_numpy()
    assert p[1] == pytest.approx(2 * p[0], rel=1e-10)  # offset(log(BroodSize)): doubling the brood doubles the mean
    link = owls_fit.predict(new, kind="link")["Estimate"].to_numpy()
    assert link[1] - link[0] == pytest.approx(np.log(2))


def test_overdispersed_poisson_flagged_negbinomial_passes():
    rng = np.random.default_rng(200)
    g = np.repeat(np.arange(J), NJ)
    x = rng.normal(size=g.size)
    mu = np.exp(1.5 + 0.6 * x + rng.normal(0, 0.5, J)[g])
    df = pd.DataFrame({"x": x, "g": g, "y": rng.negative_binomial(1.0, 1.0 / (1.0 + mu))})  # shape 1
    pois = quiet_fit("y ~ x + (1 | g)", df, family="poisson", seed=4, **FAST)
    nb = quiet_fit("y ~ x + (1 | g)", df, family="negbinomial", seed=4, **FAST)
    qp, qn = pois.quantile_residuals(seed=1), nb.quantile_residuals(seed=1)
    assert not qp.uniform and qp.ks_pvalue < 1e-3
    assert qn.uniform
    assert nb.loo().elpd > pois.loo().elpd


def test_bees_close_to_lme4(lme4_cases):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = quiet_fit("log(Spobee + 1) ~ Infection + BeesN + (1 | Hive)", hierfit.datasets.load("bees"), seed=1)
    ref = lme4_cases["bees"]
    fe = m.fixef()
    assert abs(fe.loc["Infection", "Estimate"] - 2.66) < 0.5 * fe.loc["Infection", "Est.Error"]
    vc = m.VarCorr().set_index("grp")
    assert vc.loc["Hive", "sdcor"] == pytest.approx(ref["varcorr_table"][0]["sdcor"], rel=0.15)
    assert vc.loc["Residual", "sdcor"] == pytest.approx(ref["varcorr_table"][1]["sdcor"], rel=0.10)


def test_gpa_dispersion_formula_matches_glmmtmb(lme4_cases):
    gpa = hierfit.datasets.load("gpa")
    gpa["sOccasion"] = (gpa["occasion"] - gpa["occasion"].mean()) / gpa["occasion"].std()
    gpa["nJob"] = gpa["job"].cat.codes + 1
    m = quiet_fit(hierfit.bf("gpa ~ sOccasion * sex + nJob + (sOccasion | student)", sigma="~ sOccasion"), gpa,
                  seed=1)
    ref = lme4_cases["gpa_disp"]
    fe = m.fixef()
    for name, r in ref["fixed_effects"].items():
        assert abs(fe.loc[name, "Estimate"] - r["estimate"]) < 0.5 * fe.loc[name, "Est.Error"], name
    for name, r in ref["dispersion_effects"].items():  # glmmTMB: log(sigma^2); hierfit: log(sigma)
        est, err = fe.loc[f"sigma_{name}", "Estimate"], fe.loc[f"sigma_{name}", "Est.Error"]
        assert abs(est - r["estimate"] / 2) < 0.5 * err, name
    text = str(m.summary())
    assert "Distributional parameters:" in text and "sigma_sOccasion" in text
    assert "Residual" not in text  # sigma varies by row: no single residual sd
    # predictions include the row-specific sigma: later occasions have a smaller sigma
    new = gpa.iloc[[0, 5]]
    resp = m.predict(new, kind="response", seed=1)
    mean = m.predict(new, kind="mean")
    assert (resp["Est.Error"] > mean["Est.Error"]).all()
    spread = np.sqrt(resp["Est.Error"] ** 2 - mean["Est.Error"] ** 2)
    assert spread.iloc[1] < spread.iloc[0]
    # dispformula is the glmmTMB spelling of the same model
    d1 = build_design("gpa ~ sOccasion + (1 | student)", gpa, dpars={"sigma": "~ sOccasion"})
    assert list(d1.predictors) == ["mu", "sigma"]
    with pytest.raises(hierfit.HierfitError, match="no distributional parameter 'shape'"):
        build_design("gpa ~ sOccasion", gpa, dpars={"shape": "~ sOccasion"})
