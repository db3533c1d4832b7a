"""GEO series matrices and platform annotations (GEOquery parseGEO.R layout).

A series matrix has `!Series_*` lines, `!Sample_*` lines with one quoted cell per sample (repeated
`!Sample_characteristics_ch1` lines hold "key: value" cells), then the expression table between
`!series_matrix_table_begin` and `!series_matrix_table_end`.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputFormatError
from ..files import atomic_write
from .http import Client, NotFoundError, link_or_copy

TABLE_BEGIN = "!series_matrix_table_begin"
TABLE_END = "!series_matrix_table_end"


def series_stub(accession: str) -> str:
    """GEO's directory stub: GSE14520 -> GSE14nnn, GSE999 -> GSEnnn (GEOquery getGEOfile)."""
    if not re.fullmatch(r"(GSE|GPL|GSM|GDS)\d+", accession):
        raise ConfigError(f"{accession!r} is not a GEO accession (GSE/GPL/GSM/GDS followed by digits)")
    return re.sub(r"\d{1,3}$", "nnn", accession)


def _open_text(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            yield from handle
    except (OSError, EOFError) as error:
        raise InputFormatError(f"{path}: cannot be read ({error}); is the download complete?") from error


def _cells(line: str) -> list[str]:
    return [cell.strip().strip('"') for cell in line.rstrip("\n").split("\t")[1:]]


@dataclass
class SeriesMatrix:
    accession: str
    series: dict[str, list[str]]
    samples: pd.DataFrame  # one row per GSM: Sample_* fields and parsed characteristics
    table: pd.DataFrame  # probes x GSM
    characteristics: list[str] = field(default_factory=list)


def _coerce(values: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() == values.replace("", np.nan).notna().sum() and numeric.notna().any():
        return numeric
    return values.replace("", np.nan)


def parse_characteristics(rows: list[list[str]], samples: list[str]) -> pd.DataFrame:
    """Turn repeated `!Sample_characteristics_ch1` rows of "key: value" cells into typed columns."""
    columns: dict[str, list[str]] = {}
    for row in rows:
        for position, cell in enumerate(row):
            if not cell:
                continue
            key, sep, value = cell.partition(":")
            key = key.strip() if sep else f"characteristic_{len(columns)}"
            value = value.strip() if sep else cell.strip()
            columns.setdefault(key, [""] * len(samples))[position] = value
    frame = pd.DataFrame(columns, index=samples)
    return frame.apply(_coerce)


def read_series_matrix(path: str | os.PathLike[str], *, require_table: bool = True) -> SeriesMatrix:
    """Parse a series matrix; with `require_table=False` an empty table (RNA-seq series) is allowed."""
    path = Path(path)
    series: dict[str, list[str]] = {}
    sample_fields: dict[str, list[str]] = {}
    characteristic_rows: list[list[str]] = []
    table_lines: list[str] = []
    state = "header"
    for line in _open_text(path):
        if state == "header":
            if line.startswith(TABLE_BEGIN):
                state = "table"
            elif line.startswith("!Series_"):
                series.setdefault(line.split("\t", 1)[0][8:], []).extend(_cells(line))
            elif line.startswith("!Sample_characteristics"):
                characteristic_rows.append(_cells(line))
            elif line.startswith("!Sample_"):
                name = line.split("\t", 1)[0][8:]
                if name in sample_fields:
                    sample_fields[name] = [f"{a}; {b}" for a, b in zip(sample_fields[name], _cells(line))]
                else:
                    sample_fields[name] = _cells(line)
        elif state == "table":
            if line.startswith(TABLE_END):
                state = "done"
                break
            table_lines.append(line)
    if state == "header":
        raise InputFormatError(f"{path}: no {TABLE_BEGIN} line; not a GEO series matrix")
    if state == "table":
        raise InputFormatError(f"{path}: no {TABLE_END} line; the file is truncated")
    accessions = sample_fields.get("geo_accession")
    if not accessions:
        raise InputFormatError(f"{path}: no !Sample_geo_accession line")
    if len(table_lines) <= 1:
        if require_table:
            raise InputFormatError(
                f"{path}: the expression table is empty (GEO keeps some series' data only in supplementary "
                "files; for RNA-seq series set geo.rnaseq_counts: true to use NCBI's generated counts)"
            )
        table_lines = ["\t".join(['"ID_REF"'] + [f'"{a}"' for a in sample_fields.get("geo_accession", [])]) + "\n"]
    table = pd.read_csv(io.StringIO("".join(table_lines)), sep="\t", index_col=0, na_values=["null", "NULL", ""],
                        dtype={0: str})
    table.index = table.index.astype(str)
    table.columns = [str(c).strip('"') for c in table.columns]
    if list(table.columns) != accessions:
        raise InputFormatError(f"{path}: table columns do not match !Sample_geo_accession")
    non_numeric = [c for c in table.columns if len(table) and not pd.api.types.is_numeric_dtype(table[c])]
    if non_numeric:
        column = non_numeric[0]
        bad = pd.to_numeric(table[column], errors="coerce").isna() & table[column].notna()
        raise InputFormatError(
            f"{path}: sample {column} has a non-numeric value {table[column][bad].iloc[0]!r} at probe {bad.idxmax()}"
        )
    for name, values in sample_fields.items():
        if len(values) != len(accessions):
            raise InputFormatError(f"{path}: !Sample_{name} has {len(values)} cells for {len(accessions)} samples")
    samples = pd.DataFrame(sample_fields, index=accessions)
    characteristics = parse_characteristics(characteristic_rows, accessions)
    accession = (series.get("geo_accession") or [path.name.split("_")[0]])[0]
    return SeriesMatrix(
        accession=accession,
        series=series,
        samples=samples.join(characteristics),
        table=table,
        characteristics=list(characteristics.columns),
    )


def read_platform_annotation(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Probe -> symbol table from a GEO `.annot` file (`Gene symbol`) or a SOFT platform table (`Gene Symbol`).

    Returns columns probe_id, symbols (list of symbols; empty for unmapped probes) and entrez.
    """
    path = Path(path)
    lines = list(_open_text(path))
    begin = next((i for i, line in enumerate(lines) if line.startswith("!platform_table_begin")), None)
    if begin is None:
        raise InputFormatError(f"{path}: no !platform_table_begin line; not a GEO platform annotation")
    end = next((i for i in range(begin + 1, len(lines)) if lines[i].startswith("!platform_table_end")), len(lines))
    table = pd.read_csv(io.StringIO("".join(lines[begin + 1:end])), sep="\t", dtype=str, keep_default_na=False)
    symbol_column = next((c for c in table.columns if c.strip().lower() == "gene symbol"), None)
    if symbol_column is None or "ID" not in table.columns:
        raise InputFormatError(f"{path}: platform table needs ID and Gene symbol columns, found {list(table.columns)[:8]}")
    entrez_column = next((c for c in table.columns if c.strip().lower() in {"gene id", "entrez_gene_id"}), None)
    symbols = table[symbol_column].fillna("").map(
        lambda cell: [s.strip() for s in cell.split("///") if s.strip()]
    )
    return pd.DataFrame({
        "probe_id": table["ID"].astype(str),
        "symbols": symbols,
        "entrez": table[entrez_column] if entrez_column else "",
    })


CollapseMethod = Literal["max_mean", "mean"]
MultiSymbolRule = Literal["drop", "split"]


@dataclass
class CollapseReport:
    probes_in: int
    probes_unmapped: int
    probes_multi_symbol: int
    multi_symbol_rule: str
    method: str
    genes_out: int

    def as_dict(self) -> dict[str, int | str]:
        return self.__dict__.copy()


def collapse_probes(
    table: pd.DataFrame,
    annotation: pd.DataFrame,
    method: CollapseMethod = "max_mean",
    multi_symbol: MultiSymbolRule = "drop",
) -> tuple[pd.DataFrame, CollapseReport]:
    """Probes x samples -> genes x samples.

    `max_mean` keeps, per symbol, the probe with the highest mean across samples (the usual
    WGCNA collapseRows "MaxMean" rule); `mean` averages the probes. Probes annotated with several
    symbols ("A /// B") are dropped, or with `split` counted once for each symbol.
    """
    mapping = annotation.set_index("probe_id")["symbols"]
    symbols = mapping.reindex(table.index)
    unmapped = symbols.isna() | symbols.map(lambda s: not isinstance(s, list) or len(s) == 0)
    multi = symbols.map(lambda s: isinstance(s, list) and len(s) > 1)
    kept = table.loc[~unmapped & (~multi | (multi_symbol == "split"))]
    exploded = symbols.loc[kept.index].explode()
    long = kept.loc[exploded.index].copy()
    long.index = pd.Index(exploded.to_numpy(), name="symbol")
    if method == "mean":
        genes = long.groupby(level=0).mean()
    elif method == "max_mean":
        means = long.mean(axis=1).to_numpy()
        order = pd.DataFrame({"symbol": long.index, "mean": means, "row": np.arange(len(long))})
        best = order.sort_values(["symbol", "mean"], ascending=[True, False]).drop_duplicates("symbol")["row"]
        genes = long.iloc[np.sort(best.to_numpy())].sort_index()
    else:
        raise ConfigError(f"probe collapse method {method!r} is not one of max_mean, mean")
    report = CollapseReport(
        probes_in=len(table), probes_unmapped=int(unmapped.sum()), probes_multi_symbol=int(multi.sum()),
        multi_symbol_rule=multi_symbol, method=method, genes_out=len(genes),
    )
    return genes, report


# ------------------------------------------------------------------------------------------------
# Download: series matrices, platform annotation, NCBI-generated RNA-seq counts (GEOquery getGEOfile.R,
# parseGEO.R and rnaseq.R; ../shared/docs/data-sources.md A3).
# ------------------------------------------------------------------------------------------------

GEO_FTP = "https://ftp.ncbi.nlm.nih.gov/geo"
NCBI_GEO_DOWNLOAD = "https://www.ncbi.nlm.nih.gov/geo/download/"
NCBI_HUMAN_ANNOTATION = "Human.GRCh38.p13.annot.tsv.gz"
MATRIX_SUFFIX = "_series_matrix.txt.gz"


def matrix_directory(accession: str, base: str = GEO_FTP) -> str:
    return f"{base.rstrip('/')}/series/{series_stub(accession)}/{accession}/matrix/"


def annotation_urls(platform: str, base: str = GEO_FTP) -> list[str]:
    """The GDS-style `.annot.gz` first, then the platform's full SOFT file (its table has `Gene Symbol`)."""
    root = f"{base.rstrip('/')}/platforms/{series_stub(platform)}/{platform}"
    return [f"{root}/annot/{platform}.annot.gz", f"{root}/soft/{platform}_family.soft.gz"]


def ncbi_counts_urls(accession: str, base: str = NCBI_GEO_DOWNLOAD) -> tuple[str, str]:
    """NCBI-generated raw counts of a series and the human gene annotation they are keyed by (GeneID)."""
    counts = f"{base}?type=rnaseq_counts&acc={accession}&format=file&file={accession}_raw_counts_GRCh38.p13_NCBI.tsv.gz"
    annotation = f"{base}?format=file&type=rnaseq_counts&file={NCBI_HUMAN_ANNOTATION}"
    return counts, annotation


def matrix_platforms(path: str | os.PathLike[str]) -> list[str]:
    """Platform ids named in a series matrix header (without parsing its table)."""
    found: list[str] = []
    for line in _open_text(Path(path)):
        if line.startswith(TABLE_BEGIN):
            break
        if line.startswith(("!Series_platform_id", "!Sample_platform_id")):
            found.extend(c for c in _cells(line) if c and c not in found)
    return found


def choose_matrices(names: list[str], accession: str, platform: str | None, where: str) -> list[str]:
    """`{GSE}_series_matrix.txt.gz`, or for a multi-platform series `{GSE}-{GPL}_series_matrix.txt.gz`."""
    matrices = sorted(n for n in names if n.startswith(accession) and n.endswith(MATRIX_SUFFIX))
    if not matrices:
        raise InputFormatError(f"{where}: no {accession}*{MATRIX_SUFFIX} file (found {names[:10]})")
    if platform:
        chosen = [n for n in matrices if n == f"{accession}-{platform}{MATRIX_SUFFIX}"]
        if not chosen and len(matrices) == 1:
            chosen = matrices
        if not chosen:
            raise InputFormatError(f"{where}: no series matrix for platform {platform}; found {matrices}")
        return chosen
    return matrices


def download_series(client: Client, accession: str, raw_dir: str | os.PathLike[str], *, base: str = GEO_FTP,
                    platform: str | None = None, rnaseq_counts: bool = False,
                    ncbi_base: str = NCBI_GEO_DOWNLOAD) -> Path:
    """Series matrices (+ platform annotation, or NCBI counts) into `raw_dir` in the layout harmonise reads."""
    raw = Path(raw_dir)
    directory = matrix_directory(accession, base)
    names = choose_matrices(client.list_directory(directory), accession, platform, client.source_of(directory))
    urls, platforms = [], []
    for name in names:
        path = client.fetch(directory + name)
        urls.append(directory + name)
        link_or_copy(path, raw / name)
        platforms.extend(p for p in matrix_platforms(path) if p not in platforms)
    if platform:
        platforms = [platform]
    if rnaseq_counts:
        for url in ncbi_counts_urls(accession, ncbi_base):
            path = client.fetch(url)
            link_or_copy(path, raw / path.name)
            urls.append(url)
    else:
        for gpl in platforms:
            tried = []
            for url in annotation_urls(gpl, base):
                try:
                    path = client.fetch(url)
                except NotFoundError as error:
                    tried.append(str(error))
                    continue
                link_or_copy(path, raw / path.name)
                urls.append(url)
                break
            else:
                raise InputFormatError(f"no annotation for platform {gpl} of {accession}: " + "; ".join(tried))
    with atomic_write(raw / "download.json") as handle:
        json.dump({"source": "geo", "accession": accession, "platforms": platforms, "mirror": client.mirror,
                   "rnaseq_counts": rnaseq_counts, "urls": urls}, handle, indent=1)
    return raw


def read_ncbi_counts(path: str | os.PathLike[str]) -> pd.DataFrame:
    """NCBI-generated raw counts: `GeneID` then one integer column per GSM."""
    path = Path(path)
    try:
        table = pd.read_csv(path, sep="\t", index_col=0)
    except (OSError, EOFError, ValueError) as error:
        raise InputFormatError(f"{path}: not a readable NCBI counts table ({error})") from error
    if table.index.name != "GeneID":
        raise InputFormatError(f"{path}: first column is {table.index.name!r}, expected GeneID")
    if table.empty:
        raise InputFormatError(f"{path}: the counts table is empty")
    non_integer = [c for c in table.columns if not pd.api.types.is_integer_dtype(table[c])]
    if non_integer:
        raise InputFormatError(f"{path}: sample {non_integer[0]} has non-integer counts")
    table.index = table.index.astype(str)
    return table


def read_ncbi_annotation(path: str | os.PathLike[str]) -> pd.DataFrame:
    """NCBI human gene annotation keyed by GeneID (Symbol, and EnsemblGeneID/GeneType/Length when present)."""
    path = Path(path)
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if not {"GeneID", "Symbol"} <= set(table.columns):
        raise InputFormatError(f"{path}: annotation needs GeneID and Symbol columns, found {list(table.columns)[:8]}")
    return table.drop_duplicates("GeneID").set_index("GeneID")
