import _bootstrap  # noqa: F401 (first: logs to the rule's log, puts src/ on the path)

import anndata as ad

from ferrostem.report import write_section
from ferrostem.cohort_report import cohort_section, provenance_section

adata = ad.read_h5ad(snakemake.input[0])
cohort = snakemake.params.cohort
time_unit = cohort.get("geo", {}).get("time_unit") if cohort.get("source") == "geo" else None
write_section(
    cohort_section(adata, cohort.get("label", snakemake.wildcards.cohort), time_unit=time_unit),
    snakemake.output.summary,
)
write_section(provenance_section(adata, cohort, snakemake.params.config), snakemake.output.provenance)
