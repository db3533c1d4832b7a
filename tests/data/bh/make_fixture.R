# Writes bh_reference.tsv: p-values (uniform to a power, some rounded to ties, some 1) and R's
# p.adjust(method = "BH") of them, printed with 17 significant digits so that the values are exact.
# Run from this folder: Rscript make_fixture.R   (R 4.2.2, Debian r-base-core)
set.seed(13)
p <- runif(400)^3
p[1:60] <- round(p[1:60], 2)
p[61:90] <- 1
write.table(data.frame(p = sprintf("%.17g", p), bh = sprintf("%.17g", p.adjust(p, method = "BH"))),
            "bh_reference.tsv", sep = "\t", quote = FALSE, row.names = FALSE)
