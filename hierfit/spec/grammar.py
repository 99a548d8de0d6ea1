"""The closed grammar of a formula, and the limits that keep reading it cheap.

A formula may contain column names, numbers, the formula operators
(``~ + - * / : ^ ** | || ( ) ,``), inside a function's parentheses arithmetic and
comparisons, and calls of the documented functions -- nothing else.  :func:`check_tokens` enforces this on the formula's tokens, with a caret under
the first offending token: string literals (and f-strings), attribute access,
subscripts, lambdas, keyword arguments other than the documented ones, calls on
expressions, names with double underscores, logical and shift operators, and comparisons
outside a function's parentheses (``I(x > 5)`` is fine).

:func:`check_python` is the second line of defence: every expression that formulaic
evaluates with Python is parsed with :mod:`ast` and allowed only if each node is one of
a short list (numbers, column names, arithmetic, calls of allowed functions by name),
with integer arithmetic on literals bounded (``I(9^9^9)`` is refused instead of
computed).  :func:`check_size` bounds how many terms the Wilkinson operators expand to.

Column names are compared after Unicode NFKC normalisation (:func:`normalize_name`),
the normalisation Python applies to identifiers, so ``ｘ`` and ``x`` are the same name.

Example
-------
>>> from hierfit.spec.formula import parse_formula
>>> try:
...     parse_formula("y ~ I(x + 'a')")
... except Exception as err:
...     print(str(err).splitlines()[0])
String literals are not valid in a formula: write a column name without quotes (or in backticks if it has spaces)
"""

from __future__ import annotations

import ast
import keyword
import math
import unicodedata

from hierfit.errors import FormulaError

__all__ = ["MAX_FORMULA_LENGTH", "MAX_NESTING", "MAX_CALL_TOKENS", "MAX_TERMS", "MAX_INT_BITS", "MAX_NUMBER_LENGTH", "MAX_POWER",
           "RESERVED_FUNCTIONS", "KEYWORD_ARGUMENTS", "CONTRAST_NAMES", "normalize_name", "check_tokens",
           "check_size", "check_python"]

#: Longest formula accepted (characters).
MAX_FORMULA_LENGTH = 20_000
#: Deepest nesting of parentheses.
MAX_NESTING = 50
#: Most terms the operators ``*``, ``/``, ``:`` and ``^`` may expand a formula to.
MAX_TERMS = 2_000
#: Integer arithmetic on literals may not produce numbers of more bits than this (floats end at 2^1024).
MAX_INT_BITS = 1_024
#: Longest number literal (characters).
MAX_NUMBER_LENGTH = 40
#: Largest exponent of the interaction power ``(a + b + c)^k``.
MAX_POWER = 10
#: Most tokens between a function's parentheses (``I(x + x + ... )``).
MAX_CALL_TOKENS = 400
#: Largest basis size / degree of ``poly``, ``ns``, ``bs`` and ``s``.
MAX_BASIS = 100

#: Function names the grammar accepts in addition to the implemented ones (spline and
#: polynomial bases, brms's response additions); using one that is not implemented is
#: an "unknown function" error, never code.
RESERVED_FUNCTIONS = frozenset({"poly", "ns", "bs", "s", "C", "weights", "cens", "se", "trials", "cbind",
                                "offset", "I"})
#: Keyword arguments allowed per function (brms/R spelling); every other ``name=`` is an error.
KEYWORD_ARGUMENTS = {"poly": ("degree", "raw"), "ns": ("df",), "bs": ("df", "degree"), "s": ("k", "by", "bs"),
                     "log": ("base",), "C": ("contr",), "se": ("sigma",)}
#: Keyword arguments whose value is a column (``s(x, by = f)``), not a number.
COLUMN_KEYWORDS = {("s", "by")}
#: Keyword arguments whose value is one of a few quoted words (``s(x, bs = "tp")``), never code.
STRING_KEYWORDS = {("s", "bs"): frozenset({"tp", "ps"})}
#: Functions whose one argument may be a quoted factor level: ``C(f, Treatment('b'))``.
LEVEL_FUNCTIONS = frozenset({"Treatment", "contr.treatment"})
#: Names that may stand as the second argument of ``C()`` (contrast codings).
CONTRAST_NAMES = frozenset({"Treatment", "Sum", "Helmert", "Poly", "Diff", "contr.treatment", "contr.sum",
                            "contr.helmert", "contr.poly", "contr.SAS"})
