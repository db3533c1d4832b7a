from _bootstrap import log  # first: logs to the rule's log, puts src/ on the path

from ferrostem.download import download_cohort
from ferrostem.runtime import imports_done

imports_done()

raw = download_cohort(
    snakemake.params.cohort, snakemake.params.download, snakemake.output[0], workers=snakemake.threads
)
log.info("%s: raw files in %s", snakemake.wildcards.cohort, raw)
