#!/usr/bin/env Rscript
# Reference values from R for hierfit's analysis functions and families.
#
# Run from the repository root:   Rscript benchmarks/r_reference.R
# Needs R with lme4, emmeans, glmmTMB, ordinal and jsonlite (Debian: r-base-core r-cran-lme4
# r-cran-emmeans r-cran-glmmtmb r-cran-ordinal r-cran-jsonlite).  hierfit and its tests never
# run R: this script is the provenance of tests/reference/r_analysis.json and of the two
# simulated data sets tests/reference/beta_sim.csv and tests/reference/ordinal_sim.csv, which it
# writes.  Everything is deterministic (fixed seeds); rerunning it reproduces the files.
#
# Conventions recorded here (the tests rely on them):
# * lmer models by REML; emmeans with lmer.df = "asymptotic" (z intervals, no Kenward-Roger).
# * Factor levels as R orders them: Exam sex F < M; Owls FoodTreatment Deprived < Satiated,
#   SexParent Female < Male (treatment contrasts, first level the reference).
# * Owls emmeans: emmeans (1.8.4) puts the offset term at its mean over the rows,
#   offset = mean(log(BroodSize)) (ref_grid's .offset. column, recorded as offset_used), although
#   its grid lists BroodSize at its mean; a second set uses offset = log(mean(BroodSize)).
# * glmmTMB: zi coefficients on the logit scale (= brms's zi on its logit link); sigma() of an
#   nbinom2 model is theta, Var = mu + mu^2 / theta (= brms's shape); sigma() of beta_family()
#   is phi, Var = mu (1 - mu) / (1 + phi) (= brms's phi).
# * ordinal::clmm with link "logit": P(y <= k) = plogis(theta_k - eta), the same sign convention
#   as brms's cumulative("logit") thresholds Intercept[k].

suppressPackageStartupMessages({
  library(lme4)
  library(emmeans)
  library(jsonlite)
})
have <- function(pkg) requireNamespace(pkg, quietly = TRUE)

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
root <- if (length(script)) normalizePath(file.path(dirname(script), "..")) else getwd()
ref_dir <- file.path(root, "tests", "reference")
dir.create(ref_dir, showWarnings = FALSE, recursive = TRUE)
data_dir <- file.path(root, "hierfit", "datasets")

emm_options(lmer.df = "asymptotic")

named <- function(x) as.list(setNames(as.numeric(x), names(x)))
coef_table <- function(tab) {
  tab <- as.data.frame(tab)
  list(term = rownames(tab), estimate = unname(tab[, 1]), se = unname(tab[, 2]))
}
emm_table <- function(obj) {
  d <- as.data.frame(summary(obj))
  est_col <- intersect(c("emmean", "response", "rate", "prob", "estimate", "ratio", "trend", "standLRT.trend"),
                       names(d))[1]
  out <- lapply(d, function(v) if (is.factor(v)) as.character(v) else v)
  out$estimate_column <- est_col
  out
}

out <- list(
  generated_by = "benchmarks/r_reference.R",
  R_version = R.version.string,
  packages = list(),
  conventions = list(
    lmer = "REML = TRUE",
    emmeans = "emm_options(lmer.df = 'asymptotic'); equal weights over the other factors; numeric predictors at their mean",
    owls_offset = "default (emmeans 1.8.4): offset = mean(log(BroodSize)), the mean of the offset term; '_offset_log_mean' sets: offset = log(mean(BroodSize))",
    glmmTMB = "zi on the logit scale; nbinom2 sigma() = theta = brms shape; beta_family sigma() = phi = brms phi",
    ordinal = "clmm logit: P(y <= k) = plogis(theta_k - eta) = brms cumulative('logit') Intercept[k]"
  )
)
for (p in c("lme4", "emmeans", "glmmTMB", "ordinal", "jsonlite", "Matrix", "TMB")) {
  if (have(p)) out$packages[[p]] <- as.character(packageVersion(p))
}

# ---- Exam (mlmRev) --------------------------------------------------------------------------
exam <- read.csv(file.path(data_dir, "exam.csv"))
exam$sex <- factor(exam$sex, levels = c("F", "M"))
exam$school <- factor(exam$school)

