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
from ..files import atomic_write
from .http import ChecksumError, Client, Expected, link_or_copy, verify_file

log = logging.getLogger(__name__)

STAR_COLUMNS = [
    "gene_id", "gene_name", "gene_type", "unstranded", "stranded_first", "stranded_second",
    "tpm_unstranded", "fpkm_unstranded", "fpkm_uq_unstranded",
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
            path, separator="\t", skip_rows=1, has_header=True, infer_schema=False,
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
            f"{path}: unstranded count for gene {gene_ids[index]!r} is {counts[index]!r}, not a non-negative integer"
        )
    summary = pd.Series(
        _numeric(summary_frame, "unstranded", path, summary_frame["gene_id"]), index=found, name="unstranded"
    )
    return StarFile(gene_model=gene_model, genes=pd.DataFrame(data), summary=summary)


@dataclass
class StarMatrix:
    gene_model: str
    genes: pd.DataFrame  # gene_id, gene_name, gene_type
    counts: np.ndarray  # genes x samples, int64
    tpm: np.ndarray  # genes x samples
    samples: list[str]
    unassigned: pd.DataFrame  # samples x STAR summary rows


def _read_star_fast(path: Path, gene_model: str, reference: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Typed read of the two columns the merge needs; None when the file is not a clean twin of the first."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.readline().lstrip("#").split(":", 1)[-1].strip() != gene_model:
                return None
        frame = pl.read_csv(path, separator="\t", skip_rows=1, columns=["gene_id", "unstranded", "tpm_unstranded"],
                            schema_overrides={"gene_id": pl.String, "unstranded": pl.Int64, "tpm_unstranded": pl.Float64})
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
        f"{int(counts.iloc[0])} files: {'; '.join(odd[:5])}" + (" ..." if len(odd) > 5 else "")
        + "; all files of a cohort must come from the same gene model"
    )


def _row_differences(ids: np.ndarray, reference: np.ndarray) -> str:
    """Which gene ids a file lacks, adds or repeats compared with the reference file."""
    have, want = pd.Index(ids), pd.Index(reference)
    parts = []
    for label, found in (("missing", want.difference(have)), ("not in the first file", have.difference(want)),
                         ("listed twice", have[have.duplicated()].unique())):
        if len(found):
            parts.append(f"{label} {list(map(str, found[:5]))}" + (f" and {len(found) - 5} more" if len(found) > 5 else ""))
    return "; ".join(parts) or "same genes in another order"


