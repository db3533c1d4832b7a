#!/usr/bin/env Rscript
# R DESeq2 reference on a real-sized design for tests/test_de.py (ferrostem issue 13).
# 424 samples (374 test + 50 reference, as TCGA-LIHC) x 2,000 genes of seeded negative-binomial counts with
# planted fold changes and planted single-sample outliers; DESeq2 fits ~group and ~batch + group.
#   Rscript tests/data/deseq2_424/make_reference.R   (run from the repository root; Debian r-bioc-deseq2)
# Writes counts.tsv.gz (genes x samples), samples.tsv and, per design, results_<design>.tsv.gz and
# fit_<design>.tsv (size factors, trend coefficients, prior variance).
suppressPackageStartupMessages(library(DESeq2))
out <- "tests/data/deseq2_424"
set.seed(20261201)
n_test <- 374; n_ref <- 50; n <- n_test + n_ref; genes <- 2000
group <- factor(rep(c("test", "reference"), c(n_test, n_ref)), levels = c("reference", "test"))
batch <- factor(sample(c("b1", "b2"), n, replace = TRUE))
size <- exp(rnorm(n, 0, 0.3))
base_mean <- exp(rnorm(genes, log(150), 2.2))
base_mean[1:40] <- runif(40, 0.2, 3)                        # low counts: independent filtering has work
trend <- 0.04 + 2 / base_mean
dispersion <- trend * exp(rnorm(genes, 0, 0.6))
lfc <- ifelse(runif(genes) < 0.12, rnorm(genes, 0, 1.2), 0)  # log2 fold changes, test vs reference
batch_effect <- rnorm(genes, 0, 0.2)
mu <- outer(base_mean, size) * 2^(outer(lfc, as.numeric(group == "test"))) *
  exp(outer(batch_effect, as.numeric(batch == "b2")))
counts <- matrix(rnbinom(genes * n, mu = mu, size = 1 / dispersion), nrow = genes)
outliers <- sample(41:genes, 25)                              # one extreme count each: Cook's replacement
for (g in outliers) {
  j <- sample(n, 1)
  counts[g, j] <- as.integer(max(counts[g, ]) * 20 + 100)
}
rownames(counts) <- sprintf("G%04d", seq_len(genes))
colnames(counts) <- sprintf("S%03d", seq_len(n))
samples <- data.frame(sample = colnames(counts), group = group, batch = batch)
con <- gzfile(file.path(out, "counts.tsv.gz"), "w")
write.table(data.frame(gene = rownames(counts), counts, check.names = FALSE), con, sep = "\t", quote = FALSE,
            row.names = FALSE)
close(con)
write.table(samples, file.path(out, "samples.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)

for (design in c("group", "batch_group")) {
  formula <- if (design == "group") ~ group else ~ batch + group
  dds <- DESeqDataSetFromMatrix(counts, samples, formula)
  dds <- DESeq(dds, quiet = TRUE)
  res <- results(dds, name = "group_test_vs_reference", alpha = 0.05)
  m <- mcols(dds)
  table <- data.frame(gene = rownames(dds), baseMean = res$baseMean, dispGeneEst = m$dispGeneEst,
                      dispFit = m$dispFit, dispersion = m$dispersion, dispOutlier = m$dispOutlier,
                      replace = if (is.null(m$replace)) FALSE else m$replace,
                      log2FoldChange = res$log2FoldChange, lfcSE = res$lfcSE, stat = res$stat,
                      pvalue = res$pvalue, padj = res$padj)
  con <- gzfile(file.path(out, sprintf("results_%s.tsv.gz", design)), "w")
  write.table(table, con, sep = "\t", quote = FALSE, row.names = FALSE)
  close(con)
  coefs <- attr(dispersionFunction(dds), "coefficients")
  fit <- data.frame(key = c(paste0("size_factor_", colnames(dds)), "asymptDisp", "extraPois", "dispPriorVar",
                            "varLogDispEsts", "filterThreshold"),
                    value = c(sizeFactors(dds), coefs, attr(dispersionFunction(dds), "dispPriorVar"),
                              attr(dispersionFunction(dds), "varLogDispEsts"),
                              metadata(res)$filterThreshold))
  write.table(fit, file.path(out, sprintf("fit_%s.tsv", design)), sep = "\t", quote = FALSE, row.names = FALSE)
}
writeLines(c(paste("DESeq2", packageVersion("DESeq2")), R.version.string),
           file.path(out, "versions.txt"))
