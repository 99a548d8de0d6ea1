"""Data larger than memory: fitting from a data engine (Dask) instead of a pandas DataFrame.

Nothing here imports Dask at import time; ``pip install hierfit[dask]`` installs it.

* :mod:`hierfit.data.sources`: what counts as engine data (a ``dask.dataframe.DataFrame``,
  Parquet/CSV paths or globs) and how it is opened lazily;
* :mod:`hierfit.data.metadata`: the metadata pass (columns, dtypes, rows, missing values,
  factor levels, ``scale()`` moments) and the skeleton frame the design is built from;
* :mod:`hierfit.data.stats`: the grouped pass for the collapsed model's sufficient statistics;
* :mod:`hierfit.data.counts`: exact aggregation of count models with discrete predictors;
* :mod:`hierfit.data.specify`: the engine's specify stage, used by :func:`hierfit.fit`;
* :mod:`hierfit.data.predict`: lazy fitted values, residuals and predictions.
"""