m_ix <- lmer(normexam ~ standLRT * sex + (standLRT | school), data = exam, REML = TRUE)
emm_sex <- emmeans(m_ix, ~ sex)
pw_sex <- emmeans(m_ix, pairwise ~ sex)
tr_sex <- emtrends(m_ix, ~ sex, var = "standLRT")
vc_ix <- as.data.frame(VarCorr(m_ix))
m_ri <- lmer(normexam ~ standLRT + sex + (1 | school), data = exam, REML = TRUE)
vc_ri <- as.data.frame(VarCorr(m_ri))
sd_school <- vc_ri$sdcor[vc_ri$grp == "school"]
sigma_ri <- sigma(m_ri)

out$exam <- list(
  data = "hierfit/datasets/exam.csv",
  interaction = list(
    formula = "normexam ~ standLRT * sex + (standLRT | school)",
    fixef = coef_table(coef(summary(m_ix))),
    varcorr = list(grp = vc_ix$grp, var1 = vc_ix$var1, var2 = vc_ix$var2, sdcor = vc_ix$sdcor),
    sigma = sigma(m_ix),
    standLRT_mean = mean(exam$standLRT),
    emmeans_sex = emm_table(emm_sex),
    emmeans_sex_pairwise = emm_table(pw_sex$contrasts),
    emtrends_sex = emm_table(tr_sex)
  ),
  random_intercept = list(
    formula = "normexam ~ standLRT + sex + (1 | school)",
    fixef = coef_table(coef(summary(m_ri))),
    sd_school = sd_school,
    sigma = sigma_ri,
    icc_adjusted = sd_school^2 / (sd_school^2 + sigma_ri^2),
    icc_conditional = {
      s2f <- var(as.vector(model.matrix(m_ri) %*% fixef(m_ri)))
      sd_school^2 / (s2f + sd_school^2 + sigma_ri^2)
    }
  )
)

# ---- Owls (glmmTMB::Owls) -------------------------------------------------------------------
owls <- read.csv(file.path(data_dir, "owls.csv"))
owls$FoodTreatment <- factor(owls$FoodTreatment, levels = c("Deprived", "Satiated"))
owls$SexParent <- factor(owls$SexParent, levels = c("Female", "Male"))
owls$Nest <- factor(owls$Nest)
owls_formula <- SiblingNegotiation ~ FoodTreatment * SexParent + offset(log(BroodSize)) + (1 | Nest)

m_pois <- glmer(owls_formula, data = owls, family = poisson)
emm_pois <- emmeans(m_pois, ~ FoodTreatment | SexParent, type = "response")
emm_pois_link <- emmeans(m_pois, ~ FoodTreatment | SexParent)
emm_pois_lm <- emmeans(m_pois, ~ FoodTreatment | SexParent, type = "response", offset = log(mean(owls$BroodSize)))
offset_used <- unique(ref_grid(m_pois)@grid[[".offset."]])
stopifnot(length(offset_used) == 1, abs(offset_used - mean(log(owls$BroodSize))) < 1e-12)
ratio_pois <- contrast(emm_pois, "pairwise")  # on the response scale: Deprived / Satiated
diff_pois <- contrast(regrid(emm_pois), "pairwise")  # differences of expected counts
diff_pois_lm <- contrast(regrid(emm_pois_lm), "pairwise")
vc_pois <- as.data.frame(VarCorr(m_pois))

out$owls_poisson <- list(
  data = "hierfit/datasets/owls.csv",
  formula = "SiblingNegotiation ~ FoodTreatment * SexParent + offset(log(BroodSize)) + (1 | Nest)",
  family = "poisson (log), glmer Laplace",
  fixef = coef_table(coef(summary(m_pois))),
  sd_Nest = vc_pois$sdcor[1],
  BroodSize_mean = mean(owls$BroodSize),
  offset_used = offset_used,
  offset_log_mean = log(mean(owls$BroodSize)),
  emmeans_call = "emmeans(m, ~ FoodTreatment | SexParent, type = 'response')  # offset = mean(log(BroodSize))",
  emmeans_call_offset_log_mean = "emmeans(m, ~ FoodTreatment | SexParent, type = 'response', offset = log(mean(BroodSize)))",
  emmeans_response = emm_table(emm_pois),
  emmeans_link = emm_table(emm_pois_link),
  emmeans_response_offset_log_mean = emm_table(emm_pois_lm),
  pairwise_ratio = emm_table(ratio_pois),
  pairwise_difference = emm_table(diff_pois),
  pairwise_difference_offset_log_mean = emm_table(diff_pois_lm)
)

# ---- glmmTMB: zero-inflated counts and beta regression --------------------------------------
tmb_fit <- function(m) {
  s <- summary(m)$coefficients
  res <- list(fixef_cond = coef_table(s$cond))
  if (!is.null(s$zi)) res$fixef_zi <- coef_table(s$zi)
  vc <- glmmTMB::VarCorr(m)$cond
  res$sd <- lapply(vc, function(v) as.numeric(attr(v, "stddev")))
  res$logLik <- as.numeric(logLik(m))
  res
}

