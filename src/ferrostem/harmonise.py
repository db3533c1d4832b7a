"""Raw downloaded files of one cohort -> the harmonised AnnData (see cohort.py for the model).

Raw layouts (what the download rules write, from the source or a mirror):
- gdc: files.json (/files hits), cases.json (/cases hits), status.json (/status), data/<file_id>/<file_name>
- xena: <project>.star_counts.tsv.gz, <project>.star_tpm.tsv.gz, <project>.survival.tsv.gz,
  <project>.clinical.tsv.gz, gencode.v36.annotation.gtf.gene.probemap
- geo: <GSE>[-<GPL>]_series_matrix.txt.gz and <GPL>.annot.gz (or <GPL>_family.soft.gz); RNA-seq series with
  `geo.rnaseq_counts`: <GSE>_raw_counts_GRCh38.p13_NCBI.tsv.gz and Human.GRCh38.p13.annot.tsv.gz
TCGA cohorts (gdc or xena) can take OS/DSS/DFI/PFI from the TCGA-CDR table (`survival_source`).
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
    resolve_missing,
    select_samples,
)
from .errors import CohortError, ConfigError, InputFormatError
from .files import file_digest
from .sources import gdc, geo, xena

log = logging.getLogger(__name__)


def _digests(paths: list[Path], root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): file_digest(p) for p in paths}


def load_gdc_cohort(raw_dir: str | os.PathLike[str], rules: HarmonisationRules, *, simulated: bool = False,
                    urls: list[str] | None = None, cdr: tuple[pd.DataFrame, str] | None = None) -> ad.AnnData:
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
    survival_report = {"survival_source": "GDC /cases (TCGAbiolinks OS convention)"}
    if cdr is not None:
        obs, survival_report = xena.apply_cdr(obs, *cdr)
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
        harmonisation={"rules": rules.__dict__, **report_dict(gene_report, sample_report), **survival_report},
    )


def _download_urls(raw: Path) -> list[str]:
    record = raw / "download.json"
    return list(json.loads(record.read_text()).get("urls", [])) if record.is_file() else []


def load_xena_cohort(raw_dir: str | os.PathLike[str], project: str, rules: HarmonisationRules, *,
                     simulated: bool = False, cdr: tuple[pd.DataFrame, str] | None = None) -> ad.AnnData:
    """GDC-hub Xena matrices: counts back-transformed from log2(count+1) and rounded, TPM from log2(TPM+1)."""
    raw = Path(raw_dir)
    names = xena.dataset_names(project)
    counts_path, tpm_path = raw / names["star_counts"], raw / names["star_tpm"]
    count_matrix = xena.read_matrix(counts_path)
    counts, rounding = xena.counts_from_log2(count_matrix, counts_path)
    tpm_matrix = xena.read_matrix(tpm_path)
    if set(tpm_matrix.ids) != set(count_matrix.ids):
        only_tpm = sorted(set(tpm_matrix.ids) - set(count_matrix.ids))
        only_counts = sorted(set(count_matrix.ids) - set(tpm_matrix.ids))
        raise InputFormatError(f"{tpm_path}: genes differ from {counts_path} "
                               f"({len(only_tpm) + len(only_counts)} ids in only one of them: "
                               f"only in star_tpm {only_tpm[:5]}, only in star_counts {only_counts[:5]})")
    samples = [s for s in count_matrix.samples if s in set(tpm_matrix.samples)]
    only_one = sorted(set(count_matrix.samples) ^ set(tpm_matrix.samples))
    if not samples:
        raise CohortError(f"{counts_path} and {tpm_path} share no sample")
    gene_rows = pd.Index(tpm_matrix.ids).get_indexer(count_matrix.ids)
    tpm_columns = pd.Index(tpm_matrix.samples).get_indexer(samples)
    count_columns = pd.Index(count_matrix.samples).get_indexer(samples)
    counts = counts[:, count_columns]
    tpm = np.exp2(tpm_matrix.values[np.ix_(gene_rows, tpm_columns)]) - 1.0
    probemap = xena.read_probemap(raw / xena.PROBEMAP)
    genes = pd.DataFrame({"gene_id": count_matrix.ids,
                          "gene_name": probemap["gene"].reindex(count_matrix.ids).fillna("").to_numpy(),
                          "gene_type": ""})
    barcodes = [parse_barcode(s) for s in samples]
    sheet = pd.DataFrame({
        "sample_id": [b.sample_id for b in barcodes], "patient_id": [b.patient_id for b in barcodes],
        "sample_type_code": [b.code for b in barcodes], "sample_type": [b.sample_type for b in barcodes],
        "tissue": [b.tissue for b in barcodes], "vial": [b.vial for b in barcodes],
        "depth": counts.sum(axis=0), "xena_column": samples,
    }, index=samples)
    kept, excluded, dropped = select_samples(sheet, rules)
    columns = [sheet.index.get_loc(i) for i in kept.index]
    clinical = xena.read_clinical(raw / names["clinical"]).join(xena.read_survival(raw / names["survival"]), how="outer")
    obs, orphans, missing, warnings = join_clinical(kept.set_index("sample_id", drop=False), clinical, rules)
    if only_one:
        warnings.append(f"{len(only_one)} samples are in only one of star_counts / star_tpm and were left out: "
                        f"{', '.join(only_one[:10])}")
    genes, counts_h, tpm_h, gene_report = harmonise_genes(genes, counts[:, columns], tpm[:, columns], rules)
    obs["library_size"] = counts_h.sum(axis=0)
    survival_report = {"survival_source": f"Xena {names['survival']} (OS only)"}
    if cdr is not None:
        obs, survival_report = xena.apply_cdr(obs, *cdr)
    sample_report = SampleReport(
        samples_in=len(sheet), excluded_sample_types=excluded, duplicates_dropped=dropped,
        duplicate_rule="one per patient and sample type: first vial, then deepest library"
        if rules.one_sample_per_patient else "one per sample: deepest library",
        clinical_without_samples=orphans, samples_without_clinical=missing, samples_out=len(obs), warnings=warnings,
    )
    inputs = [counts_path, tpm_path, raw / names["survival"], raw / names["clinical"], raw / xena.PROBEMAP]
    record = provenance(
        "xena", release="GDC hub (see download.json)", simulated=simulated, urls=_download_urls(raw),
        inputs=_digests(inputs, raw),
        extra={"project": project, "counts_transform": "2**x - 1 of log2(count+1), rounded to integers",
               "counts_max_rounding": rounding, "gene_model": "GENCODE v36 (Xena probe map)"},
    )
    return build_anndata(
        obs=obs.drop(columns=["depth", "vial", "xena_column"]),
        var=genes,
        layers={"counts": counts_h.T, "tpm": tpm_h.T, "log2": np.log2(tpm_h.T + 1.0)},
        layer_scales={"counts": "raw counts (Xena star_counts back-transformed from log2(count+1), rounded)",
                      "tpm": "TPM (Xena star_tpm back-transformed from log2(TPM+1))", "log2": "log2(TPM+1)"},
        assay="rnaseq",
        provenance_record=record,
        harmonisation={"rules": rules.__dict__, **report_dict(gene_report, sample_report), **survival_report,
                       "counts_back_transformed": True, "counts_max_rounding": rounding},
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
    repeated_probes = series.table.index[series.table.index.duplicated()].unique().tolist()
    if repeated_probes:
        raise InputFormatError(f"{matrices[0]}: {len(repeated_probes)} probe ids are listed more than once, "
                               f"e.g. {repeated_probes[:5]}; a series matrix lists each probe once")
    table, missing_record, missing_warnings = resolve_missing(series.table, rules.missing, str(matrices[0].name))
    platform = platform or series.series.get("platform_id", [""])[0]
    annotation_files = sorted(raw.glob(f"{platform}.annot*")) + sorted(raw.glob(f"{platform}_family.soft*"))
    if not annotation_files:
        raise InputFormatError(f"{raw}: no platform annotation {platform}.annot.gz for {accession}")
    annotation = geo.read_platform_annotation(annotation_files[0])
    genes, collapse = geo.collapse_probes(table, annotation, rules.probe_collapse, rules.multi_symbol_probes)
    values = genes.to_numpy(dtype=float)
    scale = mapping.get("scale", "auto")
    transformed = scale == "linear" or (scale == "auto" and needs_log_transform(values))
    log_values = np.log2(np.clip(values, 0, None) + 1.0) if transformed else values
    obs = geo_obs(series.samples, mapping, matrices[0])
    duplicated = obs.index[obs.index.duplicated()].unique().tolist()
    if duplicated:
        raise CohortError(f"{matrices[0]}: duplicate sample ids {duplicated[:5]}")
    obs = obs.loc[obs.index.isin(genes.columns)]
    var = pd.DataFrame({"gene_id": pd.NA, "symbol": genes.index.astype(str), "biotype": pd.NA})
    entrez = annotation.explode("symbols").drop_duplicates("symbols").set_index("symbols")["entrez"]
    var["entrez"] = entrez.reindex(genes.index).fillna("").astype(str).to_numpy()
    record = provenance(
        "geo", release=series.series.get("last_update_date", ["unknown"])[0], simulated=simulated, urls=urls or [],
        inputs=_digests([matrices[0], annotation_files[0]], raw),
        extra={"accession": accession, "platform": platform, "samples": len(obs)},
    )
    sample_report = {"samples_in": len(series.table.columns), "samples_out": len(obs), "warnings": missing_warnings,
                     "log_transformed": transformed, "declared_scale": scale, "missing_values": missing_record}
    return build_anndata(
        obs=obs,
        var=var,
        layers={"tpm": (2.0 ** log_values - 1.0).T if not transformed else values.T, "log2": log_values.T},
        layer_scales={"tpm": "normalised intensity (linear)", "log2": "log2 intensity"},
        assay="microarray",
        provenance_record=record,
        harmonisation={"rules": rules.__dict__, **collapse.as_dict(), **sample_report},
    )


def load_geo_rnaseq_cohort(raw_dir: str | os.PathLike[str], accession: str, mapping: Mapping[str, Any],
                           rules: HarmonisationRules, *, simulated: bool = False) -> ad.AnnData:
    """NCBI-generated raw counts (GeneID rows) + the series matrix's characteristics (its table may be empty)."""
    raw = Path(raw_dir)
    matrices = sorted(raw.glob(f"{accession}*_series_matrix.txt*"))
    if not matrices:
        raise InputFormatError(f"{raw}: no {accession}*_series_matrix.txt.gz file")
    samples = pd.concat([geo.read_series_matrix(m, require_table=False).samples for m in matrices])
    counts_path = raw / f"{accession}_raw_counts_GRCh38.p13_NCBI.tsv.gz"
    annotation_path = raw / geo.NCBI_HUMAN_ANNOTATION
    table = geo.read_ncbi_counts(counts_path)
    annotation = geo.read_ncbi_annotation(annotation_path)
    shared = [c for c in table.columns if c in samples.index]
    if not shared:
        raise CohortError(f"{counts_path}: no column is a sample of {[m.name for m in matrices]}")
    obs = geo_obs(samples.loc[shared], mapping, matrices[0])
    info = annotation.reindex(table.index)
    genes = pd.DataFrame({"gene_id": table.index.to_numpy(), "gene_name": info["Symbol"].fillna("").to_numpy(),
                          "gene_type": info.get("GeneType", pd.Series("", index=info.index)).fillna("").to_numpy()})
    counts = table[shared].to_numpy(dtype=np.int64)
    if "Length" in info.columns and pd.to_numeric(info["Length"], errors="coerce").notna().all():
        length_kb = pd.to_numeric(info["Length"]).to_numpy()[:, None] / 1e3
        rate = counts / length_kb
        tpm, tpm_scale = rate / rate.sum(axis=0, keepdims=True) * 1e6, "TPM (NCBI gene lengths)"
    else:
        tpm, tpm_scale = counts / counts.sum(axis=0, keepdims=True) * 1e6, "CPM (the annotation has no gene lengths)"
    genes, counts, tpm, gene_report = harmonise_genes(genes, counts, tpm, rules)
    entrez = genes["gene_id"].astype(str)
    genes["entrez"] = entrez.to_numpy()
    ensembl = info["EnsemblGeneID"] if "EnsemblGeneID" in info.columns else pd.Series("", index=info.index)
    genes["gene_id"] = ensembl.reindex(entrez).fillna("").to_numpy()
    obs["library_size"] = counts.sum(axis=0)
    record = provenance("geo", release=samples.get("last_update_date", pd.Series(["unknown"])).iloc[0],
                        simulated=simulated, urls=_download_urls(raw),
                        inputs=_digests([*matrices, counts_path, annotation_path], raw),
                        extra={"accession": accession, "counts": "NCBI-generated raw counts (GRCh38.p13)"})
    return build_anndata(
        obs=obs, var=genes,
        layers={"counts": counts.T, "tpm": tpm.T, "log2": np.log2(tpm.T + 1.0)},
        layer_scales={"counts": "raw counts (NCBI GEO RNA-seq pipeline)", "tpm": tpm_scale, "log2": f"log2({tpm_scale.split()[0]}+1)"},
        assay="rnaseq", provenance_record=record,
        harmonisation={"rules": rules.__dict__, **report_dict(gene_report)},
    )


