"""The model as a LaTeX equation, in the notation of R's ``equatiomatic::extract_eq``.

For ``normexam ~ standLRT + sex + (standLRT | school)`` the equation reads::

    normexam_i ~ N(alpha_j[i] + beta_1j[i](standLRT) + beta_2(sex_M), sigma^2)
    (alpha_j, beta_1j) ~ N((mu_alpha_j, mu_beta_1j), Sigma_j),  for school j = 1, ..., J

with the model's own variable names.  Notation, as in equatiomatic:

* ``i`` indexes observations; ``j, k, l, ...`` the levels of the grouping factors,
  in the order the formula names them (``j[i]`` is the level of row ``i``).
* ``alpha`` is the intercept and ``beta_1, beta_2, ...`` the slopes, numbered in the
  order of the fixed-effect columns.  A coefficient that varies by group carries the
  group index (``alpha_j``, ``beta_1j``); its group-level mean ``mu_alpha_j`` is the
  fixed effect that lme4's ``fixef()`` reports.
* ``N(mean, variance)``; the group-level covariance matrix has variances
  ``sigma^2`` on the diagonal and covariances ``rho sigma sigma`` off it (0 between
  terms written with ``||`` or in separate bars).
* A coefficient that varies in a second grouping factor (``(1 | school) + (1 | student)``)
  adds a second term ``alpha_k[i]`` whose group-level mean is 0, so the fixed
  intercept is counted once.
* Non-Gaussian families get a line with their link: ``log(lambda_i) = ...``.
  Coefficients of distributional formulas (``sigma ~ x``) are ``gamma_0, gamma_1, ...``.

With priors, one line per prior follows.  brms puts the intercept's prior on the
intercept at the means of the predictors, which is what that line shows.
``^+`` marks a distribution restricted to positive values (half-normal, half-t).

Build it from a design (no sampling needed) with :func:`build_equation`, or from a
fit with :func:`equation`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hierfit.spec.design import FACTOR_TERM
from hierfit.families import LINKS
from hierfit.spec.formula import tokenize

__all__ = ["Equation", "build_equation", "equation", "latex_name", "latex_expr", "latex_dist"]

_INDEX_LETTERS = "jklmnpqrstuvw"
_CBIND_TRIALS = re.compile(r"^I\(\((.*)\) \+ \((.*)\)\)$")

_LATEX_SPECIAL = {
    "\\": r"\backslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
    "{": r"\{", "}": r"\}", "^": r"\hat{}", "~": r"\sim{}", " ": r"\ ",
}


@dataclass(frozen=True)
class Equation:
    """A model written as LaTeX; displays as typeset math in Jupyter.

    ``str(eq)`` is the LaTeX source (an ``aligned`` environment, without math
    delimiters, ready for ``$$ ... $$`` or ``\\[ ... \\]``).

    Attributes
    ----------
    lines : tuple of (str, str)
        The model, one (left side, right side) pair per line; the right side starts
        with its relation (``\\sim`` or ``=``).
    prior_lines : tuple of (str, str)
        The priors, in the same form (empty unless priors were asked for).

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> d = build_design("normexam ~ standLRT + sex + (1 | school)", hierfit.datasets.load("exam"))
    >>> eq = build_equation(d)
    >>> print(eq.lines[0][0])
    \\operatorname{normexam}_{i}
    >>> str(eq).startswith("\\\\begin{aligned}")
    True
    """

    lines: tuple[tuple[str, str], ...]
    prior_lines: tuple[tuple[str, str], ...] = ()

    @property
    def latex(self) -> str:
        """The LaTeX source: ``\\begin{aligned} ... \\end{aligned}``."""
        rows = [f"{lhs} &{rhs}" for lhs, rhs in self.lines + self.prior_lines]
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def __str__(self) -> str:
        return self.latex

    def __repr__(self) -> str:
        return self.latex

    def _repr_latex_(self) -> str:
        return "$$\n" + self.latex + "\n$$"


# -- names and expressions ------------------------------------------------------------------

def latex_name(name: str) -> str:
    """A variable or level name as upright LaTeX text (``\\operatorname{...}``), escaped.

    Example
    -------
    >>> latex_name("standLRT")
    '\\\\operatorname{standLRT}'
    >>> latex_name("mid 50%")
    '\\\\operatorname{mid\\\\ 50\\\\%}'
    """
    return r"\operatorname{" + "".join(_LATEX_SPECIAL.get(c, c) for c in str(name)) + "}"


def _text(name: str) -> str:
    """Escape for ``\\text{...}``."""
    return "".join(_LATEX_SPECIAL.get(c, c) if c not in " " else c for c in str(name))


def _close(tokens, k: int) -> int:
    """Index of the ')' matching the '(' at k."""
    depth = 0
    for j in range(k, len(tokens)):
        if tokens[j].kind == "op" and tokens[j].text == "(":
            depth += 1
        elif tokens[j].kind == "op" and tokens[j].text == ")":
            depth -= 1
            if depth == 0:
                return j
    return len(tokens) - 1


def _is_call(tokens, k: int) -> bool:
    return (tokens[k].kind == "ident" and k + 1 < len(tokens) and tokens[k + 1].kind == "op"
            and tokens[k + 1].text == "(")


def _atom_end(tokens, k: int) -> int:
    """End (exclusive) of the atom starting at k: a name, number, call or parenthesised group."""
    if k >= len(tokens):
        return k
    t = tokens[k]
    if t.kind == "op" and t.text == "(":
        return _close(tokens, k) + 1
    if _is_call(tokens, k):
        return _close(tokens, k + 1) + 1
    if t.kind == "op" and t.text in ("-", "+"):
        return _atom_end(tokens, k + 1)
    return k + 1


_CALLS = {"log": r"\log", "log10": r"\log_{10}", "log2": r"\log_{2}", "exp": r"\exp"}


def _render(tokens, subscript: str = "") -> str:
    out: list[str] = []
    k = 0
    while k < len(tokens):
        t = tokens[k]
        if _is_call(tokens, k):
            end = _close(tokens, k + 1)
            inner = _render(tokens[k + 2:end], subscript)
            name = t.text
            if name in ("I", "offset"):
                out.append(f"({inner})" if name == "I" else inner)
            elif name == "sqrt":
                out.append(r"\sqrt{" + inner + "}")
            elif name == "abs":
                out.append(r"\left|" + inner + r"\right|")
            elif name in _CALLS:
                out.append(_CALLS[name] + "(" + inner + ")")
            else:
                out.append(latex_name(name) + "(" + inner + ")")
            k = end + 1
            continue
        if t.kind == "op" and t.text == "(":
            end = _close(tokens, k)
            out.append("(" + _render(tokens[k + 1:end], subscript) + ")")
            k = end + 1
            continue
        if t.kind == "op" and t.text in ("**", "^"):
            end = _atom_end(tokens, k + 1)
            exponent = tokens[k + 1:end]
            if len(exponent) > 2 and exponent[0].text == "(" and _close(exponent, 0) == len(exponent) - 1:
                exponent = exponent[1:-1]
            out.append("^{" + _render(exponent) + "}")
            k = end
            continue
        if t.kind == "ident":
            out.append(latex_name(t.text) + subscript)
        elif t.kind == "number":
            out.append(t.text)
        elif t.kind == "string":
            out.append(r"\text{" + _text(t.text.strip("'\"")) + "}")
        elif t.text in ("*", ":"):
            out.append(r" \times ")
        elif t.text in ("+", "-", "/", "=", "<", ">"):
            out.append(f" {t.text} ")
        elif t.text == ",":
            out.append(", ")
        else:
            out.append(_text(t.text))
        k += 1
    return "".join(out).replace("  ", " ").strip()


def latex_expr(expr: str, subscript: str = "") -> str:
    """A formula expression (``log(Spobee + 1)``, ``I(temp ** 2)``) as LaTeX.

    ``subscript`` (e.g. ``"_{i}"``) is attached to every variable name.

    Example
    -------
    >>> latex_expr("log(Spobee + 1)")
    '\\\\log(\\\\operatorname{Spobee} + 1)'
    >>> latex_expr("I(temp ** 2)")
    '\\\\operatorname{temp}^{2}'
    """
    expr = expr.strip()
    try:
        tokens = tokenize(expr)
    except Exception:  # noqa: BLE001 - a name the formula lexer does not know: show it as text
        return latex_name(expr) + subscript
    for a, b in zip(tokens, tokens[1:]):
        if a.kind in ("ident", "number", "string") and b.kind in ("ident", "number", "string"):
            return latex_name(expr.strip("`")) + subscript  # a column name with spaces, not an expression
    if tokens and _is_call(tokens, 0) and tokens[0].text == "I" and _close(tokens, 1) == len(tokens) - 1:
        tokens = tokens[2:-1]  # I(x^2) is the term x^2 itself
    return _render(tokens, subscript)


def _split_interaction(column: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for c in column:
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        if c == ":" and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    parts.append(cur)
    return parts


def _latex_column(column: str) -> str:
    """A design-matrix column (formulaic's name) as LaTeX: ``sex[T.M]`` -> sex with subscript M."""
    out = []
    for part in _split_interaction(column):
        m = FACTOR_TERM.match(part)
        if m:
            out.append(latex_expr(m.group(1)) + "_{" + latex_name(m.group(2)) + "}")
        else:
            out.append(latex_expr(part))
    return r" \times ".join(out)


def _latex_response(expr: str) -> str:
    body = latex_expr(expr)
    if re.fullmatch(r"\\operatorname\{[^{}]*\}", body):
        return body + "_{i}"
    return r"\left[" + body + r"\right]_{i}"


def _latex_trials(expr: str) -> str:
    m = _CBIND_TRIALS.match(expr.strip())
    if m:  # cbind(successes, failures): trials = successes + failures
        return latex_expr(m.group(1), "_{i}") + " + " + latex_expr(m.group(2), "_{i}")
    if re.fullmatch(r"\d+(\.\d*)?", expr.strip()):
        return expr.strip()
    return latex_expr(expr, "_{i}")


# -- distributions --------------------------------------------------------------------------

def _num(v: float) -> str:
    s = f"{v:.4g}"
    if "e" in s:
        mant, exp = s.split("e")
        return f"{mant} \\times 10^{{{int(exp)}}}"
    return s


def latex_dist(dist, positive: bool = False) -> str:
    """A prior distribution (:class:`hierfit.spec.priors.Dist`) as LaTeX.

    Normals are written ``N(mean, variance)`` like the model lines; ``student_t`` as
    ``Student-t(df, location, scale)``; ``positive`` adds ``^+`` (restricted to
    positive values) to distributions that are otherwise defined on the whole line.

    Example
    -------
    >>> from hierfit.spec.priors import parse_dist
    >>> latex_dist(parse_dist("normal(0, 2.5)"))
    'N \\\\left(0, 2.5^2 \\\\right)'
    >>> latex_dist(parse_dist("student_t(3, 0, 2.5)"), positive=True)
    '\\\\operatorname{Student-t}^{+} \\\\left(3, 0, 2.5 \\\\right)'
    """
    f, p = dist.family, [_num(v) for v in dist.params]
    plus = "^{+}" if positive and f in ("normal", "student_t", "cauchy") else ""
    if f == "normal":
        scale = f"({p[1]})" if "times" in p[1] else p[1]
        return f"N{plus} \\left({p[0]}, {scale}^2 \\right)"
    names = {"student_t": "Student-t", "cauchy": "Cauchy", "exponential": "Exponential", "gamma": "Gamma",
             "lognormal": "LogNormal", "inv_gamma": "InvGamma", "beta": "Beta", "lkj": "LKJ"}
    return f"\\operatorname{{{names[f]}}}{plus} \\left({', '.join(p)} \\right)"


# -- the model ------------------------------------------------------------------------------

@dataclass
class _Coef:
    name: str           # lme4 name
    column: str         # formulaic column, for rendering
    number: int | None  # None for the intercept, 1, 2, ... for slopes
    fixed: bool         # has a fixed effect
    letters: list       # index letters of the grouping factors it varies in


class _PredictorEq:
    """Symbols of one linear predictor (the mean's, or a distributional parameter's)."""

    def __init__(self, pred, letters: dict[str, str], dpar_symbols: dict[str, str]):
        self.pred = pred
        self.is_mu = pred.dpar == "mu"
        sup = dpar_symbols.get(pred.dpar, "")
        self.intercept_base = r"\alpha" if self.is_mu else r"\gamma" + sup
        self.slope_base = r"\beta" if self.is_mu else r"\gamma" + sup
        self.coefs: dict[str, _Coef] = {}
        columns = dict(zip(pred.fixed_names, pred.fixed_columns))
        number = 0
        for name in pred.fixed_names:
            if name != "(Intercept)":
                number += 1
            self.coefs[name] = _Coef(name, columns[name], None if name == "(Intercept)" else number, True, [])
        self.blocks = sorted(pred.blocks, key=lambda b: pred.formula.groups.index(b.term)
                             if b.term in pred.formula.groups else 0)
        for blk in self.blocks:
            for name, col in zip(blk.coefs, blk.columns):
                if name not in self.coefs:
                    if name != "(Intercept)":
                        number += 1
                    self.coefs[name] = _Coef(name, col, None if name == "(Intercept)" else number, False, [])
                letter = letters[blk.factor]
                if letter not in self.coefs[name].letters:
                    self.coefs[name].letters.append(letter)

    def sym(self, coef: _Coef, sub: str = "") -> str:
        """Symbol of a coefficient with the subscript ``sub`` (``""``, ``"j"`` or ``"j[i]"``)."""
        if coef.number is None:
            if self.is_mu:
                return r"\alpha" + (f"_{{{sub}}}" if sub else "")
            return f"{self.intercept_base}_{{0{sub}}}"
        return f"{self.slope_base}_{{{coef.number}{sub}}}"

    def fixed_sym(self, coef: _Coef) -> str:
        """The fixed effect: the coefficient itself, or the mean of its group-level distribution."""
        if coef.letters:
            return r"\mu_{" + self.sym(coef, coef.letters[0]) + "}"
        return self.sym(coef)

    def group_mean(self, coef: _Coef, letter: str) -> str:
        if coef.fixed and coef.letters and coef.letters[0] == letter:
            return r"\mu_{" + self.sym(coef, letter) + "}"
        return "0"

    def linear_predictor(self, offsets: list[str]) -> str:
        terms = []
        ordered = sorted(self.coefs.values(), key=lambda c: c.number is not None)  # intercept first (stable)
        for coef in ordered:
            syms = [self.sym(coef, f"{L}[i]") for L in coef.letters] if coef.letters else [self.sym(coef)]
            if not coef.letters and not coef.fixed:
                continue
            if coef.number is None:
                terms += syms
            else:
                x = _latex_column(coef.column)
                terms += [f"{s}({x})" for s in syms]
        terms += [latex_expr(o) for o in offsets]
        return " + ".join(terms) if terms else "0"


def _group_lines(peq: _PredictorEq, letters: dict[str, str]) -> list[tuple[str, str]]:
    out = []
    by_factor: dict[str, list] = {}
    for blk in peq.blocks:
        by_factor.setdefault(blk.factor, []).append(blk)
    for factor in sorted(by_factor, key=lambda f: _INDEX_LETTERS.index(letters[f])):
        letter = letters[factor]
        members: list[tuple[_Coef, int]] = []  # (coef, block number)
        for b, blk in enumerate(by_factor[factor]):
            for name in blk.coefs:
                members.append((peq.coefs[name], b if blk.is_correlated else -(b + 1)))
        syms = [peq.sym(c, letter) for c, _ in members]
        means = [peq.group_mean(c, letter) for c, _ in members]
        tail = r" \text{, for " + _text(factor) + f" {letter} = 1,}} \\dots \\text{{,{letter.upper()}}}"
        if len(members) == 1:
            out.append((syms[0], rf"\sim N \left({means[0]}, \sigma^2_{{{syms[0]}}} \right)" + tail))
            continue

        def column(items):
            return (r"\left( \begin{array}{c} \begin{aligned} " + r" \\ ".join("&" + s for s in items)
                    + r" \end{aligned} \end{array} \right)")

        rows = []
        for a, (_, ba) in enumerate(members):
            cells = []
            for b, (_, bb) in enumerate(members):
                if a == b:
                    cells.append(rf"\sigma^2_{{{syms[a]}}}")
                elif ba == bb and ba >= 0:
                    cells.append(rf"\rho_{{{syms[a]}{syms[b]}}}\sigma_{{{syms[a]}}}\sigma_{{{syms[b]}}}")
                else:
                    cells.append("0")
            rows.append(" & ".join(cells))
        cov = (r"\left( \begin{array}{" + "c" * len(members) + "} " + r" \\ ".join(rows)
               + r" \end{array} \right)")
        out.append((column(syms), rf"\sim N \left( {column(means)} , {cov} \right)" + tail))
    return out


def _dpar_symbol(family, name: str) -> str:
    symbol = family.dpar(name).symbol if name in family.dpar_names else None
    return symbol if symbol is not None else latex_name(name)


def _prior_lines(design, priors, peqs: dict[str, _PredictorEq], letters) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for dp, peq in peqs.items():
        pp = priors.predictors.get(dp)
        if pp is None:
            continue
        pred = peq.pred
        if pp.intercept is not None and pred.n_thresholds:  # ordered thresholds, centred like brms's Intercept
            lhs = r"\theta_{k}" + "".join(f" - {peq.fixed_sym(peq.coefs[n])}" + r"\overline{"
                                          + _latex_column(peq.coefs[n].column) + "}" for n in pred.fixed_names)
            dists = pp.threshold_priors(pred.n_thresholds)
            if all(d == pp.intercept for d in dists):
                out.append((lhs, r"\sim " + latex_dist(pp.intercept) + r" \text{, ordered, } k = 1, \dots, K-1"))
            else:  # per-threshold priors (class Intercept, coef k): one line each
                out += [(lhs.replace(r"\theta_{k}", r"\theta_{" + str(k) + "}", 1), r"\sim " + latex_dist(d)
                         + (r" \text{, ordered}" if k == 1 else "")) for k, d in enumerate(dists, start=1)]
        elif pp.intercept is not None and "(Intercept)" in peq.coefs:
            lhs = peq.fixed_sym(peq.coefs["(Intercept)"])
            for name in pred.fixed_names:
                if name == "(Intercept)":
                    continue
                c = peq.coefs[name]
                lhs += f" + {peq.fixed_sym(c)}" + r"\overline{" + _latex_column(c.column) + "}"
            out.append((lhs, r"\sim " + latex_dist(pp.intercept)))
        for name, dist in pp.b.items():
            out.append((peq.fixed_sym(peq.coefs[name]), r"\sim " + latex_dist(dist)))
        for blk in peq.blocks:
            letter = letters[blk.factor]
            syms = [peq.sym(peq.coefs[c], letter) for c in blk.coefs]
            for s, dist in zip(syms, pp.sd.get(blk.name, [])):
                out.append((rf"\sigma_{{{s}}}", r"\sim " + latex_dist(dist, positive=True)))
            if blk.is_correlated and blk.name in pp.cor:
                out.append((r"\operatorname{cor}(" + ", ".join(syms) + ")", r"\sim " + latex_dist(pp.cor[blk.name])))
    for dpar in design.family.dpars:
        dist = priors.dpars.get(dpar.name)
        if dist is None:
            continue
        rhs = r"\sim " + latex_dist(dist, positive=True)
        if dpar.lower > 0:
            rhs += rf" \text{{, truncated at }} {_num(dpar.lower)}"
        out.append((_dpar_symbol(design.family, dpar.name), rhs))
    return out


def build_equation(design, priors=None) -> Equation:
    """The model of a design as a LaTeX :class:`Equation` (equatiomatic's notation).

    Parameters
    ----------
    design : hierfit.spec.design.Design
        From :func:`hierfit.spec.design.build_design` (or ``fit.design``).
    priors : hierfit.spec.priors.PriorSet, optional
        From :func:`hierfit.spec.priors.resolve_priors` (or ``fit.priors``); when given,
        one line per prior is added.

    Returns
    -------
    Equation

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> d = build_design("normexam ~ standLRT + sex + (standLRT | school)", hierfit.datasets.load("exam"))
    >>> eq = build_equation(d)
    >>> print(eq.lines[0][1])
    \\sim N \\left(\\alpha_{j[i]} + \\beta_{1j[i]}(\\operatorname{standLRT}) + \\beta_{2}(\\operatorname{sex}_{\\operatorname{M}}), \\sigma^2 \\right)
    """
    fam = design.family
    letters: dict[str, str] = {}
    for pred in design.predictors.values():
        for term in pred.formula.groups:
            for blk in pred.blocks:
                if blk.term == term and blk.factor not in letters:
                    if len(letters) >= len(_INDEX_LETTERS):
                        raise ValueError("too many grouping factors to write as an equation")
                    letters[blk.factor] = _INDEX_LETTERS[len(letters)]
        for blk in pred.blocks:  # blocks whose term is not in the formula (should not happen)
            letters.setdefault(blk.factor, _INDEX_LETTERS[len(letters)])
    dpar_preds = [dp for dp in design.predictors if dp != "mu"]
    dpar_sups = {dp: "^{" + _dpar_symbol(design.family, dp) + "}" for dp in dpar_preds} \
        if len(dpar_preds) > 1 else {}
    peqs = {dp: _PredictorEq(pred, letters, dpar_sups) for dp, pred in design.predictors.items()}

    mu = peqs["mu"]
    offsets = list(design.mu.formula.offsets)
    if design.offset_arg and design.offset_arg != "<array>":
        offsets.append(design.offset_arg)
    eta = mu.linear_predictor(offsets)
    if design.offset_arg == "<array>":
        eta += r" + \operatorname{offset}_{i}"

    def dsym(name: str) -> str:
        s = _dpar_symbol(fam, name)
        return s + "_{i}" if name in design.predictors else s

    y = _latex_response(design.response)
    lines: list[tuple[str, str]]
    if getattr(design.addition, "se", None) is not None:  # y | se(sei): known standard errors
        var = r"\sigma^2_{i}" if "sigma" in design.predictors else r"\sigma^2"
        var = (var + r" + \text{se}^2_{i}") if design.addition.sigma else r"\text{se}^2_{i}"
        lines = [(y, rf"\sim N \left({eta}, {var} \right)")]
    else:
        lines = fam.equation_lines(y, eta, dsym, _latex_trials(design.formula.trials or "1"))
    for dp in dpar_preds:
        dpar = fam.dpar(dp)
        s = dsym(dp)
        inner = f"{s} - {_num(dpar.lower)}" if dpar.lower > 0 else s
        lines.append((LINKS[dpar.link].latex_of(inner), "= " + peqs[dp].linear_predictor(list(design.predictors[dp].formula.offsets))))
    for peq in peqs.values():
        lines.extend(_group_lines(peq, letters))
    prior_lines = _prior_lines(design, priors, peqs, letters) if priors is not None else []
    return Equation(tuple(lines), tuple(prior_lines))


def equation(fit, priors: bool = False) -> Equation:
    """The fitted model as a LaTeX equation (R's ``equatiomatic::extract_eq``).

    Built from ``fit.design`` (and ``fit.priors`` when ``priors=True``); in Jupyter it
    displays as typeset math, ``print(eq)`` gives the LaTeX source.

    Parameters
    ----------
    fit : HierFit
    priors : bool
        Add one line per prior (the resolved priors of the fit).

    Returns
    -------
    Equation

    Example
    -------
    >>> import hierfit
    >>> m = hierfit.fit("normexam ~ standLRT + sex + (standLRT | school)",
    ...                 hierfit.datasets.load("exam"), seed=1)  # doctest: +SKIP
    >>> print(equation(m, priors=True))  # doctest: +SKIP
    \\begin{aligned}
    \\operatorname{normexam}_{i} &\\sim N \\left(\\alpha_{j[i]} + ...
    """
    return build_equation(fit.design, fit.priors if priors else None)
