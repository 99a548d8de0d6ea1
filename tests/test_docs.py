"""The documentation site, the README and its example output."""

import importlib.util
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import hierfit

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _nav_files(nav) -> list[str]:
    out = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        out += _nav_files(value) if isinstance(value, list) else [value]
    return out


@pytest.fixture(scope="module")
def mkdocs_config():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/name:", lambda loader, suffix, node: suffix)
    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)


def test_docs_build_strict(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f",
                           str(ROOT / "mkdocs.yml"), "-d", str(site)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={"NO_MKDOCS_2_WARNING": "1", **__import__("os").environ})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    api = (site / "api" / "fitting" / "index.html").read_text()
    # the API pages are generated from the docstrings: fit's parameters and HierFit's methods are there
    assert "hierfit.pipeline.fit" in api and "parametrization" in api and "VarCorr" in api
    assert "hierfit.results.equation.equation" in (site / "api" / "equation" / "index.html").read_text()
    assert "arithmatex" in (site / "equations" / "index.html").read_text()  # the equations render as math


def test_nav_has_the_required_pages(mkdocs_config):
    files = _nav_files(mkdocs_config["nav"])
    for f in files:
        assert (ROOT / "docs" / f).exists(), f
    for page in ["getting-started.md", "formulas.md", "priors.md", "summary.md", "predictions.md", "r2.md",
                 "families.md", "performance.md", "validation.md", "cheatsheet.md", "design.md", "gallery.md"]:
        assert page in files, page
    assert any(f.startswith("api/") for f in files)
    plugins = [p if isinstance(p, str) else next(iter(p)) for p in mkdocs_config["plugins"]]
    assert "mkdocstrings" in plugins and mkdocs_config["theme"]["name"] == "material"


def test_formula_page_covers_every_form():
    text = (ROOT / "docs" / "formulas.md").read_text()
    for form in [r"(1 \| g)", r"(x \| g)", r"(x \|\| g)", r"(0 + x \| g)", r"(1 \| g/h)", r"(1 \| g:h)",
                 r"(1 \| g) + (1 \| h)", "scale(x)", "center(x)", "log(x)", "I(", "C(x)", "cbind(", "trials(",
                 "offset(", "bf(", "dispformula", "treatment contrasts", "relevel"]:
        assert form in text, form
    # lme4's equivalents and the chapter's nested-vs-crossed numbers
    assert "lme4" in text and "4055" in text.replace(",", "") and "650" in text


def test_design_page_explains_pipeline_and_library_choice():
    text = (ROOT / "docs" / "design.md").read_text()
    for stage in ["specify", "parse_formula", "build_design", "resolve_priors", "build_model", "sample_design",
                  "prepare_draws", "test_architecture"]:
        assert stage in text, stage
    assert "formulaic" in text and "formulae" in text and "||" in text and "scale()" in text


def test_docs_mention_real_api():
    """Methods and functions the docs tell users to call exist."""
    text = "".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    for name in ["fixef", "ranef", "coef", "VarCorr", "vcov", "predict", "fitted", "residuals",
                 "quantile_residuals", "r2", "loo", "summary", "save"]:
        assert f"fit.{name}(" in text and hasattr(hierfit.HierFit, name), name
    for name in ["default_priors", "prior", "compare", "load", "bf", "sample_prior", "build_design"]:
        assert f"hierfit.{name}(" in text and hasattr(hierfit, name), name


# -- README -------------------------------------------------------------------------------------

