from _bootstrap import log  # first: logs to the rule's log, puts src/ on the path

from ferrostem.download import make_client
from ferrostem.runtime import imports_done
from ferrostem.sources.xena import download_cdr

imports_done()

settings = snakemake.params.download
path = download_cdr(make_client(settings), snakemake.output[0], settings["xena_pancan_hub"])
log.info("TCGA-CDR survival table -> %s", path)