_BASIS = frozenset({"poly", "ns", "bs", "s"})
_STRING_PREFIXES = {"f", "r", "b", "u", "fr", "rf", "br", "rb"}
_FORBIDDEN_OPS = {"<": "shift", ">": "shift", "!": "logical", "&": "logical", "%": "modulo",
                  "=": "assignment"}


def normalize_name(name: str) -> str:
    """A name as Python reads it: Unicode NFKC normal form (``ｘ`` -> ``x``, ``ﬁ`` -> ``fi``).

    Example
    -------
    >>> normalize_name("ｅｖａｌ"), normalize_name("größe")
    ('eval', 'größe')
    """
    return unicodedata.normalize("NFKC", name)


def _is(t, *texts) -> bool:
    return t is not None and t.kind == "op" and t.text in texts


def check_tokens(text: str, tokens: list, functions, shown=None) -> None:
    """Raise FormulaError at the first token outside the formula grammar.

    ``functions`` are the function names the grammar accepts; ``shown`` (default: all of them) are those
    listed in the message for an unknown one.

    Example
    -------
    >>> from hierfit.spec.formula import tokenize
    >>> check_tokens("y ~ log(x)", tokenize("y ~ log(x)"), {"log"})
    >>> try:
    ...     check_tokens("y ~ (x)(z)", tokenize("y ~ (x)(z)"), {"log"})
    ... except FormulaError as err:
    ...     print(err.message)
    calls on expressions are not allowed: only a function name may be called, e.g. log(x)
    """
    if len(text) > MAX_FORMULA_LENGTH:
        raise FormulaError(f"formula is {len(text):,} characters long; the limit is {MAX_FORMULA_LENGTH:,}")
    stack: list[str | None] = []  # per open '(': the function called, or None for grouping
    opened: list[int] = []  # token index of each open '('
    n = len(tokens)
    skip = -1
    for k, t in enumerate(tokens):
        if k == skip:  # the '=' of '<=', '>=', '==' or '!='
            continue
        prev = tokens[k - 1] if k else None
        nxt = tokens[k + 1] if k + 1 < n else None
        in_call = any(f is not None for f in stack)
        if t.kind == "string" and _is_level_argument(tokens, k):
            continue  # C(f, Treatment('b')): a reference level, data rather than code
        if t.kind == "string" and _is_string_keyword(tokens, k, stack):
            continue  # s(x, bs = "tp"): one of the basis names
        if t.kind == "string" and stack and k >= 2 and (stack[-1], tokens[k - 2].text) in STRING_KEYWORDS:
            words = STRING_KEYWORDS[(stack[-1], tokens[k - 2].text)]
            raise FormulaError(f"{tokens[k - 2].text}= of {stack[-1]}() must be one of "
                               f"{', '.join(repr(w) for w in sorted(words))}", text, t.pos, t.end - t.pos)
        if t.kind == "string":
            start = t.pos
            if prev is not None and prev.kind == "ident" and prev.end == t.pos and not prev.quoted \
                    and prev.text.lower() in _STRING_PREFIXES:
                start = prev.pos
            raise FormulaError("String literals are not valid in a formula: write a column name without quotes "
                               "(or in backticks if it has spaces)", text, start, t.end - start)
        if t.kind == "number":
            if len(t.text) > MAX_NUMBER_LENGTH:
                raise FormulaError(f"number literal longer than {MAX_NUMBER_LENGTH} characters", text, t.pos,
                                   t.end - t.pos)
            if nxt is not None and nxt.pos == t.end and (nxt.kind in ("ident", "number")):
                raise FormulaError("a number directly followed by a name is not valid (write an operator between)",
                                   text, t.pos, nxt.end - t.pos)
            if _is(nxt, "("):
                raise FormulaError("calls on expressions are not allowed: only a function name may be called, "
                                   "e.g. log(x)", text, nxt.pos)
        if t.kind == "ident":
            is_call = _is(nxt, "(")
            if not t.quoted and t.text.startswith("__"):
                what = "function" if is_call and t.text not in functions else "name"
                if what == "function":
                    raise FormulaError(f"unknown function '{t.text}' (formulas may use {', '.join(sorted(shown or functions))})",
                                       text, t.pos, t.end - t.pos)
                raise FormulaError(f"names with a leading double underscore ('{t.text}') are not allowed in a formula",
                                   text, t.pos, t.end - t.pos)
            if not t.quoted and t.text.startswith(".") and prev is not None and prev.end == t.pos \
                    and (_is(prev, ")") or prev.kind in ("ident", "number")):
                raise FormulaError("attribute access ('.name' after an expression) is not allowed in a formula",
                                   text, t.pos, t.end - t.pos)
            if is_call:
                if t.quoted:
                    raise FormulaError("a backtick-quoted name cannot be called", text, t.pos, t.end - t.pos)
                if t.text not in functions:
                    raise FormulaError(f"unknown function '{t.text}' (formulas may use {', '.join(sorted(shown or functions))})",
                                       text, t.pos, t.end - t.pos)
            elif in_call and not t.quoted and keyword.iskeyword(t.text) and t.text not in ("True", "False", "None"):
                pass  # reported as an unknown column (or a reserved word) when the data are known
        if t.kind != "op":
            continue
        op = t.text
        if op == "(":
            if len(stack) >= MAX_NESTING:
                raise FormulaError(f"parentheses nested more than {MAX_NESTING} deep", text, t.pos)
            if _is(prev, ")"):
                raise FormulaError("calls on expressions are not allowed: only a function name may be called, "
                                   "e.g. log(x)", text, t.pos)
            stack.append(prev.text if prev is not None and prev.kind == "ident" else None)
            opened.append(k)
            continue
        if op == ")":
            if stack:
                func, start = stack.pop(), opened.pop()
                if func is not None and k - start > MAX_CALL_TOKENS:
                    raise FormulaError(f"the expression inside {func}() is longer than {MAX_CALL_TOKENS:,} tokens",
                                       text, tokens[start - 1].pos, len(func))
            continue
        follows = nxt if nxt is not None and nxt.pos == t.end else None  # the next token, when adjacent
        if op in ("<", ">", "!", "=") and in_call and _is(follows, "=") or op in ("<", ">") and in_call \
                and not _is(nxt, "<", ">"):
            skip = k + 1 if _is(follows, "=") else skip  # a comparison inside a function: I(x > 5), I(g == 2)
            continue
        if op in ("<", ">") and not in_call:
            raise FormulaError(f"'{op}' (comparison operator) is only valid inside a function, e.g. I(x {op} 5)",
                               text, t.pos)
        if op == "=":
            func = stack[-1] if stack else None
            name = prev.text if prev is not None and prev.kind == "ident" else None
            before = tokens[k - 2] if k >= 2 else None
            allowed = KEYWORD_ARGUMENTS.get(func or "", ())
            if func is None or name is None or name not in allowed or not _is(before, ","):
                where = f" of {func}()" if func else ""
                hint = f" ({func}() takes {', '.join(n + '=' for n in allowed)})" if allowed else ""
                raise FormulaError(f"'=' is not valid here: keyword arguments{where} are not part of the formula "
                                   f"language{hint}", text, t.pos)
            continue
        if op in _FORBIDDEN_OPS:
            raise FormulaError(f"'{op}' ({_FORBIDDEN_OPS[op]} operator) is not part of the formula language; "
                               "arithmetic goes inside I(), e.g. I(x^2)", text, t.pos)
        if in_call and op in ("*", "**") and (_is(prev, "(", ",")):
            raise FormulaError(f"argument unpacking ('{op}') is not part of the formula language", text, t.pos, len(op))
        if in_call and op in ("|", "||", ":", "~"):
            raise FormulaError(f"'{op}' is not valid inside a function call", text, t.pos, len(op))
        if op in ("^", "**") and not in_call:
            ok = nxt is not None and nxt.kind == "number" and nxt.text.isdigit() and 1 <= int(nxt.text) <= MAX_POWER
            after = tokens[k + 2] if k + 2 < n else None
            if not ok or _is(after, "^", "**"):
                raise FormulaError(f"the interaction power '{op}' takes a whole number from 1 to {MAX_POWER}, e.g. "
                                   "(a + b + c)^2; for arithmetic write I(x^2)", text, t.pos, len(op))


