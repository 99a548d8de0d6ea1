#!/usr/bin/env Rscript
# Reference values from mgcv for hierfit's thin-plate smooth s(x, k = 10, bs = "tp").
#
# Run from the repository root:   Rscript benchmarks/mgcv_tp_reference.R
# Needs R with mgcv (Debian: r-cran-mgcv).  hierfit and its tests never run R: this script is
# the provenance of tests/reference/mgcv_tp.csv, which it writes.  Deterministic (no random numbers).
#
# The file is long: columns kind, i, j, value (1-based i, j), with kinds
#   x, y          the training data (n = 40, unevenly spaced x)
#   X0, S0        smoothCon(s(x, k = 10, bs = "tp"), absorb.cons = FALSE, scale.penalty = FALSE):
#                 the basis (n x 10) and its penalty (10 x 10), unscaled
#   xnew, Xnew    new x (inside and outside the training range) and PredictMat's basis there
#   sp, S_scale   a fixed smoothing parameter and the penalty scale gam() applies (S / S_scale)
#   fitted        gam(y ~ s(x, k = 10, bs = "tp"), sp = sp): the penalised least-squares fit
#   pred_new      predict() of that fit at xnew
#   x2, X02, S02  as x, X0, S0 for 120 distinct x (more than 10 k: hierfit's Lanczos path, like mgcv's)
suppressPackageStartupMessages(library(mgcv))

n <- 40
x <- 10 * ((1:n) / n)^1.5
y <- sin(x) + 0.3 * cos(7 * (1:n))
d <- data.frame(x = x, y = y)
xnew <- c(-1, 0.5, 2.2, 5, 7.7, 9.9, 11)

sm0 <- smoothCon(s(x, k = 10, bs = "tp"), data = d, absorb.cons = FALSE, scale.penalty = FALSE)[[1]]
Xnew <- PredictMat(sm0, data.frame(x = xnew))
sp <- 0.05
g <- gam(y ~ s(x, k = 10, bs = "tp"), data = d, sp = sp)
x2 <- 5 + 3 * sin((1:120) * 1.3) + (1:120) / 40
sm2 <- smoothCon(s(x2, k = 10, bs = "tp"), data = data.frame(x2 = x2), absorb.cons = FALSE,
                 scale.penalty = FALSE)[[1]]

long <- function(kind, m) {
  m <- as.matrix(m)
  data.frame(kind = kind, i = rep(seq_len(nrow(m)), ncol(m)), j = rep(seq_len(ncol(m)), each = nrow(m)),
             value = as.vector(m))
}
out <- rbind(long("x", x), long("y", y), long("X0", sm0$X), long("S0", sm0$S[[1]]),
             long("xnew", xnew), long("Xnew", Xnew), long("sp", sp), long("S_scale", g$smooth[[1]]$S.scale),
             long("fitted", fitted(g)), long("pred_new", predict(g, data.frame(x = xnew))),
             long("x2", x2), long("X02", sm2$X), long("S02", sm2$S[[1]]))
write.csv(out, "tests/reference/mgcv_tp.csv", row.names = FALSE)
cat("mgcv", as.character(packageVersion("mgcv")), "wrote tests/reference/mgcv_tp.csv:", nrow(out), "rows\n")
