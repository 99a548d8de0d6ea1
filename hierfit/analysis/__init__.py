"""Stage 4 — analysis: the one prepare-draws step and everything built on it
(predictions, residuals, R², LOO)."""
