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
    for stage in ["parse_formula", "build_design", "resolve_priors", "build_model", "sample_model", "prepare_draws"]:
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
    assert "demo) setup;" in dev and "test) setup;" in dev


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
