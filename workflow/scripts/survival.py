import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad  # noqa: E402
import pandas as pd  # noqa: E402

from ferrostem.files import write_tsv  # noqa: E402
from ferrostem.risk_models import read_entry  # noqa: E402
from ferrostem.report import write_section  # noqa: E402
from ferrostem.runtime import script_logging  # noqa: E402
from ferrostem.survival import SurvivalSettings  # noqa: E402
from ferrostem.survival_report import immune_survival_section, survival_section  # noqa: E402
from ferrostem.survival_stage import cohort_survival, read_scores  # noqa: E402

log = script_logging()
cohort = snakemake.wildcards.cohort
label = snakemake.params.label or cohort
settings = SurvivalSettings.from_config(snakemake.params.survival)
adata = ad.read_h5ad(snakemake.input.cohort)
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
