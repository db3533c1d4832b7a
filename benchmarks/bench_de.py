"""Benchmarks (not tests) of the DE and enrichment stage.

1. DE on a simulated TCGA-size cohort: 424 samples (374 tumours + 50 normals, as TCGA-LIHC) x 60,660 genes
   before filtering, simulated with the demo's negative-binomial model on the demo gene table tiled to the
   GENCODE v36 gene count (so lncRNA-like low expression and the pre-filter behave as on real data).
   Target: <= 120 s and <= 4 GB peak (process tree RSS) on 2 cores.
2. GSEA prerank of 100 gene sets (15-500 genes) with 1,000 permutations on a 20,000-gene ranking.
   Target: <= 30 s.

    .venv/bin/python benchmarks/bench_de.py [--samples-tumour 374 --samples-normal 50 --genes 60660 --threads 2]

Writes benchmarks/out/bench_de.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ferrostem.cohort import build_anndata
from ferrostem.de import Comparison, DESettings, differential_expression
from ferrostem.demo import DemoParameters, _fold_changes, demo_genes, simulate_rnaseq
from ferrostem.enrichment import run_prerank
from ferrostem.genesets import GeneSet


class PeakMemory:
    """Samples the RSS of this process and its children (PyDESeq2's loky workers) every 50 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process(os.getpid())
        while not self._stop.is_set():
            try:
                total = me.memory_info().rss + sum(c.memory_info().rss for c in me.children(recursive=True))
            except psutil.Error:
                total = 0
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def gencode_sized_genes(n_genes: int) -> pd.DataFrame:
    """The demo gene table tiled to `n_genes` rows: copy r > 0 has symbols SYMBOL_R<r> and Ensembl-shaped IDs
    (ENSG + 11 digits, the copy number in the leading digit) so that the GDC reader strips versions as for real IDs."""
    base = demo_genes()
    reps = int(np.ceil(n_genes / len(base)))
    number = base["gene_id"].str.removeprefix("ENSG").astype(np.int64)
    return pd.concat(
        [
            base.assign(
                symbol=base["symbol"] + ("" if r == 0 else f"_R{r}"),
                gene_id="ENSG" + (number + r * 10**10).map("{:011d}".format),
            )
            for r in range(reps)
        ],
        ignore_index=True,
    ).iloc[:n_genes]


def simulated_cohort(n_tumour: int, n_normal: int, n_genes: int, seed: int = 7):
    genes = gencode_sized_genes(n_genes)
    params = DemoParameters(seed=seed, n_tumor=n_tumour, n_normal=n_normal, n_extra_aliquots=0)
    rng = np.random.default_rng(seed)
    fold_changes = _fold_changes(rng, genes, params)
    cohort = simulate_rnaseq(rng, genes, fold_changes, params)
    counts = cohort.counts.T.astype(np.int64)  # samples x genes
    obs = cohort.samples.set_index("sample_id")[["patient_id", "tissue"]]
    var = genes[["gene_id", "symbol", "biotype"]].reset_index(drop=True)
    log2 = np.log2(counts / counts.sum(axis=1, keepdims=True) * 1e6 + 1).astype(np.float32)
    adata = build_anndata(
        obs,
        var,
        {"counts": counts, "log2": log2},
        {"counts": "raw counts", "log2": "log2(CPM+1)"},
        "rnaseq",
        {"source": "benchmark"},
        {},
    )
    return adata


def bench_de(n_tumour: int, n_normal: int, n_genes: int, threads: int) -> dict[str, float]:
    start = time.perf_counter()
    adata = simulated_cohort(n_tumour, n_normal, n_genes)
    simulate_s = time.perf_counter() - start
    with PeakMemory() as memory:
        start = time.perf_counter()
        result = differential_expression(
            adata, Comparison("tvn", "tissue", "tumor", "normal"), DESettings(), cohort="benchmark", n_cpus=threads
        )
        de_s = time.perf_counter() - start
    return {
        "samples": adata.n_obs,
        "genes_before_filter": adata.n_vars,
        "genes_tested": result.genes_tested,
        "threads": threads,
        "simulate_seconds": round(simulate_s, 1),
        "de_seconds": round(de_s, 1),
        "de_peak_rss_gb": round(memory.peak / 1e9, 2),
        "significant": int((result.table["padj"] < 0.05).sum()),
    }


def bench_gsea(n_sets: int = 100, permutations: int = 1000, n_genes: int = 20000, threads: int = 1) -> dict[str, float]:
    rng = np.random.default_rng(3)
    ranking = pd.Series(rng.standard_normal(n_genes), index=[f"G{i}" for i in range(n_genes)]).sort_values(
        ascending=False
    )
    sets = {
        f"S{i}": GeneSet(
            f"S{i}",
            tuple(rng.choice(ranking.index, size=int(rng.integers(15, 500)), replace=False)),
            collection="bench",
        )
        for i in range(n_sets)
    }
    start = time.perf_counter()
    table, _ = run_prerank(ranking, sets, permutations=permutations, seed=1, threads=threads, min_size=15, max_size=500)
    return {
        "sets": len(table),
        "permutations": permutations,
        "ranked_genes": n_genes,
        "threads": threads,
        "gsea_seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples-tumour", type=int, default=374)
    parser.add_argument("--samples-normal", type=int, default=50)
    parser.add_argument("--genes", type=int, default=60660)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-de", action="store_true")
    args = parser.parse_args()
    figures = {"load_average_at_start": os.getloadavg()[0], "cpus": os.cpu_count()}
    figures["gsea"] = bench_gsea(threads=args.threads)
    print(json.dumps(figures["gsea"]), flush=True)
    if not args.skip_de:
        figures["de"] = bench_de(args.samples_tumour, args.samples_normal, args.genes, args.threads)
        print(json.dumps(figures["de"]), flush=True)
    out = Path(__file__).parent / "out" / "bench_de.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
