"""Benchmark (not a test): the project's DE (both engines) against R DESeq2 on the same counts, back to back.

Generates the simulated TCGA-size cohort of bench_de.py (424 samples: 374 tumours + 50 normals, 60,660 genes,
seeded negative-binomial counts), applies the project's pre-filter (>= 10 reads in >= 50 samples, the
smaller group), and runs, each in its own child process started from the same binary count file:

- ferrostem `differential_expression` with `de.engine: vectorised` and with `de.engine: pydeseq2`
  (2 threads / workers; the stage as the workflow runs it: checks, pre-filter, DESeq2, results, VST);
- R DESeq2 (Debian r-bioc-deseq2): DESeq() with BiocParallel MulticoreParam(2) when available (else 1
  worker), results(alpha = 0.05) and varianceStabilizingTransformation(blind = FALSE), the same steps.

Prints, for each: the fit time measured inside the child (after reading the counts), the child's wall
time, the peak RSS of its process tree (psutil, sampled every 50 ms; forked R workers share pages, so
their sum over-counts R), the ratios to R, the Pearson r of log2FC and the Jaccard index of the
padj < 0.05 calls against R. Skips R with a message when Rscript or DESeq2 is missing.

    .venv/bin/python benchmarks/bench_de_vs_r.py [--genes 60660 --threads 2 --engines vectorised pydeseq2]
    .venv/bin/python benchmarks/bench_de_vs_r.py --samples 1200 --engines vectorised   # TCGA-BRCA size
    .venv/bin/python benchmarks/bench_de_vs_r.py --samples 1200 --engines vectorised --skip-r --workdir /tmp/brca

`--skip-r` runs only the project's side; `--workdir` keeps the cohort (and reuses it when the same size and
seed were written there before), so that one side can be re-measured without simulating the counts again.

Writes benchmarks/out/bench_de_vs_r.json (bench_de_vs_r_<samples>.json for other sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "src"))
sys.path.insert(0, str(HERE))

R_SCRIPT = r"""
suppressPackageStartupMessages(library(DESeq2))
args <- commandArgs(trailingOnly = TRUE)
folder <- args[1]; workers <- as.integer(args[2])
genes <- readLines(file.path(folder, "genes.txt")); samples <- read.delim(file.path(folder, "samples.tsv"))
start <- Sys.time()
con <- file(file.path(folder, "counts.int32"), "rb")
counts <- matrix(readBin(con, "integer", n = length(genes) * nrow(samples), size = 4), nrow = length(genes))
close(con)
dimnames(counts) <- list(genes, samples$sample)
keep <- rowSums(counts >= 10) >= min(table(samples$tissue))
counts <- counts[keep, ]
samples$tissue <- factor(samples$tissue, levels = c("normal", "tumor"))
read_done <- Sys.time()
parallel <- FALSE; param <- NULL
if (workers > 1 && requireNamespace("BiocParallel", quietly = TRUE)) {
  param <- BiocParallel::MulticoreParam(workers); parallel <- TRUE
}
dds <- DESeqDataSetFromMatrix(counts, samples, ~ tissue)
dds <- if (parallel) DESeq(dds, quiet = TRUE, parallel = TRUE, BPPARAM = param) else DESeq(dds, quiet = TRUE)
res <- results(dds, name = "tissue_tumor_vs_normal", alpha = 0.05)
vsd <- varianceStabilizingTransformation(dds, blind = FALSE)
done <- Sys.time()
write.table(data.frame(gene = rownames(res), log2FC = res$log2FoldChange, padj = res$padj),
            file.path(folder, "r_results.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)
cat(sprintf('{"fit_seconds": %.2f, "read_seconds": %.2f, "workers": %d, "genes_tested": %d, "deseq2": "%s"}\n',
            as.numeric(difftime(done, read_done, units = "secs")),
            as.numeric(difftime(read_done, start, units = "secs")),
            if (parallel) workers else 1L, nrow(counts), packageVersion("DESeq2")),
    file = file.path(folder, "r_figures.json"))
"""


class TreePeak:
    """Peak RSS of a process and all its descendants (their sum, and the largest single process), with each
    process's own peak and command line.

    The tree is listed every TREE_EVERY seconds and its processes' RSS read every 50 ms: listing it (psutil's
    children(recursive=True) reads /proc/<pid>/stat of every process on the machine) costs about 10 ms of CPU,
    which every 50 ms would take a fifth of a core from the run being measured.
    """

    TREE_EVERY = 0.5

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self.largest = 0  # the largest RSS of one process of the tree
        self.per_process: dict[int, tuple[int, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        tree: list[psutil.Process] = []
        listed = 0.0
        while not self._stop.is_set():
            if time.monotonic() - listed >= self.TREE_EVERY:
                try:
                    tree = [self.process] + self.process.children(recursive=True)
                except psutil.Error:
                    tree = []
                listed = time.monotonic()
            total = 0
            for proc in tree:
                try:
                    rss = proc.memory_info().rss
                    total += rss
                    self.largest = max(self.largest, rss)
                    seen = self.per_process.get(proc.pid)
                    if seen is None or rss > seen[0]:
                        name = seen[1] if seen else " ".join(proc.cmdline())[-160:]
                        self.per_process[proc.pid] = (rss, name)
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def largest_processes(self, n: int = 8) -> list[dict[str, object]]:
        ranked = sorted(self.per_process.items(), key=lambda item: item[1][0], reverse=True)[:n]
        return [{"pid": pid, "rss_gb": round(rss / 1e9, 2), "command": name} for pid, (rss, name) in ranked]

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def run_child(command: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    child = subprocess.Popen(command)
    peak = TreePeak(child.pid)
    code = child.wait()
    wall = time.perf_counter() - start
    peak_bytes = peak.stop()
    if code != 0:
        raise RuntimeError(f"{command[:3]} exited with {code}")
    return wall, peak_bytes


def write_cohort(folder: Path, genes: int, seed: int, samples: int = 424, normals: int = 50) -> dict[str, int]:
    from bench_de import simulated_cohort

    adata = simulated_cohort(samples - normals, normals, genes, seed=seed)
    counts = np.asarray(adata.layers["counts"], dtype=np.int32)  # samples x genes
    np.ascontiguousarray(counts).tofile(folder / "counts.int32")  # row-major samples x genes = R's genes x samples
    np.save(folder / "counts.npy", counts)
    (folder / "genes.txt").write_text("\n".join(map(str, adata.var_names)) + "\n")
    obs = adata.obs[["patient_id", "tissue"]].copy()
    obs.insert(0, "sample", obs.index.astype(str))
    obs.to_csv(folder / "samples.tsv", sep="\t", index=False)
    adata.var[["gene_id"]].to_csv(folder / "var.tsv", sep="\t")
    return {"samples": counts.shape[0], "genes": counts.shape[1]}


def python_child(folder: Path, engine: str, threads: int) -> None:
    """Child process: the project's DE stage on the cohort in `folder` with one engine."""
    import anndata as ad

    from ferrostem.de import Comparison, DESettings, differential_expression

    start = time.perf_counter()
    counts = np.load(folder / "counts.npy")
    obs = pd.read_csv(folder / "samples.tsv", sep="\t", index_col="sample")
    var = pd.read_csv(folder / "var.tsv", sep="\t", index_col=0)
    adata = ad.AnnData(obs=obs, var=var, layers={"counts": counts})
    adata.uns["assay"] = "rnaseq"
    read_done = time.perf_counter()
    result = differential_expression(
        adata,
        Comparison("tvn", "tissue", "tumor", "normal"),
        DESettings(engine=engine),
        cohort="benchmark",
        n_cpus=threads,
    )
    done = time.perf_counter()
    result.table[["log2FC", "padj"]].to_csv(folder / f"{engine}_results.tsv", sep="\t")
    (folder / f"{engine}_figures.json").write_text(
        json.dumps(
            {
                "fit_seconds": round(done - read_done, 2),
                "read_seconds": round(read_done - start, 2),
                "genes_tested": result.genes_tested,
            }
        )
    )


def agreement(folder: Path, name: str) -> dict[str, float]:
    ours = pd.read_csv(folder / f"{name}_results.tsv", sep="\t", index_col=0)
    r = pd.read_csv(folder / "r_results.tsv", sep="\t", index_col=0)
    common = ours.index.intersection(r.index)
    ours, r = ours.loc[common], r.loc[common]
    finite = np.isfinite(ours["log2FC"]) & np.isfinite(r["log2FC"])
    ours_calls = set(common[ours["padj"].lt(0.05).to_numpy()])
    r_calls = set(common[r["padj"].lt(0.05).to_numpy()])
    union = ours_calls | r_calls
    return {
        "log2fc_pearson_r": float(np.corrcoef(ours.loc[finite, "log2FC"], r.loc[finite, "log2FC"])[0, 1]),
        "padj05_jaccard": len(ours_calls & r_calls) / len(union) if union else 1.0,
        "padj05_calls": len(ours_calls),
        "padj05_calls_r": len(r_calls),
        "genes_compared": len(common),
    }


def r_available() -> str | None:
    if shutil.which("Rscript") is None:
        return "Rscript is not installed"
    check = subprocess.run(["Rscript", "-e", "suppressPackageStartupMessages(library(DESeq2))"], capture_output=True)
    if check.returncode != 0:
        return "the R package DESeq2 is not installed (Debian: apt-get install r-bioc-deseq2)"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--genes", type=int, default=60660)
    parser.add_argument("--samples", type=int, default=424, help="424 (TCGA-LIHC size) or e.g. 1200 (TCGA-BRCA size)")
    parser.add_argument(
        "--normals",
        type=int,
        default=None,
        help="normal samples among --samples (default: 50 at 424 as in LIHC, else BRCA's share, 113/1,226)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--engines", nargs="+", default=["vectorised", "pydeseq2"], choices=["vectorised", "pydeseq2"])
    parser.add_argument("--skip-r", action="store_true", help="run only the project's side (no R DESeq2)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the cohort and results here (reused when its counts exist) instead of a temporary folder",
    )
    parser.add_argument("--child", nargs=2, metavar=("FOLDER", "ENGINE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        python_child(Path(args.child[0]), args.child[1], args.threads)
        return
    figures: dict[str, object] = {
        "load_average_at_start": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "threads": args.threads,
    }
    with tempfile.TemporaryDirectory(prefix="bench_de_vs_r_") as tmp:
        folder = Path(tmp) if args.workdir is None else args.workdir
        folder.mkdir(parents=True, exist_ok=True)
        normals = (
            args.normals
            if args.normals is not None
            else (50 if args.samples == 424 else round(args.samples * 113 / 1226))
        )
        cohort_key = {"samples": args.samples, "normals": normals, "genes": args.genes, "seed": args.seed}
        key_file = folder / "cohort.json"
        if (folder / "counts.npy").exists() and key_file.exists() and json.loads(key_file.read_text()) == cohort_key:
            figures["cohort"] = {"samples": args.samples, "genes": args.genes, "reused": str(folder)}
        else:
            figures["cohort"] = write_cohort(folder, args.genes, args.seed, args.samples, normals)
            key_file.write_text(json.dumps(cohort_key))
        print(json.dumps(figures), flush=True)
        runs: dict[str, dict[str, float]] = {}
        missing = "--skip-r" if args.skip_r else r_available()
        if missing:
            print(f"R DESeq2 skipped: {missing}", flush=True)
        else:
            (folder / "run.R").write_text(R_SCRIPT)
            wall, peak = run_child(["Rscript", str(folder / "run.R"), str(folder), str(args.threads)])
            runs["R"] = {
                **json.loads((folder / "r_figures.json").read_text()),
                "wall_seconds": round(wall, 1),
                "peak_rss_gb": round(peak / 1e9, 2),
            }
            print(json.dumps({"R": runs["R"]}), flush=True)
        for engine in args.engines:
            wall, peak = run_child(
                [sys.executable, __file__, "--child", str(folder), engine, "--threads", str(args.threads)]
            )
            runs[engine] = {
                **json.loads((folder / f"{engine}_figures.json").read_text()),
                "wall_seconds": round(wall, 1),
                "peak_rss_gb": round(peak / 1e9, 2),
            }
            if "R" in runs:
                runs[engine].update(agreement(folder, engine))
                runs[engine]["fit_speedup_vs_r"] = round(runs["R"]["fit_seconds"] / runs[engine]["fit_seconds"], 2)
                runs[engine]["wall_speedup_vs_r"] = round(runs["R"]["wall_seconds"] / runs[engine]["wall_seconds"], 2)
                runs[engine]["peak_memory_ratio_vs_r"] = round(
                    runs[engine]["peak_rss_gb"] / runs["R"]["peak_rss_gb"], 2
                )
            print(json.dumps({engine: runs[engine]}), flush=True)
        figures["runs"] = runs
    figures["load_average_at_end"] = os.getloadavg()[0]
    out = HERE / "out" / ("bench_de_vs_r.json" if args.samples == 424 else f"bench_de_vs_r_{args.samples}.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
