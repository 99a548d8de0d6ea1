"""The printed summary, in the block order of lme4's ``summary(lmer(...))``.

Blocks: header, "Scaled residuals", "Random effects", "Number of obs ... groups",
"Fixed effects" (with Bayesian columns), "Correlation of Fixed Effects", warnings.
Each block is also available as a DataFrame on the :class:`Summary` object.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hierfit.results.draws import ci_columns

__all__ = ["Summary", "abbreviate", "format_column"]


def abbreviate(name: str, minlength: int = 6) -> str:
    """R's ``abbreviate()`` as used by lme4 for the fixed-effect correlation table.

    Drops lower-case vowels from the right, then lower-case letters, then truncates.

    Example
    -------
    >>> abbreviate("(Intercept)"), abbreviate("standLRT"), abbreviate("sexM")
    ('(Intr)', 'stnLRT', 'sexM')
    """
    if len(name) <= minlength:
        return name
    chars = list(name)

    def drop(pred):
        i = len(chars) - 1
        while len(chars) > minlength and i > 0:
            if pred(chars[i]):
                del chars[i]
            i -= 1

    drop(lambda c: c in "aeiou")
    drop(lambda c: c.islower())
    return "".join(chars[:max(minlength, 1)]) if len(chars) > minlength else "".join(chars)


def format_column(values, digits: int = 4) -> list[str]:
    """Format numbers like R's ``format(x, digits=4)``: a common number of decimals.

    Example
    -------
    >>> format_column([0.07639, 0.55947, -0.17136])
    ['0.07639', '0.55947', '-0.17136']
    >>> format_column([5.583, 2.663, -2.068e-05])
    ['5.583e+00', '2.663e+00', '-2.068e-05']
    """
    vals = [float(v) for v in values]
    finite = [abs(v) for v in vals if math.isfinite(v) and v != 0]
    if not finite:
        return ["0" if v == 0 else str(v) for v in vals]
    decimals = max(max(0, digits - 1 - math.floor(math.log10(a))) for a in finite)
    if decimals > 7 or max(finite) >= 1e7:
        return [f"{v:.{digits - 1}e}" if math.isfinite(v) else str(v) for v in vals]
    return [f"{v:.{decimals}f}" if math.isfinite(v) else str(v) for v in vals]


def _fmt_int(values) -> list[str]:
    return ["NA" if not math.isfinite(v) else f"{int(round(v))}" for v in values]


def text_table(header: list[str], columns: list[list[str]], row_names: list[str], align_left: set[int] = frozenset()) -> list[str]:
    """Render an aligned text table (R's print.data.frame style)."""
    rn_width = max([len(r) for r in row_names] + [0])
    widths = [max(len(h), *(len(c) for c in col)) if col else len(h) for h, col in zip(header, columns)]
    lines = [" " * rn_width + " " + " ".join(
        h.ljust(w) if i in align_left else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    for r, name in enumerate(row_names):
        cells = [col[r].ljust(w) if i in align_left else col[r].rjust(w)
                 for i, (col, w) in enumerate(zip(columns, widths))]
        lines.append(name.ljust(rn_width) + " " + " ".join(cells))
    return [ln.rstrip() for ln in lines]


@dataclass
class Summary:
    """The lme4-style summary of a fit; ``print(summary)`` shows it as text.

    Attributes
    ----------
    header : dict
        family, formula, data, nobs, chains, draws, tune, sampler, divergences, parametrization
    scaled_residuals : pandas.Series
        Min, 1Q, Median, 3Q, Max of (y - posterior-mean fitted) / posterior-mean sigma.
    random_effects : pandas.DataFrame
        Groups, Name, Variance, Std.Dev., interval of Std.Dev., and correlations.
    varcorr : pandas.DataFrame
        lme4's ``as.data.frame(VarCorr())`` layout.
    ngrps : dict
    fixed_effects : pandas.DataFrame
        Estimate, Est.Error, l-95% CI, u-95% CI, Rhat, Bulk_ESS, Tail_ESS.
    fixef_correlation : pandas.DataFrame
        Posterior correlations of the fixed effects.
    diagnostics : pandas.DataFrame
        R-hat and ESS of every reported parameter (sds and correlations included).
    warnings : list of str
    """

    header: dict
    scaled_residuals: pd.Series
    random_effects: pd.DataFrame
    varcorr: pd.DataFrame
    ngrps: dict
    fixed_effects: pd.DataFrame
    fixef_correlation: pd.DataFrame
    diagnostics: pd.DataFrame
    distributional: pd.DataFrame = field(default_factory=pd.DataFrame)
    smooth_terms: pd.DataFrame = field(default_factory=pd.DataFrame)
    warnings: list[str] = field(default_factory=list)
    ci: float = 0.95

    # -- text -------------------------------------------------------------------------
    def _header_lines(self) -> list[str]:
        h = self.header
        kind = "linear" if h["family"].startswith("gaussian ( identity") else "generalized linear"
        lines = [
            f"Bayesian {kind} mixed model fit by NUTS ({h['sampler']}) ['hierfit']",
            f" Family: {h['family']}",
            f"Formula: {h['formula']}",
            f"   Data: {h['data']} (Number of observations: {h['nobs']})",
            f"  Draws: {h['chains']} chains, each with iter = {h['tune'] + h['draws']}; warmup = {h['tune']}; "
            f"post-warmup draws = {h['chains'] * h['draws']}",
            f"         {h['divergences']} divergent transitions; seed = {h['seed']}",
        ]
        if h.get("extended"):
            lines.append(f"         {h['extended']}")
        if h.get("dropped"):
            lines.append(f"  Note: {h['dropped']}")
        if h.get("method"):
            lines.append(f"  Method: {h['method']}")
        if h.get("parametrization") and not str(h.get("method", "")).startswith("collapsed"):
            lines.append("  Group effects: " + h["parametrization"][0])
            lines += ["                 " + p for p in h["parametrization"][1:]]
        return lines

    def _residual_lines(self) -> list[str]:
        vals = format_column(self.scaled_residuals.values)
        width = max(len(v) for v in vals + list(self.scaled_residuals.index))
        kind = self.header.get("residuals")
        title = "Scaled (Pearson) residuals: " if kind == "pearson" else \
            "Scaled residuals: " if kind in (None, "scaled") else f"Scaled residuals, {kind}: "
        if self.header.get("residuals_note"):
            title += f"({self.header['residuals_note']})"
        return [title,
                " ".join(n.rjust(width) for n in self.scaled_residuals.index) + " ",
                " ".join(v.rjust(width) for v in vals) + " "]

    def _random_lines(self) -> list[str]:
        re_ = self.random_effects
        lcol, ucol = ci_columns(self.ci)
        cor_cols = [c for c in re_.columns if c.startswith("Corr")]
        header = ["Groups", "Name", "Variance", "Std.Dev.", lcol, ucol] + (["Corr"] + [""] * (len(cor_cols) - 1) if cor_cols else [])
        cols = [
            list(re_["Groups"]),
            list(re_["Name"]),
            format_column(re_["Variance"]),
            format_column(re_["Std.Dev."]),
            format_column(re_[lcol]),
            format_column(re_[ucol]),
        ]
        for c in cor_cols:
            cols.append(["" if not np.isfinite(v) else f"{v:.2f}" for v in re_[c]])
        lines = text_table(header, cols, [""] * len(re_), align_left={0, 1})
        lines = [ln[1:] if ln.startswith(" ") else ln for ln in lines]
        ng = ", ".join(f"{k}, {v}" for k, v in self.ngrps.items())
        return ["Random effects:"] + [" " + ln for ln in lines] + [
            f"Number of obs: {self.header['nobs']}, groups:  {ng}" if ng else f"Number of obs: {self.header['nobs']}"
        ]

    def _fixed_lines(self) -> list[str]:
        fe = self.fixed_effects
        if fe.empty:
            return ["No fixed effect coefficients"]
        cols = [format_column(fe[c]) for c in fe.columns[:4]]
        cols.append([f"{v:.2f}" if np.isfinite(v) else "NA" for v in fe["Rhat"]])
        cols.append(_fmt_int(fe["Bulk_ESS"]))
        cols.append(_fmt_int(fe["Tail_ESS"]))
        return ["Fixed effects:"] + text_table(list(fe.columns), cols, list(fe.index))

    def _smooth_lines(self) -> list[str]:
        st = self.smooth_terms
        if st is None or st.empty:
            return []
        cols = [format_column(st[c]) for c in st.columns[:4]]
        cols.append([f"{v:.2f}" if np.isfinite(v) else "NA" for v in st["Rhat"]])
        cols.append(_fmt_int(st["Bulk_ESS"]))
        cols.append(_fmt_int(st["Tail_ESS"]))
        return ["Smooth Terms:"] + text_table(list(st.columns), cols, list(st.index))

    def _dist_lines(self) -> list[str]:
        dd = self.distributional
        if dd is None or dd.empty:
            return []
        cols = [format_column(dd[c]) for c in dd.columns[:4]]
        cols.append([f"{v:.2f}" if np.isfinite(v) else "NA" for v in dd["Rhat"]])
        cols.append(_fmt_int(dd["Bulk_ESS"]))
        cols.append(_fmt_int(dd["Tail_ESS"]))
        note = ["(coefficients of distributional formulas are on their link scale: logit for zi and hu, "
                "log for the others)"] if any("_" in n for n in dd.index) else []
        return ["Distributional parameters:"] + text_table(list(dd.columns), cols, list(dd.index)) + note

    def _corr_lines(self) -> list[str]:
        c = self.fixef_correlation
        if c.shape[0] < 2:
            return []
        names = list(c.index)
        abbr = [abbreviate(n) for n in names]
        header = abbr[:-1]
        cols = []
        for j in range(len(names) - 1):
            cols.append(["" if i <= j else f"{c.iloc[i, j]:.3f}" for i in range(1, len(names))])
        return ["Correlation of Fixed Effects:"] + text_table(header, cols, names[1:], align_left=set())

    def to_text(self) -> str:
        """The whole summary as text (what ``print`` shows)."""
        blocks = [self._header_lines(), self._residual_lines(), self._random_lines(), self._fixed_lines()]
        if self._smooth_lines():
            blocks.insert(3, self._smooth_lines())
        if self._dist_lines():
            blocks.append(self._dist_lines())
        corr = self._corr_lines()
        if corr:
            blocks.append(corr)
        if self.warnings:
            blocks.append(["Warnings:"] + [f"  * {w}" for w in self.warnings])
        return "\n\n".join("\n".join(b) for b in blocks) + "\n"

    def __str__(self) -> str:
        return self.to_text()

    __repr__ = __str__

    # -- HTML (Jupyter) -----------------------------------------------------------------
    def _repr_html_(self) -> str:
        h = self.header
        parts = [
            "<div class='hierfit-summary'>",
            f"<p><b>Bayesian mixed model</b> fit by NUTS ({html.escape(h['sampler'])})<br>"
            f"Family: {html.escape(h['family'])}<br>Formula: <code>{html.escape(h['formula'])}</code><br>"
            f"Data: {html.escape(str(h['data']))} ({h['nobs']} observations); {h['chains']} chains x {h['draws']} draws; "
            f"{h['divergences']} divergences</p>",
            "<p><b>Scaled residuals</b></p>",
            self.scaled_residuals.to_frame().T.to_html(index=False, float_format=lambda v: f"{v:.4f}"),
            "<p><b>Random effects</b></p>",
            self.random_effects.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}"),
            "<p>Number of obs: {}, groups: {}</p>".format(
                h["nobs"], html.escape(", ".join(f"{k}, {v}" for k, v in self.ngrps.items()))),
            "<p><b>Fixed effects</b></p>",
            self.fixed_effects.to_html(float_format=lambda v: f"{v:.4g}"),
        ]
        if self.distributional is not None and not self.distributional.empty:
            parts += ["<p><b>Distributional parameters</b></p>",
                      self.distributional.to_html(float_format=lambda v: f"{v:.4g}")]
        if self.fixef_correlation.shape[0] >= 2:
            parts += ["<p><b>Correlation of Fixed Effects</b></p>",
                      self.fixef_correlation.to_html(float_format=lambda v: f"{v:.3f}")]
        if self.warnings:
            parts += ["<p><b>Warnings</b></p><ul>"] + [f"<li>{html.escape(w)}</li>" for w in self.warnings] + ["</ul>"]
        parts.append("</div>")
        return "\n".join(parts)


def random_effects_block(varcorr: pd.DataFrame, design, ci: float) -> pd.DataFrame:
    """lme4's "Random effects" table: one row per sd, correlations in columns Corr1..

    Example
    -------
    >>> # random_effects_block(fit.VarCorr(), fit.design, 0.95)[["Groups", "Name", "Std.Dev."]]
    """
    lcol, ucol = ci_columns(ci)
    max_q = max([b.n_coefs for b in design.all_blocks if b.is_correlated] + [1])
    records = varcorr.to_dict("records")  # a handful of rows: plain dicts beat repeated DataFrame filters
    rows = []
    for blk in design.all_blocks:
        label = design.predictors[blk.dpar].label
        sub = [r for r in records if r["grp"] == blk.name]
        names = [label(c) for c in blk.coefs]
        sds = [r for r in sub if pd.isna(r["var2"]) and r["var1"] in names]
        cors = [r for r in sub if not pd.isna(r["var2"])]
        for k, r in enumerate(sds):
            row = {"Groups": blk.name if k == 0 else "", "Name": r["var1"], "Variance": r["vcov"],
                   "Std.Dev.": r["sdcor"], lcol: r[lcol], ucol: r[ucol]}
            for j in range(max_q - 1):
                val = np.nan
                if blk.is_correlated and j < k:
                    m = [c for c in cors if c["var1"] == names[j] and c["var2"] == names[k]]
                    val = float(m[0]["sdcor"]) if m else np.nan
                row[f"Corr{j + 1}"] = val
            rows.append(row)
    for r in records:
        if r["grp"] != "Residual":
            continue
        row = {"Groups": "Residual", "Name": "", "Variance": r["vcov"], "Std.Dev.": r["sdcor"],
               lcol: r[lcol], ucol: r[ucol]}
        row.update({f"Corr{j + 1}": np.nan for j in range(max_q - 1)})
        rows.append(row)
    cols = ["Groups", "Name", "Variance", "Std.Dev.", lcol, ucol] + [f"Corr{j + 1}" for j in range(max_q - 1)]
    return pd.DataFrame(rows, columns=cols)
