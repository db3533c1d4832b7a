from _bootstrap import log  # first: logs to the rule's log, puts src/ on the path

from ferrostem.cohort_file import cohort_layout, read_cohort
from ferrostem.de import Comparison, DESettings, differential_expression, input_layer
from ferrostem.de_report import de_section
from ferrostem.files import write_json, write_tsv
from ferrostem.report import write_section
from ferrostem.runtime import imports_done, keep_block_temporaries_in_heap

imports_done()

cohort = snakemake.wildcards.cohort
settings = DESettings.from_config(snakemake.params.settings)
comparison = Comparison.from_config(snakemake.params.comparison)
keep_block_temporaries_in_heap()  # the DE engine's gene blocks: fewer page faults (runtime.py)
# the one layer the method reads, counts for DESeq2 or log2 for the linear model: not X, TPM or the other one
# (read_cohort; 206 of 515 MB at TCGA size), and no reference kept here, so that the DE frees the layer once it
# has taken the genes it tests
layers, assay = cohort_layout(snakemake.input.cohort)
result = differential_expression(
    read_cohort(snakemake.input.cohort, [input_layer(comparison, cohort, assay=assay, layers=layers)]),
    comparison,
    settings,
    cohort=cohort,
    n_cpus=snakemake.threads,
)
write_tsv(result.table, snakemake.output.table, float_format="%.6g")
summary = result.summary(settings.alpha)
write_json(summary, snakemake.output.summary, default=str)
section = de_section(
    result,
    cohort=cohort,
    alpha=settings.alpha,
    top_genes=settings.top_genes,
    simulated=bool(snakemake.params.simulated),
    table_path=str(snakemake.output.table),
)
write_section(section, snakemake.output.section)
log.info(
    "%s %s: %s, %d genes tested, %d at padj < %s",
    cohort,
    comparison.name,
    result.method,
    result.genes_tested,
    summary["significant"],
    settings.alpha,
)
