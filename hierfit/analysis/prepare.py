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

from hierfit.results.draws import linear_predictor, stack
from hierfit.errors import DataError, FormulaError

__all__ = ["NA", "PreparedDraws", "prepare_draws", "select_blocks"]


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
        return np.asarray(self.family.logpdf(y, self.mu, self.dpars, self.trials), dtype=float)


def _re_form_factors(re_form, design) -> set[str] | None:
    """Which grouping factors re_form keeps: None = all, empty set = none."""
    if re_form is None:
        return None
    if re_form is NA or (isinstance(re_form, float) and np.isnan(re_form)):
        return set()
    if not isinstance(re_form, str):
        raise FormulaError(f"re_form must be None, hierfit.NA, '~0' or a formula like '~(1|school)', got {re_form!r}")
    text = re_form.strip()
    if text.replace(" ", "") in ("~0", "NA", "~-1"):
        return set()
    from hierfit.spec.formula import parse_formula

    pf = parse_formula(text if text.startswith("~") else "~ " + text, response=False)
    wanted = {g.name for g in pf.groups}
    known = {b.factor for b in design.all_blocks}
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
                  resimulate_groups: bool = False) -> PreparedDraws:
    """Linear predictors and distributional parameters per posterior draw.

    Parameters
    ----------
    fit : HierFit
    newdata : DataFrame, optional
        Rows to predict; re-coded with the training spec.  None uses the training data.
    re_form : None, hierfit.NA, "~0" or a formula such as "~(1|school)"
        Group terms to include: all (None, lme4's default), none, or those named.
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

    Example
    -------
    >>> # pd_ = prepare_draws(fit, re_form="~0"); pd_.expected().mean(axis=0)
    """
    design = fit.design
    post = fit.draws
    fam = design.family
    rng = np.random.default_rng(seed)
    total = post.sizes["chain"] * post.sizes["draw"]
    draw_idx = np.arange(total) if ndraws is None or ndraws >= total else \
        np.linspace(0, total - 1, ndraws).round().astype(int)
    keep = select_blocks(design, re_form)

    all_draws = len(draw_idx) == total

    def take(name):
        arr = stack(post, name)
        if point and all_draws and arr.flags.c_contiguous:
            return arr.mean(axis=0, keepdims=True)  # the same mean, without copying every draw first
        arr = arr[draw_idx]
        return arr.mean(axis=0, keepdims=True) if point else arr

    if newdata is None:
        trials = design.trials
        recoded = {dp: {"X": p.X, "blocks": [(b.Z, b.index, None) for b in p.blocks], "offset": p.offset}
                   for dp, p in design.predictors.items()}
        n = design.nobs
    else:
        if not isinstance(newdata, pd.DataFrame):
            raise DataError(f"newdata must be a pandas DataFrame, got {type(newdata).__name__}")
        needed = _needed_columns(design, keep)
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
        if rec["offset"] is not None:
            e = e + rec["offset"]
        eta[dp] = e
    mu = fam.link.inv(eta["mu"])
    dpars = {}
    for dpar in fam.dpars:
        if dpar.name in eta:
            dpars[dpar.name] = dpar.inverse(eta[dpar.name])
        else:
            dpars[dpar.name] = take(dpar.name).reshape(-1, 1)
    return PreparedDraws(eta=eta, mu=mu, dpars=dpars, trials=trials, family=fam)


def _identifiers(expr: str) -> list[str]:
    from hierfit.spec.formula import tokenize

    toks = tokenize(expr)
    return [t.text for k, t in enumerate(toks)
            if t.kind == "ident" and not (k + 1 < len(toks) and toks[k + 1].text == "(")]


def _needed_columns(design, keep: set[str]) -> list[str]:
    """Data columns new data must have: predictors, offsets, trials, and the grouping columns of kept terms."""
    from hierfit.spec.design import _uses

    cols: list[str] = []
    for pred in design.predictors.values():
        f = pred.formula
        kept = {c for b in pred.blocks if b.key in keep for c in b.factors}
        dropped = {c for b in pred.blocks if b.key not in keep for c in b.factors} - kept
        texts = [f.fixed] + [g.expr for g in f.groups] + list(f.offsets)
        for tok in f.variables:
            if f.response and tok.pos < f.text.index("~"):
                continue  # the response is not needed to predict
            if tok.text in dropped and not any(_uses(t, tok.text) for t in texts):
                continue
            cols.append(tok.text)
    if design.formula.trials and design.trials_spec is not None:
        cols += _identifiers(design.formula.trials)
    if design.offset_arg and design.offset_arg != "<array>":
        cols += _identifiers(design.offset_arg)
    return list(dict.fromkeys(cols))
