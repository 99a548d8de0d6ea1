"""Stage 1 of the pipeline: parse an lme4/brms formula into terms.

The parser splits a formula such as ``normexam ~ standLRT + sex + (standLRT | school)``
into the response, the fixed-effect part (handed to formulaic later) and one
:class:`GroupTerm` per random-effect bar.  It knows lme4's shorthands:

* ``(x | g)`` correlated intercept and slope, ``(0 + x | g)`` slope only,
* ``(x || g)`` uncorrelated (expanded to one term per coefficient, like lme4),
* ``(1 | g/h)`` nesting (``(1 | g) + (1 | h:g)``), ``(1 | g:h)`` interactions,
* crossed terms as separate bars.

Malformed formulas raise :class:`hierfit.FormulaError` with a caret under the
offending text.  Nothing here looks at data; see :mod:`hierfit.spec.design`.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

from hierfit.errors import FormulaError
from hierfit.spec.distributional import ModelFormula, bf, split_formula
from hierfit.spec.grammar import (CONTRAST_NAMES, MAX_FORMULA_LENGTH, MAX_NESTING, RESERVED_FUNCTIONS, check_size,
                                  check_tokens, normalize_name)
from hierfit.spec.formula_terms import AdditionTerm, parse_addition

__all__ = ["Token", "GroupTerm", "ParsedFormula", "parse_formula", "tokenize", "KNOWN_FUNCTIONS", "ModelFormula", "bf",
           "split_formula"]

#: Functions allowed in formulas (R spelling) and what they mean.
KNOWN_FUNCTIONS = {
    "log": "natural logarithm",
    "log10": "base-10 logarithm",
    "log2": "base-2 logarithm",
    "log1p": "log(1 + x)",
    "exp": "exponential",
    "sqrt": "square root",
    "abs": "absolute value",
    "scale": "centre and divide by the sd (ddof=1, like R); frozen for new data",
    "center": "subtract the mean; frozen for new data",
    "I": "arithmetic as written: I(x^2), I(x**2), I(a + b)",
    "C": "treat as a factor: C(x)",
    "offset": "a term with a fixed coefficient of 1: offset(log(BroodSize))",
    "cbind": "binomial response as cbind(successes, failures)",
    "trials": "binomial response as successes | trials(n)",
    "weights": "weighted log-likelihood: y | weights(w)",
    "cens": "censored response: y | cens(censored, y2)",
    "se": "known measurement standard errors: y | se(sei) or se(sei, sigma = TRUE)",
    "poly": "orthogonal polynomials equal to R's poly(x, k); frozen for new data",
    "bs": "B-spline basis like R's splines::bs(x, df, degree); knots frozen for new data",
    "ns": "natural cubic spline basis like R's splines::ns(x, df); knots frozen for new data",
    "s": "penalised smooth like brms/mgcv s(x, k = 10) (thin plate; bs = \"ps\": P-spline) or s(x, by = f): "
         "wiggliness estimated as an sd",
    **{name: "contrast for C(f, contrast)" for name in CONTRAST_NAMES},
}

_OPS = ("||", "**", "~", "+", "-", "*", "/", ":", "|", "^", "(", ")", ",", "=", "<", ">", "!", "&", "%")
_NUMBER = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_IDENT = re.compile(r"(?:[^\W\d]|\.)[\w.]*")  # R names: letters (Unicode too), digits, "_" and "."


@dataclass(frozen=True)
class Token:
    """One lexical token of a formula with its position in the text."""

    kind: str  # "ident", "number", "op", "string"
    text: str  # the token as written (identifiers without backticks)
    pos: int
    end: int
    quoted: bool = False  # identifier written in backticks


@dataclass(frozen=True)
class GroupTerm:
    """One random-effect term ``(expr | group)``.

    Attributes
    ----------
    expr : str
        The left side of the bar, ready for formulaic (``"1"``, ``"1 + x"``, ``"0 + x"``).
    factors : tuple of str
        Columns whose combination defines the groups, in lme4's display order
        (``("student", "school")`` for the inner level of ``school/student``).
    name : str
        lme4's name of the grouping factor (``"school"``, ``"student:school"``).
    correlated : bool
        False for terms written with ``||``.
    text : str
        The term as written in the formula (for messages).
    pos : int
        Position of the term in the formula text.
    """

    expr: str
    factors: tuple[str, ...]
    name: str
    correlated: bool
    text: str
    pos: int


@dataclass(frozen=True)
class ParsedFormula:
    """The parsed formula: response, fixed part and group terms.

    Example
    -------
    >>> pf = parse_formula("normexam ~ standLRT + sex + (standLRT | school)")
    >>> pf.response, pf.fixed, [g.name for g in pf.groups]
    ('normexam', 'standLRT + sex', ['school'])
    """

    text: str
    response: str
    fixed: str
    groups: tuple[GroupTerm, ...]
    variables: tuple[Token, ...] = field(default=(), repr=False)
    functions: tuple[Token, ...] = field(default=(), repr=False)
    trials: str | None = None
    offsets: tuple[str, ...] = ()
    addition: tuple[AdditionTerm, ...] = ()

    def addition_term(self, name: str) -> AdditionTerm | None:
        """The addition term ``name`` (``"weights"``, ``"cens"``, ``"se"``) or None."""
        return next((t for t in self.addition if t.name == name), None)

    @property
    def group_factors(self) -> tuple[str, ...]:
        """All columns used as grouping factors, each once, in order of appearance."""
        seen: list[str] = []
        for g in self.groups:
            for f in g.factors:
                if f not in seen:
                    seen.append(f)
        return tuple(seen)


def tokenize(text: str) -> list[Token]:
    """Split a formula into tokens, raising FormulaError on characters it cannot read.

    Example
    -------
    >>> [t.text for t in tokenize("y ~ log(x + 1) + (1 | g)")]
    ['y', '~', 'log', '(', 'x', '+', '1', ')', '+', '(', '1', '|', 'g', ')']
    """
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c == "`":
            j = text.find("`", i + 1)
            if j < 0:
                raise FormulaError("unclosed backtick quote", text, i)
            if j == i + 1:
                raise FormulaError("empty backtick-quoted name", text, i, 2)
            tokens.append(Token("ident", normalize_name(text[i + 1 : j]), i, j + 1, quoted=True))
            i = j + 1
            continue
        if c in "'\"":
            j = text.find(c, i + 1)
            if j < 0:
                raise FormulaError("unclosed string quote", text, i)
            tokens.append(Token("string", text[i : j + 1], i, j + 1))
            i = j + 1
            continue
        m = _NUMBER.match(text, i)
        if m and (c in "0123456789" or (c == "." and i + 1 < n and text[i + 1] in "0123456789")):
            tokens.append(Token("number", m.group(0), i, m.end()))
            i = m.end()
            continue
        m = _IDENT.match(text, i)
        if m:
            tokens.append(Token("ident", normalize_name(m.group(0)), i, m.end()))
            i = m.end()
            continue
        for op in _OPS:
            if text.startswith(op, i):
                tokens.append(Token("op", op, i, i + len(op)))
                i += len(op)
                break
        else:
            raise FormulaError(f"unexpected character {c!r} in formula", text, i)
    return tokens


def _match_parens(text: str, tokens: list[Token]) -> dict[int, int]:
    """Map each '(' token index to its ')' index; raise on imbalance."""
    stack: list[int] = []
    pairs: dict[int, int] = {}
    for k, t in enumerate(tokens):
        if t.kind != "op":
            continue
        if t.text == "(":
            stack.append(k)
        elif t.text == ")":
            if not stack:
                raise FormulaError("unbalanced parentheses: ')' without a matching '('", text, t.pos)
            pairs[stack.pop()] = k
    if stack:
        t = tokens[stack[-1]]
        raise FormulaError("unbalanced parentheses: '(' is never closed", text, t.pos)
    return pairs


def _depths(tokens: list[Token]) -> list[int]:
    depth, out = 0, []
    for t in tokens:
        if t.kind == "op" and t.text == ")":
            depth -= 1
        out.append(depth)
        if t.kind == "op" and t.text == "(":
            depth += 1
    return out


def _render(text: str, tokens: list[Token]) -> str:
    """Rebuild source text of a token run for formulaic.

    Non-syntactic names are backtick-quoted and ``^`` inside ``I()`` (any function call) becomes ``**``.
    """
    out: list[str] = []
    inside_I: list[int] = []  # depth stack marking I( ... )
    depth = 0
    prev_end = None
    for k, t in enumerate(tokens):
        if prev_end is not None and t.pos > prev_end:
            out.append(" ")
        prev_end = t.end
        if t.kind == "op" and t.text == "(":
            depth += 1
            if k > 0 and tokens[k - 1].kind == "ident" and not tokens[k - 1].quoted:
                inside_I.append(depth)
            out.append("(")
            continue
        if t.kind == "op" and t.text == ")":
            if inside_I and inside_I[-1] == depth:
                inside_I.pop()
            depth -= 1
            out.append(")")
            continue
        if t.kind == "op" and t.text == "^" and inside_I:
            out.append("**")
            continue
        if t.kind == "ident":
            is_call = k + 1 < len(tokens) and tokens[k + 1].kind == "op" and tokens[k + 1].text == "("
            contrast = t.text in CONTRAST_NAMES and k > 0 and tokens[k - 1].text == "," and not t.quoted
            if not is_call and not contrast and (t.quoted or not t.text.isidentifier() or keyword.iskeyword(t.text)):
                out.append(f"`{t.text}`")
                continue
        out.append(t.text)
    return "".join(out).strip()


def _split_top(tokens: list[Token], seps: tuple[str, ...]) -> list[tuple[str | None, list[Token], Token | None]]:
    """Split tokens at depth-0 separators; returns (separator, run, separator token) triples."""
    parts: list[tuple[str | None, list[Token], Token | None]] = []
    depth = 0
    current: list[Token] = []
    sep: str | None = None
    sep_tok: Token | None = None
    for t in tokens:
        if t.kind == "op" and t.text == "(":
            depth += 1
        elif t.kind == "op" and t.text == ")":
            depth -= 1
        if depth == 0 and t.kind == "op" and t.text in seps:
            parts.append((sep, current, sep_tok))
            sep, sep_tok, current = t.text, t, []
            continue
        current.append(t)
    parts.append((sep, current, sep_tok))
    return parts


def _has_bar(tokens: list[Token]) -> bool:
    return any(t.kind == "op" and t.text in ("|", "||") for t in tokens)


def _group_factors(text: str, tokens: list[Token], bar: Token) -> list[tuple[tuple[str, ...], str]]:
    """Interpret the right side of a bar: ``g``, ``g:h``, ``g/h`` (nesting) or combinations.

    Returns a list of (factors in display order, lme4 name).
    """
    if not tokens:
        raise FormulaError(f"empty grouping factor after '{bar.text}'", text, bar.pos, len(bar.text))
    # validate shape: ident (op ident)*
    for k, t in enumerate(tokens):
        want_ident = k % 2 == 0
        if want_ident and t.kind != "ident":
            raise FormulaError(
                "grouping factor must be a column name, g1:g2 (interaction) or g1/g2 (nesting)",
                text,
                t.pos,
                t.end - t.pos,
            )
        if not want_ident and not (t.kind == "op" and t.text in (":", "/")):
            raise FormulaError(
                "grouping factor must be a column name, g1:g2 (interaction) or g1/g2 (nesting)",
                text,
                t.pos,
                t.end - t.pos,
            )
    if tokens[-1].kind != "ident":
        t = tokens[-1]
        raise FormulaError("grouping factor ends with an operator", text, t.pos)
    # split on '/' into nesting levels; each level may be an interaction g:h
    levels: list[list[str]] = [[]]
    for t in tokens:
        if t.kind == "ident":
            levels[-1].append(t.text)
        elif t.text == "/":
            levels.append([])
    out: list[tuple[tuple[str, ...], str]] = []
    acc: list[str] = []
    for k, lev in enumerate(levels):
        if k == 0:
            acc = list(lev)
        else:
            acc = list(lev) + acc  # lme4 names the inner level first: student:school
        out.append((tuple(acc), ":".join(acc)))
    return out


def _is_call(run: list[Token], name: str) -> bool:
    """True when the run is exactly ``name( ... )``."""
    if len(run) < 3 or run[0].kind != "ident" or run[0].text != name or run[1].text != "(" or run[-1].text != ")":
        return False
    return _depths(run[1:])[-1] == 0 and all(d > 0 for d in _depths(run[1:])[1:-1])


def _parse_rhs(
    text: str, tokens: list[Token], fixed: list[tuple[str, list[Token]]], groups: list[GroupTerm],
    offsets: list[str] | None = None,
) -> None:
    parts = _split_top(tokens, ("+", "-"))
    for k, (sep, run, sep_tok) in enumerate(parts):
        if not run:
            if k == 0 and len(parts) > 1:
                continue  # leading sign: "y ~ -1 + x"
            where = sep_tok if sep_tok is not None else (tokens[-1] if tokens else None)
            if where is None:
                raise FormulaError("the right-hand side of the formula is empty", text, len(text.rstrip()))
            raise FormulaError(f"empty term after '{where.text}'", text, where.pos)
        first, last = run[0], run[-1]
        is_paren = first.kind == "op" and first.text == "(" and last.kind == "op" and last.text == ")"
        if is_paren:
            # does the opening paren close at the end of the run?
            depth = 0
            closes_at_end = True
            for j, t in enumerate(run):
                if t.kind == "op" and t.text == "(":
                    depth += 1
                elif t.kind == "op" and t.text == ")":
                    depth -= 1
                    if depth == 0 and j != len(run) - 1:
                        closes_at_end = False
                        break
            is_paren = closes_at_end
        if is_paren and _has_bar(run):
            inner = run[1:-1]
            bars = [
                (j, t)
                for j, t in enumerate(inner)
                if t.kind == "op" and t.text in ("|", "||") and _depths(inner)[j] == 0
            ]
            if not bars:
                # parenthesised group of terms: ((1|g) + (0 + x|g))
                _parse_rhs(text, inner, fixed, groups)
                continue
            if len(bars) > 1:
                t = bars[1][1]
                raise FormulaError("more than one '|' in a random-effect term", text, t.pos, len(t.text))
            j, bar = bars[0]
            lhs, rhs = inner[:j], inner[j + 1 :]
            if not lhs:
                raise FormulaError(f"empty term before '{bar.text}'", text, bar.pos, len(bar.text))
            if _has_bar(lhs) or _has_bar(rhs):
                raise FormulaError("nested '|' inside a random-effect term", text, bar.pos)
            expr = _render(text, lhs)
            term_text = text[first.pos : last.end]
            for factors, name in _group_factors(text, rhs, bar):
                groups.append(
                    GroupTerm(
                        expr=expr,
                        factors=factors,
                        name=name,
                        correlated=bar.text == "|",
                        text=term_text,
                        pos=first.pos,
                    )
                )
            continue
        if _has_bar(run):
            bar = next(t for t in run if t.kind == "op" and t.text in ("|", "||"))
            raise FormulaError(
                "a random-effect term must be in parentheses, e.g. (1 | g)", text, bar.pos, len(bar.text)
            )
        if _is_call(run, "offset") and offsets is not None:
            if sep == "-":
                raise FormulaError("an offset cannot be subtracted; write offset(-x)", text, run[0].pos)
            offsets.append(_render(text, run[2:-1]))
            continue
        fixed.append((sep or "+", run))


def _parse_response(text: str, lhs: list[Token]) -> tuple[str, str | None, tuple[AdditionTerm, ...]]:
    """The response expression, the trials expression (binomial syntax) and brms's addition terms."""
    bars = [t for t, d in zip(lhs, _depths(lhs)) if t.kind == "op" and t.text in ("|", "||") and d == 0]
    if bars:
        bar = bars[0]
        if bar.text != "|" or len(bars) > 1:
            raise FormulaError("'|' in the response is only allowed before addition terms, e.g. "
                               "'successes | trials(n)' or 'y | weights(w)'", text, bar.pos)
        cut = lhs.index(bar)
        left, right = lhs[:cut], lhs[cut + 1 :]
        if not left:
            raise FormulaError("response missing before '|'", text, bar.pos)
        terms = parse_addition(text, right, bar, _render)
        trials = next((t.args[0] for t in terms if t.name == "trials"), None)
        resp, cb_trials, _ = _parse_response(text, left) if _is_call(left, "cbind") else (_render(text, left), None, ())
        if cb_trials is not None and trials is not None:
            raise FormulaError("cbind() and trials() both give the number of trials", text, bar.pos)
        return resp, trials or cb_trials, tuple(t for t in terms if t.name != "trials")
    if _is_call(lhs, "cbind"):
        parts = _split_top(lhs[2:-1], (",",))
        if len(parts) != 2 or not parts[0][1] or not parts[1][1]:
            raise FormulaError("cbind() in the response takes two columns: cbind(successes, failures)",
                               text, lhs[0].pos, lhs[-1].end - lhs[0].pos)
        succ, fail = _render(text, parts[0][1]), _render(text, parts[1][1])
        return succ, f"I(({succ}) + ({fail}))", ()
    return _render(text, lhs), None, ()


