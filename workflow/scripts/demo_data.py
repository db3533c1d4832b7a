import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from ferrostem.demo import DemoParameters, write_demo  # noqa: E402
from ferrostem.runtime import script_logging  # noqa: E402

log = script_logging()
settings = {k: v for k, v in snakemake.params.settings.items() if k not in {"enabled", "outdir"}}
truth = write_demo(snakemake.params.outdir, DemoParameters(**settings))
log.info("simulated demo written to %s (%s)", snakemake.params.outdir, truth["events"])
