"""GEO series matrices and platform annotations (GEOquery parseGEO.R layout).

A series matrix has `!Series_*` lines, `!Sample_*` lines with one quoted cell per sample (repeated
`!Sample_characteristics_ch1` lines hold "key: value" cells), then the expression table between
`!series_matrix_table_begin` and `!series_matrix_table_end`.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import re
import urllib.parse
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import CohortError, ConfigError, InputFormatError
from ..files import file_digest, write_json
from .http import Client, NotFoundError, link_or_copy, page_links
from .urls import GEO_FTP, GEO_QUERY, NCBI_GEO_DOWNLOAD

log = logging.getLogger(__name__)

TABLE_BEGIN = "!series_matrix_table_begin"
TABLE_END = "!series_matrix_table_end"


def series_stub(accession: str) -> str:
    """GEO's directory stub: GSE14520 -> GSE14nnn, GSE999 -> GSEnnn (GEOquery getGEOfile)."""
    if not re.fullmatch(r"(GSE|GPL|GSM|GDS)\d+", accession):
        raise ConfigError(f"{accession!r} is not a GEO accession (GSE/GPL/GSM/GDS followed by digits)")
    return re.sub(r"\d{1,3}$", "nnn", accession)


def _open_text(path: Path) -> Generator[str, None, None]:
    """Lines of a text file, gzip-compressed or not (told by its first bytes, not its name)."""
    try:
        with open(path, "rb") as probe:
            compressed = probe.read(2) == b"\x1f\x8b"
    except OSError as error:
        raise InputFormatError(f"{path}: cannot be read ({error})") from error
    opener = gzip.open if compressed else open
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
    characteristics_report: CharacteristicsReport = field(default_factory=lambda: CharacteristicsReport())


