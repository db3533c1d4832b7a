#!/usr/bin/env Rscript
# R references for src/ferrostem/deseq2_filtering.py: R's lowess as DESeq2's pvalueAdjustment calls it,
# lowess(numRej ~ theta, f = 1/5), on seeded inputs of the shape it meets (50 thetas, integer rejection
# counts: rising, falling, flat with ties, noisy) and on the rejection counts of the "fallback" cohort of
# tests/data/locfit_trend (computed here from R DESeq2's own p-values there, as pvalueAdjustment does).
#   Rscript tests/data/deseq2_filtering/make_lowess_cases.R   (from the repository root; Debian r-base-core)
# Writes lowess_cases.tsv (case, theta, num_rej, lowess; 17 significant digits) and versions.txt.
out <- "tests/data/deseq2_filtering"
fmt <- function(x) sprintf("%.17g", x)
set.seed(20261202)
theta <- seq(0, 0.95, length = 50)
cases <- list(
  rising = round(200 * theta + rnorm(50, 0, 8)),
  falling = round(300 - 250 * theta^2 + rnorm(50, 0, 5)),
  flat_ties = rep(c(55, 55, 56, 56, 55, 54, 52, 52, 51, 53), 5),
  noisy = rpois(50, 40),
  peaked = round(120 * exp(-((theta - 0.4) / 0.2)^2) + rpois(50, 3))
)
res <- read.delim(gzfile("tests/data/locfit_trend/results_fallback.tsv.gz"))
filter <- res$baseMean
lower <- mean(filter == 0)
upper <- if (lower < 0.95) 0.95 else 1
theta_fallback <- seq(lower, upper, length = 50)
cutoffs <- quantile(filter, theta_fallback)
cases$fallback_cohort <- sapply(cutoffs, function(cut) sum(p.adjust(res$pvalue[filter >= cut], "BH") < 0.05, na.rm = TRUE))
rows <- do.call(rbind, lapply(names(cases), function(name) {
  x <- if (name == "fallback_cohort") theta_fallback else theta
  fit <- lowess(cases[[name]] ~ x, f = 1 / 5)
  data.frame(case = name, theta = fmt(x), num_rej = cases[[name]], lowess = fmt(fit$y))
}))
write.table(rows, file.path(out, "lowess_cases.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)
writeLines(R.version.string, file.path(out, "versions.txt"))
