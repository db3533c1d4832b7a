"""UCSC Xena: the GDC hub's STAR matrices and phenotypes, and the TCGA-CDR survival table (PanCanAtlas hub).

Formats (../shared/docs/data-sources.md A2; UCSCXenaTools `XenaData`): `TCGA-<X>.star_counts.tsv.gz` is
genes x samples with first column `Ensembl_ID` (GENCODE v36, versioned) in **log2(count+1)**;
`star_tpm` is log2(TPM+1); `survival.tsv` has `sample, OS, _PATIENT, OS.time`; the probe map
`gencode.v36.annotation.gtf.gene.probemap` has `id, gene, chrom, chromStart, chromEnd, strand`.
The TCGA-CDR (Liu et al., Cell 2018, doi:10.1016/j.cell.2018.02.052) is
`Survival_SupplementalTable_S1_20171025_xena_sp`, one row per sample with `sample, _PATIENT,
cancer type abbreviation` and the CDR fields, among them OS, DSS, DFI, PFI and their `.time` in days.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from ..cohort import ENDPOINTS
from ..errors import CohortError, InputFormatError
from ..files import atomic_write
from .gdc import _stage
from .http import Client, link_or_copy

log = logging.getLogger(__name__)

GDC_HUB = "https://gdc-hub.s3.us-east-1.amazonaws.com"
PANCAN_HUB = "https://tcga-pancan-atlas-hub.s3.us-east-1.amazonaws.com"
CDR_DATASET = "Survival_SupplementalTable_S1_20171025_xena_sp"
PROBEMAP = "gencode.v36.annotation.gtf.gene.probemap"
COHORT_DATASETS = ("star_counts", "star_tpm", "survival", "clinical")
# a back-transformed count may sit this far from an integer: Xena stores log2(count+1) with limited precision
ROUNDING_TOLERANCE = 0.05


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
    with atomic_write(raw / "download.json") as handle:
        json.dump({"source": "xena", "project": project, "hub": hub, "mirror": client.mirror,
                   "files": names, "urls": [dataset_url(hub, n) for n in names]}, handle, indent=1)
    return raw


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
        raise InputFormatError(f"{path}: {len(duplicated)} duplicate {id_column} rows, e.g. {duplicated[:5]}; "
                               "a Xena matrix must list each feature once")
    samples = frame.columns[1:]
    dup_samples = pd.Index(samples)[pd.Index(samples).duplicated()].tolist()
    if dup_samples:
        raise InputFormatError(f"{path}: duplicate sample columns {dup_samples[:5]}")
    numbers = frame.select(pl.col(samples).replace({"NA": None, "": None}).cast(pl.Float64, strict=False))
    raw_missing = frame.select(pl.col(samples).is_in(["NA", ""]) | pl.col(samples).is_null())
    bad = numbers.select(pl.all().is_null()).to_numpy() & ~raw_missing.to_numpy()
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise InputFormatError(f"{path}: non-numeric value {frame[samples[column]][int(row)]!r} for "
                               f"{ids[int(row)]!r} in sample {samples[column]}")
    return XenaMatrix(ids=ids.to_list(), samples=list(samples), values=numbers.to_numpy().astype(np.float64))


def counts_from_log2(matrix: XenaMatrix, path: str | os.PathLike[str]) -> tuple[np.ndarray, float]:
    """log2(count+1) -> integer counts (2**x - 1, rounded); returns the counts and the largest rounding step."""
    if np.isnan(matrix.values).any():
        row, column = np.argwhere(np.isnan(matrix.values))[0]
        raise InputFormatError(f"{path}: missing count for {matrix.ids[row]} in sample {matrix.samples[column]}")
    linear = np.exp2(matrix.values) - 1.0
    rounded = np.rint(linear)
    deviation = float(np.max(np.abs(linear - rounded))) if linear.size else 0.0
    if (rounded < 0).any():
        row, column = np.argwhere(rounded < 0)[0]
        raise InputFormatError(f"{path}: {matrix.ids[row]} in {matrix.samples[column]} is {matrix.values[row, column]}, "
                               "below log2(0+1); is this really a log2(count+1) matrix?")
    if deviation > ROUNDING_TOLERANCE:
        log.warning("%s: back-transformed counts are up to %.3f away from integers", path, deviation)
    return rounded.astype(np.int64), deviation


def read_probemap(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Xena probe map: `id` (versioned Ensembl) -> `gene` symbol."""
    path = Path(path)
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if not {"id", "gene"} <= set(table.columns):
        raise InputFormatError(f"{path}: a Xena probe map needs columns id and gene, found {list(table.columns)[:6]}")
    if table["id"].duplicated().any():
        raise InputFormatError(f"{path}: duplicate ids {table.loc[table['id'].duplicated(), 'id'].head(5).tolist()}")
    return table.set_index("id")