# -- how many terms the Wilkinson operators expand to -------------------------------------------------------------

_PREC = {"|": 1, "||": 1, "+": 1, "-": 1, "*": 2, "/": 2, ":": 3, "^": 4, "**": 4}


def _combine(op: str, a: int, b: int, power: int = 0) -> int:
    cap = MAX_TERMS + 1
    if op in ("+", "-", "|", "||"):
        return min(cap, a + b)
    if op == ":":
        return min(cap, a * b)
    if op == "*":
        return min(cap, a + b + a * b)
    if op == "/":
        return min(cap, a + a * b)
    # (terms)^k: every product of up to k distinct terms
    total = 0
    for i in range(1, min(power, a) + 1):
        total += math.comb(a, i)
        if total > cap:
            return cap
    return total


def check_size(text: str, tokens: list) -> None:
    """Raise FormulaError when the operators would expand the formula beyond :data:`MAX_TERMS` terms.

    Example
    -------
    >>> from hierfit.spec.formula import tokenize
    >>> f = "y ~ " + "*".join("abcdefghijkl")
    >>> try:
    ...     check_size(f, tokenize(f))
    ... except FormulaError as err:
    ...     print(err.message.split(";")[0])
    the formula expands to more than 2,000 terms
    """
    pos = 0
    n = len(tokens)

    def atom() -> int:
        nonlocal pos
        if pos >= n:
            return 1
        while pos < n - 1 and _is(tokens[pos], "+", "-"):  # unary signs
            pos += 1
        t = tokens[pos]
        if t.kind == "ident" and pos + 1 < n and _is(tokens[pos + 1], "("):
            depth = 0
            while pos < n:  # a function call counts as one term
                if _is(tokens[pos], "("):
                    depth += 1
                elif _is(tokens[pos], ")"):
                    depth -= 1
                    if depth == 0:
                        break
                pos += 1
            pos += 1
            return 1
        if _is(t, "("):
            pos += 1
            value = expr(0)
            if pos < n and _is(tokens[pos], ")"):
                pos += 1
            return value
        pos += 1
        return 1

    def expr(min_prec: int) -> int:
        nonlocal pos
        left = atom()
        while pos < n:
            t = tokens[pos]
            prec = _PREC.get(t.text) if t.kind == "op" else None
            if prec is None or prec <= min_prec - 1 or prec < min_prec:
                return left
            pos += 1
            if t.text in ("^", "**"):
                k = int(tokens[pos].text) if pos < n and tokens[pos].kind == "number" and tokens[pos].text.isdigit() \
                    else 1
                pos += 1
                left = _combine("^", left, 0, min(k, MAX_POWER))
            else:
                right = expr(prec + 1)
                left = _combine(t.text, left, right)
            if left > MAX_TERMS:
                raise FormulaError(f"the formula expands to more than {MAX_TERMS:,} terms; write the interactions "
                                   "you need explicitly", text, t.pos, len(t.text))
        return left

    cut = next((k for k, t in enumerate(tokens) if _is(t, "~")), -1)
    pos = cut + 1
    while pos < n:
        start = pos
        expr(0)
        if pos == start:  # an unmatched ')' or similar: the parser reports it
            pos += 1


