"""hierfit against bambi on the Exam models both can fit, with the same priors in both.

Two models of the Exam data (4,059 pupils in 65 schools):

* random intercept: ``normexam ~ standLRT + sex + (1 | school)``;
* uncorrelated random slope: ``normexam ~ standLRT + sex + (standLRT || school)``.
  bambi's formula parser has no ``||``, so bambi gets the same model as
  ``(1|school) + (0 + standLRT|school)``.

The priors are hierfit's defaults for each model, read from
``hierfit.default_priors`` and given explicitly to both tools, so the comparison is
of the models and samplers, not of the priors.  ``matched_priors`` translates each
prior statement:

==========================  ============================================  ==========================================
hierfit (brms spelling)     meaning                                       bambi
==========================  ============================================  ==========================================
``Intercept``               intercept at the means of the predictors      ``"Intercept"`` (bambi's
                                                                          ``center_predictors=True``, its default,
                                                                          puts the intercept prior on the same
                                                                          centred intercept)
``b``, coef ``sexM``        one coefficient                               the term (``"sex"``) holding it
``sd``, coef, group         half-distribution on a group-level sd         ``"1|school"`` / ``"standLRT|school"``:
                                                                          ``Normal(mu=0, sigma=<half prior>)``
``sigma``                   half-distribution on the residual sd          ``"sigma"``
==========================  ============================================  ==========================================

Both tools centre the fixed-effect columns (X - column means) for sampling and report
the intercept at x = 0.  Neither centres the group-level predictor ``standLRT``.

For every summary quantity (fixed effects, group-level sds, sigma, and every school
effect) the script compares posterior means, in units of hierfit's posterior sd, and
gives the Monte-Carlo standard error (MCSE) of the difference,
sqrt(MCSE_hierfit^2 + MCSE_bambi^2).  The target is ``|difference| < 0.1`` posterior sd.

Run (writes ``results/bambi_agreement.md``)::

    python benchmarks/bambi_agreement.py                  # 4 chains x 5000 draws after 2000 tune
    python benchmarks/bambi_agreement.py --draws 1000     # quicker

``tests/test_bambi.py`` runs a small version of the random-intercept comparison.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TOLERANCE = 0.1  # |difference of posterior means| / posterior sd

# label: (hierfit formula, the same model in bambi's formula syntax)
MODELS = {
    "Exam random intercept": ("normexam ~ standLRT + sex + (1 | school)",
                              "normexam ~ standLRT + sex + (1|school)"),
    "Exam uncorrelated random slope": ("normexam ~ standLRT + sex + (standLRT || school)",
                                       "normexam ~ standLRT + sex + (1|school) + (0 + standLRT|school)"),
}
KINDS = {"fixed": "fixed effects", "sd": "sds and sigma", "sigma": "sds and sigma", "group": "school effects"}

__all__ = ["MODELS", "TOLERANCE", "bambi_prior", "bambi_model", "matched_priors", "fit_hierfit", "fit_bambi",
           "hierfit_estimates", "bambi_estimates", "compare", "main"]


# -- priors ----------------------------------------------------------------------------------------
def bambi_prior(dist, positive: bool):
    """The bambi prior for a hierfit distribution (``hierfit.prior(...).dist``).

    ``positive`` (classes sd and sigma) gives the half-distribution, as hierfit does.

    Example
    -------
    >>> import hierfit
    >>> bambi_prior(hierfit.prior("student_t(3, 0, 2.5)", "sd").dist, positive=True)
    HalfStudentT(nu: 3.0, sigma: 2.5)
    """
    import bambi as bmb

    f, p = dist.family, [float(v) for v in dist.params]
    loc = {"normal": p[0], "student_t": p[1] if len(p) > 1 else 0.0, "cauchy": p[0]}.get(f, 0.0)
    if positive and loc != 0:
        raise ValueError(f"{dist} on a positive parameter is a truncated distribution; bambi has no such prior")
    if f == "normal":
        return bmb.Prior("HalfNormal", sigma=p[1]) if positive else bmb.Prior("Normal", mu=p[0], sigma=p[1])
    if f == "student_t":
        return (bmb.Prior("HalfStudentT", nu=p[0], sigma=p[2]) if positive
                else bmb.Prior("StudentT", nu=p[0], mu=p[1], sigma=p[2]))
    if f == "cauchy":
        return bmb.Prior("HalfCauchy", beta=p[1]) if positive else bmb.Prior("Cauchy", alpha=p[0], beta=p[1])
    if f == "exponential":
        return bmb.Prior("Exponential", lam=p[0])
    raise ValueError(f"no bambi translation for a {f} prior")


def bambi_model(formula: str, data: pd.DataFrame, priors: dict | None = None):
    """A bambi model of ``data`` with ``school`` as a factor and (optionally) the given term priors.

    Example
    -------
    >>> m = bambi_model("normexam ~ standLRT + (1|school)", exam)  # doctest: +SKIP
    """
    import bambi as bmb

    model = bmb.Model(formula, data, categorical=["school"], auto_scale=False)
    if priors is not None:
        model.set_priors(priors=priors)
    return model


def _bambi_terms(model) -> dict:
    """bambi's prior-carrying terms by name: intercept, common terms, group-specific terms, sigma."""
    mu = model.parameters["mu"]
    out = {"Intercept": mu.intercept_term} if mu.intercept_term is not None else {}
    out.update(mu.common_terms)
    out.update(mu.group_specific_terms)
    out["sigma"] = model.parameters["sigma"]
    return out


