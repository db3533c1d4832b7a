import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from ferrostem.download import make_client  # noqa: E402
from ferrostem.resources import fetch_resource, get_resource  # noqa: E402
from ferrostem.runtime import script_logging  # noqa: E402

log = script_logging()
resource = get_resource(snakemake.wildcards.resource)
if snakemake.wildcards.filename != resource.filename:
    raise ValueError(f"resource {resource.id} is {resource.filename}, not {snakemake.wildcards.filename}")
record = fetch_resource(resource, snakemake.output[0], make_client(snakemake.params.download),
                        user_copy=snakemake.params.user_copy or None)
log.info("resource %s", record)
