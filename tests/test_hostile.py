"""Hostile and bad input: every case raises a hierfit exception that names the problem.

Never a raw PyTensor/NumPy/pandas traceback, never a silent wrong fit.  Cases already
covered elsewhere (tests/test_formula.py, test_design.py, test_predict.py,
test_persist_cli.py, test_priors.py, test_families.py) are not repeated here.
"""

from __future__ import annotations

import collections
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest

import hierfit
from hierfit import DataError, DataWarning, FormulaError, HierfitError, PersistenceError
from hierfit.spec.design import build_design
from hierfit.spec.formula import parse_formula

N = 40


def _data(**changes) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    df = pd.DataFrame({"y": rng.normal(size=N), "x": rng.normal(size=N), "z": rng.normal(size=N),
                       "g": np.repeat(np.arange(8), 5), "h": np.tile(np.arange(5), 8)})
    for k, v in changes.items():
        df[k] = v
    return df


def _df(**cols) -> pd.DataFrame:
    return pd.DataFrame(cols)


def _assert_caret(err: FormulaError, at: str) -> None:
    lines = str(err).splitlines()
    col = lines[-1].index("^")
    assert lines[-2][col:].startswith(at), str(err)


# -- malformed formulas -------------------------------------------------------------------------------------------

MALFORMED = [
    # (formula, message fragment, caret at)
    ("y ~ x + (1 || )", "empty grouping factor after '||'", "||"),
    ("y ~ x + ((1 | g)", "'(' is never closed", "(("),
    ("y ~ x + (1 | g/)", "grouping factor ends with an operator", "/"),
    ("y ~ x + (1 | g:)", "grouping factor ends with an operator", ":"),
    ("y ~ x + (1 | /g)", "grouping factor must be a column name", "/"),
    ("y ~ x + (1 | log(g))", "grouping factor must be a column name", "("),
    ("y ~ x + (1 | 'g')", "grouping factor must be a column name", "'g'"),
    ("y ~ x + (1 | g)(x)", "must be in parentheses", "|"),
    ("(y ~ x)", "'~' inside parentheses", "~"),
    ("y ~ x + (x ~ g)", "'~' inside parentheses", "~ g"),
    ("y ~ x ++ z", "empty term after '+'", "++"),
    ("y ~ x - - z", "empty term after '-'", "- -"),
    ("y ~ I(x[0])", "unexpected character '['", "["),
    ("y ~ x + y", "the response 'y' also appears on the right-hand side", "y"),
    ("log(y) ~ x + (y | g)", "the response 'y' also appears on the right-hand side", "y |"),
    ("", "formula is empty", None),
    ("  \n\t ", "formula is empty", None),
    ("y ~ x + (1 | )", "empty grouping factor", "|"),
    ("y ~ x + ( | g)", "empty term before", "|"),
    ("y ~ (x + 1", "never closed", "("),
    ("y ~ x)", "without a matching", ")"),
    ("~ x", "response missing", "~"),
    ("y x", "no '~'", "y"),
    ("y ~ x ~ z", "more than one '~'", None),
    ("y ~ x +", "empty term", "+"),
    ("y ~ x + 1 | g", "must be in parentheses", "|"),
    ("y ~ np.log(x)", "unknown function 'np.log'", "np.log"),
    ("y ~ (1 | g + h)", "grouping factor must be a column name", "+"),
    ("y ~ (1 | g | h)", "more than one '|'", None),
    ("y ~ x $ z", "unexpected character", "$"),
    ("y ~ `x", "unclosed backtick", "`"),
    ("y | g ~ x", "only trials(), weights(), cens(), se() may follow", "g"),
    ("y ~ ", "nothing after '~'", "~"),
]


@pytest.mark.parametrize("formula, message, caret", MALFORMED, ids=[m[0] or "<empty>" for m in MALFORMED])
def test_malformed_formula(formula, message, caret):
    with pytest.raises(FormulaError) as info:
        parse_formula(formula)
    assert message in str(info.value)
    if caret:
        _assert_caret(info.value, caret)


