#!/usr/bin/env Rscript
# R references for src/ferrostem/locfit_trend.py and the local dispersion trend of the vectorised DESeq2
# engine (ferrostem issue 13, deliverable 1: "the parametric trend (and the local fallback)").
#   Rscript tests/data/locfit_trend/make_fixture.R   (run from the repository root; Debian r-bioc-deseq2,
#   which pulls r-cran-locfit)
# Writes, all numbers with 17 significant digits:
# - local_fit_cases.tsv: DESeq2:::localDispersionFit(means, disps, minDisp = 1e-8) on five seeded inputs
#   (noisy a0 + a1/mean; sorted means, which takes locfit's ordered-data neighbourhood search; genes below
#   10 x minDisp; 12 genes with tied means; dispersions rising with the mean), as role "fit" rows (the
#   input, with R's trend at each mean) and role "predict" rows (R's trend on a grid of means reaching past
#   the fitted range on both sides, where locfit extrapolates);
# - counts_<cohort>.tsv.gz (genes x samples), samples.tsv and results_<cohort>.tsv.gz for two seeded
#   negative-binomial cohorts of 16 samples (8 + 8) x 400 genes with planted fold changes and outliers:
#   "fallback", whose dispersions rise with the mean so that DESeq2's default parametric fit fails and
#   DESeq() substitutes the local fit itself, and "local", an ordinary cohort run with fitType = "local".
#   Results: baseMean, dispGeneEst, dispFit (the final dispersionFunction at baseMean), dispersion (MAP),
#   dispOutlier, replace, log2FoldChange, lfcSE, stat, pvalue, padj, padjNoFilter (independentFiltering =
#   FALSE); vst_<cohort>.tsv.gz: varianceStabilizingTransformation(blind = FALSE), which for a local trend
#   integrates the trend numerically; fit_<cohort>.tsv: fitType, size factors, dispPriorVar;
# - versions.txt.
suppressPackageStartupMessages({ library(DESeq2); library(locfit) })
out <- "tests/data/locfit_trend"
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
min_disp <- 1e-8

set.seed(20261203)
cases <- list()
m <- exp(runif(500, -1, 10)); cases$noisy <- list(m, (0.05 + 2 / m) * exp(rnorm(500, 0, 0.8)))
m <- sort(exp(runif(80, 0, 8))); cases$sorted <- list(m, (0.1 + 1 / m) * exp(rnorm(80, 0, 0.5)))
m <- exp(runif(200, 0, 9)); d <- (0.03 + 3 / m) * exp(rnorm(200, 0, 0.7)); d[sample(200, 20)] <- min_disp
cases$below_min <- list(m, d)
m <- rep(exp(runif(6, 1, 7)), each = 2); cases$small <- list(m, (0.2 + 1 / m) * exp(rnorm(12, 0, 0.3)))
m <- exp(runif(300, 0, 11)); cases$increasing <- list(m, 0.004 * m^0.45 * exp(rnorm(300, 0, 0.4)))
rows <- list()
for (name in names(cases)) {
  means <- cases[[name]][[1]]; disps <- cases[[name]][[2]]
  trend <- DESeq2:::localDispersionFit(means, disps, min_disp)
  fitted <- log(means[disps >= 10 * min_disp])
  grid <- exp(seq(min(fitted) - 2, max(fitted) + 2, length.out = 41))
  rows[[name]] <- rbind(
    data.frame(case = name, role = "fit", mean = fmt(means), disp = fmt(disps), trend = fmt(trend(means))),
    data.frame(case = name, role = "predict", mean = fmt(grid), disp = "NA", trend = fmt(trend(grid))))
}
write.table(do.call(rbind, rows), file.path(out, "local_fit_cases.tsv"), sep = "\t", quote = FALSE,
            row.names = FALSE)