def uses_cdr(cohort: Mapping[str, Any]) -> bool:
    """Whether a cohort takes its survival endpoints from the TCGA-CDR (`survival_source`: auto|cdr|source).

    `auto` (the default) means: TCGA projects from gdc or xena do, simulated cohorts and GEO never.
    """
    choice = cohort.get("survival_source", "auto")
    if cohort.get("source") not in {"gdc", "xena"} or choice == "source":
        if choice == "cdr" and cohort.get("source") == "geo":
            raise ConfigError("survival_source 'cdr' is for TCGA cohorts (gdc or xena), not GEO")
        return False
    if choice == "cdr":
        return True
    return str(cohort.get("project", "")).startswith("TCGA-") and not cohort.get("simulated", False)


def harmonise_downloaded(cohort: Mapping[str, Any], raw_dir: str | os.PathLike[str],
                         cdr_path: str | os.PathLike[str] | None = None, *, refetch: str | None = None) -> ad.AnnData:
    """harmonise_cohort; a raw file that fails to parse also says how to fetch it again (`refetch`, for the
    folders the download rule wrote: see download.refetch_hint)."""
    try:
        return harmonise_cohort(cohort, raw_dir, cdr_path)
    except InputFormatError as error:
        if not refetch:
            raise
        raise InputFormatError(f"{error}\n{refetch}") from error


