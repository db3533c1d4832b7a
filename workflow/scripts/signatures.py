from _bootstrap import log  # first: logs to the rule's log, puts src/ on the path

import pandas as pd

from ferrostem.cohort_file import read_cohort
from ferrostem.files import write_tsv
from ferrostem.report import write_section
from ferrostem.resources import verify_job_resources
from ferrostem.runtime import imports_done
from ferrostem.scales import holds_log_ratios
from ferrostem.scoring import score_cohort
from ferrostem.signature_report import annotate, immune_section, signatures_section
from ferrostem.signatures import (
    load_alias_table,
    load_catalogue,
    load_hgnc_complete_set,
    resolve_resources,
    select_signatures,
    with_user_gmts,
)

imports_done()

settings = snakemake.params.settings
catalogue = select_signatures(
    load_catalogue(snakemake.params.catalogue_dir), settings.get("include", []), settings.get("exclude", [])
)
verify_job_resources(snakemake.params.resource_files, snakemake.params.download, snakemake.params.resource_paths)
signatures, unavailable = resolve_resources(
    catalogue, snakemake.params.resource_files, snakemake.params.resources_left_out
)
signatures = with_user_gmts(signatures, snakemake.params.user_gmts)
aliases = load_alias_table(snakemake.input.aliases)
if settings.get("hgnc_table"):
    aliases = aliases.merged(load_hgnc_complete_set(settings["hgnc_table"]))

adata = read_cohort(snakemake.input.cohort, ["log2", "tpm"])
log2 = pd.DataFrame(adata.layers["log2"], index=adata.obs_names, columns=adata.var_names)
linear = pd.DataFrame(adata.layers["tpm"], index=adata.obs_names, columns=adata.var_names)
result = score_cohort(
    log2,
    linear,
    signatures,
    aliases,
    unavailable=unavailable,
    min_coverage=settings["min_coverage"],
    normalise_ssgsea=settings["ssgsea_normalise"],
    assay=adata.uns.get("assay", "rnaseq"),
    log_ratios=holds_log_ratios(adata.uns),
)
for warning in result.warnings:
    log.warning(warning)

annotated = annotate(result.scores, adata.obs)
for frame, path, index in (
    (result.scores, snakemake.output.scores, True),
    (result.info, snakemake.output.info, False),
    (result.coverage, snakemake.output.coverage, False),
    (annotated, snakemake.output.annotated, True),
):
    write_tsv(frame, path, index=index, float_format="%.6g")

order_by = settings["heatmap_order_by"]
write_section(
    signatures_section(
        result,
        annotated,
        order_by=order_by,
        min_coverage=settings["min_coverage"],
        normalise_ssgsea=settings["ssgsea_normalise"],
    ),
    snakemake.output.section,
)
write_section(immune_section(result, annotated, order_by=order_by), snakemake.output.immune_section)
log.info(
    "%s: %d score columns for %d samples; %d signatures not scored",
    snakemake.wildcards.cohort,
    result.scores.shape[1],
    result.scores.shape[0],
    int((~result.coverage["scored"].astype(bool)).sum()),
)
