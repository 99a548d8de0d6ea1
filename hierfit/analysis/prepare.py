"""The one "prepare draws" step that predictions, fitted values, residuals, R² and LOO share.

:func:`prepare_draws` turns a fit (and optionally new data) into per-draw linear
predictors, the mean parameter and the distributional parameters, honouring
``re_form`` (which group terms to include) and ``allow_new_levels``.  Nothing
else in hierfit computes a linear predictor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hierfit.arguments import check_arguments
from hierfit.results.draws import linear_predictor, stack
from hierfit.spec.addition import rows_addition, row_logpdf, total_sd
from hierfit.errors import DataError, FormulaError, HierfitError

__all__ = ["NA", "PreparedDraws", "prepare_draws", "select_blocks", "required_columns"]


class _NAType:
    """lme4's ``re.form = NA``: no group effects (marginal predictions)."""

    def __repr__(self) -> str:
        return "hierfit.NA"

    def __reduce__(self):
        return "NA"


#: Pass as ``re_form=hierfit.NA`` (or ``"~0"``) for predictions without group effects.
NA = _NAType()


@dataclass
class PreparedDraws:
    """Per-draw quantities for n rows: everything the family needs.

    Attributes
    ----------
    eta : dict dpar -> (S, n) linear predictor on the link scale
    mu : (S, n) mean parameter (inverse link of ``eta["mu"]``)
    dpars : dict name -> (S, n) or (S, 1) distributional parameters (sigma, shape, nu)
    trials : (n,) or None
    family : Family
    """

    eta: dict
    mu: np.ndarray
    dpars: dict
    trials: np.ndarray | None
    family: object
    addition: object = None  # hierfit.spec.addition.Addition of these rows (weights, cens, se) or None

    @property
    def n_draws(self) -> int:
        return self.mu.shape[0]

    def expected(self) -> np.ndarray:
        """E[y | draw]: the mean on the response scale (trials x p for binomial)."""
        return self.family.mean(self.mu, self.dpars, self.trials)

    def variance(self) -> np.ndarray:
        return np.broadcast_to(self.family.variance(self.mu, self.dpars, self.trials), self.mu.shape)

    def simulate(self, rng: np.random.Generator) -> np.ndarray:
        """One posterior predictive draw of y per posterior draw: (S, n)."""
        return np.asarray(self.family.simulate(rng, self.mu, self.dpars, self.trials), dtype=float).reshape(
            self.mu.shape)

    def logpdf(self, y: np.ndarray) -> np.ndarray:
        """Pointwise log-likelihood of y under each draw: (S, n)."""
        return row_logpdf(self.family, y, self.mu, self.dpars, self.trials, self.addition)


def _re_form_factors(re_form, design) -> set[str] | None:
    """Which grouping factors re_form keeps: None = all, empty set = none."""
    if re_form is None:
        return None
    if re_form is NA or (isinstance(re_form, float) and np.isnan(re_form)):
        return set()
    known = {b.factor for b in design.all_blocks}
    if isinstance(re_form, (list, tuple, set, frozenset)) and all(isinstance(f, str) for f in re_form):
        unknown = set(re_form) - known
        if unknown:
            raise FormulaError(f"re_form names grouping factor(s) {', '.join(sorted(unknown))} that the model does "
                               f"not have (it has: {', '.join(sorted(known)) or 'none'})")
        return set(re_form)
    if not isinstance(re_form, str):
        raise FormulaError(f"re_form must be None, hierfit.NA, '~0' or a formula like '~(1|school)', got {re_form!r}")
    text = re_form.strip()
    if text.replace(" ", "") in ("~0", "NA", "~-1"):
        return set()
    from hierfit.spec.formula import parse_formula

    pf = parse_formula(text if text.startswith("~") else "~ " + text, response=False)
    wanted = {g.name for g in pf.groups}
    unknown = wanted - known
    if unknown:
        raise FormulaError(f"re_form names group term(s) {', '.join(sorted(unknown))} that the model does not have "
                           f"(it has: {', '.join(sorted(known)) or 'none'})", re_form)
    return wanted


