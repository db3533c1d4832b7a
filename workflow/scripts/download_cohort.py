import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from ferrostem.download import download_cohort  # noqa: E402
from ferrostem.runtime import script_logging  # noqa: E402

log = script_logging()
raw = download_cohort(snakemake.params.cohort, snakemake.params.download, snakemake.output[0])
log.info("%s: raw files in %s", snakemake.wildcards.cohort, raw)
