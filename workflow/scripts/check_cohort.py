from _bootstrap import log  # first: logs to the rule's log, puts src/ on the path

from ferrostem.checks import CohortAnnotations, check_cohort
from ferrostem.files import write_json
from ferrostem.runtime import imports_done

imports_done()

cohort = CohortAnnotations.read(snakemake.input.cohort)
record = check_cohort(cohort, snakemake.wildcards.cohort, snakemake.params.checks)
for note in record["notes"]:
    log.warning(note)
write_json(record, snakemake.output[0], default=str)
log.info(
    "%s: config checked against the cohort (%d comparisons)", snakemake.wildcards.cohort, len(record["comparisons"])
)
