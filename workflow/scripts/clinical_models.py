from _bootstrap import log  # first: logs to the rule's log, puts src/ on the path

from ferrostem.clinical_models_report import cohort_clinical_models
from ferrostem.cohort_file import read_cohort
from ferrostem.files import write_tsv
from ferrostem.risk_models import read_entry
from ferrostem.report import write_section
from ferrostem.runtime import imports_done
from ferrostem.survival_stage import read_scores

imports_done()

adata = read_cohort(snakemake.input.cohort, ["log2"])  # obs and the log2 layer: all it uses
scores, info = read_scores(snakemake.input.scores, snakemake.input.info)
result = cohort_clinical_models(
    adata,
    scores,
    info,
    snakemake.params.clinical,
    models=[read_entry(path) for path in snakemake.input.models],
    cohort=snakemake.wildcards.cohort,
    label=snakemake.params.label or snakemake.wildcards.cohort,
)
for name in ["terms", "points", "calibration", "decision"]:
    write_tsv(result.tables[name], getattr(snakemake.output, name))
write_section(result.section, snakemake.output.section)
for note in result.section.warnings:
    log.warning(note)
log.info("%s: %d clinical models", snakemake.wildcards.cohort, len(result.models))
