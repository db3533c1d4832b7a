"""Every rule is either a local rule (seconds, or network) or a cluster job that declares what it needs."""

from __future__ import annotations

import re

from conftest import REPO

RULE = re.compile(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", re.S | re.M)


def rule_blocks() -> dict[str, str]:
    blocks = {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        blocks.update(dict(RULE.findall(path.read_text())))
    return blocks


def test_every_job_rule_declares_threads_memory_runtime_and_a_benchmark():
    blocks = rule_blocks()
    assert {"harmonise", "de", "check_cohort", "report"} <= set(blocks)
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
        if lacking:
            missing[name] = lacking
    assert missing == {}, f"rules that are neither local nor sized for a cluster: {missing}"
