from _bootstrap import log  # first: logs to the rule's log, puts src/ on the path

import pandas as pd

from ferrostem.cohort_file import read_cohort
from ferrostem.deconvolution_report import deconvolution_section, deconvolve_cohort
from ferrostem.files import write_tsv
from ferrostem.report import write_section
from ferrostem.resources import verify_job_resources
from ferrostem.runtime import imports_done

imports_done()

settings = snakemake.params.settings
verify_job_resources(snakemake.params.resource_files, snakemake.params.download, snakemake.params.resource_paths)
adata = read_cohort(snakemake.input.cohort, ["tpm", "log2"])
layers = {
    name: pd.DataFrame(adata.layers[name], index=adata.obs_names, columns=adata.var_names) for name in ("tpm", "log2")
}
result = deconvolve_cohort(
    layers,
    dict(adata.uns["layer_scales"]),
    settings["methods"],
    min_coverage=settings["min_coverage"],
    quantiseq_tumour=settings["quantiseq"]["tumour"],
    cibersort_matrix=snakemake.params.resource_files.get("cibersort_lm22"),
    cibersort_left_out=snakemake.params.cibersort_left_out,
    permutations=settings["cibersort"]["permutations"],
    seed=settings["cibersort"]["seed"],
)
for warning in result.warnings:
    log.warning(warning)
for frame, path, index in (
    (result.fractions, snakemake.output.fractions, True),
    (result.coverage, snakemake.output.coverage, False),
):
    write_tsv(frame, path, index=index, float_format="%.6g")
write_section(deconvolution_section(result, adata.obs), snakemake.output.section)
log.info(
    "%s: %d deconvolution columns for %d samples; methods run: %s",
    snakemake.wildcards.cohort,
    result.fractions.shape[1],
    result.fractions.shape[0],
    ", ".join(result.coverage.loc[result.coverage["run"], "method"]) or "none",
)
