"""Design stage: X and Z as R/lme4 would build them, and clear errors for bad data."""

import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import shared_path
from hierfit import DataError, DataWarning, FormulaError
from hierfit.spec.design import build_design, lme4_name, r_sort


def test_exam_random_slope_design(exam):
    d = build_design("normexam ~ standLRT + sex + (standLRT | school)", exam)
    assert d.fixed_names == ["(Intercept)", "standLRT", "sexM"]
    assert d.nobs == 4059
    np.testing.assert_array_equal(d.X[:, 0], 1.0)
    np.testing.assert_array_equal(d.X[:, 1], exam["standLRT"].to_numpy())
    np.testing.assert_array_equal(d.X[:, 2], (exam["sex"] == "M").to_numpy().astype(float))
    (blk,) = d.blocks
    assert blk.coefs == ["(Intercept)", "standLRT"] and blk.is_correlated
    assert blk.levels == [str(i) for i in range(1, 66)]  # numeric ids sort numerically, as R's factor()
    np.testing.assert_array_equal(blk.Z[:, 1], exam["standLRT"].to_numpy())
    # row i belongs to the level of its school
    assert [blk.levels[k] for k in blk.index[:5]] == [str(s) for s in exam["school"][:5]]
    assert d.ngrps == {"school": 65}


def test_nested_counts_like_lme4(exam, lme4_exam):
    d = build_design("normexam ~ standLRT + sex + (1 | school/student)", exam)
    assert d.ngrps == lme4_exam["exam_nested_reml"]["ngroups"] == {"student:school": 4055, "school": 65}
    assert [b.name for b in d.blocks] == ["student:school", "school"]  # lme4 orders by number of levels


def test_crossed_student_has_650_levels(exam):
    d = build_design("normexam ~ standLRT + (1 | school) + (1 | student)", exam)
    assert d.ngrps == {"student": 650, "school": 65}


def test_interaction_group(exam):
    d = build_design("normexam ~ 1 + (1 | school:student)", exam)
    assert d.ngrps == {"school:student": 4055}
    assert d.blocks[0].levels[0] == "1:1"


def test_double_bar_splits_like_lme4(exam, lme4_exam):
    d = build_design("normexam ~ standLRT + sex + (standLRT || school)", exam)
    ref = [(r["grp"], r["var1"]) for r in lme4_exam["exam_rs_uncorr_reml"]["varcorr_table"] if r["grp"] != "Residual"]
    assert [(b.name, b.coefs[0]) for b in d.blocks] == ref == [("school", "(Intercept)"), ("school.1", "standLRT")]
    assert not any(b.is_correlated for b in d.blocks)


def test_double_bar_factor_slope_is_fully_uncorrelated(exam):
    d = build_design("normexam ~ vr + (0 + vr || school)", exam)
    assert [b.coefs for b in d.blocks] == [["vrbottom 25%"], ["vrmid 50%"], ["vrtop 25%"]]


def test_slope_only_and_several_slopes(exam):
    d = build_design("normexam ~ standLRT + schavg + (0 + standLRT | school)", exam)
    assert d.blocks[0].coefs == ["standLRT"]
    d = build_design("normexam ~ standLRT + schavg + (standLRT + schavg | school)", exam)
    assert d.blocks[0].coefs == ["(Intercept)", "standLRT", "schavg"]


def test_factor_coding_follows_r(exam):
    d = build_design("normexam ~ vr * sex + schgend", exam)
    assert d.fixed_names == ["(Intercept)", "vrmid 50%", "vrtop 25%", "sexM", "schgendboys", "schgendgirls",
                             "vrmid 50%:sexM", "vrtop 25%:sexM"]
    d = build_design("normexam ~ 0 + sex", exam)
    assert d.fixed_names == ["sexF", "sexM"]
    d = build_design("normexam ~ sex/standLRT", exam)
    assert d.fixed_names == ["(Intercept)", "sexM", "sexF:standLRT", "sexM:standLRT"]


def test_level_order_r_sort_and_categorical():
    assert r_sort(["b", "a", "B"]) == ["a", "b", "B"]
    # Owls nest names in R's order (SOURCES-R.md)
    owls = pd.read_csv(shared_path("data", "owls.csv"))
    assert r_sort(owls["Nest"].unique())[:5] == ["AutavauxTV", "Bochet", "Champmartin", "ChEsard", "Chevroux"]
    df = pd.DataFrame({"y": [1.0, 2, 3, 4], "s": pd.Categorical(["male", "female", "male", "female"],
                                                                 categories=["male", "female"])})
    assert build_design("y ~ s", df).fixed_names == ["(Intercept)", "sfemale"]
    df = pd.DataFrame({"y": [1.0, 2, 3, 4], "flag": [True, False, True, False]})
    assert build_design("y ~ flag", df).fixed_names == ["(Intercept)", "flagTRUE"]


