import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad  # noqa: E402
import pandas as pd  # noqa: E402

from ferrostem.files import atomic_write  # noqa: E402
from ferrostem.risk_models import read_entry  # noqa: E402
from ferrostem.report import write_section  # noqa: E402
from ferrostem.runtime import script_logging  # noqa: E402
from ferrostem.survival_report import cohort_survival, read_scores  # noqa: E402

log = script_logging()
cohort = snakemake.wildcards.cohort
adata = ad.read_h5ad(snakemake.input.cohort)
scores, info = read_scores(snakemake.input.scores, snakemake.input.info)
models = []
for path, cv_path in zip(snakemake.input.models, snakemake.input.model_cv):
    models.append((read_entry(path), pd.read_csv(cv_path, sep="\t")))
result = cohort_survival(adata, scores, info, snakemake.params.survival, cohort=cohort,
                         label=snakemake.params.label or cohort, models=models)
with atomic_write(snakemake.output.table) as handle:
    result.table.to_csv(handle, sep="\t", index=False)
with atomic_write(snakemake.output.terms) as handle:
    result.terms.to_csv(handle, sep="\t", index=False)
with atomic_write(snakemake.output.scores) as handle:
    result.scores.to_csv(handle, sep="\t", index_label="sample_id")
write_section(result.survival, snakemake.output.section)
write_section(result.immune, snakemake.output.immune_section)
for warning in result.survival.warnings:
    log.warning(warning)
log.info("%s: %d score x endpoint rows", cohort, len(result.table))
