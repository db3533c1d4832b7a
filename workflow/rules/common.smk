# Config validation and the small input functions the rules share.

import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from ferrostem import job_memory  # noqa: E402
from ferrostem.config import validate_config  # noqa: E402
from ferrostem.download import settings as download_settings  # noqa: E402
from ferrostem.enrichment import collection_resources  # noqa: E402
from ferrostem.endpoints import uses_cdr  # noqa: E402
from ferrostem.resources import ResourcePlan, get_resource, load_lock  # noqa: E402
from ferrostem.signatures import load_catalogue, resource_needs, select_signatures  # noqa: E402
from ferrostem.sources.urls import CDR_DATASET  # noqa: E402
from ferrostem.survival import SurvivalSettings  # noqa: E402

SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
SIGNATURE_CATALOGUE = Path(workflow.basedir) / "resources" / "signatures"

# first our readable messages (every problem at once, signature ids against the catalogue), then snakemake's
# validate to fill the defaults
SIGNATURES_ENABLED = (config.get("signatures") or {}).get("enabled", True)
# read once per parse (0.3 s each: YAML and schema checks of every entry); signature_resources selects from it
CATALOGUE = load_catalogue(SIGNATURE_CATALOGUE) if SIGNATURES_ENABLED else []
validate_config(config, SCHEMA, [signature.id for signature in CATALOGUE] if SIGNATURES_ENABLED else None)
validate(config, str(SCHEMA))

RESULTS = config["results"]
COHORTS = config["cohorts"]
DEMO_DIR = config["demo"]["outdir"]
DOWNLOAD = download_settings(config)
RESOURCE_LOCK = load_lock()
# which locked resources the analyses use: fetched as jobs (resources.fetch, default true) or the user's copies
RESOURCE_PLAN = ResourcePlan.from_config(config, RESOURCE_LOCK)
CDR_PATH = f"{RESULTS}/raw/_tcga_cdr/{CDR_DATASET}"


wildcard_constraints:
    cohort="|".join(COHORTS),
    comparison="[A-Za-z0-9][A-Za-z0-9_-]*",


# resources: mem_mb of the jobs, from the size of each job's input (ferrostem.job_memory: the peak measured per
# rule, times a margin), so that a TCGA-BRCA-size cohort asks for more than the demo, and times the attempt on a
# retry (--retries). A job whose input does not exist yet is sized when it becomes ready.
def cohort_job_mem(rule_name):
    def mem_mb(wildcards, input, threads, attempt):
        request = job_memory.cohort_job_mb(
            rule_name,
            input.cohort,
            threads=threads,
            permutations=config["enrichment"]["permutations"],
            engine=config["de"]["engine"],
        )
        return attempt * request

    return mem_mb


def enrichment_mem(wildcards, input, attempt):
    return attempt * job_memory.enrichment_mb(input.table, config["enrichment"]["permutations"])


def harmonise_mem(wildcards, input, attempt):
    return attempt * job_memory.harmonise_mb(input.raw)


def fixed_mem(megabytes):
    """mem_mb of a rule whose need does not grow with its input (the demo generator, the pan-cancer page),
    times the attempt as the estimated ones are."""

    def mem_mb(wildcards, attempt):
        return attempt * megabytes

    return mem_mb


# Which ready job starts first. With few cores the start order decides the wall time: snakemake starts the
# ready jobs of highest priority that fit the free cores. Each rule's priority is its "bottom level": about how
# many seconds remain from its start to the last report along its longest chain of dependent jobs (TCGA size,
# 424 x 60,660, on 2 cores; docs/performance.md, "Scheduling"). So a job always outranks the jobs that wait for
# it, the signature scores (which subtypes, survival and the clinical models wait for) start before DE, and
# survival is not left for last. The order matters, not the numbers; tests/test_rules.py checks that every job
# rule has one and that it outranks its dependants.
PRIORITY = {
    "demo_data": 150,
    "download_cohort": 145,
    "download_cdr": 145,
    "fetch_resource": 145,
    "harmonise": 115,
    "check_cohort": 100,
    "signature_scores": 95,
    "subtypes": 75,
    "de": 70,
    "lasso_cox": 52,
    "clinical_models": 40,
    "survival": 32,
    "enrichment": 24,
    "deconvolution": 11,
    "cohort_report": 9,
    "genes_of_interest": 8,
    "survival_cross_cohort": 3,
    "pancancer": 3,
    "report": 3,
}


