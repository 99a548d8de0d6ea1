"""The teaching notebooks run from top to bottom (with few draws) and show the chapter's facts.

Each notebook reads HIERFIT_DRAWS / HIERFIT_CHAINS; here 200 draws and 2 chains keep
the run short.  The stored notebooks carry no outputs.
"""

import os
import re
from pathlib import Path

import pytest

import hierfit

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _code(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def _outputs(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out["text"])
            elif "data" in out:
                parts.extend(str(v) for k, v in out["data"].items() if k.startswith("text/"))
    return "\n".join(parts)


def test_there_are_seven_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs_and_frames_the_lesson(path):
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip the outputs"
    first, last = nb.cells[0], nb.cells[-1]
    assert first.cell_type == "markdown" and "What you will learn" in first.source
    assert last.cell_type == "markdown" and "In lme4 you would write" in last.source
    assert 'os.environ.get("HIERFIT_DRAWS", 1000)' in _code(nb)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_calls_only_methods_a_fit_has(path):
    """A renamed or missing method fails here by name, without running the notebook."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    called = set(re.findall(r"\bfit\w*\.(\w+)\(", _code(nb)))
    assert called, f"{path.name} calls no method of a fit"
    missing = sorted(m for m in called if not hasattr(hierfit.HierFit, m))
    assert not missing, f"{path.name} calls HierFit methods that do not exist: {', '.join(missing)}"


# What each notebook must show when run: facts of the chapter, not of the sampler.
EXPECTED = {
    "01_random_intercepts": ["parameters: 3 without school, 67 with a fixed effect per school", "Random effects:",
                             r"\alpha_{j[i]}", "for school j = 1,"],
    "02_random_slopes": ["crossed: {'student': 650, 'school': 65}",
                         "nested:  {'student:school': 4055, 'school': 65}", "{'uniqueStudent': 4055, 'school': 65}",
                         "school.1", r"\beta_{1j[i]}", "random slope: collapsed",
                         "Gaussian with student:school nested in school",
                         "several grouping factors (student, school) that are crossed, not nested",
                         "school: centered (auto: median 60 "],
    "03_shrinkage": ["lm would report NA for"],
    "04_model_checks": ["converged:", "KS test against uniform"],
    "05_predictions": ["R2_marginal", "R2_conditional", "not seen when fitting"],
    "06_case_studies": ["Distributional parameters:", "sigma_sOccasion", r"\log(\lambda_{i})"],
    "07_answering_questions": ["M - F", "Post.Prob", "adjusted", "Satiated - Deprived", "P(larger drop for males)"],
}


WARNING_LINE = re.compile(r"(\w*Warning): (.*)")
_RUN_SECONDS: dict[str, float] = {}


def cell_warnings(cell) -> list[str]:
    """The warnings a cell printed (category and message), from its stderr output."""
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stderr")
    return [f"{m.group(1)}: {m.group(2).strip()}" for m in WARNING_LINE.finditer(text)]


def unexpected_warnings(nb) -> list[str]:
    """Warnings not announced by their cell's metadata ``{"hierfit": {"expected_warnings": [...]}}``.

    Each expected entry is a piece of the warning's text; the markdown around the cell
    discusses that warning as part of the lesson.
    """
    out = []
    for k, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        expected = cell.get("metadata", {}).get("hierfit", {}).get("expected_warnings", [])
        out += [f"cell {k}: {w}" for w in cell_warnings(cell) if not any(e in w for e in expected)]
    return out


def test_unexpected_warnings_are_found():
    import nbformat

    cell = nbformat.v4.new_code_cell("fit")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=(
        "/tmp/x.py:1: ConvergenceWarning: 91 divergent transition(s) after warm-up\n  fit\n"
        "/tmp/x.py:1: HierfitWarning: 1 observation(s) have Pareto k > 0.70\n"))]
    nb = nbformat.v4.new_notebook(cells=[cell])
    assert len(unexpected_warnings(nb)) == 2
    cell.metadata["hierfit"] = {"expected_warnings": ["divergent transition"]}
    assert unexpected_warnings(nb) == ["cell 0: HierfitWarning: 1 observation(s) have Pareto k > 0.70"]


@pytest.fixture(scope="module", autouse=True)
def report_run_time(request):
    yield
    if _RUN_SECONDS:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        line = (f"notebooks ran in {sum(_RUN_SECONDS.values()):.0f} s: "
                + ", ".join(f"{k[:2]} {v:.0f} s" for k, v in _RUN_SECONDS.items()))
        if reporter is not None:
            reporter.write_line(line)
        print(line)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, monkeypatch, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    monkeypatch.setenv("HIERFIT_DRAWS", "200")
    monkeypatch.setenv("HIERFIT_CHAINS", "2")
    monkeypatch.setenv("MPLBACKEND", os.environ.get("MPLBACKEND", "Agg"))
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    import time

    start = time.perf_counter()
    client.execute()
    _RUN_SECONDS[path.stem] = time.perf_counter() - start
    surprises = unexpected_warnings(nb)
    assert not surprises, f"{path.name} prints warnings its text does not discuss: {surprises}"
    text = _outputs(nb)
    for expected in EXPECTED[path.stem]:
        assert expected in text, f"{path.name}: output lacks {expected!r}"
    if path.stem == "05_predictions":
        # hierfit.compare ranks the random-slope model first, as the chapter's model choice
        table = next(o for c in nb.cells if c.cell_type == "code" and "hierfit.compare" in c.source
                     for o in c.outputs if "data" in o)
        lines = table["data"]["text/plain"].splitlines()
        assert lines[1].startswith("random slope") and lines[2].startswith("random intercept"), lines[:3]
