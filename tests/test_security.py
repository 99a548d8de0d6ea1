"""Security: a formula can never run code, hang or exhaust memory.

Every exploit runs through ``hierfit.fit``, ``hierfit.specify`` and ``build_design`` (and a
few through the command line); each must raise a hierfit error and leave no side effect
(the marker file the payload would create does not exist afterwards).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hierfit
from hierfit import DataError, DataWarning, FormulaError, HierfitError
from hierfit.spec.design import FORMULA_CONTEXT, build_design
from hierfit.spec.grammar import MAX_NESTING, MAX_TERMS, check_python
from hierfit.spec.formula import parse_formula

N = 30


def _data(**changes) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"y": rng.normal(size=N), "x": rng.normal(size=N), "f": rng.normal(size=N),
                       "n": np.full(N, 10), "g": np.repeat(np.arange(6), 5)})
    for k, v in changes.items():
        df[k] = v
    return df


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "HACKED"
    yield path
    assert not path.exists(), "a formula ran code"


# Each payload would create the marker file ({m}) if any of it reached Python.
EXPLOITS = [
    # the exact exploit of the issue (a data column named f makes f"..." look like a call on a column)
    ("y ~ x + I(f\"{{__import__('os').system('touch {m}')}}\")", "String literals are not valid", "f\""),
    ("y ~ __import__('os').system('touch {m}')", "unknown function '__import__'", "__import__"),
    ("y ~ I(eval(\"__import__('os').system('touch {m}')\"))", "unknown function 'eval'", "eval"),
    ("y ~ I(exec(\"open('{m}', 'w')\"))", "unknown function 'exec'", "exec"),
    ("y ~ I(open('{m}', 'w'))", "unknown function 'open'", "open"),
    ("y ~ x + I((lambda: __import__('os'))().system('touch {m}'))", "':' is not valid inside a function call", ":"),
    ("y ~ I(x.__class__.__mro__[1].__subclasses__())", "unexpected character '['", "[1]"),
    ("y ~ I(x.__class__.__mro__)", "unknown column 'x.__class__.__mro__'", "x.__class__"),
    ("y ~ I(x)(__import__('os').system('touch {m}'))", "calls on expressions are not allowed", "(__import__"),
    ("y ~ log(x, base=__import__('os').system('touch {m}'))", "unknown function '__import__'", "__import__"),
    ("y ~ log(x, out=x)", "'=' is not valid here", "="),
    ("y ~ scale(x, **x)", "argument unpacking ('**')", "**"),
    ("y ~ I(*x)", "argument unpacking ('*')", "*"),
    ("y ~ C(x, __import__('os').system('touch {m}'))", "unknown function '__import__'", "__import__"),
    ("y ~ I([__import__('os').system('touch {m}') for _ in x])", "unexpected character '['", "["),
    ("y ~ {{__import__('os').system('touch {m}')}}", "unexpected character '{'", "{"),
    ("y ~ I(x if __import__('os').system('touch {m}') else x)", "unknown function '__import__'", "__import__"),
    ("y ~ I(ｅｖａｌ(\"open('{m}', 'w')\"))", "unknown function 'eval'", "ｅｖａｌ"),
    ("y ~ I(getattr(x, 'mean')())", "unknown function 'getattr'", "getattr"),
    ("y ~ I(__builtins__)", "leading double underscore", "__builtins__"),
    ("y ~ x + I(b'\\x00' * 10**10)", "String literals are not valid", "b'"),
    ("y | trials(__import__('os').system('touch {m}')) ~ x", "unknown function '__import__'", "__import__"),
    ("y ~ x < 1", "'<' (comparison operator) is only valid inside a function", "<"),
    ("y ~ I(x % 2)", "'%' (modulo operator) is not part of the formula language", "%"),
    ("y ~ I(x << 2)", "'<' (shift operator) is not part of the formula language", "<<"),
    ("y ~ I(x > 0 & f > 0)", "'&' (logical operator)", "&"),
]


def _caret(err: FormulaError) -> str:
    lines = str(err).splitlines()
    return lines[-2][lines[-1].index("^"):]


@pytest.mark.parametrize("template, message, caret", EXPLOITS, ids=[e[0][:40] for e in EXPLOITS])
def test_exploits_are_formula_errors_with_a_caret(template, message, caret, marker):
    formula = template.format(m=marker)
    with pytest.raises(FormulaError) as info:
        build_design(formula, _data())
    assert message in info.value.message
    assert _caret(info.value).startswith(caret), str(info.value)
    with pytest.raises(FormulaError):
        hierfit.specify(formula, _data())
    with pytest.raises(FormulaError):
        hierfit.fit(formula, _data(), draws=10, tune=10, chains=1, progressbar=False)


@pytest.mark.parametrize("kwargs", [
    dict(offset="__import__('os').system('touch {m}')"),
    dict(dpars={"sigma": "~ __import__('os').system('touch {m}')"}),
    dict(dispformula="~ I(open('{m}', 'w'))"),
])
def test_exploits_through_other_arguments(kwargs, marker):
    kwargs = {k: (v.format(m=marker) if isinstance(v, str) else {a: b.format(m=marker) for a, b in v.items()})
              for k, v in kwargs.items()}
    with pytest.raises(FormulaError):
        hierfit.specify("y ~ x", _data(), **kwargs)


def _cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.run([sys.executable, "-m", "hierfit", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_cli_exploits_do_not_run(tmp_path, marker):
    _data().to_csv(tmp_path / "data.csv", index=False)
    for formula in (EXPLOITS[0][0].format(m=marker), "y ~ I(9^9^9)"):
        res = _cli("fit", "data.csv", formula, cwd=tmp_path)
        assert res.returncode != 0
        assert "Traceback" not in res.stderr
        assert "error" in res.stderr and "^" in res.stderr, res.stderr


def test_evaluation_namespace_has_no_builtins(marker):
    """Even handed to formulaic directly, a formula cannot reach a Python builtin or numpy."""
    from formulaic import model_matrix

    for name in ("__import__", "eval", "exec", "open", "getattr", "compile", "np", "globals"):
        assert type(FORMULA_CONTEXT[name]).__name__ == "_Unavailable", name
    with pytest.raises(Exception) as info:
        model_matrix(f"I(__import__('os').system('touch {marker}'))", _data(), context=FORMULA_CONTEXT)
    assert "not a formula function" in str(info.value)
    with pytest.raises(Exception):
        model_matrix(f"I(open('{marker}', 'w'))", _data(), context=FORMULA_CONTEXT)


@pytest.mark.parametrize("expr, message", [
    ("I((lambda: x))", "Lambda"),
    ("I((lambda: x)())", "calls an expression"),
    ("I([v for v in x])", "ListComp"),
    ("I(x.real)", "Attribute"),
    ("I(x[0])", "Subscript"),
    ("I('a')", "only numbers"),
    ("I(x)(x)", "calls an expression"),
    ("log(x, out=x)", "keyword argument out="),
    ("I(*x)", "Starred"),
    ("I(y)", "'y' in 'I(y)' is not a column"),
    ("I(x if x else x)", "IfExp"),
    ("I(0 < x < 1)", "chains comparisons"),
    ("I(1 << 100)", "LShift"),
])
def test_ast_allow_list(expr, message):
    with pytest.raises(FormulaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_python(expr, None, {"x"}, {"I", "log"})


# -- nothing hangs or exhausts memory ----------------------------------------------------------------------------

BOMBS = [
    ("y ~ I(9^9^9)", "too large to compute"),
    ("y ~ I(2**10**10)", "too large to compute"),
    ("y ~ I(9.0**9**9)", "too large to compute"),
    ("y ~ I(10**300 * 10**300)", "too large to compute"),
    ("y ~ I(x * 2**-(10**9))", "too large to compute"),
    ("y ~ " + "(" * 3000 + "x" + ")" * 3000, f"nested more than {MAX_NESTING} deep"),
    ("y ~ I(" + "(" * 3000 + "x" + ")" * 3000 + ")", f"nested more than {MAX_NESTING} deep"),
    ("y ~ x + " + "x + " * 30_000 + "x", "characters long"),
    ("y ~ I(" + "9" * 5000 + ")", "number literal longer than"),
    ("y ~ " + "*".join(f"x{i}" for i in range(20)), f"more than {MAX_TERMS:,} terms"),
    ("y ~ (x + f + g + n)^1000", "interaction power"),
    ("y ~ (x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11 + x12 + x13 + x14)^10", "terms"),
    ("y ~ x^9^9", "interaction power"),
    ("y ~ I('a' * 10**10)", "String literals"),
    ("y ~ I(1 < < 10**9)", "shift operator"),
    ("y ~ I(" + "x + " * 3000 + "x)", r"the expression inside I\(\) is longer than 400 tokens"),
    ("y ~ log(" + "-" * 9000 + "x)", r"the expression inside log\(\) is longer than 400 tokens"),
]


@pytest.fixture(scope="module")
def warm():
    build_design("y ~ x + I(x^2) + (1 | g)", _data())  # formulaic imported before anything is timed


@pytest.mark.parametrize("formula, message", BOMBS, ids=[b[0][:30] for b in BOMBS])
def test_bombs_are_refused_quickly(formula, message, warm):
    t0 = time.perf_counter()
    with pytest.raises(FormulaError, match=message):
        build_design(formula, _data())
    assert time.perf_counter() - t0 < 5.0  # a guard against hanging: each is refused in well under 0.2 s


# -- names are read as Python reads them ---------------------------------------------------------------------------

def test_fullwidth_builtin_name_is_data_not_eval():
    data = _data(**{"ｅｖａｌ": np.linspace(0, 1, N)})
    d = build_design("y ~ ｅｖａｌ + I(ｅｖａｌ^2)", data)
    np.testing.assert_allclose(d.X[:, 1], np.linspace(0, 1, N))
    np.testing.assert_allclose(d.X[:, 2], np.linspace(0, 1, N) ** 2)


def test_columns_equal_after_normalisation_are_an_error_naming_both():
    with pytest.raises(DataError, match="columns 'x' and 'ｘ' both read as 'x'"):
        build_design("y ~ f", _data(**{"ｘ": np.ones(N)}))


def test_formula_name_matching_only_after_normalisation_says_so():
    with pytest.warns(DataWarning, match="'ｘ' matched data column 'x' only after Unicode normalisation"):
        d = build_design("y ~ ｘ", _data())
    np.testing.assert_allclose(d.X[:, 1], _data()["x"])


def test_normalised_column_in_new_data():
    data = _data(**{"ｆ": np.arange(N, dtype=float)}).drop(columns="f")
    d = build_design("y ~ ｆ", data)
    new = d.prepare(pd.DataFrame({"ｆ": [1.0, 2.0]}))
    assert list(new.columns) == ["f"]


def test_reserved_formulaic_column_names_do_not_break_or_leak():
    data = _data(__FORMULAIC_CONTEXT__=np.ones(N))  # an unused hostile column name
    build_design("y ~ x", data)


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x", "y ~ log(abs(x)) + I(x^2) + scale(f)"])
def test_ordinary_formulas_still_work_with_warnings_as_errors(formula):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        build_design(formula, _data())


def test_documented_grammar_still_parses():
    for text in ["y ~ x + I(x^2) + log(x, 2) + log10(f) + exp(x) + sqrt(n) + abs(x) + scale(x) + center(f)",
                 "cbind(n, k) ~ C(g) + offset(log(m))", "n | trials(n) ~ x + (x || g)", "y ~ (x + f)^2 + x:f",
                 "y ~ x * f - 1 + (1 | g/n)", "y ~ `my var` + temp.max", "y ~ poly(x, degree = 2)",
                 "y ~ C(g, Sum)", "y ~ C(g, contr.sum)"]:
        parse_formula(text, response=True)
    for text in ["y ~ poly(x, 2) + ns(x, df = 3) + bs(x, df = 4) + s(x, k = 5)", "y ~ s(x, by = f)",
                 "y | se(n, sigma = TRUE) ~ x", "y | cens(c, z) + weights(w) ~ x", "y ~ C(g, Treatment('b'))"]:
        parse_formula(text)  # brms's splines and addition terms, R's contrasts
    for text in ["y ~ s(x, by = 'f')", "y ~ C(g, Treatment(f'{x}'))", "y ~ C(g, Treatment('b', 'c'))",
                 "y ~ s(x, by = f.__class__)", "y ~ x + Sum('b')"]:
        with pytest.raises(FormulaError):
            build_design(text, _data(f=np.resize(list("abcdefgh"), N)))
    assert [t.text for t in parse_formula("y ~ C(g, Sum)").variables] == ["y", "g"]


def test_formula_errors_are_never_other_exceptions():
    for text in ["y ~ x +* f", "y ~ I(", "y ~ )(", "y ~ I(x,)", "y ~ ,", "y ~ I(-)", "y ~ I(x ** -)", "y ~ 1e999",
                 "y ~ I(1/0)", "y ~ I(0**-1)", "y ~ x=1", "y ~ .x", "y ~ (x).x", "y ~ 1x", "y ~ I(1x)", "y ~ 1j",
                 "y ~ (" + "- " * 5000 + "x)", "y ~ x + (" + "(1 | g) + " * 20 + "(1 | g))"]:
        try:
            build_design(text, _data())
        except HierfitError:
            pass


def test_a_column_named_like_a_called_function():
    data = _data(log=np.linspace(1, 2, N))
    with pytest.raises(FormulaError, match=r"column 'log' has the name of the function log\(\)"):
        build_design("y ~ log + log(abs(x))", data)
    d = build_design("y ~ I(log) + exp(x)", data)  # used only as a column: fine
    np.testing.assert_allclose(d.X[:, 1], np.linspace(1, 2, N))


def test_new_data_columns_cannot_shadow_functions():
    d = build_design("y ~ log(abs(x)) + (1 | g)", _data())
    new = pd.DataFrame({"x": [1.0, np.e], "g": [0, 1], "log": ["not", "a function"], "abs": [0, 0],
                        "__FORMULAIC_CONTEXT__": [1, 2]})
    np.testing.assert_allclose(d.mu.recode(d.prepare(new))["X"][:, 1], [0.0, 1.0])


def test_caret_inside_any_function_is_arithmetic_like_r():
    data = _data(x=np.linspace(1, 2, N))
    d = build_design("y ~ log(x^2) + sqrt(x^3)", data)
    assert d.fixed_names == ["(Intercept)", "log(x^2)", "sqrt(x^3)"]
    np.testing.assert_allclose(d.X[:, 1], np.log(np.linspace(1, 2, N) ** 2))
    np.testing.assert_allclose(d.X[:, 2], np.linspace(1, 2, N) ** 1.5)


def test_comparisons_inside_functions_like_r():
    data = _data(k=np.arange(N) % 7, m=np.arange(N) % 5)
    d = build_design("I(k > 3) ~ x + I(m == 2) + I(x <= 0)", data, family="bernoulli")
    np.testing.assert_array_equal(d.y, (np.arange(N) % 7 > 3).astype(float))
    np.testing.assert_array_equal(d.X[:, 2], (np.arange(N) % 5 == 2).astype(float))
    assert d.fixed_names == ["(Intercept)", "x", "I(m == 2)", "I(x <= 0)"]
