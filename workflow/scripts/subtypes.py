from _bootstrap import log  # first: logs to the rule's log, puts src/ on the path

from ferrostem.report import write_section
from ferrostem.runtime import imports_done, keep_block_temporaries_in_heap
from ferrostem.signatures import catalogue_sets
from ferrostem.subtype_report import write_subtypes
from ferrostem.subtypes import SubtypeSettings
from ferrostem.survival_stage import read_scores

imports_done()

cohort = snakemake.wildcards.cohort
keep_block_temporaries_in_heap()  # the DE engine's gene blocks: fewer page faults (runtime.py)
scores, info = read_scores(snakemake.input.scores, snakemake.input.info)
enrichment_sets, set_notes = catalogue_sets(snakemake.params.catalogue)
for note in set_notes:
    log.info(note)
# the path, not the AnnData: write_subtypes reads only the layers it uses (log2, and counts for DESeq2; read_h5ad
# read X, counts, tpm and log2: 515 MB at TCGA size) and lets them go after the DE
section = write_subtypes(
    snakemake.input.cohort,
    scores,
    info,
    SubtypeSettings.from_config(snakemake.params.subtypes),
    dict(snakemake.output.items()),
    regulators=snakemake.params.regulators,
    checkpoint_genes=snakemake.params.checkpoint_genes,
    endpoints=snakemake.params.endpoints,
    de_block=snakemake.params.de,
    enrichment_sets=enrichment_sets,
    enrichment_permutations=snakemake.params.enrichment_permutations,
    enrichment_min_size=snakemake.params.enrichment_min_size,
    cohort=cohort,
    label=snakemake.params.label or cohort,
    n_cpus=snakemake.threads,
)
write_section(section, snakemake.output.section)
for line in section.summary + section.warnings:
    log.info(line)
