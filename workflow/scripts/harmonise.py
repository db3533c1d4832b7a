from _bootstrap import log  # first: logs to the rule's log, puts src/ on the path

from ferrostem.download import refetch_hint
from ferrostem.files import atomic_path
from ferrostem.harmonise import harmonise_downloaded
from ferrostem.runtime import imports_done

imports_done()

cohort = snakemake.params.cohort
# a `local:` folder is the user's own; only folders the download rule wrote can be fetched again
refetch = None if cohort.get("local") else refetch_hint(snakemake.params.raw_dir, snakemake.config["download"]["store"])
adata = harmonise_downloaded(
    cohort, snakemake.params.raw_dir, snakemake.params.cdr or None, refetch=refetch, workers=snakemake.threads
)
for warning in adata.uns["harmonisation"].get("warnings", []):
    log.warning(warning)
with atomic_path(snakemake.output[0]) as tmp:
    # uncompressed: at TCGA size (424 x 60,660) gzip cost 16.5 s of CPU to write and 3 s more on each of the
    # eight jobs that read the cohort, for a 1.8x smaller file (293 vs 522 MB); docs/performance.md
    adata.write_h5ad(tmp)
log.info("%s: %d samples x %d genes -> %s", snakemake.wildcards.cohort, adata.n_obs, adata.n_vars, snakemake.output[0])
