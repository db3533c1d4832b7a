from _bootstrap import log  # first: logs to the rule's log, puts src/ on the path

import pandas as pd

from ferrostem.cohort_file import read_cohort
from ferrostem.files import write_tsv
from ferrostem.risk_models import read_entry
from ferrostem.report import write_section
from ferrostem.runtime import imports_done
from ferrostem.survival import SurvivalSettings
from ferrostem.survival_report import immune_survival_section, survival_section
from ferrostem.survival_stage import cohort_survival, read_scores

imports_done()

cohort = snakemake.wildcards.cohort
label = snakemake.params.label or cohort
settings = SurvivalSettings.from_config(snakemake.params.survival)
adata = read_cohort(snakemake.input.cohort, ["log2"])  # obs and the log2 layer: all it uses
scores, info = read_scores(snakemake.input.scores, snakemake.input.info)
models = []
for path, cv_path in zip(snakemake.input.models, snakemake.input.model_cv):
    models.append((read_entry(path), pd.read_csv(cv_path, sep="\t")))
result = cohort_survival(adata, scores, info, settings, cohort=cohort, models=models)
write_tsv(result.table, snakemake.output.table)
write_tsv(result.terms, snakemake.output.terms)
write_tsv(result.scores, snakemake.output.scores, index=True, index_label="sample_id")
section = survival_section(label, result, top=settings.plots_top, cutpoint_method=settings.cutpoint.p_method)
write_section(section, snakemake.output.section)
write_section(immune_survival_section(label, result), snakemake.output.immune_section)
for warning in section.warnings:
    log.warning(warning)
log.info("%s: %d score x endpoint rows", cohort, len(result.table))
