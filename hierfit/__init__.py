"""hierfit: Bayesian hierarchical (mixed-effects) models with lme4/brms formulas.

Example
-------
>>> import hierfit
>>> exam = hierfit.datasets.load("exam")
>>> fit = hierfit.fit("normexam ~ standLRT + sex + (standLRT | school)", exam, seed=1)  # doctest: +SKIP
>>> print(fit)  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import datasets, families
from .errors import (
    ConvergenceWarning,
    DataError,
    DataWarning,
    FormulaError,
    HierfitError,
    HierfitWarning,
    PersistenceError,
    PriorError,
    SamplingError,
)
from .formula import bf
from .prepare import NA
from .priors import default_priors, prior

__all__ = [
    "fit",
    "load",
    "compare",
    "sample_prior",
    "plot_prior_posterior",
    "equation",
    "HierFit",
    "prior",
    "default_priors",
    "datasets",
    "families",
    "bf",
    "NA",
    "build_design",
    "parse_formula",
    "HierfitError",
    "FormulaError",
    "DataError",
    "PriorError",
    "SamplingError",
    "PersistenceError",
    "HierfitWarning",
    "ConvergenceWarning",
    "DataWarning",
]


def __getattr__(name):
    # heavy modules (PyMC) load on first use, so `import hierfit` stays fast
    if name in ("fit", "HierFit"):
        from . import fitting as _fit_module

        return getattr(_fit_module, name)
    if name == "compare":
        from .loo import compare

        return compare
    if name == "sample_prior":
        from .fitting import sample_prior

        return sample_prior
    if name == "plot_prior_posterior":
        from .plots import plot_prior_posterior

        return plot_prior_posterior
    if name == "equation":
        from .equation import equation

        return equation
    if name == "load":
        from .persist import load

        return load
    if name == "build_design":
        from .design import build_design

        return build_design
    if name == "parse_formula":
        from .formula import parse_formula

        return parse_formula
    raise AttributeError(f"module 'hierfit' has no attribute {name!r}")
