"""Parser: every syntax form (malformed formulas, with their carets, are in tests/test_hostile.py)."""

import pytest

from hierfit import FormulaError
from hierfit.spec.formula import parse_formula


def test_fixed_and_bar_split():
    pf = parse_formula("normexam ~ standLRT + sex + (standLRT | school)")
    assert pf.response == "normexam"
    assert pf.fixed == "standLRT + sex"
    (g,) = pf.groups
    assert (g.expr, g.factors, g.name, g.correlated) == ("standLRT", ("school",), "school", True)


@pytest.mark.parametrize(
    "formula, expected",
    [
        ("y ~ (1 | g)", [("1", ("g",), "g", True)]),
        ("y ~ x + (x | g)", [("x", ("g",), "g", True)]),
        ("y ~ x + (x || g)", [("x", ("g",), "g", False)]),
        ("y ~ x + (0 + x | g)", [("0 + x", ("g",), "g", True)]),
        ("y ~ x + (x + z | g)", [("x + z", ("g",), "g", True)]),
        ("y ~ (1 | g:h)", [("1", ("g", "h"), "g:h", True)]),
        ("y ~ (1 | school/student)", [("1", ("school",), "school", True),
                                      ("1", ("student", "school"), "student:school", True)]),
        ("y ~ (1 | a/b/c)", [("1", ("a",), "a", True), ("1", ("b", "a"), "b:a", True),
                             ("1", ("c", "b", "a"), "c:b:a", True)]),
        ("y ~ (1 | g1) + (1 | g2)", [("1", ("g1",), "g1", True), ("1", ("g2",), "g2", True)]),
        ("y ~ x + ((1 | g) + (0 + x | g))", [("1", ("g",), "g", True), ("0 + x", ("g",), "g", True)]),
    ],
)
def test_group_terms(formula, expected):
    pf = parse_formula(formula)
    assert [(g.expr, g.factors, g.name, g.correlated) for g in pf.groups] == expected


@pytest.mark.parametrize(
    "formula, fixed",
    [
        ("y ~ x", "x"),
        ("y ~ 0 + x", "0 + x"),
        ("y ~ x - 1", "x - 1"),
        ("y ~ -1 + x", "0 + x"),
        ("y ~ a*b + a:b + a/b", "a*b + a:b + a/b"),
        ("y ~ (1 | g)", "1"),
        ("y ~ I(x^2) + I(x**2)", "I(x**2) + I(x**2)"),
        ("y ~ scale(x) + center(z) + log(w) + sqrt(v) + exp(u)", "scale(x) + center(z) + log(w) + sqrt(v) + exp(u)"),
        ("y ~ `my var` + temp.max.warm", "`my var` + `temp.max.warm`"),
    ],
)
def test_fixed_part(formula, fixed):
    assert parse_formula(formula).fixed == fixed


def test_transformed_response():
    assert parse_formula("log(Spobee + 1) ~ Infection + (1 | Hive)").response == "log(Spobee + 1)"


def test_non_string_formula():
    with pytest.raises(FormulaError, match="must be a string"):
        parse_formula(42)
