"""Data sets shipped with hierfit.

Example
-------
>>> import hierfit
>>> exam = hierfit.datasets.load("exam")
>>> exam.shape
(4059, 10)
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from hierfit.errors import DataError

__all__ = ["load", "available"]

# R's factor level orders, which CSV files lose.
_LEVELS = {
    "exam": {
        "schgend": ["mixed", "boys", "girls"],
        "vr": ["bottom 25%", "mid 50%", "top 25%"],
        "intake": ["bottom 25%", "mid 50%", "top 25%"],
        "sex": ["F", "M"],
        "type": ["Mxd", "Sngl"],
    },
    "gpa": {
        "occas": ["year 1 semester 1", "year 1 semester 2", "year 2 semester 1", "year 2 semester 2",
                  "year 3 semester 1", "year 3 semester 2"],
        "job": ["no job", "1 hour", "2 hours", "3 hours", "4 or more hours"],
        "sex": ["male", "female"],
        "admitted": ["no", "yes"],
    },
    "owls": {
        "FoodTreatment": ["Deprived", "Satiated"],
        "SexParent": ["Female", "Male"],
    },
}


def available() -> list[str]:
    """Names of the bundled data sets.

    Example
    -------
    >>> available()
    ['bees', 'exam', 'gpa', 'owls', 'plantHeight']
    """
    return sorted(p.name[:-4] for p in resources.files(__name__).iterdir() if p.name.endswith(".csv"))


def load(name: str) -> pd.DataFrame:
    """Load a bundled data set as a DataFrame with R's factor level orders.

    Parameters
    ----------
    name : str
        ``"exam"`` (mlmRev's Exam: 4,059 students in 65 London schools), ``"bees"``,
        ``"gpa"``, ``"plantHeight"`` (EcoData) or ``"owls"`` (glmmTMB's Owls); see SOURCES.md.

    Example
    -------
    >>> exam = load("exam")
    >>> list(exam["sex"].cat.categories)
    ['F', 'M']
    """
    if name not in available():
        raise DataError(f"no bundled data set named {name!r}; available: {', '.join(available())}")
    with resources.files(__name__).joinpath(f"{name}.csv").open("r", encoding="utf-8") as fh:
        df = pd.read_csv(fh)
    for col, levels in _LEVELS.get(name, {}).items():
        df[col] = pd.Categorical(df[col], categories=levels)
    df.attrs["name"] = name
    return df
