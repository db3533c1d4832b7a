from _bootstrap import log  # first: logs to the rule's log, puts src/ on the path

from pathlib import Path

from ferrostem.demo import DemoParameters, write_demo
from ferrostem.runtime import imports_done

imports_done()

settings = {k: v for k, v in snakemake.params.settings.items() if k not in {"enabled", "outdir"}}
outdir = Path(snakemake.output.truth).parents[1]
truth = write_demo(outdir, DemoParameters(**settings), workers=snakemake.threads)
log.info("simulated demo written to %s (%s)", outdir, truth["events"])
