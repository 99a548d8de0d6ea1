"""Property-based tests of the formula parser (hypothesis).

* Generated valid formulas parse into exactly the terms they were built from, and
  the parsed formula written back as text parses to the same thing.
* Generated garbage raises FormulaError (or, if the parser accepts it, building the
  design raises a HierfitError): never another exception.
"""

from __future__ import annotations

import keyword
import warnings

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hierfit import FormulaError, HierfitError  # noqa: E402
from hierfit.spec.design import build_design  # noqa: E402
from hierfit.spec.formula import KNOWN_FUNCTIONS, ParsedFormula, parse_formula  # noqa: E402

PROFILE = settings(max_examples=150, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

_RESERVED = set(KNOWN_FUNCTIONS) | {"True", "False", "None"}

# -- names as written in a formula and as the parser renders them ------------------------------------------------

plain = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True).filter(lambda s: s not in _RESERVED)
dotted = st.from_regex(r"[a-z]{1,4}\.[a-z]{1,4}", fullmatch=True)  # R-style names: temp.max
spaced = st.from_regex(r"[a-z]{1,4} [a-z]{1,4}", fullmatch=True)  # only with backticks: `my var`
unicode_names = st.sampled_from(["größe", "température", "λ", "año"])


def _quoted(name: str) -> str:
    """How the parser renders a column name for formulaic."""
    return name if name.isidentifier() and not keyword.iskeyword(name) else f"`{name}`"


@st.composite
def column(draw):
    """(source text, rendered text, column name)."""
    kind = draw(st.sampled_from(["plain", "plain", "dotted", "spaced", "unicode", "keyword"]))
    if kind == "plain":
        name = draw(plain)
    elif kind == "dotted":
        name = draw(dotted)
    elif kind == "spaced":
        return (f"`{(name := draw(spaced))}`", f"`{name}`", name)
    elif kind == "unicode":
        name = draw(unicode_names)
    else:
        name = draw(st.sampled_from(["class", "if", "lambda"]))
    src = f"`{name}`" if keyword.iskeyword(name) else name
    return src, _quoted(name), name


@st.composite
def fixed_term(draw):
    """(source, rendered, columns) of one fixed-effect term."""
    a_src, a_exp, a = draw(column())
    kind = draw(st.sampled_from(["var", "var", "log", "scale", "square", "inter", "cross"]))
    if kind == "var":
        return a_src, a_exp, {a}
    if kind in ("log", "scale"):
        return f"{kind}({a_src})", f"{kind}({a_exp})", {a}
    if kind == "square":
        return f"I({a_src}^2)", f"I({a_exp}**2)", {a}
    b_src, b_exp, b = draw(column())
    op = ":" if kind == "inter" else "*"
    return f"{a_src}{op}{b_src}", f"{a_exp}{op}{b_exp}", {a, b}


group_name = plain


@st.composite
def group_term(draw):
    """(source, [(expr, factors, name, correlated)], columns)."""
    x_src, x_exp, x = draw(column())
    z_src, z_exp, z = draw(column())
    expr_src, expr_exp, cols = draw(st.sampled_from([
        ("1", "1", set()), (x_src, x_exp, {x}), (f"0 + {x_src}", f"0 + {x_exp}", {x}),
        (f"1 + {x_src}", f"1 + {x_exp}", {x}), (f"{x_src} + {z_src}", f"{x_exp} + {z_exp}", {x, z}),
    ]))
    bar = draw(st.sampled_from(["|", "||"]))
    levels = draw(st.lists(group_name, min_size=1, max_size=3, unique=True))
    nesting = draw(st.sampled_from(["/", ":"])) if len(levels) > 1 else "/"
    src = f"({expr_src} {bar} {nesting.join(levels)})"
    if nesting == ":":
        expected = [(expr_exp, tuple(levels), ":".join(levels), bar == "|")]
    else:
        expected = []
        for k in range(len(levels)):
            factors = tuple(reversed(levels[: k + 1]))
            expected.append((expr_exp, factors, ":".join(factors), bar == "|"))
    return src, expected, cols | set(levels)


separators = st.sampled_from([" + ", "+", "  +  ", "\n+ ", " +\t"])


