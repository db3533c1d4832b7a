import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from ferrostem.download import make_client  # noqa: E402
from ferrostem.runtime import script_logging  # noqa: E402
from ferrostem.sources.xena import download_cdr  # noqa: E402

log = script_logging()
settings = snakemake.params.download
path = download_cdr(make_client(settings), snakemake.output[0], settings["xena_pancan_hub"])
log.info("TCGA-CDR survival table -> %s", path)
