# Config validation and the small input functions the rules share.

import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from ferrostem.config import validate_config  # noqa: E402

SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"

# first our readable messages (every problem at once), then snakemake's validate to fill the defaults
validate_config(config, SCHEMA)
validate(config, str(SCHEMA))

RESULTS = config["results"]
COHORTS = config["cohorts"]
DEMO_DIR = config["demo"]["outdir"]


wildcard_constraints:
    cohort="|".join(COHORTS),


def cohort_config(cohort):
    return COHORTS[cohort]


def raw_dir(cohort):
    """Where the cohort's raw files are: a local folder, or what the download rules write."""
    return COHORTS[cohort].get("local") or f"{RESULTS}/raw/{cohort}"


def raw_inputs(wildcards):
    cohort = COHORTS[wildcards.cohort]
    folder = raw_dir(wildcards.cohort)
    if cohort["source"] == "gdc":
        return [f"{folder}/files.json", f"{folder}/cases.json"]
    if cohort["source"] == "geo":
        return [f"{folder}/{cohort['accession']}_series_matrix.txt.gz"]
    return []


def report_sections(wildcards):
    """Every section of a cohort's report; a stage adds its section here."""
    base = f"{RESULTS}/{wildcards.cohort}/sections"
    return [f"{base}/cohort.json", f"{base}/provenance.json"] + [
        f"{base}/{section}.json" for section in ["survival", "immune_survival", "genes"]
    ]


def get_final_output():
    return [f"{RESULTS}/{cohort}/report.html" for cohort in COHORTS] + [
        f"{RESULTS}/{cohort}/cohort.h5ad" for cohort in COHORTS
    ] + survival_outputs()


# survival stage (workflow/rules/survival.smk)
SURVIVAL = config["survival"]
LASSO = SURVIVAL["lasso"]


def lasso_model_stem():
    """results/models/lasso_cox_<discovery>_<endpoint>: the model id (lower case) is its file name."""
    return f"{RESULTS}/models/lasso_cox_{LASSO.get('discovery')}_{LASSO.get('endpoint', 'OS')}".lower()


def lasso_model_paths(wildcards):
    """The LASSO risk model applies to its discovery and validation cohorts."""
    if LASSO["enabled"] and (wildcards.cohort == LASSO["discovery"] or wildcards.cohort in LASSO["validation"]):
        return {"models": [f"{lasso_model_stem()}.yaml"], "model_cv": [f"{lasso_model_stem()}_cv.tsv"]}
    return {"models": [], "model_cv": []}


def survival_outputs():
    """The cross-cohort survival page when several cohorts run."""
    return [f"{RESULTS}/cross_cohort/report.html"] if len(COHORTS) > 1 else []
