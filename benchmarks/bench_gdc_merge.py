"""Benchmark (not a test): assemble a cohort from 424 GDC STAR files at full size (60,660 genes).

python benchmarks/bench_gdc_merge.py [outdir]          # generates once, then times harmonisation
/usr/bin/time -v taskset -c 0,1 python benchmarks/bench_gdc_merge.py   # peak RSS on 2 cores
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ferrostem.demo import DemoParameters, write_demo
from ferrostem.download import download_cohort, settings
from ferrostem.harmonise import harmonise_cohort

out = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/out/gdc424")
raw = out / "raw"
if not (raw / "files.json").is_file():
    t0 = time.perf_counter()
    write_demo(
        out,
        DemoParameters(
            n_tumor=400, n_normal=21, n_extra_aliquots=3, geo_n_tumor=10, geo_n_normal=3, pad_genes_to=60660
        ),
    )
    download_cohort(
        {"source": "gdc", "project": "TCGA-DEMO"},
        settings({"mirror": str(out / "mirror"), "download": {"store": str(out / "store")}}),
        raw,
    )
    print(f"generated 424 files in {time.perf_counter() - t0:.0f} s", flush=True)
t0 = time.perf_counter()
adata = harmonise_cohort({"source": "gdc", "project": "TCGA-DEMO", "simulated": True}, raw)
elapsed = time.perf_counter() - t0
n_files = len(list((raw / "data").iterdir()))
print(f"assembled {n_files} STAR files -> {adata.n_obs} samples x {adata.n_vars} genes in {elapsed:.1f} s")
