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
    comparison="[A-Za-z0-9][A-Za-z0-9_-]*",


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
        f"{base}/{stage}_{name}.json" for name in comparisons(wildcards.cohort) for stage in ("de", "enrichment")
    ]


def get_final_output():
    return [f"{RESULTS}/{cohort}/report.html" for cohort in COHORTS] + [
        f"{RESULTS}/{cohort}/cohort.h5ad" for cohort in COHORTS
    ]


# --- differential expression and enrichment ---------------------------------------------------

# Minimal stand-in for the download stage's resource_path(); same path convention, merged by the lead.
RESOURCE_FILES = {
    "msigdb_hallmark_v7_0": "h.all.v7.0.symbols.gmt",
    "msigdb_c2_v7_1": "c2.all.v7.1.symbols.gmt",
    "wikipathways_wp4313": "WP4313-datanodes.tsv",
    "ferrdb_v2_driver": "driver.csv",
    "ferrdb_v2_suppressor": "suppressor.csv",
    "ferrdb_v2_marker": "marker.csv",
}


if "resource_path" not in globals():

    def resource_path(resource_id):
        return f"resources/cache/{resource_id}/{RESOURCE_FILES[resource_id]}"


def comparisons(cohort):
    return [c["name"] for c in COHORTS[cohort].get("comparisons", [])]


def comparison_config(cohort, name):
    return next(c for c in COHORTS[cohort].get("comparisons", []) if c["name"] == name)


def repo_path(path):
    """A relative path from the config: the working directory's file if it exists, else the repository's
    (the shipped gene lists live in the repository; runs may use another working directory)."""
    if Path(path).is_absolute() or Path(path).exists():
        return str(path)
    return str(Path(workflow.basedir) / path)


def enrichment_collections():
    """Configured collections plus one per user GMT (user_<file stem>), with repository paths resolved."""
    collections = {}
    for name, spec in config["enrichment"].get("collections", {}).items():
        spec = dict(spec)
        for key in ("gmt", "catalogue"):
            if spec.get(key):
                spec[key] = repo_path(spec[key])
        collections[name] = spec
    for path in config["enrichment"].get("user_gmts", []):
        collections[f"user_{Path(path).stem}"] = {"gmt": repo_path(path), "theme": "other"}
    return collections


def enrichment_resource_files():
    return {
        name: [resource_path(r) for r in ([spec["resource"]] if isinstance(spec["resource"], str) else spec["resource"])]
        for name, spec in enrichment_collections().items()
        if spec.get("resource") and spec.get("enabled", True)
    }


def enrichment_inputs(wildcards):
    files = [spec["gmt"] for spec in enrichment_collections().values() if spec.get("gmt") and spec.get("enabled", True)]
    for spec in enrichment_collections().values():
        folder = Path(spec.get("catalogue") or "")
        if spec.get("catalogue") and spec.get("enabled", True) and folder.is_dir():
            files += sorted(str(p) for p in folder.glob("*.y*ml"))
    return files + [f for paths in enrichment_resource_files().values() for f in paths]