# -- every expression formulaic evaluates with Python ------------------------------------------------------------

_NODES = (ast.Expression, ast.Call, ast.Name, ast.Load, ast.Constant, ast.BinOp, ast.UnaryOp, ast.keyword,
          ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd,
          ast.Compare, ast.Lt, ast.Gt, ast.LtE, ast.GtE, ast.Eq, ast.NotEq)


def _sanitize(expr: str) -> tuple[str, dict[str, str]]:
    """Replace backtick-quoted names by placeholders (as formulaic does), returning the mapping."""
    out, names, i = [], {}, 0
    while i < len(expr):
        c = expr[i]
        if c == "`":
            j = expr.find("`", i + 1)
            if j < 0:
                raise FormulaError(f"unclosed backtick in '{expr}'")
            alias = f"_hierfit_name_{len(names)}"
            names[alias] = expr[i + 1: j]
            out.append(f" {alias} ")
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out), names


def _fold(op: ast.operator, a, b):
    """Exact arithmetic on two literals, refusing results that would take long to compute or not fit a float."""
    if isinstance(op, ast.Pow):
        if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
            if b * math.log2(abs(a)) > MAX_INT_BITS:
                raise OverflowError(f"{a}^{b} is too large")
        if isinstance(b, (int, float)) and abs(b) > 1e6 and isinstance(a, int) and abs(a) > 1:
            raise OverflowError(f"{a}^{b} is too large")
        try:
            value = a ** b
        except OverflowError:
            raise OverflowError(f"{a}^{b} is too large") from None
    elif isinstance(op, ast.Mult):
        if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise OverflowError(f"{a}*{b} is too large")
        value = a * b
    elif isinstance(op, ast.Add):
        value = a + b
    elif isinstance(op, ast.Sub):
        value = a - b
    else:
        value = a / b
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise OverflowError("the number is too large")
    if isinstance(value, complex):
        raise OverflowError("the result is a complex number")
    return value


