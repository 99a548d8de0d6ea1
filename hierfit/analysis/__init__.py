"""Stage 4 — analysis: the one prepare-draws step and everything built on it
(predictions, residuals, R², LOO; reference grids, marginal predictions, comparisons
and slopes, population-averaged predictions, emmeans, hypothesis tests, the ICC)."""