set.seed(20261202)
J <- 20; n <- 15
g <- rep(seq_len(J), each = n)
x <- round(rnorm(J * n), 6)
u <- rnorm(J, 0, 0.5)
mu <- plogis(-0.3 + 0.7 * x + u[g])
phi <- 12
y <- rbeta(J * n, mu * phi, (1 - mu) * phi)
y <- pmin(pmax(signif(y, 10), 1e-9), 1 - 1e-9)
beta_sim <- data.frame(y = y, x = x, g = sprintf("g%02d", g))
write.csv(beta_sim, file.path(ref_dir, "beta_sim.csv"), row.names = FALSE)
beta_sim <- read.csv(file.path(ref_dir, "beta_sim.csv"))  # fit exactly what the file holds

set.seed(20261203)
J <- 25; n <- 16
g <- rep(seq_len(J), each = n)
x <- round(rnorm(J * n), 6)
u <- rnorm(J, 0, 0.8)
tau <- c(-2.0, -0.7, 0.5, 1.8)
latent <- 0.9 * x + u[g] + rlogis(J * n)
rating <- findInterval(latent, tau) + 1L
ordinal_sim <- data.frame(rating = rating, x = x, g = sprintf("g%02d", g))
write.csv(ordinal_sim, file.path(ref_dir, "ordinal_sim.csv"), row.names = FALSE)
ordinal_sim <- read.csv(file.path(ref_dir, "ordinal_sim.csv"))

out$simulations <- list(
  beta_sim = list(file = "tests/reference/beta_sim.csv", seed = 20261202, groups = 20, rows = nrow(beta_sim),
                  truth = list(intercept = -0.3, x = 0.7, sd_g = 0.5, phi = 12)),
  ordinal_sim = list(file = "tests/reference/ordinal_sim.csv", seed = 20261203, groups = 25, rows = nrow(ordinal_sim),
                     truth = list(thresholds = tau, x = 0.9, sd_g = 0.8),
                     counts = as.list(table(factor(ordinal_sim$rating, levels = 1:5))))
)

if (have("glmmTMB")) {
  library(glmmTMB)
  m_zip <- glmmTMB(owls_formula, data = owls, ziformula = ~1, family = poisson)
  m_zinb <- glmmTMB(owls_formula, data = owls, ziformula = ~1, family = nbinom2)
  out$owls_zip <- c(list(formula = deparse1(owls_formula), ziformula = "~1", family = "poisson"), tmb_fit(m_zip))
  out$owls_zinb <- c(list(formula = deparse1(owls_formula), ziformula = "~1", family = "nbinom2"), tmb_fit(m_zinb),
                     list(theta = sigma(m_zinb)))
  beta_sim$g <- factor(beta_sim$g)
  m_beta <- glmmTMB(y ~ x + (1 | g), data = beta_sim, family = beta_family())
  out$beta <- c(list(formula = "y ~ x + (1 | g)", family = "beta_family(link = 'logit')",
                     data = "tests/reference/beta_sim.csv"), tmb_fit(m_beta), list(phi = sigma(m_beta)))
}

if (have("ordinal")) {
  library(ordinal)
  ordinal_sim$rating <- factor(ordinal_sim$rating, levels = 1:5, ordered = TRUE)
  ordinal_sim$g <- factor(ordinal_sim$g)
  m_clmm <- clmm(rating ~ x + (1 | g), data = ordinal_sim, link = "logit")
  s <- coef(summary(m_clmm))
  out$ordinal <- list(
    formula = "rating ~ x + (1 | g)", link = "logit", data = "tests/reference/ordinal_sim.csv",
    thresholds = list(term = names(m_clmm$alpha), estimate = unname(m_clmm$alpha),
                      se = unname(s[names(m_clmm$alpha), "Std. Error"])),
    beta = list(term = names(m_clmm$beta), estimate = unname(m_clmm$beta),
                se = unname(s[names(m_clmm$beta), "Std. Error"])),
    sd_g = as.numeric(attr(ordinal::VarCorr(m_clmm)$g, "stddev")),
    logLik = as.numeric(logLik(m_clmm))
  )
}

write_json(out, file.path(ref_dir, "r_analysis.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)
cat("wrote", file.path(ref_dir, "r_analysis.json"), "\n")