def _section(text: str, title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert m, f"README has no '## {title}' section"
    return m.group(1)


def test_readme_quick_start_is_two_commands():
    quick = _section(README.read_text(), "Quick start")
    blocks = re.findall(r"```(?:console|bash|sh)?\n(.*?)```", quick, re.DOTALL)
    commands = [ln.lstrip("$ ").strip() for b in blocks for ln in b.splitlines() if ln.strip()]
    assert commands == ["./dev demo", "./dev test"]
    dev = (ROOT / "dev").read_text()
    assert "demo) setup;" in dev and "test) setup test;" in dev


def test_readme_links_exist():
    text = README.read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [ln for ln in links if not ln.startswith(("http://", "https://", "mailto:"))]
    assert local, "the README links to the docs and notebooks"
    for ln in local:
        assert (ROOT / ln).exists(), ln
    assert any(ln.startswith("docs/") for ln in local) and any(ln.startswith("notebooks/") for ln in local)


def _block(text: str, marker: str) -> str:
    m = re.search(rf"<!-- {marker}:start -->\n```text\n(.*?)```\n<!-- {marker}:end -->", text, re.DOTALL)
    assert m, f"no {marker} block"
    return m.group(1)


def layout(summary: str) -> list[str]:
    """Block headers, column headers and row names of a printed summary, numbers replaced by '#'."""
    out = []
    for line in summary.splitlines():
        if line.startswith("Warnings:"):
            break
        words = NUMBER.sub("#", line).split()
        if words:
            out.append(" ".join(words))
    return out


@pytest.fixture(scope="module")
def current_summary():
    """The summary of the demo model in the current output format (few draws: only the layout matters)."""
    from hierfit.cli import DEMO_FORMULA

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hierfit.fit(DEMO_FORMULA, hierfit.datasets.load("exam"), draws=60, tune=60, chains=2, seed=1,
                          progressbar=False, warn=False)
    return fit.summary().to_text()


@pytest.mark.parametrize("path, marker", [("README.md", "readme-example"), ("docs/summary.md", "summary-example")])
def test_example_output_has_the_current_layout(current_summary, path, marker):
    shown = _block((ROOT / path).read_text(), marker)
    assert layout(shown) == layout(current_summary), (
        f"{path} shows an outdated summary layout; run ./dev run python docs/readme_example.py")
    # and it is the demo model's summary, with lme4's blocks
    for header in ["Formula: normexam ~ standLRT + sex + (standLRT | school)", "Scaled residuals:", "Random effects:",
                   "Fixed effects:", "Correlation of Fixed Effects:"]:
        assert header in shown


def test_layout_ignores_numbers_but_not_rows():
    a = "Fixed effects:\n(Intercept)  0.06496   0.04176\nsexM -0.17616 0.03218"
    assert layout(a) == layout(a.replace("0.06496", "0.1").replace("-0.17616", "2e-05"))
    assert layout(a) != layout(a.replace("sexM", "sexF"))
    assert layout(a) != layout(a + "\nstandLRT 0.5 0.02")


def test_readme_example_script_replaces_blocks():
    spec = importlib.util.spec_from_file_location("readme_example", ROOT / "docs" / "readme_example.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = "intro\n<!-- readme-example:start -->\n```text\nold\n```\n<!-- readme-example:end -->\nrest\n"
    new = mod.replace_block(text, "readme-example", "Bayesian ...\n")
    assert _block(new, "readme-example") == "Bayesian ...\n" and new.endswith("rest\n")
    with pytest.raises(ValueError):
        mod.replace_block("no markers", "readme-example", "x")


# -- every python block runs as written ---------------------------------------------------------
#
# Conventions (also described in docs/index.md, "Code on these pages"):
# * every ```python block of README.md and docs/*.md runs, in page order, each page in a fresh
#   interpreter; the blocks of one page share their variables, like cells of a notebook;
# * a block preceded by the line <!-- fragment --> is a deliberate fragment (a signature, a
#   sketch) and is not run;
# * a ```text block preceded by a line <!-- output --> shows what the python block before it
#   prints: the printed text must match exactly; <!-- output: mc --> allows Monte Carlo noise:
#   the words must match and each number must agree within 0.02 + 10% of its size (sampling is
#   seeded, so on one platform the output is identical; another CPU or library version may
#   change the draws).

PAGES = [README] + sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```(\w*)\s*$")
SENTINEL = "\x1e-- hierfit docs block {} --\x1e\n"

DRIVER = r'''
import json, linecache, sys
blocks = json.load(open(sys.argv[1], encoding="utf-8"))
ns = {"__name__": "__main__"}
for b in blocks:
    name = "%s:%d" % (b["page"], b["line"])
    source = "\n" * b["line"] + b["code"]     # tracebacks show the page's line numbers
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    sys.stdout.write(SENTINEL.format(b["line"]))
    sys.stdout.flush()
    exec(compile(source, name, "exec"), ns)
    sys.stdout.flush()
'''


def doc_blocks(path: Path) -> list[dict]:
    """The fenced blocks of a markdown page: language, first code line, code, markers before it."""
    blocks, lines, k = [], path.read_text(encoding="utf-8").splitlines(), 0
    last_end = 0
    while k < len(lines):
        m = FENCE.match(lines[k])
        if not m or not m.group(1):
            k += 1
            continue
        end = next(j for j in range(k + 1, len(lines)) if lines[j].strip() == "```")
        between = [ln.strip() for ln in lines[last_end:k] if ln.strip()]
        before = between[-1] if between else ""
        blocks.append({"lang": m.group(1), "line": k + 1, "code": "\n".join(lines[k + 1:end]) + "\n",
                       "fragment": before == "<!-- fragment -->",
                       "output": next((ln for ln in between if ln.startswith("<!-- output")), None)})
        last_end = k = end + 1
    return blocks


def runnable(path: Path) -> list[dict]:
    """The python blocks of a page that run, each with the output it must print (or None)."""
    blocks, out = doc_blocks(path), []
    for i, b in enumerate(blocks):
        if b["lang"] != "python" or b["fragment"]:
            continue
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        shown = nxt if nxt and nxt["lang"] == "text" and nxt["output"] else None
        out.append({"page": str(path.relative_to(ROOT)), "line": b["line"], "code": b["code"],
                    "expected": shown["code"] if shown else None,
                    "mc": bool(shown and "mc" in shown["output"])})
    return out


def same_output(printed: str, expected: str, mc: bool) -> bool:
    """Printed output against the page's: exact (trailing blanks aside), or with Monte Carlo noise."""
    a = [ln.rstrip() for ln in printed.strip("\n").splitlines()]
    b = [ln.rstrip() for ln in expected.strip("\n").splitlines()]
    if not mc or len(a) != len(b):
        return a == b
    for x, y in zip(a, b):
        if NUMBER.sub("#", x).split() != NUMBER.sub("#", y).split():
            return False
        for u, v in zip(map(float, NUMBER.findall(x)), map(float, NUMBER.findall(y))):
            if abs(u - v) > 0.02 + 0.1 * max(abs(u), abs(v)):
                return False
    return True


def test_same_output_tolerates_only_monte_carlo_noise():
    shown = "sexM  -0.17558   0.03219 1.00  5305\n"
    assert same_output("sexM  -0.17601   0.03230 1.00  5012\n", shown, mc=True)
    assert not same_output("sexM  -0.17601   0.03230 1.00  5012\n", shown, mc=False)
    assert not same_output("sexM  -0.27601   0.03230 1.00  5012\n", shown, mc=True)   # not noise
    assert not same_output("sexF  -0.17558   0.03219 1.00  5305\n", shown, mc=True)   # another row
    assert same_output("a\nb  \n\n", "a\nb\n", mc=False)


def test_doc_blocks_finds_fragments_and_outputs(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("x\n\n<!-- fragment -->\n```python\nf(...)\n```\n\n```python\nprint(1)\n```\n"
                    "<!-- output -->\n```text\n1\n```\n```console\n$ ls\n```\n")
    blocks = doc_blocks(page)
    assert [(b["lang"], b["fragment"], bool(b["output"])) for b in blocks] == [
        ("python", True, False), ("python", False, False), ("text", False, True), ("console", False, False)]


def test_python_blocks_hold_code_not_sessions():
    """`>>>` prompts or bare `...` make a block that cannot run; sessions belong in an output block."""
    for page in PAGES:
        for b in doc_blocks(page):
            if b["lang"] == "python" and not b["fragment"]:
                assert ">>> " not in b["code"], f"{page.name}:{b['line']}: a '>>>' prompt in a python block"
                compile(b["code"], f"{page.name}:{b['line']}", "exec")
    fragments = sum(b["fragment"] for page in PAGES for b in doc_blocks(page))
    runs = sum(len(runnable(page)) for page in PAGES)
    assert fragments <= runs // 5, f"{fragments} fragments for {runs} runnable blocks: few blocks may be fragments"


def run_page(path: Path, workdir: Path) -> tuple[list[dict], dict[int, str], float]:
    """Run the page's blocks in a fresh interpreter; their printed output per first line; seconds."""
    import json
    import os
    import time

    blocks = runnable(path)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "blocks.json").write_text(json.dumps(blocks), encoding="utf-8")
    (workdir / "driver.py").write_text(f"SENTINEL = {SENTINEL!r}\n" + DRIVER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "driver.py", "blocks.json"], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    parts = proc.stdout.split("\x1e-- hierfit docs block ")
    printed = {}
    for part in parts[1:]:
        head, _, body = part.partition(" --\x1e\n")
        printed[int(head)] = body
    assert proc.returncode == 0, f"{path.name}: a block failed\n{proc.stderr[-4000:]}"
    return blocks, printed, seconds


_PAGE_SECONDS: dict[str, float] = {}


@pytest.mark.parametrize("path", [p for p in PAGES if runnable(p)], ids=lambda p: p.name)
def test_page_runs_as_written(path, tmp_path):
    blocks, printed, seconds = run_page(path, tmp_path)
    _PAGE_SECONDS[path.name] = seconds
    print(f"{path.name}: {len(blocks)} blocks ran in {seconds:.1f} s "
          f"(all pages so far: {sum(_PAGE_SECONDS.values()):.1f} s)")
    for b in blocks:
        if b["expected"] is not None:
            got = printed.get(b["line"], "")
            assert same_output(got, b["expected"], b["mc"]), (
                f"{path.name}:{b['line']} prints\n{got}\nbut the page shows\n{b['expected']}")


def test_readme_example_is_the_demo_output():
    """README's example block is what `./dev demo` (hierfit demo, seed 1 by default) prints."""
    from hierfit.cli import _parser

    args = _parser().parse_args(["demo"])
    assert args.seed == 1 and (args.draws, args.tune, args.chains) == (1000, 1000, 4)
    readme = runnable(README)
    first = next(b for b in readme if "fit.summary()" in b["code"])
    assert first["expected"] == _block(README.read_text(), "readme-example")
    assert 'seed=1' in first["code"] and "draws=" not in first["code"]   # the demo's settings
