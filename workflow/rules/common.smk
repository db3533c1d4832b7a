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
    sections = [f"{base}/cohort.json", f"{base}/provenance.json"]
    if config["signatures"]["enabled"]:
        sections += [f"{base}/signatures.json", f"{base}/immune.json"]
    sections += [f"{base}/{section}.json" for section in ["survival", "immune_survival", "genes"]]
    return sections


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


# Minimal stand-in for the download branch's resource_path (same name and path convention); the lead merges.
RESOURCE_FILENAMES = {
    "pcbc_stemsig": "SC_PCBC_stemSig.rda", "mcpcounter_genes": "genes.txt",
    "charoentong_28": "Charoentong2017_tableS6_Immune.txt", "ferrdb_v2_driver": "driver.csv",
    "ferrdb_v2_suppressor": "suppressor.csv", "ferrdb_v2_marker": "marker.csv",
    "msigdb_c2_v7_1": "c2.all.v7.1.symbols.gmt", "msigdb_hallmark_v7_0": "h.all.v7.0.symbols.gmt",
    "wikipathways_wp4313": "WP4313-datanodes.tsv",
}


def resource_path(resource_id):
    return f"resources/cache/{resource_id}/{RESOURCE_FILENAMES[resource_id]}"
