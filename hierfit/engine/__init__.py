"""Stage 2 — engines: the PyMC model (the specification in code), the collapsed model,
the compiled kernel and the samplers that turn a specification into draws."""
