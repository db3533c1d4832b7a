"""The demo's RNA-seq cohort on a real SLURM cluster: a single-node munged + slurmctld + slurmd
(tests/slurm_cluster.py) runs the
workflow through profiles/slurm, exactly as docs/cluster.md tells a user to; the jobs must have gone through
sbatch with the resources the rules declare, the local rules must not have, and the results must equal a local
run's (fixture `workflow_run`)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import REPO
from ferrostem import job_memory
from slurm_cluster import ClusterStartError, SlurmCluster, missing_programs, start_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.slurm]

# rules that must run on the submitting node (downloads need the internet; the rest take seconds)
LOCAL_RULES = {
    "all",
    "prefetch",
    "download_cohort",
    "download_cdr",
    "fetch_resource",
    "check_cohort",
    "cohort_report",
    "report",
    "survival_cross_cohort",
}
DE_THREADS = 4  # above the 2 cores the old workflow profile capped every cluster job to
# a guard against a hung cluster only: under `make test` the run shares the 2 cores with the other xdist worker
SLURM_RUN_TIMEOUT = 1800
# The cluster runs one cohort's report: its 12 jobs cover every job rule of the demo (the second cohort would
# repeat the same rules; the cross-cohort page is a local rule), at half the time of the whole demo.
SLURM_COHORT = "demo_tcga"
SLURM_TARGET = f"results/{SLURM_COHORT}/report.html"
# result tables that are byte-identical from run to run (seeded permutations, no timestamps or paths)
DETERMINISTIC = [
    f"{SLURM_COHORT}/{pattern}"
    for pattern in (
        "de/*/de.tsv",
        "de/*/de_summary.json",
        "enrichment/*/gsea.tsv",
        "enrichment/*/ora.tsv",
        "scores/scores.tsv",
        "scores/score_info.tsv",
        "scores/coverage.tsv",
        "survival/survival.tsv",
        "survival/multivariable_terms.tsv",
    )
] + ["models/*.yaml", "models/*_cv.tsv"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        if sys.version_info < (3, 11):
            pytest.skip("snakemake-executor-plugin-slurm 2.x needs Python 3.11 or newer")
        pytest.fail("snakemake-executor-plugin-slurm is not installed: pip install -e .[test] brings it")
    missing = missing_programs()
    if missing:
        pytest.skip(
            f"SLURM test needs the Debian packages slurm-wlm and munge (missing: {', '.join(missing)}); "
            ".ci/run installs them when it runs as root with apt-get"
        )
    try:
        running = start_cluster(tmp_path_factory.mktemp("slurm"))
    except ClusterStartError as error:
        pytest.skip(f"the SLURM daemons could not start here: {error}")
    try:
        yield running
    finally:
        running.stop()


def run_on_slurm(cluster: SlurmCluster, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The documented cluster command (docs/cluster.md), plus latency settings only a test wants."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--profile",
        str(REPO / "profiles" / "slurm"),
        "--default-resources",
        f"slurm_partition={cluster.partition}",
        "--slurm-status-command",
        "squeue",  # the test cluster has no accounting storage (no slurmdbd)
        # latency: poll the first status after 1 s (default 40 s); one local file system
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--latency-wait",
        "2",
        *args,
    ]
    try:
        return subprocess.run(
            command, capture_output=True, text=True, cwd=workdir, env=cluster.env, timeout=SLURM_RUN_TIMEOUT
        )
    except subprocess.TimeoutExpired as error:
        raise AssertionError(
            f"snakemake on SLURM did not finish in {SLURM_RUN_TIMEOUT} s; jobs: {cluster.jobs()}\n"
            f"{(error.stderr or b'')[-4000:]!r}\n{cluster.logs()}"
        ) from error


def job_stats(log: str) -> Counter[str]:
    """Snakemake's 'Job stats' table: rule -> number of jobs planned."""
    table = log.split("Job stats:", 1)[1].split("total", 1)[0]
    return Counter({m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.MULTILINE)})


def rule_of(job: dict[str, str]) -> str:
    """The plugin's sbatch --comment is rule_<name> or rule_<name>_wildcards_<values>."""
    match = re.fullmatch(r"rule_(\w+?)(?:_wildcards_.*)?", job["comment"])
    assert match, f"job {job['id']} has no snakemake rule comment: {job}"
    return match[1]


