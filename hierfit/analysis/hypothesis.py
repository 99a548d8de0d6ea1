"""brms's ``hypothesis()``: test expressions of parameters on their posterior draws.

A hypothesis is ``<expression> <op> <expression>`` with ``op`` one of ``<``, ``>``
(one-sided) or ``=`` (two-sided).  Expressions use numbers, parameter names,
``+ - * /``, ``^`` (or ``**``) and parentheses; nothing else.  The text is parsed
(Python's :mod:`ast` on a copy in which every parameter name has been replaced by a
placeholder, then checked against an allow-list of node types) and evaluated by a
small interpreter on the draws -- it is never executed as Python.

Parameter names (brms and lme4 spellings both work):

* fixed effects: ``Intercept`` / ``(Intercept)`` / ``b_Intercept``, ``sexM`` /
  ``b_sexM``, ``standLRT:sexM``; distributional predictors ``sigma_Intercept``;
  ordinal thresholds ``Intercept[1]`` / ``b_Intercept[1]``;
* group-level sds: ``sd(Intercept | school)``, ``sd_school__Intercept``;
* correlations: ``cor(Intercept, standLRT | school)``, ``cor_school__Intercept__standLRT``;
* family parameters: ``sigma``, ``shape``, ``nu``.

With ``group="school"`` the hypothesis is tested for every level: coefficient
names then mean that level's coefficient (fixed + group effect, ``scope="coef"``)
or only its group effect (``scope="ranef"``).

Columns (brms): Hypothesis, Estimate, Est.Error, CI.Lower, CI.Upper, Evid.Ratio,
Post.Prob, Star.  For a one-sided hypothesis the interval is one-sided at level
``1 - alpha`` (the other bound infinite), Post.Prob is the posterior probability of
the hypothesis and Evid.Ratio its posterior odds; for a two-sided one they are
missing (brms computes a Savage-Dickey ratio from prior draws, which a fit does
not keep).  Star marks a hypothesis whose interval excludes 0.
"""

from __future__ import annotations

import ast
import re

import numpy as np
import pandas as pd

from hierfit.errors import HierfitError
from hierfit.results.draws import stack

__all__ = ["hypothesis", "parameter_draws"]

_IDENT = re.compile(r"[A-Za-z0-9_.]")
_BINOPS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide, ast.Pow: np.power}
_CMP = {ast.Lt: "<", ast.LtE: "<", ast.Gt: ">", ast.GtE: ">", ast.Eq: "="}


def _coef_names(coef: str) -> list[str]:
    return ["Intercept", "(Intercept)"] if coef == "(Intercept)" else [coef]


def parameter_draws(fit) -> dict[str, np.ndarray]:
    """Every name a hypothesis may use -> its (S,) posterior draws.

    Example
    -------
    >>> sorted(parameter_draws(fit))[:3]  # doctest: +SKIP
    ['(Intercept)', 'Intercept', 'b_Intercept']
    """
    post = fit.draws
    d = fit.design
    out: dict[str, np.ndarray] = {}
    for dp, pred in d.predictors.items():
        if pred.n_thresholds and pred.var("b_Intercept") in post:  # ordinal thresholds, brms's Intercept[k]
            thresholds = stack(post, pred.var("b_Intercept"))
            for k, name in enumerate(pred.threshold_names):
                out.setdefault(name, thresholds[:, k])
                out.setdefault(f"b_{name}", thresholds[:, k])
        if pred.fixed_names and pred.var("b") in post:
            b = stack(post, pred.var("b"))
            for j, coef in enumerate(pred.fixed_names):
                for name in _coef_names(coef):
                    label = name if dp == "mu" else f"{dp}_{name}"
                    out.setdefault(label, b[:, j])
                    out.setdefault(f"b_{label}", b[:, j])
        for blk in pred.blocks:
            if f"sd_{blk.key}" not in post:
                continue
            sd = stack(post, f"sd_{blk.key}")
            groups = dict.fromkeys([blk.factor, blk.key])
            for j, coef in enumerate(blk.coefs):
                for g in groups:
                    for name in _coef_names(coef):
                        label = name if dp == "mu" else f"{dp}_{name}"
                        out[f"sd({label}|{g})"] = sd[:, j]
                        out[f"sd_{g}__{label}"] = sd[:, j]
            if blk.is_correlated and f"cor_{blk.key}" in post:
                cor = stack(post, f"cor_{blk.key}")
                for i, ci in enumerate(blk.coefs):
                    for j, cj in enumerate(blk.coefs):
                        if i == j:
                            continue
                        for g in groups:
                            for a in _coef_names(ci):
                                for b_ in _coef_names(cj):
                                    out[f"cor({a},{b_}|{g})"] = cor[:, i, j]
                                    out[f"cor_{g}__{a}__{b_}"] = cor[:, i, j]
    for dpar in d.family.dpars:
        if dpar.name in post and post[dpar.name].ndim == 2:
            out[dpar.name] = stack(post, dpar.name)
    return out


def _group_draws(fit, group: str, scope: str, base: dict) -> tuple[list[str], list[dict]]:
    """Per level of ``group``: the names with that level's coefficients (or group effects)."""
    blocks = [b for b in fit.design.blocks if group in (b.factor, b.key)]
    if not blocks:
        known = sorted({b.factor for b in fit.design.blocks})
        raise HierfitError(f"group {group!r} is not a grouping factor of the model (it has: {', '.join(known) or 'none'})")
    if scope not in ("coef", "ranef"):
        raise HierfitError(f"scope must be 'coef' or 'ranef', got {scope!r}")
    blk = blocks[0]
    r = stack(fit.draws, f"r_{blk.key}")
    per_level = []
    for lvl in range(blk.n_levels):
        names = dict(base) if scope == "coef" else {}
        for j, coef in enumerate(blk.coefs):
            for name in _coef_names(coef):
                fixed = base.get(name, 0.0) if scope == "coef" else 0.0
                names[name] = fixed + r[:, lvl, j]
                names[f"b_{name}"] = names[name]
        per_level.append(names)
    return list(blk.levels), per_level