def merge_star_files(paths: Sequence[str | os.PathLike[str]], sample_ids: Sequence[str]) -> StarMatrix:
    """Merge per-sample STAR files into genes x samples matrices; every file must list the same genes."""
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
    counts = np.empty((len(reference_ids), len(paths)), dtype=np.int64)
    tpm = np.empty((len(reference_ids), len(paths)), dtype=np.float64)
    reference = pl.Series(np.concatenate([np.asarray(STAR_SUMMARY_ROWS, dtype=object), reference_ids]), dtype=pl.String)
    summaries = [first.summary.to_numpy()]
    counts[:, 0] = first.genes["unstranded"].to_numpy().astype(np.int64)
    tpm[:, 0] = first.genes["tpm_unstranded"].to_numpy()
    for column, path in enumerate(paths[1:], start=1):
        fast = _read_star_fast(Path(path), first.gene_model, reference)
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
            fast = (star.genes["unstranded"].to_numpy(), star.genes["tpm_unstranded"].to_numpy(), star.summary.to_numpy())
        counts[:, column], tpm[:, column] = fast[0], fast[1]
        summaries.append(fast[2])
    unassigned = pd.DataFrame(np.vstack(summaries), index=list(sample_ids), columns=STAR_SUMMARY_ROWS)
    return StarMatrix(
        gene_model=first.gene_model,
        genes=first.genes[["gene_id", "gene_name", "gene_type"]].copy(),
        counts=counts,
        tpm=tpm,
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
    """One row per GDC file hit: ids, checksum, and the sample it belongs to (barcode-derived fields)."""
    rows = []
    for hit in hits:
        sample = _first_sample(hit)
        barcode = parse_barcode(sample["submitter_id"])
        rows.append({
            "file_id": hit["file_id"],
            "file_name": hit["file_name"],
            "md5sum": hit.get("md5sum"),
            "file_size": hit.get("file_size"),
            "sample_id": barcode.sample_id,
            "patient_id": barcode.patient_id,
            "sample_type_code": barcode.code,
            "sample_type": sample.get("sample_type") or barcode.sample_type,
            "tissue": barcode.tissue,
            "case_submitter_id": sample["case_submitter_id"],
        })
    sheet = pd.DataFrame(rows)
    mismatched = sheet[sheet["patient_id"] != sheet["case_submitter_id"]]
    if len(mismatched):
        raise CohortError(
            f"GDC sample {mismatched['sample_id'].iloc[0]} belongs to case {mismatched['case_submitter_id'].iloc[0]}"
        )
    return sheet.drop(columns="case_submitter_id")


def _number(value: Any) -> float:
    if value is None or value == "" or value == "--":
        return math.nan
    return float(value)


def _stage(value: Any) -> str | None:
    if not value or value in {"--", "Not Reported", "Unknown"}:
        return None
    text = str(value).replace("Stage ", "").strip().upper()
    roman = "".join(ch for ch in text if ch in "IV")
    return f"Stage {roman}" if roman else None


def clinical_table(cases: list[dict[str, Any]]) -> pd.DataFrame:
    """Patient-level clinical columns and OS from GDC /cases records (TCGAbiolinks' OS convention).

    OS.time is days_to_death for the dead and the longest days_to_last_follow_up (diagnoses and
    follow_ups) for the living; OS is 1 when vital_status is Dead.
    """
    rows = []
    for case in cases:
        patient = case.get("submitter_id")
        if not patient:
            raise InputFormatError(f"GDC case record without submitter_id: {json.dumps(case)[:200]}")
        demographic = case.get("demographic") or {}
        diagnoses = case.get("diagnoses") or []
        follow_ups = case.get("follow_ups") or []
        vital = demographic.get("vital_status")
        last_follow_up = max(
            [_number(d.get("days_to_last_follow_up")) for d in diagnoses]
            + [_number(f.get("days_to_follow_up")) for f in follow_ups]
            + [math.nan],
            key=lambda v: -math.inf if math.isnan(v) else v,
        )
        death = _number(demographic.get("days_to_death"))
        primary = diagnoses[0] if diagnoses else {}
        age_days = _number(primary.get("age_at_diagnosis"))
        if vital == "Dead":
            os_event, os_time = 1.0, death
        elif vital == "Alive":
            os_event, os_time = 0.0, last_follow_up
        else:
            os_event, os_time = math.nan, math.nan
        rows.append({
            "patient_id": patient,
            "vital_status": vital,
            "age": age_days / 365.25 if not math.isnan(age_days) else math.nan,
            "sex": (demographic.get("sex_at_birth") or demographic.get("gender") or None),
            "stage": _stage(primary.get("ajcc_pathologic_stage")),
            "grade": primary.get("tumor_grade") if primary.get("tumor_grade") not in (None, "--", "Not Reported") else None,
            "primary_diagnosis": primary.get("primary_diagnosis"),
            "OS": os_event,
            "OS.time": os_time,
        })
    table = pd.DataFrame(rows)
    duplicated = table["patient_id"][table["patient_id"].duplicated()].unique().tolist()
    if duplicated:
        raise CohortError(f"GDC clinical records list these patients more than once: {duplicated[:5]}")
    if table["sex"].notna().any():
        table["sex"] = table["sex"].str.lower()
    return table.set_index("patient_id")


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

GDC_API = "https://api.gdc.cancer.gov"
FILE_FIELDS = [
    "file_id", "file_name", "md5sum", "file_size", "data_format", "access", "cases.case_id",
    "cases.submitter_id", "cases.project.project_id", "cases.samples.sample_id", "cases.samples.submitter_id",
    "cases.samples.sample_type", "cases.samples.tissue_type", "cases.samples.tumor_descriptor",
    "cases.samples.portions.analytes.aliquots.aliquot_id", "cases.samples.portions.analytes.aliquots.submitter_id",
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


def _page_through(client: Client, url: str, body: dict[str, Any], page_size: int) -> list[dict[str, Any]]:
    """POST one query page by page (`from`, `size`) until `data.pagination.total` hits are in."""
    hits: list[dict[str, Any]] = []
    total: int | None = None
    while total is None or len(hits) < total:
        payload = client.request_json(url, body={**body, "format": "JSON", "size": page_size, "from": len(hits)})
        try:
            data = payload["data"]
            page, total = data["hits"], int(data["pagination"]["total"])
        except (KeyError, TypeError) as error:
            raise InputFormatError(f"{url}: answer has no data.hits / data.pagination.total ({str(payload)[:200]})") from error
        if not page:
            break
        hits.extend(page)
    if total is not None and len(hits) != total:
        raise InputFormatError(f"{url}: pagination stopped at {len(hits)} of {total} hits")
    return hits


def _hits_document(hits: list[dict[str, Any]]) -> dict[str, Any]:
    return {"data": {"hits": hits, "pagination": {"count": len(hits), "total": len(hits), "from": 0}}, "warnings": {}}


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
        files = _page_through(client, f"{api}/files",
                              {"filters": star_counts_filters(project), "fields": ",".join(FILE_FIELDS)}, page_size)
        cases = _page_through(client, f"{api}/cases", {"filters": project_filter(project), "expand": CASE_EXPAND},
                              page_size)
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
            raise InputFormatError(f"{url}: unsafe path {name!r} in the tar archive (absolute or with '..'); "
                                   "nothing was extracted from it")
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


def download_data(client: Client, hits: list[dict[str, Any]], api: str = GDC_API, batch_files: int = 50) -> dict[str, Path]:
    """Every hit's file in the store (verified against md5sum and file_size); batches of missing files are
    fetched as one tar.gz by POST /data, the rest (and anything a batch lacked) one by one with resume."""
    api = api.rstrip("/")
    wanted = {h["file_id"]: _Wanted(h["file_name"], Expected(size=h.get("file_size"), md5=h.get("md5sum")))
              for h in hits}
    paths = {file_id: client.store_path(f"{api}/data/{file_id}") for file_id in wanted}
    missing = []
    for file_id, path in paths.items():
        try:
            if path.is_file():
                verify_file(path, wanted[file_id].expected, check_gzip=False)
                continue
        except ChecksumError:
            path.unlink()
        missing.append(file_id)
    total = sum(int(wanted[i].expected.size or 0) for i in missing)
    log.info("GDC: %d of %d files to download (%.1f MB)", len(missing), len(wanted), total / 1e6)
    with client.progress_bars(len(missing), total or None, "GDC") as (file_bar, byte_bar):
        if not client.mirror and batch_files > 1:
            for start in range(0, len(missing), batch_files):
                batch = missing[start:start + batch_files]
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
        for file_id in missing:
            if paths[file_id].is_file():
                continue
            client.fetch(f"{api}/data/{file_id}", wanted[file_id].expected, check_gzip=False, bar=byte_bar)
            file_bar.update(1)
    return paths


def download_project(client: Client, project: str, raw_dir: str | os.PathLike[str], api: str = GDC_API,
                     page_size: int = 500, batch_files: int = 50) -> Path:
    """Query, download and verify a project's STAR counts and clinical records, then write the raw layout
    (files.json, cases.json, status.json, data/<file_id>/<file_name>, download.json) into `raw_dir`."""
    answers = query_project(client, project, api, page_size)
    paths = download_data(client, answers["files"], api, batch_files)
    raw = Path(raw_dir)
    for hit in answers["files"]:
        link_or_copy(paths[hit["file_id"]], raw / "data" / hit["file_id"] / hit["file_name"])
    _write_json_atomic(raw / "files.json", _hits_document(answers["files"]))
    _write_json_atomic(raw / "cases.json", _hits_document(answers["cases"]))
    _write_json_atomic(raw / "status.json", answers["status"])
    _write_json_atomic(raw / "download.json", {
        "source": "gdc", "project": project, "api": api, "mirror": client.mirror,
        "data_release": answers["status"].get("data_release"), "files": len(answers["files"]),
        "cases": len(answers["cases"]), "urls": sorted(set(client.fetched))[:20] + (["..."] if len(set(client.fetched)) > 20 else []),
    })
    return raw


def _write_json_atomic(path: Path, payload: Any) -> None:
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=1)
