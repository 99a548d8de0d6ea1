"""brms's response addition terms: ``y | weights(w) + cens(c, y2) + se(s, sigma = TRUE) + trials(n) ~ ...``.

:func:`parse_addition` reads the tokens after the response's ``|`` (given by
:mod:`hierfit.spec.formula`) into :class:`AdditionTerm` objects.  Nothing here
looks at data; :mod:`hierfit.spec.addition` evaluates the terms.
"""

from __future__ import annotations

from dataclasses import dataclass

from hierfit.errors import FormulaError

__all__ = ["AdditionTerm", "ADDITION_TERMS", "parse_addition"]

#: Addition terms hierfit reads, with their arguments (brms's spelling).
ADDITION_TERMS = {
    "trials": "successes | trials(n): number of trials of a binomial response",
    "weights": "y | weights(w): each row's log-likelihood multiplied by w",
    "cens": "y | cens(c) or cens(c, y2): censoring ('left'/'none'/'right'/'interval' or -1/0/1/2)",
    "se": "y | se(s) or se(s, sigma = TRUE): known measurement standard errors",
}
_ARITY = {"trials": (1, 1), "weights": (1, 1), "cens": (1, 2), "se": (1, 1)}
_KWARGS = {"se": ("sigma",), "weights": ("scale",)}


@dataclass(frozen=True)
class AdditionTerm:
    """One addition term: its name (``"se"``), rendered arguments and keyword flags.

    Example
    -------
    >>> from hierfit.spec.formula import parse_formula
    >>> parse_formula("y | se(sei, sigma = TRUE) ~ 1").addition
    (AdditionTerm(name='se', args=('sei',), flags=(('sigma', True),)),)
    """

    name: str
    args: tuple[str, ...]
    flags: tuple[tuple[str, bool], ...] = ()

    def flag(self, key: str, default: bool = False) -> bool:
        return dict(self.flags).get(key, default)


def _split(tokens, seps):
    parts, depth, cur = [], 0, []
    for t in tokens:
        if t.kind == "op" and t.text == "(":
            depth += 1
        elif t.kind == "op" and t.text == ")":
            depth -= 1
        if depth == 0 and t.kind == "op" and t.text in seps:
            parts.append((cur, t))
            cur = []
            continue
        cur.append(t)
    parts.append((cur, None))
    return parts


def _logical(text: str, tok) -> bool:
    value = {"TRUE": True, "T": True, "True": True, "FALSE": False, "F": False, "False": False}.get(tok.text)
    if value is None or tok.kind != "ident":
        raise FormulaError(f"'{tok.text}' must be TRUE or FALSE", text, tok.pos, tok.end - tok.pos)
    return value


def parse_addition(text: str, tokens, bar, render) -> tuple[AdditionTerm, ...]:
    """The addition terms in ``tokens`` (the response's right of '|'), each ``name(args)`` joined by '+'.

    ``render`` turns a token run into formulaic text.

    Example
    -------
    >>> from hierfit.spec.formula import parse_formula
    >>> [t.name for t in parse_formula("y | weights(w) + cens(c) ~ x").addition]
    ['weights', 'cens']
    """
    if not tokens:
        raise FormulaError("nothing after '|' in the response; write e.g. y | weights(w) ~ x", text, bar.pos)
    out: list[AdditionTerm] = []
    for run, sep in _split(tokens, ("+",)):
        where = run[0] if run else (sep or bar)
        ok = (len(run) >= 4 and run[0].kind == "ident" and run[1].text == "(" and run[-1].text == ")")
        name = run[0].text if ok else ""
        if not ok or name not in ADDITION_TERMS:
            valid = ", ".join(f"{k}()" for k in ADDITION_TERMS)
            raise FormulaError(f"only {valid} may follow '|' in the response (brms's addition terms)",
                               text, where.pos, max(1, (run[-1].end if run else where.end) - where.pos))
        if any(t.name == name for t in out):
            raise FormulaError(f"{name}() appears twice in the response", text, run[0].pos, len(name))
        args, flags = [], []
        for arg, _ in _split(run[2:-1], (",",)):
            if not arg:
                raise FormulaError(f"empty argument in {name}()", text, run[0].pos, run[-1].end - run[0].pos)
            if len(arg) >= 3 and arg[0].kind == "ident" and arg[1].kind == "op" and arg[1].text == "=":
                key = arg[0].text
                if key not in _KWARGS.get(name, ()) or len(arg) != 3:
                    raise FormulaError(f"{name}() has no argument '{key}'", text, arg[0].pos, len(key))
                flags.append((key, _logical(text, arg[2])))
                continue
            args.append(render(text, arg))
        lo, hi = _ARITY[name]
        if not lo <= len(args) <= hi:
            raise FormulaError(f"{name}() takes {lo if lo == hi else f'{lo} or {hi}'} column argument(s), "
                               f"got {len(args)}", text, run[0].pos, run[-1].end - run[0].pos)
        out.append(AdditionTerm(name, tuple(args), tuple(flags)))
    return tuple(out)
