from _bootstrap import log  # first: logs to the rule's log, puts src/ on the path

import anndata as ad

from ferrostem.de import Comparison, DESettings, differential_expression
from ferrostem.de_report import de_section
from ferrostem.files import write_json, write_tsv
from ferrostem.report import write_section

cohort = snakemake.wildcards.cohort
settings = DESettings.from_config(snakemake.params.settings)
comparison = Comparison.from_config(snakemake.params.comparison)
adata = ad.read_h5ad(snakemake.input[0])
result = differential_expression(adata, comparison, settings, cohort=cohort, n_cpus=snakemake.threads)
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
