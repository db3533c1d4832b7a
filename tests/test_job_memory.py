"""Job memory requests (ferrostem.job_memory): sizes read without values, Snakemake's "decide later" for inputs
that do not exist yet, gseapy's prerank memory against the model, and every demo job's measured peak within its
request."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.exceptions import is_file_not_found_error

from ferrostem import job_memory
from ferrostem.errors import InputFormatError
from ferrostem.job_memory import (
    COHORT_JOBS,
    MARGIN,
    cohort_job_mb,
    cohort_job_peak_mb,
    cohort_shape,
    enrichment_mb,
    harmonise_mb,
    prerank_peak_mb,
    ranked_genes,
    request_mb,
)

REPO = Path(__file__).resolve().parents[1]

# the process's own peak RSS (VmHWM: reset at exec; getrusage's ru_maxrss is not, and would report the pytest
# process's peak at the fork)
PEAK_RSS = """
def peak_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
"""


def test_cohort_shape_reads_the_indexes_of_a_cohort_file(tmp_path):
    counts = np.arange(35 * 120, dtype=np.int64).reshape(35, 120)
    adata = ad.AnnData(
        X=counts.astype(np.float32),
        obs=pd.DataFrame(index=[f"S{i}" for i in range(35)]),
        var=pd.DataFrame(index=[f"ENSG{i:011d}" for i in range(120)]),
        layers={"counts": counts},
    )
    path = tmp_path / "cohort.h5ad"
    adata.write_h5ad(path)
    assert cohort_shape(path) == (35, 120)
    small = cohort_job_mb("de", path)
    assert small == job_memory.FLOOR_MB  # a tiny cohort asks for the floor


def test_a_file_that_is_no_cohort_file_is_named(tmp_path):
    path = tmp_path / "cohort.h5ad"
    path.write_bytes(b"not HDF5")
    with pytest.raises(InputFormatError, match=r"cohort\.h5ad: cannot read its samples and genes"):
        cohort_job_mb("de", path)


@pytest.mark.parametrize(
    "estimate",
    [
        lambda path: cohort_job_mb("de", path),
        lambda path: enrichment_mb(path, 1000),
        lambda path: harmonise_mb(path),
    ],
    ids=["cohort", "ranking", "raw folder"],
)
def test_an_input_that_does_not_exist_yet_is_left_for_later(tmp_path, estimate):
    path = str(tmp_path / "results" / "c" / "cohort.h5ad")
    with pytest.raises(FileNotFoundError) as caught:
        estimate(path)
    # what Snakemake checks before it marks the job's mem_mb "<TBD>" and evaluates it again once the input exists
    assert caught.value.filename == path
    assert is_file_not_found_error(caught.value, [path])


def test_requests_grow_with_the_cohort_threads_and_permutations():
    demo = cohort_job_peak_mb("de", 120, 9400)
    tcga = cohort_job_peak_mb("de", 424, 60660)
    brca = cohort_job_peak_mb("de", 1200, 60660)
    assert demo < tcga < brca
    assert cohort_job_peak_mb("de", 424, 60660, threads=4) > tcga
    # PyDESeq2's per-gene path holds more than the vectorised engine: 3.28 GB with 4 workers at TCGA size
    pydeseq2 = cohort_job_peak_mb("de", 424, 60660, threads=4, engine="pydeseq2")
    assert 3280 <= pydeseq2 * MARGIN and pydeseq2 > cohort_job_peak_mb("de", 424, 60660, threads=4)
    assert cohort_job_peak_mb("survival", 424, 60660, engine="pydeseq2") == cohort_job_peak_mb("survival", 424, 60660)
    assert prerank_peak_mb(44000, 1000) > prerank_peak_mb(44000, 100) > prerank_peak_mb(9000, 100)
    assert request_mb(2207) == 2900  # 2,207 x 1.3 = 2,869, rounded up to 100 MB
    assert [job_memory.prerank_table_slots(n) for n in (9000, 20000, 30000, 44000, 60000)] == [
        16384,
        32768,
        65536,
        65536,
        131072,
    ]
    assert request_mb(10) == job_memory.FLOOR_MB


# each job's own peak RSS (MB, sampled every 0.1 s through whole runs on the development VM, 2026-12-02): on the
# demo's RNA-seq cohort (120 x 9,400) and on bench_tcga_size.py's cohort (424 x 60,660); the measurements the
# model was fitted to, kept here so that a coefficient changed by hand is checked against them
MEASURED_PEAKS_MB = {
    "de": (477, 1282),
    "subtypes": (1027, 2182),
    "deconvolution": (344, 1154),
    "signature_scores": (455, 1002),
    "cohort_report": (375, 1007),
    "survival": (596, 698),
    "clinical_models": (506, 627),
    "genes_of_interest": (385, 506),
    "lasso_cox": (294, 407),
    "check_cohort": (225, 228),
}


@pytest.mark.parametrize("rule", sorted(MEASURED_PEAKS_MB))
def test_each_cohort_job_model_covers_its_measured_peaks_without_asking_far_more(rule):
    assert set(MEASURED_PEAKS_MB) == set(COHORT_JOBS) - {"de_pydeseq2", "subtypes_pydeseq2"}
    for (samples, genes), measured in zip([(120, 9400), (424, 60660)], MEASURED_PEAKS_MB[rule]):
        modelled = cohort_job_peak_mb(rule, samples, genes, permutations=1000)
        assert measured <= modelled * MARGIN, (rule, samples, measured, modelled)
        # not far above it either; the subtypes prerank counts every gene of the cohort (60,660 at TCGA size, where
        # it ranks 44,000: gseapy's tables double at 57,344 genes), known only once its DE has run
        assert modelled <= (1.7 if rule == "subtypes" else 1.5) * measured, (rule, samples, measured, modelled)


def test_ranked_genes_counts_the_rows_with_or_without_a_final_newline(tmp_path):
    table = tmp_path / "de.tsv"
    table.write_text("gene_id\tstat\nA\t1\nB\t2\nC\t3")
    assert ranked_genes(table) == 3
    table.write_text("gene_id\tstat\nA\t1\nB\t2\nC\t3\n")
    assert ranked_genes(table) == 3


def test_harmonise_request_reads_uncompressed_sizes_and_tells_matrices_from_sample_files(tmp_path):
    raw = tmp_path / "raw"
    (raw / "uuid").mkdir(parents=True)
    (raw / "uuid" / "x.rna_seq.augmented_star_gene_counts.tsv").write_bytes(b"g\t1\n" * 750_000)  # 3 MB
    text = b"".join(f"ID_{i}\t{i * 0.37:.3f}\t{i * 0.11:.3f}\n".encode() for i in range(200_000))
    with gzip.open(raw / "GSE1_series_matrix.txt.gz", "wb") as handle:
        handle.write(text)
    assert (raw / "GSE1_series_matrix.txt.gz").stat().st_size < len(text) / 2
    per_sample, matrices = job_memory.raw_text_mb(raw)
    assert per_sample == pytest.approx(3.0)
    assert matrices == pytest.approx(len(text) / 1e6)  # the uncompressed length, from the gzip trailer
    assert job_memory.harmonise_peak_mb(raw) == pytest.approx(
        job_memory.HARMONISE_FIXED_MB
        + job_memory.HARMONISE_PER_SAMPLE_FILE_MB * 3.0
        + job_memory.HARMONISE_PER_MATRIX_MB * len(text) / 1e6
    )
    assert harmonise_mb(raw) >= job_memory.FLOOR_MB
    # the Xena probe map counts; files harmonise never reads (in a user's `local:` folder) do not
    (raw / "gencode.v36.annotation.gtf.gene.probemap").write_bytes(b"id\tgene\n" * 125_000)  # 1 MB
    assert job_memory.raw_text_mb(raw) == (per_sample, pytest.approx(matrices + 1.0))
    (raw / "gencode.v36.annotation.gtf.gene.probemap").unlink()
    (raw / "uuid" / "sample.bam").write_bytes(b"\0" * 5_000_000)
    (raw / "notes.pdf").write_bytes(b"\0" * 1_000_000)
    assert job_memory.raw_text_mb(raw) == (per_sample, matrices)


# BGZF's end-of-file marker: an empty block (SAM/BAM format specification, section 4.1.2)
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def bgzip(text: bytes, block_text: int = 65_280) -> bytes:
    """`text` as bgzip writes it (SAM/BAM specification, section 4.1): gzip members of at most 64 KB of text,
    each with the 'BC' extra subfield holding its total size minus one, then the empty end-of-file block."""
    blocks = []
    for start in range(0, len(text), block_text):
        chunk = text[start : start + block_text]
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        data = deflate.compress(chunk) + deflate.flush()
        header = b"\x1f\x8b\x08\x04" + bytes(4) + b"\x00\xff" + (6).to_bytes(2, "little")
        extra = b"BC" + (2).to_bytes(2, "little") + (len(header) + 6 + len(data) + 8 - 1).to_bytes(2, "little")
        trailer = zlib.crc32(chunk).to_bytes(4, "little") + len(chunk).to_bytes(4, "little")
        blocks.append(header + extra + data + trailer)
    return b"".join(blocks) + BGZF_EOF


def test_a_bgzipped_file_counts_the_text_of_all_its_blocks(tmp_path):
    """bgzip's blocks are gzip members and its last one is empty: the trailer alone says 0 bytes (which the
    modulo-4-GiB rule would have read as 4.3 GB for each file). Every block's recorded length is summed."""
    text = b"".join(f"ID_{i}\t{i * 0.37:.3f}\t{i * 0.11:.3f}\n".encode() for i in range(200_000))
    path = tmp_path / "GSE1_series_matrix.txt.gz"
    path.write_bytes(bgzip(text))
    assert gzip.decompress(path.read_bytes()) == text  # a valid multi-member gzip file
    assert path.read_bytes()[-4:] == bytes(4)  # what the trailer says
    assert job_memory.text_mb(path) == pytest.approx(len(text) / 1e6)
    plain = tmp_path / "plain" / path.name
    plain.parent.mkdir()
    plain.write_bytes(gzip.compress(text))
    assert harmonise_mb(path) == harmonise_mb(plain.parent)
    # a chain cut short (an interrupted copy) is not summed: the trailer rule applies, as to any gzip file
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(bgzip(text)[:100_000])
    assert job_memory.text_mb(cut) >= cut.stat().st_size / 1e6


