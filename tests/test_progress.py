"""Progress where there is no terminal, Ctrl-C keeps the draws, and Jupyter shows progress and figures once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import warnings, hierfit
exam = hierfit.datasets.load("exam")
f = "normexam ~ standLRT + sex + (standLRT | school)"
hierfit.fit(f, exam, draws=200, tune=200, chains=2, seed=1, warn=False)
print("first fit done", flush=True)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    fit = hierfit.fit(f, exam, draws=10**7, tune=100, chains=2, seed=1)
print("interrupted:", fit.interrupted, fit.draws.sizes["draw"], fit.converged)
print("warning:", str(caught[0].message))
print("summary warns:", "interrupted" in fit.summary().to_text())
"""


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}


def test_progress_lines_without_terminal_and_ctrl_c_keeps_the_draws(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "first fit done"
        deadline, seen = time.time() + 120, []
        while not (seen and "/ 20000200 draws" in seen[-1]) and time.time() < deadline:
            seen.append(proc.stderr.readline())   # up to the second fit's first progress line
        time.sleep(3.0)                     # past warm-up (100 iterations take well under a second)
        proc.send_signal(signal.SIGINT)     # what Ctrl-C sends
        out, err = proc.communicate(timeout=120)
        err = "".join(seen) + err
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("Sampling 2 chains:")]
    # the first fit: a line at 0 %, at each quarter reached between two updates, and at 100 %
    first = [int(ln.split("(")[1].split("%")[0]) for ln in lines if "/ 800 draws" in ln]
    assert first[0] == 0 and first[-1] == 100 and first == sorted(first) and len(first) <= 5, err
    # the second fit's first line: at 0 % (a draw or two may already be done when it is printed)
    assert re.match(r"Sampling 2 chains: \d+ / 20000200 draws \(0%\)", lines[len(first)]), err
    status = dict(ln.split(": ", 1) for ln in out.splitlines())
    interrupted, n_draw, converged = status["interrupted"].split()
    assert interrupted == "True" and int(n_draw) > 0 and converged == "False"
    assert status["warning"].startswith(f"sampling was interrupted (Ctrl-C): this fit keeps the {n_draw} draws")
    assert status["summary warns"] == "True"


NOTEBOOK_CELLS = [
    "import hierfit\nexam = hierfit.datasets.load('exam')\n"
    "fit = hierfit.fit('normexam ~ standLRT + (1 | school)', exam, draws=100, tune=100, chains=2, seed=1, warn=False)",
    "fit.plot_rank()",              # last line: shown once
    "fig = fit.plot_trace()",       # assigned: shown once (by pyplot)
    "hierfit.equation(fit)",
]


def test_jupyter_shows_progress_and_each_figure_once(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute(
        env={**_env(), "MPLBACKEND": "module://matplotlib_inline.backend_inline"})

    def images(cell):
        return sum("image/png" in o.get("data", {}) for o in cell.outputs)

    fit_cell, rank_cell, trace_cell, eq_cell = nb.cells
    html = [o["data"]["text/html"] for o in fit_cell.outputs if "text/html" in o.get("data", {})]
    assert html and "Sampling 2 chains" in html[-1] and "400 / 400 draws" in html[-1]   # the live line, finished
    assert not [o for o in fit_cell.outputs if o.get("name") == "stderr"]   # no PyMC/PyTensor chatter
    assert images(rank_cell) == 1 and images(trace_cell) == 1
    assert any("text/latex" in o.get("data", {}) for o in eq_cell.outputs)
