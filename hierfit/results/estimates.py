"""lme4's accessors on a posterior: fixef, ranef, coef, VarCorr, vcov.

Each function takes the posterior (an xarray Dataset of draws) and the design,
and returns posterior summaries with lme4's/brms's names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierfit.results.draws import interval_table, stack
from hierfit.spec.smooths import SMOOTH_COEF, smooth_var

__all__ = ["fixef_table", "dpar_table", "ranef_tables", "coef_tables", "varcorr_table", "vcov_table",
           "has_residual_sigma", "VarCorrTable", "smooth_table"]


def fixef_table(posterior, design, ci: float = 0.95, dpars: bool = True) -> pd.DataFrame:
    """Estimate, Est.Error and interval of each fixed effect, indexed by lme4's names.

    Coefficients of distributional formulas follow, labelled ``sigma_(Intercept)`` etc.
    (log scale), unless ``dpars=False``.
    """
    samples, names = [], []
    for pred in design.predictors.values():
        if pred.n_thresholds:  # ordinal: the thresholds Intercept[1] ... stand where the intercept would
            samples.append(stack(posterior, pred.var("b_Intercept")))
            names += [pred.label(n) for n in pred.threshold_names]
        if pred.fixed_names and (dpars or pred.dpar == "mu"):
            keep = [j for j, n in enumerate(pred.fixed_names) if not SMOOTH_COEF.match(n)]  # smooths: see smooth_table
            arr = stack(posterior, pred.var("b"))
            samples.append(arr if len(keep) == arr.shape[1] else arr[:, keep])
            names += [pred.label(pred.fixed_names[j]) for j in keep]
    return interval_table(np.concatenate(samples, axis=1) if samples else np.zeros((2, 0)), names, ci)


def smooth_table(posterior, design, ci: float = 0.95) -> pd.DataFrame:
    """brms's "Smooth Terms": the sd of each penalised smooth, ``sds(sx_1)``, with R-hat and ESS."""
    from hierfit.results.diagnostics import ess_bulk, ess_tail, rhat

    names, arrays = [], []
    for pred in design.predictors.values():
        for label in pred.smooths:
            names.append(f"sds({pred.label(label)})")
            arrays.append(np.asarray(posterior[pred.var(smooth_var("sds", label))].values))
    if not names:
        return interval_table(np.zeros((2, 0)), [], ci)
    tab = interval_table(np.stack([a.reshape(-1) for a in arrays], axis=1), names, ci)
    tab["Rhat"] = [float(rhat(a)) for a in arrays]
    tab["Bulk_ESS"] = [float(ess_bulk(a)) for a in arrays]
    tab["Tail_ESS"] = [float(ess_tail(a)) for a in arrays]
    return tab


def dpar_table(posterior, design, ci: float = 0.95, skip: tuple[str, ...] = ()) -> pd.DataFrame:
    """Scalar distributional parameters (sigma, shape, nu) without their own formula."""
    names = [d.name for d in design.family.dpars if d.name not in design.predictors and d.name not in skip]
    if not names:
        return interval_table(np.zeros((2, 0)), [], ci)
    return interval_table(np.stack([stack(posterior, n) for n in names], axis=1), names, ci)


def _by_factor(design):
    """Blocks grouped by grouping factor (``school`` and ``school.1`` together), lme4 order."""
    groups: dict[str, list] = {}
    for blk in sorted(design.all_blocks, key=lambda b: -b.n_levels):
        groups.setdefault(blk.factor, []).append(blk)
    return groups


def _per_level_table(samples: dict[str, np.ndarray], levels: list[str], ci: float) -> pd.DataFrame:
    """DataFrame indexed by level with (coef, stat) columns from {coef: (S, levels)} draws."""
    frames = {coef: interval_table(s, levels, ci) for coef, s in samples.items()}
    out = pd.concat(frames, axis=1)
    out.index.name = "level"
    return out


def _add_group_effects(samples: dict[str, np.ndarray], posterior, design, blocks) -> None:
    for blk in blocks:
        r = stack(posterior, f"r_{blk.key}")
        label = design.predictors[blk.dpar].label
        for k, c in enumerate(blk.coefs):
            name = label(c)
            samples[name] = samples.get(name, 0) + r[:, :, k]


def ranef_tables(posterior, design, ci: float = 0.95) -> dict[str, pd.DataFrame]:
    """Group effects (deviations from the fixed effects) per grouping factor.

    Each DataFrame is indexed by level with a column MultiIndex (coef, statistic).
    ``tab.xs("Estimate", axis=1, level=1)`` gives lme4's ``ranef()`` layout.
    """
    out: dict[str, pd.DataFrame] = {}
    for factor, blocks in _by_factor(design).items():
        samples: dict[str, np.ndarray] = {}
        _add_group_effects(samples, posterior, design, blocks)
        out[factor] = _per_level_table(samples, blocks[0].levels, ci)
    return out