GEO_HARMONISE_PEAK = (
    PEAK_RSS
    + """
import json, sys, yaml
from ferrostem.harmonise import harmonise_downloaded
config = yaml.safe_load(open(sys.argv[2]))["cohorts"]["demo_geo"]
adata = harmonise_downloaded(config, sys.argv[1], None, refetch=None, workers=1)
print(json.dumps({"peak_mb": peak_mb(), "shape": adata.shape}))
"""
)


def test_a_large_series_matrix_harmonises_within_its_request(tmp_path):
    """A series matrix of 420 samples x 58,000 probes (the demo's array simulation, its probes repeated under new
    ids; 74 MB gzipped, 167 MB of text): the harmonise request, from the file's uncompressed size, covers the peak
    measured in a fresh process, which is above the floor that the compressed size alone would have asked for."""
    import dataclasses

    from ferrostem import demo

    params = dataclasses.replace(demo.DemoParameters(), geo_n_tumor=400, geo_n_normal=20)
    rng = np.random.default_rng(1)
    genes = demo.demo_genes()
    cohort = demo.simulate_array(rng, genes, demo._fold_changes(rng, genes, params), params)
    tiled = pd.concat(
        [cohort.probes.assign(probe_id=cohort.probes["probe_id"] + f"_{t}") for t in range(4)], ignore_index=True
    )
    cohort = dataclasses.replace(cohort, probes=tiled, values=np.vstack([cohort.values] * 4))
    raw = tmp_path / "raw"
    raw.mkdir()
    demo._write_gzip_text(raw / "GSE0000_series_matrix.txt.gz", demo.series_matrix_text(cohort))
    demo._write_gzip_text(raw / "GPL0000.annot.gz", demo.annot_text(cohort))
    del cohort
    result = subprocess.run(
        [sys.executable, "-c", GEO_HARMONISE_PEAK, str(raw), str(REPO / "config" / "config.yaml")],
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["shape"][0] == 420
    modelled = job_memory.harmonise_peak_mb(raw)
    assert measured["peak_mb"] > job_memory.FLOOR_MB
    assert measured["peak_mb"] <= modelled * MARGIN, (measured, modelled)


PRERANK_PEAK = (
    PEAK_RSS
    + """
import json, sys
import numpy as np, pandas as pd
from ferrostem.enrichment import run_prerank
from ferrostem.genesets import GeneSet
genes, permutations = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(5)
names = [f"G{i}" for i in range(genes)]
ranking = pd.Series(np.sort(rng.standard_normal(genes))[::-1], index=names)
sets = {f"S{k}": GeneSet(f"S{k}", tuple(rng.choice(names, 50, replace=False)), "", "test") for k in range(8)}
before = peak_mb()
run_prerank(ranking, sets, permutations=permutations, seed=1)
print(json.dumps({"before_mb": before, "after_mb": peak_mb()}))
"""
)


def _prerank_peak(genes: int, permutations: int) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", PRERANK_PEAK, str(genes), str(permutations)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_gseapy_prerank_memory_grows_as_the_model_says():
    """The permutations' share of gseapy's peak, measured in a fresh process at two permutation counts, against
    the model: the enrichment and subtypes requests rest on it (a cluster kills a job that outgrows its request,
    and another gseapy may store its permutations otherwise)."""
    genes = 30000
    low, high = _prerank_peak(genes, 50), _prerank_peak(genes, 450)
    measured = high["after_mb"] - low["after_mb"]
    modelled = prerank_peak_mb(genes, 450) - prerank_peak_mb(genes, 50)
    assert 0.8 * modelled <= measured <= 1.15 * modelled, (measured, modelled, low, high)
    # and the whole process stays within the request
    assert high["after_mb"] <= prerank_peak_mb(genes, 450) * MARGIN


def _request_peak_mb(results: Path, config: dict, benchmark: Path) -> tuple[str, float]:
    """(rule, the modelled peak times MARGIN without the floor) of the job that wrote `benchmark`."""
    rule, *rest = benchmark.relative_to(results / "benchmarks").with_suffix("").parts
    permutations = config["enrichment"]["permutations"]
    if rule == "enrichment":
        cohort, comparison = rest
        peak = prerank_peak_mb(ranked_genes(results / cohort / "de" / comparison / "de.tsv"), permutations)
    elif rule == "harmonise":
        peak = job_memory.harmonise_peak_mb(results / "raw" / rest[0])
    elif rule == "demo_data":
        return rule, 2000.0  # fixed in the rule
    else:
        cohort = config["survival"]["lasso"]["discovery"] if rule == "lasso_cox" else rest[0]
        samples, genes = cohort_shape(results / cohort / "cohort.h5ad")
        threads = config["de"]["threads"] if rule == "de" else 1
        peak = cohort_job_peak_mb(
            rule, samples, genes, threads=threads, permutations=permutations, engine=config["de"]["engine"]
        )
    return rule, peak * MARGIN


def test_every_demo_job_peaks_within_its_request(workflow_run):
    """Snakemake's benchmark files hold each job's max RSS (sampled): none may exceed what its rule asks for."""
    results = workflow_run / "results"
    config = yaml.safe_load((workflow_run / "config" / "config.yaml").read_text())
    over, seen = {}, set()
    for benchmark in sorted((results / "benchmarks").rglob("*.tsv")):
        measured = float(pd.read_csv(benchmark, sep="\t")["max_rss"].iloc[0])
        rule, allowed = _request_peak_mb(results, config, benchmark)
        seen.add(rule)
        if measured > allowed:
            over[str(benchmark.relative_to(results))] = (measured, round(allowed))
    assert {"de", "enrichment", "subtypes", "harmonise", "survival", "signature_scores"} <= seen
    assert over == {}, f"jobs above their memory request (measured MB, allowed MB): {over}"
