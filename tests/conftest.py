"""Shared fixtures: fitted models are session-scoped so each model structure compiles once."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HIERFIT_SHARED", ROOT.parent / "shared"))

os.environ.setdefault("MPLBACKEND", "Agg")


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"reference file {path} is missing (set HIERFIT_SHARED to the shared/ folder)")
    return path


@pytest.fixture(scope="session")
def exam():
    import hierfit

    return hierfit.datasets.load("exam")


@pytest.fixture(scope="session")
def lme4_exam():
    return json.loads(shared_path("reference", "lme4_exam.json").read_text())["models"]


@pytest.fixture(scope="session")
def lme4_cases():
    return json.loads(shared_path("reference", "lme4_chapter_cases.json").read_text())["models"]


def grouped_data(n_groups: int, per_group: int, *, intercept: float, slope: float, sd: float,
                 family: str = "gaussian", sigma: float = 1.0, seed: int | None = None, rng=None):
    """Simulated grouped data, the shape most tests need: ``y``, ``x`` and ``g``.

    ``g`` has ``n_groups`` levels of ``per_group`` rows; ``eta = intercept + slope * x + u[g]``
    with ``u ~ N(0, sd)``; ``y`` is ``eta + N(0, sigma)`` (gaussian), ``Poisson(exp(eta))`` or
    ``Bernoulli(logit^-1(eta))``.  Draws come from ``rng`` (or a new generator from ``seed``)
    in the order x, u, y, so a caller can keep drawing further columns from the same ``rng``.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed) if rng is None else rng
    g = np.repeat(np.arange(n_groups), per_group)
    x = rng.normal(size=g.size)
    eta = intercept + slope * x + rng.normal(0, sd, n_groups)[g]
    if family == "gaussian":
        y = eta + rng.normal(0, sigma, g.size)
    elif family == "poisson":
        y = rng.poisson(np.exp(eta))
    elif family == "bernoulli":
        y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    else:
        raise ValueError(f"grouped_data has no {family!r} response")
    return pd.DataFrame({"y": y, "x": x, "g": g})


def quiet_fit(*args, **kwargs):
    import hierfit

    kwargs.setdefault("progressbar", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hierfit.fit(*args, **kwargs)


@pytest.fixture(scope="session")
def fit_ri(exam):
    """normexam ~ standLRT + sex + (1 | school): 4 chains x 1000 draws."""
    return quiet_fit("normexam ~ standLRT + sex + (1 | school)", exam, seed=11)


@pytest.fixture(scope="session")
def fit_rs(exam):
    """normexam ~ standLRT + sex + (standLRT | school): 4 chains x 1000 draws."""
    return quiet_fit("normexam ~ standLRT + sex + (standLRT | school)", exam, seed=12)