def harmonise_cohort(cohort: Mapping[str, Any], raw_dir: str | os.PathLike[str],
                     cdr_path: str | os.PathLike[str] | None = None) -> ad.AnnData:
    """Dispatch on the cohort's source; `cohort` is one validated entry of config `cohorts`.

    `cdr_path`: the TCGA-CDR table, used for OS/DSS/DFI/PFI when `uses_cdr(cohort)`.
    """
    rules = HarmonisationRules.from_config(cohort.get("harmonise"))
    simulated = bool(cohort.get("simulated", False))
    source = cohort["source"]
    cdr = None
    if source in {"gdc", "xena"} and uses_cdr(cohort):
        if cdr_path is None:
            raise ConfigError(f"cohort {cohort.get('project')}: survival_source needs the TCGA-CDR table, none given")
        cdr = (xena.read_cdr(cdr_path, cohort["project"]), str(Path(cdr_path).name))
    urls = _download_urls(Path(raw_dir))
    if source == "gdc":
        return load_gdc_cohort(raw_dir, rules, simulated=simulated, urls=urls, cdr=cdr)
    if source == "xena":
        return load_xena_cohort(raw_dir, cohort["project"], rules, simulated=simulated, cdr=cdr)
    if source == "geo":
        settings = cohort.get("geo", {})
        if settings.get("rnaseq_counts"):
            return load_geo_rnaseq_cohort(raw_dir, cohort["accession"], settings, rules, simulated=simulated)
        return load_geo_cohort(raw_dir, cohort["accession"], settings, rules, simulated=simulated, urls=urls)
    raise ConfigError(f"cohort source {source!r} has no harmoniser yet")
