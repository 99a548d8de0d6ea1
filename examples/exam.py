"""The chapter's main example: random intercepts and slopes for 65 London schools.

lme4:  lmer(normexam ~ standLRT + sex + (standLRT | school), data = Exam)
Run:   ./dev run python examples/exam.py
"""

import sys

import hierfit

draws = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
exam = hierfit.datasets.load("exam")
fit = hierfit.fit("normexam ~ standLRT + sex + (standLRT | school)", exam, draws=draws, tune=draws, seed=1,
                  progressbar=False)
print(fit)
print(fit.r2())