@st.composite
def valid_formula(draw):
    """(formula text, expected response, expected fixed part, expected group terms)."""
    intercept = draw(st.sampled_from([None, "1", "0"]))
    fixed = draw(st.lists(fixed_term(), max_size=3))
    groups = draw(st.lists(group_term(), max_size=2))
    if intercept is None and not fixed and not groups:
        fixed = [draw(fixed_term())]
    used = set().union(*(c for _, _, c in fixed), *(c for _, _, c in groups))
    response = draw(plain.filter(lambda r: r not in used))
    pieces = ([intercept] if intercept else []) + [src for src, _, _ in fixed] + [src for src, _, _ in groups]
    text = response + draw(st.sampled_from([" ~ ", "~", " ~\n"])) + pieces[0]
    for p in pieces[1:]:
        text += draw(separators) + p
    expected_fixed = " + ".join(([intercept] if intercept else []) + [e for _, e, _ in fixed]) or "1"
    expected_groups = [t for _, exp, _ in groups for t in exp]
    return text, _quoted(response), expected_fixed, expected_groups


def _structure(pf: ParsedFormula):
    return pf.response, pf.fixed, [(g.expr, g.factors, g.name, g.correlated) for g in pf.groups]


def to_text(pf: ParsedFormula) -> str:
    """Write a parsed formula back as lme4 text (nesting written out as g + h:g).

    Example
    -------
    >>> to_text(parse_formula("y ~ x + (1 | g/h)"))
    'y ~ x + (1 | g) + (1 | h:g)'
    """
    bars = [f"({g.expr} {'|' if g.correlated else '||'} {':'.join(map(_quoted, g.factors))})" for g in pf.groups]
    return f"{pf.response} ~ " + " + ".join([pf.fixed] + bars)


@PROFILE
@given(valid_formula())
def test_valid_formulas_parse_to_their_terms(case):
    text, response, fixed, groups = case
    pf = parse_formula(text)
    assert _structure(pf) == (response, fixed, groups), text


@PROFILE
@given(valid_formula())
def test_parsed_formula_round_trips_to_text(case):
    pf = parse_formula(case[0])
    again = parse_formula(to_text(pf))
    assert _structure(again) == _structure(pf), (case[0], to_text(pf))


# -- garbage --------------------------------------------------------------------------------------------------------

TOKENS = ["y", "x", "z", "g", "h", "~", "+", "-", "*", "/", ":", "|", "||", "(", ")", "0", "1", "2.5", "^", "**",
          "log", "I", "scale", "offset", "trials", "cbind", ",", "`x`", "`my var`", "'a'", "%", "!", "=", "@", "$",
          "[", "]", "{", "}", ".", "`", "\"", "\\", "#", "\n", " ", "np.log", "__import__", "lambda", "é", "\x00"]

token_soup = st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join) | \
    st.lists(st.sampled_from(TOKENS), max_size=14).map("".join) | \
    st.lists(st.sampled_from(TOKENS), max_size=10).map(lambda t: "y ~ " + " ".join(t))  # reaches the design more

_FRAME = pd.DataFrame({"y": np.linspace(0.1, 3.0, 24), "x": np.sin(np.arange(24.0)), "z": np.cos(np.arange(24.0)),
                       "g": np.repeat(np.arange(6), 4), "h": np.tile(np.arange(4), 6),
                       "my var": np.arange(24.0) % 5})


@PROFILE
@given(st.text(max_size=40))
def test_random_text_raises_only_formula_error(text):
    try:
        parse_formula(text)
    except FormulaError:
        pass


@PROFILE
@given(token_soup)
def test_token_soup_raises_only_hierfit_errors(text):
    try:
        pf = parse_formula(text)
    except FormulaError:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build_design(pf, _FRAME)
    except HierfitError:
        pass


@PROFILE
@given(valid_formula(), st.integers(min_value=0, max_value=200), st.sampled_from(TOKENS))
def test_one_corrupted_character_raises_only_hierfit_errors(case, where, junk):
    text = case[0]
    k = where % (len(text) + 1)
    broken = text[:k] + junk + text[k + 1:]
    try:
        parse_formula(broken)
    except FormulaError:
        pass
