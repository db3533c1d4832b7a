# Reference output of R ConsensusClusterPlus for tests/test_subtypes.py (run from the repository root):
#   Rscript tests/data/subtypes/make_consensus_fixture.R
# Debian: apt-get install r-bioc-consensusclusterplus (ConsensusClusterPlus 1.62.0 when this was written).
# Writes, beside this script:
#   consensus_input.tsv       genes x tumours, median-centred (the ConsensusClusterPlus vignette's preparation):
#                             three planted groups of 20, 15 and 10 tumours on 12 genes
#   consensus_matrix_k<k>.tsv the consensus matrix at k = 2..5 (res[[k]]$consensusMatrix)
#   consensus_class.tsv       tumour x k: res[[k]]$consensusClass
#   consensus_area.tsv        k, CDF area and delta area, computed on res[[k]]$ml as ConsensusClusterPlus:::CDF does
suppressPackageStartupMessages(library(ConsensusClusterPlus))
out <- "tests/data/subtypes"
set.seed(16)
sizes <- c(20, 15, 10)
genes <- 12
centres <- matrix(rnorm(length(sizes) * genes, sd = 1.2), nrow = genes)
group <- rep(seq_along(sizes), sizes)
d <- centres[, group] + matrix(rnorm(genes * sum(sizes)), nrow = genes)
rownames(d) <- sprintf("G%02d", 1:genes)
colnames(d) <- sprintf("T%02d", 1:sum(sizes))
d <- sweep(d, 1, apply(d, 1, median))
write.table(data.frame(gene = rownames(d), round(d, 6), check.names = FALSE), file.path(out, "consensus_input.tsv"),
            sep = "\t", quote = FALSE, row.names = FALSE)
d <- as.matrix(read.delim(file.path(out, "consensus_input.tsv"), row.names = 1, check.names = FALSE))

pdf(NULL)
res <- ConsensusClusterPlus(d, maxK = 5, reps = 2000, pItem = 0.8, pFeature = 1, clusterAlg = "hc",
                            distance = "pearson", innerLinkage = "average", finalLinkage = "average",
                            seed = 1603, plot = NULL, verbose = FALSE)
classes <- data.frame(sample = colnames(d))
area <- c()
for (k in 2:5) {
  m <- res[[k]]$consensusMatrix
  dimnames(m) <- list(colnames(d), colnames(d))
  write.table(round(m, 8), file.path(out, sprintf("consensus_matrix_k%d.tsv", k)), sep = "\t", quote = FALSE,
              col.names = NA)
  classes[[paste0("k", k)]] <- res[[k]]$consensusClass
  # the area of ConsensusClusterPlus:::CDF (which only plots it)
  v <- ConsensusClusterPlus:::triangle(res[[k]]$ml, mode = 1)
  h <- hist(v, plot = FALSE, breaks = seq(0, 1, by = 1 / 100))
  h$counts <- cumsum(h$counts) / sum(h$counts)
  area <- c(area, sum(h$counts * diff(h$breaks)))
}
delta <- c(area[1], diff(area) / area[-length(area)])
write.table(classes, file.path(out, "consensus_class.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)
write.table(data.frame(k = 2:5, cdf_area = area, delta_area = delta), file.path(out, "consensus_area.tsv"),
            sep = "\t", quote = FALSE, row.names = FALSE)
writeLines(paste("ConsensusClusterPlus", packageVersion("ConsensusClusterPlus"), "R", getRversion()),
           file.path(out, "consensus_versions.txt"))