def _substitute(text: str, names: list[str]) -> tuple[str, dict[str, str]]:
    """Replace every parameter name in whitespace-free text by a placeholder ``_p<k>``."""
    ordered = sorted(names, key=len, reverse=True)
    out, table, i = [], {}, 0
    while i < len(text):
        prev_ok = i == 0 or not _IDENT.match(text[i - 1])
        hit = None
        if prev_ok:
            for name in ordered:
                if text.startswith(name, i):
                    end = i + len(name)
                    if end == len(text) or not _IDENT.match(text[end]) or not _IDENT.match(name[-1]):
                        hit = name
                        break
        if hit is None:
            out.append(text[i])
            i += 1
            continue
        key = table.setdefault(hit, f"_p{len(table)}")
        out.append(key)
        i += len(hit)
    return "".join(out), {v: k for k, v in table.items()}


class _Evaluator:
    def __init__(self, text: str, values: dict[str, np.ndarray], placeholders: dict[str, str]):
        self.text, self.values, self.placeholders = text, values, placeholders

    def fail(self, what: str):
        raise HierfitError(f"hypothesis {self.text!r}: {what}")

    def __call__(self, node):
        if isinstance(node, ast.Expression):
            return self(node.body)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in self.placeholders:
                known = sorted(k for k in self.values if not k.startswith(("b_", "sd_", "cor_")))
                self.fail(f"unknown parameter {node.id!r} (parameters: {', '.join(known[:30])})")
            return self.values[self.placeholders[node.id]]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](self(node.left), self(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = self(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        self.fail(f"{type(node).__name__} is not allowed (only numbers, parameter names, + - * / ^ and "
                  "one comparison <, > or =)")


def _parse(text: str, names: list[str]):
    if not isinstance(text, str) or not text.strip():
        raise HierfitError(f"a hypothesis must be a non-empty string, got {text!r}")
    if re.search(r"[\w.)]\s+[\w.(]", text):
        raise HierfitError(f"hypothesis {text!r}: two terms without an operator between them")
    compact = re.sub(r"\s+", "", text)
    compact = re.sub(r"(?<![<>=!])=(?!=)", "==", compact).replace("^", "**")
    body, placeholders = _substitute(compact, names)
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError:
        raise HierfitError(f"hypothesis {text!r} is not an expression of the form '<expr> <op> <expr>' "
                           "with op one of <, >, =") from None
    expr = tree.body
    if not isinstance(expr, ast.Compare) or len(expr.ops) != 1 or type(expr.ops[0]) not in _CMP:
        raise HierfitError(f"hypothesis {text!r} needs exactly one comparison: <, > or = (e.g. 'sexM < 0')")
    return expr, placeholders, _CMP[type(expr.ops[0])]


def _row(label: str, h: np.ndarray, op: str, alpha: float) -> dict:
    if op == "=":
        lo, hi = np.quantile(h, [alpha / 2, 1 - alpha / 2])
        ratio = prob = np.nan
    else:
        if op == "<":
            lo, hi = -np.inf, np.quantile(h, 1 - alpha)
            prob = float((h < 0).mean())
        else:
            lo, hi = np.quantile(h, alpha), np.inf
            prob = float((h > 0).mean())
        ratio = prob / (1 - prob) if prob < 1 else np.inf
    star = "*" if not (lo <= 0 <= hi) else ""
    return {"Hypothesis": label, "Estimate": float(h.mean()), "Est.Error": float(h.std(ddof=1)),
            "CI.Lower": float(lo), "CI.Upper": float(hi), "Evid.Ratio": ratio, "Post.Prob": prob, "Star": star}


def hypothesis(fit, hypotheses, alpha: float = 0.05, group: str | None = None, scope: str = "coef",
               summary: bool = True):
    """brms-style hypothesis tests on posterior draws (see :meth:`HierFit.hypothesis`)."""
    if isinstance(hypotheses, str):
        hypotheses = [hypotheses]
    if not 0 < alpha < 1:
        raise HierfitError(f"alpha must lie between 0 and 1, got {alpha!r}")
    base = parameter_draws(fit)
    if group is None:
        levels, tables = [None], [base]
    else:
        levels, tables = _group_draws(fit, group, scope, base)
    names = sorted({re.sub(r"\s+", "", k) for t in tables for k in t})
    rows, draws = [], {}
    for text in hypotheses:
        expr, placeholders, op = _parse(text, names)
        left_text, right_text = re.split(r"<=|>=|==|<|>|=", re.sub(r"\s+", " ", text.strip()), maxsplit=1)
        label = f"({left_text.strip()})-({right_text.strip()}) {op} 0"
        for lvl, values in zip(levels, tables):
            values = {re.sub(r"\s+", "", k): v for k, v in values.items()}
            ev = _Evaluator(text, values, placeholders)
            h = np.broadcast_to(np.asarray(ev(expr.left) - ev(expr.comparators[0]), dtype=float),
                                (len(next(iter(base.values()))),))
            row = _row(label, h, op, alpha)
            if lvl is not None:
                row = {"Group": lvl, **row}
            rows.append(row)
            draws[label if lvl is None else f"{label} | {lvl}"] = h
    if not summary:
        return pd.DataFrame(draws).rename_axis("draw")
    return pd.DataFrame(rows)