def select_blocks(design, re_form) -> set[str]:
    """Keys of the blocks that re_form keeps.

    Example
    -------
    >>> # select_blocks(fit.design, "~(1|school)") -> {'school'}
    """
    keep = _re_form_factors(re_form, design)
    return {b.key for b in design.all_blocks if keep is None or b.factor in keep}


def _new_level_draws(posterior, blk, n_new: int, rng: np.random.Generator, draw_idx) -> np.ndarray:
    """Group effects for unseen levels drawn from the fitted group-level distribution: (S, n_new, q)."""
    sd = stack(posterior, f"sd_{blk.key}")[draw_idx]
    S, q = sd.shape
    z = rng.standard_normal((S, n_new, q))
    if blk.is_correlated:
        cor = stack(posterior, f"cor_{blk.key}")[draw_idx]
        chol = np.linalg.cholesky(cor + 1e-12 * np.eye(q)) * sd[:, :, None]
        return np.einsum("sij,snj->sni", chol, z)
    return z * sd[:, None, :]


def prepare_draws(fit, newdata: pd.DataFrame | None = None, re_form=None, allow_new_levels: bool = False,
                  seed: int | None = None, ndraws: int | None = None, point: bool = False,
                  resimulate_groups: bool = False, offset=None, draw_ids=None, coded: dict | None = None
                  ) -> PreparedDraws:
    """Linear predictors and distributional parameters per posterior draw.

    Parameters
    ----------
    fit : HierFit
    newdata : DataFrame, optional
        Rows to predict; re-coded with the training spec.  None uses the training data.
    re_form : None, hierfit.NA, "~0", a formula such as "~(1|school)", or a list of grouping factors
        Group terms to include: all (None, lme4's default), none, or those named
        (``["school"]`` keeps the terms whose grouping factor is ``school``).
    allow_new_levels : bool
        Unseen group levels get effects drawn from the fitted group-level distribution
        (brms's ``sample_new_levels="gaussian"``); otherwise they raise.
    seed : int, optional
        For drawing new-level effects.
    ndraws : int, optional
        Use only this many posterior draws (evenly spaced).
    point : bool
        Use posterior means instead of draws (S = 1); for quick residual summaries.
    resimulate_groups : bool
        Group terms left out by ``re_form`` get fresh effects for every level from the
        fitted group-level distribution instead of none (lme4's ``simulate(re.form=NA)``,
        DHARMa's unconditional simulation).
    offset : None, float or "mean"
        None uses each row's offset (from its columns); a number, or ``"mean"`` (the
        mean training offset), replaces the mean predictor's offset for every row,
        so offset columns may be left out of ``newdata`` (effect plots, reference grids).
    draw_ids : array of int, optional
        Use exactly these posterior draws (positions in chain-major order), e.g. a
        block of them at a time to bound memory; instead of ``ndraws``.
    coded : dict, optional
        Rows already coded with the training coding, instead of ``newdata``:
        ``{"mu": {"X": (n, p), "blocks": [(Z, level index, None) per block], "offset": None}}``
        for a model whose only linear predictor is ``mu`` (the engine's grouped passes
        code partitions with numpy, :mod:`hierfit.data.coding`, and hand them over).
        Every level index must be a training level.

    Example
    -------
    >>> # pd_ = prepare_draws(fit, re_form="~0"); pd_.expected().mean(axis=0)
    """
    check_arguments(seed=seed, ndraws=ndraws)
    design = fit.design
    post = fit.draws
    fam = design.family
    rng = np.random.default_rng(seed)
    total = post.sizes["chain"] * post.sizes["draw"]
    draw_idx = np.arange(total) if ndraws is None or ndraws >= total else \
        np.linspace(0, total - 1, ndraws).round().astype(int)
    if draw_ids is not None:
        draw_idx = np.asarray(draw_ids, dtype=int)
        if draw_idx.ndim != 1 or draw_idx.size == 0 or draw_idx.min() < 0 or draw_idx.max() >= total:
            raise HierfitError(f"draw_ids must be a non-empty list of draw positions in 0..{total - 1}")
    keep = select_blocks(design, re_form)

    all_draws = len(draw_idx) == total

    def take(name):
        arr = stack(post, name)
        if point and all_draws and arr.flags.c_contiguous:
            return arr.mean(axis=0, keepdims=True)  # the same mean, without copying every draw first
        arr = arr[draw_idx]
        return arr.mean(axis=0, keepdims=True) if point else arr

    if coded is not None:
        if newdata is not None or set(coded) != set(design.predictors):
            raise HierfitError("coded= replaces newdata and must code every linear predictor "
                               f"({', '.join(design.predictors)})")
        n = len(coded["mu"]["X"])
        for blk, (_, index, _) in zip(design.mu.blocks, coded["mu"]["blocks"]):
            if len(index) != n or (len(index) and (index.min() < 0 or index.max() >= blk.n_levels)):
                raise DataError(f"coded rows of term {blk.term.text}: {len(index)} level indices for {n} rows, "
                                f"valid range 0..{blk.n_levels - 1}")
        recoded, trials = coded, None
    elif newdata is None and not design.rows_held:
        raise HierfitError("this model was fitted from data held by a data engine and keeps statistics, not rows: "
                           "what needs every row's values here (pointwise likelihoods, replicated data, residual "
                           "plots) needs in-memory data: fit a pandas sample. fit.fitted() and fit.residuals() give "
                           "lazy Dask results, and fit.predict(newdata) predicts rows you pass")
    elif newdata is None:
        trials = design.trials
        recoded = {dp: {"X": p.X, "blocks": [(b.Z, b.index, None) for b in p.blocks], "offset": p.offset}
                   for dp, p in design.predictors.items()}
        n = design.nobs
    else:
        if not isinstance(newdata, pd.DataFrame):
            raise DataError(f"newdata must be a pandas DataFrame, got {type(newdata).__name__}")
        needed = required_columns(design, re_form)
        if design.aggregation is not None:
            from hierfit.data.counts import row_columns  # rows fitted as counts: a new row is one row (one trial)

            newdata = row_columns(design, newdata)
        if offset is not None:  # offset columns are not needed: give them a harmless value
            newdata = newdata.copy()
            for spec in design.mu.offset_specs:
                for col in spec.required_variables:
                    if col not in newdata.columns:
                        newdata[col] = 1.0
        missing = [c for c in needed if c not in newdata.columns]
        if missing:
            raise DataError(f"newdata lacks column(s) {', '.join(map(repr, missing))} that the model needs")
        na = newdata[needed].isna().any(axis=1)
        if na.any():
            raise DataError(f"newdata has missing values in {int(na.sum())} row(s) "
                            f"(columns {', '.join(c for c in needed if newdata[c].isna().any())})")
        data = design.prepare(newdata.reset_index(drop=True))
        recoded = {dp: p.recode(data, keep) for dp, p in design.predictors.items()}
        n = len(newdata)
        trials = None
        if design.trials is not None:
            from hierfit.spec.design import FORMULA_CONTEXT

            if design.trials_spec is None:
                trials = np.full(n, design.trials[0])
            else:
                trials = np.asarray(design.trials_spec.get_model_matrix(data, context=FORMULA_CONTEXT),
                                    dtype=float)[:, 0]
        if design.offset_arg == "<array>":
            raise DataError("the model was fitted with an offset given as an array; refit with offset= naming "
                            "columns (e.g. offset='log(BroodSize)') to predict on new data")

    eta: dict[str, np.ndarray] = {}
    for dp, pred in design.predictors.items():
        rec = recoded[dp]
        b = take(pred.var("b")) if pred.fixed_names else np.zeros((1 if point else len(draw_idx), 0))
        terms = []
        for blk, rec_blk in zip(pred.blocks, rec["blocks"]):
            if blk.key not in keep and (not resimulate_groups or rec_blk is None):
                continue
            Z, index, labels = rec_blk
            if blk.key not in keep:
                r = _new_level_draws(post, blk, blk.n_levels, rng, draw_idx)
                terms.append((r.mean(axis=0, keepdims=True) if point else r, Z, np.where(index < 0, 0, index)))
                continue
            r = take(f"r_{blk.key}")
            if (index < 0).any():
                unseen = sorted({lab for lab, i in zip(labels, index) if i < 0})
                if not allow_new_levels:
                    raise DataError(
                        f"newdata has level(s) {', '.join(map(repr, unseen[:10]))}{' ...' if len(unseen) > 10 else ''} "
                        f"of '{blk.factor}' not seen when fitting (term {blk.term.text}); pass allow_new_levels=True "
                        "to draw their effects from the fitted group-level distribution, or re_form=hierfit.NA")
                new = _new_level_draws(post, blk, len(unseen), rng, draw_idx)
                if point:
                    new = np.zeros((1,) + new.shape[1:])
                r = np.concatenate([r, new], axis=1)
                pos = {lab: blk.n_levels + k for k, lab in enumerate(unseen)}
                index = np.array([i if i >= 0 else pos[lab] for lab, i in zip(labels, index)])
            terms.append((r, Z, index))
        e = linear_predictor(b, rec["X"], terms)
        if dp == "mu" and offset is not None:
            e = e + _offset_value(design, offset)
        elif rec["offset"] is not None:
            e = e + rec["offset"]
        eta[dp] = e
    mu = fam.mean_parameter(eta["mu"])
    dpars = {}
    if design.mu.n_thresholds:  # ordered thresholds on the original scale: (S, 1, K-1)
        dpars["thresholds"] = take(design.mu.var("b_Intercept"))[:, None, :]
    for dpar in fam.dpars:
        if dpar.name in eta:
            dpars[dpar.name] = dpar.inverse(eta[dpar.name])
        else:
            dpars[dpar.name] = take(dpar.name).reshape(-1, 1)
    addition = None if coded is not None else rows_addition(design, None if newdata is None else data,
                                                            _formula_context())
    if addition is not None and addition.se is not None:
        dpars["sigma"] = np.broadcast_to(total_sd(dpars.get("sigma"), addition.se), mu.shape)
    return PreparedDraws(eta=eta, mu=mu, dpars=dpars, trials=trials, family=fam, addition=addition)