def matched_priors(formula: str, bambi_formula: str, data: pd.DataFrame):
    """hierfit's default priors for ``formula``, as explicit priors for hierfit and for bambi.

    Returns ``(hierfit_priors, bambi_priors, table)``: a list of ``hierfit.prior``
    statements (one per row of ``hierfit.default_priors``), a dict of ``bambi.Prior``
    keyed by bambi term, and a DataFrame pairing each hierfit statement with the bambi
    term and prior it became.  Raises ValueError when a prior has no bambi equivalent
    or when a bambi term would be left without a prior.

    Example
    -------
    >>> hp, bp, tab = matched_priors(*MODELS["Exam random intercept"], exam)  # doctest: +SKIP
    >>> sorted(bp)  # doctest: +SKIP
    ['1|school', 'Intercept', 'sex', 'sigma', 'standLRT']
    """
    import hierfit

    table = hierfit.default_priors(formula, data)
    terms = _bambi_terms(bambi_model(bambi_formula, data))

    def translate(cls, coef, group, p):
        if cls == "sigma":
            return "sigma", bambi_prior(p.dist, positive=True)
        return common_translation(cls, coef, group, p, terms)

    out = translate_priors(table, terms, translate)
    # the explicit statements must each be taken up by hierfit and reproduce its defaults
    check_taken_up(table, hierfit.default_priors(formula, data, priors=out[0]))
    return out


def common_translation(cls, coef, group, p, terms, levels=None):
    """(bambi term, bambi.Prior) of a hierfit Intercept, b or sd prior; ValueError for other classes.

    ``levels(term, name, coef)`` may match more coefficient names to a bambi term than
    :func:`term_levels` does.
    """
    import bambi as bmb

    if cls == "Intercept":
        return "Intercept", bambi_prior(p.dist, positive=False)
    if cls == "b":
        name = next((t for t, term in terms.items() if t == coef or term_levels(term, t, coef)
                     or (levels is not None and levels(term, t, coef))), None)
        return name, bambi_prior(p.dist, positive=False)
    if cls == "sd":
        return (f"{'1' if coef == '(Intercept)' else coef}|{factor_of(group)}",
                bmb.Prior("Normal", mu=0, sigma=bambi_prior(p.dist, positive=True)))
    raise ValueError(f"no bambi equivalent for a prior of class {cls!r}")


def translate_priors(table: pd.DataFrame, terms: dict, translate):
    """Every row of hierfit's default-prior ``table`` as an explicit hierfit prior and a bambi prior.

    ``translate(cls, coef, group, prior)`` gives the row's (bambi term, bambi.Prior).
    Returns ``(hierfit_priors, bambi_priors, table)`` as :func:`matched_priors`; raises
    ValueError when a row has no bambi term, two rows give one term different priors, or a
    bambi term is left without a prior.
    """
    import hierfit

    hierfit_priors, bambi_priors, rows = [], {}, []
    for r in table.to_dict("records"):
        cls, coef, group = r["class"], r["coef"] or None, r["group"] or None
        if r.get("dpar"):
            raise ValueError(f"a prior on a predicted distributional parameter ({r['dpar']}) is not part of this "
                             "comparison")
        p = hierfit.prior(r["prior"], class_=cls, coef=coef, group=group)
        hierfit_priors.append(p)
        name, bp = translate(cls, coef, group, p)
        if name not in terms:
            raise ValueError(f"hierfit's {cls} {coef or ''} {group or ''} has no bambi term (terms: {list(terms)})")
        if name in bambi_priors and repr(bambi_priors[name]) != repr(bp):
            raise ValueError(f"bambi term {name!r} holds coefficients with different hierfit priors")
        bambi_priors[name] = bp
        rows.append({"class": cls, "coef": coef or "", "group": group or "", "hierfit prior": str(p.dist),
                     "bambi term": name, "bambi prior": repr(bp)})
    missing = set(terms) - set(bambi_priors)
    if missing:
        raise ValueError(f"bambi terms without a matched prior: {sorted(missing)}")
    return hierfit_priors, bambi_priors, pd.DataFrame(rows)


