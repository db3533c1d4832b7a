"""Benchmark (not a test): the whole workflow on a TCGA-size cohort, from local files in GDC format to the report.

The cohort is the seeded simulation of bench_de.py (374 tumours + 50 normals = 424 STAR files, the demo gene
table tiled to GENCODE v36's 60,660 genes, so that about as many genes pass the pre-filter as on real data),
written by the demo's GDC writer as a local MIRROR of the GDC API (files/, cases/, data/<uuid>): the workflow
fetches it through the real GDC client, checks md5s, merges the STAR files, harmonises, and runs DE,
enrichment, signatures, survival, LASSO-Cox and the report, as for a real TCGA project.

Prints:
- wall time of the `snakemake --cores N` command (N = --cores, default 2);
- peak memory of the snakemake process tree: the sum of the RSS of snakemake and every descendant process
  (psutil: RSS read every 50 ms, the tree listed every 0.5 s; shared pages of forked workers are counted in each,
  so this over-counts),
  and the largest RSS of a single process seen in the tree;
- each job's wall time, max RSS and CPU time from the `benchmark:` files that every job rule writes (Snakemake's
  benchmark `s`, `max_rss` and `cpu_time` columns; max_rss is the job's process tree as Snakemake samples it).

    .venv/bin/python benchmarks/bench_tcga_size.py [--cores 2 --genes 60660 --workdir /tmp/ferrostem_tcga]

The mirror is kept in --workdir/mirror between runs (it takes a few minutes to write); results are removed
before each run. Writes benchmarks/out/bench_tcga_size.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(HERE))

from bench_de_vs_r import TreePeak  # noqa: E402

PROJECT = "TCGA-BENCH"
COHORT = "tcga_size"
N_TUMOUR, N_NORMAL = 374, 50
SEED = 7


def write_mirror(mirror: Path, n_genes: int) -> dict[str, object]:
    """The seeded TCGA-size cohort as the GDC API serves it, at its mirror paths."""
    import numpy as np

    from bench_de import gencode_sized_genes
    from ferrostem.demo import DemoParameters, _fold_changes, simulate_rnaseq, write_gdc

    params = DemoParameters(seed=SEED, n_tumor=N_TUMOUR, n_normal=N_NORMAL, n_extra_aliquots=0, project=PROJECT)
    genes = gencode_sized_genes(n_genes)
    rng = np.random.default_rng(SEED)
    cohort = simulate_rnaseq(rng, genes, _fold_changes(rng, genes, params), params)
    write_gdc(mirror, cohort, rng, params, workers=2)
    return {"samples": len(cohort.samples), "genes": len(genes)}


def bench_config(workdir: Path, de_threads: int) -> Path:
    """The demo config with the demo generator off, the TCGA-size project as the only cohort, read from the mirror."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    demo_cohort = config["cohorts"]["demo_tcga"]
    config["demo"]["enabled"] = False
    config["mirror"] = str(workdir / "mirror")
    config["results"] = str(workdir / "results")
    config["download"]["store"] = str(workdir / "results" / "downloads")
    config["cohorts"] = {
        COHORT: {**demo_cohort, "label": "TCGA-size cohort (simulated, GDC format)", "project": PROJECT}
    }
    config["survival"]["lasso"]["discovery"] = COHORT
    config["survival"]["lasso"]["validation"] = []
    # 1 on 2 cores (the demo config's value): DE with 2 threads held both cores for ~60% of its one-thread time
    # while the signature scores, subtypes and survival waited; beside them on one core the workflow ends sooner
    # (docs/performance.md, "Scheduling")
    config["de"]["threads"] = de_threads
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def rule_times(results: Path) -> pd.DataFrame:
    rows = []
    for path in sorted((results / "benchmarks").rglob("*.tsv")):
        table = pd.read_csv(path, sep="\t")
        rows.append(
            {
                "job": str(path.relative_to(results / "benchmarks").with_suffix("")),
                "seconds": float(table["s"].iloc[0]),
                "max_rss_mb": float(table["max_rss"].iloc[0]),
                "cpu_seconds": float(table["cpu_time"].iloc[0]),
            }
        )
    return pd.DataFrame(rows).sort_values("seconds", ascending=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--genes", type=int, default=60660)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ferrostem_tcga"))
    parser.add_argument("--rewrite-mirror", action="store_true")
    parser.add_argument("--de-threads", type=int, default=1, help="de.threads (default 1: see bench_config)")
    parser.add_argument(
        "--mem-mb",
        type=int,
        help="passed as --resources mem_mb=N: the jobs side by side ask for at most N MB together (their "
        "requests are estimated from their inputs, ferrostem.job_memory); snakemake's own ~0.25 GB comes on top",
    )
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    mirror = workdir / "mirror"
    figures: dict[str, object] = {
        "cpus": os.cpu_count(),
        "cores": args.cores,
        "de_threads": args.de_threads,
        "mem_mb": args.mem_mb,
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }
    stamp = workdir / "mirror.json"
    if args.rewrite_mirror or not stamp.exists() or json.loads(stamp.read_text()).get("genes") != args.genes:
        if mirror.is_symlink():  # rmtree refuses a link, and the writer would then write into its target
            sys.exit(f"{mirror} is a link to another mirror: not rewritten (copy its mirror.json beside it)")
        shutil.rmtree(mirror, ignore_errors=True)
        start = time.perf_counter()
        planted = write_mirror(mirror, args.genes)
        planted["write_seconds"] = round(time.perf_counter() - start, 1)
        stamp.write_text(json.dumps(planted))
        print(f"mirror written: {planted}", flush=True)
    figures["cohort"] = json.loads(stamp.read_text())
    shutil.rmtree(workdir / "results", ignore_errors=True)
    config = bench_config(workdir, args.de_threads)
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        str(args.cores),
        "--configfile",
        str(config),
        *(["--resources", f"mem_mb={args.mem_mb}"] if args.mem_mb else []),
        "--quiet",
        "all",
    ]
    start = time.perf_counter()
    with open(workdir / "snakemake.log", "w") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        peak = TreePeak(child.pid)
        code = child.wait()
    wall = time.perf_counter() - start
    tree_peak = peak.stop()
    if code != 0:
        sys.exit(f"snakemake exited with {code}; see {workdir / 'snakemake.log'}")
    jobs = rule_times(workdir / "results")
    figures.update(
        {
            "wall_seconds": round(wall, 1),
            "tree_peak_rss_gb": round(tree_peak / 1e9, 2),
            "largest_process_rss_gb": round(peak.largest / 1e9, 2),
            "load_average_at_end": round(os.getloadavg()[0], 2),
            "largest_processes": peak.largest_processes(),
            "jobs": jobs.to_dict(orient="records"),
        }
    )
    print(jobs.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print("largest processes (own peak RSS):")
    for row in figures["largest_processes"]:
        print(f"  {row['rss_gb']:.2f} GB  {row['command']}")
    print(
        f"TCGA-size workflow ({figures['cohort']['samples']} x {figures['cohort']['genes']}), {args.cores} cores"
        f"{f', --resources mem_mb={args.mem_mb}' if args.mem_mb else ''}: "
        f"{wall:.1f} s wall, process-tree peak RSS {tree_peak / 1e9:.2f} GB (sum over processes), "
        f"largest single process {peak.largest / 1e9:.2f} GB; load average {figures['load_average_at_start']} "
        f"at start, {figures['load_average_at_end']} at end"
    )
    out = HERE / "out" / "bench_tcga_size.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