# Syntax that the parser passes on but the model-matrix builder rejects: still a FormulaError
# naming the formula text, not formulaic's own exception.
@pytest.mark.parametrize("formula, message", [
    ("y ~ x z", "Missing operator between `x` and `z`"),
    ("y ~ x + 'a'", "String literals are not valid"),
    ("y ~ x,z", "Unknown operator ','"),
    ("y ~ x^", "the interaction power '^' takes a whole number from 1 to 10"),
    ("y ~ x + (0 | g)", "random-effect term (0 | g) has no coefficients"),
    ("y ~ x + (1 + | g)", "cannot build the random-effect term (1 + | g)"),
])
def test_formula_rejected_when_building(formula, message):
    with pytest.raises(FormulaError) as info:
        build_design(formula, _data())
    assert message in str(info.value)


@pytest.mark.parametrize("formula, message", [
    ("y ~ x + (1 | g) + (1 | g)", "'(Intercept)' of 'g' appears in two terms ((1 | g) and (1 | g))"),
    ("y ~ x + (1 | g) + (x | g)", "'(Intercept)' of 'g' appears in two terms ((1 | g) and (x | g))"),
    ("y ~ x + (1 | g/h) + (1 | g)", "'(Intercept)' of 'g' appears in two terms"),
    ("y ~ x + (x || g) + (0 + x | g)", "'x' of 'g' appears in two terms"),
])
def test_duplicated_group_effects(formula, message):
    """brms refuses duplicated group-level effects; lme4 would fit a non-identified model."""
    with pytest.raises(FormulaError) as info:
        build_design(formula, _data())
    assert message in str(info.value)


# -- formulas that reference Python names or code -------------------------------------------------------------------

@pytest.mark.parametrize("formula, message", [
    ("y ~ __import__('os').system('echo hacked')", "unknown function '__import__'"),
    ("y ~ I(x.mean())", "unknown function 'x.mean'"),
    ("y ~ os + x", "unknown column 'os'"),
    ("y ~ I(x if z else g)", "unknown column 'if'"),
    ("y ~ lambda: x", "unknown column 'lambda'"),
    ("y ~ exp", "unknown column 'exp'"),
])
def test_python_names_are_not_evaluated(formula, message, capfd):
    with pytest.raises(FormulaError) as info:
        build_design(formula, _data())
    assert message in str(info.value)
    assert "hacked" not in capfd.readouterr().out


def test_formula_must_be_text():
    with pytest.raises(FormulaError, match="formula must be a string, got bytes"):
        build_design(b"y ~ x", _data())