def _is_level_argument(tokens, k: int) -> bool:
    """A plain string that is the only argument of Treatment(...) inside C(): ``C(f, Treatment('b'))``."""
    t = tokens[k]
    if k < 2 or k + 1 >= len(tokens) or t.text[:1] not in ("'", '"'):
        return False
    return tokens[k - 1].text == "(" and tokens[k - 2].text in LEVEL_FUNCTIONS and tokens[k + 1].text == ")"


def _is_string_keyword(tokens, k: int, stack: list) -> bool:
    """A plain quoted word allowed as a keyword's value: ``s(x, bs = "tp")`` (see STRING_KEYWORDS)."""
    t = tokens[k]
    if k < 2 or not stack or len(t.text) < 2 or t.text[:1] not in ("'", '"') or t.text[-1] != t.text[0]:
        return False
    allowed = STRING_KEYWORDS.get((stack[-1], tokens[k - 2].text), ())
    return tokens[k - 1].text == "=" and t.text[1:-1] in allowed


def _level_constant(node, parent: dict) -> bool:
    """The AST twin of :func:`_is_level_argument`: ``Treatment('b')``."""
    up = parent.get(id(node))
    return (isinstance(up, ast.Call) and isinstance(up.func, ast.Name) and up.func.id == "Treatment"
            and len(up.args) == 1 and up.args[0] is node and not up.keywords)


def _string_keyword(node, parent: dict) -> bool:
    """The AST twin of :func:`_is_string_keyword`: the value of ``bs =`` in ``s(x, bs = "tp")``."""
    kw = parent.get(id(node))
    call = parent.get(id(kw))
    return (isinstance(kw, ast.keyword) and isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
            and node.value in STRING_KEYWORDS.get((call.func.id, kw.arg), ()))


