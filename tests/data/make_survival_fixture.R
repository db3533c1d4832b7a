# Reference values for tests/test_survival.py, computed with R's survival, maxstat and metafor.
# Run from the repository root:  Rscript tests/data/make_survival_fixture.R
# Writes tests/data/survival_fixture_data.tsv (the simulated input) and survival_fixture_reference.tsv
# (one row per reference quantity: analysis, term, quantity, value).
suppressPackageStartupMessages({library(survival); library(maxstat); library(metafor)})
set.seed(20261122)
n <- 150
x1 <- rnorm(n)
x2 <- rnorm(n)
x3 <- rnorm(n)
x3[sample(n, 12)] <- NA                       # a score missing in some samples
x4 <- -(x1 + 0.5 * x2)                        # a protective score (HR < 1); no random draw, so x1-x3 are unchanged
age <- round(rnorm(n, 62, 9))
stage <- sample(1:4, n, replace = TRUE, prob = c(0.4, 0.3, 0.2, 0.1))
sex <- sample(c("female", "male"), n, replace = TRUE)
lin <- log(1.8) * x1 + 0.35 * (stage - 1) + 0.01 * (age - 62)
t_event <- rweibull(n, shape = 1.2, scale = 1500 * exp(-lin / 1.2))
t_cens <- runif(n, 200, 3000)
time <- ceiling(pmin(t_event, t_cens) / 30) * 30   # whole months in days: many tied times
status <- as.integer(t_event <= t_cens)
data <- data.frame(sample_id = sprintf("S%03d", 1:n), time = time, status = status, x1 = x1, x2 = x2, x3 = x3, x4 = x4,
                   age = age, stage = stage, sex = sex)
write.table(data, "tests/data/survival_fixture_data.tsv", sep = "\t", quote = FALSE, row.names = FALSE, na = "")

rows <- list()
add <- function(analysis, term, quantity, value) {
  rows[[length(rows) + 1]] <<- data.frame(analysis = analysis, term = term, quantity = quantity, value = value)
}

for (v in c("x1", "x2", "x3", "x4")) {
  d <- data[!is.na(data[[v]]), ]
  d$z <- (d[[v]] - mean(d[[v]])) / sd(d[[v]])          # HR per SD (sample SD)
  fit <- coxph(Surv(time, status) ~ z, data = d, ties = "efron")
  s <- summary(fit)
  add("cox_univariate", v, "coef", s$coefficients[1, "coef"])
  add("cox_univariate", v, "se", s$coefficients[1, "se(coef)"])
  add("cox_univariate", v, "hr", s$conf.int[1, "exp(coef)"])
  add("cox_univariate", v, "hr_lower", s$conf.int[1, "lower .95"])
  add("cox_univariate", v, "hr_upper", s$conf.int[1, "upper .95"])
  add("cox_univariate", v, "p_wald", s$coefficients[1, "Pr(>|z|)"])
  add("cox_univariate", v, "p_lr", s$logtest[["pvalue"]])
  # coxph's concordance is that of the fitted linear predictor (coef * z): >= 0.5 whatever the HR direction
  add("cox_univariate", v, "concordance", s$concordance[["C"]])
  add("cox_univariate", v, "n", fit$n)
  add("cox_univariate", v, "events", fit$nevent)

  high <- factor(ifelse(d[[v]] > median(d[[v]]), "high", "low"))
  sd2 <- survdiff(Surv(time, status) ~ high, data = d)
  add("logrank_median", v, "chisq", sd2$chisq)
  add("logrank_median", v, "p", pchisq(sd2$chisq, 1, lower.tail = FALSE))
  tert <- cut(d[[v]], quantile(d[[v]], c(0, 1/3, 2/3, 1)), include.lowest = TRUE, labels = c("low", "mid", "high"))
  sd3 <- survdiff(Surv(time, status) ~ tert, data = d)
  add("logrank_tertiles", v, "chisq", sd3$chisq)
  add("logrank_tertiles", v, "p", pchisq(sd3$chisq, 2, lower.tail = FALSE))

  mt <- maxstat.test(Surv(time, status) ~ x, data = data.frame(time = d$time, status = d$status, x = d[[v]]),
                     smethod = "LogRank", pmethod = "Lau92", minprop = 0.1, maxprop = 0.9)
  add("maxstat", v, "statistic", unname(mt$statistic))
  add("maxstat", v, "p_lausen92", mt$p.value)
  add("maxstat", v, "cutpoint", unname(mt$estimate))
}

data$z1 <- (data$x1 - mean(data$x1)) / sd(data$x1)
data$male <- as.integer(data$sex == "male")
mfit <- coxph(Surv(time, status) ~ z1 + age + stage + male, data = data, ties = "efron")
ms <- summary(mfit)
for (term in rownames(ms$coefficients)) {
  add("cox_multivariable", term, "coef", ms$coefficients[term, "coef"])
  add("cox_multivariable", term, "se", ms$coefficients[term, "se(coef)"])
  add("cox_multivariable", term, "hr_lower", ms$conf.int[term, "lower .95"])
  add("cox_multivariable", term, "hr_upper", ms$conf.int[term, "upper .95"])
}
zph <- cox.zph(mfit, transform = "km", terms = TRUE)
for (term in rownames(zph$table)) add("cox_zph_km", term, "p", zph$table[term, "p"])

# DerSimonian-Laird random-effects meta-analysis of log hazard ratios (tau^2 truncated at 0 by rma):
# moderate heterogeneity, concordant studies (Q < k - 1, tau^2 = 0: two cohorts with HR 1.46 and 1.47, and
# three close ones) and discordant studies (opposite directions)
meta_sets <- list(
  moderate = list(log_hr = c(0.55, 0.30, 0.72, 0.10, 0.41), se = c(0.15, 0.22, 0.30, 0.18, 0.25)),
  concordant2 = list(log_hr = log(c(1.46, 1.47)), se = c(0.10, 0.12)),
  concordant3 = list(log_hr = c(0.41, 0.43, 0.38), se = c(0.09, 0.11, 0.14)),
  discordant = list(log_hr = c(0.90, -0.35, 0.50, 0.05), se = c(0.12, 0.15, 0.20, 0.10))
)
for (name in names(meta_sets)) {
  set <- meta_sets[[name]]
  meta <- rma(yi = set$log_hr, sei = set$se, method = "DL")
  for (i in seq_along(set$log_hr)) {
    add(paste0("meta_input_", name), paste0("study", i), "log_hr", set$log_hr[i])
    add(paste0("meta_input_", name), paste0("study", i), "se", set$se[i])
  }
  analysis <- paste0("meta_dl_", name)
  add(analysis, "pooled", "log_hr", as.numeric(meta$beta))
  add(analysis, "pooled", "se", meta$se)
  add(analysis, "pooled", "ci_lower", meta$ci.lb)
  add(analysis, "pooled", "ci_upper", meta$ci.ub)
  add(analysis, "pooled", "tau2", meta$tau2)
  add(analysis, "pooled", "i2", meta$I2)
  add(analysis, "pooled", "p", meta$pval)
  add(analysis, "pooled", "q", meta$QE)
}

reference <- do.call(rbind, rows)
reference$value <- formatC(reference$value, digits = 12, format = "g")
write.table(reference, "tests/data/survival_fixture_reference.tsv", sep = "\t", quote = FALSE, row.names = FALSE)
cat(sprintf("R %s, survival %s, maxstat %s, metafor %s\n", getRversion(), packageVersion("survival"),
            packageVersion("maxstat"), packageVersion("metafor")))