def coef_tables(posterior, design, ci: float = 0.95) -> dict[str, pd.DataFrame]:
    """Fixed plus group effects per level (lme4's ``coef()``), with posterior intervals.

    Coefficients without a group effect for that factor are the fixed effect itself.
    """
    out: dict[str, pd.DataFrame] = {}
    for factor, blocks in _by_factor(design).items():
        nlev = blocks[0].n_levels
        samples: dict[str, np.ndarray] = {}
        for pred in design.predictors.values():
            if pred.fixed_names:
                b = stack(posterior, pred.var("b"))
                for j, n in enumerate(pred.fixed_names):
                    samples[pred.label(n)] = np.repeat(b[:, [j]], nlev, axis=1)
        _add_group_effects(samples, posterior, design, blocks)
        out[factor] = _per_level_table(samples, blocks[0].levels, ci)
    return out


def varcorr_table(posterior, design, ci: float = 0.95, residual: bool = True) -> pd.DataFrame:
    """lme4's ``as.data.frame(VarCorr(m))`` with posterior means and an interval for sdcor.

    Columns: grp, var1, var2 (None except for correlation rows), vcov, sdcor and
    the interval of sdcor.  Rows: sds then correlations per term, then Residual
    (for families with a scalar sigma).
    """
    from hierfit.results.draws import ci_columns

    lcol, ucol = ci_columns(ci)
    lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
    rows = []

    def row(grp, v1, v2, vcov_draws, sdcor_draws):
        q = np.quantile(sdcor_draws, [lo, hi])
        rows.append({"grp": grp, "var1": v1, "var2": v2, "vcov": float(np.mean(vcov_draws)),
                     "sdcor": float(np.mean(sdcor_draws)), lcol: float(q[0]), ucol: float(q[1])})

    for blk in design.all_blocks:
        label = design.predictors[blk.dpar].label
        sd = stack(posterior, f"sd_{blk.key}")
        for k, c in enumerate(blk.coefs):
            row(blk.name, label(c), None, sd[:, k] ** 2, sd[:, k])
        if blk.is_correlated:
            cor = stack(posterior, f"cor_{blk.key}")
            for i in range(blk.n_coefs):
                for j in range(i + 1, blk.n_coefs):
                    row(blk.name, label(blk.coefs[i]), label(blk.coefs[j]), sd[:, i] * sd[:, j] * cor[:, i, j],
                        cor[:, i, j])
    if residual and has_residual_sigma(design):
        s = stack(posterior, "sigma")
        row("Residual", None, None, s**2, s)
    out = VarCorrTable(rows, columns=["grp", "var1", "var2", "vcov", "sdcor", lcol, ucol])
    for col in ("var1", "var2"):
        out[col] = pd.Series([v if isinstance(v, str) else None for v in out[col]], dtype=object)
    return out


def has_residual_sigma(design) -> bool:
    """True when the family has a scalar residual sd (gaussian/student without a sigma formula)."""
    return "sigma" in design.family.dpar_names and "sigma" not in design.predictors


def vcov_table(posterior, design) -> pd.DataFrame:
    """Posterior covariance matrix of the fixed effects (lme4's ``vcov()``)."""
    b = stack(posterior, "b")
    cov = np.cov(b, rowvar=False).reshape(len(design.fixed_names), len(design.fixed_names))
    return pd.DataFrame(cov, index=design.fixed_names, columns=design.fixed_names)


