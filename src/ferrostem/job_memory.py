"""The memory each job asks for (`resources: mem_mb`), estimated from the size of the job's own input.

A job's peak resident memory is a fixed part (the interpreter, the job's imports, its small tables) plus a part
that grows with the data: for the jobs that read a cohort file, with its samples x genes (the layers read and the
arrays computed from them); for harmonise, with the raw files it merges; for GSEA prerank (gseapy), with the
genes ranked times the permutations, because gseapy builds every permutation of the ranking at once, each as a
hash map from gene to position (40-50 bytes per gene and permutation, whatever the number of gene sets).

The coefficients below were measured per rule (every process's own peak RSS, sampled every 0.1 s) on the demo
(120 x 9,400) and on the TCGA-size cohort of `benchmarks/bench_tcga_size.py` (424 x 60,660, 44,063 genes
ranked); docs/performance.md, "Job memory requests from the jobs' inputs". The request is that peak times
`MARGIN`, rounded up to 100 MB and at least `FLOOR_MB`: a cluster job that outgrows its request is killed, so
the request errs high, and a local run given `--resources mem_mb=N` starts side by side only jobs whose requests
fit in N together.

Every estimate reads only sizes (file lengths, the names of the cohort's samples and genes), never values, so
that Snakemake can call it for each job when the job's input exists; for a job whose input does not exist yet
it raises FileNotFoundError naming the file, which Snakemake takes as "decide later".
"""

from __future__ import annotations

import errno
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import InputFormatError

MARGIN = 1.3
FLOOR_MB = 1000
ROUND_MB = 100

# gseapy's prerank (1.3) holds each permutation of the ranking as a hash map from gene to position (Rust's
# hashbrown: a power-of-two table of 16-byte entries and a control byte, at most 7/8 full) beside a vector of
# the genes. Fitted to the peaks of prerank alone at 9,000-60,000 genes and 50 / 250 permutations (per
# permutation: 402 KB at 9,000 genes, 775 at 16,000, 837 at 20,000, 1,526 at 30,000, 1,733 at 44,000, 3,046 at
# 60,000; tests/test_job_memory.py measures it again): bytes per table slot and per gene, per permutation.
PRERANK_BYTES_PER_SLOT = 16.5
PRERANK_BYTES_PER_GENE = 15.5


@dataclass(frozen=True)
class CohortJob:
    """A job that reads the cohort file: `fixed_mb` + `bytes_per_cell` x samples x genes, plus
    `bytes_per_cell_per_thread` for each thread beyond the first; `prerank`: the job also runs a GSEA prerank
    over the cohort's genes (its peak is the larger of the two parts, which run one after the other)."""

    fixed_mb: float
    bytes_per_cell: float
    bytes_per_cell_per_thread: float = 0.0
    prerank: bool = False


# measured peaks (MB), demo -> TCGA size: de 477 -> 1,282 (1,399 with 2 threads), subtypes 1,027 -> 2,182
# (its prerank), deconvolution 344 -> 1,154, signature_scores 455 -> 1,002, cohort_report 375 -> 1,007,
# survival 596 -> 698, clinical_models 506 -> 627, genes_of_interest 385 -> 506, lasso_cox 294 -> 407,
# check_cohort 225 -> 228. With `de.engine: pydeseq2` (`<rule>_pydeseq2`) the DE stage at TCGA size peaked at
# 2.79 GB with 2 workers and 3.28 GB with 4 (`bench_de_vs_r.py --engines pydeseq2 --skip-r --threads N`, the
# process tree; the vectorised engine there: 1.63 and 1.91 GB).
COHORT_JOBS: dict[str, CohortJob] = {
    "de": CohortJob(440, 33, bytes_per_cell_per_thread=5),
    "de_pydeseq2": CohortJob(440, 82, bytes_per_cell_per_thread=10),
    "subtypes": CohortJob(1000, 33, prerank=True),
    "subtypes_pydeseq2": CohortJob(1000, 82, prerank=True),
    "deconvolution": CohortJob(310, 33),
    "signature_scores": CohortJob(430, 23),
    "cohort_report": CohortJob(350, 26),
    "survival": CohortJob(590, 5),
    "clinical_models": CohortJob(500, 5),
    "genes_of_interest": CohortJob(380, 5),
    "lasso_cox": CohortJob(290, 5),
    "check_cohort": CohortJob(230, 1),
}

