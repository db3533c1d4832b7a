"""GDC (TCGA) files: augmented STAR gene-count TSVs, /files hits and /cases clinical records.

Formats: GDC mRNA pipeline docs (Data Release 32+, GENCODE v36); see docs in ../shared/docs/data-sources.md.
A per-sample file has a `# gene-model: ...` comment, a header, four STAR summary rows (N_unmapped,
N_multimapping, N_noFeature, N_ambiguous) and then one row per gene with a versioned Ensembl ID.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from ..barcodes import parse_barcode
from ..errors import CohortError, InputFormatError
from ..progress import ProgressReport
from ..files import write_json
from ..parallel import ordered_map
from .http import ChecksumError, Client, Expected, link_or_copy, verify_file
from .urls import GDC_API

log = logging.getLogger(__name__)

STAR_COLUMNS = [
    "gene_id",
    "gene_name",
    "gene_type",
    "unstranded",
    "stranded_first",
    "stranded_second",
    "tpm_unstranded",
    "fpkm_unstranded",
    "fpkm_uq_unstranded",
]
STAR_SUMMARY_ROWS = ["N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous"]
COUNT_COLUMNS = ["unstranded", "stranded_first", "stranded_second"]
VALUE_COLUMNS = ["tpm_unstranded", "fpkm_unstranded", "fpkm_uq_unstranded"]


@dataclass
class StarFile:
    gene_model: str
    genes: pd.DataFrame  # gene_id, gene_name, gene_type, counts and values, in file order
    summary: pd.Series  # N_* rows of the `unstranded` column


def _read_star_frame(path: Path) -> tuple[str, pl.DataFrame]:
    with open(path, encoding="utf-8") as handle:
        first = handle.readline()
    if not first.startswith("#"):
        raise InputFormatError(f"{path}: expected a '# gene-model: ...' comment on line 1, found {first[:60]!r}")
    gene_model = first.lstrip("#").split(":", 1)[-1].strip()
    try:
        frame = pl.read_csv(
            path,
            separator="\t",
            skip_rows=1,
            has_header=True,
            infer_schema=False,
            truncate_ragged_lines=False,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as error:
        raise InputFormatError(f"{path}: not a readable STAR gene-count table ({error})") from error
    missing = [column for column in STAR_COLUMNS if column not in frame.columns]
    if missing:
        raise InputFormatError(f"{path}: missing STAR columns {missing}; header is {frame.columns}")
    return gene_model, frame


def _numeric(frame: pl.DataFrame, column: str, path: Path, rows: pl.Series) -> np.ndarray:
    raw = frame[column]
    values = raw.cast(pl.Float64, strict=False)
    bad = values.is_null() & raw.is_not_null() & (raw != "")
    if bad.any():
        index = int(bad.arg_max())
        raise InputFormatError(
            f"{path}: column {column!r} has a non-numeric value {raw[index]!r} for gene {rows[index]!r}"
        )
    if values.is_null().any():
        index = int(values.is_null().arg_max())
        raise InputFormatError(f"{path}: column {column!r} is empty for gene {rows[index]!r} (truncated file?)")
    return values.to_numpy()


def read_star_counts(path: str | os.PathLike[str]) -> StarFile:
    """Read one augmented STAR gene-count file, checking layout, numbers and completeness."""
    path = Path(path)
    gene_model, frame = _read_star_frame(path)
    ids = frame["gene_id"]
    is_summary = ids.str.starts_with("N_")
    summary_frame = frame.filter(is_summary)
    found = summary_frame["gene_id"].to_list()
    if found != STAR_SUMMARY_ROWS:
        raise InputFormatError(f"{path}: expected STAR summary rows {STAR_SUMMARY_ROWS}, found {found}")
    genes = frame.filter(~is_summary)
    if genes.height == 0:
        raise InputFormatError(f"{path}: no gene rows after the STAR summary rows (truncated file?)")
    gene_ids = genes["gene_id"]
    data: dict[str, Any] = {
        "gene_id": gene_ids.to_numpy(),
        "gene_name": genes["gene_name"].to_numpy(),
        "gene_type": genes["gene_type"].to_numpy(),
    }
    for column in COUNT_COLUMNS + VALUE_COLUMNS:
        data[column] = _numeric(genes, column, path, gene_ids)
    counts = data["unstranded"]
    if (counts < 0).any() or not np.all(np.equal(np.mod(counts, 1), 0)):
        index = int(np.flatnonzero((counts < 0) | (np.mod(counts, 1) != 0))[0])
        raise InputFormatError(
            f"{path}: unstranded count for gene {gene_ids[index]!r} is {float(counts[index]):g}, "
            "not a non-negative integer"
        )
    summary = pd.Series(
        _numeric(summary_frame, "unstranded", path, summary_frame["gene_id"]), index=found, name="unstranded"
    )
    return StarFile(gene_model=gene_model, genes=pd.DataFrame(data), summary=summary)


@dataclass
class StarMatrix:
    gene_model: str
    genes: pd.DataFrame  # gene_id, gene_name, gene_type
    counts: np.ndarray  # genes x samples, int64 (a transposed view: samples are contiguous rows underneath)
    tpm: np.ndarray  # genes x samples, likewise
    samples: list[str]
    unassigned: pd.DataFrame  # samples x STAR summary rows


def _read_star_fast(
    path: Path, gene_model: str, reference: pl.Series
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Typed read of the two columns the merge needs; None when the file is not a clean twin of the first."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.readline().lstrip("#").split(":", 1)[-1].strip() != gene_model:
                return None
        frame = pl.read_csv(
            path,
            separator="\t",
            skip_rows=1,
            columns=["gene_id", "unstranded", "tpm_unstranded"],
            schema_overrides={"gene_id": pl.String, "unstranded": pl.Int64, "tpm_unstranded": pl.Float64},
        )
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError):
        return None
    n_summary = len(STAR_SUMMARY_ROWS)
    if frame.height != len(reference) or not frame["gene_id"].equals(reference):
        return None
    counts, tpm = frame["unstranded"], frame["tpm_unstranded"][n_summary:]
    if counts.null_count() or tpm.null_count() or (counts < 0).any():
        return None
    values = counts.to_numpy()
    return values[n_summary:], tpm.to_numpy(), values[:n_summary].astype(np.float64)


def _gene_model_line(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            first = handle.readline()
    except (OSError, UnicodeDecodeError):
        return None
    return first.lstrip("#").split(":", 1)[-1].strip() if first.startswith("#") else None


def _check_one_gene_model(paths: Sequence[str | os.PathLike[str]]) -> None:
    """Every file names the gene model most files have; the odd files are named (not the first file's peers)."""
    models = {str(p): _gene_model_line(Path(p)) for p in paths}
    counts = pd.Series([m for m in models.values() if m is not None], dtype=object).value_counts()
    if len(counts) <= 1:
        return
    majority = str(counts.index[0])
    odd = [f"{path} ({model!r})" for path, model in models.items() if model is not None and model != majority]
    raise InputFormatError(
        f"{len(odd)} of {len(paths)} STAR files name another gene model than the {majority!r} of "
        f"{int(counts.iloc[0])} files: {'; '.join(odd[:5])}"
        + (" ..." if len(odd) > 5 else "")
        + "; all files of a cohort must come from the same gene model"
    )


def _row_differences(ids: np.ndarray, reference: np.ndarray) -> str:
    """Which gene ids a file lacks, adds or repeats compared with the reference file."""
    have, want = pd.Index(ids), pd.Index(reference)
    parts = []
    for label, found in (
        ("missing", want.difference(have)),
        ("not in the first file", have.difference(want)),
        ("listed twice", have[have.duplicated()].unique()),
    ):
        if len(found):
            parts.append(
                f"{label} {list(map(str, found[:5]))}" + (f" and {len(found) - 5} more" if len(found) > 5 else "")
            )
    return "; ".join(parts) or "same genes in another order"


def merge_star_files(
    paths: Sequence[str | os.PathLike[str]], sample_ids: Sequence[str], workers: int = 1
) -> StarMatrix:
    """Merge per-sample STAR files into genes x samples matrices; every file must list the same genes.

    `workers` threads read the files (polars releases the GIL; 424 TCGA-size files take ~5 s of CPU to parse);
    the matrices are filled in file order either way, so the result does not depend on it."""
    if len(paths) != len(sample_ids):
        raise CohortError(f"{len(paths)} STAR files but {len(sample_ids)} sample ids")
    duplicated = pd.Index(sample_ids)[pd.Index(sample_ids).duplicated()].unique().tolist()
    if duplicated:
        raise CohortError(f"duplicate sample ids among STAR files: {duplicated}")
    if not paths:
        raise CohortError("no STAR files to merge")
    _check_one_gene_model(paths)
    first = read_star_counts(paths[0])
    reference_ids = first.genes["gene_id"].to_numpy()
    repeated = pd.Index(reference_ids)[pd.Index(reference_ids).duplicated()].unique().tolist()
    if repeated:
        raise InputFormatError(f"{paths[0]}: gene rows listed more than once: {repeated[:5]}")
    # filled one sample (a contiguous row) at a time and handed out transposed: genes x samples views of
    # samples x genes arrays, the orientation the cohort's layers have (no strided writes, no copy to transpose)
    counts = np.empty((len(paths), len(reference_ids)), dtype=np.int64)
    tpm = np.empty((len(paths), len(reference_ids)), dtype=np.float64)
    reference = pl.Series(np.concatenate([np.asarray(STAR_SUMMARY_ROWS, dtype=object), reference_ids]), dtype=pl.String)
    summaries = [first.summary.to_numpy()]
    counts[0] = first.genes["unstranded"].to_numpy().astype(np.int64)
    tpm[0] = first.genes["tpm_unstranded"].to_numpy()
    progress = ProgressReport("STAR merge", len(paths), unit="files", always=False, logger=log)
    progress.add()
    fast_reads = ordered_map(lambda path: _read_star_fast(Path(path), first.gene_model, reference), paths[1:], workers)
    for column, (path, fast) in enumerate(zip(paths[1:], fast_reads), start=1):
        if fast is None:  # anything unusual: the full reader names the problem
            star = read_star_counts(path)
            ids = star.genes["gene_id"].to_numpy()
            if len(ids) != len(reference_ids) or not np.array_equal(ids, reference_ids):
                raise InputFormatError(
                    f"{path}: gene rows differ from {paths[0]} ({len(ids)} vs {len(reference_ids)} genes: "
                    f"{_row_differences(ids, reference_ids)}); all files of a cohort must list the same genes"
                )
            if star.gene_model != first.gene_model:
                raise InputFormatError(f"{path}: gene model {star.gene_model!r} differs from {first.gene_model!r}")
            fast = (
                star.genes["unstranded"].to_numpy(),
                star.genes["tpm_unstranded"].to_numpy(),
                star.summary.to_numpy(),
            )
        counts[column], tpm[column] = fast[0], fast[1]
        summaries.append(fast[2])
        progress.add()
    progress.close()
    unassigned = pd.DataFrame(np.vstack(summaries), index=list(sample_ids), columns=STAR_SUMMARY_ROWS)
    return StarMatrix(
        gene_model=first.gene_model,
        genes=first.genes[["gene_id", "gene_name", "gene_type"]].copy(),
        counts=counts.T,
        tpm=tpm.T,
        samples=list(sample_ids),
        unassigned=unassigned,
    )


def _first_sample(hit: dict[str, Any]) -> dict[str, Any]:
    cases = hit.get("cases") or []
    if len(cases) != 1 or len(cases[0].get("samples") or []) != 1:
        raise InputFormatError(
            f"GDC file {hit.get('file_id')}: expected exactly one case with one sample, found {len(cases)} cases"
        )
    return cases[0]["samples"][0] | {"case_submitter_id": cases[0].get("submitter_id")}


def file_sheet(hits: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per GDC file hit: ids, checksum, and the sample it belongs to (barcode-derived fields).

    `sample_type` is the barcode's (TCGA's code table defines the sample type by the two digits); the API's
    label is kept as `gdc_sample_type` so that `sample_type_conflicts` can name the samples where they differ.
    """
    rows = []
    for hit in hits:
        sample = _first_sample(hit)
        barcode = parse_barcode(sample["submitter_id"])
        rows.append(
            {
                "file_id": hit["file_id"],
                "file_name": hit["file_name"],
                "md5sum": hit.get("md5sum"),
                "file_size": hit.get("file_size"),
                "sample_id": barcode.sample_id,
                "patient_id": barcode.patient_id,
                "sample_type_code": barcode.code,
                "sample_type": barcode.sample_type,
                "gdc_sample_type": sample.get("sample_type"),
                "tissue": barcode.tissue,
                "case_submitter_id": sample["case_submitter_id"],
            }
        )
    sheet = pd.DataFrame(rows)
    mismatched = sheet[sheet["patient_id"] != sheet["case_submitter_id"]]
    if len(mismatched):
        raise CohortError(
            f"GDC sample {mismatched['sample_id'].iloc[0]} belongs to case {mismatched['case_submitter_id'].iloc[0]}"
        )
    return sheet.drop(columns="case_submitter_id")


def sample_type_conflicts(sheet: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The `sample_type_conflict` rule record of a `file_sheet` (empty when every GDC label agrees)."""
    given = sheet["gdc_sample_type"]
    differs = given.notna() & (given.astype(str) != sheet["sample_type"].astype(str))
    ids = [
        f"{row.sample_id} (GDC: {row.gdc_sample_type}; barcode {row.sample_type_code}: {row.sample_type})"
        for row in sheet.loc[differs].drop_duplicates("sample_id").itertuples()
    ]
    return {"sample_type_conflict": _rule_record("sample_type_conflict", ids)} if ids else {}


def _number(value: Any, field: str = "value", patient: str = "?") -> float:
    if value is None or value == "" or value == "--":
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise InputFormatError(f"GDC case {patient}: {field} {value!r} is not a number") from error


# Every `ajcc_pathologic_stage` value of the GDC data dictionary (gdcdictionary
# src/gdcdictionary/schemas/diagnosis.yaml, release 3.0.3, plus the values of earlier releases) and the
# stage group ferrostem records. Sub-stages fold into their group (IIIA -> Stage III). Stage 0 (0, 0a, 0is,
# Tis: carcinoma in situ) is its own group, never Stage I; survival.parse_stage gives it no number, so these
# patients leave a multivariable Cox with a stage covariate (complete cases; its mv_n counts them out)
# instead of being counted as stage I. "Stage IS" (AJCC testis: any T, N0 M0 with raised serum markers) is kept as it is
# for the same reason: AJCC groups it under stage I but its prognosis and treatment differ. X, Unknown,
# Not Reported and Not Allowed To Collect are missing, and so is "I/II NOS" (a 2016 value spanning two groups);
# TCGA's bracketed legacy labels ("[Not Available]", "[Discrepancy]", ...) are missing too. Matching ignores case
# (the legacy `tumor_stage` field wrote "stage iiia").
STAGE_GROUPS: dict[str, str | None] = {
    "Stage 0": "Stage 0",
    "Stage 0a": "Stage 0",
    "Stage 0is": "Stage 0",
    "Stage Tis": "Stage 0",
    "Stage IS": "Stage IS",
    "Stage I": "Stage I",
    "Stage IA": "Stage I",
    "Stage IA1": "Stage I",
    "Stage IA2": "Stage I",
    "Stage IA3": "Stage I",
    "Stage IB": "Stage I",
    "Stage IB1": "Stage I",
    "Stage IB2": "Stage I",
    "Stage IB Cervix": "Stage I",
    "Stage IC": "Stage I",
    "Stage II": "Stage II",
    "Stage II Cervix": "Stage II",
    "Stage IIA": "Stage II",
    "Stage IIA Cervix": "Stage II",
    "Stage IIA1": "Stage II",
    "Stage IIA2": "Stage II",
    "Stage IIB": "Stage II",
    "Stage IIC": "Stage II",
    "Stage IIC1": "Stage II",
    "Stage III": "Stage III",
    "Stage IIIA": "Stage III",
    "Stage IIIA1": "Stage III",
    "Stage IIIA2": "Stage III",
    "Stage IIIB": "Stage III",
    "Stage IIIC": "Stage III",
    "Stage IIIC1": "Stage III",
    "Stage IIIC2": "Stage III",
    "Stage IIID": "Stage III",
    "Stage IV": "Stage IV",
    "Stage IVA": "Stage IV",
    "Stage IVB": "Stage IV",
    "Stage IVC": "Stage IV",
    "Stage X": None,
    "Unknown": None,
    "Not Reported": None,
    "Not Allowed To Collect": None,
    "IS": "Stage IS",
    "I/II NOS": None,
}
_STAGE_KEYS = {key.casefold(): group for key, group in STAGE_GROUPS.items()}


class UnknownStageError(InputFormatError):
    """A stage value that is not in the GDC data dictionary: never guessed."""

    def __init__(self, value: Any) -> None:
        self.value = value
        super().__init__(
            f"ajcc_pathologic_stage {value!r} is not a GDC data-dictionary value; known values: "
            f"{', '.join(STAGE_GROUPS)}"
        )


def stage_group(value: Any) -> str | None:
    """The stage group of one GDC stage value (see STAGE_GROUPS); UnknownStageError for anything else."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() in {"", "--"}:
        return None
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):  # TCGA legacy "[Not Available]", "[Unknown]", "[Discrepancy]"
        return None
    if text.casefold() not in _STAGE_KEYS:
        raise UnknownStageError(value)
    return _STAGE_KEYS[text.casefold()]


def _missing_label(value: Any) -> bool:
    """None, "--", Unknown, Not Reported and the older dictionaries' lower-case and other no-answer labels."""
    return value is None or str(value).strip().casefold() in {
        "",
        "--",
        "not reported",
        "unknown",
        "not allowed to collect",
        "lost to follow-up",
        "pending",
    }


# How the primary diagnosis of a case is chosen among its `diagnoses` records (since Data Release 42 a TCGA
# case can hold several, the primary not necessarily first). Each rule narrows the candidates; the first rule
# that leaves exactly one names the choice. Ties that survive every rule take the first remaining record.
DIAGNOSIS_RULES: list[tuple[str, str]] = [
    ("diagnosis_is_primary_disease", "the record with diagnosis_is_primary_disease == true"),
    ("classification_of_tumor", 'the record with classification_of_tumor == "primary"'),
    ("submitter_id_suffix", "the record whose submitter_id ends in _diagnosis"),
]


def _diagnosis_rule_matches(rule: str, record: Mapping[str, Any]) -> bool:
    if rule == "diagnosis_is_primary_disease":
        return record.get("diagnosis_is_primary_disease") in (True, "true", "True")
    if rule == "classification_of_tumor":
        return str(record.get("classification_of_tumor") or "").strip().lower() == "primary"
    return str(record.get("submitter_id") or "").endswith("_diagnosis")


def primary_diagnosis(diagnoses: Sequence[Mapping[str, Any]]) -> tuple[Mapping[str, Any], str]:
    """The primary diagnosis record of a case and the rule that chose it (see DIAGNOSIS_RULES).

    Rules: `single_record` (only one record), one of DIAGNOSIS_RULES, `first_record` (no rule singled one out:
    the first of the remaining candidates), `no_diagnosis` (an empty list gives an empty record).
    """
    if not diagnoses:
        return {}, "no_diagnosis"
    if len(diagnoses) == 1:
        return diagnoses[0], "single_record"
    candidates = list(diagnoses)
    for rule, _ in DIAGNOSIS_RULES:
        matches = [d for d in candidates if _diagnosis_rule_matches(rule, d)]
        if len(matches) == 1:
            return matches[0], rule
        if matches:
            candidates = matches
    return candidates[0], "first_record"


CLINICAL_RULES: dict[str, str] = {
    "sample_type_conflict": "GDC sample_type differs from the barcode's sample-type code: the barcode's type "
    "(TCGA code table) is used for sample_type and tissue",
    "single_record": "primary diagnosis: the case has one diagnosis record",
    **{rule: f"primary diagnosis: {text}" for rule, text in DIAGNOSIS_RULES},
    "first_record": "primary diagnosis: several records and no rule singled one out; the first was used",
    "no_diagnosis": "no diagnosis record: age, stage, grade and primary diagnosis are missing",
    "unknown_stage": "stage value not in the GDC data dictionary: stage set missing",
    "death_before_follow_up": "days_to_death earlier than the last follow-up: OS.time = days_to_death "
    "(the recorded death is the event; a later follow-up date cannot be right)",
    "death_time_on_alive": "days_to_death given for a patient whose vital_status is Alive: status uncertain, "
    "OS and OS.time set missing (left out of survival)",
    "dead_without_death_time": "vital_status Dead without days_to_death: OS.time missing (left out of survival)",
    "alive_without_follow_up": "vital_status Alive without any follow-up time: OS.time missing (left out of survival)",
    "vital_status_missing": "vital_status missing, Unknown or Not Reported: OS missing (left out of survival)",
}


SURVIVAL_RULES = frozenset(
    {
        "death_before_follow_up",
        "death_time_on_alive",
        "dead_without_death_time",
        "alive_without_follow_up",
        "vital_status_missing",
    }
)
INFORMATIONAL_RULES = frozenset({"single_record", *(rule for rule, _ in DIAGNOSIS_RULES)})


def _rule_record(rule: str, ids: list[str]) -> dict[str, Any]:
    return {"rule": CLINICAL_RULES[rule], "count": len(ids), "ids": sorted(ids)}


def _overall_survival(
    patient: str, demographic: Mapping[str, Any], last_follow_up: float, applied: dict[str, list[str]]
) -> tuple[float, float]:
    """(OS, OS.time) under TCGAbiolinks' convention, resolving contradictions by the CLINICAL_RULES."""
    raw = demographic.get("vital_status")
    death = _number(demographic.get("days_to_death"), "demographic.days_to_death", patient)
    vital = None if _missing_label(raw) else str(raw).strip().capitalize()
    if vital not in (None, "Alive", "Dead"):
        raise InputFormatError(
            f"GDC case {patient}: vital_status {raw!r} is none of Alive, Dead, Unknown, Not Reported"
        )
    if vital is None:
        applied["vital_status_missing"].append(patient)
        return math.nan, math.nan
    if vital == "Dead":
        if math.isnan(death):
            applied["dead_without_death_time"].append(patient)
        elif not math.isnan(last_follow_up) and death < last_follow_up:
            applied["death_before_follow_up"].append(patient)
        return 1.0, death
    if not math.isnan(death):
        applied["death_time_on_alive"].append(patient)
        return math.nan, math.nan
    if math.isnan(last_follow_up):
        applied["alive_without_follow_up"].append(patient)
    return 0.0, last_follow_up


def clinical_table(cases: list[dict[str, Any]]) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Patient-level clinical columns and OS from GDC /cases records (TCGAbiolinks' OS convention), and the
    rules applied (CLINICAL_RULES name -> {rule, count, ids}; only rules that applied are listed).

    Age, stage, grade and primary diagnosis come from the primary diagnosis record (`primary_diagnosis`).
    OS.time is days_to_death for the dead and the longest days_to_last_follow_up (diagnoses) or
    days_to_follow_up (follow_ups) for the living; OS is 1 when vital_status is Dead.
    """
    rows = []
    applied: dict[str, list[str]] = {rule: [] for rule in CLINICAL_RULES}
    for case in cases:
        patient = case.get("submitter_id")
        if not patient:
            raise InputFormatError(f"GDC case record without submitter_id: {json.dumps(case)[:200]}")
        demographic = case.get("demographic") or {}
        diagnoses = case.get("diagnoses") or []
        follow_ups = case.get("follow_ups") or []
        last_follow_up = max(
            [_number(d.get("days_to_last_follow_up"), "diagnoses.days_to_last_follow_up", patient) for d in diagnoses]
            + [_number(f.get("days_to_follow_up"), "follow_ups.days_to_follow_up", patient) for f in follow_ups]
            + [math.nan],
            key=lambda v: -math.inf if math.isnan(v) else v,
        )
        primary, rule = primary_diagnosis(diagnoses)
        applied[rule].append(patient)
        try:
            stage = stage_group(primary.get("ajcc_pathologic_stage"))
        except UnknownStageError as error:
            applied["unknown_stage"].append(f"{patient} ({error.value!r})")
            stage = None
        os_event, os_time = _overall_survival(patient, demographic, last_follow_up, applied)
        age_days = _number(primary.get("age_at_diagnosis"), "diagnoses.age_at_diagnosis", patient)
        grade = primary.get("tumor_grade")
        rows.append(
            {
                "patient_id": patient,
                "vital_status": demographic.get("vital_status"),
                "age": age_days / 365.25 if not math.isnan(age_days) else math.nan,
                "sex": (demographic.get("sex_at_birth") or demographic.get("gender") or None),
                "stage": stage,
                "grade": None if _missing_label(grade) else grade,
                "primary_diagnosis": primary.get("primary_diagnosis"),
                "OS": os_event,
                "OS.time": os_time,
            }
        )
    table = pd.DataFrame(rows)
    duplicated = table["patient_id"][table["patient_id"].duplicated()].unique().tolist()
    if duplicated:
        raise CohortError(f"GDC clinical records list these patients more than once: {duplicated[:5]}")
    if table["sex"].notna().any():
        table["sex"] = table["sex"].str.lower()
    rules = {rule: _rule_record(rule, ids) for rule, ids in applied.items() if ids}
    return table.set_index("patient_id"), rules


_RELEASE = re.compile(r"^Data Release (?P<number>\S+)(?:\s*-\s*(?P<date>.+))?$")


def parse_status(status: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The provenance fields of a GDC `/status` answer: `data_release` ("Data Release 8.0 - August 22, 2017"),
    its number and date, and the API's `status`, `tag`, `version` and `commit`.

    A missing `data_release` (older API versions) or one in another format is recorded as such, with a
    warning: it only labels the provenance, the data are unaffected.
    """
    release = status.get("data_release")
    match = _RELEASE.match(str(release).strip()) if isinstance(release, str) else None
    if release is None:
        log.warning("%s: /status has no data_release; the release is recorded as unknown", where)
    elif match is None:
        log.warning("%s: /status data_release %r is not 'Data Release N - date'; recorded as given", where, release)
    if status.get("status") not in (None, "OK"):
        log.warning("%s: /status says status %r", where, status.get("status"))
    return {
        "data_release": str(release) if release is not None else "unknown (no data_release in /status)",
        "release_number": match.group("number") if match else None,
        "release_date": match.group("date") if match and match.group("date") else None,
        **{key: status.get(key) for key in ("status", "tag", "version", "commit")},
    }


def load_json_hits(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a saved GDC API response (or a bare list of hits)."""
    with open(path, encoding="utf-8") as handle:
        try:
            payload = json.load(handle)
        except json.JSONDecodeError as error:
            raise InputFormatError(f"{path}: not valid JSON ({error})") from error
    if isinstance(payload, dict) and "data" in payload:
        payload = payload["data"].get("hits", payload["data"])
    if not isinstance(payload, list):
        raise InputFormatError(f"{path}: expected a list of GDC hits or a response with data.hits")
    return payload


# ------------------------------------------------------------------------------------------------
# GDC API client: /files, /cases, /status and /data (GDC API Users Guide, Search_and_Retrieval.md and
# Downloading_Files.md; filters as in ../shared/docs/data-sources.md A1).
# ------------------------------------------------------------------------------------------------

FILE_FIELDS = [
    "file_id",
    "file_name",
    "md5sum",
    "file_size",
    "data_format",
    "access",
    "cases.case_id",
    "cases.submitter_id",
    "cases.project.project_id",
    "cases.samples.sample_id",
    "cases.samples.submitter_id",
    "cases.samples.sample_type",
    "cases.samples.tissue_type",
    "cases.samples.tumor_descriptor",
    "cases.samples.portions.analytes.aliquots.aliquot_id",
    "cases.samples.portions.analytes.aliquots.submitter_id",
    "analysis.workflow_type",
]
CASE_EXPAND = "demographic,diagnoses,follow_ups"


def star_counts_filters(project: str) -> dict[str, Any]:
    """Open-access STAR - Counts gene expression files of one project."""
    conditions = {
        "cases.project.project_id": [project],
        "files.data_category": ["Transcriptome Profiling"],
        "files.data_type": ["Gene Expression Quantification"],
        "files.experimental_strategy": ["RNA-Seq"],
        "files.analysis.workflow_type": ["STAR - Counts"],
        "files.access": ["open"],
    }
    return {"op": "and", "content": [{"op": "in", "content": {"field": f, "value": v}} for f, v in conditions.items()]}


def project_filter(project: str) -> dict[str, Any]:
    return {"op": "in", "content": {"field": "cases.project.project_id", "value": [project]}}


def _page_through(
    client: Client, url: str, body: dict[str, Any], page_size: int, id_field: str
) -> list[dict[str, Any]]:
    """POST one query page by page (`from`, `size`, `sort` on `id_field` ascending) until
    `data.pagination.total` hits are in, and check that the pages hold exactly `total` distinct ids.

    GDC does not promise a stable order without `sort` (real-services.md G10), so pages could overlap or
    leave gaps; with a sort on a unique id they cannot, and if the answers still disagree (the project
    changed between pages, a short or repeated page) the download stops, naming what was seen.
    """
    hits: list[dict[str, Any]] = []
    total: int | None = None
    while total is None or len(hits) < total:
        query = {**body, "format": "JSON", "size": page_size, "from": len(hits), "sort": f"{id_field}:asc"}
        payload = client.request_json(url, body=query)
        try:
            data = payload["data"]
            page, page_total = data["hits"], int(data["pagination"]["total"])
        except (KeyError, TypeError, ValueError) as error:
            raise InputFormatError(
                f"{url}: answer has no data.hits / data.pagination.total ({str(payload)[:200]})"
            ) from error
        if total is not None and page_total != total:
            raise InputFormatError(
                f"{url}: data.pagination.total changed from {total} to {page_total} while paging "
                f"(at from={len(hits)}); the project changed during the download, run it again"
            )
        total = page_total
        if not page:
            break
        hits.extend(page)
    missing_ids = [i for i, hit in enumerate(hits) if not hit.get(id_field)]
    if missing_ids:
        raise InputFormatError(f"{url}: hit {missing_ids[0]} has no {id_field!r} ({str(hits[missing_ids[0]])[:200]})")
    ids = pd.Index([hit[id_field] for hit in hits])
    if total is not None and (len(hits) != total or ids.nunique() != total):
        repeated = ids[ids.duplicated()].unique().tolist()
        raise InputFormatError(
            f"{url}: pagination.total is {total} but the pages (sorted by {id_field}, {page_size} per page) held "
            f"{len(hits)} hits with {ids.nunique()} distinct {id_field}s"
            + (f"; repeated: {repeated[:5]}" if repeated else "")
            + "; nothing was saved, run the download again"
        )
    return hits


def _hits_document(hits: list[dict[str, Any]]) -> dict[str, Any]:
    """All pages' hits as one answer, with the real API's pagination object (one page holding everything)."""
    pagination = {
        "count": len(hits),
        "total": len(hits),
        "size": len(hits),
        "from": 0,
        "sort": "",
        "page": 1,
        "pages": 1,
    }
    return {"data": {"hits": hits, "pagination": pagination}, "warnings": {}}


def query_project(client: Client, project: str, api: str = GDC_API, page_size: int = 500) -> dict[str, Any]:
    """/files hits, /cases hits and /status of a project; from the API, or static copies in a mirror.

    A mirror (and the store) keeps the answers as `{api host}/files/{project}.json`,
    `{api host}/cases/{project}.json` and `{api host}/status`.
    """
    api = api.rstrip("/")
    files_doc, cases_doc, status_url = f"{api}/files/{project}.json", f"{api}/cases/{project}.json", f"{api}/status"
    if client.mirror:
        files = load_hits_document(client.read_json(files_doc), client.source_of(files_doc))
        cases = load_hits_document(client.read_json(cases_doc), client.source_of(cases_doc))
        status = client.read_json(status_url)
    else:
        files = _page_through(
            client,
            f"{api}/files",
            {"filters": star_counts_filters(project), "fields": ",".join(FILE_FIELDS)},
            page_size,
            "file_id",
        )
        cases = _page_through(
            client, f"{api}/cases", {"filters": project_filter(project), "expand": CASE_EXPAND}, page_size, "case_id"
        )
        status = client.request_json(status_url)
        client.save_json(_hits_document(files), files_doc)
        client.save_json(_hits_document(cases), cases_doc)
        client.save_json(status, status_url)
    if not files:
        raise CohortError(f"GDC project {project}: no open STAR - Counts files (is the project id right?)")
    return {"files": files, "cases": cases, "status": status}


def load_hits_document(payload: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(payload, dict) and "data" in payload:
        payload = payload["data"].get("hits")
    if not isinstance(payload, list):
        raise InputFormatError(f"{where}: expected a GDC answer with data.hits")
    return payload


def _safe_members(tar: Any, url: str) -> list[Any]:
    """Regular files only, relative paths without `..`; anything else is refused, naming the member."""
    members = []
    for member in tar.getmembers():
        name = member.name
        parts = Path(name).parts
        if name.startswith(("/", "\\")) or Path(name).is_absolute() or ".." in parts or (parts and ":" in parts[0]):
            raise InputFormatError(
                f"{url}: unsafe path {name!r} in the tar archive (absolute or with '..'); nothing was extracted from it"
            )
        if member.issym() or member.islnk() or member.isdev() or member.isfifo():
            raise InputFormatError(f"{url}: tar member {name!r} is a link or device; refused")
        if member.isfile():
            members.append(member)
    return members


def extract_batch(client: Client, archive: Path, url: str, wanted: Mapping[str, Any], api: str) -> set[str]:
    """Move verified members of a /data tar(.gz) (`<file_id>/<file_name>`) into the store; return their ids."""
    done: set[str] = set()
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise InputFormatError(f"{url}: the batch answer is not a readable tar archive ({error})") from error
    with tar:
        members = _safe_members(tar, url)
        for member in members:
            file_id = Path(member.name).parts[0]
            if file_id not in wanted or Path(member.name).name != wanted[file_id].file_name:
                continue
            final = client.store_path(f"{api}/data/{file_id}")
            part = final.with_name(final.name + ".part")
            final.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is None:
                continue
            try:
                with source, open(part, "wb") as handle:
                    while chunk := source.read(1 << 20):
                        handle.write(chunk)
                verify_file(part, wanted[file_id].expected, check_gzip=False)
            except (ChecksumError, tarfile.TarError, OSError, EOFError) as error:
                part.unlink(missing_ok=True)
                log.warning("%s: member %s rejected (%s); it will be fetched on its own", url, member.name, error)
                continue
            os.replace(part, final)
            done.add(file_id)
    return done


@dataclass
class _Wanted:
    file_name: str
    expected: Expected


def download_data(
    client: Client, hits: list[dict[str, Any]], api: str = GDC_API, batch_files: int = 50
) -> dict[str, Path]:
    """Every hit's file in the store (verified against md5sum and file_size); batches of missing files are
    fetched as one tar.gz by POST /data, the rest (and anything a batch lacked) one by one with resume."""
    api = api.rstrip("/")
    wanted = {
        h["file_id"]: _Wanted(h["file_name"], Expected(size=h.get("file_size"), md5=h.get("md5sum"))) for h in hits
    }
    paths = {file_id: client.store_path(f"{api}/data/{file_id}") for file_id in wanted}

    def stored(file_id: str) -> bool:
        """The store's copy is there and verified (a wrong one is removed)."""
        path = paths[file_id]
        try:
            if path.is_file():
                verify_file(path, wanted[file_id].expected, check_gzip=False)
                return True
        except ChecksumError:
            path.unlink()
        return False

    # checksums of the store's copies (a rerun) and copies from a local mirror on client.workers threads
    workers = client.workers if client.mirror_is_local else 1
    missing = [file_id for file_id, ok in zip(paths, ordered_map(stored, paths, workers)) if not ok]
    total = sum(int(wanted[i].expected.size or 0) for i in missing)
    log.info("GDC: %d of %d files to download (%.1f MB)", len(missing), len(wanted), total / 1e6)
    with client.progress_bars(len(missing), total or None, "GDC") as (file_bar, byte_bar):
        if not client.mirror and batch_files > 1:
            for start in range(0, len(missing), batch_files):
                batch = missing[start : start + batch_files]
                if len(batch) < 2:
                    continue
                url = f"{api}/data"
                archive = client.store / ".batches" / f"batch-{batch[0]}.tar.gz.part"
                archive.parent.mkdir(parents=True, exist_ok=True)
                client.post_to_file(url, {"ids": batch}, archive)
                try:
                    done = extract_batch(client, archive, url, {i: wanted[i] for i in batch}, api)
                finally:
                    archive.unlink(missing_ok=True)
                file_bar.update(len(done))
                byte_bar.update(sum(int(wanted[i].expected.size or 0) for i in done))
        remaining = [file_id for file_id in missing if not paths[file_id].is_file()]
        if workers > 1:  # a local mirror: the bars are updated here, in one thread, as each copy is verified
            copies = ordered_map(
                lambda file_id: client.fetch(f"{api}/data/{file_id}", wanted[file_id].expected, check_gzip=False),
                remaining,
                workers,
            )
            for path in copies:
                byte_bar.update(path.stat().st_size)
                file_bar.update(1)
        else:
            for file_id in remaining:
                client.fetch(f"{api}/data/{file_id}", wanted[file_id].expected, check_gzip=False, bar=byte_bar)
                file_bar.update(1)
    return paths


def download_project(
    client: Client,
    project: str,
    raw_dir: str | os.PathLike[str],
    api: str = GDC_API,
    page_size: int = 500,
    batch_files: int = 50,
) -> Path:
    """Query, download and verify a project's STAR counts and clinical records, then write the raw layout
    (files.json, cases.json, status.json, data/<file_id>/<file_name>, download.json) into `raw_dir`."""
    answers = query_project(client, project, api, page_size)
    paths = download_data(client, answers["files"], api, batch_files)
    raw = Path(raw_dir)
    for hit in answers["files"]:
        link_or_copy(paths[hit["file_id"]], raw / "data" / hit["file_id"] / hit["file_name"])
    write_json(_hits_document(answers["files"]), raw / "files.json")
    write_json(_hits_document(answers["cases"]), raw / "cases.json")
    write_json(answers["status"], raw / "status.json")
    write_json(
        {
            "source": "gdc",
            "project": project,
            "api": api,
            "mirror": client.mirror,
            "data_release": parse_status(answers["status"], f"{api}/status")["data_release"],
            "files": len(answers["files"]),
            "cases": len(answers["cases"]),
            "urls": sorted(set(client.fetched))[:20] + (["..."] if len(set(client.fetched)) > 20 else []),
        },
        raw / "download.json",
    )
    return raw


def download(
    client: Client, cohort: Mapping[str, Any], settings: Mapping[str, Any], raw_dir: str | os.PathLike[str]
) -> Path:
    """The source adapter's download (harmonise.SOURCES): a config `cohorts` entry and the `download:` settings."""
    return download_project(
        client,
        cohort["project"],
        raw_dir,
        settings["gdc_api"],
        int(settings["gdc_page_size"]),
        int(settings["gdc_batch_files"]),
    )
