# Reference outputs for tests/test_scoring.py, computed with R (run once; outputs are committed).
#
#   Rscript tests/data/make_scoring_fixtures.R [path/to/shared/reference]
#
# 1. ssGSEA with Bioconductor GSVA (method = "ssgsea", tau = 0.25), normalised (GSVA's default: every score
#    divided by the range of the whole score matrix) and un-normalised, on a small seeded log2 matrix.
# 2. mRNAsi with the TCGAanalyze_Stemness formula (TCGAbiolinks): Spearman correlation of each sample with the
#    PCBC weights over the common genes, then min-max within the cohort; on TCGAbiolinks' real dataBRCA (10
#    samples) and the real SC_PCBC_stemSig weights from ../shared/reference (read there, never copied).
suppressPackageStartupMessages(library(GSVA))
args <- commandArgs(trailingOnly = TRUE)
shared <- if (length(args) >= 1) args[1] else "../shared/reference"
out <- "tests/data"

# ---- 1. ssGSEA -------------------------------------------------------------------------------------
set.seed(20261122)
n_genes <- 300; n_samples <- 20
genes <- sprintf("G%03d", seq_len(n_genes))
samples <- sprintf("S%02d", seq_len(n_samples))
base <- rnorm(n_genes, 6, 2)
x <- matrix(base, n_genes, n_samples) + matrix(rnorm(n_genes * n_samples, 0, 0.8), n_genes, n_samples)
sizes <- c(set_a = 3, set_b = 5, set_c = 10, set_d = 25, set_e = 50, set_f = 120)
sets <- list()
start <- 1
for (nm in names(sizes)) {
  idx <- sample(n_genes, sizes[[nm]])
  factor <- rnorm(n_samples)
  x[idx, ] <- x[idx, ] + outer(runif(length(idx), 0.3, 1.2), factor)  # a per-set programme, so scores vary
  sets[[nm]] <- genes[idx]
}
dimnames(x) <- list(genes, samples)
x <- round(x, 4)
write.table(data.frame(gene = genes, x, check.names = FALSE), file.path(out, "ssgsea_input.tsv"),
            sep = "\t", quote = FALSE, row.names = FALSE)
writeLines(vapply(names(sets), function(nm) paste(c(nm, "seeded", sets[[nm]]), collapse = "\t"), ""),
           file.path(out, "ssgsea_sets.gmt"))
norm <- gsva(x, sets, method = "ssgsea", tau = 0.25, ssgsea.norm = TRUE, verbose = FALSE)
raw <- gsva(x, sets, method = "ssgsea", tau = 0.25, ssgsea.norm = FALSE, verbose = FALSE)
write_scores <- function(m, file) {
  write.table(data.frame(set = rownames(m), signif(m, 10), check.names = FALSE), file.path(out, file),
              sep = "\t", quote = FALSE, row.names = FALSE)
}
write_scores(norm, "ssgsea_gsva_normalised.tsv")
write_scores(raw, "ssgsea_gsva_raw.tsv")

# ---- 2. mRNAsi --------------------------------------------------------------------------------------
e <- new.env()
load(file.path(shared, "tcga", "TCGAbiolinks_dataBRCA.rda"), envir = e)
load(file.path(shared, "stemness", "SC_PCBC_stemSig.rda"), envir = e)
expr <- as.matrix(e$dataBRCA)
symbols <- sub("\\|.*$", "", rownames(expr))
keep <- symbols != "?" & !duplicated(symbols)        # first row of a duplicated symbol, as in the Python test
expr <- expr[keep, ]
rownames(expr) <- symbols[keep]
w <- e$SC_PCBC_stemSig
reg <- intersect(names(w), rownames(expr))           # TCGAanalyze_Stemness
s <- apply(expr[reg, ], 2, function(z) cor(z, w[reg], method = "spearman"))
minmax <- s - min(s); minmax <- minmax / max(minmax)
write.table(data.frame(sample_id = names(s), spearman = signif(s, 12), minmax = signif(minmax, 12),
                       n_common = length(reg)),
            file.path(out, "mrnasi_dataBRCA_R.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)
cat("GSVA", as.character(packageVersion("GSVA")), "; common mRNAsi genes:", length(reg), "\n")
