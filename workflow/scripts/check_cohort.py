import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from ferrostem.checks import CohortAnnotations, check_cohort  # noqa: E402
from ferrostem.files import write_json  # noqa: E402
from ferrostem.runtime import script_logging  # noqa: E402

log = script_logging()
cohort = CohortAnnotations.read(snakemake.input.cohort)
record = check_cohort(cohort, snakemake.wildcards.cohort, snakemake.params.checks)
for note in record["notes"]:
    log.warning(note)
write_json(record, snakemake.output[0], default=str)
log.info("%s: config checked against the cohort (%d comparisons)", snakemake.wildcards.cohort, len(record["comparisons"]))
