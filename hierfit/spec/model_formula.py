"""brms's ``bf()``: a model formula plus formulas for distributional parameters, and how they are split."""

from __future__ import annotations

from dataclasses import dataclass

from hierfit.errors import FormulaError

__all__ = ["ModelFormula", "bf", "split_formula"]


@dataclass(frozen=True)
class ModelFormula:
    """A formula for the mean plus formulas for distributional parameters (brms's ``bf()``).

    Example
    -------
    >>> f = bf("gpa ~ occasion + (occasion | student)", sigma="~ occasion")
    >>> f.dpars
    {'sigma': '~ occasion'}
    """

    formula: str
    dpars: dict

    def __str__(self) -> str:
        extra = "".join(f"\n       {k} {v}" for k, v in self.dpars.items())
        return self.formula + extra


def bf(formula: str, **dpars: str) -> ModelFormula:
    """brms's ``bf()``: a model formula with formulas for distributional parameters.

    Parameters
    ----------
    formula : str
        The mean's formula, ``"gpa ~ sOccasion * sex + (sOccasion | student)"``.
    **dpars : str
        One-sided formulas, e.g. ``sigma="~ sOccasion"`` (log link) or ``shape="~ x"``.

    Example
    -------
    >>> bf("y ~ x + (1 | g)", sigma="~ x").dpars["sigma"]
    '~ x'
    """
    for name, text in dpars.items():
        if not isinstance(text, str):
            raise FormulaError(f"formula for {name} must be a string such as '~ x', got {type(text).__name__}")
    return ModelFormula(formula, dict(dpars))


def split_formula(formula, dpars: dict | None = None, dispformula: str | None = None,
                  family=None) -> tuple[str, dict]:
    """The mean's formula and the distributional formulas from ``bf()``, ``dpars=`` or glmmTMB's ``dispformula``.

    ``dispformula`` goes to the family's dispersion parameter (sigma for gaussian,
    shape for negbinomial and gamma).  Note glmmTMB's gaussian dispersion model is for
    log(sigma^2): its coefficients are twice those of hierfit's log(sigma) model.

    Example
    -------
    >>> split_formula("y ~ x", dispformula="~ x")
    ('y ~ x', {'sigma': '~ x'})
    """
    out: dict = {}
    if isinstance(formula, ModelFormula):
        out.update(formula.dpars)
        formula = formula.formula
    out.update(dpars or {})
    if dispformula is not None:
        from hierfit.spec import families

        fam = families.get(family or "gaussian")
        if not fam.dpars:
            raise FormulaError(f"the {fam.name} family has no dispersion parameter for dispformula")
        target = fam.dpars[0].name
        if target in out:
            raise FormulaError(f"both dispformula and a formula for {target} were given")
        out[target] = dispformula
    return formula, out
