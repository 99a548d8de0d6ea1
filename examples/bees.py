"""Honeybee case study: spores per hive (chapter 4.8.1).

lme4:  lmer(log(Spobee + 1) ~ Infection + BeesN + (1 | Hive), data = bees)
       (lme4: Infection 2.66, Hive variance 4.85, residual variance 0.60)
Run:   ./dev run python examples/bees.py
"""

import sys
import warnings

import hierfit

draws = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
bees = hierfit.datasets.load("bees")
with warnings.catch_warnings():
    warnings.simplefilter("ignore", hierfit.DataWarning)  # BeesN's scale, as lme4 also warns
    fit = hierfit.fit("log(Spobee + 1) ~ Infection + BeesN + (1 | Hive)", bees, draws=draws, tune=draws, seed=1,
                      progressbar=False)
print(fit)
