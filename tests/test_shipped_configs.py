"""The shipped real-cohort configs (config/cohorts/) and the seed studies (config/studies/) plan the whole analysis.

Each config is dry-run offline (`--dag`: nothing runs or downloads) and the planned job graph is read with the
helpers of test_download_resources, so that a config which leaves out a stage fails here, not after a long real run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_snakemake
from test_download_resources import SIGNATURE_RESOURCES, fetched_before, planned_dag

# The pan-cancer config (33 projects, some without normal samples, no per-cancer LASSO model) has its own
# DAG test in test_pancancer.py; every other shipped config runs the whole single-cohort mission.
COHORT_CONFIGS = sorted(p for p in (REPO / "config" / "cohorts").glob("*.yaml") if p.stem != "tcga-pancancer")
STUDIES = REPO / "config" / "studies"
STUDY_FILES = [
    "arih2-hcc-tcga-lihc.yaml",
    "fasn-srebf2-crc-stemness.yaml",
    "icb-response-vs-ferroptosis.yaml",
    "cml-ferroptosis-panel.yaml",
]
RUNNABLE_STUDIES = [STUDIES / name for name in STUDY_FILES if name != "cml-ferroptosis-panel.yaml"]
EVERY_ENDPOINT = {"OS", "DSS", "DFI", "PFI"}
ANALYSES = {"de", "enrichment", "signature_scores", "survival", "genes_of_interest", "report"}
MRNASI_AND_28_CELL_TYPES = {"pcbc_stemsig", "charoentong_28"}


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory):
    """planned_dag of a config file, each file dry-run once per module (in a fresh working directory)."""
    cache: dict[Path, tuple[dict[str, str], set[tuple[str, str]]]] = {}

    def plan(config: Path) -> tuple[dict[str, str], set[tuple[str, str]]]:
        if config not in cache:
            cache[config] = planned_dag(tmp_path_factory.mktemp(config.stem), config)
        return cache[config]

    return plan


def rule_of(label: str) -> str:
    return label.split("\\n")[0]


def ancestors(job: str, edges: set[tuple[str, str]]) -> set[str]:
    """Every job `job` waits for, directly or not."""
    parents: dict[str, set[str]] = {}
    for up, down in edges:
        parents.setdefault(down, set()).add(up)
    seen: set[str] = set()
    todo = [job]
    while todo:
        for parent in parents.get(todo.pop(), ()):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def jobs_of(labels: dict[str, str], rule: str) -> list[str]:
    return [job for job, label in labels.items() if rule_of(label) == rule]


def assert_whole_analysis_planned(config: dict, labels: dict[str, str], edges: set[tuple[str, str]]) -> None:
    """One report per cohort, each waiting for DE, enrichment, scoring, survival and genes-of-interest jobs;
    one DE and one enrichment job per comparison; every enrichment job after a DE job."""
    cohorts = config["cohorts"]
    rules = {rule_of(label) for label in labels.values()}
    assert ANALYSES | {"fetch_resource"} <= rules, sorted(rules)
    reports = jobs_of(labels, "report")
    assert len(reports) == len(cohorts)
    for report in reports:
        upstream = {rule_of(labels[job]) for job in ancestors(report, edges)}
        assert ANALYSES - {"report"} <= upstream, sorted(upstream)
    n_comparisons = sum(len(cohort.get("comparisons", [])) for cohort in cohorts.values())
    assert len(jobs_of(labels, "de")) == len(jobs_of(labels, "enrichment")) == n_comparisons
    for job in jobs_of(labels, "enrichment"):
        assert any(rule_of(labels[up]) == "de" for up, down in edges if down == job)
    if len(cohorts) > 1:  # the cross-cohort page waits for every cohort's survival table
        [cross] = jobs_of(labels, "survival_cross_cohort")
        assert set(jobs_of(labels, "survival")) <= {up for up, down in edges if down == cross}


def tumour_vs_normal(cohort: dict, *, paired: bool) -> list[dict]:
    return [
        c
        for c in cohort.get("comparisons", [])
        if (c["column"], c["test"], c["reference"]) == ("tissue", "tumor", "normal")
        and c.get("paired", False) == paired
    ]


@pytest.mark.parametrize("shipped", COHORT_CONFIGS, ids=lambda path: path.stem)
def test_shipped_cohort_config_plans_the_whole_analysis(shipped: Path, planned):
    """As shipped (no edits): tumour-vs-normal DE paired and unpaired in every cohort (each has matched
    tumour/normal patients), enrichment against every collection, every catalogue signature with mRNAsi and the
    28 immune cell types fetched first, the demo's genes of interest and panels, survival on every endpoint, the
    LASSO-Cox model, and a report per cohort."""
    config = yaml.safe_load(shipped.read_text())
    demo = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for cohort_id, cohort in config["cohorts"].items():
        assert len(tumour_vs_normal(cohort, paired=True)) == 1, f"{cohort_id}: no paired tumour-vs-normal comparison"
        assert len(tumour_vs_normal(cohort, paired=False)) == 1, f"{cohort_id}: no unpaired tumour-vs-normal comparison"
    assert "collections" not in (config.get("enrichment") or {})  # the default: every collection
    assert not (config.get("signatures") or {}).get("include") and not (config.get("signatures") or {}).get("exclude")
    survival = config["survival"]
    assert set(survival.get("endpoints", EVERY_ENDPOINT)) == EVERY_ENDPOINT
    assert survival["genes_of_interest"] == demo["survival"]["genes_of_interest"]
    assert survival["panels"] == demo["survival"]["panels"]
    assert survival["lasso"]["enabled"] and survival["lasso"]["discovery"] in config["cohorts"]

    labels, edges = planned(shipped)
    assert_whole_analysis_planned(config, labels, edges)
    scoring = fetched_before(labels, edges, "signature_scores")
    assert scoring and all(ids == SIGNATURE_RESOURCES for ids in scoring), scoring
    [lasso] = jobs_of(labels, "lasso_cox")
    fitted_in = [job for job in jobs_of(labels, "survival") if lasso in ancestors(job, edges)]
    assert len(fitted_in) == 1 + len(survival["lasso"]["validation"])


def test_discovery_validation_config_trains_on_tcga_and_validates_on_gse14520(planned):
    """TCGA-LIHC from the GDC with TCGA-CDR endpoints is the discovery cohort, GSE14520 (with its supplementary
    sample table) the validation one; the model is trained once, both survival jobs use it, and the cross-cohort
    page is planned."""
    path = REPO / "config" / "cohorts" / "lihc-discovery-validation.yaml"
    config = yaml.safe_load(path.read_text())
    tcga, gse = config["cohorts"]["tcga_lihc"], config["cohorts"]["gse14520"]
    assert (tcga["source"], tcga["project"], tcga["survival_source"]) == ("gdc", "TCGA-LIHC", "cdr")
    assert (gse["source"], gse["accession"]) == ("geo", "GSE14520")
    shipped_gse = yaml.safe_load((REPO / "config" / "cohorts" / "gse14520.yaml").read_text())["cohorts"]["gse14520"]
    assert gse["geo"] == shipped_gse["geo"]  # the validation cohort reads the series exactly as gse14520.yaml does
    lasso = config["survival"]["lasso"]
    assert (lasso["enabled"], lasso["discovery"], lasso["validation"], lasso["endpoint"]) == (
        True,
        "tcga_lihc",
        ["gse14520"],
        "OS",
    )

    labels, edges = planned(path)
    [lasso_job] = jobs_of(labels, "lasso_cox")
    survival_jobs = jobs_of(labels, "survival")
    assert len(survival_jobs) == 2 and all(lasso_job in ancestors(job, edges) for job in survival_jobs)
    discovery_download = [job for job, label in labels.items() if label == "download_cohort\\ncohort: tcga_lihc"]
    assert discovery_download and set(discovery_download) <= ancestors(lasso_job, edges)
    assert not any(labels[job] == "download_cohort\\ncohort: gse14520" for job in ancestors(lasso_job, edges))
    [cross] = jobs_of(labels, "survival_cross_cohort")
    assert cross in {up for up, down in edges if rule_of(labels[down]) == "all"}


def test_every_seed_study_is_shipped_and_cites_its_paper():
    """One config per analysis of the seed papers, each header naming authors, journal, year and DOI."""
    assert sorted(path.name for path in STUDIES.glob("*.yaml")) == sorted(STUDY_FILES)
    expected_doi = {
        "arih2-hcc-tcga-lihc.yaml": ["10.3389/fimmu.2025.1548691"],
        "fasn-srebf2-crc-stemness.yaml": ["10.3389/fimmu.2025.1611375", "10.3389/fimmu.2025.1708850"],
        "icb-response-vs-ferroptosis.yaml": ["10.3389/fimmu.2025.1708850"],
        "cml-ferroptosis-panel.yaml": ["10.3389/fimmu.2024.1402669"],
    }
    for name, dois in expected_doi.items():
        header = "\n".join(line for line in (STUDIES / name).read_text().splitlines() if line.startswith("#"))
        assert "Frontiers in Immunology" in header and re.search(r"\b20(24|25|26)\b", header), name
        authors = r"# (Paper|Seeds?): .*?[A-Z][a-z]+ [A-Z]{1,2}, [A-Z][a-z]+ [A-Z]{1,2}, "  # "Shu Q, Wang Q, ..."
        assert re.search(authors, header, re.DOTALL), name
        for doi in dois:
            assert f"DOI {doi}" in header, (name, doi)


@pytest.mark.parametrize("study", RUNNABLE_STUDIES, ids=lambda path: path.stem)
def test_seed_study_plans_its_analyses(study: Path, planned):
    """Each runnable study plans the whole analysis on the paper's cohorts, with the paper's genes and scores."""
    config = yaml.safe_load(study.read_text())
    labels, edges = planned(study)
    assert_whole_analysis_planned(config, labels, edges)
    projects = {cohort.get("project") for cohort in config["cohorts"].values()}
    survival = config.get("survival") or {}
    if study.stem.startswith("arih2"):
        assert projects == {"TCGA-LIHC"} and survival["genes_of_interest"] == ["ARIH2"]
        assert survival["checkpoint_genes"]  # ARIH2 against the checkpoint genes
        assert all(ids == SIGNATURE_RESOURCES for ids in fetched_before(labels, edges, "signature_scores"))
    elif study.stem.startswith("fasn"):
        assert projects == {"TCGA-COAD", "TCGA-READ"}
        assert {"FASN", "SREBF2"} <= set(survival["genes_of_interest"])
        assert all("pcbc_stemsig" in ids for ids in fetched_before(labels, edges, "signature_scores"))  # mRNAsi
    else:
        include = set(config["signatures"]["include"])
        assert {"ifng6_ayers2017", "tis_gep18_ayers_cristescu"} <= include
        assert {"fps_he_melanoma", "ferroptosis_core_resistance", "ferrdb_v2_drivers"} <= include
        fetched = fetched_before(labels, edges, "signature_scores")
        assert fetched and not any(ids & MRNASI_AND_28_CELL_TYPES for ids in fetched)  # only what it scores


def test_cml_study_has_no_unverified_series_and_plans_once_one_is_filled_in(tmp_path: Path):
    """The CML series could not be verified offline: as shipped the study has no cohort and the workflow refuses
    it naming `cohorts`; its commented cohort template, filled in, plans DE, the panel and the rest."""
    path = STUDIES / "cml-ferroptosis-panel.yaml"
    text = path.read_text()
    assert "NOT VERIFIED" in text
    assert yaml.safe_load(text)["cohorts"] == {}
    refused = run_snakemake(tmp_path, "-n", "--configfile", str(path), check=False)
    assert refused.returncode != 0 and "cohorts = {}" in refused.stdout + refused.stderr

    after = text.split("\ncohorts: {}\n", 1)[1].splitlines()
    template = [line[1:] for line in after[: next(i for i, line in enumerate(after) if not line.startswith("#"))]]
    filled = "\n".join(template)
    values = {
        "<GSE accession>": "GSE0000",
        "<platform>": "GPL0",
        "<GPL id, if the series has several platforms>": "GPL0",
        "<characteristics key of the CML / normal label>": "disease",
        "<value of the CML samples>": "CML",
        "<value of the normal samples>": "healthy",
    }
    for placeholder, value in values.items():
        assert placeholder in filled, placeholder
        filled = filled.replace(placeholder, value)
    config = yaml.safe_load(text)
    config["cohorts"] = yaml.safe_load(filled)
    (tmp_path / "filled.yaml").write_text(yaml.safe_dump(config))
    labels, edges = planned_dag(tmp_path, tmp_path / "filled.yaml")
    assert_whole_analysis_planned(config, labels, edges)
    assert config["survival"]["panels"]["cml_ferroptosis_5"] == ["ACSL6", "SLC11A2", "HMOX1", "SLC38A1", "AKR1C3"]