def _not_a_column(tokens: list[Token], k: int) -> bool:
    """Identifiers that are not columns: keyword names (``df =``), logicals after '=', contrasts in C()."""
    t = tokens[k]
    if t.quoted:
        return False
    if t.text in ("True", "False", "None"):
        return True
    nxt = tokens[k + 1] if k + 1 < len(tokens) else None
    prev = tokens[k - 1] if k > 0 else None
    after = tokens[k + 2] if k + 2 < len(tokens) else None
    if nxt is not None and nxt.kind == "op" and nxt.text == "=" and prev is not None and prev.text == "," \
            and not (after is not None and after.text == "="):
        return True  # a keyword argument's name: se(s, sigma = TRUE), s(x, by = f)
    if prev is not None and prev.kind == "op" and prev.text == "=" and t.text in ("TRUE", "FALSE", "T", "F"):
        return True
    return t.text in CONTRAST_NAMES and prev is not None and prev.kind == "op" and prev.text == ","


def _check_response_not_predictor(text: str, tokens: list[Token], cut: int, pairs: dict[int, int]) -> None:
    """Raise when a column of the response (not of ``trials()``) also appears after the '~'."""
    skip: set[int] = set()
    for k in range(cut):
        t = tokens[k]
        if t.kind == "ident" and t.text in ("trials", "weights", "cens", "se") and k + 1 in pairs:
            skip.update(range(k, pairs[k + 1] + 1))

    def names(ks):
        return [(k, tokens[k]) for k in ks if tokens[k].kind == "ident" and k not in skip
                and not (k + 1 < len(tokens) and tokens[k + 1].kind == "op" and tokens[k + 1].text == "(")
                and not _not_a_column(tokens, k)]

    response_names = {t.text for _, t in names(range(cut))}
    for _, t in names(range(cut + 1, len(tokens))):
        if t.text in response_names:
            raise FormulaError(f"the response '{t.text}' also appears on the right-hand side; "
                               "a variable cannot predict itself", text, t.pos, t.end - t.pos)