def check_python(expr: str, formula: str | None, columns, functions) -> None:
    """Allow ``expr`` (one term formulaic evaluates with Python) only if it is in the formula grammar.

    ``columns`` are the data's column names; ``functions`` the callable function names.

    Example
    -------
    >>> check_python("log(x + 1)", None, {"x"}, {"log"})
    >>> try:
    ...     check_python("I(9 ** 9 ** 9)", None, set(), {"I"})
    ... except FormulaError as err:
    ...     print(err.message)
    the arithmetic in 'I(9 ** 9 ** 9)' is too large to compute (9^387420489 is too large)
    """
    def fail(message: str, token: str | None = None):
        pos = formula.find(token) if formula and token else -1
        if pos >= 0:
            raise FormulaError(message, formula, pos, len(token))
        raise FormulaError(message, formula, 0, len(formula)) if formula else FormulaError(message)

    code, aliases = _sanitize(expr)
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        fail(f"'{expr}' is not a valid expression ({type(err).__name__})")
    nodes = list(ast.walk(tree))
    if len(nodes) > 20_000:
        fail(f"'{expr}' is too long an expression")
    parent: dict[int, ast.AST] = {}
    for node in nodes:
        for child in ast.iter_child_nodes(node):
            parent[id(child)] = node
    for node in nodes:
        if not isinstance(node, _NODES):
            fail(f"'{expr}' uses {type(node).__name__}, which is not part of the formula language")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _level_constant(node, parent):
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _string_keyword(node, parent):
            continue
        if isinstance(node, ast.Constant) and (isinstance(node.value, (str, bytes, complex))
                                               or node.value is Ellipsis):
            fail(f"'{expr}' contains the literal {node.value!r}; only numbers are allowed", str(node.value))
        if isinstance(node, ast.Compare) and len(node.ops) > 1:
            fail(f"'{expr}' chains comparisons; write each one separately, e.g. I((a < x) * (x < b))")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in functions:
                name = node.func.id if isinstance(node.func, ast.Name) else None
                fail(f"'{expr}' calls {name or 'an expression'}, which is not an allowed function", name)
            for kw in node.keywords:
                if kw.arg is None:
                    fail(f"argument unpacking (**) is not allowed in {node.func.id}()")
                if kw.arg not in KEYWORD_ARGUMENTS.get(node.func.id, ()):
                    fail(f"keyword argument {kw.arg}= is not allowed in {node.func.id}()", kw.arg)
                if (node.func.id, kw.arg) in COLUMN_KEYWORDS and isinstance(kw.value, ast.Name):
                    continue  # a column, checked as a name below
                if (node.func.id, kw.arg) in STRING_KEYWORDS:
                    words = STRING_KEYWORDS[(node.func.id, kw.arg)]
                    if not (isinstance(kw.value, ast.Constant) and kw.value.value in words):
                        fail(f"keyword argument {kw.arg}= of {node.func.id}() must be one of "
                             f"{', '.join(repr(w) for w in sorted(words))}", kw.arg)
                    continue
                if not isinstance(kw.value, ast.Constant) or isinstance(kw.value.value, (str, bytes)):
                    fail(f"keyword argument {kw.arg}= of {node.func.id}() must be a number")
            if node.func.id in _BASIS:
                for arg in list(node.args[1:]) + [kw.value for kw in node.keywords]:
                    v = arg.value if isinstance(arg, ast.Constant) else None
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and not 0 <= v <= MAX_BASIS:
                        fail(f"{node.func.id}() takes a degree or basis size from 0 to {MAX_BASIS}, got {v}", str(v))
        if isinstance(node, ast.Name):
            up = parent.get(id(node))
            if isinstance(up, ast.Call) and up.func is node:
                continue
            name = aliases.get(node.id, node.id)
            if name in columns:
                continue
            if isinstance(up, ast.Call) and isinstance(up.func, ast.Name) and up.func.id == "C" \
                    and node in up.args[1:] and name in CONTRAST_NAMES:
                continue
            fail(f"'{name}' in '{expr}' is not a column of the data", name)
    # bounded arithmetic on literals, children before parents
    values: dict[int, object] = {}
    for node in reversed(nodes):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            values[id(node)] = node.value
        elif isinstance(node, ast.UnaryOp) and id(node.operand) in values:
            v = values[id(node.operand)]
            values[id(node)] = -v if isinstance(node.op, ast.USub) else v
        elif isinstance(node, ast.BinOp) and id(node.left) in values and id(node.right) in values:
            try:
                values[id(node)] = _fold(node.op, values[id(node.left)], values[id(node.right)])
            except (OverflowError, ZeroDivisionError, ValueError) as err:
                fail(f"the arithmetic in '{expr}' is too large to compute ({err})"
                     if not isinstance(err, ZeroDivisionError) else f"division by zero in '{expr}'")
