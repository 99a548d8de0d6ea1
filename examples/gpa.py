"""College GPA over six semesters, with a residual sd that changes over time (chapter 4.8.2).

glmmTMB: glmmTMB(gpa ~ sOccasion * sex + nJob + (sOccasion | student), dispformula = ~ sOccasion)
brms:    brm(bf(gpa ~ sOccasion * sex + nJob + (sOccasion | student), sigma ~ sOccasion))
Run:     ./dev run python examples/gpa.py
"""

import sys

import hierfit

draws = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
gpa = hierfit.datasets.load("gpa")
gpa["sOccasion"] = (gpa["occasion"] - gpa["occasion"].mean()) / gpa["occasion"].std()  # R's scale()
gpa["nJob"] = gpa["job"].cat.codes + 1  # R's as.numeric(job)
fit = hierfit.fit("gpa ~ sOccasion * sex + nJob + (sOccasion | student)", gpa, dispformula="~ sOccasion",
                  draws=draws, tune=draws, seed=1, progressbar=False)
print(fit)
