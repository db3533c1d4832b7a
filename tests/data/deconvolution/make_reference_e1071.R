# CIBERSORT's nu-SVR step with R's e1071 (libsvm), on the same fixture mixture and the TIL10 matrix as the
# signature: an independent check of ferrostem.deconvolution.cibersort_core (written from Newman et al. 2015 and
# the published algorithm, not from CIBERSORT.R, whose licence does not allow redistribution).
# Run from the repository root: Rscript tests/data/deconvolution/make_reference_e1071.R  (Debian: r-cran-e1071)
suppressPackageStartupMessages(library(e1071))
here <- "tests/data/deconvolution"
mixture <- as.matrix(read.table(file.path(here, "mixture_tpm.tsv"), header = TRUE, sep = "\t", row.names = 1,
                                check.names = FALSE))
signature <- as.matrix(read.table("src/ferrostem/data/quantiseq/TIL10_signature.txt", header = TRUE, sep = "\t",
                                  row.names = 1, check.names = FALSE))
whole_median <- max(median(mixture), 1)
genes <- rownames(signature)[rownames(signature) %in% rownames(mixture)]
X <- signature[genes, ]
X <- (X - mean(X)) / sd(as.vector(X))
Y <- mixture[genes, , drop = FALSE]
rows <- list()
for (sample in colnames(Y)) {
  y <- (Y[, sample] - mean(Y[, sample])) / sd(Y[, sample])
  best <- NULL
  for (nu in c(0.25, 0.5, 0.75)) {
    model <- svm(X, y, type = "nu-regression", kernel = "linear", nu = nu, scale = FALSE)
    w <- as.vector(t(model$coefs) %*% model$SV)
    w[w < 0] <- 0
    w <- w / sum(w)
    fitted <- as.vector(X %*% w)
    rmse <- sqrt(mean((fitted - y)^2))
    if (is.null(best) || rmse < best$rmse) best <- list(w = w, rmse = rmse, r = cor(fitted, y))
  }
  rows[[sample]] <- c(best$w, best$r, best$rmse, median(Y[, sample]) / whole_median)
}
out <- do.call(rbind, rows)
colnames(out) <- c(colnames(signature), "correlation", "rmse", "absolute_score")
out <- data.frame(sample_id = rownames(out), out, check.names = FALSE)
write.table(format(out, digits = 10), file.path(here, "e1071_cibersort.tsv"), sep = "\t", quote = FALSE,
            row.names = FALSE)
cat(sprintf("e1071 %s, R %s\n", packageVersion("e1071"), getRversion()),
    file = file.path(here, "VERSIONS_e1071.txt"))
