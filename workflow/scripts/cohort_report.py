import _bootstrap  # noqa: F401 (first: logs to the rule's log, puts src/ on the path)

from ferrostem.cohort_file import read_cohort
from ferrostem.cohort_report import (
    COHORT_REPORT_LAYERS,
    COHORT_REPORT_OPTIONAL_LAYERS,
    cohort_section,
    provenance_section,
)
from ferrostem.report import write_section
from ferrostem.runtime import imports_done

imports_done()

adata = read_cohort(snakemake.input.cohort, COHORT_REPORT_LAYERS, optional=COHORT_REPORT_OPTIONAL_LAYERS)
cohort = snakemake.params.cohort
time_unit = cohort.get("geo", {}).get("time_unit") if cohort.get("source") == "geo" else None
write_section(
    cohort_section(adata, cohort.get("label", snakemake.wildcards.cohort), time_unit=time_unit),
    snakemake.output.summary,
)
write_section(provenance_section(adata, cohort, snakemake.params.config), snakemake.output.provenance)