def _coerce(values: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() == values.replace("", np.nan).notna().sum() and numeric.notna().any():
        return numeric
    return values.replace("", np.nan)


@dataclass
class CharacteristicsReport:
    """What parsing the characteristics changed: key spellings merged, repeated keys joined, renamed fields."""

    key_spellings_merged: dict[str, list[str]] = field(default_factory=dict)  # column -> spellings found
    repeated_keys_joined: dict[str, int] = field(default_factory=dict)  # column -> samples with the key twice or more
    sample_fields_renamed: dict[str, str] = field(default_factory=dict)  # !Sample_ field -> its column name

    def notes(self) -> list[str]:
        """One sentence per rule applied, for the cohort section of the report."""
        notes = [
            f"characteristics key spellings {spellings} were merged into one column {column!r} "
            "(GEO keys are matched case-insensitively)"
            for column, spellings in self.key_spellings_merged.items()
        ]
        notes += [
            f"characteristics key {column!r} appears more than once in {n} sample(s); the values were joined "
            "with '; ' (as GEOquery does)"
            for column, n in self.repeated_keys_joined.items()
        ]
        notes += [
            f"!Sample_{name} is column {column!r}: a characteristics key has its name"
            for name, column in self.sample_fields_renamed.items()
        ]
        return notes


def parse_characteristics(
    rows: list[tuple[str, list[str]]], samples: list[str]
) -> tuple[pd.DataFrame, CharacteristicsReport]:
    """Turn repeated `!Sample_characteristics_ch*` rows of "key: value" cells into typed columns.

    `rows` are (channel, cells) pairs. Keys are matched case-insensitively (series mix `Tissue:` and
    `tissue:`); the column takes the first spelling met. A key given twice for one sample keeps both values,
    joined with "; " as GEOquery does. Channel-2 keys of two-colour arrays get GEOquery's ":ch2" suffix.
    A cell without ":" becomes `characteristic_<n>`.
    """
    columns: dict[tuple[str, str], list[str]] = {}
    names: dict[tuple[str, str], str] = {}
    spellings: dict[tuple[str, str], list[str]] = {}
    repeated: dict[tuple[str, str], set[str]] = {}
    for channel, row in rows:
        for position, cell in enumerate(row):
            if not cell:
                continue
            key, sep, value = cell.partition(":")
            key = key.strip() if sep else f"characteristic_{len(columns)}"
            value = value.strip() if sep else cell.strip()
            slot = (channel, key.casefold())
            if slot not in columns:
                columns[slot] = [""] * len(samples)
                names[slot] = key if channel == "ch1" else f"{key}:{channel}"
                spellings[slot] = []
            if key not in spellings[slot]:
                spellings[slot].append(key)
            cells = columns[slot]
            if cells[position]:
                repeated.setdefault(slot, set()).add(samples[position])
                cells[position] = f"{cells[position]}; {value}"
            else:
                cells[position] = value
    report = CharacteristicsReport(
        key_spellings_merged={names[s]: found for s, found in spellings.items() if len(found) > 1},
        repeated_keys_joined={names[s]: len(found) for s, found in repeated.items()},
    )
    frame = pd.DataFrame({names[s]: cells for s, cells in columns.items()}, index=samples)
    return frame.apply(_coerce), report


def find_column(frame: pd.DataFrame, key: str) -> str | None:
    """The column of `frame` named `key`, matched exactly or else case-insensitively (as GEO keys are)."""
    if key in frame.columns:
        return key
    folded = [c for c in frame.columns if str(c).casefold() == key.strip().casefold()]
    return folded[0] if len(folded) == 1 else None


def read_series_matrix(path: str | os.PathLike[str], *, require_table: bool = True) -> SeriesMatrix:
    """Parse a series matrix; with `require_table=False` an empty table (RNA-seq series) is allowed."""
    path = Path(path)
    series: dict[str, list[str]] = {}
    sample_fields: dict[str, list[str]] = {}
    characteristic_rows: list[tuple[str, list[str]]] = []
    table_lines: list[str] = []
    state = "header"
    for line in _open_text(path):
        if state == "header":
            if line.startswith(TABLE_BEGIN):
                state = "table"
            elif line.startswith("!Series_"):
                series.setdefault(line.split("\t", 1)[0][8:], []).extend(_cells(line))
            elif line.startswith("!Sample_characteristics"):
                channel = line.split("\t", 1)[0].rsplit("_", 1)[-1]
                characteristic_rows.append((channel if channel.startswith("ch") else "ch1", _cells(line)))
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
    table = pd.read_csv(
        io.StringIO("".join(table_lines)), sep="\t", index_col=0, na_values=["null", "NULL", ""], dtype={0: str}
    )
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
    for number, (channel, cells) in enumerate(characteristic_rows, start=1):
        if len(cells) != len(accessions):
            raise InputFormatError(
                f"{path}: !Sample_characteristics_{channel} line {number} has {len(cells)} cells "
                f"for {len(accessions)} samples"
            )
    characteristics, report = parse_characteristics(characteristic_rows, accessions)
    taken = {str(c).casefold() for c in characteristics.columns}
    report.sample_fields_renamed = {name: f"Sample_{name}" for name in sample_fields if name.casefold() in taken}
    samples = pd.DataFrame(sample_fields, index=accessions).rename(columns=report.sample_fields_renamed)
    accession = (series.get("geo_accession") or [path.name.split("_")[0]])[0]
    return SeriesMatrix(
        accession=accession,
        series=series,
        samples=samples.join(characteristics),
        table=table,
        characteristics=list(characteristics.columns),
        characteristics_report=report,
    )


PLATFORM_TABLE_BEGIN = "!platform_table_begin"
PLATFORM_TABLE_END = "!platform_table_end"
# Spellings of the platform-table columns, compared after casefolding and turning "_"/"-" into spaces:
# `.annot` files write "Gene symbol" / "Gene ID"; submitter SOFT tables "Gene Symbol", "GENE_SYMBOL",
# "Symbol", "ENTREZ_GENE_ID", "Entrez Gene", ... (GEOparse and GEOquery read the table as the submitter wrote it).
SYMBOL_COLUMNS = ("gene symbol", "gene symbols", "symbol", "symbols")
ENTREZ_COLUMNS = ("gene id", "entrez gene id", "entrez gene", "entrez id", "entrezid", "entrez gene ids", "entrez")


def _column_key(name: str) -> str:
    return " ".join(re.sub(r"[_\-()]+", " ", name).casefold().split())


def _pick_column(header: list[str], spellings: tuple[str, ...]) -> int | None:
    keys = [_column_key(c) for c in header]
    for spelling in spellings:  # in order of preference
        if spelling in keys:
            return keys.index(spelling)
    return None


@dataclass
class PlatformTable:
    """The header and the rows of one platform table, read line by line (never the whole file at once)."""

    platform: str
    header: list[str]
    rows: Iterator[list[str]]
    declared_rows: int | None  # !Platform_data_row_count, when the record gives it


def _split_row(line: str) -> list[str]:
    # no quote parsing: a stray quote in a description must not swallow the following lines
    return [cell.strip().strip('"') for cell in line.rstrip("\r\n").split("\t")]


def iter_platform_table(lines: Iterator[str], where: str) -> PlatformTable:
    """Find the platform table of a GEO `.annot` file or a SOFT platform record and stream its rows.

    Reading stops at `!platform_table_end`: nothing after it (in a family SOFT file, every sample's table) is
    read. A table that ends without that line (a truncated download, or another record's marker) raises
    InputFormatError naming `where` and the line.
    """
    platform, declared = "", None
    number = 0
    for number, line in enumerate(lines, start=1):  # noqa: B007 (the line number is read after the loop)
        if line.startswith(PLATFORM_TABLE_BEGIN):
            break
        if line.startswith("^PLATFORM") or line.startswith("!Annotation_platform ="):
            platform = platform or line.split("=", 1)[-1].strip()
        elif line.startswith("!Platform_data_row_count"):
            value = line.split("=", 1)[-1].strip()
            declared = int(value) if value.isdigit() else None
    else:
        raise InputFormatError(f"{where}: no {PLATFORM_TABLE_BEGIN} line; not a GEO platform annotation")
    header_line = next(lines, None)
    if header_line is None or header_line.startswith(("!", "^")):
        raise InputFormatError(f"{where}: the platform table has no header line after {PLATFORM_TABLE_BEGIN}")
    start = number + 1

    def rows() -> Iterator[list[str]]:
        for offset, line in enumerate(lines, start=start + 1):
            if line.startswith(PLATFORM_TABLE_END):
                return
            if line.startswith(("!", "^")):
                raise InputFormatError(
                    f"{where}: the platform table ends at line {offset} with "
                    f"{line.strip()[:40]!r}, not {PLATFORM_TABLE_END}; the record is incomplete"
                )
            if line.strip():
                yield _split_row(line)
        raise InputFormatError(f"{where}: no {PLATFORM_TABLE_END} line; the download is truncated")

    return PlatformTable(platform=platform, header=_split_row(header_line), rows=rows(), declared_rows=declared)


def _check_row_count(table: PlatformTable, rows: int, where: str, name: str) -> None:
    if table.declared_rows is not None and rows != table.declared_rows:
        raise InputFormatError(
            f"{where}: platform {name} declares {table.declared_rows} rows "
            f"(!Platform_data_row_count) but its table has {rows}; the record is incomplete"
        )


def verify_platform_record(path: str | os.PathLike[str], platform: str) -> int:
    """Stream a SOFT platform record and check it is complete and of `platform`; returns its row count."""
    lines = _open_text(Path(path))
    try:
        table = iter_platform_table(lines, str(path))
        if table.platform.upper() != platform.upper():
            raise InputFormatError(f"{path}: the record is platform {table.platform or '(none)'}, expected {platform}")
        rows = sum(1 for _ in table.rows)
    finally:
        lines.close()
    _check_row_count(table, rows, str(path), platform)
    return rows


def _symbols(cell: str) -> list[str]:
    """ "A /// B" -> [A, B]; empty cells and Affymetrix's "---" mean no symbol."""
    return [s.strip() for s in cell.split("///") if s.strip().strip("-")]


def read_platform_annotation(path: str | os.PathLike[str], platform: str | None = None) -> pd.DataFrame:
    """Probe -> symbol table from a GEO `.annot` file or a SOFT platform record (acc.cgi `form=text`).

    Returns columns probe_id, symbols (list of symbols; empty for unmapped probes; "A /// B" gives two) and
    entrez. The file is streamed: only the ID, symbol and Entrez cells of each row are kept. A table without
    a recognisable symbol column, or with fewer rows than the record's `!Platform_data_row_count`, is an
    InputFormatError naming the platform, the file and what was found.
    """
    path = Path(path)
    lines = _open_text(path)
    try:
        table = iter_platform_table(lines, str(path))
        name = platform or table.platform or path.name.split(".")[0]
        if table.platform and platform and table.platform.upper() != platform.upper():
            raise InputFormatError(f"{path}: the record is platform {table.platform}, expected {platform}")
        id_column = _pick_column(table.header, ("id",))
        symbol_column = _pick_column(table.header, SYMBOL_COLUMNS)
        if id_column is None or symbol_column is None:
            raise InputFormatError(
                f"{path}: platform {name} has no recognisable "
                f"{'ID' if id_column is None else 'gene symbol'} column (columns found: {table.header}); "
                "its probes cannot be mapped to genes. Symbol columns understood: "
                "Gene symbol, Gene Symbol, GENE_SYMBOL, Symbol"
            )
        entrez_column = _pick_column(table.header, ENTREZ_COLUMNS)
        wanted = [id_column, symbol_column] + ([entrez_column] if entrez_column is not None else [])
        width = max(wanted) + 1
        kept = [[(row + [""] * width)[i] for i in wanted] for row in table.rows]
    finally:
        lines.close()
    _check_row_count(table, len(kept), str(path), name)
    frame = pd.DataFrame(kept, columns=["probe_id", "symbol", "entrez"][: len(wanted)], dtype=str)
    if frame.empty:
        raise InputFormatError(f"{path}: the table of platform {name} has no rows")
    return pd.DataFrame(
        {
            "probe_id": frame["probe_id"],
            "symbols": frame["symbol"].map(_symbols),
            "entrez": frame["entrez"] if "entrez" in frame.columns else "",
        }
    )


# ------------------------------------------------------------------------------------------------
# Sample tables outside the series matrix (many series keep survival in a supplementary file)
# ------------------------------------------------------------------------------------------------

MISSING_CELLS = {"", "na", "n/a", "nan", "null", "none", "-", "--", "---"}


def read_sample_table(path: str | os.PathLike[str], key: str, sheet: str | int | None = None) -> pd.DataFrame:
    """A per-sample table (TSV/TXT, CSV, or XLSX; gzip allowed) indexed by the GSM ids of its `key` column.

    Column names and cells are stripped; empty and NA-like cells are missing; columns are typed as the
    characteristics are. A missing key column, a row without a key, or a key given twice is an
    InputFormatError naming the file and the column.
    """
    path = Path(path)
    name = path.name.lower().removesuffix(".gz")
    try:
        if name.endswith((".xlsx", ".xls")):
            frame = pd.read_excel(path, sheet_name=sheet if sheet is not None else 0, dtype=str)
        else:
            frame = pd.read_csv(
                path,
                sep="," if name.endswith(".csv") else "\t",
                dtype=str,
                keep_default_na=False,
                encoding_errors="replace",
                skip_blank_lines=True,
            )
    except ImportError as error:
        raise InputFormatError(
            f"{path}: reading a spreadsheet needs openpyxl ({error}); install it, or save the "
            "sheet as a TSV and name that file"
        ) from error
    except (OSError, EOFError, ValueError, pd.errors.ParserError) as error:
        raise InputFormatError(f"{path}: not a readable sample table ({error})") from error
    frame.columns = [str(c).strip() for c in frame.columns]
    column = find_column(frame, key)
    if column is None:
        raise InputFormatError(
            f"{path}: the sample table has no key column {key!r} (matched ignoring case); "
            f"columns found: {list(frame.columns)}"
        )
    frame = frame.apply(lambda values: values.fillna("").astype(str).str.strip())
    frame = frame.loc[(frame != "").any(axis=1)]
    ids = frame[column]
    if (ids == "").any():
        rows = [int(i) + 2 for i in np.flatnonzero((ids == "").to_numpy())][:10]
        raise InputFormatError(f"{path}: rows {rows} have no {column!r} value")
    repeated = sorted(ids[ids.duplicated()].unique())
    if repeated:
        raise InputFormatError(f"{path}: key column {column!r} repeats {len(repeated)} id(s): {repeated[:10]}")
    table = frame.drop(columns=column).set_index(pd.Index(ids.to_numpy(), name=column))
    table = table.mask(table.apply(lambda values: values.str.lower().isin(MISSING_CELLS)))
    return table.apply(_coerce)


def join_sample_table(samples: pd.DataFrame, table: pd.DataFrame, source: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The series' samples with the sample table's columns (matched on GSM id); what matched is recorded.

    Samples without a row keep missing values; rows without a sample are left out; a table column named like
    a column of the series (ignoring case) replaces it. No GSM in common is an error naming the file.
    """
    matched = [s for s in samples.index if s in table.index]
    if not matched:
        raise CohortError(
            f"{source}: no {table.index.name!r} value is a sample of the series (table ids like "
            f"{list(table.index[:3])}, series samples like {list(samples.index[:3])})"
        )
    replaced = [c for c in samples.columns if any(str(c).casefold() == str(t).casefold() for t in table.columns)]
    joined = samples.drop(columns=replaced).join(table, how="left")
    record = {
        "file": Path(source).name,
        "key": str(table.index.name),
        "samples_matched": len(matched),
        "samples_without_row": [s for s in samples.index if s not in table.index],
        "rows_without_sample": [str(r) for r in table.index if r not in samples.index],
        "columns_replaced": replaced,
    }
    return joined, record


def sample_table_notes(record: dict[str, Any]) -> list[str]:
    """The cohort section's sentences about a joined sample table."""
    name, key = record["file"], record["key"]
    notes = [f"sample table {name} joined on {key!r}: {record['samples_matched']} samples matched"]
    for field_name, what in (
        ("samples_without_row", "samples of the series have no row (their table values are missing)"),
        ("rows_without_sample", "rows are not samples of this series (left out)"),
    ):
        ids = record[field_name]
        if ids:
            notes.append(f"{name}: {len(ids)} {what}: {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}")
    if record["columns_replaced"]:
        notes.append(f"{name}: its columns replace the series' {record['columns_replaced']}")
    return notes


CollapseMethod = Literal["max_mean", "mean"]
MultiSymbolRule = Literal["drop", "split"]


@dataclass
class CollapseReport:
    probes_in: int
    probes_matched_ignoring_case: int
    probes_unmapped: int
    probes_multi_symbol: int
    multi_symbol_rule: str
    method: str
    genes_out: int

    def as_dict(self) -> dict[str, int | str]:
        return self.__dict__.copy()


def match_probes(probes: pd.Index, annotation: pd.DataFrame) -> tuple[pd.Series, int]:
    """Each series probe's symbols from the platform: exact id first, then ignoring case, as GEO matches
    series ID_REFs to platform IDs (GEOquery parseGEO.R). Returns the symbols (NaN when unmatched) and how many
    probes matched only ignoring case; a probe whose id matches several platform ids ignoring case stays unmatched.
    """
    platform = annotation.drop_duplicates("probe_id").set_index("probe_id")["symbols"]
    symbols = platform.reindex(probes)
    missing = symbols.isna().to_numpy()
    if not missing.any():
        return symbols, 0
    folded = pd.Series(platform.to_numpy(), index=platform.index.astype(str).str.casefold())
    unique = folded[~folded.index.duplicated(keep=False)]
    by_case = unique.reindex(probes[missing].astype(str).str.casefold()).to_numpy(dtype=object)
    values = symbols.to_numpy(dtype=object).copy()
    values[missing] = by_case
    return pd.Series(values, index=probes), int(pd.notna(by_case).sum())


ROW_IDS = ("probe", "symbol")  # config geo.row_ids: what the series matrix's ID_REF column holds


def symbol_rows(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A series matrix whose rows are gene symbols (geo.row_ids: symbol) as probes plus their own annotation, so
    that collapse_probes applies the same rules as to a platform: a symbol listed on several rows is collapsed
    by the probe-collapse rule, "A /// B" rows follow the multi-symbol rule, empty and "---" rows are unmapped.
    Rows get positional ids because the symbols themselves may repeat."""
    ids = pd.Index([f"row{i + 1}" for i in range(len(table))])
    annotation = pd.DataFrame({"probe_id": ids, "symbols": [_symbols(str(s)) for s in table.index], "entrez": ""})
    return table.set_axis(ids, axis=0), annotation


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
    symbols, ignoring_case = match_probes(table.index, annotation)
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
        probes_in=len(table),
        probes_matched_ignoring_case=ignoring_case,
        probes_unmapped=int(unmapped.sum()),
        probes_multi_symbol=int(multi.sum()),
        multi_symbol_rule=multi_symbol,
        method=method,
        genes_out=len(genes),
    )
    return genes, report


# ------------------------------------------------------------------------------------------------
# Download: series matrices, platform annotation, NCBI-generated RNA-seq counts (GEOquery getGEOfile.R,
# parseGEO.R and rnaseq.R; ../shared/docs/data-sources.md A3).
# ------------------------------------------------------------------------------------------------

MATRIX_SUFFIX = "_series_matrix.txt.gz"
PLATFORM_RECORD_SUFFIX = ".soft"  # raw name of a platform-only SOFT record: {GPL}.soft
HUMAN = "Human"


def matrix_directory(accession: str, base: str = GEO_FTP) -> str:
    return f"{base.rstrip('/')}/series/{series_stub(accession)}/{accession}/matrix/"


def sample_table_name(settings: Mapping[str, Any], accession: str) -> str:
    """The raw-folder name of a configured sample table (`file`, or the base name of `path`; exactly one)."""
    given = [k for k in ("file", "path") if settings.get(k)]
    if len(given) != 1 or not settings.get("key"):
        raise ConfigError(
            f"{accession}: geo.sample_table needs `key` and exactly one of `file` (in the series' "
            f"suppl/ folder) or `path` (a local file); got {sorted(settings)}"
        )
    name = Path(str(settings[given[0]])).name
    if given[0] == "file" and name != settings["file"]:
        raise ConfigError(f"{accession}: geo.sample_table.file {settings['file']!r} must be a file name of suppl/")
    return name


def suppl_url(accession: str, name: str, base: str = GEO_FTP) -> str:
    """A file of the series' supplementary folder (GEOquery getGEOSuppFiles)."""
    return f"{base.rstrip('/')}/series/{series_stub(accession)}/{accession}/suppl/{name}"


def annotation_url(platform: str, base: str = GEO_FTP) -> str:
    """The GDS-style annotation `.annot.gz` (NCBI's own ID / Gene symbol / Gene ID table).

    Not every platform has one."""
    return f"{base.rstrip('/')}/platforms/{series_stub(platform)}/{platform}/annot/{platform}.annot.gz"


def platform_record_url(platform: str, query: str = GEO_QUERY) -> str:
    """The platform-only SOFT record with its submitter table (GEOquery getGEOfile.R, GEOparse).

    Not `soft/{GPL}_family.soft.gz`: that file also holds the data table of every sample run on the platform.
    """
    return f"{query}?targ=self&acc={platform}&form=text&view=full"


def ncbi_download_page_url(accession: str, base: str = NCBI_GEO_DOWNLOAD) -> str:
    """The series' download page, whose links name NCBI's generated counts and their annotation (GEOquery rnaseq.R)."""
    return f"{base}?acc={accession}"


@dataclass(frozen=True)
class NcbiCounts:
    """NCBI-generated RNA-seq counts of one series as its download page links them."""

    counts_url: str
    annotation_url: str
    counts_file: str  # {GSE}_raw_counts_{build}_NCBI.tsv.gz
    annotation_file: str  # {Species}.{build}.annot.tsv.gz
    species: str
    build: str


def annotation_genome(name: str) -> tuple[str, str]:
    """`Human.GRCh38.p13.annot.tsv.gz` -> ("Human", "GRCh38.p13") (GEOquery urlExtractRNASeqQuantGenomeInfo)."""
    match = re.fullmatch(r"([A-Za-z]+)\.(.+)\.annot\.tsv\.gz", name)
    if not match:
        raise InputFormatError(f"{name!r} is not an NCBI annotation file name (<Species>.<build>.annot.tsv.gz)")
    return match.group(1), match.group(2)


def counts_build(name: str, accession: str) -> str:
    """`GSE1_raw_counts_GRCh38.p13_NCBI.tsv.gz` -> "GRCh38.p13"."""
    match = re.fullmatch(rf"{accession}_raw_counts_(.+?)(_NCBI)?\.tsv\.gz", name)
    if not match:
        raise InputFormatError(
            f"{name!r} is not an NCBI raw counts file name of {accession} ({accession}_raw_counts_<build>_NCBI.tsv.gz)"
        )
    return match.group(1)


def ncbi_counts_links(links: list[str], accession: str, page: str, base: str = NCBI_GEO_DOWNLOAD) -> NcbiCounts:
    """Pick the raw counts and annotation links of a series' download page (hrefs containing `raw_counts` and
    `annot.tsv.gz`, as GEOquery does). Each link is rebuilt on `base` from its query, so the page's site-relative
    `/geo/download/?...&file=...` links work against a mirror or test server too.

    A page without raw counts is a ConfigError naming the series; so is a species other than human (every gene
    set and signature of the workflow is in human symbols) or counts and annotation of different builds.
    """
    files: dict[str, str] = {}
    generated: set[str] = set()  # type=rnaseq_counts links: NCBI's own files, not a submitter's supplement
    for href in links:
        query = urllib.parse.urlsplit(urllib.parse.unquote(href)).query
        params = urllib.parse.parse_qs(query)
        name = params.get("file", [""])[0]
        if name:
            files.setdefault(name, f"{base}?{query}")
            if params.get("type") == ["rnaseq_counts"]:
                generated.add(name)
    if generated:
        files = {name: url for name, url in files.items() if name in generated}
    counts = sorted(n for n in files if "raw_counts" in n)
    annotations = sorted(n for n in files if n.endswith("annot.tsv.gz"))
    if not counts:
        raise ConfigError(
            f"{accession}: NCBI has no generated RNA-seq counts for this series ({page} links no "
            "raw_counts file); set geo.rnaseq_counts: false for an array series, or use a series "
            "NCBI has processed"
        )
    if len(counts) > 1 or len(annotations) != 1:
        raise InputFormatError(
            f"{page}: expected one raw_counts and one annot.tsv.gz link for {accession}, "
            f"found {counts} and {annotations}"
        )
    species, build = annotation_genome(annotations[0])
    if species != HUMAN:
        raise ConfigError(
            f"{accession}: NCBI's counts are for {species} ({build}, {annotations[0]}); ferrostem's "
            "gene sets and signatures are human gene symbols, so only human series can be analysed"
        )
    count_build = counts_build(counts[0], accession)
    if count_build != build:
        raise InputFormatError(
            f"{page}: counts {counts[0]} ({count_build}) and annotation {annotations[0]} "
            f"({build}) are of different genome builds"
        )
    return NcbiCounts(files[counts[0]], files[annotations[0]], counts[0], annotations[0], species, build)


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


def _platform_annotation(client: Client, platform: str, raw: Path, base: str, query: str) -> dict[str, Any]:
    """`{GPL}.annot.gz` when GEO has one, else the platform-only SOFT record from acc.cgi, streamed to check it.

    The acc.cgi answer comes with no checksum: it is stored under its URL (query included), checked to be a
    complete record of this platform (its table ends with `!platform_table_end` and has the declared row
    count), and its sha256 goes into download.json and the cohort's provenance. An incomplete record is removed
    from the store so that the next run fetches it again.
    """
    url = annotation_url(platform, base)
    try:
        path = client.fetch(url)
        kind = "GEO annotation (.annot)"
    except NotFoundError as missing:
        url = platform_record_url(platform, query)
        log.info("%s has no .annot file (%s); using the submitter's platform record %s", platform, missing, url)
        path = client.fetch(url, check_gzip=False)
        kind = "submitter platform record (acc.cgi SOFT, no published checksum)"
        try:
            rows = verify_platform_record(path, platform)
        except InputFormatError as error:
            path.unlink()
            raise InputFormatError(
                f"{client.source_of(url)}: not a complete platform record of {platform} "
                f"({error}); removed from the store, run again to fetch it anew"
            ) from error
        name = f"{platform}{PLATFORM_RECORD_SUFFIX}"
    else:
        rows = None
        name = path.name
    link_or_copy(path, raw / name)
    return {
        "platform": platform,
        "kind": kind,
        "url": url,
        "file": name,
        "sha256": file_digest(path),
        "bytes": path.stat().st_size,
        **({"rows": rows} if rows is not None else {}),
    }


def download_series(
    client: Client,
    accession: str,
    raw_dir: str | os.PathLike[str],
    *,
    base: str = GEO_FTP,
    platform: str | None = None,
    rnaseq_counts: bool = False,
    ncbi_base: str = NCBI_GEO_DOWNLOAD,
    query: str = GEO_QUERY,
    sample_table: Mapping[str, Any] | None = None,
    row_ids: str = "probe",
) -> Path:
    """Series matrices (+ platform annotation, or NCBI counts, + a sample table) into `raw_dir` in the layout
    harmonise reads. `sample_table` is config `geo.sample_table`: `file` (in the series' suppl/ folder, fetched
    and verified by the client) or `path` (a local file, copied). `row_ids` is config `geo.row_ids`: a series
    whose rows are already gene symbols (`symbol`) needs no platform annotation, and none is fetched."""
    if row_ids not in ROW_IDS:
        raise ConfigError(f"{accession}: geo.row_ids {row_ids!r} is not one of {', '.join(ROW_IDS)}")
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
    record: dict[str, Any] = {
        "source": "geo",
        "accession": accession,
        "platforms": platforms,
        "mirror": client.mirror,
        "rnaseq_counts": rnaseq_counts,
        "row_ids": row_ids,
    }
    if rnaseq_counts:
        page = ncbi_download_page_url(accession, ncbi_base)
        page_path = client.fetch(page, check_gzip=False)
        links = page_links(page_path.read_text(encoding="utf-8", errors="replace"))
        counts = ncbi_counts_links(links, accession, client.source_of(page), ncbi_base)
        for url, name in ((counts.counts_url, counts.counts_file), (counts.annotation_url, counts.annotation_file)):
            link_or_copy(client.fetch(url), raw / name)
        urls += [page, counts.counts_url, counts.annotation_url]
        record["ncbi_counts"] = {
            "page": page,
            "page_sha256": file_digest(page_path),
            "counts": counts.counts_file,
            "annotation": counts.annotation_file,
            "species": counts.species,
            "build": counts.build,
        }
    elif row_ids == "symbol":
        record["annotations"] = []
    else:
        record["annotations"] = [_platform_annotation(client, gpl, raw, base, query) for gpl in platforms]
        urls += [a["url"] for a in record["annotations"]]
    if sample_table:
        name = sample_table_name(sample_table, accession)
        if sample_table.get("file"):
            url = suppl_url(accession, name, base)
            path = client.fetch(url)
            urls.append(url)
        else:
            path = Path(sample_table["path"])
            if not path.is_file():
                raise ConfigError(f"{accession}: geo.sample_table.path {str(path)!r} is not a file")
        link_or_copy(path, raw / name)
        record["sample_table"] = {
            "file": name,
            "from": url if sample_table.get("file") else str(path),
            "sha256": file_digest(path),
        }
    write_json({**record, "urls": urls}, raw / "download.json")
    return raw


def download(
    client: Client, cohort: Mapping[str, Any], settings: Mapping[str, Any], raw_dir: str | os.PathLike[str]
) -> Path:
    """The source adapter's download (harmonise.SOURCES): a config `cohorts` entry (its `geo:` block) and the
    `download:` settings."""
    options = cohort.get("geo") or {}
    return download_series(
        client,
        cohort["accession"],
        raw_dir,
        base=settings["geo_ftp"],
        platform=options.get("platform"),
        rnaseq_counts=bool(options.get("rnaseq_counts")),
        ncbi_base=settings["geo_download"],
        query=settings["geo_query"],
        sample_table=options.get("sample_table"),
        row_ids=options.get("row_ids", "probe"),
    )


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
