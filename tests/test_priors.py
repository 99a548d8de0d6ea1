"""Priors: brms's defaults computed from the data, and overrides keyed by class/coef/group."""

import numpy as np
import pytest

import hierfit
from hierfit import PriorError
from hierfit.spec.design import build_design
from hierfit.spec.priors import Dist, parse_dist, resolve_priors

RS = "normexam ~ standLRT + sex + (standLRT | school)"


def test_default_table_follows_brms(exam):
    tab = hierfit.default_priors(RS, exam)
    y = exam["normexam"].to_numpy()
    mad = 1.4826 * np.median(np.abs(y - np.median(y)))
    scale = round(max(2.5, mad), 1)
    assert list(zip(tab["class"], tab["coef"], tab["group"])) == [
        ("Intercept", "", ""), ("b", "standLRT", ""), ("b", "sexM", ""), ("sd", "(Intercept)", "school"),
        ("sd", "standLRT", "school"), ("cor", "", "school"), ("sigma", "", "")]
    assert tab["prior"].iloc[0] == f"student_t(3, {round(np.median(y), 1):.4g}, {scale:.4g})"
    assert tab["prior"].iloc[3] == f"student_t(3, 0, {scale:.4g})"
    assert tab["prior"].iloc[5] == "lkj(1)"
    sd_b = 2.5 * y.std(ddof=1) / exam["standLRT"].std(ddof=1)
    assert tab["prior"].iloc[1] == f"normal(0, {float(f'{sd_b:.3g}'):.4g})"
    assert set(tab["source"]) == {"default"}


def test_overrides_most_specific_wins(exam):
    d = build_design(RS, exam)
    ps = resolve_priors(d, [
        hierfit.prior("normal(0, 1)", "b"),
        hierfit.prior("normal(0, 0.5)", "b", coef="sexM"),
        hierfit.prior("exponential(2)", "sd", group="school"),
        hierfit.prior("exponential(5)", "sd", coef="standLRT", group="school"),
        hierfit.prior("lkj(2)", "cor"),
        hierfit.prior("exponential(1)", "sigma"),
    ])
    assert ps.b == {"standLRT": Dist("normal", (0, 1)), "sexM": Dist("normal", (0, 0.5))}
    assert ps.sd["school"] == [Dist("exponential", (2,)), Dist("exponential", (5,))]
    assert ps.cor["school"] == Dist("lkj", (2,))
    assert ps.sigma == Dist("exponential", (1,))
    assert set(ps.table()["source"]) == {"user"} | ({"default"} if ps.intercept else set())


def test_dict_form(exam):
    d = build_design(RS, exam)
    ps = resolve_priors(d, {"sd": {"group": "school", "dist": "exponential(3)"}, "Intercept": "normal(0, 1)"})
    assert ps.sd["school"][0] == Dist("exponential", (3,))
    assert ps.intercept == Dist("normal", (0, 1))


@pytest.mark.parametrize("text", ["normal(0)", "foo(1, 2)", "normal(0, -1)", "normal 0 1", "normal(a, b)", "lkj(0)"])
def test_bad_distributions(text):
    with pytest.raises(PriorError):
        parse_dist(text)


def test_bad_prior_statements(exam):
    d = build_design(RS, exam)
    with pytest.raises(PriorError, match="coef 'age', which is not a fixed effect"):
        resolve_priors(d, [hierfit.prior("normal(0, 1)", "b", coef="age")])
    with pytest.raises(PriorError, match="group 'class', which is not a grouping factor"):
        resolve_priors(d, [hierfit.prior("exponential(1)", "sd", group="class")])
    with pytest.raises(PriorError, match="unknown prior class"):
        hierfit.prior("normal(0, 1)", "slope")
    with pytest.raises(PriorError, match="positive parameters"):
        hierfit.prior("exponential(1)", "b")
    with pytest.raises(PriorError, match="lkj"):
        hierfit.prior("normal(0, 1)", "cor")
    with pytest.raises(PriorError, match="unknown key"):
        resolve_priors(d, {"sd": {"grp": "school", "dist": "exponential(1)"}})


def test_user_prior_changes_the_model(exam):
    d = build_design(RS, exam)
    from hierfit.engine.model import build_model

    m = build_model(d, resolve_priors(d, [hierfit.prior("exponential(2)", "sd", group="school")]))
    assert m["sd_school"].owner.op.__class__.__name__ == "ExponentialRV"