# -- bad data ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("formula, data, error, message", [
    ("yy ~ x", _data(), FormulaError, "unknown column 'yy'; did you mean 'y'?"),
    ("y ~ x", _data(y=pd.date_range("2020-01-01", periods=N)), DataError, "column 'y' holds dates/times"),
    ("y ~ x", _data(y=np.arange(N) + 1j), DataError, "column 'y' holds complex numbers"),
    ("y ~ x", _data(x=pd.to_timedelta(np.arange(N), unit="D")), DataError, "column 'x' holds time differences"),
    ("y ~ x", _data(x=np.arange(N) * (1 + 1j)), DataError, "column 'x' holds complex numbers"),
    ("y ~ x", _data(y=np.r_[np.inf, np.zeros(N - 1) + np.arange(N - 1)]), DataError,
     r"response 'y' \(1 rows\) contain NaN or infinite"),
    ("y ~ x", _data(x=np.r_[-np.inf, np.arange(N - 1.0)]), DataError, r"'x' \(1 rows\) contain NaN or infinite"),
    ("y ~ x + (1 | g)", _data(g=np.nan), DataError, r"all 40 rows have a missing value .*\(g: 40 NA\)"),
    ("y ~ x + z", _data(z=3.0), DataError, r"'z' is a linear combination of '\(Intercept\)'"),
    ("y ~ x + z", _data(z=0.0), DataError, r"'z' is a linear combination of"),
    ("y ~ x + z", _data(z=_data()["x"]), DataError, r"'z' is a linear combination of '\(Intercept\)', 'x'"),
    ("y ~ a + b", _data(a=np.arange(N) % 2, b=1 - np.arange(N) % 2), DataError,
     r"'b' is a linear combination of '\(Intercept\)', 'a'"),
    ("y ~ f + k", _data(f=list("ab") * 20, k=list("cd") * 20), DataError,
     r"'kd' is a linear combination of '\(Intercept\)', 'fb'"),
    ("y ~ x + (x | id)", _data(id=np.arange(N)), DataError,
     r"every level of 'id' has a single row, so the random slope of 'x'"),
    ("y ~ my var", _data(**{"my var": np.arange(N) * 1.0}), FormulaError,
     "names with spaces or symbols go in backticks, like R: `my var`"),
    ("y ~ xx + (1 | g)", _df(y=[1.0, 2, 3, 4], x=[1.0, 2, 3, 4], g=[1, 1, 2, 2]), FormulaError, "did you mean 'x'"),
    ("y ~ x + (1 | gg)", _df(y=[1.0, 2, 3, 4], x=[1.0, 2, 3, 4], g=[1, 1, 2, 2]), FormulaError, "unknown column 'gg'"),
    ("y ~ x + (1 | g)", _df(y=[1.0, 2, 3, 4], x=[1.0, 2, 3, 4], g=[1.5, 1.5, 2.5, 2.5]), FormulaError,
     "grouping variable 'g' holds non-integer numbers"),
    ("y ~ x + (1 | g)", _df(y=[1.0, 2, 3, 4], x=[1.0, 2, 3, 4], g=[1, 1, 1, 1]), DataError, "only 1 level"),
    ("y ~ x + (1 | g)", _df(y=[1.0, 2, 3, 4], x=[1.0, 2, 3, 4], g=[1, 2, 3, 4]), DataError,
     r"number of observations \(4\) <= number of random effects"),
    ("y ~ x + (x | g)", _df(y=[1.0, 2, 3, 4, 5, 6], x=[1.0, 2, 3, 4, 5, 7], g=[1, 1, 2, 2, 3, 3]), DataError,
     r"number of observations \(6\) <= number of random effects \(3 levels x 2"),
    ("y ~ x", _df(y=["a", "b", "a"], x=[1.0, 2, 3]), DataError, "response 'y' is not numeric"),
    ("y ~ x", _df(y=[np.nan, np.nan], x=[1.0, 2]), DataError, "all 2 rows have a missing value"),
    ("y ~ x", _df(y=[3.0, 3.0, 3.0], x=[1.0, 2, 3]), DataError, "response 'y' is constant"),
    ("y ~ x", _df(y=[1.0, 2, 3], x=[1.0, np.inf, 3]), DataError, r"'x' \(1 rows\) contain NaN or infinite"),
    ("y ~ log(x)", _df(y=[1.0, 2, 3], x=[1.0, 0.0, 3]), DataError, "contain NaN or infinite"),
    ("y ~ x", pd.DataFrame({"y": [], "x": []}), DataError, "data is empty"),
    ("y ~ x + z", _df(y=[1.0, 2, 3, 5], x=[1.0, 2, 3, 4], z=[2.0, 4, 6, 8]), DataError,
     "'z' is a linear combination of '\\(Intercept\\)', 'x'"),
])
def test_bad_data(formula, data, error, message):
    with pytest.raises(error, match=message):
        build_design(formula, data)


def test_one_row_per_level_under_random_slope_glmm():
    """lme4's nobs check covers only lmer; a Poisson (x | id) with one row per id is caught too."""
    rng = np.random.default_rng(1)
    data = _data(id=np.arange(N), y=rng.poisson(2.0, N))
    with pytest.raises(DataError, match="every level of 'id' has a single row"):
        build_design("y ~ x + (x | id)", data, family="poisson")
    build_design("y ~ x + (1 | id)", data, family="poisson")  # an observation-level intercept is fine


def test_slope_constant_within_groups_warns():
    data = _data(w=np.repeat(np.arange(8.0), 5))  # a group-level predictor
    with pytest.warns(DataWarning, match="'w' does not vary within any level of 'g'"):
        build_design("y ~ w + (w | g)", data)


@pytest.mark.parametrize("data, message", [
    (None, "data is empty"),
    ("not a table", "data must be a pandas DataFrame"),
    (pd.DataFrame(np.ones((3, 2)), columns=pd.MultiIndex.from_tuples([("y", "a"), ("x", "b")])),
     "column names must be strings"),
])
def test_bad_frames(data, message):
    with pytest.raises(DataError, match=message):
        build_design("y ~ x", data)


