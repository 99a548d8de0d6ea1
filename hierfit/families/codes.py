"""Integer codes of the response families and links that the compiled kernel evaluates.

Plain integers, declared at the spec level so that a :class:`hierfit.families.Family`
carries its own code (``Family.kernel_code``) without importing the kernel;
``hierfit.engine.kernel.codes`` re-exports them for the numba code.

Example
-------
>>> from hierfit.families import codes
>>> codes.LINKS["logit"] == codes.LOGIT
True
"""

# response families (None on a Family: no compiled kernel; it samples through PyMC)
GAUSSIAN, STUDENT, POISSON, NEGBINOMIAL, BINOMIAL, BERNOULLI, GAMMA = range(7)
LOGNORMAL, BETA, WEIBULL, EXPONENTIAL = range(7, 11)
ZI_POISSON, ZI_NEGBINOMIAL, HURDLE_POISSON, HURDLE_NEGBINOMIAL, HURDLE_LOGNORMAL = range(11, 16)
CUMULATIVE = 16  # ordinal: K - 1 ordered thresholds (the program's threshold table, H_THRESH)

# links
IDENTITY, LOG, LOGIT, PROBIT, CLOGLOG, INVERSE = range(6)
LINKS = {"identity": IDENTITY, "log": LOG, "logit": LOGIT, "probit": PROBIT, "cloglog": CLOGLOG, "inverse": INVERSE}
