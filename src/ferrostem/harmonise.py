"""Raw downloaded files of one cohort -> the harmonised AnnData (see cohort.py for the model).

Raw layouts (what the download stage writes and the demo generator imitates):
- gdc: files.json (/files hits), cases.json (/cases hits), status.json (/status), data/<file_id>/<file_name>
- geo: <GSE>[-<GPL>]_series_matrix.txt.gz and <GPL>.annot.gz
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from .barcodes import parse_barcode
from .cohort import (
    SampleReport,
    HarmonisationRules,
    build_anndata,
    harmonise_genes,
    join_clinical,
    provenance,
    report_dict,
    select_samples,
)
from .errors import CohortError, ConfigError, InputFormatError
from .files import file_digest
from .sources import gdc, geo

log = logging.getLogger(__name__)


def _digests(paths: list[Path], root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): file_digest(p) for p in paths}


def load_gdc_cohort(raw_dir: str | os.PathLike[str], rules: HarmonisationRules, *, simulated: bool = False,
                    urls: list[str] | None = None) -> ad.AnnData:
    raw = Path(raw_dir)
    hits = gdc.load_json_hits(raw / "files.json")
    sheet = gdc.file_sheet(hits).set_index("file_id", drop=False)
    duplicated_files = sheet.index[sheet.index.duplicated()].unique().tolist()
    if duplicated_files:
        raise CohortError(f"{raw / 'files.json'}: file ids listed more than once: {duplicated_files[:5]}")
    paths = [raw / "data" / row.file_id / row.file_name for row in sheet.itertuples()]
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise InputFormatError(f"{len(absent)} STAR files listed in files.json are missing, e.g. {absent[0]}")
    matrix = gdc.merge_star_files(paths, list(sheet.index))
    sheet["depth"] = matrix.counts.sum(axis=0)
    sheet["vial"] = [parse_barcode(s).vial for s in sheet["sample_id"]]
    kept, excluded, dropped = select_samples(sheet, rules)
    columns = [sheet.index.get_loc(i) for i in kept.index]
    samples = kept.set_index("sample_id", drop=False)
    clinical = gdc.clinical_table(gdc.load_json_hits(raw / "cases.json"))
    obs, orphans, missing, warnings = join_clinical(samples.drop(columns=["file_name", "md5sum", "file_size"]), clinical, rules)
    genes, counts, tpm, gene_report = harmonise_genes(matrix.genes, matrix.counts[:, columns], matrix.tpm[:, columns], rules)
    obs["library_size"] = counts.sum(axis=0)
    status = json.loads((raw / "status.json").read_text()) if (raw / "status.json").is_file() else {}
    sample_report = SampleReport(
        samples_in=len(sheet), excluded_sample_types=excluded, duplicates_dropped=dropped,
        duplicate_rule="one per patient and sample type: first vial, then deepest library"
        if rules.one_sample_per_patient else "one per sample: deepest library",
        clinical_without_samples=orphans, samples_without_clinical=missing, samples_out=len(obs), warnings=warnings,
    )
    record = provenance(
        "gdc", release=str(status.get("data_release", "unknown")), simulated=simulated, urls=urls or [],
        inputs=_digests([raw / "files.json", raw / "cases.json"], raw),
        extra={"gene_model": matrix.gene_model, "files": len(paths),
               "file_md5": dict(zip(sheet["file_id"], sheet["md5sum"].astype(str)))},
    )
    return build_anndata(
        obs=obs.drop(columns=["file_id", "depth", "vial"]),
        var=genes,
        layers={"counts": counts.T, "tpm": tpm.T, "log2": np.log2(tpm.T + 1.0)},
        layer_scales={"counts": "raw counts (STAR unstranded)", "tpm": "TPM", "log2": "log2(TPM+1)"},
        assay="rnaseq",
        provenance_record=record,
        harmonisation={"rules": rules.__dict__, **report_dict(gene_report, sample_report)},
    )


def needs_log_transform(values: np.ndarray) -> bool:
    """GEO2R's rule: values look linear when the 99th percentile exceeds 100 or the range is wide and positive."""
    finite = values[np.isfinite(values)]
    q = np.quantile(finite, [0.0, 0.25, 0.5, 0.75, 0.99, 1.0])
    return bool(q[4] > 100 or (q[5] - q[0] > 50 and q[1] > 0))


def _mapped_column(samples: pd.DataFrame, key: str, field_name: str, source: Path) -> pd.Series:
    if key not in samples.columns:
        found = [c for c in samples.columns if not c.startswith(("title", "geo_accession", "status", "submission",
                                                                    "last_update", "type", "channel", "source"))]
        raise ConfigError(
            f"{source}: characteristics key {key!r} (configured for {field_name}) is not in the series; "
            f"keys found: {found}"
        )
    return samples[key]