def parse_formula(text: str, response: bool = True) -> ParsedFormula:
    """Parse an lme4/brms-style formula.

    Parameters
    ----------
    text : str
        For example ``"normexam ~ standLRT + sex + (standLRT | school)"``.

    Returns
    -------
    ParsedFormula

    Raises
    ------
    FormulaError
        For unbalanced parentheses, empty bars, missing response, bare bars.

    Example
    -------
    >>> pf = parse_formula("y ~ x + (1 | school/student)")
    >>> [(g.name, g.factors) for g in pf.groups]
    [('school', ('school',)), ('student:school', ('student', 'school'))]
    """
    if not isinstance(text, str):
        raise FormulaError(f"formula must be a string, got {type(text).__name__}")
    if not text.strip():
        raise FormulaError("formula is empty")
    if len(text) > MAX_FORMULA_LENGTH:
        raise FormulaError(f"formula is {len(text):,} characters long; the limit is {MAX_FORMULA_LENGTH:,}")
    tokens = tokenize(text)
    pairs = _match_parens(text, tokens)
    for t, d in zip(tokens, _depths(tokens)):
        if d >= MAX_NESTING and t.kind == "op" and t.text == "(":
            raise FormulaError(f"parentheses nested more than {MAX_NESTING} deep", text, t.pos)
    depths = _depths(tokens)
    tildes = [t for t, d in zip(tokens, depths) if t.kind == "op" and t.text == "~"]
    for t, d in zip(tokens, depths):
        if t.kind == "op" and t.text == "~" and d > 0:
            raise FormulaError("'~' inside parentheses: write 'response ~ predictors' with the '~' outside them",
                               text, t.pos)
    if not tildes:
        if not response:
            raise FormulaError("a distributional formula starts with '~', e.g. '~ x'", text, 0, len(text))
        raise FormulaError("formula has no '~': write 'response ~ predictors'", text, 0, len(text))
    if len(tildes) > 1:
        raise FormulaError("formula has more than one '~'", text, tildes[1].pos)
    cut = tokens.index(tildes[0])
    lhs, rhs = tokens[:cut], tokens[cut + 1 :]
    if not lhs and response:
        raise FormulaError("response missing before '~'", text, tildes[0].pos)
    if lhs and not response:
        raise FormulaError("a distributional formula has no response: write '~ x'", text, lhs[0].pos)
    resp, trials, addition = _parse_response(text, lhs) if lhs else ("", None, ())
    if not rhs:
        raise FormulaError("nothing after '~': write at least '1'", text, tildes[0].pos)
    fixed_parts: list[tuple[str, list[Token]]] = []
    groups: list[GroupTerm] = []
    offsets: list[str] = []
    _parse_rhs(text, rhs, fixed_parts, groups, offsets)
    pieces: list[str] = []
    for sep, run in fixed_parts:
        body = _render(text, run)
        if not pieces:
            pieces.append(body if sep == "+" else f"-{body}" if body != "1" else "-1")
        else:
            pieces.append(f"{sep} {body}")
    fixed = " ".join(pieces) if pieces else "1"
    fixed = fixed.replace("-1 ", "0 ", 1) if fixed.startswith("-1 ") else ("0" if fixed == "-1" else fixed)

    check_tokens(text, tokens, set(KNOWN_FUNCTIONS) | RESERVED_FUNCTIONS, shown=KNOWN_FUNCTIONS)
    check_size(text, tokens)
    variables, functions = [], []
    for k, t in enumerate(tokens):
        if t.kind != "ident":
            continue
        is_call = k + 1 < len(tokens) and tokens[k + 1].kind == "op" and tokens[k + 1].text == "("
        follows = tokens[k + 1] if k + 1 < len(tokens) else None
        if is_call:
            functions.append(t)
        elif follows is not None and follows.kind == "op" and follows.text == "=" and k >= 1 \
                and tokens[k - 1].text == "," and not (k + 2 < len(tokens) and tokens[k + 2].text == "="):
            continue  # a keyword argument's name: log(x, base = 2)
        elif t.text in CONTRAST_NAMES and k >= 1 and tokens[k - 1].text == ",":
            continue  # a contrast coding: C(f, Sum)
        elif _not_a_column(tokens, k):
            continue  # True/False/None, TRUE/FALSE after '=' (se(s, sigma = TRUE))
        else:
            variables.append(t)
    for f in functions:
        if f.text not in KNOWN_FUNCTIONS:
            raise FormulaError(
                f"unknown function '{f.text}' (formulas may use {', '.join(sorted(KNOWN_FUNCTIONS))})",
                text,
                f.pos,
                f.end - f.pos,
            )
    _check_response_not_predictor(text, tokens, cut, pairs)
    return ParsedFormula(
        text=text,
        response=resp,
        trials=trials,
        addition=addition,
        offsets=tuple(offsets),
        fixed=fixed,
        groups=tuple(groups),
        variables=tuple(variables),
        functions=tuple(functions),
    )
