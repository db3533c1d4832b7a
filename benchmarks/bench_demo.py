"""Benchmark: the whole demo workflow (what `make demo` runs after set-up), on a clean directory.

    .venv/bin/python benchmarks/bench_demo.py [--repeat 3] [--cores 2]

Prints for each run the wall time and the CPU time of the whole process tree (user + system of snakemake and
every process it started, from the kernel's accounting of waited-for children), the largest single process,
and how that CPU splits between the job rules (the `cpu_time` of their benchmark files) and the rest: the
local rules (download_cohort, check_cohort, cohort_report, report, survival_cross_cohort), which have no
benchmark file, and snakemake itself. Then the medians. Target (issue 13): at most 45 s wall on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class DemoRun:
    wall: float
    user: float
    system: float
    job_cpu: float  # sum of the job rules' cpu_time (benchmark files)
    largest_rss_gb: float

    @property
    def cpu(self) -> float:
        return self.user + self.system

    def line(self) -> str:
        return (
            f"{self.wall:.1f} s wall, {self.cpu:.1f} s CPU (user {self.user:.1f} + system {self.system:.1f}): "
            f"job rules {self.job_cpu:.1f} s, local rules and snakemake {self.cpu - self.job_cpu:.1f} s; "
            f"largest process {self.largest_rss_gb:.2f} GB"
        )


def job_cpu_seconds(results: Path) -> float:
    total = 0.0
    for path in (results / "benchmarks").rglob("*.tsv"):
        header, values = path.read_text().splitlines()[:2]
        total += float(dict(zip(header.split("\t"), values.split("\t")))["cpu_time"])
    return total


def run_once(cores: int) -> DemoRun:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        shutil.copytree(REPO / "config", work / "config")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "snakemake",
                "--snakefile",
                str(REPO / "Snakefile"),
                "--directory",
                str(work),
                "--cores",
                str(cores),
                "--quiet",
                "all",
                "--configfile",
                str(work / "config/config.yaml"),
            ],
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return DemoRun(
            wall=wall,
            user=after.ru_utime - before.ru_utime,
            system=after.ru_stime - before.ru_stime,
            job_cpu=job_cpu_seconds(work / "results"),
            largest_rss_gb=after.ru_maxrss * 1024 / 1e9,  # kB; the largest of any descendant so far
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    runs = []
    for k in range(args.repeat):
        load = os.getloadavg()[0]
        runs.append(run_once(args.cores))
        print(f"run {k + 1} (load average {load:.1f} at start): {runs[-1].line()}", flush=True)
    median = statistics.median
    print(
        f"demo workflow, {args.cores} cores, median of {len(runs)} run(s): {median(r.wall for r in runs):.1f} s wall, "
        f"{median(r.cpu for r in runs):.1f} s CPU (job rules {median(r.job_cpu for r in runs):.1f} s, local rules "
        f"and snakemake {median(r.cpu - r.job_cpu for r in runs):.1f} s)"
    )


if __name__ == "__main__":
    main()
