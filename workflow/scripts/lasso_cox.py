import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad  # noqa: E402

from ferrostem.files import write_tsv  # noqa: E402
from ferrostem.risk_models import lasso_cox, log2_expression, resolve_universe, risk_score_entry, write_entry  # noqa: E402
from ferrostem.runtime import script_logging  # noqa: E402
from ferrostem.survival import SurvivalSettings, endpoint_frame  # noqa: E402
from ferrostem.survival_stage import tumour_samples  # noqa: E402

log = script_logging()
settings = SurvivalSettings.from_config(snakemake.params.survival).lasso
cohort = settings.discovery
adata = ad.read_h5ad(snakemake.input.cohort)
tumours, _ = tumour_samples(adata.obs)
surv, notes = endpoint_frame(adata.obs.loc[tumours], settings.endpoint)
universe = resolve_universe(settings.universe, snakemake.params.catalogue)
expression = log2_expression(adata, universe).loc[surv.index]
model = lasso_cox(expression, surv["time"].to_numpy(), surv["event"].to_numpy(), endpoint=settings.endpoint,
                  folds=settings.folds, seed=settings.seed, universe=universe)
for note in notes + model.warnings:
    log.warning(note)
write_entry(risk_score_entry(model, cohort), snakemake.output.model)
write_tsv(model.cv, snakemake.output.cv)
log.info("%s: LASSO-Cox kept %d of %d genes (alpha %.4g)", cohort, len(model.weights), len(model.universe), model.alpha)
