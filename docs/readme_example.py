"""Regenerate the example output in README.md and docs/summary.md from a real run.

Runs what ``./dev demo`` runs (``hierfit demo --seed 1``: the chapter's random-slope
model on the Exam data, 4 chains x 1000 draws) and replaces the text between the
markers ``<!-- readme-example:start -->`` / ``<!-- readme-example:end -->`` in
README.md and ``<!-- summary-example:start -->`` / ``<!-- summary-example:end -->`` in
docs/summary.md with the printed summary.

Usage (from the repository root)::

    ./dev run python docs/readme_example.py          # rewrite both files
    ./dev run python docs/readme_example.py --print  # only print the output

Example
-------
>>> text = demo_output()  # doctest: +SKIP
>>> text.startswith("Bayesian linear mixed model")  # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {ROOT / "README.md": "readme-example", ROOT / "docs" / "summary.md": "summary-example"}


def demo_output(seed: int = 1) -> str:
    """The summary printed by ``hierfit demo --seed <seed> --no-progress`` (without the "Fitting ..." line).

    Example
    -------
    >>> demo_output().splitlines()[2]  # doctest: +SKIP
    'Formula: normexam ~ standLRT + sex + (standLRT | school)'
    """
    from hierfit.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        status = main(["demo", "--seed", str(seed), "--no-progress"])
    if status != 0:
        raise SystemExit(f"hierfit demo failed with status {status}")
    lines = buf.getvalue().splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("Bayesian"))
    return "\n".join(lines[start:]).rstrip() + "\n"


def replace_block(text: str, marker: str, body: str) -> str:
    """Replace the fenced block between ``<!-- marker:start -->`` and ``<!-- marker:end -->``.

    Example
    -------
    >>> replace_block("a\\n<!-- x:start -->\\nold\\n<!-- x:end -->\\nb", "x", "new\\n")
    'a\\n<!-- x:start -->\\n```text\\nnew\\n```\\n<!-- x:end -->\\nb'
    """
    pattern = re.compile(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)", re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"markers <!-- {marker}:start/end --> not found")
    return pattern.sub(lambda m: m.group(1) + "```text\n" + body + "```\n" + m.group(2), text, count=1)


def main(argv: list[str] | None = None) -> int:
    """Run the demo and rewrite the README and docs/summary.md blocks (``--print``: only print).

    Example
    -------
    >>> main(["--print"])  # doctest: +SKIP
    Bayesian linear mixed model fit by NUTS (nutpie) ['hierfit']
    ...
    """
    argv = sys.argv[1:] if argv is None else argv
    out = demo_output()
    if "--print" in argv:
        print(out, end="")
        return 0
    for path, marker in TARGETS.items():
        path.write_text(replace_block(path.read_text(encoding="utf-8"), marker, out), encoding="utf-8")
        print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
