"""Every rule is either a local rule (seconds, or network) or a cluster job that declares what it needs."""

from __future__ import annotations

import json
import re
import shutil

from conftest import REPO, run_snakemake

RULE = re.compile(r"^ *rule (\w+):\n(.*?)(?=^ *rule |\Z)", re.S | re.M)  # nested in an `if` too


def rule_blocks() -> dict[str, str]:
    blocks = {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        blocks.update(dict(RULE.findall(path.read_text())))
    return blocks


def test_every_job_rule_declares_threads_memory_runtime_and_a_benchmark():
    blocks = rule_blocks()
    assert {"harmonise", "de", "check_cohort", "report", "subtypes", "lasso_cox"} <= set(blocks)
    missing = {}
    for name, body in blocks.items():
        if re.search(r"^\s+localrule: True", body, re.M):
            continue
        lacking = [
            key
            for key, pattern in (
                ("threads", r"^\s+threads:"),
                ("mem_mb", r"mem_mb="),
                ("runtime", r"runtime="),
                ("benchmark", r"^\s+benchmark:"),
            )
            if not re.search(pattern, body, re.M)
        ]
        if re.search(r"mem_mb=\d", body):
            lacking.append("mem_mb that grows with the attempt (a number, where a retry needs more)")
        if lacking:
            missing[name] = lacking
    assert missing == {}, f"rules that are neither local nor sized for a cluster: {missing}"


JOB = re.compile(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", re.M)


def dry_run_jobs(output: str) -> dict[int, tuple[str, int]]:
    """{jobid: (rule, priority)} from a dry run's job listing (a priority line is printed when not 0)."""
    jobs = {}
    for name, body in JOB.findall(output):
        priority = re.search(r"^    priority: (\d+)$", body, re.M)
        jobs[int(re.search(r"^    jobid: (\d+)$", body, re.M).group(1))] = (
            name,
            int(priority.group(1)) if priority else 0,
        )
    return jobs


def test_every_job_outranks_the_jobs_that_wait_for_it(tmp_path):
    """Job priorities (common.smk, PRIORITY) decide the start order on few cores: every job of the demo's DAG has
    one, and each job's is higher than that of every job taking its output, so that the long chains start first."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    config = str(tmp_path / "config" / "config.yaml")
    dry = run_snakemake(tmp_path, "--configfile", config, "-n").stdout
    jobs = dry_run_jobs(dry)
    assert {name for name, _ in jobs.values()} >= {"demo_data", "harmonise", "de", "subtypes", "survival", "report"}
    unranked = sorted({name for name, priority in jobs.values() if priority == 0 and name != "all"})
    assert unranked == [], f"job rules without a priority: {unranked}"
    dag = json.loads(run_snakemake(tmp_path, "--configfile", config, "--d3dag").stdout)
    inverted = sorted(
        {
            (jobs[edge["u"]][0], jobs[edge["v"]][0])
            for edge in dag["edges"]
            if jobs[edge["v"]][0] != "all" and jobs[edge["u"]][1] <= jobs[edge["v"]][1]
        }
    )
    assert inverted == [], f"(job, dependant) pairs where the dependant ranks as high or higher: {inverted}"
