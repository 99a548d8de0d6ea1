"""hierfit: Bayesian hierarchical (mixed-effects) models with lme4/brms formulas.

Example
-------
>>> import hierfit
>>> exam = hierfit.datasets.load("exam")
>>> fit = hierfit.fit("normexam ~ standLRT + sex + (standLRT | school)", exam, seed=1)  # doctest: +SKIP
>>> print(fit)  # doctest: +SKIP
"""

from __future__ import annotations


from hierfit import datasets
from hierfit.version import __version__
from hierfit import families
from hierfit.errors import (
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
from hierfit.spec.formula import bf
from hierfit.analysis.prepare import NA
from hierfit.spec.priors import prior
from hierfit.spec.specify import Specification, default_priors, specify

__all__ = [
    "fit",
    "specify",
    "Specification",
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
        from hierfit import pipeline
        from hierfit.results.fit import HierFit

        return pipeline.fit if name == "fit" else HierFit
    if name == "compare":
        from hierfit.analysis.loo import compare

        return compare
    if name == "sample_prior":
        from hierfit.pipeline import sample_prior

        return sample_prior
    if name == "plot_prior_posterior":
        from hierfit.plots import plot_prior_posterior

        return plot_prior_posterior
    if name == "equation":
        from hierfit.results.equation import equation

        return equation
    if name == "load":
        from hierfit.results.persist import load

        return load
    if name == "build_design":
        from hierfit.spec.design import build_design

        return build_design
    if name == "parse_formula":
        from hierfit.spec.formula import parse_formula

        return parse_formula
    raise AttributeError(f"module 'hierfit' has no attribute {name!r}")
