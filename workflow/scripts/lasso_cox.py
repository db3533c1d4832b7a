from _bootstrap import log  # first: logs to the rule's log, puts src/ on the path

from ferrostem.cohort_file import read_cohort
from ferrostem.files import write_tsv
from ferrostem.risk_models import lasso_cox, log2_expression, resolve_universe, risk_score_entry, write_entry
from ferrostem.runtime import imports_done
from ferrostem.survival import SurvivalSettings, endpoint_frame
from ferrostem.survival_stage import tumour_samples

imports_done()

settings = SurvivalSettings.from_config(snakemake.params.survival).lasso
cohort = settings.discovery
adata = read_cohort(snakemake.input.cohort, ["log2"])  # obs and the log2 layer: all it uses
tumours, _ = tumour_samples(adata.obs)
surv, notes = endpoint_frame(adata.obs.loc[tumours], settings.endpoint)
universe = resolve_universe(settings.universe, snakemake.params.catalogue)
expression = log2_expression(adata, universe).loc[surv.index]
model = lasso_cox(
    expression,
    surv["time"].to_numpy(),
    surv["event"].to_numpy(),
    endpoint=settings.endpoint,
    folds=settings.folds,
    seed=settings.seed,
    universe=universe,
)
for note in notes + model.warnings:
    log.warning(note)
write_entry(risk_score_entry(model, cohort), snakemake.output.model)
write_tsv(model.cv, snakemake.output.cv)
log.info("%s: LASSO-Cox kept %d of %d genes (alpha %.4g)", cohort, len(model.weights), len(model.universe), model.alpha)
