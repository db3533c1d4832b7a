from _bootstrap import log  # first: logs to the rule's log, puts src/ on the path

import pandas as pd

from ferrostem.enrichment_report import enrichment_section
from ferrostem.enrichment import CollectionSpec, EnrichmentSettings, enrich
from ferrostem.files import write_tsv
from ferrostem.report import write_section
from ferrostem.resources import verify_job_resources
from ferrostem.runtime import imports_done

imports_done()

settings = EnrichmentSettings.from_config(snakemake.params.settings)
alpha = snakemake.params.alpha  # not ferrostem.de: it imports anndata, which enrichment does not use
verify_job_resources(snakemake.params.resource_files, snakemake.params.download, snakemake.params.resource_paths)
collections = [
    (CollectionSpec.from_config(name, spec), snakemake.params.resource_files.get(name, []))
    for name, spec in snakemake.params.collections.items()
]
table = pd.read_csv(snakemake.input.table, sep="\t", keep_default_na=False, na_values=[""])
result = enrich(
    table, collections, settings, alpha=alpha, threads=snakemake.threads, left_out=snakemake.params.resources_left_out
)
for name, frame in (
    ("gsea", result.gsea),
    ("ora", result.ora),
    ("sizes", result.sizes),
    ("collections", result.collections),
):
    write_tsv(frame, snakemake.output[name], float_format="%.6g")
comparison = snakemake.wildcards.comparison
section = enrichment_section(
    result, settings, cohort=snakemake.wildcards.cohort, comparison=comparison, test=snakemake.params.test, alpha=alpha
)
write_section(section, snakemake.output.section)
log.info(
    "%s %s: %d sets tested by GSEA, %d dropped by size",
    snakemake.wildcards.cohort,
    comparison,
    len(result.gsea),
    int((~result.sizes["kept"]).sum()),
)