def head_threads(wildcards):
    """Threads of the jobs every other job of a cohort waits for (download_cohort, harmonise: many files read,
    copied and checksummed on threads). With one cohort nothing can run beside them, so they take two; with
    several, one each, and the other cohorts' jobs use the other cores."""
    return 2 if len(COHORTS) == 1 else 1


def cohort_config(cohort):
    return COHORTS[cohort]


def raw_dir(cohort):
    """Where the cohort's raw files are: a local folder, or what the download rules write."""
    return COHORTS[cohort].get("local") or f"{RESULTS}/raw/{cohort}"


def raw_inputs(wildcards):
    """The cohort's raw folder (written by download_cohort unless `local:`), plus the TCGA-CDR when used."""
    cohort = COHORTS[wildcards.cohort]
    inputs = {"raw": raw_dir(wildcards.cohort)}
    if uses_cdr(cohort):
        inputs["cdr"] = CDR_PATH
    return inputs


def resource_path(resource_id):
    """Where the locked resource `resource_id` is cached (rule fetch_resource puts it there)."""
    return str(get_resource(resource_id, RESOURCE_LOCK).cache_path())


def mirror_inputs(wildcards):
    """The demo's mirror is generated by a rule: downloads from it wait for it."""
    mirror = config.get("mirror") or ""
    demo_mirror = f"{DEMO_DIR}/mirror"
    if config["demo"]["enabled"] and mirror.rstrip("/") == demo_mirror:
        return [demo_mirror]
    return []


def prefetch_targets(wildcards):
    """Everything the config downloads: raw folders, the TCGA-CDR if used, and the listed resources."""
    targets = [raw_dir(c) for c in COHORTS if not COHORTS[c].get("local")]
    if any(uses_cdr(COHORTS[c]) for c in COHORTS):
        targets.append(CDR_PATH)
    return targets + [resource_path(i) for i in RESOURCE_PLAN.prefetch_ids(config["resources"]["prefetch"])]


def signature_resources():
    """The locked resources the selected catalogue entries need: ({id: cache path} this run uses, so that
    fetch_resource runs first; {id: why left out} for the others, shown in the report)."""
    settings = config["signatures"]
    if not settings["enabled"]:
        return {}, {}
    catalogue = select_signatures(CATALOGUE, settings["include"], settings["exclude"])
    usable, left_out = RESOURCE_PLAN.split({rid: [rid] for rid in resource_needs(catalogue)})
    return {rid: paths[0] for rid, paths in usable.items()}, left_out


def report_sections(wildcards):
    """Every section of a cohort's report; a stage adds its section here."""
    base = f"{RESULTS}/{wildcards.cohort}/sections"
    sections = [f"{base}/cohort.json", f"{base}/provenance.json"]
    sections += [
        f"{base}/{stage}_{name}.json" for name in comparisons(wildcards.cohort) for stage in ("de", "enrichment")
    ]
    if config["signatures"]["enabled"]:
        sections += [f"{base}/signatures.json", f"{base}/immune.json"]
    if config["deconvolution"]["enabled"]:
        sections.append(f"{base}/deconvolution.json")
    sections += [f"{base}/{section}.json" for section in ["survival", "immune_survival", "genes", "clinical_models"]]
    sections += subtype_sections(wildcards)
    return sections


def subtype_sections(wildcards):
    """The ferroptosis-subtypes section (rule subtypes) when enabled; it compares the signature scores."""
    if config["subtypes"]["enabled"] and config["signatures"]["enabled"]:
        return [f"{RESULTS}/{wildcards.cohort}/sections/subtypes.json"]
    return []


