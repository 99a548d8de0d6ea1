"""Plant height against temperature, with a slope per plant family (chapter 4.3 exercise).

lme4:  lmer(loght ~ sTemp + (sTemp | Family), data = plantHeight), sTemp = scale(temp)
Run:   ./dev run python examples/plant_height.py
"""

import sys

import hierfit

draws = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
plants = hierfit.datasets.load("plantHeight")  # one row has no Family: dropped with a warning, like na.omit
fit = hierfit.fit("loght ~ scale(temp) + (scale(temp) | Family)", plants, draws=draws, tune=draws, seed=1,
                  target_accept=0.95, progressbar=False)
print(fit)
