"""UCSC Xena: the GDC hub's STAR matrices and phenotypes, and the TCGA-CDR survival table (PanCanAtlas hub).

Formats (../shared/docs/data-sources.md A2; UCSCXenaTools `XenaData`): `TCGA-<X>.star_counts.tsv.gz` is
genes x samples with first column `Ensembl_ID` (GENCODE v36, versioned) in **log2(count+1)** of the mean of a
sample's files (the hub averages aliquots, so back-transformed counts can be x.5: `counts_from_log2`);
`star_tpm` is log2(TPM+1); `survival.tsv` has `sample, OS, _PATIENT, OS.time`; the probe map
`gencode.v36.annotation.gtf.gene.probemap` has `id, gene, chrom, chromStart, chromEnd, strand`; `clinical.tsv`
is per sample with `<field>.<node>` columns, and a case with several diagnosis records has Python list text in
its diagnosis cells (`read_clinical`).
The TCGA-CDR (Liu et al., Cell 2018, doi:10.1016/j.cell.2018.02.052) is
`Survival_SupplementalTable_S1_20171025_xena_sp`, one row per sample with `sample, _PATIENT,
cancer type abbreviation` and the CDR fields, among them OS, DSS, DFI, PFI and their `.time` in days.
"""

from __future__ import annotations

import ast
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from ..endpoints import CDR_ENDPOINTS
from ..errors import CohortError, InputFormatError
from ..files import write_json
from . import gdc
from .http import Client, link_or_copy
from .urls import GDC_HUB, PANCAN_HUB, CDR_DATASET

log = logging.getLogger(__name__)

PROBEMAP = "gencode.v36.annotation.gtf.gene.probemap"
COHORT_DATASETS = ("star_counts", "star_tpm", "survival", "clinical")
# a back-transformed count further than this from an integer is a mean of several files (a mean of k files
# sits at least 1/k away); the hub's doubles give integers to ~1e-11
AVERAGED_TOLERANCE = 0.01
HALF_MARGIN = 1e-6


def dataset_url(hub: str, name: str) -> str:
    """UCSCXenaTools' rule: `{host}/download/{dataset}` (GDC hub files are gzipped)."""
    return f"{hub.rstrip('/')}/download/{name}"


def dataset_names(project: str) -> dict[str, str]:
    return {kind: f"{project}.{kind}.tsv.gz" for kind in COHORT_DATASETS}


def download_cohort(client: Client, project: str, raw_dir: str | os.PathLike[str], hub: str = GDC_HUB) -> Path:
    """Fetch a project's Xena datasets and the probe map into `raw_dir` (file names as on the hub)."""
    raw = Path(raw_dir)
    names = [*dataset_names(project).values(), PROBEMAP]
    for name in names:
        url = dataset_url(hub, name)
        link_or_copy(client.fetch(url), raw / name)
    write_json(
        {
            "source": "xena",
            "project": project,
            "hub": hub,
            "mirror": client.mirror,
            "files": names,
            "urls": [dataset_url(hub, n) for n in names],
        },
        raw / "download.json",
    )
    return raw


def download(
    client: Client, cohort: Mapping[str, Any], settings: Mapping[str, Any], raw_dir: str | os.PathLike[str]
) -> Path:
    """The source adapter's download (harmonise.SOURCES): a config `cohorts` entry and the `download:` settings."""
    return download_cohort(client, cohort["project"], raw_dir, settings["xena_gdc_hub"])


def download_cdr(client: Client, target: str | os.PathLike[str], hub: str = PANCAN_HUB) -> Path:
    path = client.fetch(dataset_url(hub, CDR_DATASET))
    link_or_copy(path, Path(target))
    return Path(target)


@dataclass
class XenaMatrix:
    ids: list[str]
    samples: list[str]
    values: np.ndarray  # genes x samples


