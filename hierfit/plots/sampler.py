"""Sampler diagnostics plots (trace, rank) through arviz-plots, with the model's variable names.

The panels are labelled as the summary labels the parameters: ``b[standLRT]``,
``sd((Intercept) | school)``, ``cor((Intercept),standLRT | school)``, ``sigma``.  They can be
chosen by the model's variable names: ``b`` (fixed effects), ``sd_<group>``, ``cor_<group>``
and the distributional parameters (``sigma``, ``shape``, ``nu``), or by those labels.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from hierfit.errors import HierfitError

__all__ = ["plot_trace", "plot_rank", "reported_posterior", "reported_names"]


def reported_names(fit) -> list[str]:
    """Names of the parameters the summary reports, in the summary's order.

    Example
    -------
    >>> reported_names(fit)  # doctest: +SKIP
    ['b', 'sd_school', 'cor_school', 'sigma']
    """
    d = fit.design
    post = fit.draws
    names = [p.var("b") for p in d.predictors.values() if p.fixed_names]
    for blk in d.all_blocks:
        names.append(f"sd_{blk.key}")
        if blk.is_correlated:
            names.append(f"cor_{blk.key}")
    names += [dp.name for dp in d.family.dpars if dp.name in post]
    return [n for n in names if n in post]


def reported_posterior(fit, var_names=None) -> xr.DataTree:
    """A DataTree with one variable per reported parameter, named as the summary names it.

    ``var_names`` takes the model's variable names (``"b"``, ``"sd_school"``, ``"cor_school"``,
    ``"sigma"``) or the reported names themselves (``"sd((Intercept) | school)"``).

    Example
    -------
    >>> import arviz_plots as azp
    >>> azp.plot_forest(reported_posterior(fit, ["b", "sd_school"]))  # doctest: +SKIP
    """
    from hierfit.results.diagnostics import reported_parameters, reported_sources

    post = fit.draws
    sources = reported_sources(fit.design)
    known = reported_names(fit)
    if var_names is None:
        var_names = known
    elif isinstance(var_names, str):
        var_names = [var_names]
    unknown = [v for v in var_names if v not in post and v not in sources]
    if unknown:
        raise HierfitError(f"unknown variable(s) {', '.join(map(repr, unknown))}; the reported parameters are "
                           f"{', '.join(known)} (or one of {', '.join(sources)})")
    wanted = set(var_names)
    coords = {"chain": post["chain"].values, "draw": post["draw"].values}
    data = {label: xr.DataArray(np.asarray(arr, dtype=float), dims=("chain", "draw"), coords=coords)
            for label, arr in reported_parameters(post, fit.design)
            if label in wanted or sources.get(label) in wanted}
    return xr.DataTree.from_dict({"posterior": xr.Dataset(data)})


def _figure(pc, n_panels: int, per_row: int, panel_size: tuple[float, float], resize: bool):
    fig = pc.viz["figure"].item()
    fig.set_layout_engine("constrained")
    if resize:
        rows = int(np.ceil(n_panels / per_row))
        fig.set_size_inches(panel_size[0] * min(n_panels, per_row), panel_size[1] * rows + 0.4)
    return fig


def _chain_legend(pc) -> None:
    """A legend saying which colour is which chain."""
    try:
        pc.add_legend("chain", title="chain")
    except (ValueError, KeyError):  # no aesthetic mapped to the chains (e.g. one chain)
        pass


def _n_panels(dt, compact: bool) -> int:
    post = dt["posterior"].to_dataset()
    if compact:
        return len(post.data_vars)
    return int(sum(np.prod([post[v].sizes[d] for d in post[v].dims if d not in ("chain", "draw")], dtype=int)
                   for v in post.data_vars))


def plot_trace(fit, var_names=None, *, compact: bool = False, **kwargs):
    """Trace and marginal density of each reported parameter, per chain (arviz-plots' ``plot_trace_dist``).

    Parameters
    ----------
    fit : HierFit
    var_names : str or list of str, optional
        e.g. ``["b", "sd_school"]``; default every reported parameter (``b``,
        ``sd_<group>``, ``cor_<group>``, ``sigma``).
    compact : bool
        One panel per variable (coefficients overlaid) instead of one per coefficient.
    **kwargs
        Passed to :func:`arviz_plots.plot_trace_dist`.

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> fig = fit.plot_trace(["b", "sd_school"])  # doctest: +SKIP
    """
    import arviz_plots as azp

    dt = reported_posterior(fit, var_names)
    pc = azp.plot_trace_dist(dt, compact=compact, backend="matplotlib", **kwargs)
    _chain_legend(pc)
    fig = _figure(pc, _n_panels(dt, compact), 1, (11.0, 1.5), "figure_kwargs" not in kwargs)
    for ax in fig.axes:  # each row is named under its density panel; long names would overlap on the left
        if ax.get_xlabel() == "Draw":
            ax.set_ylabel("")
    return fig


def plot_rank(fit, var_names=None, **kwargs):
    """Rank plots (fractional ranks per chain, ECDF differences) of the reported parameters.

    Chains that mix well give lines inside the envelope (arviz-plots' ``plot_rank``).

    Parameters
    ----------
    fit : HierFit
    var_names : str or list of str, optional
        Default every reported parameter.
    **kwargs
        Passed to :func:`arviz_plots.plot_rank`.

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> fig = fit.plot_rank("sd_school")  # doctest: +SKIP
    """
    import arviz_plots as azp

    dt = reported_posterior(fit, var_names)
    pc = azp.plot_rank(dt, backend="matplotlib", **kwargs)
    _chain_legend(pc)
    return _figure(pc, _n_panels(dt, False), 4, (3.0, 2.6), "figure_kwargs" not in kwargs)
