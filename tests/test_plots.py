"""Plots (issue: plots): shrinkage, effects, model checks, priors, sampler; each renders on Exam fits.

The figures are checked through their artists (gids set by hierfit.plots), so a
plot that draws the wrong number of groups, mislabels an axis or drops the 1:1
line fails.  The shrinkage path is checked numerically against its two limits.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import hierfit
from hierfit import HierfitError
from hierfit import plots as hp
from hierfit.plots import pooling

ROOT = Path(__file__).resolve().parents[1]
N_SCHOOLS = 65


def with_methods(fit):
    """The fit with the plot methods (HierFit gets them through PlotMethods)."""
    if isinstance(fit, hp.PlotMethods):
        return fit
    cls = type("PlotFit", (hp.PlotMethods, type(fit)), {})
    obj = cls.__new__(cls)
    obj.__dict__.update(fit.__dict__)
    return obj


@pytest.fixture
def render(tmp_path):
    """Save a figure to PNG (no display), check the file, close the figure."""
    made = []

    def _render(fig, name="plot"):
        assert isinstance(fig, Figure)
        path = tmp_path / f"{name}.png"
        fig.savefig(path, dpi=50)
        assert path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        made.append(fig)
        return fig

    yield _render
    for fig in made:
        plt.close(fig)
    plt.close("all")


def by_gid(ax, gid):
    return [a for a in ax.get_children() if a.get_gid() == gid]


def n_points(ax, gid):
    """Number of points of the scatter(s) or errorbar line(s) with this gid."""
    total = 0
    for a in by_gid(ax, gid):
        if hasattr(a, "get_offsets"):
            total += len(a.get_offsets())
        else:
            total += len(a.get_xdata())
    return total


# -- numbers behind the shrinkage plots ------------------------------------------------------------
def _dummies(index, n_levels):
    D = np.zeros((len(index), n_levels))
    D[np.arange(len(index)), index] = 1.0
    return D


def test_no_pooling_is_least_squares_with_the_group_as_a_factor(fit_ri, fit_rs):
    d = fit_ri.design
    blk = d.blocks[0]
    D = _dummies(blk.index, blk.n_levels)
    # lm(normexam ~ 0 + school + standLRT + sex)
    coef = np.linalg.lstsq(np.column_stack([D, d.X[:, 1:]]), d.y, rcond=None)[0]
    npool = pooling.no_pooling(fit_ri, "school")
    assert list(npool.columns) == ["(Intercept)"] and len(npool) == N_SCHOOLS
    np.testing.assert_allclose(npool["(Intercept)"].to_numpy(), coef[:N_SCHOOLS], atol=1e-9)
    # random slopes: lm(normexam ~ 0 + school + school:standLRT + sex)
    x = d.X[:, 1]
    coef = np.linalg.lstsq(np.column_stack([D, D * x[:, None], d.X[:, 2:]]), d.y, rcond=None)[0]
    npool = pooling.no_pooling(fit_rs, "school")
    np.testing.assert_allclose(npool["(Intercept)"], coef[:N_SCHOOLS], atol=1e-8)
    np.testing.assert_allclose(npool["standLRT"], coef[N_SCHOOLS:2 * N_SCHOOLS], atol=1e-8)


def test_complete_and_partial_pooling(fit_ri):
    d = fit_ri.design
    ols = np.linalg.lstsq(d.X, d.y, rcond=None)[0]
    assert pooling.complete_pooling(fit_ri, "school")["(Intercept)"] == pytest.approx(ols[0], abs=1e-10)
    coef = fit_ri.coef()["school"].xs("Estimate", axis=1, level=1)["(Intercept)"].to_numpy()
    np.testing.assert_allclose(pooling.partial_pooling(fit_ri, "school")["(Intercept)"], coef, rtol=1e-10)


def test_shrinkage_path_limits_random_intercept(fit_ri):
    cp = pooling.complete_pooling(fit_ri, "school").to_numpy()
    npool = pooling.no_pooling(fit_ri, "school").to_numpy()
    path = pooling.shrinkage_path(fit_ri, "school", tau=[0.0, 1e-7, 1e-3, 0.3, 1e4])
    assert path.exact and path.estimates.shape == (5, N_SCHOOLS, 1)
    # tau -> 0: every school gets the complete-pooling estimate
    np.testing.assert_allclose(path.estimates[0, :, 0], cp[0], atol=1e-12)
    np.testing.assert_allclose(path.estimates[1, :, 0], cp[0], atol=1e-8)
    # large tau: the no-pooling estimates
    np.testing.assert_allclose(path.estimates[-1, :, 0], npool[:, 0], atol=1e-6)
    # in between: strictly between, closer to complete pooling for small tau
    dist_cp = np.abs(path.estimates[:, :, 0] - cp[0]).max(axis=1)
    assert dist_cp[2] < dist_cp[3] < dist_cp[4]
    # the default grid spans both limits
    full = pooling.shrinkage_path(fit_ri, "school")
    np.testing.assert_allclose(full.estimates[0, :, 0], cp[0], atol=0.01)
    np.testing.assert_allclose(full.estimates[-1, :, 0], npool[:, 0], atol=0.01)
    assert full.tau[0, 0] < full.sd_draws.min() and full.tau[-1, 0] > full.sd_draws.max()


def test_shrinkage_path_is_the_closed_form_ridge(fit_ri):
    """At a given tau the path is the penalised least-squares (conditional posterior mean) solution."""
    d = fit_ri.design
    blk = d.blocks[0]
    sigma = float(hierfit.results.draws.stack(fit_ri.draws, "sigma").mean())
    tau = 0.2
    A = np.column_stack([d.X, _dummies(blk.index, blk.n_levels)])
    pen = np.diag([0.0] * d.X.shape[1] + [sigma**2 / tau**2] * blk.n_levels)
    sol = np.linalg.solve(A.T @ A + pen, A.T @ d.y)
    expected = sol[0] + sol[d.X.shape[1]:]
    path = pooling.shrinkage_path(fit_ri, "school", tau=[tau])
    np.testing.assert_allclose(path.estimates[0, :, 0], expected, atol=1e-9)
    # with the fixed part held, it is (n_j / s2 * ybar_j) / (n_j / s2 + 1 / tau2) on the deviation scale
    n_j = np.bincount(blk.index)
    b = sol[: d.X.shape[1]]
    ybar = np.bincount(blk.index, weights=d.y - d.X @ b) / n_j
    dev = (n_j / sigma**2 * ybar) / (n_j / sigma**2 + 1 / tau**2)
    np.testing.assert_allclose(path.estimates[0, :, 0] - b[0], dev, atol=1e-9)
    # at the posterior mean of tau the path is close to the posterior means
    at_mean = pooling.shrinkage_path(fit_ri, "school", tau=[float(path.sd_mean[0])])
    np.testing.assert_allclose(at_mean.estimates[0, :, 0], path.partial[:, 0], atol=0.03)


def test_shrinkage_path_limits_random_slope(fit_rs):
    cp = pooling.complete_pooling(fit_rs, "school").to_numpy()
    npool = pooling.no_pooling(fit_rs, "school").to_numpy()
    path = pooling.shrinkage_path(fit_rs, "school", tau=[1e-9, 1e5])
    np.testing.assert_allclose(path.estimates[0], np.broadcast_to(cp, (N_SCHOOLS, 2)), atol=1e-6)
    np.testing.assert_allclose(path.estimates[1], npool, atol=1e-4)
    # the slope's sd moves with the intercept's, in the posterior ratio
    np.testing.assert_allclose(path.tau[:, 1] / path.tau[:, 0], path.sd_mean[1] / path.sd_mean[0])


# -- shrinkage plots ---------------------------------------------------------------------------------
def test_plot_shrinkage_random_intercept(fit_ri, render):
    fig = render(with_methods(fit_ri).plot_shrinkage(term="school"), "shrinkage_ri")
    scatter, arrows = fig.axes[:2]
    assert n_points(scatter, "groups") == N_SCHOOLS
    assert len(by_gid(scatter, "identity-line")) == 1
    line = by_gid(scatter, "identity-line")[0]
    x0, y0 = line.get_xy1()
    assert line.get_slope() == 1 and x0 == pytest.approx(y0)
    assert "no pooling: school intercept" in scatter.get_xlabel()   # axis labels in words
    assert "posterior mean" in scatter.get_ylabel() and "school intercept" in scatter.get_ylabel()
    # the scatter's points are (no pooling, posterior mean)
    offsets = by_gid(scatter, "groups")[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 0], pooling.no_pooling(fit_ri, "school")["(Intercept)"])
    np.testing.assert_allclose(offsets[:, 1], pooling.partial_pooling(fit_ri, "school")["(Intercept)"])
    # arrow view: one arrow per school, group size on x, complete pooling marked
    assert len(by_gid(arrows, "shrinkage-arrow")) == N_SCHOOLS
    assert n_points(arrows, "partial-pooling") == N_SCHOOLS
    assert len(by_gid(arrows, "complete-pooling")) == 1
    assert arrows.get_xlabel() == "observations per school" and arrows.get_ylabel() == "school intercept"
    sizes = np.bincount(fit_ri.design.blocks[0].index)
    xs = by_gid(arrows, "partial-pooling")[0].get_offsets()[:, 0]
    np.testing.assert_allclose(xs, sizes, rtol=0.05)  # (slightly jittered) group sizes
    # small schools move most: the shift shrinks with size
    shift = np.abs(pooling.no_pooling(fit_ri)["(Intercept)"] - pooling.partial_pooling(fit_ri)["(Intercept)"])
    shrink = shift / np.abs(pooling.no_pooling(fit_ri)["(Intercept)"] - pooling.complete_pooling(fit_ri).iloc[0])
    assert np.corrcoef(np.log(sizes), shrink)[0, 1] < -0.5


def test_plot_shrinkage_single_views_accept_ax(fit_ri, render):
    fig, ax = plt.subplots()
    out = hp.plot_shrinkage(fit_ri, "school", view="scatter", ax=ax)
    assert out is fig and n_points(ax, "groups") == N_SCHOOLS
    render(fig, "scatter_ax")
    fig, ax = plt.subplots()
    hp.plot_shrinkage(fit_ri, "school", view="arrows", ax=ax)
    assert len(by_gid(ax, "shrinkage-arrow")) == N_SCHOOLS
    render(fig, "arrows_ax")


def test_plot_shrinkage_two_dimensional(fit_rs, render):
    fig = render(with_methods(fit_rs).plot_shrinkage(term="school"), "shrinkage_rs")
    ax = fig.axes[0]
    assert len(by_gid(ax, "shrinkage-arrow")) == N_SCHOOLS
    assert n_points(ax, "partial-pooling") == N_SCHOOLS
    assert ax.get_xlabel() == "school intercept" and ax.get_ylabel() == "school slope of standLRT"
    # every school is drawn, inside the axes: far no-pooling estimates sit on the edge, on their arrow's line
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    for gid in ("no-pooling", "no-pooling-outside", "partial-pooling"):
        for pts in [c.get_offsets() for c in by_gid(ax, gid)]:
            assert np.all((pts[:, 0] >= xlim[0]) & (pts[:, 0] <= xlim[1]) & (pts[:, 1] >= ylim[0]) & (pts[:, 1] <= ylim[1]))
    drawn = sum(n_points(ax, g) for g in ("no-pooling", "no-pooling-outside"))
    assert drawn == N_SCHOOLS
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("centre of the ellipses" in t for t in labels) and any("one line for all" in t for t in labels)
    ellipses = by_gid(ax, "group-distribution")
    assert len(ellipses) == 2
    pop = by_gid(ax, "population-mean")[0].get_offsets()[0]
    fe = fit_rs.fixef()["Estimate"]
    np.testing.assert_allclose(pop, [fe["(Intercept)"], fe["standLRT"]], rtol=1e-8)
    np.testing.assert_allclose(ellipses[0].center, pop)
    # arrows end at the posterior means
    pp = pooling.partial_pooling(fit_rs, "school").to_numpy()
    ends = np.array([a._posA_posB[1] for a in by_gid(ax, "shrinkage-arrow")])
    np.testing.assert_allclose(np.sort(ends[:, 0]), np.sort(pp[:, 0]))


def test_plot_shrinkage_errors(fit_ri, fit_rs):
    with pytest.raises(HierfitError, match=r"slope.*\(1 \| school\)"):
        hp.plot_shrinkage(fit_ri, "school", view="2d")
    with pytest.raises(HierfitError, match="unknown term 'class'.*school"):
        hp.plot_shrinkage(fit_ri, term="class")
    with pytest.raises(HierfitError, match="no coefficient 'sexM'.*standLRT"):
        hp.plot_shrinkage(fit_rs, "school", coef="sexM")
    with pytest.raises(HierfitError, match="view must be one of"):
        hp.plot_shrinkage(fit_ri, view="3d")
    with pytest.raises(HierfitError, match="2 panel"):
        hp.plot_shrinkage(fit_ri, view="both", ax=plt.figure().add_subplot())
    plt.close("all")


def test_plot_shrinkage_path(fit_ri, fit_rs, render):
    fig = render(with_methods(fit_ri).plot_shrinkage_path(term="school"), "path_ri")
    ax = fig.axes[0]
    paths = by_gid(ax, "shrinkage-path")
    assert len(paths) == 1 and len(paths[0].get_segments()) == N_SCHOOLS
    assert ax.get_xscale() == "log"
    assert "τ" in ax.get_xlabel() and "school intercept" in ax.get_xlabel()
    assert ax.get_ylabel() == "school intercept"
    # the pooling labels stand above the plotting area, not over the paths
    assert all(t.get_position()[1] > 1 for t in ax.texts)
    twin = [a for a in fig.axes if by_gid(a, "tau-posterior")]
    assert len(twin) == 1
    # the curves start at complete pooling and end at no pooling
    seg = np.array(paths[0].get_segments())
    np.testing.assert_allclose(seg[:, 0, 1], pooling.complete_pooling(fit_ri).iloc[0], atol=0.01)
    np.testing.assert_allclose(seg[:, -1, 1], pooling.no_pooling(fit_ri)["(Intercept)"], atol=0.01)
    fig = render(hp.plot_shrinkage_path(fit_rs, "school"), "path_rs")
    panels = [a for a in fig.axes if by_gid(a, "shrinkage-path")]
    assert [a.get_ylabel() for a in panels] == ["school intercept", "school slope of standLRT"]
    fig, ax = plt.subplots()
    hp.plot_shrinkage_path(fit_rs, "school", coef="standLRT", ax=ax)
    assert len(by_gid(ax, "shrinkage-path")[0].get_segments()) == N_SCHOOLS
    render(fig, "path_ax")


def test_explore_shrinkage(fit_ri, render, monkeypatch):
    from hierfit.plots.shrinkage import _explorer_figure

    path = pooling.shrinkage_path(fit_ri, "school", n=50)
    fig = _explorer_figure(path, 0, 0.1)
    left = fig.axes[0]
    assert len(by_gid(left, "shrinkage-arrow")) == N_SCHOOLS
    np.testing.assert_allclose(by_gid(left, "estimate-at-tau")[0].get_offsets()[:, 1], path.at(0.1)[:, 0])
    render(fig, "explore")
    # at the ends of the grid the explorer shows complete / no pooling
    np.testing.assert_allclose(path.at(1e-9)[:, 0], path.estimates[0, :, 0])
    np.testing.assert_allclose(path.at(1e9)[:, 0], path.estimates[-1, :, 0])
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(HierfitError, match=r"ipywidgets.*pip install 'hierfit\[explore\]'"):
        with_methods(fit_ri).explore_shrinkage(term="school")


def test_explore_shrinkage_widget(fit_ri):
    widgets = pytest.importorskip("ipywidgets")
    box = hp.explore_shrinkage(fit_ri, "school", n=30)
    assert isinstance(box, widgets.VBox)
    slider = box.children[1]
    slider.value = slider.value * 2  # redraws without error
    plt.close("all")


# -- priors ------------------------------------------------------------------------------------------
def test_plot_prior_posterior(fit_rs, fit_ri, render):
    fig = render(hierfit.plots.plot_prior_posterior(fit_rs, var="sd"), "prior_sd")
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_xlabel() for a in axes] == ["sd_school[(Intercept)]", "sd_school[standLRT]"]
    for a, dist in zip(axes, fit_rs.priors.sd["school"]):
        prior = by_gid(a, "prior")
        assert len(prior) == 1 and len(by_gid(a, "posterior")) == 1
        x, y = prior[0].get_xdata(), prior[0].get_ydata()
        np.testing.assert_allclose(y, np.exp(dist.logpdf(x, positive=True)))
        assert str(dist) in prior[0].get_label()
    fig = render(with_methods(fit_rs).plot_prior_posterior("cor"), "prior_cor")
    assert fig.axes[0].get_xlabel() == "cor_school[(Intercept), standLRT]"
    fig = render(hp.plot_prior_posterior(fit_ri, "b"), "prior_b")
    assert [a.get_xlabel() for a in fig.axes if a.get_visible()] == ["Intercept", "b[standLRT]", "b[sexM]"]
    render(hp.plot_prior_posterior(fit_ri, "sigma"), "prior_sigma")
    with pytest.raises(HierfitError, match="no correlated group terms"):
        hp.plot_prior_posterior(fit_ri, "cor")
    with pytest.raises(HierfitError, match="var must be one of"):
        hp.plot_prior_posterior(fit_ri, "tau")


# -- effects -----------------------------------------------------------------------------------------
def test_plot_effects(fit_rs, render):
    fig = render(with_methods(fit_rs).plot_effects(), "effects")
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_xlabel() for a in axes] == ["standLRT", "sex"]
    assert all(a.get_ylabel() == "normexam" for a in axes)
    fe = fit_rs.fixef()["Estimate"]
    line = by_gid(axes[0], "effect-line")[0]
    x = np.asarray(line.get_xdata())
    np.testing.assert_allclose(line.get_ydata(), fe["(Intercept)"] + fe["standLRT"] * x, atol=1e-10)
    X = fit_rs.design.X
    assert x.min() == pytest.approx(X[:, 1].min()) and x.max() == pytest.approx(X[:, 1].max())
    assert len(by_gid(axes[0], "effect-band")) == 1
    pts = by_gid(axes[1], "effect-points")[0]
    assert len(pts.get_xdata()) == 2
    assert [t.get_text() for t in axes[1].get_xticklabels()] == ["F", "M"]
    mean_x = X[:, 1].mean()
    np.testing.assert_allclose(pts.get_ydata(), [fe["(Intercept)"] + fe["standLRT"] * mean_x,
                                                 fe["(Intercept)"] + fe["standLRT"] * mean_x + fe["sexM"]], atol=1e-10)
    with pytest.raises(HierfitError, match="unknown predictor 'age'.*standLRT, sex"):
        hp.plot_effects(fit_rs, "age")


def test_plot_group_lines(fit_rs, fit_ri, render):
    fig = render(with_methods(fit_rs).plot_group_lines(x="standLRT"), "group_lines")
    ax = fig.axes[0]
    lines = by_gid(ax, "group-lines")[0].get_segments()
    assert len(lines) == N_SCHOOLS
    assert n_points(ax, "data") == fit_rs.nobs
    assert ax.get_xlabel() == "standLRT" and ax.get_ylabel() == "normexam"
    coef = fit_rs.coef()["school"].xs("Estimate", axis=1, level=1)
    slopes = np.array([(s[-1, 1] - s[0, 1]) / (s[-1, 0] - s[0, 0]) for s in lines])
    np.testing.assert_allclose(slopes, coef["standLRT"], rtol=1e-8)
    icepts = np.array([s[0, 1] - sl * s[0, 0] for s, sl in zip(lines, slopes)])
    np.testing.assert_allclose(icepts, coef["(Intercept)"], atol=1e-8)  # sex held at F
    # each line spans its school's range of standLRT
    d = fit_rs.design
    idx = d.blocks[0].index
    np.testing.assert_allclose([s[0, 0] for s in lines], [d.X[idx == j, 1].min() for j in range(N_SCHOOLS)])
    fig, ax = plt.subplots()
    hp.plot_group_lines(fit_ri, "standLRT", ax=ax)
    ri_lines = by_gid(ax, "group-lines")[0].get_segments()
    ri_slopes = {round((s[-1, 1] - s[0, 1]) / (s[-1, 0] - s[0, 0]), 10) for s in ri_lines}
    assert len(ri_slopes) == 1  # random intercepts: parallel lines
    render(fig, "group_lines_ri")
    with pytest.raises(HierfitError, match="factor"):
        hp.plot_group_lines(fit_rs, x="sex")
    with pytest.raises(HierfitError, match="unknown x 'age'"):
        hp.plot_group_lines(fit_rs, x="age")


# -- model checks ------------------------------------------------------------------------------------
def test_plot_residuals(fit_rs, render):
    fig = render(with_methods(fit_rs).plot_residuals(), "residuals")
    a1, a2, a3 = fig.axes[:3]
    assert n_points(a1, "residuals") == fit_rs.nobs and n_points(a2, "qq-points") == fit_rs.nobs
    assert len(by_gid(a2, "qq-line")) == 1 and len(by_gid(a1, "zero-line")) == 1
    assert a1.get_xlabel() == "fitted values (normexam)" and a1.get_ylabel() == "Pearson residuals"
    assert "Q-Q" in a2.get_title() and "Scale" in a3.get_title()
    res = by_gid(a1, "residuals")[0].get_offsets()
    pearson = fit_rs.residuals("pearson").to_numpy()
    np.testing.assert_allclose(res[:, 1], pearson, atol=1e-8)
    with pytest.raises(HierfitError, match="3 panel"):
        hp.plot_residuals(fit_rs, ax=plt.figure().add_subplot())


def test_plot_residuals_by_group(fit_rs, render):
    fig = render(with_methods(fit_rs).plot_residuals_by_group(term="school", x="fitted", max_panels=6), "by_group")
    panels = [a for a in fig.axes if a.get_visible() and by_gid(a, "residuals")]
    assert len(panels) == 6
    assert [a.get_title() for a in panels] == [f"school {k}" for k in range(1, 7)]
    idx = fit_rs.design.blocks[0].index
    assert [n_points(a, "residuals") for a in panels] == [int((idx == j).sum()) for j in range(6)]
    note = fig._suptitle
    assert note.get_gid() == "cap-note" and "showing 6 of 65 schools" in note.get_text()
    assert fig._supxlabel.get_text() == "fitted values (normexam)"
    fig = render(hp.plot_residuals_by_group(fit_rs, "school", "standLRT", levels=[3, "7"]), "by_group_x")
    panels = [a for a in fig.axes if by_gid(a, "residuals")]
    assert [a.get_title() for a in panels] == ["school 3", "school 7"] and fig._supxlabel.get_text() == "standLRT"
    fig = hp.plot_residuals_by_group(fit_rs, "school", max_panels=100)  # not rendered: 65 panels are slow to lay out
    assert len([a for a in fig.axes if by_gid(a, "residuals")]) == N_SCHOOLS
    assert "showing" not in fig._suptitle.get_text() and fig._suptitle.get_gid() != "cap-note"
    plt.close(fig)
    with pytest.raises(HierfitError, match="unknown level"):
        hp.plot_residuals_by_group(fit_rs, "school", levels=["999"])


def test_plot_ranef_qq(fit_rs, render):
    fig = render(with_methods(fit_rs).plot_ranef_qq(term="school"), "ranef_qq")
    axes = [a for a in fig.axes if by_gid(a, "ranef-points")]
    assert len(axes) == 2
    re = fit_rs.ranef()["school"].xs("Estimate", axis=1, level=1)
    for a, coef in zip(axes, ["(Intercept)", "standLRT"]):
        pts = by_gid(a, "ranef-points")[0]
        assert len(pts.get_xdata()) == N_SCHOOLS
        np.testing.assert_allclose(pts.get_ydata(), np.sort(re[coef]), atol=1e-10)
        assert a.get_ylabel() == f"{coef} effect (school)" and "normal" in a.get_xlabel()
        assert len(by_gid(a, "reference-line")) == 1


def test_plot_ranef_vs(fit_rs, fit_ri, exam, render):
    fig = render(with_methods(fit_rs).plot_ranef_vs(term="school", x="standLRT"), "ranef_vs")
    axes = [a for a in fig.axes if by_gid(a, "ranef-points")]
    assert len(axes) == 2
    pts = by_gid(axes[0], "ranef-points")[0]
    assert len(pts.get_xdata()) == N_SCHOOLS
    means = exam.groupby("school")["standLRT"].mean().to_numpy()
    np.testing.assert_allclose(pts.get_xdata(), means, atol=1e-10)
    assert "standLRT" in axes[0].get_xlabel() and "school" in axes[0].get_xlabel()
    assert axes[0].get_ylabel() == "(Intercept) effect (school)"
    assert len(by_gid(axes[0], "trend-line")) == 1
    # a school-level column that is not in the model needs data=
    with pytest.raises(HierfitError, match="unknown x 'schgend'.*data="):
        hp.plot_ranef_vs(fit_ri, "school", "schgend")
    fig = render(hp.plot_ranef_vs(fit_ri, "school", "schgend", data=exam), "ranef_vs_cat")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["boys", "girls", "mixed"]
    assert len(by_gid(ax, "ranef-points")[0].get_xdata()) == N_SCHOOLS
    fig = render(hp.plot_ranef_vs(fit_ri, "school", "schavg", data=exam), "ranef_vs_data")
    np.testing.assert_allclose(by_gid(fig.axes[0], "ranef-points")[0].get_xdata(),
                               exam.groupby("school")["schavg"].mean().to_numpy())
    # a two-level factor of the model: the share of its second level
    fig = render(hp.plot_ranef_vs(fit_ri, "school", "sex"), "ranef_vs_sex")
    share = exam.assign(m=exam["sex"] == "M").groupby("school")["m"].mean().to_numpy()
    np.testing.assert_allclose(by_gid(fig.axes[0], "ranef-points")[0].get_xdata(), share)
    with pytest.raises(HierfitError, match="data has 10 rows"):
        hp.plot_ranef_vs(fit_ri, "school", "schavg", data=exam.head(10))


def test_plot_quantile_residuals(fit_rs, render):
    fig = render(with_methods(fit_rs).plot_quantile_residuals(nsim=200), "qres")
    a1, a2 = fig.axes[:2]
    assert n_points(a1, "qq-points") == fit_rs.nobs
    assert len(by_gid(a1, "identity-line")) == 1 and "KS test p =" in a1.get_title()
    assert len(by_gid(a2, "quantile-line")) == 3 and len(by_gid(a2, "reference-quantile")) == 3
    assert "normexam" in a2.get_xlabel()
    u = np.sort(by_gid(a1, "qq-points")[0].get_offsets()[:, 1])
    assert u.min() >= 0 and u.max() <= 1


def test_pp_check(fit_rs, render):
    fig = render(with_methods(fit_rs).pp_check(ndraws=20), "ppc")
    ax = fig.axes[0]
    assert len(by_gid(ax, "y-rep")) == 20 and len(by_gid(ax, "y-observed")) == 1
    assert ax.get_xlabel() == "normexam" and ax.get_ylabel() == "density"
    with pytest.raises(HierfitError, match="ndraws"):
        hp.pp_check(fit_rs, ndraws=0)


def test_plot_trace_and_rank(fit_rs, render):
    m = with_methods(fit_rs)
    fig = render(m.plot_trace(), "trace")
    text = " ".join(t.get_text() for a in fig.axes for t in [a.title, a.xaxis.label, a.yaxis.label])
    # the summary's names, not the model's variable names
    for name in ("b[standLRT]", "sd((Intercept) | school)", "cor((Intercept),standLRT | school)", "sigma"):
        assert name in text
    assert "sd_school" not in text
    legends = fig.legends + [a.get_legend() for a in fig.axes if a.get_legend() is not None]
    assert any(lg.get_title().get_text() == "chain" for lg in legends)   # which colour is which chain
    fig = render(m.plot_rank(["sd_school"]), "rank")
    text = " ".join(a.get_title() for a in fig.axes)
    assert "sd(standLRT | school)" in text and "sd((Intercept) | school)" in text and "sigma" not in text
    with pytest.raises(HierfitError, match="unknown variable.*sd_class"):
        hp.plot_trace(fit_rs, "sd_class")


# -- the mixin ---------------------------------------------------------------------------------------
PLOT_METHODS = ["plot_shrinkage", "plot_shrinkage_path", "explore_shrinkage", "plot_prior_posterior", "plot_effects",
                "plot_group_lines", "plot_residuals", "plot_residuals_by_group", "plot_ranef_qq", "plot_ranef_vs",
                "plot_quantile_residuals", "plot_trace", "plot_rank", "pp_check", "plot_predictions", "plot_comparisons",
                "plot_slopes", "check_model"]


def test_plot_methods_mirror_the_functions():
    public = sorted(n for n in vars(hp.PlotMethods) if not n.startswith("_"))
    assert public == sorted(PLOT_METHODS)
    for name in PLOT_METHODS:
        method = getattr(hp.PlotMethods, name)
        func = getattr(hp, name)
        assert method.__doc__ == func.__doc__ and "Example" in func.__doc__
        m_params = list(inspect.signature(method).parameters)[1:]
        f_params = list(inspect.signature(func).parameters)[1:]
        assert m_params == f_params, name
    assert hierfit.plots.plot_prior_posterior is hp.priors.plot_prior_posterior


def test_no_display_needed_and_no_figures_left(fit_ri):
    before = len(plt.get_fignums())
    fig = hp.plot_shrinkage(fit_ri)
    assert matplotlib.get_backend().lower() == "agg"
    plt.close(fig)
    assert len(plt.get_fignums()) == before


# -- the gallery -------------------------------------------------------------------------------------
def test_gallery_script_builds_every_plot(tmp_path):
    spec = importlib.util.spec_from_file_location("make_gallery", ROOT / "docs" / "make_gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    entries = module.build(tmp_path, draws=100, chains=2, verbose=False)
    names = [e["name"] for e in entries]
    for required in ("shrinkage_ri", "shrinkage_rs", "shrinkage_path_ri", "prior_sensitivity", "effects",
                     "group_lines", "residuals", "residuals_by_school", "ranef_qq", "ranef_vs_standLRT",
                     "quantile_residuals", "pp_check", "trace", "rank"):
        assert required in names
    page = (tmp_path / "gallery.md").read_text()
    for e in entries:
        png = tmp_path / e["file"]
        assert png.exists() and png.read_bytes()[:4] == b"\x89PNG"
        assert f"![{e['name']}]({e['file']})" in page
        assert e["call"].splitlines()[0] in page
    assert plt.get_fignums() == []
    # the committed page lists the same plots
    committed = (ROOT / "docs" / "gallery.md").read_text()
    for e in entries:
        assert f"({e['file']})" in committed


def test_typical_values_need_raw_columns_for_transformed_predictors(exam):
    """A predictor used only inside log() cannot be varied without the raw data."""
    from types import SimpleNamespace

    from hierfit.spec.design import build_design
    from hierfit.plots.common import typical_values

    data = exam.assign(lrt=exam["standLRT"] + 5)
    d = build_design("normexam ~ log(lrt) + sex + (1 | school)", data)
    fake = SimpleNamespace(design=d)
    with pytest.raises(HierfitError, match="raw column 'lrt'.*data="):
        typical_values(fake)
    vals = typical_values(fake, data)
    assert vals["lrt"] == pytest.approx(data["lrt"].mean()) and vals["sex"] == "F"
    assert isinstance(pd.Series(vals), pd.Series)
