"""Arrays written once get small pages: numpy's huge-page setting is off inside small_pages() and restored after."""

from __future__ import annotations

import numpy as np

from hierfit.memory import huge_pages_setting, small_pages


def test_small_pages_turns_numpys_huge_pages_off_and_back():
    start = huge_pages_setting(True)
    try:
        with small_pages():
            assert huge_pages_setting(False) is False  # off inside
            a = np.ones(1_000_000)
        assert huge_pages_setting(True) is True  # back on after
        huge_pages_setting(False)
        with small_pages():
            pass
        assert huge_pages_setting(False) is False  # a setting of off is kept off
        assert float(a.sum()) == 1e6
    finally:
        huge_pages_setting(bool(start))


def test_small_pages_restores_the_setting_after_an_error():
    start = huge_pages_setting(True)
    try:
        try:
            with small_pages():
                raise ValueError
        except ValueError:
            pass
        assert huge_pages_setting(True) is True
    finally:
        huge_pages_setting(bool(start))


def test_group_effect_draws_are_made_with_small_pages(monkeypatch):
    from hierfit.engine import group_draws

    seen = []
    real = group_draws.np.empty

    def empty(*args, **kwargs):
        seen.append(huge_pages_setting(False))
        huge_pages_setting(seen[-1])
        return real(*args, **kwargs)

    import pandas as pd

    import hierfit

    rng = np.random.default_rng(1)
    g = rng.integers(0, 10, 200)
    df = pd.DataFrame({"y": rng.normal(size=200) + g * 0.1, "g": g})
    fit = hierfit.fit("y ~ 1 + (1 | g)", df, chains=1, draws=20, tune=40, seed=1, progressbar=False, warn=False)
    post = fit.posterior["posterior"].to_dataset().drop_vars(["r_g"])
    start = huge_pages_setting(True)
    try:
        monkeypatch.setattr(group_draws.np, "empty", empty)
        group_draws.draw_group_effects(post, fit.design, 1)
        monkeypatch.undo()
        assert seen and not any(seen)  # every array of the draws was made with small pages
        assert huge_pages_setting(True) is True  # and the setting is back
    finally:
        huge_pages_setting(bool(start))
