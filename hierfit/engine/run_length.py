"""Run length that adapts: how many draws per chain a fit that fell short of its ESS target needs.

:func:`hierfit.fit` applies it when ``draws`` is left at its default (target
:data:`DEFAULT_ESS_TARGET`), or whenever ``ess_target=`` is given.

After the first run, :func:`extended_draws` compares the smallest bulk/tail ESS and the
largest R-hat of the reported parameters (and of the least converged group effects,
:mod:`hierfit.results.group_diagnostics`) with the targets.  When they fall short, ESS
grows about linearly with the draws, so the run is repeated (same seed, same warm-up)
with ``draws * 1.2 * ess_target / min_ess`` draws per chain (twice as many for R-hat >
1.01 alone), rounded up to a multiple of 500 (of half the draws, at least 50, below 1000
draws) — but only within the bound below; otherwise the fit is kept and its warnings say
what to do.  Divergences are not cured by more draws, so a run with divergences is
never extended.  The repeated run is the fit ``fit(..., draws=<new draws>)`` would give:
reproducible from the seed.

Bound: at most :data:`MAX_FACTOR` times the requested draws per chain, and the repeated
run's estimated sampling time at most :data:`MAX_EXTRA_SECONDS` seconds or twice the
first run's, whichever is larger.
"""

from __future__ import annotations

import math

__all__ = ["DEFAULT_ESS_TARGET", "MAX_FACTOR", "MAX_EXTRA_SECONDS", "RHAT_TARGET", "extended_draws", "extension_note"]

#: fit()'s target when ``draws`` is left at its default (an explicit ``draws=`` is honoured exactly)
DEFAULT_ESS_TARGET = 400
MAX_FACTOR = 4
MAX_EXTRA_SECONDS = 60.0
RHAT_TARGET = 1.01


def extended_draws(diagnostics, n_divergent: int, draws: int, tune: int, sampling_seconds: float,
                   ess_target: float | None) -> int | None:
    """Draws per chain for a repeated run, or None when the fit is kept as it is.

    Example
    -------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"Rhat": [1.0, 1.005], "Bulk_ESS": [900.0, 300.0], "Tail_ESS": [800.0, 350.0]})
    >>> extended_draws(d, 0, 1000, 1000, 10.0, 400)
    2000
    >>> extended_draws(d, 0, 1000, 1000, 10.0, None) is None
    True
    >>> extended_draws(d, 3, 1000, 1000, 10.0, 400) is None  # divergences: more draws do not help
    True
    """
    if ess_target is None or n_divergent > 0 or len(diagnostics) == 0:
        return None
    ess = float(min(diagnostics["Bulk_ESS"].min(), diagnostics["Tail_ESS"].min()))
    rhat = float(diagnostics["Rhat"].fillna(1.0).max())
    if not math.isfinite(ess):
        return None
    factor = 1.0
    if ess < ess_target:
        factor = 1.2 * ess_target / max(ess, 1.0)
    if rhat > RHAT_TARGET:
        factor = max(factor, 2.0)
    if factor == 1.0:
        return None
    step = max(50, 500 if draws >= 1000 else draws // 2)
    new = int(math.ceil(draws * factor / step) * step)
    if new > MAX_FACTOR * draws:
        return None
    per_iteration = sampling_seconds / max(tune + draws, 1)
    if per_iteration * (tune + new) > max(MAX_EXTRA_SECONDS, 2.0 * sampling_seconds):
        return None
    return new


def extension_note(chains: int, requested: int, draws: int, ess_target: float) -> str | None:
    """The summary header's line for an extended run, or None.

    Example
    -------
    >>> extension_note(4, 1000, 3000, 400)
    'extended to 4 x 3000 draws (from 1000 per chain) to reach ESS 400'
    """
    if draws == requested:
        return None
    return f"extended to {chains} x {draws} draws (from {requested} per chain) to reach ESS {ess_target:g}"