@pytest.mark.parametrize("offset, message", [
    (np.r_[np.nan, np.zeros(N - 1)], "offset has 1 missing or infinite value"),
    (["a"] * N, "offset must be numbers"),
    (np.zeros(3), "offset has 3 values but the data has 40 rows"),
])
def test_bad_offsets(offset, message):
    with pytest.raises(DataError, match=message):
        build_design("y ~ x", _data(), offset=offset)


def test_missing_values_report_counts_per_column():
    x = np.arange(N, dtype=float)
    x[[0, 1]] = np.nan
    g = np.repeat(np.arange(8.0), 5)
    g[[1, 2]] = np.nan
    with pytest.warns(DataWarning, match=r"dropped 3 of 40 row\(s\) with missing values \(x: 2, g: 2\)"):
        d = build_design("y ~ x + (1 | g)", _data(x=x, g=g))
    assert d.nobs == 37 and d.dropped_by_column == {"x": 2, "g": 2}


# -- scales ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("column, factor, pattern", [
    ("x", 1e9, r"'x' sd [0-9.]+e\+0[89]\); consider rescaling with scale\(\), e.g. scale\(x\)"),
    ("x", 1e-9, r"'x' sd [0-9.]+e-(09|10)\); consider rescaling with scale\(\), e.g. scale\(x\)"),
    ("y", 1e9, r"response 'y' has sd [0-9.]+e\+0[89].*scale\(y\)"),
    ("y", 1e-9, r"response 'y' has sd [0-9.]+e-(09|10).*scale\(y\)"),
])
def test_extreme_scales_warn_and_suggest_scale(column, factor, pattern):
    data = _data()
    data[column] = data[column] * factor
    with pytest.warns(DataWarning, match=pattern):
        build_design("y ~ x + (1 | g)", data)


def test_ordinary_scales_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        build_design("y ~ x + z + (1 | g)", _data())


# -- names: unicode, spaces, keywords -----------------------------------------------------------------------------

def test_unicode_names_without_backticks_like_r():
    data = _data(**{"größe": np.arange(N, dtype=float), "class": np.arange(N) % 3 * 1.0})
    d = build_design("y ~ größe + class", data)
    assert d.fixed_names == ["(Intercept)", "größe", "class"]
    np.testing.assert_array_equal(d.X[:, 1], np.arange(N))


def test_log_base_is_r_semantics_not_numpy_out():
    data = _data(x=np.linspace(1, 8, N), z=np.full(N, 2.0))
    before = data["z"].copy()
    np.testing.assert_allclose(build_design("y ~ log(x, 2)", data).X[:, 1], np.log2(data["x"]))
    np.testing.assert_allclose(build_design("y ~ log(x, z)", data).X[:, 1], np.log2(data["x"]))
    np.testing.assert_allclose(build_design("y ~ log(x)", data).X[:, 1], np.log(data["x"]))
    with pytest.raises(FormulaError, match=r"sqrt\(x, z\)"):
        build_design("y ~ sqrt(x, z)", data)
    pd.testing.assert_series_equal(data["z"], before)


