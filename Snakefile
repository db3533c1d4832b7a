# ferrostem: ferroptosis and cancer stemness in public cancer expression cohorts.
# Entry point: validates the config, includes one rule module per stage, and asks for every cohort's report.

import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from ferrostem.config import load_config_file  # noqa: E402

# The demo config is the default; a config given with --configfile replaces it instead of merging into it,
# so a real analysis never carries the demo cohorts along. It is read by ferrostem first, so that a missing
# file or a YAML error is one line naming the file, line and column. (Files given with --configfile are read
# by Snakemake before this file runs: `make run CONFIG=...` and `make prefetch` check them the same way.)
if not workflow.overwrite_configfiles:
    load_config_file("config/config.yaml")

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/harmonise.smk"
include: "workflow/rules/de.smk"
include: "workflow/rules/enrichment.smk"
include: "workflow/rules/signatures.smk"
include: "workflow/rules/deconvolution.smk"
include: "workflow/rules/survival.smk"
include: "workflow/rules/subtypes.smk"
include: "workflow/rules/clinical_models.smk"
include: "workflow/rules/pancancer.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
