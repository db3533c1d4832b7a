import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad  # noqa: E402
import pandas as pd  # noqa: E402

from ferrostem.report import write_section  # noqa: E402
from ferrostem.runtime import script_logging  # noqa: E402
from ferrostem.genes_report import genes_section  # noqa: E402
from ferrostem.survival import SurvivalSettings  # noqa: E402
from ferrostem.survival_stage import read_scores  # noqa: E402

script_logging()
settings = SurvivalSettings.from_config(snakemake.params.survival)
adata = ad.read_h5ad(snakemake.input.cohort)
scores, info = read_scores(snakemake.input.scores, snakemake.input.info)
survival = pd.read_csv(snakemake.input.survival, sep="\t")
section = genes_section(snakemake.params.label or snakemake.wildcards.cohort, adata, settings.genes_of_interest,
                        scores=scores, info=info, survival_tables=[survival],
                        checkpoint_genes=settings.checkpoint_genes, panels=settings.panels,
                        panel_folds=settings.panel_folds, seed=settings.seed)
write_section(section, snakemake.output.section)