# -- sampler settings are checked before any compiling ------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(draws=0), "draws must be a positive integer"),
    (dict(draws=10.5), "draws must be a positive integer"),
    (dict(chains=-1), "chains must be a positive integer"),
    (dict(tune=-1), "tune must be a non-negative integer"),
    (dict(seed="a"), "seed must be a non-negative integer"),
    (dict(sampler="stan"), "sampler must be one of nutpie, pymc"),
    (dict(target_accept=1.5), "target_accept must be between 0 and 1"),
    (dict(family="gausian"), "unknown family 'gausian'"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(HierfitError, match=message):
        hierfit.fit("y ~ x + (1 | g)", _data(), progressbar=False, **kwargs)


# -- new data with wrong types (needs one small fit) ---------------------------------------------------------------

@pytest.fixture(scope="module")
def small_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hierfit.fit("y ~ x + s + (1 | g)", _data(s=list("ab") * 20), draws=100, tune=100, chains=1, seed=1,
                           progressbar=False)


def _new(**cols):
    base = {"x": [0.5], "s": ["a"], "g": [1]}
    base.update(cols)
    return pd.DataFrame(base)


@pytest.mark.parametrize("newdata, message", [
    (_new(x=["1.5"]), "newdata column 'x' must be numeric, as it was when fitting"),
    (_new(x=pd.to_datetime(["2020-01-01"])), "newdata column 'x' must be numeric"),
    (_new(x=[1 + 2j]), "newdata column 'x' holds complex numbers"),
    (_new(x=[np.inf]), "newdata column 'x' has 1 infinite value"),
    (pd.DataFrame([[0.5, 0.5, "a", 1]], columns=["x", "x", "s", "g"]), "newdata has duplicated column name"),
    ({"x": [0.5], "s": ["a"], "g": [1]}, "newdata must be a pandas DataFrame, got dict"),
    (_new(s=[True]), r"column 's' has level\(s\) 'TRUE' not seen"),
])
def test_newdata_wrong_types(small_fit, newdata, message):
    with pytest.raises(DataError, match=message):
        small_fit.predict(newdata)


def test_newdata_numbers_stored_as_objects_are_accepted(small_fit):
    plain = small_fit.predict(_new(x=[0.5, -1.0], s=["a", "b"], g=[1, 2]))
    as_object = small_fit.predict(_new(x=pd.Series([0.5, -1.0], dtype=object), s=["a", "b"], g=[1, 2]))
    pd.testing.assert_frame_equal(plain, as_object)


# -- interrupted saves leave no half-written files -----------------------------------------------------------------

def test_interrupt_while_writing_keeps_previous_file(small_fit, tmp_path, monkeypatch):
    target = tmp_path / "m.hfit"
    small_fit.save(target)
    before = target.read_bytes()
    real = zipfile.ZipFile.writestr

    def interrupted(self, name, data, *args, **kwargs):
        if name.startswith("arrays/"):
            real(self, name, data[: len(data) // 3])  # part of the payload reaches the disk
            raise KeyboardInterrupt
        return real(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", interrupted)
    with pytest.raises(KeyboardInterrupt):
        small_fit.save(target)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.hfit"]  # no temporary file left behind
    assert target.read_bytes() == before  # the previous save is intact
    again = hierfit.load(target)
    pd.testing.assert_frame_equal(again.fixef(), small_fit.fixef())


def test_save_to_missing_folder(small_fit, tmp_path):
    with pytest.raises(PersistenceError, match="does not exist"):
        small_fit.save(tmp_path / "no" / "such" / "m.hfit")


# -- names never collide, nothing silently changes meaning ---------------------------------------------------------

def test_numbers_stored_as_objects_are_numeric_predictors():
    x = _data()["x"]
    d = build_design("y ~ x + (1 | g)", _data(x=pd.Series(list(x), dtype=object)))
    assert d.fixed_names == ["(Intercept)", "x"]  # one slope, not a 40-level factor
    np.testing.assert_allclose(d.X[:, 1], x)
    y = build_design("y ~ x", _data(y=pd.Series(list(_data()["y"]), dtype=object))).y
    np.testing.assert_allclose(y, _data()["y"])


@pytest.mark.parametrize("values, column", [
    ([1, "1"] * 20, "g"),
    ([True, "TRUE"] * 20, "g"),
    ([2.0, "2"] * 20, "g"),
    (pd.Categorical([1, "1"] * 20), "g"),
])
def test_values_printing_as_the_same_level_are_an_error(values, column):
    with pytest.raises(DataError, match=f"column '{column}' mixes values .* that are all the level"):
        build_design("y ~ x + (1 | g)", _data(g=values))
    with pytest.raises(DataError, match="column 's' mixes values"):
        build_design("y ~ x + s", _data(s=values))


@pytest.mark.parametrize("name", ["Intercept", "(Intercept)"])
def test_a_column_named_like_the_intercept_is_an_error(name):
    formula = f"y ~ x + {name if name.isidentifier() else '`' + name + '`'}"
    with pytest.raises(DataError, match=r"'\(?Intercept\)?'"):
        build_design(formula, _data(**{name: np.linspace(0, 1, N)}))


@pytest.mark.parametrize("formula, data, names", [
    ("y ~ s + sb", _data(s=list("ab") * 20, sb=np.linspace(0, 1, N)), r"'s\[T.b\]' and 'sb' would both be named 'sb'"),
    ("y ~ s + `sb`", _data(s=list("ab") * 20, sb=np.linspace(0, 1, N)), "would both be named 'sb'"),
    ("y ~ x + (s + sb | g)", _data(s=list("ab") * 20, sb=np.linspace(0, 1, N)), "would both be named 'sb'"),
    ("y ~ a1 + a", _data(a1=np.linspace(0, 1, N), a=["1", "2"] * 20), "would both be named 'a2'|would both be named"),
])
def test_design_columns_with_the_same_lme4_name_are_an_error(formula, data, names):
    if "a1" in formula:
        data = data.assign(a2=0)  # unused
        formula = "y ~ a2x + a"
        data = data.assign(a2x=np.linspace(0, 1, N), a=["1", "2x"] * 20)
    with pytest.raises(DataError, match=names):
        build_design(formula, data)


def test_colons_in_grouping_labels():
    ambiguous = _data(a=["p:q", "p"] * 20, b=["r", "q:r"] * 20)
    with pytest.raises(DataError, match=r"grouping factor 'a:b' is ambiguous: .* both read 'p:q:r'"):
        build_design("y ~ x + (1 | a:b)", ambiguous)
    with pytest.raises(DataError, match="ambiguous"):
        build_design("y ~ x + (1 | b/a)", ambiguous)
    # colons that do not collide: one level per observed combination, in R's order
    fine = _data(a=np.repeat(["p:1", "p:2"], 20), b=np.tile(["u", "v", "w", "z"], 10))
    d = build_design("y ~ x + (1 | a:b)", fine)
    assert d.blocks[0].levels == ["p:1:u", "p:1:v", "p:1:w", "p:1:z", "p:2:u", "p:2:v", "p:2:w", "p:2:z"]
    assert d.blocks[0].index.tolist() == [0, 1, 2, 3] * 5 + [4, 5, 6, 7] * 5


def test_small_integer_counts_do_not_wrap_around():
    s, f = np.full(N, 200, np.uint8), np.full(N, 100, np.uint8)
    with pytest.raises(DataError, match=r"integer overflow: 'I\(\(s\) \+ \(f\)\)' .*'s' \(uint8\), 'f' \(uint8\)"):
        build_design("cbind(s, f) ~ x", _data(s=s, f=f), family="binomial")
    ok = build_design("cbind(s, f) ~ x", _data(s=s // 4, f=f // 4), family="binomial")
    np.testing.assert_array_equal(ok.trials, np.full(N, 75.0))
    with pytest.raises(DataError, match="overflow"):
        build_design("y ~ x + z", _data(z=np.full(N, 2**60, np.int64) + np.arange(N)))
    d = build_design("y ~ x + z", _data(z=np.arange(N, dtype=np.int8) * 3))  # I(z) arithmetic in float64
    np.testing.assert_array_equal(d.X[:, 2], np.arange(N) * 3.0)


# -- priors name only what the model has --------------------------------------------------------------------------

@pytest.mark.parametrize("prior, message", [
    (hierfit.prior("exponential(1)", "sd", coef="zz"),
     r"class 'sd' names coef 'zz', which is not a group-level coefficient .*\(coefficients: \(Intercept\), x\)"),
    (hierfit.prior("exponential(1)", "sd", coef="x", group="h"),
     r"coef 'x', which is not a group-level coefficient of group 'h' .*\(coefficients of group 'h': \(Intercept\)\)"),
    (hierfit.prior("exponential(1)", "sd", group="school"), "names group 'school'.*groups: g, h"),
    (hierfit.prior("lkj(2)", "cor", group="h"), "no such term has correlated coefficients .*correlations: g"),
    (hierfit.prior("lkj(2)", "cor", coef="x"), "class 'cor' takes no coef"),
    (hierfit.prior("normal(0, 1)", "b", coef="x", group="g"), "class 'b' takes no group"),
    (hierfit.prior("normal(0, 1)", "Intercept", coef="x"), "class 'Intercept' takes no coef"),
    (hierfit.prior("normal(0, 1)", "b", coef="zz"), r"names coef 'zz', which is not a fixed effect .*\(fixed effects: x\)"),
])
def test_priors_naming_what_the_model_lacks(prior, message):
    with pytest.raises(hierfit.PriorError, match=message):
        hierfit.default_priors("y ~ x + (x | g) + (1 | h)", _data(), priors=[prior])


def test_priors_without_group_terms():
    with pytest.raises(hierfit.PriorError, match="no group-level terms"):
        hierfit.default_priors("y ~ x", _data(), priors=[hierfit.prior("exponential(1)", "sd")])


# -- every argument checked ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(seed=2**70), r"seed must be a non-negative integer or None \(0 to 2\^63 - 1\)"),
    (dict(seed=True), "seed must be a non-negative integer"),
    (dict(seed=1.5), "seed must be a non-negative integer"),
    (dict(seed=[1]), "seed must be a non-negative integer"),
    (dict(chains=10**9), r"chains must be a positive integer \(at most 1,024\)"),
    (dict(chains=2.0), "chains must be a positive integer"),
    (dict(draws=0), "draws must be a positive integer"),
    (dict(tune="100"), "tune must be a non-negative integer"),
    (dict(cores=-1), r"cores must be a positive integer \(1 to 4096\) or None"),
    (dict(cores="all"), "cores must be a positive integer"),
    (dict(target_accept="high"), r"target_accept must be between 0 and 1 \(exclusive\)"),
    (dict(target_accept=float("nan")), "target_accept must be between 0 and 1"),
    (dict(iter=2000), r"fit\(\) has no argument iter= \(brms's iter is tune \+ draws\)"),
    (dict(chain=2), r"fit\(\) has no argument chain=; did you mean chains=\?"),
    (dict(dpars="~ x"), "dpars must be a dict of formulas"),
])
def test_bad_arguments_name_argument_and_range(kwargs, message):
    with pytest.raises(hierfit.ArgumentError if "dpars" not in kwargs else FormulaError, match=message):
        hierfit.fit("y ~ x + (1 | g)", _data(), progressbar=False, **kwargs)


@pytest.mark.parametrize("call, message", [
    (lambda: hierfit.specify("y ~ x", _data(), weigths="x"), r"specify\(\) has no argument weigths=; did you mean weights="),
    (lambda: hierfit.specify("y ~ x", _data(), draws=10), r"specify\(\) has no argument draws="),
    (lambda: hierfit.default_priors("y ~ x", _data(), prior="normal(0, 1)"), "did you mean priors="),
    (lambda: hierfit.sample_prior("y ~ x", _data(), draws=0), "draws must be a positive integer"),
    (lambda: hierfit.sample_prior("y ~ x", _data(), seed=-3), "seed must be a non-negative integer"),
])
def test_bad_arguments_of_other_entry_points(call, message):
    with pytest.raises(hierfit.ArgumentError, match=message):
        call()


@pytest.mark.parametrize("weights, message", [
    (np.ones(N + 1), f"weights has {N + 1} values but the data has {N} rows"),
    (["a"] * N, "weights must be numbers"),
    ("nosuchcolumn", "nosuchcolumn"),
])
def test_bad_weights_name_the_problem(weights, message):
    with pytest.raises(hierfit.HierfitError, match=message):
        hierfit.specify("y ~ x + (1 | g)", _data(), weights=weights)


# -- cost never explodes on legal input ----------------------------------------------------------------------------

def _count_factorisations(monkeypatch) -> collections.Counter:
    """Count numpy's matrix factorisations (and rank helpers) from here on."""
    calls: collections.Counter = collections.Counter()
    for name in ("qr", "svd", "matrix_rank", "lstsq", "pinv"):
        original = getattr(np.linalg, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)
        monkeypatch.setattr(np.linalg, name, counted)
    return calls


def test_collinearity_check_is_one_factorisation(monkeypatch):
    rng = np.random.default_rng(0)
    n = 20_000
    big = pd.DataFrame({"y": rng.normal(size=n), "f": rng.integers(0, 150, n).astype(str), "x": rng.normal(size=n)})
    calls = _count_factorisations(monkeypatch)
    d = build_design("y ~ x + f", big)
    assert d.X.shape == (n, 151) and calls == {"qr": 1}  # was one SVD per column: > 2 minutes here
    wide = pd.DataFrame(rng.normal(size=(1000, 200)), columns=[f"x{i}" for i in range(200)]).assign(y=0.0)
    wide["y"] = rng.normal(size=1000)
    calls.clear()
    d = build_design("y ~ " + " + ".join(f"x{i}" for i in range(200)), wide)
    assert d.X.shape == (1000, 201) and calls == {"qr": 1}
    wide["x199"] = wide["x3"] - 2 * wide["x7"]  # aliased: named with the earlier columns
    with pytest.raises(DataError, match=r"'x199' is a linear combination of '\(Intercept\)', 'x0', .* 'x198'"):
        build_design("y ~ " + " + ".join(f"x{i}" for i in range(200)), wide)
    twice = big.iloc[:2000].assign(k=big["f"].iloc[:2000])  # the same factor under another name
    with pytest.raises(DataError, match=r"'k1' is a linear combination of '\(Intercept\)', 'x', 'f1', "):
        build_design("y ~ x + f + k", twice)


# -- accessors and predictions check their arguments (needs the small fit) -----------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda m: m.fixef(ci=1.5), r"ci must be between 0 and 1 \(exclusive\), got 1.5"),
    (lambda m: m.ranef(ci=0), "ci must be between 0 and 1"),
    (lambda m: m.coef(ci=-0.5), "ci must be between 0 and 1"),
    (lambda m: m.VarCorr(ci="95%"), "ci must be between 0 and 1"),
    (lambda m: m.summary(ci=95), "ci must be between 0 and 1"),
    (lambda m: m.predict(ci=float("nan")), "ci must be between 0 and 1"),
    (lambda m: m.predict(ndraws=0), r"ndraws must be a positive integer"),
    (lambda m: m.predict(ndraws=-5), r"ndraws must be a positive integer"),
    (lambda m: m.predict(ndraws=2.5), r"ndraws must be a positive integer"),
    (lambda m: m.predict(seed="x"), "seed must be a non-negative integer"),
    (lambda m: m.predict(kind="response", seed=2**64), "seed must be a non-negative integer"),
])
def test_accessor_arguments(small_fit, call, message):
    with pytest.raises(hierfit.ArgumentError, match=message):
        call(small_fit)


@pytest.mark.parametrize("values, message", [
    (pd.Series(["1", "2", 3, 4] * 10, dtype=object), r"column 'z' mixes numbers \(e.g. 3\) and text \(e.g. '1'\)"),
    (pd.Series([10**400] + [1] * (N - 1), dtype=object), r"integers such as 100000000000\.\.\.\(401 digits\) that overflow"),
    (pd.Series([2**60] + [1] * (N - 1), dtype=object), "overflow exact floating-point arithmetic"),
])
def test_object_columns_that_are_not_plainly_numbers_or_text(values, message):
    with pytest.raises(DataError, match=message):
        build_design("y ~ x + z", _data(z=values))


@pytest.mark.parametrize("values, message", [
    (pd.Series([[1], [2]] * (N // 2), dtype=object), "column 'z' holds list values"),
    (pd.Series([{"a": 1}] * N, dtype=object), "column 'z' holds dict values"),
    (pd.interval_range(0, N), "column 'z' holds interval"),
    (pd.period_range("2020", periods=N, freq="D"), "column 'z' holds period"),
])
@pytest.mark.parametrize("formula", ["y ~ z", "y ~ x + (1 | z)", "z ~ x"])
def test_columns_of_containers_are_data_errors(values, message, formula):
    with pytest.raises(DataError, match=message):
        build_design(formula, _data(z=values))


def test_text_response_of_pandas_string_dtype():
    with pytest.raises(DataError, match="not numeric"):
        build_design("z ~ x", _data(z=pd.array(["a", "b"] * (N // 2), dtype="string")))


def test_integer_columns_keep_r_level_names_and_exact_arithmetic():
    data = _data(k=np.tile(np.arange(1, 5, dtype=np.int16), N // 4), w=np.arange(N, dtype=np.int32) * 100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        d = build_design("y ~ C(k) + I(w^3)", data)
    assert d.fixed_names == ["(Intercept)", "C(k)2", "C(k)3", "C(k)4", "I(w^3)"]
    assert d.X[-1, -1] == float(39 * 100_000) ** 3  # int32 arithmetic would have wrapped around
