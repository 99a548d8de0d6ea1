"""Stage 1 — specification: formula, design, families, priors, parametrization.

Nothing here imports PyMC, PyTensor, numba or nutpie: a specification is plain
numpy/pandas data that every engine reads.
"""
