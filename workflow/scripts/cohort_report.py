import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad  # noqa: E402

from ferrostem.report import write_section  # noqa: E402
from ferrostem.runtime import script_logging  # noqa: E402
from ferrostem.cohort_report import cohort_section, provenance_section  # noqa: E402

script_logging()
adata = ad.read_h5ad(snakemake.input[0])
cohort = snakemake.params.cohort
time_unit = cohort.get("geo", {}).get("time_unit") if cohort.get("source") == "geo" else None
write_section(cohort_section(adata, cohort.get("label", snakemake.wildcards.cohort), time_unit=time_unit),
              snakemake.output.summary)
write_section(provenance_section(adata, cohort, snakemake.params.config), snakemake.output.provenance)
