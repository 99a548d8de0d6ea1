"""Build the plot gallery: every plot of hierfit on the Exam data, and the page that shows them.

Fits the chapter's Exam models, draws each plot, writes the PNGs to ``OUT/gallery/``
and the page ``OUT/gallery.md`` (each picture with the call that made it).

Run (from the repository root):

    ./dev run python docs/make_gallery.py                 # 4 chains x 1000 draws, into docs/
    ./dev run python docs/make_gallery.py --draws 100 --out /tmp/gallery   # a quick check
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
DPI = 80

INTRO = """# Gallery

Every plot of hierfit, drawn from the chapter's Exam data (4,059 students in 65
London schools).  Each picture shows the call that made it; all plots are
matplotlib figures, so `fig.savefig("name.png")` saves them and they display in
Jupyter.  The page is made by `docs/make_gallery.py` ({draws} draws x {chains} chains per fit):

```python
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import hierfit

exam = hierfit.datasets.load("exam")
fit_ri = hierfit.fit("normexam ~ standLRT + sex + (1 | school)", exam, seed=1)
fit_rs = hierfit.fit("normexam ~ standLRT + sex + (standLRT | school)", exam, seed=1)
```
"""


def _fit(formula, data, draws, chains, seed, **kw):
    import hierfit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hierfit.fit(formula, data, draws=draws, tune=draws, chains=chains, seed=seed, progressbar=False, **kw)


def _call(fit, name, *args, **kwargs):
    """``fit.<name>(...)`` when the fit has the plot methods, else the function of hierfit.plots."""
    import hierfit.plots

    method = getattr(fit, name, None)
    if method is not None:
        return method(*args, **kwargs)
    return getattr(hierfit.plots, name)(fit, *args, **kwargs)


def _prior_sensitivity(fit_default, fit_tight, tight_text):
    """Two priors side by side: prior/posterior of the school sd, and the shrinkage scatter."""
    import matplotlib.pyplot as plt

    from hierfit.plots import plot_prior_posterior, plot_shrinkage

    fig, axes = plt.subplots(2, 2, figsize=(10, 7.6), layout="constrained")
    for row, (fit, label) in enumerate(((fit_default, "default prior"), (fit_tight, f"prior {tight_text}"))):
        plot_prior_posterior(fit, var="sd", ax=axes[row, 0], label=label)
        plot_shrinkage(fit, term="school", view="scatter", ax=axes[row, 1])
        axes[row, 1].set_title(f"{label}: shrinkage of the school intercepts", fontsize=10)
    lims = [min(a.get_ylim()[0] for a in axes[:, 1]), max(a.get_ylim()[1] for a in axes[:, 1])]
    for a in axes[:, 1]:
        a.set_ylim(*lims)
    return fig


def _conditional_vs_marginal(fit, schools=(22, 41, 48)):
    """Marginal prediction (re_form=NA) and conditional predictions for a few schools, with 95 % bands."""
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    import hierfit

    grid = np.linspace(-3, 3, 40)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    new = pd.DataFrame({"standLRT": grid, "sex": "F", "school": schools[0]})
    marg = fit.predict(new, re_form=hierfit.NA)
    ax.fill_between(grid, marg["l-95% CI"], marg["u-95% CI"], color="black", alpha=0.15)
    ax.plot(grid, marg["Estimate"], color="black", lw=2.5, label="marginal: re_form=hierfit.NA")
    for k, school in enumerate(schools):
        cond = fit.predict(new.assign(school=school))
        color = f"C{k}"
        ax.fill_between(grid, cond["l-95% CI"], cond["u-95% CI"], color=color, alpha=0.15)
        ax.plot(grid, cond["Estimate"], color=color, lw=1.5, label=f"conditional: school {school}")
    ax.set_xlabel("standLRT")
    ax.set_ylabel("normexam (expected, girls)")
    ax.set_title("Conditional vs marginal predictions")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def _shrink_png(path: Path) -> None:
    """Re-save with a 256-colour palette, so the committed pictures stay small."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def build(out: Path, draws: int = 1000, chains: int = 4, verbose: bool = True) -> list[dict]:
    """Fit the models, draw every plot into ``out/gallery/`` and write ``out/gallery.md``.

    Returns the list of entries (name, file, call, text).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import hierfit
    from hierfit.plots.pooling import shrinkage_path
    from hierfit.plots.shrinkage import _explorer_figure

    out = Path(out)
    img = out / "gallery"
    img.mkdir(parents=True, exist_ok=True)
    exam = hierfit.datasets.load("exam")
    t0 = time.perf_counter()
    fit_ri = _fit("normexam ~ standLRT + sex + (1 | school)", exam, draws, chains, seed=1)
    fit_rs = _fit("normexam ~ standLRT + sex + (standLRT | school)", exam, draws, chains, seed=1)
    tight = "normal(0, 0.02)"
    fit_tight = _fit("normexam ~ standLRT + sex + (1 | school)", exam, draws, chains, seed=1,
                     priors=[hierfit.prior(tight, class_="sd", group="school")])
    if verbose:
        print(f"fitted 3 models in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    path_ri = shrinkage_path(fit_ri, "school", n=150)

    entries = [
        ("Shrinkage", "shrinkage_ri", "fit_ri.plot_shrinkage(term=\"school\")",
         lambda: _call(fit_ri, "plot_shrinkage", term="school"),
         "Left: the chapter's `plot(ef, er); abline(0, 1)` — each school's own (no-pooling, least-squares) "
         "intercept against its posterior mean; points flatter than the 1:1 line are shrunk towards complete "
         "pooling (dashed).  Right: the same move as arrows against school size: small schools move most."),
        ("Shrinkage", "shrinkage_rs", "fit_rs.plot_shrinkage(term=\"school\")",
         lambda: _call(fit_rs, "plot_shrinkage", term="school"),
         "Intercept and slope together: each school's arrow runs from its own least-squares line to its "
         "posterior mean, towards the average school (red cross: the fixed effects, the centre of the fitted "
         "bivariate normal distribution of the schools, drawn as 50 % and 95 % ellipses).  The orange plus is "
         "complete pooling: one least-squares line for all schools, which ignores the school structure and so "
         "differs a little from the average school.  The three tiny schools whose own lines lie far outside are "
         "drawn on the edge (red squares), on their arrows."),
        ("Shrinkage", "shrinkage_path_ri", "fit_ri.plot_shrinkage_path(term=\"school\")",
         lambda: _call(fit_ri, "plot_shrinkage_path", term="school"),
         "The group term as an adaptive ridge: each school's intercept as a function of the school sd τ, from "
         "complete pooling (τ → 0) to no pooling (large τ), with the posterior of τ shaded: the data choose "
         "how strongly to pool.  Exact (closed form) for Gaussian models."),
        ("Shrinkage", "shrinkage_path_rs", "fit_rs.plot_shrinkage_path(term=\"school\")",
         lambda: _call(fit_rs, "plot_shrinkage_path", term="school"),
         "With a random slope the whole covariance is scaled; one panel per coefficient."),
        ("Shrinkage", "explore_shrinkage", "fit_ri.explore_shrinkage(term=\"school\")  # Jupyter, needs ipywidgets",
         lambda: _explorer_figure(path_ri, 0, 0.1),
         "In Jupyter a slider over τ redraws the estimates instantly (`pip install 'hierfit[explore]'`); "
         "this is the view at τ = 0.1."),
        ("Priors", "prior_posterior_sd", "hierfit.plot_prior_posterior(fit_rs, var=\"sd\")",
         lambda: hierfit.plots.plot_prior_posterior(fit_rs, var="sd"),
         "Prior (dashed) and posterior of the school sds: with 65 schools the default weakly informative "
         "prior is nearly flat where the posterior lies."),
        ("Priors", "prior_sensitivity",
         "fit_tight = hierfit.fit(\"normexam ~ standLRT + sex + (1 | school)\", exam,\n"
         f"                        priors=[hierfit.prior(\"{tight}\", class_=\"sd\", group=\"school\")])\n"
         "fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))\n"
         "hierfit.plot_prior_posterior(fit_tight, var=\"sd\", ax=ax1)\n"
         "fit_tight.plot_shrinkage(term=\"school\", view=\"scatter\", ax=ax2)",
         lambda: _prior_sensitivity(fit_ri, fit_tight, tight),
         f"Prior sensitivity, a worked example: the same model refitted with a deliberately tight half-normal prior "
         f"{tight} on the school sd.  The prior pulls the sd down, so every school is shrunk further towards "
         "complete pooling (the points flatten away from the 1:1 line)."),
        ("Effects", "effects", "fit_rs.plot_effects()",
         lambda: _call(fit_rs, "plot_effects"),
         "The chapter's `plot(allEffects(mod))`: marginal (re_form=NA) predictions with 95 % bands, "
         "others held at their mean / reference level; factors as points with intervals."),
        ("Effects", "group_lines", "fit_rs.plot_group_lines(x=\"standLRT\")",
         lambda: _call(fit_rs, "plot_group_lines", x="standLRT"),
         "Each school's regression line (fixed + its own intercept and slope) over the data; the thick line "
         "is the population line."),
        ("Effects", "conditional_vs_marginal",
         "grid = np.linspace(-3, 3, 40)\n"
         "new = pd.DataFrame({\"standLRT\": grid, \"sex\": \"F\", \"school\": 22})\n"
         "fit_rs.predict(new, re_form=hierfit.NA)   # marginal: the average school\n"
         "fit_rs.predict(new)                       # conditional: school 22's own line",
         lambda: _conditional_vs_marginal(fit_rs),
         "Predictions with and without the school effects (lme4's `re.form`): the marginal line is the "
         "population line; each school's conditional line adds its own intercept and slope, and its band "
         "adds the uncertainty of its effects."),
        ("Model checks", "residuals", "fit_rs.plot_residuals()",
         lambda: _call(fit_rs, "plot_residuals"),
         "Residuals vs fitted, normal QQ plot and scale-location (Pearson residuals, conditional on the "
         "school effects)."),
        ("Model checks", "residuals_by_school", "fit_rs.plot_residuals_by_group(term=\"school\", x=\"fitted\")",
         lambda: _call(fit_rs, "plot_residuals_by_group", term="school", x="fitted"),
         "lme4's `plot(mod, resid(.) ~ fitted(.) | school)`; with many schools the first 20 are drawn and the "
         "title says so (`levels=` picks others)."),
        ("Model checks", "ranef_qq", "fit_rs.plot_ranef_qq(term=\"school\")",
         lambda: _call(fit_rs, "plot_ranef_qq", term="school"),
         "Normality of the school effects: sorted posterior means with 95 % intervals against normal "
         "quantiles; the line is the fitted N(0, τ²)."),
        ("Model checks", "ranef_vs_standLRT", "fit_rs.plot_ranef_vs(term=\"school\", x=\"standLRT\")",
         lambda: _call(fit_rs, "plot_ranef_vs", term="school", x="standLRT"),
         "School effects against the school mean of standLRT: the intercepts rise with the school's mean "
         "intake, a contextual effect the fixed part does not have (add the school mean of standLRT as a "
         "predictor)."),
        ("Model checks", "ranef_vs_schgend", "fit_ri.plot_ranef_vs(term=\"school\", x=\"schgend\", data=exam)",
         lambda: _call(fit_ri, "plot_ranef_vs", term="school", x="schgend", data=exam),
         "A school-level factor that is not in the model (so `data=` is needed): one strip per category."),
        ("Model checks", "quantile_residuals", "fit_rs.plot_quantile_residuals()",
         lambda: _call(fit_rs, "plot_quantile_residuals"),
         "DHARMa-style simulated quantile residuals: QQ-uniform with the KS test, and residuals against "
         "predictions with their 0.25/0.5/0.75 quantile lines."),
        ("Model checks", "pp_check", "fit_rs.pp_check()",
         lambda: _call(fit_rs, "pp_check"),
         "Posterior predictive check: the density of normexam over 50 replicated data sets."),
        ("Sampler", "trace", "fit_rs.plot_trace()",
         lambda: _call(fit_rs, "plot_trace"),
         "Trace and marginal density per chain of the reported parameters, named as the summary names them, "
         "with a chain legend (arviz-plots)."),
        ("Sampler", "rank", "fit_rs.plot_rank()",
         lambda: _call(fit_rs, "plot_rank"),
         "Rank plots per chain: lines inside the envelope mean the chains mix."),
    ]
    done = []
    for section, name, call, make, text in entries:
        t = time.perf_counter()
        fig = make()
        fig.savefig(img / f"{name}.png", dpi=DPI)
        plt.close(fig)
        _shrink_png(img / f"{name}.png")
        done.append(dict(section=section, name=name, file=f"gallery/{name}.png", call=call, text=text))
        if verbose:
            print(f"{name}.png ({time.perf_counter() - t:.1f} s)", file=sys.stderr)
    plt.close("all")
    (out / "gallery.md").write_text(render(done, draws, chains), encoding="utf-8")
    return done


def render(entries: list[dict], draws: int, chains: int) -> str:
    """The markdown page."""
    lines = [INTRO.format(draws=draws, chains=chains)]
    section = None
    for e in entries:
        if e["section"] != section:
            section = e["section"]
            lines.append(f"## {section}\n")
        lines.append(f"### `{e['name']}`\n")
        if "Jupyter" in e["call"]:  # a widget: it needs a running notebook
            lines.append("<!-- fragment -->")
        lines.append(f"```python\n{e['call']}\n```\n")
        lines.append(f"{e['text']}\n")
        lines.append(f"![{e['name']}]({e['file']})\n")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000, help="draws (and warm-up) per chain")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--out", type=Path, default=HERE, help="folder for gallery.md and gallery/*.png")
    args = parser.parse_args(argv)
    build(args.out, draws=args.draws, chains=args.chains)
    return 0


if __name__ == "__main__":
    sys.exit(main())
