import _bootstrap  # noqa: F401 (first: logs to the rule's log, puts src/ on the path)

import pandas as pd

from ferrostem.cohort_file import read_cohort
from ferrostem.report import write_section
from ferrostem.genes_report import genes_section
from ferrostem.runtime import imports_done
from ferrostem.survival import SurvivalSettings
from ferrostem.survival_stage import read_scores

imports_done()

settings = SurvivalSettings.from_config(snakemake.params.survival)
adata = read_cohort(snakemake.input.cohort, ["log2"])
scores, info = read_scores(snakemake.input.scores, snakemake.input.info)
survival = pd.read_csv(snakemake.input.survival, sep="\t")
section = genes_section(
    snakemake.params.label or snakemake.wildcards.cohort,
    adata,
    settings.genes_of_interest,
    scores=scores,
    info=info,
    survival_tables=[survival],
    checkpoint_genes=settings.checkpoint_genes,
    panels=settings.panels,
    panel_folds=settings.panel_folds,
    seed=settings.seed,
)
write_section(section, snakemake.output.section)