def _formula_context() -> dict:
    from hierfit.spec.design import FORMULA_CONTEXT

    return FORMULA_CONTEXT


def _offset_value(design, offset) -> float:
    if isinstance(offset, str):
        if offset != "mean":
            raise DataError(f"offset must be None, a number or 'mean', got {offset!r}")
        if design.aggregation is not None:
            from hierfit.data.counts import row_mean_offset  # over the original rows, without log(rows)

            return row_mean_offset(design)
        if design.mu.offset is None:
            return 0.0
        if not design.rows_held:  # the rows stayed in a data engine, which measured the offset's mean
            if design.summary.offset_mean is None:
                raise HierfitError("offset='mean' needs the mean offset over the fitted rows, which this fit of "
                                   "engine data (from an older hierfit) did not keep; give the offset as a number")
            return float(design.summary.offset_mean)
        return float(np.mean(design.mu.offset))
    try:
        return float(offset)
    except (TypeError, ValueError):
        raise DataError(f"offset must be None, a number or 'mean', got {offset!r}") from None


def required_columns(design, re_form=None) -> list[str]:
    """Data columns that new data must have to predict with ``re_form``.

    The fixed part's, offsets' and trials' variables (as formulaic's
    ``required_variables`` reports them), plus the slope variables and grouping
    columns of the group terms that ``re_form`` keeps.  The response is not needed.

    Example
    -------
    >>> import hierfit
    >>> d = hierfit.build_design("normexam ~ standLRT + sex + (1 | school)", hierfit.datasets.load("exam"))
    >>> required_columns(d), required_columns(d, "~0")
    (['sex', 'standLRT', 'school'], ['sex', 'standLRT'])
    """
    keep = select_blocks(design, re_form)
    cols: list[str] = []
    for pred in design.predictors.values():
        if pred.fixed_columns:
            cols += sorted(pred.fixed_spec.required_variables)
        for blk in pred.blocks:
            if blk.key in keep:
                cols += sorted(pred.slope_specs[blk.spec_index].required_variables) + list(blk.factors)
        for spec in pred.offset_specs:
            cols += sorted(spec.required_variables)
    if design.trials_spec is not None:
        cols += sorted(design.trials_spec.required_variables)
    if design.aggregation is not None:
        from hierfit.data.counts import row_level_columns  # rows fitted as counts: the user's columns, not the counts'

        return row_level_columns(design, cols)
    return list(dict.fromkeys(cols))
