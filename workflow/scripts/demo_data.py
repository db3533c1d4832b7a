import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from ferrostem.demo import DemoParameters, write_demo  # noqa: E402
from ferrostem.runtime import script_logging  # noqa: E402

log = script_logging()
settings = {k: v for k, v in snakemake.params.settings.items() if k not in {"enabled", "outdir"}}
outdir = Path(snakemake.output.truth).parents[1]
truth = write_demo(outdir, DemoParameters(**settings))
log.info("simulated demo written to %s (%s)", outdir, truth["events"])
