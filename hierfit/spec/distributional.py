"""brms's ``bf()``: a formula for the mean plus formulas for distributional parameters.

:func:`split_formula` turns ``bf()``, ``dpars=`` and glmmTMB's ``dispformula`` into the
mean's formula and one one-sided formula per distributional parameter.
"""

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
                  family=None, ziformula: str | None = None) -> tuple[str, dict]:
    """The mean's formula and the distributional formulas from ``bf()``, ``dpars=``, glmmTMB's ``dispformula``
    and ``ziformula`` (the zero-inflation probability ``zi``, logit link).

    ``dispformula`` goes to the family's dispersion parameter (sigma for gaussian,
    shape for negbinomial and gamma; ``family`` is the family object, gaussian when
    None).  Note glmmTMB's gaussian dispersion model is for log(sigma^2): its
    coefficients are twice those of hierfit's log(sigma) model.

    Example
    -------
    >>> split_formula("y ~ x", dispformula="~ x")
    ('y ~ x', {'sigma': '~ x'})
    """
    if dpars is not None and not isinstance(dpars, dict):
        raise FormulaError(f"dpars must be a dict of formulas such as {{'sigma': '~ x'}}, got {type(dpars).__name__}")
    out: dict = {}
    if isinstance(formula, ModelFormula):
        out.update(formula.dpars)
        formula = formula.formula
    out.update(dpars or {})
    if ziformula is not None:
        if family is None or "zi" not in family.dpar_names:
            raise FormulaError("ziformula= needs a zero-inflated family (zero_inflated_poisson, "
                               f"zero_inflated_negbinomial); the {getattr(family, 'name', 'gaussian')} family has no zi")
        if "zi" in out:
            raise FormulaError("both ziformula and a formula for zi were given")
        if not (isinstance(ziformula, str) and ziformula.replace(" ", "") in ("~0", "~-1")):
            out["zi"] = ziformula
    if dispformula is not None:
        names = [d.name for d in family.dpars if d.dispersion] if family is not None else ["sigma"]
        if not names:
            raise FormulaError(f"the {family.name} family has no dispersion parameter for dispformula")
        target = names[0]
        if target in out:
            raise FormulaError(f"both dispformula and a formula for {target} were given")
        out[target] = dispformula
    return formula, out
