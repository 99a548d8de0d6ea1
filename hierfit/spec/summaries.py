"""Statistics that stand in for the rows of data held by a data engine (Dask; see :mod:`hierfit.data`).

A :class:`DataSummary` on ``design.summary`` tells the later stages that the design's
row arrays are only a skeleton (every level and category, no real rows): the count
of rows, what the default priors read (response median/MAD/sd, predictor sds), the
collapsed model's per-level sufficient statistics, and what the summary prints
(scaled-residual quantiles).  Everything here is plain data (numbers, numpy
arrays, dicts), so a fit that holds it saves and loads like any other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from hierfit.families import ResponseSummary
from hierfit.spec.layout import SufficientStats

__all__ = ["DataSummary"]


@dataclass
class DataSummary:
    """What a data engine computed about the rows, in place of the rows.

    Example
    -------
    >>> from hierfit.families import ResponseSummary
    >>> DataSummary(nobs=10, response=ResponseSummary(0.0, 1.0, 1.2, 10)).nobs
    10
    """

    nobs: int
    response: ResponseSummary | None = None
    x_sd: dict[str, dict[str, float]] = field(default_factory=dict)  # dpar -> fixed-effect name -> sd (ddof=1)
    stats: SufficientStats | None = None
    source: str = ""
    engine: str = "dask"
    npartitions: int = 0
    residual_quantiles: dict[str, float] | None = None  # Min, 1Q, Median, 3Q, Max (approximate)
    timing: dict[str, float] = field(default_factory=dict)
    workers: list[str] = field(default_factory=list)  # where the grouped pass ran
    aggregated_from: int | None = None  # rows before exact aggregation into counts
    # exact aggregation into counts (hierfit.data.counts): the formula as written, the family, the user's trials
    # columns, each pattern's number of rows, the rows' moments of numeric columns; None for row-level designs
    aggregation: dict | None = None
    # numeric predictor columns over the fitted rows: column -> {"mean", "sd", "min", "max"}
    column_moments: dict[str, dict[str, float]] = field(default_factory=dict)
    offset_mean: float | None = None  # the mean predictor's offset over the fitted rows (models with an offset)

    def to_dict(self) -> dict:
        """Plain data (numbers, strings, numpy arrays, dicts and lists) for data-only file formats.

        Example
        -------
        >>> DataSummary.from_dict(DataSummary(nobs=3).to_dict()).nobs
        3
        """
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["response"] = asdict(self.response) if self.response is not None else None
        out["stats"] = asdict(self.stats) if self.stats is not None else None
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "DataSummary":
        """The inverse of :meth:`to_dict`."""
        data = dict(data)
        if data.get("response") is not None:
            data["response"] = ResponseSummary(**data["response"])
        if data.get("stats") is not None:
            data["stats"] = SufficientStats(**data["stats"])
        return cls(**data)