# a prerank job's part besides the permutations (interpreter, imports, the DE table, each set's running score
# for the figures): the enrichment job's peak less the permutations, 381 MB at 9,400 genes, 472 MB at 44,063
PRERANK_FIXED_MB = 360.0
PRERANK_TABLE_BYTES_PER_GENE = 2500.0
# harmonise, per MB of uncompressed text: GDC STAR files are read one at a time into the merged matrix (330 MB
# for the demo's 81 MB of them, 1,654 MB for the TCGA-size 1,800 MB); a table that holds every sample (a GEO series
# matrix, a Xena matrix) is parsed whole (282 MB for the demo's 10.4 MB series matrix, 1,438 MB for a simulated
# 420-sample one of 167 MB: tests/test_job_memory.py)
HARMONISE_FIXED_MB = 270.0
HARMONISE_PER_SAMPLE_FILE_MB = 0.8
HARMONISE_PER_MATRIX_MB = 7.5
PER_SAMPLE_FILE_SUFFIXES = (".rna_seq.augmented_star_gene_counts.tsv",)
# the kinds of file harmonise reads (config/README.md, "Raw layouts"), gzipped or not: a `local:` folder may hold
# other files (BAMs, PDFs) that would otherwise inflate the request
TEXT_SUFFIXES = frozenset({".tsv", ".txt", ".csv", ".tab", ".json", ".soft", ".annot", ".probemap"})


def request_mb(peak_mb: float) -> int:
    """The memory to ask for a job whose estimated peak is `peak_mb`."""
    return max(FLOOR_MB, math.ceil(peak_mb * MARGIN / ROUND_MB) * ROUND_MB)


def _existing(path: str | os.PathLike[str]) -> Path:
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "the job's input does not exist yet", str(path))
    return Path(path)


