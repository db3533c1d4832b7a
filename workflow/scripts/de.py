import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad  # noqa: E402

from ferrostem.de import Comparison, DESettings, differential_expression  # noqa: E402
from ferrostem.de_report import de_section  # noqa: E402
from ferrostem.files import write_json, write_tsv  # noqa: E402
from ferrostem.report import write_section  # noqa: E402
from ferrostem.runtime import script_logging  # noqa: E402

log = script_logging()
cohort = snakemake.wildcards.cohort
settings = DESettings.from_config(snakemake.params.settings)
comparison = Comparison.from_config(snakemake.params.comparison)
adata = ad.read_h5ad(snakemake.input[0])
result = differential_expression(adata, comparison, settings, cohort=cohort, n_cpus=snakemake.threads)
write_tsv(result.table, snakemake.output.table, float_format="%.6g")
summary = result.summary(settings.alpha)
write_json(summary, snakemake.output.summary, default=str)
section = de_section(result, cohort=cohort, alpha=settings.alpha, top_genes=settings.top_genes,
                     simulated=bool(snakemake.params.simulated), table_path=str(snakemake.output.table))
write_section(section, snakemake.output.section)
log.info("%s %s: %s, %d genes tested, %d at padj < %s", cohort, comparison.name, result.method,
         result.genes_tested, summary["significant"], settings.alpha)
