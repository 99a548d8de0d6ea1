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

from ..errors import DataError

__all__ = ["load", "available"]

# R's factor level orders, which CSV files lose.
_LEVELS = {
    "exam": {
        "schgend": ["mixed", "boys", "girls"],
        "vr": ["bottom 25%", "mid 50%", "top 25%"],
        "intake": ["bottom 25%", "mid 50%", "top 25%"],
        "sex": ["F", "M"],
        "type": ["Mxd", "Sngl"],
    }
}


def available() -> list[str]:
    """Names of the bundled data sets.

    Example
    -------
    >>> available()
    ['exam']
    """
    return sorted(p.name[:-4] for p in resources.files(__name__).iterdir() if p.name.endswith(".csv"))


def load(name: str) -> pd.DataFrame:
    """Load a bundled data set as a DataFrame with R's factor level orders.

    Parameters
    ----------
    name : str
        ``"exam"`` (mlmRev's Exam: 4,059 students in 65 London schools; see SOURCES.md).

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