@pytest.fixture(scope="module")
def slurm_run(cluster: SlurmCluster, tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("slurm_workflow")
    shutil.copytree(REPO / "config", workdir / "config")
    result = run_on_slurm(
        cluster,
        workdir,
        SLURM_TARGET,
        "--configfile",
        str(workdir / "config" / "config.yaml"),
        "--set-threads",
        f"de={DE_THREADS}",
    )
    if result.returncode != 0:
        raise AssertionError(
            f"snakemake on SLURM failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
            f"{result.stderr[-6000:]}\njobs: {cluster.jobs()}\n{cluster.logs()}"
        )
    return workdir, result.stderr, cluster.jobs()


def test_job_rules_went_through_sbatch_and_local_rules_did_not(cluster, slurm_run):
    workdir, log, jobs = slurm_run
    planned = job_stats(log)
    job_rules = {
        "demo_data",
        "harmonise",
        "de",
        "enrichment",
        "signature_scores",
        "survival",
        "genes_of_interest",
        "lasso_cox",
        "deconvolution",
        "subtypes",
        "clinical_models",
    }
    assert {"download_cohort", "report", "check_cohort", "cohort_report"} | job_rules <= set(planned), planned
    expected = Counter({rule: n for rule, n in planned.items() if rule not in LOCAL_RULES})
    submitted = Counter(rule_of(job) for job in jobs)
    assert submitted == expected, f"submitted {dict(submitted)}, expected {dict(expected)}"
    for job in jobs:
        assert job["state"] == "COMPLETED" and job["partition"] == cluster.partition, job
        assert job["workdir"] == str(workdir), job


def test_jobs_get_the_threads_and_resources_the_rules_declare(slurm_run):
    slurm_dir, _, jobs = slurm_run
    by_rule = {rule_of(job): job for job in jobs}
    # --set-threads reaches the cluster: the workflow profile (profiles/default) no longer caps threads
    assert by_rule["de"]["cpus"] == str(DE_THREADS), by_rule["de"]
    assert by_rule["harmonise"]["cpus"] == "1", by_rule["harmonise"]
    for _rule, job in by_rule.items():
        # every job rule declares mem_mb and runtime (the partition itself has no limit or default)
        assert job["memory"].endswith("M") and int(job["memory"][:-1]) >= 1000, job
        assert job["time_limit"] != "UNLIMITED", job
    # mem_mb is computed from each job's input once it exists (ferrostem.job_memory), not fixed per rule: the
    # prerank jobs ask for more than the floor on the demo, and sbatch got exactly what the model says
    results = slurm_dir / "results"
    expected = {
        "enrichment": job_memory.enrichment_mb(results / SLURM_COHORT / "de" / "tumour_vs_normal" / "de.tsv", 1000),
        "subtypes": job_memory.cohort_job_mb("subtypes", results / SLURM_COHORT / "cohort.h5ad", permutations=1000),
        "de": job_memory.cohort_job_mb("de", results / SLURM_COHORT / "cohort.h5ad", threads=DE_THREADS),
    }
    assert expected["enrichment"] > job_memory.FLOOR_MB and expected["subtypes"] > job_memory.FLOOR_MB
    assert {rule: int(by_rule[rule]["memory"][:-1]) for rule in expected} == expected


def test_outputs_equal_a_local_run(slurm_run, workflow_run):
    slurm_dir, _, _ = slurm_run
    for pattern in DETERMINISTIC:
        local_files = sorted(p.relative_to(workflow_run) for p in (workflow_run / "results").glob(pattern))
        slurm_files = sorted(p.relative_to(slurm_dir) for p in (slurm_dir / "results").glob(pattern))
        assert local_files and local_files == slurm_files, (pattern, local_files, slurm_files)
        for path in local_files:
            assert (slurm_dir / path).read_bytes() == (workflow_run / path).read_bytes(), f"{path} differs"
    assert (slurm_dir / SLURM_TARGET).stat().st_size > 0
    assert [p.parent.name for p in (slurm_dir / "results").glob("*/report.html")] == [SLURM_COHORT]


def test_a_failed_job_is_retried_with_twice_the_memory_and_keeps_its_slurm_logs(cluster, tmp_path):
    """One harmonise job on an empty raw folder: it fails on the cluster, the profile's `retries: 1` submits it
    once more with its memory request doubled (mem_mb is the estimate times the attempt), it fails again, and
    both attempts' SLURM logs stay in logs/slurm."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    (tmp_path / "raw_empty").mkdir()
    result = run_on_slurm(
        cluster,
        tmp_path,
        "results/demo_tcga/cohort.h5ad",
        "--configfile",
        str(tmp_path / "config" / "config.yaml"),
        "--config",
        "cohorts={demo_tcga: {local: raw_empty}}",
    )
    assert result.returncode != 0, result.stderr[-3000:]
    logs = sorted((tmp_path / "logs" / "slurm" / "rule_harmonise").rglob("*.log"), key=lambda p: int(p.stem))
    assert len(logs) == 2, f"SLURM logs kept: {sorted((tmp_path / 'logs').rglob('*'))}\n{result.stderr[-3000:]}"
    jobs = {job["id"]: job for job in cluster.jobs()}
    attempts = [jobs[log.stem] for log in logs]
    assert [job["state"] for job in attempts] == ["FAILED", "FAILED"], attempts
    first_mb, second_mb = (int(job["memory"].rstrip("M")) for job in attempts)
    assert first_mb >= 1000 and second_mb == 2 * first_mb, attempts
    for log in logs:
        slurm_log = log.read_text()
        # the job itself ran and failed (not srun or the cluster): its rule log has harmonise's own error
        assert "Error in rule harmonise" in slurm_log and "srun: fatal" not in slurm_log, slurm_log[-3000:]
    rule_log = (tmp_path / "results" / "logs" / "harmonise" / "demo_tcga.log").read_text()
    assert "raw_empty" in rule_log, rule_log[-3000:]
