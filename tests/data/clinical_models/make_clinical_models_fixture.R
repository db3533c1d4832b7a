# Reference output of R rms for tests/test_clinical_models.py (ferrostem.clinical_models).
#
# Run from this folder: Rscript make_clinical_models_fixture.R   (R 4.x, rms >= 6.5; Debian: r-cran-rms)
# Writes: data.tsv (the simulated cohort), coefficients.tsv (rms::cph, Efron ties), nomogram_points.tsv
# (rms::nomogram points per predictor value), nomogram_functions.tsv (total points -> linear predictor and
# 1/3/5-year survival axes), calibration.tsv (rms::calibrate, cmethod = "KM", method = "boot", per horizon)
# and bootstrap_indices.tsv (the resamples predab.resample drew: the same RNG stream, re-drawn from the seed).
#
# Harrell FE Jr. rms: Regression Modeling Strategies. R package; Harrell, Regression Modeling Strategies,
# 2nd ed., Springer 2015 (nomograms ch. 20; calibrate.cph with the Kaplan-Meier grouping method).
suppressMessages(library(rms))

set.seed(20261201)
n <- 150
stage <- sample(1:4, n, replace = TRUE, prob = c(0.4, 0.3, 0.2, 0.1))
age <- round(rnorm(n, 60, 10))
risk <- rnorm(n)
lin <- 0.7 * risk + 0.35 * (stage - 1) + 0.02 * (age - 60)
event_time <- rweibull(n, shape = 1.2, scale = 6 * exp(-lin / 1.2))
censor_time <- runif(n, 1, 9)
# rounded to 0.1 year so that some deaths tie (the Efron baseline is exercised)
time <- round(pmin(event_time, censor_time), 1) + 0.1
event <- as.integer(event_time <= censor_time)
data <- data.frame(time = time, event = event, risk = round(risk, 4), stage = stage, age = age)
write.table(data, "data.tsv", sep = "\t", quote = FALSE, row.names = FALSE)

dd <- datadist(data)
options(datadist = "dd")
fit <- cph(Surv(time, event) ~ risk + stage + age, data = data, x = TRUE, y = TRUE, surv = TRUE)
write.table(data.frame(term = names(coef(fit)), coef = unname(coef(fit)), se = unname(sqrt(diag(vcov(fit))))),
            "coefficients.tsv", sep = "\t", quote = FALSE, row.names = FALSE)

surv <- Survival(fit)
horizons <- c(1, 3, 5)
funs <- lapply(horizons, function(h) { force(h); function(lp) surv(h, lp) })
nom <- nomogram(fit, fun = funs, funlabel = paste0(horizons, "-year survival"),
                fun.at = c(0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95))
points <- do.call(rbind, lapply(c("risk", "stage", "age"), function(v)
  data.frame(predictor = v, value = nom[[v]][[v]], points = nom[[v]]$points)))
write.table(points, "nomogram_points.tsv", sep = "\t", quote = FALSE, row.names = FALSE)
axes <- list(data.frame(axis = "lp", points = nom$lp$x, value = nom$lp$x.real))
for (label in paste0(horizons, "-year survival")) {
  axes[[label]] <- data.frame(axis = label, points = nom[[label]]$x, value = nom[[label]]$x.real)
}
write.table(do.call(rbind, axes), "nomogram_functions.tsv", sep = "\t", quote = FALSE, row.names = FALSE)

B <- 40
seed <- 7
rows <- list()
for (u in horizons) {
  fit_u <- cph(Surv(time, event) ~ risk + stage + age, data = data, x = TRUE, y = TRUE, surv = TRUE, time.inc = u)
  set.seed(seed)
  cal <- suppressWarnings(calibrate(fit_u, cmethod = "KM", method = "boot", u = u, m = 50, B = B))
  rows[[length(rows) + 1]] <- data.frame(horizon = u, group = seq_len(nrow(cal)), unclass(cal)[, 1:10])
}
write.table(do.call(rbind, rows), "calibration.tsv", sep = "\t", quote = FALSE, row.names = FALSE)
# predab.resample draws sample(n, replace = TRUE) once per resample and nothing else: the same stream
set.seed(seed)
indices <- t(sapply(seq_len(B), function(b) sample(n, replace = TRUE)))
write.table(indices, "bootstrap_indices.tsv", sep = "\t", quote = FALSE, row.names = FALSE, col.names = FALSE)