def get_final_output():
    return (
        [f"{RESULTS}/{cohort}/report.html" for cohort in COHORTS]
        + [f"{RESULTS}/{cohort}/cohort.h5ad" for cohort in COHORTS]
        + [checked_cohort(cohort) for cohort in COHORTS]
        + survival_outputs()
    )


def checked_cohort(cohort="{cohort}"):
    """The check of the config against the harmonised cohort (rule check_cohort); the long jobs take it as an
    ancient input: they wait for it, but its rerun after a config edit does not rerun them."""
    return f"{RESULTS}/{cohort}/config_check.json"


def cohort_checks(cohort):
    """What rule check_cohort checks on a harmonised cohort."""
    return {
        "comparisons": COHORTS[cohort].get("comparisons", []),
        "min_group_size": config["de"]["min_group_size"],
        "genes_of_interest": SURVIVAL_SETTINGS.genes_of_interest,
    }


# survival stage (workflow/rules/survival.smk): the block is read here once; its scripts get the block (SURVIVAL)
# as a param and build the same SurvivalSettings from it
SURVIVAL = config["survival"]
SURVIVAL_SETTINGS = SurvivalSettings.from_config(SURVIVAL)
LASSO = SURVIVAL_SETTINGS.lasso
CLINICAL_MODELS = config["clinical_models"]


def lasso_model_stem():
    """results/models/lasso_cox_<discovery>_<endpoint>: the model id (lower case) is its file name."""
    return f"{RESULTS}/models/lasso_cox_{LASSO.discovery}_{LASSO.endpoint}".lower()


def lasso_model_paths(wildcards):
    """The LASSO risk model applies to its discovery and validation cohorts."""
    if LASSO.enabled and (wildcards.cohort == LASSO.discovery or wildcards.cohort in LASSO.validation):
        return {"models": [f"{lasso_model_stem()}.yaml"], "model_cv": [f"{lasso_model_stem()}_cv.tsv"]}
    return {"models": [], "model_cv": []}


def survival_outputs():
    """The cross-cohort survival page when several cohorts run; the pan-cancer page when enabled."""
    outputs = [f"{RESULTS}/cross_cohort/report.html"] if len(COHORTS) > 1 else []
    return outputs + ([f"{RESULTS}/pancancer/report.html"] if config["pancancer"]["enabled"] else [])


def pancancer_de_tables():
    """Pan-cancer page: cancer -> its tumour-vs-normal de.tsv; cohorts without that comparison (no normals) are
    left out."""
    name = config["pancancer"]["comparison"]
    return {c: f"{RESULTS}/{c}/de/{name}/de.tsv" for c in COHORTS if name in comparisons(c)}


# --- differential expression and enrichment ---------------------------------------------------


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


def enrichment_resources():
    """Resource-backed collections that are enabled: ({name: cache paths} this run uses, so that fetch_resource
    runs first; {name: why left out} for the others, shown in the report)."""
    return RESOURCE_PLAN.split(collection_resources(enrichment_collections()))


def enrichment_resource_files():
    return enrichment_resources()[0]


def enrichment_inputs(wildcards):
    files = [spec["gmt"] for spec in enrichment_collections().values() if spec.get("gmt") and spec.get("enabled", True)]
    for spec in enrichment_collections().values():
        folder = Path(spec.get("catalogue") or "")
        if spec.get("catalogue") and spec.get("enabled", True) and folder.is_dir():
            files += sorted(str(p) for p in folder.glob("*.y*ml"))
    return files + [f for paths in enrichment_resource_files().values() for f in paths]


DECONVOLUTION = config["deconvolution"]


def cibersort_matrix():
    """({"cibersort_lm22": cache path} when the user gave a copy, {}), and why CIBERSORT is left out otherwise."""
    if "cibersort" not in DECONVOLUTION["methods"]:
        return {}, None
    usable, left_out = RESOURCE_PLAN.split({"cibersort_lm22": ["cibersort_lm22"]})
    return {rid: paths[0] for rid, paths in usable.items()}, left_out.get("cibersort_lm22")


CIBERSORT_FILES, CIBERSORT_LEFT_OUT = cibersort_matrix()
