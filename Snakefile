# ferrostem: ferroptosis and cancer stemness in public cancer expression cohorts.
# Entry point: validates the config, includes one rule module per stage, and asks for every cohort's report.

from snakemake.utils import min_version

min_version("9.0")


# The demo config is the default; a config given with --configfile replaces it instead of merging into it,
# so a real analysis never carries the demo cohorts along.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/cohort.smk"
include: "workflow/rules/de.smk"
include: "workflow/rules/enrichment.smk"
include: "workflow/rules/signatures.smk"
include: "workflow/rules/survival.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        get_final_output(),
    default_target: True
