"""Stage 3 — results: the fit object, lme4's accessors, the summary, diagnostics,
the model's equation and persistence."""