def read_survival(path: str | os.PathLike[str]) -> pd.DataFrame:
    """GDC-hub `survival.tsv`: patient-level OS and OS.time (days)."""
    path = Path(path)
    table = pd.read_csv(path, sep="\t", dtype={"sample": str, "_PATIENT": str})
    missing = [c for c in ("sample", "OS", "_PATIENT", "OS.time") if c not in table.columns]
    if missing:
        raise InputFormatError(f"{path}: Xena survival table lacks columns {missing}; found {list(table.columns)}")
    return (table.drop_duplicates("_PATIENT").set_index("_PATIENT")[["OS", "OS.time"]]
            .rename_axis("patient_id").astype(float))


# GDC-hub phenotype columns are `<field>.<node>` (e.g. `age_at_index.demographic`); the exact set of the
# 2024 hub files could not be checked offline, so several spellings are tried and none is required.
_CLINICAL_FIELDS = {
    "age": ["age_at_index.demographic", "age_at_initial_pathologic_diagnosis", "age_at_diagnosis.diagnoses"],
    "sex": ["gender.demographic", "sex_at_birth.demographic", "gender"],
    "stage": ["ajcc_pathologic_stage.diagnoses", "tumor_stage.diagnoses", "ajcc_pathologic_tumor_stage"],
    "grade": ["tumor_grade.diagnoses", "histological_grade"],
}


def read_clinical(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Patient-level age, sex, stage and grade from a GDC-hub `clinical.tsv` (columns found are used)."""
    path = Path(path)
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    sample_column = table.columns[0]
    patients = table[sample_column].str.slice(0, 12)
    out = pd.DataFrame(index=patients)
    for field_name, candidates in _CLINICAL_FIELDS.items():
        column = next((c for c in candidates if c in table.columns), None)
        values = table[column].replace({"": None, "--": None, "not reported": None, "Not Reported": None}) if column else None
        if values is None:
            out[field_name] = np.nan
        elif field_name == "age":
            age = pd.to_numeric(values, errors="coerce").to_numpy()
            out[field_name] = age / 365.25 if column == "age_at_diagnosis.diagnoses" else age
        elif field_name == "stage":
            out[field_name] = [_stage(v) for v in values]
        else:
            out[field_name] = values.str.lower().to_numpy() if field_name == "sex" else values.to_numpy()
    out.index.name = "patient_id"
    return out[~out.index.duplicated()]


def read_cdr(path: str | os.PathLike[str], project: str | None = None) -> pd.DataFrame:
    """TCGA-CDR endpoints per patient (OS, DSS, DFI, PFI and .time in days), optionally for one project.

    Patients marked `Redaction` (withdrawn from TCGA) get no endpoints.
    """
    path = Path(path)
    table = pd.read_csv(path, sep="\t", dtype={"sample": str, "_PATIENT": str}, low_memory=False)
    needed = ["_PATIENT", "cancer type abbreviation", *[c for e in ENDPOINTS for c in (e, f"{e}.time")]]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise InputFormatError(f"{path}: not the TCGA-CDR survival table; missing columns {missing}")
    if project:
        code = project.split("-", 1)[-1]
        table = table[table["cancer type abbreviation"] == code]
        if table.empty:
            raise CohortError(f"{path}: no TCGA-CDR rows for cancer type {code!r} (project {project})")
    patients = table.drop_duplicates("_PATIENT").set_index("_PATIENT")
    endpoints = patients[needed[2:]].apply(pd.to_numeric, errors="coerce")
    if "Redaction" in patients.columns:
        redacted = patients["Redaction"].fillna("").astype(str).str.strip().str.lower().eq("redacted")
        endpoints.loc[redacted] = np.nan
    endpoints.index.name = "patient_id"
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
