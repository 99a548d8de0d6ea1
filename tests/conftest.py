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
