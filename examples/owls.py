"""Owl nestlings' begging calls: a Poisson GLMM with an offset (chapters 4.4.4 and 5).

lme4:  glmer(SiblingNegotiation ~ FoodTreatment * SexParent + offset(log(BroodSize)) + (1 | Nest),
             family = poisson, data = Owls)
Run:   ./dev run python examples/owls.py
"""

import sys

import hierfit

draws = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
owls = hierfit.datasets.load("owls")
fit = hierfit.fit("SiblingNegotiation ~ FoodTreatment * SexParent + offset(log(BroodSize)) + (1 | Nest)", owls,
                  family="poisson", draws=draws, tune=draws, seed=1, progressbar=False)
print(fit)
print(fit.quantile_residuals(seed=1))  # overdispersion shows here; try family="negbinomial"
