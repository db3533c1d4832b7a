from _bootstrap import log  # first: logs to the rule's log, puts src/ on the path

from ferrostem.download import make_client
from ferrostem.resources import fetch_resource, get_resource
from ferrostem.runtime import imports_done

imports_done()

resource = get_resource(snakemake.wildcards.resource)
if snakemake.wildcards.filename != resource.filename:
    raise ValueError(f"resource {resource.id} is {resource.filename}, not {snakemake.wildcards.filename}")
record = fetch_resource(
    resource, snakemake.output[0], make_client(snakemake.params.download), user_copy=snakemake.params.user_copy or None
)
log.info("resource %s", record)
