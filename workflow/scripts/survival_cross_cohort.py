import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import pandas as pd  # noqa: E402

from ferrostem.files import atomic_write, write_tsv  # noqa: E402
from ferrostem.report import render_report, write_section  # noqa: E402
from ferrostem.runtime import script_logging  # noqa: E402
from ferrostem.survival_report import cross_cohort_section  # noqa: E402
from ferrostem.survival_stage import cross_cohort_tables  # noqa: E402

script_logging()
cohorts = list(snakemake.params.cohorts)
tables = {c: pd.read_csv(path, sep="\t") for c, path in zip(cohorts, snakemake.input.tables)}
meta = cross_cohort_tables(tables)
write_tsv(meta, snakemake.output.table)
section = cross_cohort_section(meta, cohorts)
write_section(section, snakemake.output.section)
html = render_report([section], cohort="all cohorts", title="ferrostem: survival across cohorts",
                     simulated=bool(snakemake.params.simulated))
with atomic_write(snakemake.output.html, encoding="utf-8") as handle:
    handle.write(html)
