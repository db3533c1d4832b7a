"""Benchmark: wall time of the whole demo workflow (what `make demo` runs after set-up), on a clean directory.

    .venv/bin/python benchmarks/bench_demo.py [--repeat 3]

Prints one line per run and the median. Target (issue 2): at most 90 s on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_once() -> float:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        shutil.copytree(REPO / "config", work / "config")
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
                "2",
                "--quiet",
                "all",
                "--configfile",
                str(work / "config/config.yaml"),
            ],
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    times = []
    for k in range(args.repeat):
        times.append(run_once())
        print(f"run {k + 1}: {times[-1]:.1f} s")
    print(f"demo workflow, 2 cores: median {statistics.median(times):.1f} s over {len(times)} run(s)")


if __name__ == "__main__":
    main()
