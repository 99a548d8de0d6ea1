# DHARMa's dispersion and zero-inflation statistics for glmmTMB fits of the Owls models, computed
# by hand (DHARMa itself is not needed): testDispersion(type = "DHARMa", refit = FALSE) is
# var(y - fitted) / mean(var(sim - fitted)), testZeroInflation is zeros(y) / mean(zeros(sim)),
# both with DHARMa's two-sided getP.  Two kinds of simulation:
#   unconditional: simulate() re-simulates the Nest effects (DHARMa's default for glmmTMB),
#                  fitted = fitted(m) (at the Nest modes), as DHARMa's getFitted;
#   conditional:   Nest effects held at their modes (plug-in), DHARMa's recommendation for
#                  dispersion tests of mixed models; fitted = (1 - zi) mu.
# Run: Rscript benchmarks/owls_dharma.R   (prints one line per model, kind and seed)
suppressMessages(library(glmmTMB))
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("--file=", "", args[grep("--file=", args)])))
o <- read.csv(file.path(here, "..", "hierfit", "datasets", "owls.csv"))
y <- o$SiblingNegotiation
f <- SiblingNegotiation ~ FoodTreatment * SexParent + offset(log(BroodSize)) + (1 | Nest)
getP <- function(sim, obs) min(min(mean(sim <= obs), mean(sim >= obs)) * 2, 1)
tests <- function(sims, fitted) {
  spread <- function(x) var(x - fitted)
  d <- apply(sims, 2, spread); z <- colSums(sims == 0)
  c(disp = spread(y) / mean(d), disp_p = getP(d, spread(y)), zeros = sum(y == 0) / mean(z), zeros_p = getP(z, sum(y == 0)))
}
for (fam in c("poisson", "nbinom2")) {
  m <- glmmTMB(f, ziformula = if (fam == "poisson") ~0 else ~1, family = fam, data = o)
  mu <- predict(m, type = "conditional")
  p0 <- if (fam == "poisson") 0 else plogis(fixef(m)$zi[1])
  for (seed in 1:5) {
    set.seed(seed); n <- length(y)
    r <- tests(as.matrix(simulate(m, nsim = 500)), fitted(m))
    cat(sprintf("%s unconditional %d %.3f %.3f %.3f %.3f\n", fam, seed, r[1], r[2], r[3], r[4]))
    sims <- replicate(500, {
      counts <- if (fam == "poisson") rpois(n, mu) else rnbinom(n, size = sigma(m), mu = mu)
      counts * (runif(n) > p0)
    })
    r <- tests(sims, (1 - p0) * mu)
    cat(sprintf("%s conditional %d %.3f %.3f %.3f %.3f\n", fam, seed, r[1], r[2], r[3], r[4]))
  }
}