def check_taken_up(table: pd.DataFrame, again: pd.DataFrame) -> None:
    """ValueError unless hierfit's table with the explicit priors equals its defaults, every row from the user."""
    if list(again["prior"]) != list(table["prior"]) or not (again["source"] == "user").all():
        raise ValueError("hierfit did not take up the explicit priors as its defaults")


def factor_of(group: str) -> str:
    """The grouping factor of a hierfit group term: ``school.1`` (the second block of a ``||`` term) is ``school``."""
    return re.sub(r"\.\d+$", "", group)


def term_levels(term, name: str, coef: str) -> bool:
    """True when hierfit's coefficient ``coef`` (R naming, e.g. ``sexM``) belongs to bambi term ``name``."""
    levels = getattr(term, "levels", None) if getattr(term, "categorical", False) else None
    return bool(levels) and coef in {f"{name}{lev}" for lev in levels}


# -- fitting ---------------------------------------------------------------------------------------
def fit_hierfit(formula: str, data: pd.DataFrame, priors, draws: int, tune: int, chains: int, seed: int,
                cores: int = 2):
    """``hierfit.fit`` with the given priors and its default sampler."""
    import hierfit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hierfit.fit(formula, data, priors=priors, draws=draws, tune=tune, chains=chains, seed=seed,
                           cores=cores, progressbar=False)


