"""Hostile and bad input: every case raises a hierfit exception that names the problem.

Never a raw PyTensor/NumPy/pandas traceback, never a silent wrong fit.  Cases already
covered elsewhere (tests/test_formula.py, test_design.py, test_predict.py,
test_persist_cli.py, test_priors.py, test_families.py) are not repeated here.
"""

from __future__ import annotations

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
        if name == "fit.pkl":
            real(self, "fit.pkl", data[: len(data) // 3])  # part of the payload reaches the disk
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