def cohort_shape(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(samples, genes) of a cohort file, from the lengths of its obs and var indexes (h5py; no values read).

    Beside `cohort_file.cohort_layout` (layer names and assay) because this runs in the snakemake process, once per
    job, where cohort_file's anndata import (about 1 s) would slow every run's scheduling."""
    existing = _existing(path)  # before importing h5py: a dry run sizes no job whose input is missing
    import h5py

    try:
        with h5py.File(existing, "r") as handle:
            return tuple(len(handle[axis][handle[axis].attrs["_index"]]) for axis in ("obs", "var"))  # type: ignore[return-value]
    except (OSError, KeyError) as error:
        raise InputFormatError(
            f"{existing}: cannot read its samples and genes to size the job ({error}); not a cohort file written "
            "by harmonise? Delete it to have it written again"
        ) from error


def prerank_table_slots(genes: int) -> int:
    """The slots of a hash table that holds `genes` entries at most 7/8 full (a power of two)."""
    return 1 << max(math.ceil(genes * 8 / 7) - 1, 1).bit_length()


def prerank_permutation_mb(genes: int) -> float:
    """The memory gseapy's prerank holds for each permutation of a ranking of `genes` genes."""
    return (PRERANK_BYTES_PER_SLOT * prerank_table_slots(genes) + PRERANK_BYTES_PER_GENE * genes) / 1e6


def prerank_peak_mb(genes: int, permutations: int) -> float:
    """The peak of a job that runs gseapy's prerank over `genes` ranked genes with `permutations` (gseapy keeps
    the observed ranking beside them: permutations + 1)."""
    fixed = PRERANK_FIXED_MB + PRERANK_TABLE_BYTES_PER_GENE * genes / 1e6
    return fixed + prerank_permutation_mb(genes) * (permutations + 1)


def cohort_job_peak_mb(
    rule: str, samples: int, genes: int, *, threads: int = 1, permutations: int = 0, engine: str = "vectorised"
) -> float:
    """The modelled peak of rule `rule` on a cohort of `samples` x `genes`; `engine`: the DE engine (`de.engine`),
    for the rules that fit DESeq2."""
    model = COHORT_JOBS.get(f"{rule}_{engine}") or COHORT_JOBS[rule]
    cells = samples * genes
    peak = model.fixed_mb + (model.bytes_per_cell + model.bytes_per_cell_per_thread * (threads - 1)) * cells / 1e6
    if model.prerank:
        peak = max(peak, prerank_peak_mb(genes, permutations))
    return peak


def cohort_job_mb(
    rule: str, cohort: str | os.PathLike[str], *, threads: int = 1, permutations: int = 0, engine: str = "vectorised"
) -> int:
    """`mem_mb` of rule `rule` reading the cohort file `cohort`."""
    samples, genes = cohort_shape(cohort)
    peak = cohort_job_peak_mb(rule, samples, genes, threads=threads, permutations=permutations, engine=engine)
    return request_mb(peak)


def ranked_genes(table: str | os.PathLike[str]) -> int:
    """The rows of a DE table (its genes: an upper bound of those ranked), counted without parsing."""
    with open(_existing(table), "rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    return max(lines - 1, 0)


def enrichment_mb(table: str | os.PathLike[str], permutations: int) -> int:
    """`mem_mb` of the enrichment of the DE table `table` with `permutations` GSEA permutations."""
    return request_mb(prerank_peak_mb(ranked_genes(table), permutations))


def text_mb(path: Path) -> float:
    """The size of a file's text in MB: for gzip, the uncompressed length its trailer records (modulo 4 GiB:
    raised by 4 GiB steps until it is at least the compressed length); for BGZF (bgzip's blocked gzip, a chain
    of members each holding at most 64 KB of text), the sum of every block's recorded length.

    The trailer gives only the last member's length, and a BGZF file ends with an empty member: read as one
    member, every bgzipped file would count as 4 GiB of text and its harmonise job ask for tens of GB."""
    size = path.stat().st_size
    if path.suffix != ".gz" or size < 18:
        return size / 1e6
    with open(path, "rb") as handle:
        blocks = _bgzf_text_bytes(handle, size)
        if blocks is not None:
            return blocks / 1e6
        handle.seek(-4, os.SEEK_END)
        text = int.from_bytes(handle.read(4), "little")
    while text < size:
        text += 1 << 32
    return text / 1e6


def _bgzf_block_size(header: bytes, extra: bytes) -> int | None:
    """The length of the BGZF block whose gzip header (10 bytes and XLEN) and extra field these are, or None
    when it is not a BGZF block (SAM/BAM format specification, section 4.1: FEXTRA set, a subfield 'BC' of
    length 2 holding the block's size minus one)."""
    if header[:3] != b"\x1f\x8b\x08" or not header[3] & 0x04:
        return None
    at = 0
    while at + 4 <= len(extra):
        length = int.from_bytes(extra[at + 2 : at + 4], "little")
        if extra[at : at + 2] == b"BC" and length == 2 and at + 6 <= len(extra):
            return int.from_bytes(extra[at + 4 : at + 6], "little") + 1
        at += 4 + length
    return None


def _bgzf_text_bytes(handle: BinaryIO, size: int) -> int | None:
    """The summed text length of a BGZF file's blocks (their headers and trailers only; a few bytes per 64 KB
    of text), or None when its first block is not BGZF. A chain that breaks off (a truncated download) gives
    None too, and the caller falls back on the trailer."""
    text, offset = 0, 0
    while offset < size:
        handle.seek(offset)
        header = handle.read(12)
        if len(header) < 12:
            return None
        block = _bgzf_block_size(header, handle.read(int.from_bytes(header[10:12], "little")))
        if block is None or offset + block > size:
            return None
        handle.seek(offset + block - 4)
        text += int.from_bytes(handle.read(4), "little")
        offset += block
    return text


def _read_by_harmonise(path: Path) -> bool:
    suffixes = path.suffixes[-2:] if path.suffix == ".gz" else path.suffixes[-1:]
    return bool(suffixes) and suffixes[0] in TEXT_SUFFIXES


def raw_text_mb(folder: str | os.PathLike[str]) -> tuple[float, float]:
    """(MB of per-sample files, MB of other text) under `folder` (or of one file), uncompressed; only the kinds
    of file harmonise reads (TEXT_SUFFIXES) count."""
    root = _existing(folder)
    entries = [root] if root.is_file() else root.rglob("*")
    files = [entry for entry in entries if entry.is_file() and _read_by_harmonise(entry)]
    per_sample = sum(text_mb(f) for f in files if f.name.endswith(PER_SAMPLE_FILE_SUFFIXES))
    return per_sample, sum(text_mb(f) for f in files) - per_sample


def harmonise_peak_mb(raw: str | os.PathLike[str]) -> float:
    """The modelled peak of harmonising the raw files under `raw`."""
    per_sample, matrices = raw_text_mb(raw)
    return HARMONISE_FIXED_MB + HARMONISE_PER_SAMPLE_FILE_MB * per_sample + HARMONISE_PER_MATRIX_MB * matrices


def harmonise_mb(raw: str | os.PathLike[str]) -> int:
    """`mem_mb` of harmonising the raw files under `raw` into one cohort file."""
    return request_mb(harmonise_peak_mb(raw))
