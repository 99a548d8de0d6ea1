"""The model as LaTeX (equatiomatic's notation), and the rich displays of VarCorr and priors.

The expected strings are the chapter's ``extract_eq()`` output (section 4.2 and 4.3),
built from designs only: no sampling.
"""

import doctest
import re
import warnings
from types import SimpleNamespace

import pytest

import hierfit
import hierfit.results.equation
from hierfit.spec.design import build_design
from hierfit.results.equation import Equation, build_equation, equation, latex_dist
from hierfit.results.estimates import VarCorrTable
from hierfit.spec.priors import parse_dist, resolve_priors

# The chapter's equations, as printed by equatiomatic::extract_eq(mod1) and extract_eq(mod2).
CHAPTER_RI = (r"\begin{aligned} \operatorname{normexam}_{i} &\sim N \left(\alpha_{j[i]} + "
              r"\beta_{1}(\operatorname{standLRT}) + \beta_{2}(\operatorname{sex}_{\operatorname{M}}), \sigma^2 \right) "
              r"\\ \alpha_{j} &\sim N \left(\mu_{\alpha_{j}}, \sigma^2_{\alpha_{j}} \right) "
              r"\text{, for school j = 1,} \dots \text{,J} \end{aligned}")
CHAPTER_RS = (r"\begin{aligned} \operatorname{normexam}_{i} &\sim N \left(\alpha_{j[i]} + "
              r"\beta_{1j[i]}(\operatorname{standLRT}) + \beta_{2}(\operatorname{sex}_{\operatorname{M}}), \sigma^2 \right) "
              r"\\ \left( \begin{array}{c} \begin{aligned} &\alpha_{j} \\ &\beta_{1j} \end{aligned} \end{array} \right) "
              r"&\sim N \left( \left( \begin{array}{c} \begin{aligned} &\mu_{\alpha_{j}} \\ &\mu_{\beta_{1j}} "
              r"\end{aligned} \end{array} \right) , \left( \begin{array}{cc} \sigma^2_{\alpha_{j}} & "
              r"\rho_{\alpha_{j}\beta_{1j}} \\ \rho_{\beta_{1j}\alpha_{j}} & \sigma^2_{\beta_{1j}} \end{array} \right) "
              r"\right) \text{, for school j = 1,} \dots \text{,J} \end{aligned}")


def _flat(latex: str) -> str:
    return re.sub(r"\s+", " ", latex).strip()