class VarCorrTable(pd.DataFrame):
    """lme4's ``as.data.frame(VarCorr(m))`` as a DataFrame that prints like ``print(VarCorr(m))``.

    The columns are those of the data frame (grp, var1, var2, vcov, sdcor and the
    interval of sdcor); ``print`` and Jupyter show lme4's layout instead: one row per
    standard deviation, the correlations to its right.

    Example
    -------
    >>> vc = VarCorrTable({"grp": ["school", "school", "school", "Residual"],
    ...                    "var1": ["(Intercept)", "standLRT", "(Intercept)", None],
    ...                    "var2": [None, None, "standLRT", None],
    ...                    "vcov": [0.0942, 0.0162, 0.0192, 0.5508], "sdcor": [0.3053, 0.1257, 0.50, 0.7421],
    ...                    "l-95% CI": [0.25, 0.0899, 0.21, 0.7262], "u-95% CI": [0.3732, 0.1665, 0.75, 0.7583]})
    >>> list(vc.lme4_layout()["Name"])
    ['(Intercept)', 'standLRT', '']
    >>> print(vc)  # doctest: +NORMALIZE_WHITESPACE
     Groups   Name        Variance Std.Dev. l-95% CI u-95% CI Corr
     school   (Intercept)  0.09420   0.3053  0.25000   0.3732
              standLRT     0.01620   0.1257  0.08990   0.1665 0.50
     Residual              0.55080   0.7421  0.72620   0.7583
    """

    @property
    def _constructor(self):
        return VarCorrTable

    def _ci_columns(self) -> tuple[str, str] | None:
        lo = [c for c in self.columns if isinstance(c, str) and c.startswith("l-") and c.endswith("CI")]
        hi = [c for c in self.columns if isinstance(c, str) and c.startswith("u-") and c.endswith("CI")]
        return (lo[0], hi[0]) if lo and hi else None

    def _has_layout(self) -> bool:
        return ({"grp", "var1", "var2", "vcov", "sdcor"} <= set(self.columns) and self._ci_columns() is not None
                and bool(self["var2"].isna().any()))

    def lme4_layout(self) -> pd.DataFrame:
        """The table as lme4 prints it: Groups, Name, Variance, Std.Dev., interval, Corr1, Corr2, ...

        Example
        -------
        >>> fit.VarCorr().lme4_layout()  # doctest: +SKIP
        """
        lcol, ucol = self._ci_columns()
        rows, max_q = [], 1
        groups = list(dict.fromkeys(self["grp"]))
        for grp in groups:
            sub = self[self["grp"] == grp]
            sds = sub[sub["var2"].isna()]
            max_q = max(max_q, len(sds))
        for grp in groups:
            sub = self[self["grp"] == grp]
            sds = sub[sub["var2"].isna()]
            cors = sub[sub["var2"].notna()]
            names = [v if isinstance(v, str) else "" for v in sds["var1"]]
            for k, (_, r) in enumerate(sds.iterrows()):
                row = {"Groups": grp if k == 0 else "", "Name": names[k], "Variance": r["vcov"],
                       "Std.Dev.": r["sdcor"], lcol: r[lcol], ucol: r[ucol]}
                for j in range(max_q - 1):
                    m = cors[(cors["var1"] == names[j]) & (cors["var2"] == names[k])] if j < k else cors.iloc[0:0]
                    row[f"Corr{j + 1}"] = float(m["sdcor"].iloc[0]) if len(m) else np.nan
                rows.append(row)
        cols = ["Groups", "Name", "Variance", "Std.Dev.", lcol, ucol] + [f"Corr{j + 1}" for j in range(max_q - 1)]
        return pd.DataFrame(rows, columns=cols)

    def to_text(self) -> str:
        """lme4's layout as text (what ``print`` shows).

        Example
        -------
        >>> print(fit.VarCorr().to_text())  # doctest: +SKIP
         Groups   Name        Variance Std.Dev. l-95% CI u-95% CI Corr
         school   (Intercept)  0.09330   0.3038  0.24743   0.3723
        ...
        """
        from hierfit.results.summary import text_table, format_column

        lay = self.lme4_layout()
        lcol, ucol = self._ci_columns()
        cor_cols = [c for c in lay.columns if c.startswith("Corr")]
        cor_used = [c for c in cor_cols if lay[c].notna().any()]
        header = ["Groups", "Name", "Variance", "Std.Dev.", lcol, ucol] + \
            (["Corr"] + [""] * (len(cor_used) - 1) if cor_used else [])
        cols = [list(lay["Groups"]), list(lay["Name"])] + \
            [format_column(lay[c]) for c in ("Variance", "Std.Dev.", lcol, ucol)]
        for c in cor_used:
            cols.append(["" if not np.isfinite(v) else f"{v:.2f}" for v in lay[c]])
        lines = text_table(header, cols, [""] * len(lay), align_left={0, 1})
        return "\n".join(" " + ln[1:] if ln.startswith(" ") else ln for ln in lines)

    def __repr__(self) -> str:
        if not self._has_layout() or self.empty:
            return super().__repr__()
        return self.to_text()

    def _repr_html_(self) -> str:
        if not self._has_layout() or self.empty:
            return super()._repr_html_()
        lay = self.lme4_layout()
        lay = lay[[c for c in lay.columns if not c.startswith("Corr") or lay[c].notna().any()]]
        return ("<div class='hierfit-varcorr'><p><b>Variance components</b> (posterior means; interval of "
                "the Std.Dev.)</p>" + lay.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}")
                + "</div>")