n <- 16; genes <- 400
group <- factor(rep(c("reference", "test"), each = n / 2), levels = c("reference", "test"))
samples <- data.frame(sample = sprintf("S%02d", seq_len(n)), group = group)
write.table(samples, file.path(out, "samples.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)
for (cohort in c("fallback", "local")) {
  size <- exp(rnorm(n, 0, 0.25))
  base_mean <- exp(rnorm(genes, log(100), 2))
  base_mean[1:15] <- runif(15, 0.3, 3)
  disp <- if (cohort == "fallback") 0.004 * base_mean^0.45 else 0.05 + 2 / base_mean
  disp <- disp * exp(rnorm(genes, 0, 0.4))
  lfc <- ifelse(runif(genes) < 0.15, rnorm(genes, 0, 1.5), 0)
  mu <- outer(base_mean, size) * 2^(outer(lfc, as.numeric(group == "test")))
  counts <- matrix(rnbinom(genes * n, mu = mu, size = 1 / disp), nrow = genes)
  for (g in sample(16:genes, 6)) {                       # one extreme count each: Cook's replacement
    j <- sample(n, 1)
    counts[g, j] <- as.integer(max(counts[g, ]) * 20 + 100)
  }
  rownames(counts) <- sprintf("G%03d", seq_len(genes))
  colnames(counts) <- samples$sample
  con <- gzfile(file.path(out, sprintf("counts_%s.tsv.gz", cohort)), "w")
  write.table(data.frame(gene = rownames(counts), counts, check.names = FALSE), con, sep = "\t",
              quote = FALSE, row.names = FALSE)
  close(con)
  dds <- DESeqDataSetFromMatrix(counts, samples, ~ group)
  fit_type <- if (cohort == "fallback") "parametric" else "local"
  dds <- DESeq(dds, fitType = fit_type, quiet = TRUE)
  used <- attr(dispersionFunction(dds), "fitType")
  stopifnot(used == "local")                             # the fallback cohort must have fallen back
  res <- results(dds, name = "group_test_vs_reference", alpha = 0.05)
  unfiltered <- results(dds, name = "group_test_vs_reference", alpha = 0.05, independentFiltering = FALSE)
  mc <- mcols(dds)
  table <- data.frame(gene = rownames(dds), baseMean = fmt(res$baseMean), dispGeneEst = fmt(mc$dispGeneEst),
                      dispFit = fmt(mc$dispFit), dispersion = fmt(mc$dispersion), dispOutlier = mc$dispOutlier,
                      replace = if (is.null(mc$replace)) FALSE else mc$replace,
                      log2FoldChange = fmt(res$log2FoldChange), lfcSE = fmt(res$lfcSE), stat = fmt(res$stat),
                      pvalue = fmt(res$pvalue), padj = fmt(res$padj), padjNoFilter = fmt(unfiltered$padj))
  con <- gzfile(file.path(out, sprintf("results_%s.tsv.gz", cohort)), "w")
  write.table(table, con, sep = "\t", quote = FALSE, row.names = FALSE)
  close(con)
  vst <- assay(varianceStabilizingTransformation(dds, blind = FALSE))
  con <- gzfile(file.path(out, sprintf("vst_%s.tsv.gz", cohort)), "w")
  write.table(data.frame(gene = rownames(vst), apply(vst, 2, fmt), check.names = FALSE), con, sep = "\t",
              quote = FALSE, row.names = FALSE)
  close(con)
  fit <- data.frame(name = c("fitType", paste0("size_factor_", samples$sample), "dispPriorVar"),
                    value = c(used, fmt(sizeFactors(dds)), fmt(attr(dispersionFunction(dds), "dispPriorVar"))))
  write.table(fit, file.path(out, sprintf("fit_%s.tsv", cohort)), sep = "\t", quote = FALSE, row.names = FALSE)
}
writeLines(c(R.version.string, paste("DESeq2", packageVersion("DESeq2")), paste("locfit", packageVersion("locfit"))),
           file.path(out, "versions.txt"))
