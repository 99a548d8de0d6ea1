"""The tables of the analysis layer: label columns + Estimate, Est.Error, interval (+ pd, ROPE).

Every question (predictions, comparisons, slopes, marginal means) ends in
:func:`summarise`, which turns (S, k) posterior draws of k quantities into one row
per quantity, or, with ``summary=False``, returns the draws themselves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierfit.errors import HierfitError
from hierfit.results.draws import interval_table

__all__ = ["summarise", "probability_of_direction", "rope_probability"]


def probability_of_direction(draws: np.ndarray) -> np.ndarray:
    """Posterior probability of the more probable sign (bayestestR's ``pd``), per column.

    Example
    -------
    >>> import numpy as np
    >>> probability_of_direction(np.array([[1.0], [2.0], [-1.0], [3.0]]))
    array([0.75])
    """
    draws = np.asarray(draws, dtype=float)
    return np.maximum((draws > 0).mean(axis=0), (draws < 0).mean(axis=0))


def rope_probability(draws: np.ndarray, rope) -> np.ndarray:
    """Share of the draws inside the region of practical equivalence ``rope = (low, high)``.

    Example
    -------
    >>> import numpy as np
    >>> rope_probability(np.array([[0.05], [0.5], [-0.05], [2.0]]), (-0.1, 0.1))
    array([0.5])
    """
    try:
        lo, hi = (float(v) for v in rope)
    except (TypeError, ValueError):
        raise HierfitError(f"rope must be a pair (low, high), got {rope!r}") from None
    if not lo < hi:
        raise HierfitError(f"rope must have low < high, got {rope!r}")
    draws = np.asarray(draws, dtype=float)
    return ((draws >= lo) & (draws <= hi)).mean(axis=0)


def summarise(draws: np.ndarray, labels: pd.DataFrame, ci: float = 0.95, summary: bool = True,
              pd_column: bool = False, rope=None) -> pd.DataFrame:
    """One row per column of ``draws`` (S, k): the ``labels`` columns, then the statistics.

    With ``summary=False`` the draws come back as a DataFrame, one column per row of
    the table (in the same order, named by the labels), one row per posterior draw.

    Example
    -------
    >>> import numpy as np, pandas as pd
    >>> t = summarise(np.zeros((10, 1)) + 1.0, pd.DataFrame({"term": ["x"]}))
    >>> list(t.columns)
    ['term', 'Estimate', 'Est.Error', 'l-95% CI', 'u-95% CI']
    """
    draws = np.asarray(draws, dtype=float)
    if draws.ndim == 1:
        draws = draws[:, None]
    labels = labels.reset_index(drop=True)
    if not 0 < ci < 1:
        raise HierfitError(f"ci must lie between 0 and 1, got {ci!r}")
    if not summary:
        names = [" | ".join(map(str, row)) for row in labels.itertuples(index=False)] if labels.shape[1] \
            else [str(i) for i in range(draws.shape[1])]
        out = pd.DataFrame(draws, columns=names)
        out.index.name = "draw"
        return out
    stats = interval_table(draws, range(draws.shape[1]), ci).reset_index(drop=True)
    if pd_column:
        stats["pd"] = probability_of_direction(draws)
    if rope is not None:
        stats["ROPE"] = rope_probability(draws, rope)
    return pd.concat([labels, stats], axis=1)
