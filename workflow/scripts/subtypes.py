import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad  # noqa: E402

from ferrostem.report import write_section  # noqa: E402
from ferrostem.runtime import script_logging  # noqa: E402
from ferrostem.subtype_report import write_subtypes  # noqa: E402
from ferrostem.subtypes import SubtypeSettings  # noqa: E402
from ferrostem.survival_stage import read_scores  # noqa: E402

log = script_logging()
cohort = snakemake.wildcards.cohort
scores, info = read_scores(snakemake.input.scores, snakemake.input.info)
section = write_subtypes(ad.read_h5ad(snakemake.input.cohort), scores, info,
                         SubtypeSettings.from_config(snakemake.params.subtypes), dict(snakemake.output.items()),
                         regulators=snakemake.params.regulators, checkpoint_genes=snakemake.params.checkpoint_genes,
                         endpoints=snakemake.params.endpoints, de_block=snakemake.params.de, cohort=cohort,
                         label=snakemake.params.label or cohort, n_cpus=snakemake.threads)
write_section(section, snakemake.output.section)
for line in section.summary + section.warnings:
    log.info(line)