def geo_obs(samples: pd.DataFrame, mapping: Mapping[str, Any], source: Path) -> pd.DataFrame:
    """Sample sheet from GEO characteristics through the config mapping (GEO has no standard keys)."""
    fields: Mapping[str, str] = mapping.get("fields", {})
    obs = pd.DataFrame(index=samples.index)
    obs["sample_id"] = samples.index
    obs["patient_id"] = _mapped_column(samples, fields["patient_id"], "patient_id", source).astype(str) \
        if "patient_id" in fields else samples.index
    if "tissue" in fields:
        raw = _mapped_column(samples, fields["tissue"], "tissue", source).astype(str).str.strip().str.lower()
        tumor = {str(v).lower() for v in mapping.get("tumor_values", ["tumor", "tumour"])}
        normal = {str(v).lower() for v in mapping.get("normal_values", ["normal"])}
        unknown = sorted(set(raw) - tumor - normal)
        if unknown:
            raise ConfigError(f"{source}: tissue values {unknown} are in neither tumor_values {sorted(tumor)} "
                              f"nor normal_values {sorted(normal)}")
        obs["tissue"] = np.where(raw.isin(tumor), "tumor", "normal")
    else:
        obs["tissue"] = "tumor"
    obs["sample_type"] = np.where(obs["tissue"] == "tumor", "Primary Tumor", "Solid Tissue Normal")
    obs["sample_type_code"] = np.where(obs["tissue"] == "tumor", "01", "11")
    unit = mapping.get("time_unit", "days")
    to_days = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25}
    if unit not in to_days:
        raise ConfigError(f"geo.time_unit {unit!r} is not one of {sorted(to_days)}")
    events = {str(v).lower() for v in mapping.get("event_values", ["1", "dead", "deceased", "yes"])}
    for column, key in fields.items():
        if column in {"patient_id", "tissue"}:
            continue
        values = _mapped_column(samples, key, column, source)
        if column.endswith(".time"):
            obs[column] = pd.to_numeric(values, errors="coerce") * to_days[unit]
        elif column in {"OS", "DSS", "DFI", "PFI"}:
            text = values.astype(str).str.strip().str.lower()
            obs[column] = np.where(values.isna() | text.isin({"", "nan", "na"}), np.nan, text.isin(events).astype(float))
        elif column == "age":
            obs[column] = pd.to_numeric(values, errors="coerce")
        else:
            obs[column] = values.astype("string").str.strip()
    if "stage" in obs.columns:
        obs["stage"] = obs["stage"].map(lambda v: None if pd.isna(v) else (v if str(v).startswith("Stage") else f"Stage {v}"))
    return obs


def load_geo_cohort(raw_dir: str | os.PathLike[str], accession: str, mapping: Mapping[str, Any],
                    rules: HarmonisationRules, *, simulated: bool = False, urls: list[str] | None = None) -> ad.AnnData:
    raw = Path(raw_dir)
    matrices = sorted(raw.glob(f"{accession}*_series_matrix.txt*"))
    if not matrices:
        raise InputFormatError(f"{raw}: no {accession}*_series_matrix.txt.gz file")
    platform = mapping.get("platform")
    if len(matrices) > 1:
        if not platform:
            raise ConfigError(f"{accession} has several platforms ({[m.name for m in matrices]}); set geo.platform")
        matrices = [m for m in matrices if f"-{platform}_" in m.name]
    series = geo.read_series_matrix(matrices[0])
    platform = platform or series.series.get("platform_id", [""])[0]
    annotation_files = sorted(raw.glob(f"{platform}.annot*")) + sorted(raw.glob(f"{platform}_family.soft*"))
    if not annotation_files:
        raise InputFormatError(f"{raw}: no platform annotation {platform}.annot.gz for {accession}")
    annotation = geo.read_platform_annotation(annotation_files[0])
    genes, collapse = geo.collapse_probes(series.table, annotation, rules.probe_collapse, rules.multi_symbol_probes)
    values = genes.to_numpy(dtype=float)
    scale = mapping.get("scale", "auto")
    transformed = scale == "linear" or (scale == "auto" and needs_log_transform(values))
    log_values = np.log2(np.clip(values, 0, None) + 1.0) if transformed else values
    obs = geo_obs(series.samples, mapping, matrices[0])
    duplicated = obs.index[obs.index.duplicated()].unique().tolist()
    if duplicated:
        raise CohortError(f"{matrices[0]}: duplicate sample ids {duplicated[:5]}")
    var = pd.DataFrame({"gene_id": pd.NA, "symbol": genes.index.astype(str), "biotype": pd.NA})
    entrez = annotation.explode("symbols").drop_duplicates("symbols").set_index("symbols")["entrez"]
    var["entrez"] = entrez.reindex(genes.index).fillna("").astype(str).to_numpy()
    record = provenance(
        "geo", release=series.series.get("last_update_date", ["unknown"])[0], simulated=simulated, urls=urls or [],
        inputs=_digests([matrices[0], annotation_files[0]], raw),
        extra={"accession": accession, "platform": platform, "samples": len(obs)},
    )
    sample_report = {"samples_in": len(obs), "samples_out": len(obs), "warnings": [],
                     "log_transformed": transformed, "declared_scale": scale}
    return build_anndata(
        obs=obs,
        var=var,
        layers={"tpm": (2.0 ** log_values - 1.0).T if not transformed else values.T, "log2": log_values.T},
        layer_scales={"tpm": "normalised intensity (linear)", "log2": "log2 intensity"},
        assay="microarray",
        provenance_record=record,
        harmonisation={"rules": rules.__dict__, **collapse.as_dict(), **sample_report},
    )


def harmonise_cohort(cohort: Mapping[str, Any], raw_dir: str | os.PathLike[str]) -> ad.AnnData:
    """Dispatch on the cohort's source; `cohort` is one validated entry of config `cohorts`."""
    rules = HarmonisationRules.from_config(cohort.get("harmonise"))
    simulated = bool(cohort.get("simulated", False))
    source = cohort["source"]
    if source == "gdc":
        return load_gdc_cohort(raw_dir, rules, simulated=simulated)
    if source == "geo":
        return load_geo_cohort(raw_dir, cohort["accession"], cohort.get("geo", {}), rules, simulated=simulated)
    raise ConfigError(f"cohort source {source!r} has no harmoniser yet")