def _design(formula, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_design(formula, data, **kw)


def _balanced(latex: str) -> bool:
    depth = 0
    for k, c in enumerate(latex):
        if c == "{" and (k == 0 or latex[k - 1] != "\\"):
            depth += 1
        elif c == "}" and (k == 0 or latex[k - 1] != "\\"):
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _well_formed(eq: Equation) -> None:
    tex = eq.latex
    assert _balanced(tex), tex
    assert tex.count(r"\left") == tex.count(r"\right"), tex
    for env in ("aligned", "array"):
        assert tex.count(r"\begin{" + env + "}") == tex.count(r"\end{" + env + "}"), tex


@pytest.fixture(scope="module")
def owls():
    return hierfit.datasets.load("owls")


@pytest.fixture(scope="module")
def gpa():
    g = hierfit.datasets.load("gpa")
    g["sOccasion"] = (g["occasion"] - g["occasion"].mean()) / g["occasion"].std()
    return g


def test_random_intercept_is_the_chapters_equation(exam):
    eq = build_equation(_design("normexam ~ standLRT + sex + (1 | school)", exam))
    assert _flat(eq.latex) == _flat(CHAPTER_RI)
    assert eq.prior_lines == ()


def test_random_slope_is_the_chapters_equation_with_covariances(exam):
    eq = build_equation(_design("normexam ~ standLRT + sex + (standLRT | school)", exam))
    # equatiomatic writes only rho off the diagonal; the covariance is rho * sd * sd
    expected = CHAPTER_RS.replace(r"\rho_{\alpha_{j}\beta_{1j}}",
                                  r"\rho_{\alpha_{j}\beta_{1j}}\sigma_{\alpha_{j}}\sigma_{\beta_{1j}}")
    expected = expected.replace(r"\rho_{\beta_{1j}\alpha_{j}}",
                                r"\rho_{\beta_{1j}\alpha_{j}}\sigma_{\beta_{1j}}\sigma_{\alpha_{j}}")
    assert _flat(eq.latex) == _flat(expected)
    _well_formed(eq)


def test_uncorrelated_terms_have_zero_covariance(exam):
    eq = build_equation(_design("normexam ~ standLRT + sex + (standLRT || school)", exam))
    mean_line, group_line = eq.lines
    assert r"\beta_{1j[i]}(\operatorname{standLRT})" in mean_line[1]
    assert r"\begin{array}{cc} \sigma^2_{\alpha_{j}} & 0 \\ 0 & \sigma^2_{\beta_{1j}} \end{array}" in group_line[1]
    assert r"\rho" not in eq.latex
    assert group_line[1].endswith(r"\text{, for school j = 1,} \dots \text{,J}")


def test_slope_only_term_has_no_group_intercept(exam):
    eq = build_equation(_design("normexam ~ standLRT + (0 + standLRT | school)", exam))
    assert eq.lines[0][1].startswith(r"\sim N \left(\alpha + \beta_{1j[i]}(\operatorname{standLRT})")
    assert eq.lines[1] == (r"\beta_{1j}", r"\sim N \left(\mu_{\beta_{1j}}, \sigma^2_{\beta_{1j}} \right) "
                                         r"\text{, for school j = 1,} \dots \text{,J}")


def test_nested_and_crossed_factors_get_their_own_index(exam):
    nested = build_equation(_design("normexam ~ standLRT + sex + (1 | school/student)", exam))
    assert nested.lines[0][1].startswith(r"\sim N \left(\alpha_{j[i]} + \alpha_{k[i]} + \beta_{1}")
    assert nested.lines[1][0] == r"\alpha_{j}" and "for school j = 1," in nested.lines[1][1]
    # the fixed intercept is the mean of the first factor's intercepts; the second factor's have mean 0
    assert r"N \left(\mu_{\alpha_{j}}, \sigma^2_{\alpha_{j}} \right)" in nested.lines[1][1]
    assert nested.lines[2] == (r"\alpha_{k}", r"\sim N \left(0, \sigma^2_{\alpha_{k}} \right) "
                                              r"\text{, for student:school k = 1,} \dots \text{,K}")
    crossed = build_equation(_design("normexam ~ standLRT + (1 | school) + (1 | student)", exam))
    assert "for student k = 1," in crossed.lines[2][1]
    assert len(crossed.lines) == 3


def test_poisson_has_a_log_link_line_and_the_offset(owls):
    d = _design("SiblingNegotiation ~ FoodTreatment * SexParent + offset(log(BroodSize)) + (1 | Nest)", owls,
                family="poisson")
    eq = build_equation(d)
    assert eq.lines[0] == (r"\operatorname{SiblingNegotiation}_{i}", r"\sim \operatorname{Poisson} \left(\lambda_{i} \right)")
    lhs, rhs = eq.lines[1]
    assert lhs == r"\log(\lambda_{i})"
    assert rhs == (r"= \alpha_{j[i]} + \beta_{1}(\operatorname{FoodTreatment}_{\operatorname{Satiated}}) + "
                   r"\beta_{2}(\operatorname{SexParent}_{\operatorname{Male}}) + "
                   r"\beta_{3}(\operatorname{FoodTreatment}_{\operatorname{Satiated}} \times "
                   r"\operatorname{SexParent}_{\operatorname{Male}}) + \log(\operatorname{BroodSize})")
    assert "for Nest j = 1," in eq.lines[2][1]
    assert r"\sigma^2 \right)" not in eq.latex  # no residual variance in a Poisson model
    _well_formed(eq)


@pytest.mark.parametrize("link, lhs", [("logit", r"\operatorname{logit}(p_{i})"), ("probit", r"\Phi^{-1}(p_{i})"),
                                       ("cloglog", r"\log(-\log(1 - p_{i}))")])
def test_binomial_links(owls, link, lhs):
    d = _design("cbind(SiblingNegotiation, BroodSize) ~ FoodTreatment + (1 | Nest)", owls,
                family=hierfit.families.binomial(link=link))
    eq = build_equation(d)
    assert eq.lines[0][1] == (r"\sim \operatorname{Binomial} \left(\operatorname{SiblingNegotiation}_{i} + "
                              r"\operatorname{BroodSize}_{i}, p_{i} \right)")
    assert eq.lines[1][0] == lhs


def test_negbinomial_and_gamma_name_their_shape(owls, gpa):
    nb = build_equation(_design("SiblingNegotiation ~ FoodTreatment + (1 | Nest)", owls, family="negbinomial"))
    assert r"\text{shape} = \phi" in nb.lines[0][1] and nb.lines[1][0] == r"\log(\mu_{i})"
    ga = build_equation(_design("gpa ~ sOccasion + (1 | student)", gpa, family="gamma"))
    assert r"\operatorname{Gamma} \left(\text{shape} = \phi, \text{rate} = \phi / \mu_{i} \right)" in ga.lines[0][1]


def test_dispformula_adds_a_log_sigma_line(gpa):
    d = _design("gpa ~ sOccasion * sex + (sOccasion | student)", gpa, dpars={"sigma": "~ sOccasion"})
    eq = build_equation(d)
    assert eq.lines[0][1].endswith(r", \sigma^2_{i} \right)")
    assert eq.lines[1] == (r"\log(\sigma_{i})", r"= \gamma_{0} + \gamma_{1}(\operatorname{sOccasion})")
    assert r"\beta_{3}(\operatorname{sOccasion} \times \operatorname{sex}_{\operatorname{female}})" in eq.lines[0][1]


def test_function_terms_are_typeset(exam):
    plants = hierfit.datasets.load("plantHeight")
    eq = build_equation(_design("loght ~ scale(temp) + I(temp^2) + (scale(temp) | Family)", plants))
    assert r"\beta_{1j[i]}(\operatorname{scale}(\operatorname{temp}))" in eq.lines[0][1]
    assert r"\beta_{2}(\operatorname{temp}^{2})" in eq.lines[0][1]
    bees = hierfit.datasets.load("bees")
    eq = build_equation(_design("log(Spobee + 1) ~ Infection + (1 | Hive)", bees))
    assert eq.lines[0][0] == r"\left[\log(\operatorname{Spobee} + 1)\right]_{i}"
    # names with LaTeX specials are escaped (R level names such as "mid 50%")
    eq = build_equation(_design("normexam ~ vr + (1 | school)", exam))
    assert r"\operatorname{vr}_{\operatorname{mid\ 50\%}}" in eq.lines[0][1]


def test_priors_lines_show_the_resolved_priors(exam):
    d = _design("normexam ~ standLRT + sex + (standLRT | school)", exam)
    ps = resolve_priors(d, [hierfit.prior("normal(0, 1)", "b", coef="standLRT"),
                            hierfit.prior("exponential(2)", "sd", group="school"),
                            hierfit.prior("lkj(2)", "cor"),
                            hierfit.prior("normal(0, 0.5)", "sigma")])
    eq = build_equation(d, ps)
    pl = dict(eq.prior_lines)
    # brms's intercept prior is on the intercept at the predictor means
    intercept = r"\mu_{\alpha_{j}} + \mu_{\beta_{1j}}\overline{\operatorname{standLRT}} + " \
                r"\beta_{2}\overline{\operatorname{sex}_{\operatorname{M}}}"
    y = exam["normexam"]
    mad = 1.4826 * (y - y.median()).abs().median()
    assert pl[intercept] == rf"\sim \operatorname{{Student-t}} \left(3, {round(y.median(), 1):g}, {max(2.5, round(mad, 1)):g} \right)"
    assert pl[r"\mu_{\beta_{1j}}"] == r"\sim N \left(0, 1^2 \right)"
    assert pl[r"\sigma_{\alpha_{j}}"] == r"\sim \operatorname{Exponential} \left(2 \right)"
    assert pl[r"\sigma_{\beta_{1j}}"] == r"\sim \operatorname{Exponential} \left(2 \right)"
    assert pl[r"\operatorname{cor}(\alpha_{j}, \beta_{1j})"] == r"\sim \operatorname{LKJ} \left(2 \right)"
    assert pl[r"\sigma"] == r"\sim N^{+} \left(0, 0.5^2 \right)"  # half-normal
    # the default for sexM is rstanarm's autoscaled normal(0, 2.5 sd(y)/sd(x))
    sd_y, sd_x = exam["normexam"].std(), (exam["sex"] == "M").astype(float).std()
    expected = float(f"{2.5 * sd_y / sd_x:.3g}")
    assert pl[r"\beta_{2}"] == rf"\sim N \left(0, {expected:g}^2 \right)"
    assert len(eq.prior_lines) == len(ps.rows)  # one line per prior
    _well_formed(eq)


def test_student_nu_prior_is_truncated_at_one(gpa):
    d = _design("gpa ~ sOccasion + (1 | student)", gpa, family="student")
    pl = dict(build_equation(d, resolve_priors(d)).prior_lines)
    assert pl[r"\nu"] == r"\sim \operatorname{Gamma} \left(2, 0.1 \right) \text{, truncated at } 1"


def test_latex_dist_spelling():
    assert latex_dist(parse_dist("normal(0, 2.5)")) == r"N \left(0, 2.5^2 \right)"
    assert latex_dist(parse_dist("student_t(3, 0, 2.5)"), positive=True) == \
        r"\operatorname{Student-t}^{+} \left(3, 0, 2.5 \right)"
    assert latex_dist(parse_dist("exponential(1)"), positive=True) == r"\operatorname{Exponential} \left(1 \right)"
    assert latex_dist(parse_dist("normal(0, 0.00001)")) == r"N \left(0, (1 \times 10^{-5})^2 \right)"
    assert latex_dist(parse_dist("lkj(2)")) == r"\operatorname{LKJ} \left(2 \right)"


def test_equation_object_displays_as_math(exam):
    eq = build_equation(_design("normexam ~ standLRT + (1 | school)", exam))
    assert str(eq) == eq.latex == repr(eq)
    assert eq.latex.startswith("\\begin{aligned}\n") and eq.latex.endswith("\n\\end{aligned}")
    assert eq._repr_latex_() == "$$\n" + eq.latex + "\n$$"
    assert eq.latex.count(" \\\\\n") == len(eq.lines) - 1


def test_fit_wrapper_uses_design_and_priors(exam):
    d = _design("normexam ~ standLRT + (1 | school)", exam)
    ps = resolve_priors(d)
    fake = SimpleNamespace(design=d, priors=ps)
    assert equation(fake).prior_lines == ()
    assert equation(fake, priors=True) == build_equation(d, ps)
    if hasattr(hierfit.HierFit, "equation"):
        assert hierfit.HierFit.equation(fake, priors=True) == build_equation(d, ps)


def test_many_models_are_well_formed(exam, owls, gpa):
    cases = [
        ("normexam ~ standLRT + (1 | school) + (0 + sex | school)", exam, {}),
        ("normexam ~ 0 + standLRT + (1 | school) + (1 | student)", exam, {}),
        ("I(SiblingNegotiation > 5) ~ FoodTreatment + (1 | Nest)", owls, dict(family="bernoulli")),
        ("gpa ~ sOccasion + (1 | student)", gpa, dict(family="student", dpars={"sigma": "~ sOccasion", "nu": "~ sex"})),
        ("gpa ~ sOccasion + (1 | student)", gpa, dict(family="gamma", dpars={"shape": "~ sOccasion + (1 | student)"})),
    ]
    for formula, data, kw in cases:
        d = _design(formula, data, **kw)
        eq = build_equation(d, resolve_priors(d))
        _well_formed(eq)
        assert eq.lines[0][0].endswith("_{i}")


def test_docstring_examples_run():
    result = doctest.testmod(hierfit.results.equation, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 5 and result.failed == 0


# -- rich displays ----------------------------------------------------------------------------

def _varcorr():
    return VarCorrTable({"grp": ["school", "school", "school", "Residual"],
                         "var1": ["(Intercept)", "standLRT", "(Intercept)", None],
                         "var2": [None, None, "standLRT", None],
                         "vcov": [0.0942, 0.0162, 0.0192, 0.5508], "sdcor": [0.3053, 0.1257, 0.50, 0.7421],
                         "l-95% CI": [0.25, 0.0899, 0.21, 0.7262], "u-95% CI": [0.3732, 0.1665, 0.75, 0.7583]})


def test_varcorr_prints_like_lme4():
    vc = _varcorr()
    assert list(vc.columns) == ["grp", "var1", "var2", "vcov", "sdcor", "l-95% CI", "u-95% CI"]
    lines = repr(vc).splitlines()
    assert lines[0].split() == ["Groups", "Name", "Variance", "Std.Dev.", "l-95%", "CI", "u-95%", "CI", "Corr"]
    assert lines[1].split()[:2] == ["school", "(Intercept)"]
    assert lines[2].split()[0] == "standLRT" and lines[2].rstrip().endswith("0.50")  # correlation beside its sd
    assert lines[3].split()[0] == "Residual"
    assert len(lines) == 4  # the correlation row is not a row of its own
    html = vc._repr_html_()
    assert "<table" in html and "Corr1" in html and "0.5" in html and "Residual" in html
    # subsets without sd rows fall back to the plain DataFrame display
    assert "var2" in repr(vc[vc["var2"].notna()])


def test_varcorr_table_of_a_posterior_is_a_varcorrtable(exam):
    import numpy as np
    import xarray as xr

    from hierfit.results.estimates import varcorr_table

    d = _design("normexam ~ standLRT + (standLRT | school)", exam)
    sd = np.array([[[0.3, 0.1], [0.5, 0.3]]])  # (chain, draw, coef)
    cor = np.array([[[[1, 0.4], [0.4, 1]], [[1, 0.6], [0.6, 1]]]])
    post = xr.Dataset({"sd_school": (("chain", "draw", "c"), sd), "cor_school": (("chain", "draw", "c", "c2"), cor),
                       "sigma": (("chain", "draw"), np.array([[0.7, 0.9]]))})
    vc = varcorr_table(post, d)
    assert isinstance(vc, VarCorrTable)
    assert list(vc.columns) == ["grp", "var1", "var2", "vcov", "sdcor", "l-95% CI", "u-95% CI"]
    assert vc["sdcor"].tolist() == pytest.approx([0.4, 0.2, 0.5, 0.8])
    assert vc["vcov"].tolist() == pytest.approx([(0.09 + 0.25) / 2, (0.01 + 0.09) / 2,
                                                 (0.3 * 0.1 * 0.4 + 0.5 * 0.3 * 0.6) / 2, (0.49 + 0.81) / 2])
    lines = repr(vc).splitlines()
    name, var, sd_ = lines[2].split()[:3]
    assert name == "standLRT" and float(var) == pytest.approx(0.05) and float(sd_) == pytest.approx(0.2)
    assert lines[2].rstrip().endswith("0.50")  # posterior mean correlation (0.4 + 0.6) / 2


def test_prior_table_display(exam):
    tab = hierfit.default_priors("normexam ~ standLRT + sex + (standLRT | school)", exam,
                                 priors=[hierfit.prior("normal(0, 1)", "b", coef="standLRT")])
    text = repr(tab)
    lines = text.splitlines()
    assert lines[0].split() == ["prior", "class", "coef", "group", "source"]  # no dpar column: no dpar formulas
    assert lines[1].split() == ["student_t(3,", "0,", "2.5)", "Intercept", "default"]
    assert lines[2].split() == ["normal(0,", "1)", "b", "standLRT", "user"]
    assert lines[6].split() == ["lkj(1)", "cor", "school", "default"]
    html = tab._repr_html_()
    assert "<table" in html and "<b>user</b>" in html and "1 set by you" in html
    with_dpar = hierfit.default_priors(hierfit.bf("normexam ~ standLRT + (1 | school)", sigma="~ sex"), exam)
    assert "dpar" in repr(with_dpar).splitlines()[0]
