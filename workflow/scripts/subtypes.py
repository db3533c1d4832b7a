from _bootstrap import log  # first: logs to the rule's log, puts src/ on the path

import ctypes
import ctypes.util

from ferrostem.report import write_section
from ferrostem.signatures import catalogue_sets
from ferrostem.subtype_report import write_subtypes
from ferrostem.subtypes import SubtypeSettings
from ferrostem.survival_stage import read_scores

cohort = snakemake.wildcards.cohort
# glibc malloc (mallopt(3)): the DE engine's temporaries (16 MB each: 2 M cells per gene block) go back to the
# kernel as soon as the free space at the heap's top passes the trim threshold (twice the dynamic mmap threshold,
# at most 64 MB), so each block's arrays come back as fresh zeroed pages: 1.3 million page faults, 14 s of system
# time in the TCGA-size job. A fixed 32 MB mmap threshold and a 128 MB trim threshold keep them in the heap
# (0.65 million faults, 7 s; peak RSS +50 MB).
libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
if hasattr(libc, "mallopt"):  # glibc only (not macOS, not musl's)
    libc.mallopt(-3, 32 * 2**20)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 128 * 2**20)  # M_TRIM_THRESHOLD
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