def test_gpa_names_match_lme4(lme4_cases):
    gpa = pd.read_csv(shared_path("data", "gpa.csv"))
    gpa["sex"] = pd.Categorical(gpa["sex"], categories=["male", "female"])
    d = build_design("gpa ~ scale(occasion) * sex + (scale(occasion) | student)", gpa)
    ref = list(lme4_cases["gpa_rs"]["fixed_effects"])
    assert [n.replace("scale(occasion)", "sOccasion") for n in d.fixed_names] == [
        ref[0], ref[1], ref[2], ref[4]]


def test_transforms_match_r_definitions(exam):
    d = build_design("normexam ~ scale(standLRT) + center(schavg) + I(standLRT^2)", exam)
    x = exam["standLRT"].to_numpy()
    np.testing.assert_allclose(d.X[:, 1], (x - x.mean()) / x.std(ddof=1))  # R's scale(): sd with n - 1
    np.testing.assert_allclose(d.X[:, 2], exam["schavg"] - exam["schavg"].mean())
    np.testing.assert_allclose(d.X[:, 3], x**2)
    d2 = build_design("normexam ~ I(standLRT**2) + log(schavg + 1) + sqrt(exp(standLRT))", exam)
    np.testing.assert_allclose(d2.X[:, 1], x**2)
    np.testing.assert_allclose(d2.X[:, 2], np.log(exam["schavg"] + 1))
    np.testing.assert_allclose(d2.X[:, 3], np.sqrt(np.exp(x)))


def test_transformed_response_bees(lme4_cases):
    bees = pd.read_csv(shared_path("data", "bees.csv"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        d = build_design("log(Spobee + 1) ~ Infection + BeesN + (1 | Hive)", bees)
    np.testing.assert_allclose(d.y, np.log(bees["Spobee"] + 1))
    assert d.ngrps == {"Hive": 24}
    assert d.fixed_names == list(lme4_cases["bees"]["fixed_effects"])


def test_bees_scale_warning_like_lme4():
    bees = pd.read_csv(shared_path("data", "bees.csv"))
    with pytest.warns(DataWarning, match=r"very different scales.*BeesN.*scale\(\)"):
        build_design("log(Spobee + 1) ~ Infection + BeesN + (1 | Hive)", bees)


def test_new_data_recoded_with_training_spec(exam):
    d = build_design("normexam ~ scale(standLRT) + sex + (1 | school)", exam)
    new = pd.DataFrame({"standLRT": [0.0, 10.0], "sex": ["M", "F"], "school": [1, 999]})
    rec = d.mu.recode(d.prepare(new))
    X = rec["X"]
    x = exam["standLRT"]
    np.testing.assert_allclose(X[:, 1], (np.array([0.0, 10.0]) - x.mean()) / x.std(ddof=1))
    np.testing.assert_array_equal(X[:, 2], [1.0, 0.0])
    Z, idx, labels = rec["blocks"][0]
    assert idx.tolist() == [0, -1] and labels == ["1", "999"]
    with pytest.raises(DataError, match=r"column 'sex' has level\(s\) 'X' not seen"):
        d.prepare(pd.DataFrame({"standLRT": [0.0], "sex": ["X"], "school": [1]}))


def test_lme4_name():
    assert lme4_name("x:sex[T.M]") == "x:sexM"
    assert lme4_name("a[x]:b") == "ax:b"


def test_missing_values_dropped_with_counts():
    plant = pd.read_csv(shared_path("data", "plantHeight.csv"))
    with pytest.warns(DataWarning, match=r"dropped 1 of 178 row\(s\) with missing values \(Family: 1\)"):
        d = build_design("loght ~ temp + (1 | Family)", plant)
    assert d.nobs == 177 and d.n_dropped == 1 and d.dropped_by_column == {"Family": 1}


def test_bad_frames():
    df = pd.DataFrame([[1.0, 2.0, 3.0]], columns=["y", "x", "x"])
    with pytest.raises(DataError, match="duplicated column name"):
        build_design("y ~ x", df)
    df = pd.DataFrame({0: [1.0, 2.0], "y": [1.0, 3.0]})
    with pytest.raises(DataError, match="column names must be strings"):
        build_design("y ~ 1", df)


def test_backticks_for_spaces_and_unicode():
    df = pd.DataFrame({"y": [1.0, 2, 3, 5, 4], "my var": [1.0, 2, 4, 3, 5], "größe": [2.0, 1, 0, 1, 3]})
    d = build_design("y ~ `my var` + `größe`", df)
    assert d.fixed_names == ["(Intercept)", "my var", "größe"]
