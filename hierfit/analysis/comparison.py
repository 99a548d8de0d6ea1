"""The table of :func:`hierfit.compare`: ArviZ's comparison, printed readably with its columns explained."""

from __future__ import annotations

import html

import pandas as pd

__all__ = ["Comparison", "COLUMN_MEANINGS"]

COLUMN_MEANINGS = {
    "rank": "0 = the model expected to predict new data best",
    "elpd": "expected log predictive density for new data, estimated by PSIS-LOO (higher is better)",
    "se": "standard error of elpd",
    "elpd_diff": "elpd minus the best model's elpd (0 for the best)",
    "dse": "standard error of elpd_diff: a difference of several dse is a real difference",
    "p_worse": "probability that the model predicts worse than the best one (normal approximation)",
    "p": "effective number of parameters",
    "weight": "stacking weight: how much each model would contribute to the best combined prediction",
    "diag_diff": "caution about elpd_diff: 'N < 100' (few rows) or '|elpd_diff| < 4' (similar predictions)",
    "diag_elpd": "caution about elpd: how many observations have a high Pareto k (unreliable LOO)",
}
ONE_DECIMAL = ["elpd", "se", "elpd_diff", "dse", "p"]


class Comparison(pd.DataFrame):
    """ArviZ's ``compare`` table (a DataFrame), printed with one decimal and a line per column.

    Example
    -------
    >>> t = Comparison(pd.DataFrame({"rank": [0, 1], "elpd": [-4590.04, -4620.3], "se": [47.0, 47.1],
    ...                             "elpd_diff": [0.0, -30.26], "dse": [0.0, 7.71]}, index=["rs", "ri"]))
    >>> print(t)  # doctest: +NORMALIZE_WHITESPACE
        rank    elpd   se  elpd_diff  dse
    rs     0 -4590.0 47.0        0.0  0.0
    ri     1 -4620.3 47.1      -30.3  7.7
    <BLANKLINE>
    rank: 0 = the model expected to predict new data best
    elpd: expected log predictive density for new data, estimated by PSIS-LOO (higher is better)
    se: standard error of elpd
    elpd_diff: elpd minus the best model's elpd (0 for the best)
    dse: standard error of elpd_diff: a difference of several dse is a real difference
    """

    @property
    def _constructor(self):
        return pd.DataFrame

    def _display(self) -> pd.DataFrame:
        shown = pd.DataFrame(self).copy()
        for col in ONE_DECIMAL:
            if col in shown:
                shown[col] = shown[col].map(lambda v: f"{float(v):.1f}")
        if "weight" in shown:
            shown["weight"] = shown["weight"].map(lambda v: f"{float(v):.2f}")
        for col in ("p_worse", "p_better"):
            if col in shown:
                shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{float(v):.2f}")
        return shown

    def _legend(self) -> list[str]:
        return [f"{c}: {COLUMN_MEANINGS[c]}" for c in self.columns if c in COLUMN_MEANINGS]

    def __repr__(self) -> str:
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            table = self._display().to_string()
        return table + "\n\n" + "\n".join(self._legend())

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in self._legend())
        return self._display().to_html() + f"<ul style='font-size:smaller'>{items}</ul>"
