import _bootstrap  # noqa: F401 (first: logs to the rule's log, puts src/ on the path)

import pandas as pd

from ferrostem.files import atomic_write, write_tsv
from ferrostem.report import render_report, write_section
from ferrostem.runtime import imports_done
from ferrostem.survival_report import cross_cohort_section
from ferrostem.survival_stage import cross_cohort_tables

imports_done()

cohorts = list(snakemake.params.cohorts)
tables = {c: pd.read_csv(path, sep="\t") for c, path in zip(cohorts, snakemake.input.tables)}
meta = cross_cohort_tables(tables)
write_tsv(meta, snakemake.output.table)
section = cross_cohort_section(meta, cohorts)
write_section(section, snakemake.output.section)
html = render_report(
    [section],
    cohort="all cohorts",
    title="ferrostem: survival across cohorts",
    simulated=bool(snakemake.params.simulated),
)
with atomic_write(snakemake.output.html, encoding="utf-8") as handle:
    handle.write(html)
