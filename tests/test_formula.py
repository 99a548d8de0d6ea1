"""Parser: every syntax form, and malformed formulas with a caret at the right place."""

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


@pytest.mark.parametrize(
    "formula, message, caret_at",
    [
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
        ("y | g ~ x", "may follow '|' in the response", "g"),
        ("y ~ ", "nothing after '~'", "~"),
    ],
)
def test_malformed(formula, message, caret_at):
    with pytest.raises(FormulaError) as info:
        parse_formula(formula)
    err = info.value
    assert message in err.message
    text = str(err)
    if caret_at is not None:
        # the caret line points at the offending token in the echoed formula
        lines = text.splitlines()
        formula_line, caret_line = lines[-2], lines[-1]
        col = caret_line.index("^")
        assert formula_line[col:].startswith(caret_at)


def test_non_string_formula():
    with pytest.raises(FormulaError, match="must be a string"):
        parse_formula(42)
