"""Stage 1 — specification: formula, design, priors, parametrization (the response families, which
also carry their PyMC likelihoods, live beside the stages in hierfit.families and hierfit.family_*).

Nothing here imports PyMC, PyTensor, numba or nutpie: a specification is plain
numpy/pandas data that every engine reads.
"""