def fit_bambi(model, draws: int, tune: int, chains: int, seed: int, cores: int = 2):
    """``model.fit`` with nutpie's NUTS; returns bambi's DataTree."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(draws=draws, tune=tune, chains=chains, cores=cores, random_seed=seed,
                         inference_method="nutpie", progressbar=False)


# -- posterior summaries ---------------------------------------------------------------------------
def _sample_sd(da) -> np.ndarray:
    return np.asarray(da.std(("chain", "draw"), ddof=1))


def _locate(draws, prefix: str, coef: str, means: np.ndarray, level_labels=None):
    """The posterior variable ``prefix*`` whose ``coef`` slice has the given posterior means.

    The accessors (fixef, VarCorr, ranef) give the means; the draws give MCSEs.  Matching
    on the means ties each MCSE to its quantity without relying on internal names.
    """
    found = []
    for var in draws.data_vars:
        if not var.startswith(prefix):
            continue
        da = draws[var]
        cdims = [d for d in da.dims if d.endswith("__coef") and coef in list(da[d].values)]
        if not cdims:
            continue
        da = da.sel({cdims[0]: coef})
        ldims = [d for d in da.dims if d not in ("chain", "draw")]
        if level_labels is not None:
            if len(ldims) != 1:
                continue
            da = da.assign_coords({ldims[0]: [str(v) for v in da[ldims[0]].values]}).sel({ldims[0]: level_labels})
        elif ldims:
            continue
        if np.allclose(np.asarray(da.mean(("chain", "draw"))), means, rtol=1e-9, atol=1e-12):
            found.append((var, da))
    if len(found) != 1:
        raise LookupError(f"{len(found)} posterior variables {prefix}* match coefficient {coef!r}")
    return found[0]


def hierfit_estimates(fit) -> pd.DataFrame:
    """One row per summary quantity: label, kind, mean, sd and MCSE of the mean.

    Means come from ``fixef()``, ``VarCorr()`` and ``ranef()``; posterior sds and MCSEs
    from the draws (``fit.draws``) of the same quantities.
    """
    import arviz as az

    draws = fit.draws
    rows = []

    def add(kind, label, mean, da):
        mcse = float(az.mcse(da.to_dataset(name="x"), method="mean")["x"])
        rows.append({"label": label, "kind": kind, "mean": float(mean), "sd": float(_sample_sd(da)), "mcse": mcse})

    fe = fit.fixef()
    for coef in fe.index:
        if coef.startswith("Intercept[") and "b_Intercept" in draws:  # ordinal thresholds, brms's Intercept[k]
            thr = draws["b_Intercept"]
            da = thr.isel({thr.dims[-1]: int(coef[len("Intercept["):-1]) - 1})
        else:
            da = draws["b"].sel(coef=coef)
        if not np.isclose(float(da.mean()), fe.loc[coef, "Estimate"], rtol=1e-9):
            raise LookupError(f"fixef()'s {coef} is not the mean of b[{coef}]")
        add("fixed", coef, fe.loc[coef, "Estimate"], da)
    for r in fit.VarCorr().itertuples(index=False):
        if r.var2 is not None:
            raise ValueError("correlated group effects are not part of this comparison")
        if r.grp == "Residual":
            add("sigma", "sigma", r.sdcor, draws["sigma"])
            continue
        _, da = _locate(draws, "sd_", r.var1, np.array(r.sdcor))
        add("sd", f"sd({r.var1} | {factor_of(r.grp)})", r.sdcor, da)
    for factor, tab in fit.ranef().items():
        levels = [str(v) for v in tab.index]
        for coef in dict.fromkeys(tab.columns.get_level_values(0)):
            est = tab[(coef, "Estimate")].to_numpy()
            _, da = _locate(draws, "r_", coef, est, levels)
            mcse = az.mcse(da.to_dataset(name="x"), method="mean")["x"].values
            sds = _sample_sd(da)
            for lev, m, s, e in zip(levels, est, sds, mcse):
                rows.append({"label": f"r_{factor}[{lev},{coef}]", "kind": "group", "mean": float(m), "sd": float(s),
                             "mcse": float(e)})
    return pd.DataFrame(rows)


def bambi_estimates(idata) -> pd.DataFrame:
    """One row per posterior quantity of a bambi fit, labelled as in ``hierfit_estimates``.

    bambi's names: ``Intercept``, ``standLRT``, ``sex[M]`` (hierfit: ``sexM``), ``sigma``,
    ``1|school_sigma`` (sd of the school intercepts), ``1|school[level]`` (school effects),
    ``standLRT|school_sigma`` and ``standLRT|school[level]``.
    """
    import arviz as az

    post = idata["posterior"].to_dataset()
    mcse = az.mcse(post, method="mean")
    means = post.mean(("chain", "draw"))
    sds = post.std(("chain", "draw"), ddof=1)
    rows = []
    for var in post.data_vars:
        extra = [d for d in post[var].dims if d not in ("chain", "draw")]
        if len(extra) > 1:
            raise ValueError(f"bambi variable {var} has more than one non-sample dimension")
        dim = extra[0] if extra else None
        for lev in (post[var][dim].values if dim else [None]):
            sel = {dim: lev} if dim else {}
            if var == "sigma":
                kind, label = "sigma", "sigma"
            elif "|" in var and var.endswith("_sigma"):
                expr, factor = var[: -len("_sigma")].split("|")
                kind, label = "sd", f"sd({'(Intercept)' if expr == '1' else expr} | {factor})"
            elif "|" in var:
                expr, factor = var.split("|")
                kind, label = "group", f"r_{factor}[{lev},{'(Intercept)' if expr == '1' else expr}]"
            else:
                kind = "fixed"
                label = "(Intercept)" if var == "Intercept" else f"{var}{lev}" if dim else var
            rows.append({"label": label, "bambi name": f"{var}[{lev}]" if dim else var, "kind": kind,
                         "mean": float(means[var].sel(sel)), "sd": float(sds[var].sel(sel)),
                         "mcse": float(mcse[var].sel(sel))})
    return pd.DataFrame(rows)


def compare(hier: pd.DataFrame, bam: pd.DataFrame) -> pd.DataFrame:
    """Pair the quantities by label and add the difference in hierfit posterior sds.

    Columns: label, bambi name, kind, hierfit, bambi (posterior means), sd (hierfit's
    posterior sd), diff (hierfit - bambi), z (|diff| / sd) and mcse_diff.  Raises when a
    quantity is only on one side, so a renamed or dropped parameter cannot pass unnoticed.
    """
    only_h = sorted(set(hier["label"]) - set(bam["label"]))
    only_b = sorted(set(bam["label"]) - set(hier["label"]))
    if only_h or only_b or hier["label"].duplicated().any() or bam["label"].duplicated().any():
        raise ValueError(f"quantities do not pair up: hierfit only {only_h}, bambi only {only_b}")
    m = hier.merge(bam, on="label", suffixes=("_h", "_b"))
    if not (m["kind_h"] == m["kind_b"]).all():
        raise ValueError("a label names different kinds of quantity in the two tools")
    out = pd.DataFrame({"label": m["label"], "bambi name": m["bambi name"], "kind": m["kind_h"],
                        "hierfit": m["mean_h"], "bambi": m["mean_b"], "sd": m["sd_h"], "sd_bambi": m["sd_b"]})
    out["diff"] = out["hierfit"] - out["bambi"]
    out["z"] = out["diff"].abs() / out["sd"]
    out["mcse_diff"] = np.hypot(m["mcse_h"], m["mcse_b"])
    return out


# -- the benchmark ---------------------------------------------------------------------------------
def run_model(label: str, data: pd.DataFrame, draws: int, tune: int, chains: int, seed: int, cores: int) -> dict:
    """Fit one model with both tools and compare them."""
    import arviz as az

    formula, bformula = MODELS[label]
    hp, bp, prior_table = matched_priors(formula, bformula, data)
    fit = fit_hierfit(formula, data, hp, draws, tune, chains, seed, cores)
    model = bambi_model(bformula, data, bp)
    t0 = time.perf_counter()
    idata = fit_bambi(model, draws, tune, chains, seed, cores)
    bambi_seconds = time.perf_counter() - t0
    # what bambi actually holds, to show it took the priors
    prior_table["bambi holds"] = [repr(_bambi_terms(model)[t].prior) for t in prior_table["bambi term"]]
    post = idata["posterior"].to_dataset()
    stats = idata["sample_stats"].to_dataset()
    return {
        "label": label, "formula": formula, "bambi formula": bformula, "priors": prior_table,
        "table": compare(hierfit_estimates(fit), bambi_estimates(idata)),
        "hierfit": {"method": fit.method.name, "divergences": fit.n_divergent,
                    "max R-hat": float(fit.diagnostics["Rhat"].max()),
                    "min bulk ESS": float(fit.diagnostics["Bulk_ESS"].min()), "seconds": fit.timing["total"]},
        "bambi": {"method": "nutpie NUTS, non-centred school effects",
                  "divergences": int(np.asarray(stats["diverging"]).sum()),
                  "max R-hat": float(max(float(v.max()) for v in az.rhat(post).data_vars.values())),
                  "min bulk ESS": float(min(float(v.min()) for v in az.ess(post).data_vars.values())),
                  "seconds": bambi_seconds},
    }


def _md_label(text: str) -> str:
    return str(text).replace("|", "\\|")


def prior_table_lines(heading: str, models: str, priors: pd.DataFrame) -> list[str]:
    """A report's markdown section for one model's matched priors (the table of :func:`matched_priors` with
    the "bambi holds" column)."""
    lines = [f"### {heading}", "", models, "",
             "| class | coef | group | hierfit prior | bambi term | bambi holds |", "|---|---|---|---|---|---|"]
    for r in priors.itertuples(index=False):
        lines.append(f"| {r[0]} | {r[1]} | {r[2]} | `{r[3]}` | `{_md_label(r[4])}` | `{_md_label(r[6])}` |")
    return lines + [""]


def write_report(results: list[dict], path: Path, settings: str, command: str, seconds: float) -> None:
    """The markdown report: settings, the summary per model and quantity, priors, and every parameter."""
    import bambi as bmb

    from _revision import revision

    lines = ["# hierfit vs bambi", "",
             f"Generated by `{command}` on {time.strftime('%Y-%m-%d')} (hierfit at {revision()}, "
             f"bambi {bmb.__version__}); {settings}; {seconds:.0f} s in all.", "",
             "Both tools get hierfit's default priors for each model, written out explicitly "
             "(see *Priors* below). hierfit uses its default sampler (the collapsed sampler for these Gaussian "
             "models with one grouping factor); bambi samples with nutpie's NUTS and non-centred school effects.",
             "", f"z = |posterior mean hierfit - posterior mean bambi| / hierfit's posterior sd; target z < "
             f"{TOLERANCE}. MCSE(diff) = sqrt(MCSE_hierfit^2 + MCSE_bambi^2) of the two posterior means, also "
             "in hierfit posterior sds.", "",
             "## Summary", "",
             "| model | quantities | n | max z | mean z | max MCSE(diff) / sd | all z < 0.1 |",
             "|---|---|---|---|---|---|---|"]
    for res in results:
        tab = res["table"]
        for kind, g in tab.groupby(tab["kind"].map(KINDS), sort=False):
            lines.append(f"| {res['label']} | {kind} | {len(g)} | {g['z'].max():.3f} | {g['z'].mean():.3f} | "
                         f"{(g['mcse_diff'] / g['sd']).max():.3f} | {'yes' if (g['z'] < TOLERANCE).all() else 'no'} |")
    lines += ["", "## Sampler diagnostics", "",
              "| model | tool | sampler | divergences | max R-hat | min bulk ESS | seconds (compile + sample) |",
              "|---|---|---|---|---|---|---|"]
    for res in results:
        for tool in ("hierfit", "bambi"):
            d = res[tool]
            lines.append(f"| {res['label']} | {tool} | {d['method']} | {d['divergences']} | {d['max R-hat']:.4f} | "
                         f"{d['min bulk ESS']:.0f} | {d['seconds']:.1f} |")
    lines += ["", "## Priors", "",
              "hierfit's defaults (`hierfit.default_priors`), passed to `hierfit.fit(priors=...)` as they are (the "
              "script checks that hierfit takes each statement up and that they reproduce its default table) and "
              "to bambi as below. hierfit's sd and sigma priors are half-distributions (bounded at 0), so "
              "`student_t(3, 0, s)` there is bambi's `HalfStudentT(nu=3, sigma=s)`. Both put the `Intercept` "
              "prior on the intercept at the means of the predictors: hierfit samples with centred fixed-effect "
              "columns, and bambi does the same with `center_predictors=True` (its default), then reports "
              "the intercept at x = 0, as hierfit does. A group-level sd is the `sigma` of bambi's "
              "`Normal(mu=0, sigma=...)` prior for that group term. \"bambi holds\" is read back from the "
              "built bambi model.", ""]
    for res in results:
        lines += prior_table_lines(res["label"], f"hierfit: `{res['formula']}`; bambi: `{res['bambi formula']}`",
                                   res["priors"])
    lines += ["## Per parameter", ""]
    for res in results:
        lines += [f"### {res['label']}", "",
                  "| quantity | bambi name | hierfit mean | bambi mean | hierfit sd | z | MCSE(diff) |",
                  "|---|---|---|---|---|---|---|"]
        for r in res["table"].itertuples(index=False):
            lines.append(f"| `{_md_label(r.label)}` | `{_md_label(r[1])}` | {r.hierfit:.4f} | {r.bambi:.4f} | "
                         f"{r.sd:.4f} | {r.z:.3f} | {r.mcse_diff:.4f} |")
        lines.append("")
    path.write_text("\n".join(lines))


def main(argv=None) -> int:
    """Fit both models with both tools, print the summary and write the report.

    Example
    -------
    >>> main(["--draws", "500", "--tune", "500"])  # doctest: +SKIP
    0
    """
    import hierfit

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=5000)
    ap.add_argument("--tune", type=int, default=2000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS / "bambi_agreement.md")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    exam = hierfit.datasets.load("exam")
    results = []
    for label in MODELS:
        res = run_model(label, exam, args.draws, args.tune, args.chains, args.seed, args.cores)
        tab = res["table"]
        print(f"{label}: max z {tab['z'].max():.3f} over {len(tab)} quantities "
              f"(max MCSE(diff)/sd {(tab['mcse_diff'] / tab['sd']).max():.3f})", flush=True)
        results.append(res)
    settings = f"{args.chains} chains x {args.draws} draws after {args.tune} tune per tool, seed {args.seed}"
    command = "python benchmarks/bambi_agreement.py" + "".join(f" {a}" for a in (argv if argv is not None
                                                                                  else sys.argv[1:]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_report(results, args.out, settings, command, time.perf_counter() - t0)
    worst = max(r["table"]["z"].max() for r in results)
    print(f"wrote {args.out}; max z {worst:.3f} (target < {TOLERANCE})")
    return 0 if worst < TOLERANCE else 1


if __name__ == "__main__":
    raise SystemExit(main())