def read_matrix(path: str | os.PathLike[str]) -> XenaMatrix:
    """A Xena genomic matrix: first column the feature id, one column per sample, numbers (NA allowed)."""
    path = Path(path)
    try:
        frame = pl.read_csv(path, separator="\t", infer_schema=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as error:
        raise InputFormatError(f"{path}: not a readable Xena matrix ({error}); is the download complete?") from error
    if frame.width < 2:
        raise InputFormatError(f"{path}: expected a feature-id column and sample columns, found {frame.columns}")
    id_column = frame.columns[0]
    ids = frame[id_column]
    duplicated = ids.filter(ids.is_duplicated()).unique().sort().to_list()
    if duplicated:
        raise InputFormatError(
            f"{path}: {len(duplicated)} duplicate {id_column} rows, e.g. {duplicated[:5]}; "
            "a Xena matrix must list each feature once"
        )
    samples = frame.columns[1:]
    dup_samples = pd.Index(samples)[pd.Index(samples).duplicated()].tolist()
    if dup_samples:
        raise InputFormatError(f"{path}: duplicate sample columns {dup_samples[:5]}")
    numbers = frame.select(pl.col(samples).replace({"NA": None, "": None}).cast(pl.Float64, strict=False))
    raw_missing = frame.select(pl.col(samples).is_in(["NA", ""]) | pl.col(samples).is_null())
    bad = numbers.select(pl.all().is_null()).to_numpy() & ~raw_missing.to_numpy()
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise InputFormatError(
            f"{path}: non-numeric value {frame[samples[column]][int(row)]!r} for "
            f"{ids[int(row)]!r} in sample {samples[column]}"
        )
    return XenaMatrix(ids=ids.to_list(), samples=list(samples), values=numbers.to_numpy().astype(np.float64))


@dataclass
class CountsRounding:
    """What rounding the back-transformed counts did: per sample, the cells that were not integers."""

    samples: list[str]
    non_integer_cells: np.ndarray  # per sample
    max_deviation: float

    def for_samples(self, kept: list[str]) -> dict[str, Any]:
        """The record for the samples a cohort keeps (uns["harmonisation"]["counts_rounding"])."""
        per_sample = dict(zip(self.samples, self.non_integer_cells.tolist()))
        averaged = sorted(s for s in kept if per_sample.get(s, 0) > 0)
        return {
            "rule": f"2**x - 1, rounded to the nearest integer (halves up); a value more than "
            f"{AVERAGED_TOLERANCE} from an integer is a mean of several aliquot files (hub-averaged)",
            "non_integer_cells": int(sum(per_sample.get(s, 0) for s in kept)),
            "non_integer_samples": len(averaged),
            "samples_with_averaged_counts": averaged,
            "max_rounding": self.max_deviation,
        }


def counts_from_log2(matrix: XenaMatrix, path: str | os.PathLike[str]) -> tuple[np.ndarray, CountsRounding]:
    """log2(count+1) -> counts (2**x - 1, rounded), and which cells were not integers.

    The hub averages a sample's files (vials, portions, aliquots) before log2(x+1) (xena-GDC-ETL
    `template.rna.meta.json`), so a sample with two files can hold x.5 values: those are counted, per sample,
    and rounded; the layer is hub-averaged counts, not one library's counts.
    """
    if np.isnan(matrix.values).any():
        row, column = np.argwhere(np.isnan(matrix.values))[0]
        raise InputFormatError(f"{path}: missing count for {matrix.ids[row]} in sample {matrix.samples[column]}")
    linear = np.exp2(matrix.values) - 1.0
    # halves (means of two files) round up; the margin keeps that stable under the log2 round trip's noise
    rounded = np.floor(linear + 0.5 + HALF_MARGIN)
    if (rounded < 0).any():
        row, column = np.argwhere(rounded < 0)[0]
        raise InputFormatError(
            f"{path}: {matrix.ids[row]} in {matrix.samples[column]} is {matrix.values[row, column]}, "
            "below log2(0+1); is this really a log2(count+1) matrix?"
        )
    deviation = np.abs(linear - rounded)
    non_integer = (deviation > AVERAGED_TOLERANCE).sum(axis=0)
    if non_integer.any():
        log.warning(
            "%s: %d cells in %d samples are not integers after 2**x - 1 (hub-averaged aliquots); rounded",
            path,
            int(non_integer.sum()),
            int((non_integer > 0).sum()),
        )
    return rounded.astype(np.int64), CountsRounding(
        samples=list(matrix.samples),
        non_integer_cells=non_integer,
        max_deviation=float(deviation.max()) if deviation.size else 0.0,
    )


def read_probemap(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Xena probe map: `id` (versioned Ensembl) -> `gene` symbol."""
    path = Path(path)
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if not {"id", "gene"} <= set(table.columns):
        raise InputFormatError(f"{path}: a Xena probe map needs columns id and gene, found {list(table.columns)[:6]}")
    if table["id"].duplicated().any():
        raise InputFormatError(f"{path}: duplicate ids {table.loc[table['id'].duplicated(), 'id'].head(5).tolist()}")
    return table.set_index("id")


# the hub's matrices and its probe map list the same GENCODE v36 ids; a few absent ids are tolerated (named in
# the log), more mean another gene model
PROBEMAP_MAX_MISSING = 0.01


def check_probemap_covers(probemap: pd.DataFrame, ids: list[str], probemap_path: Path, matrix_path: Path) -> None:
    absent = [i for i in ids if i not in probemap.index]
    if len(absent) > PROBEMAP_MAX_MISSING * max(len(ids), 1):
        raise InputFormatError(
            f"{matrix_path}: {len(absent)} of {len(ids)} Ensembl_ID rows are not in {probemap_path} "
            f"(e.g. {absent[:3]}); the matrix and the probe map are of different gene models"
        )
    if absent:
        log.warning(
            "%s: %d ids not in %s (kept without a symbol): %s",
            matrix_path,
            len(absent),
            probemap_path,
            ", ".join(absent[:5]),
        )


def read_survival(path: str | os.PathLike[str]) -> pd.DataFrame:
    """GDC-hub `survival.tsv`: patient-level OS and OS.time (days)."""
    path = Path(path)
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in ("sample", "OS", "_PATIENT", "OS.time") if c not in table.columns]
    if missing:
        raise InputFormatError(f"{path}: Xena survival table lacks columns {missing}; found {list(table.columns)}")
    patients = table.drop_duplicates("_PATIENT").set_index("_PATIENT").rename_axis("patient_id")
    return _endpoint_columns(patients, ["OS", "OS.time"], path)


# what the CDR and survival tables write for "no value"
_NO_VALUE = {"", "na", "nan", "#n/a", "n/a", "[not available]", "[not applicable]", "[discrepancy]"}


def _endpoint_columns(table: pd.DataFrame, columns: list[str], path: Path) -> pd.DataFrame:
    """Endpoint columns as numbers: events 0/1, times in days >= 0; anything else names the column and patient."""
    out = pd.DataFrame(index=table.index)
    for column in columns:
        raw = table[column]
        text = raw.astype("string").str.strip()
        numbers = pd.to_numeric(text.where(~text.str.lower().isin(_NO_VALUE)), errors="coerce")
        bad = numbers.isna() & text.notna() & ~text.str.lower().isin(_NO_VALUE)
        if not column.endswith(".time"):
            bad |= numbers.notna() & ~numbers.isin([0, 1])
        else:
            bad |= numbers < 0
        if bad.any():
            patient = bad[bad].index[0]
            raise InputFormatError(
                f"{path}: column {column!r} holds {raw[patient]!r} for {patient} "
                f"({int(bad.sum())} such values); expected "
                + ("days >= 0" if column.endswith(".time") else "an event indicator 0 or 1")
            )
        out[column] = numbers.astype(float)
    return out


# GDC-hub phenotype columns are `<field>.<node>` (xena-GDC-ETL reverses GDC's `node.field`); the BRCA
# column list of the 2024 hub (../shared real_formats) holds the first candidate of each field. Later
# candidates are older or alternative spellings, used for the rows where the earlier ones are empty.
CLINICAL_FIELDS = {
    "age": ["age_at_index.demographic", "age_at_diagnosis.diagnoses"],
    "sex": ["gender.demographic", "sex_at_birth.demographic"],
    "stage": ["ajcc_pathologic_stage.diagnoses", "tumor_stage.diagnoses"],
    "grade": ["tumor_grade.diagnoses"],
}
# columns whose value is in days, converted to years
_DAYS_COLUMNS = {"age_at_diagnosis.diagnoses"}
# the hub's per-diagnosis flags, in the order they decide which record is the primary diagnosis
PRIMARY_FLAGS = (("diagnosis_is_primary_disease.diagnoses", "true"), ("classification_of_tumor.diagnoses", "primary"))
_MISSING_TEXT = {"", "--", "nan", "none", "na", "not reported", "unknown", "not applicable"}
LIST_RULE = (
    "a clinical cell holding several diagnosis records (a list) takes the element of the primary "
    "diagnosis (diagnosis_is_primary_disease, else classification_of_tumor == primary, lists aligned "
    "by position); without such a flag, the one distinct known value when the records agree, "
    "otherwise missing (ambiguous)"
)


def _missing(value: Any) -> bool:
    return (
        value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip().lower() in _MISSING_TEXT
    )


def parse_cell(text: str, *, path: Path, column: str, sample: str) -> str | list[str | None]:
    """One clinical cell: plain text, or the Python list text the hub ETL writes for several records.

    xena-GDC-ETL (`format_multiple_data`: `fillna('').astype(str).groupby('id').agg(list)`) writes a
    case with several diagnoses as e.g. "['Stage IIIA', '']". Only list literals of strings, numbers and
    None are accepted (`ast.literal_eval`, never `eval`).
    """
    stripped = text.strip()
    if not (stripped.startswith("[") or stripped.endswith("]")):
        return text
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as error:
        raise InputFormatError(
            f"{path}: column {column!r}, sample {sample}: cell {stripped[:80]!r} looks like a "
            f"list of records but is not a valid list literal ({error})"
        ) from error
    if not isinstance(value, list) or not all(
        v is None or isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
    ):
        raise InputFormatError(
            f"{path}: column {column!r}, sample {sample}: cell {stripped[:80]!r} is not a list of strings or numbers"
        )
    return [None if v is None else str(v) for v in value]


@dataclass
class ListResolution:
    """How the list cells of one clinical field were resolved (counts of patients)."""

    list_cells: int = 0
    primary_flag: int = 0
    classification: int = 0
    records_agree: int = 0
    ambiguous: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "list_cells": self.list_cells,
            "by_diagnosis_is_primary_disease": self.primary_flag,
            "by_classification_of_tumor": self.classification,
            "records_agree": self.records_agree,
            "ambiguous_set_missing": len(self.ambiguous),
            "ambiguous_patients": sorted(self.ambiguous),
        }


def _primary_position(
    flags: dict[str, Any], length: int, *, path: Path, column: str, sample: str
) -> tuple[int, str] | None:
    """Index of the primary diagnosis among `length` records, from the first flag column that names one."""
    for flag_column, wanted in PRIMARY_FLAGS:
        flag = flags.get(flag_column)
        if not isinstance(flag, list):
            continue
        if len(flag) != length:
            raise InputFormatError(
                f"{path}: sample {sample}: column {column!r} lists {length} diagnosis records but "
                f"{flag_column!r} lists {len(flag)}; the hub's per-diagnosis lists should be aligned by position"
            )
        hits = [i for i, v in enumerate(flag) if v is not None and str(v).strip().lower() == wanted]
        if len(hits) == 1:
            return hits[0], flag_column
    return None


def choose_clinical_columns(columns: list[str]) -> dict[str, list[str]]:
    """For each clinical field, the candidate columns present in a hub `clinical.tsv`, in order of preference."""
    return {name: [c for c in candidates if c in columns] for name, candidates in CLINICAL_FIELDS.items()}


def read_clinical(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Patient-level age, sex, stage and grade from a GDC-hub `clinical.tsv`, and how they were read.

    Rows are samples; the patient is the first 12 characters of the `sample` barcode (the first row of a
    patient is used: the hub repeats the case fields on every sample). Cells holding several diagnosis
    records are resolved by LIST_RULE; the report counts each rule and names the ambiguous patients.
    """
    path = Path(path)
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if table.columns[0] != "sample":
        raise InputFormatError(
            f"{path}: a GDC-hub clinical.tsv starts with the column 'sample', found {list(table.columns[:4])}"
        )
    table["_patient"] = table["sample"].str.slice(0, 12)
    table = table.drop_duplicates("_patient")
    chosen = choose_clinical_columns(list(table.columns))
    flag_columns = [c for c, _ in PRIMARY_FLAGS if c in table.columns]
    out = pd.DataFrame(index=pd.Index(table["_patient"], name="patient_id"))
    resolutions: dict[str, ListResolution] = {}
    missing_fields = []
    filled_by: dict[str, dict[str, int]] = {}
    conflicts: dict[str, list[str]] = {}
    unknown_stage: list[str] = []
    for field_name, columns in chosen.items():
        values: list[Any] = [None] * len(table)
        resolution = ListResolution()
        for column in columns:
            cells = table[column].tolist()
            for row, (sample, cell, patient) in enumerate(zip(table["sample"], cells, table["_patient"])):
                if values[row] is not None:  # a later spelling only fills gaps; a different value is reported
                    if (
                        not _missing(cell)
                        and not cell.strip().startswith("[")
                        and cell.strip().lower() != str(values[row][1]).strip().lower()
                    ):
                        conflicts.setdefault(field_name, []).append(
                            f"{patient} ({values[row][0]} {values[row][1]!r}, {column} {cell.strip()!r})"
                        )
                    continue
                parsed = parse_cell(cell, path=path, column=column, sample=sample)
                if isinstance(parsed, list):
                    resolution.list_cells += 1
                    flags = {c: parse_cell(table[c].iat[row], path=path, column=c, sample=sample) for c in flag_columns}
                    value = _resolve_list(
                        parsed, flags, resolution, path=path, column=column, sample=sample, patient=patient
                    )
                else:
                    value = None if _missing(parsed) else parsed
                if value is not None:
                    values[row] = (column, value)
        resolutions[field_name] = resolution
        if not columns:
            missing_fields.append(field_name)
        used = pd.Series([v[0] for v in values if v is not None], dtype=str).value_counts()
        if len(used) > 1 or (len(used) == 1 and used.index[0] != columns[0]):
            filled_by[field_name] = {str(k): int(n) for k, n in used.items()}
        converted = []
        for patient, found in zip(table["_patient"], values):
            try:
                converted.append(_convert(field_name, found))
            except gdc.UnknownStageError as error:  # never guessed: missing, and named (as for the GDC source)
                unknown_stage.append(f"{patient} ({error.value!r})")
                converted.append(None)
        out[field_name] = converted
    report: dict[str, Any] = {
        "clinical_unknown_stage": unknown_stage,
        "clinical_columns": {k: (v[0] if v else "") for k, v in chosen.items()},
        "clinical_fields_missing": missing_fields,
        "clinical_list_rule": LIST_RULE,
        "clinical_list_cells": {k: r.as_dict() for k, r in resolutions.items() if r.list_cells},
        "clinical_rows_by_column": filled_by,
        "clinical_column_conflicts": conflicts,
    }
    return out, report


def _resolve_list(
    values: list[str | None],
    flags: dict[str, Any],
    resolution: ListResolution,
    *,
    path: Path,
    column: str,
    sample: str,
    patient: str,
) -> str | None:
    primary = _primary_position(flags, len(values), path=path, column=column, sample=sample)
    if primary is not None:
        position, flag_column = primary
        if flag_column == PRIMARY_FLAGS[0][0]:
            resolution.primary_flag += 1
        else:
            resolution.classification += 1
        value = values[position]
        return None if _missing(value) else value
    known = sorted({str(v).strip() for v in values if not _missing(v)})
    if len(known) <= 1:
        resolution.records_agree += 1
        return known[0] if known else None
    resolution.ambiguous.append(patient)
    return None


def _convert(field_name: str, found: tuple[str, str] | None) -> Any:
    if found is None:
        return np.nan
    column, value = found
    if field_name == "age":
        number = pd.to_numeric(value, errors="coerce")
        return number / 365.25 if column in _DAYS_COLUMNS else number
    if field_name == "stage":
        return gdc.stage_group(value)
    if field_name == "sex":
        return value.strip().lower()
    return value


def read_cdr(path: str | os.PathLike[str], project: str | None = None) -> pd.DataFrame:
    """TCGA-CDR endpoints per patient (OS, DSS, DFI, PFI and .time in days), optionally for one project.

    Patients marked `Redaction` (withdrawn from TCGA) get no endpoints.
    """
    path = Path(path)
    with open(path, "rb") as handle:  # served plain (C2), but a gzipped copy from a mirror is read as well
        compression = "gzip" if handle.read(2) == b"\x1f\x8b" else None
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, compression=compression)
    except (UnicodeDecodeError, pd.errors.ParserError) as error:
        raise InputFormatError(f"{path}: not a readable TCGA-CDR table ({error})") from error
    needed = ["_PATIENT", "cancer type abbreviation", *[c for e in CDR_ENDPOINTS for c in (e, f"{e}.time")]]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise InputFormatError(f"{path}: not the TCGA-CDR survival table; missing columns {missing}")
    if project:
        code = project.split("-", 1)[-1]
        table = table[table["cancer type abbreviation"] == code]
        if table.empty:
            raise CohortError(f"{path}: no TCGA-CDR rows for cancer type {code!r} (project {project})")
    patients = table.drop_duplicates("_PATIENT").set_index("_PATIENT")
    endpoints = _endpoint_columns(patients, needed[2:], path)
    if "Redaction" in patients.columns:
        redacted = patients["Redaction"].fillna("").astype(str).str.strip().str.lower().eq("redacted")
        endpoints.loc[redacted] = np.nan
    endpoints = endpoints.rename_axis("patient_id")
    return endpoints


def apply_cdr(obs: pd.DataFrame, cdr: pd.DataFrame, source: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Replace OS/DSS/DFI/PFI of every sample by its patient's CDR values; report who had none."""
    obs = obs.copy()
    matched = obs["patient_id"].isin(cdr.index)
    for column in cdr.columns:
        obs[column] = obs["patient_id"].map(cdr[column]).astype(float)
    unmatched = sorted(obs.loc[~matched, "patient_id"].unique())
    report = {
        "survival_source": f"TCGA-CDR (Liu et al., Cell 2018; {source})",
        "cdr_patients_matched": int(obs.loc[matched, "patient_id"].nunique()),
        "cdr_patients_unmatched": unmatched,
    }
    return obs, report
