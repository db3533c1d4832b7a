"""Raw downloaded files of one cohort -> the harmonised AnnData (see cohort.py for the model).

Raw layouts (what the download rules write, from the source or a mirror):
- gdc: files.json (/files hits), cases.json (/cases hits), status.json (/status), data/<file_id>/<file_name>
- xena: <project>.star_counts.tsv.gz, <project>.star_tpm.tsv.gz, <project>.survival.tsv.gz,
  <project>.clinical.tsv.gz, gencode.v36.annotation.gtf.gene.probemap
- geo: <GSE>[-<GPL>]_series_matrix.txt.gz and <GPL>.annot.gz (or <GPL>.soft, the platform record from acc.cgi);
  RNA-seq series with `geo.rnaseq_counts`: <GSE>_raw_counts_<build>_NCBI.tsv.gz and Human.<build>.annot.tsv.gz
  (the names NCBI's download page links)
TCGA cohorts (gdc or xena) can take OS/DSS/DFI/PFI from the TCGA-CDR table (`survival_source`); a GEO cohort
declares its own endpoints (any name: RFS, DMFS, ...; see endpoints.py).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    rule_warnings,
    resolve_missing,
    select_samples,
)
from .endpoints import geo_endpoints, uses_cdr
from .errors import CohortError, ConfigError, InputFormatError
from .files import file_digest
from .scales import LOG2_RATIO, looks_linear_scale, scale_quantiles
from .sources import gdc, geo, xena
from .sources.http import Client

if TYPE_CHECKING:  # download_cohort imports this module for SOURCES and never builds an AnnData
    import anndata as ad

log = logging.getLogger(__name__)


def _digests(paths: list[Path], root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): file_digest(p) for p in paths}


def load_gdc_cohort(
    raw_dir: str | os.PathLike[str],
    rules: HarmonisationRules,
    *,
    simulated: bool = False,
    urls: list[str] | None = None,
    cdr: tuple[pd.DataFrame, str] | None = None,
    workers: int = 1,
) -> ad.AnnData:
    """`workers`: threads that read the STAR files (gdc.merge_star_files)."""
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
    matrix = gdc.merge_star_files(paths, list(sheet.index), workers=workers)
    sheet["depth"] = matrix.counts.sum(axis=0)
    sheet["vial"] = [parse_barcode(s).vial for s in sheet["sample_id"]]
    kept, excluded, dropped = select_samples(sheet, rules)
    columns = [sheet.index.get_loc(i) for i in kept.index]
    samples = kept.set_index("sample_id", drop=False)
    clinical, clinical_rules = gdc.clinical_table(gdc.load_json_hits(raw / "cases.json"))
    clinical_rules = {**gdc.sample_type_conflicts(sheet), **clinical_rules}
    if cdr is not None:  # the CDR replaces every endpoint: the rules of the GDC-derived OS no longer apply
        clinical_rules = {name: record for name, record in clinical_rules.items() if name not in gdc.SURVIVAL_RULES}
    obs, orphans, missing, warnings = join_clinical(
        samples.drop(columns=["file_name", "md5sum", "file_size", "gdc_sample_type"]), clinical, rules
    )
    warnings += rule_warnings(clinical_rules, informational=gdc.INFORMATIONAL_RULES)
    every_file = columns == list(range(len(sheet)))  # the usual case: no copy of 2 x 200 MB at TCGA size
    genes, counts, tpm, gene_report = harmonise_genes(
        matrix.genes,
        matrix.counts if every_file else matrix.counts[:, columns],
        matrix.tpm if every_file else matrix.tpm[:, columns],
        rules,
    )
    obs["library_size"] = counts.sum(axis=0)
    survival_report = {"survival_source": "GDC /cases (TCGAbiolinks OS convention)"}
    if cdr is not None:
        obs, survival_report = xena.apply_cdr(obs, *cdr)
    status = (
        gdc.parse_status(json.loads((raw / "status.json").read_text()), str(raw / "status.json"))
        if (raw / "status.json").is_file()
        else gdc.parse_status({}, str(raw / "status.json"))
    )
    sample_report = SampleReport(
        samples_in=len(sheet),
        excluded_sample_types=excluded,
        duplicates_dropped=dropped,
        duplicate_rule="one per patient and sample type: first vial, then deepest library"
        if rules.one_sample_per_patient
        else "one per sample: deepest library",
        clinical_without_samples=orphans,
        samples_without_clinical=missing,
        samples_out=len(obs),
        warnings=warnings,
    )
    record = provenance(
        "gdc",
        release=status["data_release"],
        simulated=simulated,
        urls=urls or [],
        inputs=_digests([raw / "files.json", raw / "cases.json"], raw),
        extra={
            "gene_model": matrix.gene_model,
            "files": len(paths),
            "gdc_status": status,
            "file_md5": dict(zip(sheet["file_id"], sheet["md5sum"].astype(str))),
        },
    )
    return build_anndata(
        obs=obs.drop(columns=["file_id", "depth", "vial"]),
        var=genes,
        layers={"counts": counts.T, "tpm": tpm.T, "log2": _log2_plus_one(tpm.T)},
        layer_scales={"counts": "raw counts (STAR unstranded)", "tpm": "TPM", "log2": "log2(TPM+1)"},
        assay="rnaseq",
        provenance_record=record,
        harmonisation={
            "rules": rules.__dict__,
            **report_dict(gene_report, sample_report),
            **survival_report,
            "clinical_rules": clinical_rules,
        },
    )


def _log2_plus_one(values: np.ndarray) -> np.ndarray:
    """log2(values + 1) in one new array (the same numbers as np.log2(values + 1.0), one allocation fewer)."""
    shifted = values + 1.0
    return np.log2(shifted, out=shifted)


def _download_urls(raw: Path) -> list[str]:
    record = raw / "download.json"
    return list(json.loads(record.read_text()).get("urls", [])) if record.is_file() else []


def load_xena_cohort(
    raw_dir: str | os.PathLike[str],
    project: str,
    rules: HarmonisationRules,
    *,
    simulated: bool = False,
    cdr: tuple[pd.DataFrame, str] | None = None,
) -> ad.AnnData:
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
        raise InputFormatError(
            f"{tpm_path}: genes differ from {counts_path} "
            f"({len(only_tpm) + len(only_counts)} ids in only one of them: "
            f"only in star_tpm {only_tpm[:5]}, only in star_counts {only_counts[:5]})"
        )
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
    xena.check_probemap_covers(probemap, count_matrix.ids, raw / xena.PROBEMAP, counts_path)
    genes = pd.DataFrame(
        {
            "gene_id": count_matrix.ids,
            "gene_name": probemap["gene"].reindex(count_matrix.ids).fillna("").to_numpy(),
            "gene_type": "",
        }
    )
    barcodes = [parse_barcode(s) for s in samples]
    sheet = pd.DataFrame(
        {
            "sample_id": [b.sample_id for b in barcodes],
            "patient_id": [b.patient_id for b in barcodes],
            "sample_type_code": [b.code for b in barcodes],
            "sample_type": [b.sample_type for b in barcodes],
            "tissue": [b.tissue for b in barcodes],
            "vial": [b.vial for b in barcodes],
            "depth": counts.sum(axis=0),
            "xena_column": samples,
        },
        index=samples,
    )
    kept, excluded, dropped = select_samples(sheet, rules)
    columns = [sheet.index.get_loc(i) for i in kept.index]
    clinical, clinical_report = xena.read_clinical(raw / names["clinical"])
    clinical = clinical.join(xena.read_survival(raw / names["survival"]), how="outer")
    obs, orphans, missing, warnings = join_clinical(kept.set_index("sample_id", drop=False), clinical, rules)
    warnings += _xena_clinical_notes(clinical_report, raw / names["clinical"])
    counts_rounding = rounding.for_samples(kept["xena_column"].tolist())
    if counts_rounding["non_integer_samples"]:
        warnings.append(
            f"{names['star_counts']}: {counts_rounding['non_integer_samples']} samples hold hub-averaged counts "
            f"(means of several aliquot files; {counts_rounding['non_integer_cells']} non-integer cells, rounded): "
            f"{', '.join(counts_rounding['samples_with_averaged_counts'][:10])}"
        )
    if only_one:
        warnings.append(
            f"{len(only_one)} samples are in only one of star_counts / star_tpm and were left out: "
            f"{', '.join(only_one[:10])}"
        )
    genes, counts_h, tpm_h, gene_report = harmonise_genes(genes, counts[:, columns], tpm[:, columns], rules)
    obs["library_size"] = counts_h.sum(axis=0)
    survival_report = {"survival_source": f"Xena {names['survival']} (OS only)"}
    if cdr is not None:
        obs, survival_report = xena.apply_cdr(obs, *cdr)
    sample_report = SampleReport(
        samples_in=len(sheet),
        excluded_sample_types=excluded,
        duplicates_dropped=dropped,
        duplicate_rule="one per patient and sample type: first vial, then deepest library"
        if rules.one_sample_per_patient
        else "one per sample: deepest library",
        clinical_without_samples=orphans,
        samples_without_clinical=missing,
        samples_out=len(obs),
        warnings=warnings,
    )
    inputs = [counts_path, tpm_path, raw / names["survival"], raw / names["clinical"], raw / xena.PROBEMAP]
    record = provenance(
        "xena",
        release="GDC hub (see download.json)",
        simulated=simulated,
        urls=_download_urls(raw),
        inputs=_digests(inputs, raw),
        extra={
            "project": project,
            "counts_transform": XENA_COUNTS_SCALE,
            "counts_rounding": counts_rounding,
            "gene_model": "GENCODE v36 (Xena probe map)",
        },
    )
    return build_anndata(
        obs=obs.drop(columns=["depth", "vial", "xena_column"]),
        var=genes,
        layers={"counts": counts_h.T, "tpm": tpm_h.T, "log2": _log2_plus_one(tpm_h.T)},
        layer_scales={
            "counts": XENA_COUNTS_SCALE,
            "tpm": "TPM (Xena star_tpm back-transformed from log2(TPM+1))",
            "log2": "log2(TPM+1)",
        },
        assay="rnaseq",
        provenance_record=record,
        harmonisation={
            "rules": rules.__dict__,
            **report_dict(gene_report, sample_report),
            **survival_report,
            "counts_back_transformed": True,
            "counts_rounding": counts_rounding,
            **clinical_report,
        },
    )


XENA_COUNTS_SCALE = (
    "hub-averaged counts (Xena star_counts: the hub averages a sample's aliquot files, then "
    "log2(x+1); back-transformed 2**x - 1 and rounded to integers)"
)


def _xena_clinical_notes(report: Mapping[str, Any], path: Path) -> list[str]:
    """Report lines for what read_clinical did: list cells resolved or left missing, fields not found."""
    notes = []
    for field_name, resolution in report["clinical_list_cells"].items():
        ambiguous = resolution["ambiguous_patients"]
        notes.append(
            f"{path.name}: {resolution['list_cells']} patients have several diagnosis records for {field_name}; "
            f"primary diagnosis flag used for {resolution['by_diagnosis_is_primary_disease']}, "
            f"classification_of_tumor for {resolution['by_classification_of_tumor']}, records agree for "
            f"{resolution['records_agree']}, ambiguous (set missing) for {len(ambiguous)}"
            + (f": {', '.join(ambiguous[:10])}" if ambiguous else "")
        )
    for field_name, by_column in report["clinical_rows_by_column"].items():
        notes.append(
            f"{path.name}: {field_name} read from " + ", ".join(f"{c} ({n} patients)" for c, n in by_column.items())
        )
    for field_name, found in report["clinical_column_conflicts"].items():
        notes.append(
            f"{path.name}: {len(found)} patients have conflicting {field_name} columns (the first is used): "
            + "; ".join(found[:5])
        )
    if report["clinical_unknown_stage"]:
        found = report["clinical_unknown_stage"]
        notes.append(
            f"{path.name}: {len(found)} patients have a stage value outside the GDC data dictionary "
            "(set missing): " + ", ".join(found[:10])
        )
    for field_name in report["clinical_fields_missing"]:
        notes.append(
            f"{path.name}: no column for {field_name} (looked for "
            f"{', '.join(xena.CLINICAL_FIELDS[field_name])}); {field_name} is missing for every patient"
        )
    return notes


def detect_scale(values: np.ndarray) -> str:
    """`linear` (GEO2R's rule says log-transform), `log2 ratio` (log scale, centred on 0 with negative values:
    a two-colour array's log-ratios) or `log2` (log intensities)."""
    if looks_linear_scale(values):
        return "linear"
    q = scale_quantiles(values)
    return LOG2_RATIO if q[0] < 0 and abs(q[2]) < 1 else "log2"


def resolve_scale(values: np.ndarray, declared: str, trust_declared: bool, cohort: str) -> tuple[bool, str, str]:
    """Whether to log-transform, the detected scale and the rule used. The detection always runs: a declared
    `geo.scale` that it contradicts is a ConfigError naming the cohort and both scales, unless
    `geo.trust_declared_scale` is true (then the declaration wins and the report says so)."""
    detected = detect_scale(values)
    if declared == "auto":
        return (
            detected == "linear",
            detected,
            (f"detected {detected} (GEO2R's rule; log values centred on 0 with negatives are log2 ratios)"),
        )
    if declared not in {"log2", "linear"}:
        raise ConfigError(f"cohort {cohort}: geo.scale {declared!r} is not one of auto, log2, linear")
    if (declared == "linear") == (detected == "linear"):
        return declared == "linear", detected, f"declared {declared}, agrees with the detected {detected}"
    if trust_declared:
        return (
            declared == "linear",
            detected,
            f"declared {declared}, CONTRADICTS the detected {detected}; kept because geo.trust_declared_scale is true",
        )
    q = scale_quantiles(values)
    raise ConfigError(
        f"cohort {cohort}: geo.scale is declared {declared!r} but the values look {detected} (GEO2R's rule: "
        f"99th percentile {q[4]:.4g}, range {q[0]:.4g} to {q[5]:.4g}, lower quartile {q[1]:.4g}); "
        + ("logging them would log them twice. " if declared == "linear" else "they would be used unlogged. ")
        + "Set geo.scale: auto, or geo.trust_declared_scale: true if the declaration is right after all"
    )


def _mapped_column(samples: pd.DataFrame, key: str, field_name: str, source: Path | str) -> pd.Series:
    column = geo.find_column(samples, key)
    if column is None:
        found = [
            c
            for c in samples.columns
            if not c.startswith(
                ("title", "geo_accession", "status", "submission", "last_update", "type", "channel", "source")
            )
        ]
        raise ConfigError(
            f"{source}: characteristics key {key!r} (configured for {field_name}) is not in the series "
            f"(keys are matched ignoring case); keys found: {found}"
        )
    return samples[column]


def _time_values(values: pd.Series, key: str, column: str, unit: str, source: Path | str) -> pd.Series:
    """Survival times as numbers; a cell that is neither a number nor a missing-value spelling (e.g. "12 months",
    "3,5") is an error naming it, since reading it as missing would drop the sample from survival silently."""
    numbers = pd.to_numeric(values, errors="coerce")
    text = values.astype(str).str.strip().str.lower()
    bad = numbers.isna() & values.notna() & ~text.isin(geo.MISSING_CELLS)
    if bad.any():
        examples = ", ".join(f"{sample}: {values[sample]!r}" for sample in bad.index[bad][:5])
        raise InputFormatError(
            f"{source}: column {key!r} ({column}) holds {int(bad.sum())} value(s) that are not a "
            f"number of {unit} (geo.time_unit), e.g. {examples}"
        )
    return numbers


def _event_text(values: pd.Series) -> pd.Series:
    """Status cells as text to compare with `event_values`: a numeric column with missing cells is float, so
    1.0 is written "1" (else it would never equal the event value "1")."""
    if pd.api.types.is_numeric_dtype(values):
        return values.map(lambda v: "" if pd.isna(v) else (str(int(v)) if float(v).is_integer() else str(v)))
    return values.astype(str).str.strip().str.lower()


def with_sample_table(
    raw: Path, samples: pd.DataFrame, mapping: Mapping[str, Any], accession: str
) -> tuple[pd.DataFrame, dict[str, Any] | None, Path | None]:
    """Join config `geo.sample_table` (a supplementary or local per-sample table) onto the series' samples,
    so that `geo.fields` can name its columns like characteristics keys."""
    settings = mapping.get("sample_table")
    if not settings:
        return samples, None, None
    path = raw / geo.sample_table_name(settings, accession)
    if not path.is_file():
        raise InputFormatError(
            f"{raw}: the sample table {path.name} (geo.sample_table) is missing; download the cohort again"
        )
    table = geo.read_sample_table(path, settings["key"], settings.get("sheet"))
    joined, record = geo.join_sample_table(samples, table, str(path))
    return joined, record, path


OTHER_TISSUE = "other"
SAMPLE_TYPE_OF_TISSUE = {"tumor": "Primary Tumor", "normal": "Solid Tissue Normal", OTHER_TISSUE: "Other"}
SAMPLE_TYPE_CODE_OF_TISSUE = {"tumor": "01", "normal": "11", OTHER_TISSUE: ""}
OTHER_TISSUE_RULES = ("exclude", "error", "keep")


def other_tissue_rule(
    obs: pd.DataFrame, mapping: Mapping[str, Any], source: Path | str
) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """Apply config `geo.other_tissue` to the samples whose tissue value is in neither `tumor_values` nor
    `normal_values` (tissue "other" from geo_obs): `exclude` (the default) drops them, `error` stops the run,
    `keep` keeps them as tissue "other" (never counted as tumours or normals; a comparison on `tissue_value`
    can still use them). Returns the kept samples, the record for `uns["harmonisation"]["other_tissue"]`
    (values with their counts, sample ids) and the report warnings."""
    rule = mapping.get("other_tissue", "exclude")
    if rule not in OTHER_TISSUE_RULES:
        raise ConfigError(f"{source}: geo.other_tissue {rule!r} is not one of {', '.join(OTHER_TISSUE_RULES)}")
    other = obs["tissue"].eq(OTHER_TISSUE)
    if not other.any():
        return obs, {"rule": rule, "count": 0, "values": {}, "samples": []}, []
    values = {str(k): int(v) for k, v in obs.loc[other, "tissue_value"].value_counts().sort_index().items()}
    listed = ", ".join(f"{k!r} ({v} samples)" for k, v in values.items())
    lists = (
        f"tumor_values {list(mapping.get('tumor_values', ['tumor', 'tumour']))} nor normal_values "
        f"{list(mapping.get('normal_values', ['normal']))}"
    )
    if rule == "error":
        raise ConfigError(
            f"{source}: tissue values {listed} are in neither {lists}; add them to one of these lists, "
            "or set geo.other_tissue to exclude (leave them out) or keep (tissue 'other')"
        )
    ids = [str(i) for i in obs.index[other]]
    record = {
        "rule": ("excluded" if rule == "exclude" else "kept as tissue 'other'") + " (geo.other_tissue)",
        "count": len(ids),
        "values": values,
        "samples": ids,
    }
    action = "left out" if rule == "exclude" else "kept as tissue 'other' (neither tumour nor normal)"
    warning = (
        f"{len(ids)} samples have a tissue value in neither {lists}: {listed}; {action} "
        f"(geo.other_tissue: {rule}): {', '.join(ids[:10])}" + (" ..." if len(ids) > 10 else "")
    )
    return (obs.loc[~other] if rule == "exclude" else obs), record, [warning]


# status values that mean "no event" in GEO tables: a column of only these may truly have no event; any other
# value with no event among them means event_values does not match the column (Dead/Alive against "1")
CENSORING_CODES = {"0", "0.0", "alive", "living", "censored", "no", "false"}


def geo_survival_columns(
    samples: pd.DataFrame, mapping: Mapping[str, Any], source: Path | str
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """`<NAME>.time` (days) and `<NAME>` (1 = event, 0 = censored) for every endpoint the `geo` settings
    declare (`endpoints.geo_endpoints`), with one record per endpoint: its declaration, the samples with
    data and the events. A time cell that is not a number (`12 months`) and a status column none of whose
    values is an event while some are no censoring code either stop the run naming the file and column:
    read as missing or as censored they would change every survival result without a word. An endpoint
    whose statuses are all censoring codes is kept and noted."""
    # no default unit (geo_endpoints refuses a time without one): months read as days shrink every
    # follow-up thirty-fold, silently
    declarations = geo_endpoints(mapping, str(source))
    columns: dict[str, pd.Series] = {}
    records = []
    for declaration in declarations:
        time_raw = _mapped_column(samples, declaration.time, f"{declaration.name}.time", source)
        status = _mapped_column(samples, declaration.event, declaration.name, source)
        time = _time_values(time_raw, declaration.time, f"{declaration.name}.time", declaration.unit, source)
        text = _event_text(status)
        events = {v.lower() for v in declaration.event_values}
        missing = status.isna() | text.isin(geo.MISSING_CELLS)
        event = pd.Series(np.where(missing, np.nan, text.isin(events).astype(float)), index=samples.index)
        found = sorted(set(text[~missing]))
        if event.notna().any() and not (event == 1).any() and set(found) - CENSORING_CODES:
            raise ConfigError(
                f"{source}: column {declaration.event!r} ({declaration.name}) has no event: none of its "
                f"values {found[:10]} is in the event_values {sorted(events)} of "
                f"{declaration.declared_in}; set event_values to the value(s) that mean an event"
            )
        columns[f"{declaration.name}.time"] = time * declaration.days_per_unit
        columns[declaration.name] = event
        known = time.notna() & event.notna()
        records.append(
            {
                **declaration.as_record(),
                "time_column": str(time_raw.name),
                "event_column": str(status.name),
                "samples_with_data": int(known.sum()),
                "events": int(event[known].sum()),
                "status_values": found[:20],
            }
        )
    return pd.DataFrame(columns, index=samples.index), records


def endpoint_notes(records: list[dict[str, Any]], source: Path | str) -> list[str]:
    """Report lines for the endpoint records of `geo_survival_columns`: no data, no events."""
    notes = []
    for record in records:
        name, fields = record["name"], f"{record['time_column']!r} / {record['event_column']!r}"
        if not record["samples_with_data"]:
            notes.append(f"{source}: endpoint {name} ({fields}): no sample has both a time and a status; not analysed")
        elif not record["events"]:
            notes.append(
                f"{source}: endpoint {name}: no event among {record['samples_with_data']} samples: no "
                f"value of column {record['event_column']!r} is one of the event values "
                f"{record['event_values']} (values found: {record['status_values']}); check "
                f"{record['declared_in']} (event_values)"
            )
    return notes


def geo_obs(samples: pd.DataFrame, mapping: Mapping[str, Any], source: Path | str) -> pd.DataFrame:
    """Sample sheet from GEO characteristics through the config mapping (GEO has no standard keys)."""
    fields: Mapping[str, str] = mapping.get("fields", {})
    obs = pd.DataFrame(index=samples.index)
    obs["sample_id"] = samples.index
    obs["patient_id"] = (
        _mapped_column(samples, fields["patient_id"], "patient_id", source).astype(str)
        if "patient_id" in fields
        else samples.index
    )
    if "tissue" in fields:
        value = _mapped_column(samples, fields["tissue"], "tissue", source).astype(str).str.strip()
        tumor = {str(v).lower() for v in mapping.get("tumor_values", ["tumor", "tumour"])}
        normal = {str(v).lower() for v in mapping.get("normal_values", ["normal"])}
        folded = value.str.lower()
        obs["tissue"] = np.where(folded.isin(tumor), "tumor", np.where(folded.isin(normal), "normal", OTHER_TISSUE))
        obs["tissue_value"] = value  # as the series spells it: a comparison can set any two of its levels
    else:
        obs["tissue"] = "tumor"
    obs["sample_type"] = obs["tissue"].map(SAMPLE_TYPE_OF_TISSUE)
    obs["sample_type_code"] = obs["tissue"].map(SAMPLE_TYPE_CODE_OF_TISSUE)
    survival, _ = geo_survival_columns(samples, mapping, source)
    for column, key in fields.items():
        if column in {"patient_id", "tissue"} or column in survival.columns:
            continue
        values = _mapped_column(samples, key, column, source)
        if column == "age":
            obs[column] = pd.to_numeric(values, errors="coerce")
        else:
            obs[column] = values.astype("string").str.strip()
    obs = obs.join(survival)
    if "stage" in obs.columns:
        obs["stage"] = obs["stage"].map(
            lambda v: None if pd.isna(v) else (v if str(v).startswith("Stage") else f"Stage {v}")
        )
    return obs


def _cohort_name(accession: str, label: str | None) -> str:
    return f"{accession} ({label})" if label else accession


SYMBOL_ROWS_ANNOTATION = "none (the series' rows are gene symbols: geo.row_ids symbol)"


def platform_annotation_file(raw: Path, platform: str) -> Path:
    """`{GPL}.annot.gz` (GEO's annotation), else `{GPL}.soft` (the platform record from acc.cgi), else a
    local `{GPL}_family.soft.gz` (read only up to its `!platform_table_end`)."""
    for pattern in (f"{platform}.annot*", f"{platform}{geo.PLATFORM_RECORD_SUFFIX}", f"{platform}_family.soft*"):
        found = sorted(raw.glob(pattern))
        if found:
            return found[0]
    raise InputFormatError(
        f"{raw}: no platform annotation for {platform} ({platform}.annot.gz or {platform}{geo.PLATFORM_RECORD_SUFFIX})"
    )


def load_geo_cohort(
    raw_dir: str | os.PathLike[str],
    accession: str,
    mapping: Mapping[str, Any],
    rules: HarmonisationRules,
    *,
    simulated: bool = False,
    urls: list[str] | None = None,
    label: str | None = None,
) -> ad.AnnData:
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
    row_ids = mapping.get("row_ids", "probe")
    if row_ids not in geo.ROW_IDS:
        raise ConfigError(
            f"{_cohort_name(accession, label)}: geo.row_ids {row_ids!r} is not one of {', '.join(geo.ROW_IDS)}"
        )
    repeated_probes = series.table.index[series.table.index.duplicated()].unique().tolist()
    if repeated_probes and row_ids == "probe":
        raise InputFormatError(
            f"{matrices[0]}: {len(repeated_probes)} probe ids are listed more than once, "
            f"e.g. {repeated_probes[:5]}; a series matrix lists each probe once (a series "
            "whose rows are gene symbols needs geo.row_ids: symbol)"
        )
    samples, table_record, table_path = with_sample_table(raw, series.samples, mapping, accession)
    obs = geo_obs(samples, mapping, matrices[0] if table_path is None else f"{matrices[0]} + {table_path.name}")
    duplicated = obs.index[obs.index.duplicated()].unique().tolist()
    if duplicated:
        raise CohortError(f"{matrices[0]}: duplicate sample ids {duplicated[:5]}")
    obs, other_tissue, tissue_warnings = other_tissue_rule(obs, mapping, matrices[0])
    kept_samples = set(obs.index)
    table = series.table.loc[:, [c for c in series.table.columns if c in kept_samples]]
    table, missing_record, missing_warnings = resolve_missing(table, rules.missing, str(matrices[0].name))
    obs = obs.loc[obs.index.isin(table.columns)]
    table = table.loc[:, obs.index]
    platform = platform or series.series.get("platform_id", [""])[0]
    if row_ids == "symbol":
        annotation_path = None
        table, annotation = geo.symbol_rows(table)
    else:
        annotation_path = platform_annotation_file(raw, platform)
        annotation = geo.read_platform_annotation(annotation_path, platform)
    genes, collapse = geo.collapse_probes(table, annotation, rules.probe_collapse, rules.multi_symbol_probes)
    values = genes.to_numpy(dtype=float)
    scale = mapping.get("scale", "auto")
    transformed, detected, scale_rule = resolve_scale(
        values, scale, bool(mapping.get("trust_declared_scale", False)), _cohort_name(accession, label)
    )
    log_values = np.log2(np.clip(values, 0, None) + 1.0) if transformed else values
    source = matrices[0].name if table_path is None else f"{matrices[0].name} + {table_path.name}"
    _, endpoint_records = geo_survival_columns(samples.loc[obs.index], mapping, source)
    var = pd.DataFrame({"gene_id": pd.NA, "symbol": genes.index.astype(str), "biotype": pd.NA})
    entrez = annotation.explode("symbols").drop_duplicates("symbols").set_index("symbols")["entrez"]
    var["entrez"] = entrez.reindex(genes.index).fillna("").astype(str).to_numpy()
    record = provenance(
        "geo",
        release=series.series.get("last_update_date", ["unknown"])[0],
        simulated=simulated,
        urls=urls or [],
        inputs=_digests([matrices[0]] + [p for p in (annotation_path, table_path) if p is not None], raw),
        extra={
            "accession": accession,
            "platform": platform,
            "samples": len(obs),
            "row_ids": row_ids,
            "platform_annotation": annotation_path.name if annotation_path else SYMBOL_ROWS_ANNOTATION,
        },
    )
    warnings = series.characteristics_report.notes() + (geo.sample_table_notes(table_record) if table_record else [])
    warnings += tissue_warnings
    if row_ids == "symbol":
        warnings.append(
            f"the series' rows are gene symbols (geo.row_ids: symbol): no platform annotation used; "
            f"{collapse.probes_in} rows gave {collapse.genes_out} genes (repeated symbols collapsed by "
            f"harmonise.probe_collapse: {collapse.method})"
        )
    warnings += endpoint_notes(endpoint_records, source)
    if collapse.probes_matched_ignoring_case:
        warnings.append(
            f"{collapse.probes_matched_ignoring_case} probe ids matched the platform {platform} only "
            "ignoring case (as GEO matches them)"
        )
    if scale != "auto" and "CONTRADICTS" in scale_rule:
        warnings.append(f"scale: {scale_rule}")
    if detected == LOG2_RATIO:
        warnings.append(
            "the values are centred log2 ratios (two-colour array): used as log scale, not logged; the "
            "linear layer holds ratios to the reference channel, not intensities"
        )
    if transformed:
        layers = {"tpm": values.T, "log2": log_values.T}
        scales = {"tpm": "normalised intensity (linear)", "log2": "log2(intensity+1)"}
    elif detected == LOG2_RATIO:
        layers = {"tpm": (2.0**values).T, "log2": values.T}
        scales = {
            "tpm": "ratio to the reference channel (2**log2 ratio), not an intensity",
            "log2": "log2 ratio (two-colour array)",
        }
    else:
        layers = {"tpm": (2.0**values - 1.0).T, "log2": values.T}
        scales = {"tpm": "normalised intensity (linear)", "log2": "log2 intensity"}
    sample_report = {
        "samples_in": len(series.table.columns),
        "samples_out": len(obs),
        "warnings": missing_warnings + warnings,
        "missing_values": missing_record,
        "log_transformed": transformed,
        "declared_scale": scale,
        "detected_scale": detected,
        "scale_rule": scale_rule,
        "row_ids": row_ids,
        "other_tissue": other_tissue,
        **_characteristics_record(series.characteristics_report),
        **({"sample_table": table_record} if table_record else {}),
        "endpoints": {r["name"]: r for r in endpoint_records},
    }
    return build_anndata(
        obs=obs,
        var=var,
        layers=layers,
        layer_scales=scales,
        assay="microarray",
        provenance_record=record,
        harmonisation={"rules": rules.__dict__, **collapse.as_dict(), **sample_report},
    )


def _characteristics_record(report: geo.CharacteristicsReport) -> dict[str, Any]:
    return {
        "characteristics_key_spellings_merged": report.key_spellings_merged,
        "characteristics_repeated_keys_joined": report.repeated_keys_joined,
        "sample_fields_renamed": report.sample_fields_renamed,
    }


def load_geo_rnaseq_cohort(
    raw_dir: str | os.PathLike[str],
    accession: str,
    mapping: Mapping[str, Any],
    rules: HarmonisationRules,
    *,
    simulated: bool = False,
) -> ad.AnnData:
    """NCBI-generated raw counts (GeneID rows) + the series matrix's characteristics (its table may be empty)."""
    raw = Path(raw_dir)
    matrices = sorted(raw.glob(f"{accession}*_series_matrix.txt*"))
    if not matrices:
        raise InputFormatError(f"{raw}: no {accession}*_series_matrix.txt.gz file")
    parsed = [geo.read_series_matrix(m, require_table=False) for m in matrices]
    samples = pd.concat([p.samples for p in parsed])
    counts_path, annotation_path, species, build = ncbi_counts_files(raw, accession)
    table = geo.read_ncbi_counts(counts_path)
    annotation = geo.read_ncbi_annotation(annotation_path)
    shared = [c for c in table.columns if c in samples.index]
    if not shared:
        raise CohortError(f"{counts_path}: no column is a sample of {[m.name for m in matrices]}")
    samples, table_record, table_path = with_sample_table(raw, samples, mapping, accession)
    warnings = [note for p in parsed for note in p.characteristics_report.notes()]
    warnings += geo.sample_table_notes(table_record) if table_record else []
    not_in_series = [c for c in table.columns if c not in samples.index]
    without_counts = [s for s in samples.index if s not in set(table.columns)]
    if not_in_series:
        warnings.append(
            f"{len(not_in_series)} count columns of {counts_path.name} are not samples of the series "
            f"matrix and were left out: {', '.join(map(str, not_in_series[:10]))}"
        )
    if without_counts:
        warnings.append(
            f"{len(without_counts)} samples of the series matrix have no column in {counts_path.name} "
            f"and were left out: {', '.join(without_counts[:10])}"
        )
    obs, other_tissue, tissue_warnings = other_tissue_rule(
        geo_obs(samples.loc[shared], mapping, matrices[0]), mapping, matrices[0]
    )
    warnings += tissue_warnings
    shared = list(obs.index)
    _, endpoint_records = geo_survival_columns(samples.loc[shared], mapping, matrices[0].name)
    warnings += endpoint_notes(endpoint_records, matrices[0].name)
    info = annotation.reindex(table.index)
    genes = pd.DataFrame(
        {
            "gene_id": table.index.to_numpy(),
            "gene_name": info["Symbol"].fillna("").to_numpy(),
            "gene_type": info.get("GeneType", pd.Series("", index=info.index)).fillna("").to_numpy(),
        }
    )
    counts = table[shared].to_numpy(dtype=np.int64)
    if "Length" in info.columns and pd.to_numeric(info["Length"], errors="coerce").notna().all():
        length_kb = pd.to_numeric(info["Length"]).to_numpy()[:, None] / 1e3
        rate = counts / length_kb
        tpm, tpm_scale = rate / rate.sum(axis=0, keepdims=True) * 1e6, "TPM (NCBI gene lengths)"
    else:
        unknown = int(pd.to_numeric(info["Length"], errors="coerce").isna().sum()) if "Length" in info.columns else 0
        why = (
            f"Length is missing or not a number for {unknown} GeneIDs"
            if "Length" in info.columns
            else "the annotation has no Length column"
        )
        tpm, tpm_scale = counts / counts.sum(axis=0, keepdims=True) * 1e6, f"CPM ({why})"
    genes, counts, tpm, gene_report = harmonise_genes(genes, counts, tpm, rules)
    entrez = genes["gene_id"].astype(str)
    genes["entrez"] = entrez.to_numpy()
    ensembl = info["EnsemblGeneID"] if "EnsemblGeneID" in info.columns else pd.Series("", index=info.index)
    genes["gene_id"] = ensembl.reindex(entrez).fillna("").to_numpy()
    obs["library_size"] = counts.sum(axis=0)
    record = provenance(
        "geo",
        release=samples.get("last_update_date", pd.Series(["unknown"])).iloc[0],
        simulated=simulated,
        urls=_download_urls(raw),
        inputs=_digests([*matrices, counts_path, annotation_path, *([table_path] if table_path else [])], raw),
        extra={
            "accession": accession,
            "counts": f"NCBI-generated raw counts ({species} {build})",
            "genome_build": build,
            "species": species,
        },
    )
    return build_anndata(
        obs=obs,
        var=genes,
        layers={"counts": counts.T, "tpm": tpm.T, "log2": _log2_plus_one(tpm.T)},
        layer_scales={
            "counts": "raw counts (NCBI GEO RNA-seq pipeline)",
            "tpm": tpm_scale,
            "log2": f"log2({tpm_scale.split()[0]}+1)",
        },
        assay="rnaseq",
        provenance_record=record,
        harmonisation={
            "rules": rules.__dict__,
            **report_dict(gene_report),
            "warnings": warnings,
            "count_columns_not_in_series": [str(c) for c in not_in_series],
            "series_samples_without_counts": without_counts,
            "other_tissue": other_tissue,
            "endpoints": {r["name"]: r for r in endpoint_records},
            **({"sample_table": table_record} if table_record else {}),
        },
    )


def ncbi_counts_files(raw: Path, accession: str) -> tuple[Path, Path, str, str]:
    """The NCBI counts and annotation files of a raw folder, with the species and build their names give.

    Exactly one `{GSE}_raw_counts_*.tsv.gz` and one `*.annot.tsv.gz`; a non-human annotation, or counts and
    annotation of different builds, is an error naming the files.
    """
    counts = sorted(raw.glob(f"{accession}_raw_counts_*.tsv.gz"))
    annotations = sorted(raw.glob("*.annot.tsv.gz"))
    if len(counts) != 1 or len(annotations) != 1:
        raise InputFormatError(
            f"{raw}: expected one {accession}_raw_counts_<build>_NCBI.tsv.gz and one "
            f"<Species>.<build>.annot.tsv.gz, found {[p.name for p in counts + annotations]}"
        )
    species, build = geo.annotation_genome(annotations[0].name)
    if species != geo.HUMAN:
        raise ConfigError(
            f"{annotations[0]}: {accession}'s counts are for {species}; only human series can be analysed"
        )
    if geo.counts_build(counts[0].name, accession) != build:
        raise InputFormatError(f"{raw}: {counts[0].name} and {annotations[0].name} are of different genome builds")
    return counts[0], annotations[0], species, build


def harmonise_downloaded(
    cohort: Mapping[str, Any],
    raw_dir: str | os.PathLike[str],
    cdr_path: str | os.PathLike[str] | None = None,
    *,
    refetch: str | None = None,
    workers: int = 1,
) -> ad.AnnData:
    """harmonise_cohort; a raw file that fails to parse also says how to fetch it again (`refetch`, for the
    folders the download rule wrote: see download.refetch_hint)."""
    try:
        return harmonise_cohort(cohort, raw_dir, cdr_path, workers=workers)
    except InputFormatError as error:
        if not refetch:
            raise
        raise InputFormatError(f"{error}\n{refetch}") from error


def _load_gdc(
    cohort: Mapping[str, Any],
    raw_dir: str | os.PathLike[str],
    rules: HarmonisationRules,
    *,
    simulated: bool,
    urls: list[str],
    cdr: tuple[pd.DataFrame, str] | None,
    workers: int = 1,
) -> ad.AnnData:
    return load_gdc_cohort(raw_dir, rules, simulated=simulated, urls=urls, cdr=cdr, workers=workers)


def _load_xena(
    cohort: Mapping[str, Any],
    raw_dir: str | os.PathLike[str],
    rules: HarmonisationRules,
    *,
    simulated: bool,
    urls: list[str],
    cdr: tuple[pd.DataFrame, str] | None,
    workers: int = 1,
) -> ad.AnnData:
    return load_xena_cohort(raw_dir, cohort["project"], rules, simulated=simulated, cdr=cdr)


def _load_geo(
    cohort: Mapping[str, Any],
    raw_dir: str | os.PathLike[str],
    rules: HarmonisationRules,
    *,
    simulated: bool,
    urls: list[str],
    cdr: tuple[pd.DataFrame, str] | None,
    workers: int = 1,
) -> ad.AnnData:
    settings = cohort.get("geo", {})
    if settings.get("rnaseq_counts"):
        return load_geo_rnaseq_cohort(raw_dir, cohort["accession"], settings, rules, simulated=simulated)
    return load_geo_cohort(
        raw_dir, cohort["accession"], settings, rules, simulated=simulated, urls=urls, label=cohort.get("label")
    )


@dataclass(frozen=True)
class SourceAdapter:
    """One data source: `download` (in sources/<name>.py) writes the raw layout of a config `cohorts` entry,
    `load_cohort` reads that layout into the harmonised AnnData; `tcga_cdr`: its cohorts can take their survival
    from the TCGA-CDR table (`survival_source`)."""

    name: str
    download: Callable[[Client, Mapping[str, Any], Mapping[str, Any], str | os.PathLike[str]], Path]
    load_cohort: Callable[..., ad.AnnData]
    tcga_cdr: bool = False


# the one place a source is added (and config.schema.yaml's `source` enum, which a test keeps equal)
SOURCES: dict[str, SourceAdapter] = {
    "gdc": SourceAdapter("gdc", gdc.download, _load_gdc, tcga_cdr=True),
    "xena": SourceAdapter("xena", xena.download, _load_xena, tcga_cdr=True),
    "geo": SourceAdapter("geo", geo.download, _load_geo),
}


def source_adapter(cohort: Mapping[str, Any]) -> SourceAdapter:
    """The adapter of the cohort's `source`; ConfigError naming the source and the known ones otherwise."""
    source = cohort.get("source")
    if source not in SOURCES:
        raise ConfigError(
            f"cohort {cohort.get('project') or cohort.get('accession') or ''}: source {source!r} is not "
            f"one of {', '.join(SOURCES)}"
        )
    return SOURCES[source]


def harmonise_cohort(
    cohort: Mapping[str, Any],
    raw_dir: str | os.PathLike[str],
    cdr_path: str | os.PathLike[str] | None = None,
    *,
    workers: int = 1,
) -> ad.AnnData:
    """Load the cohort with its source's adapter; `cohort` is one validated entry of config `cohorts`.

    `cdr_path`: the TCGA-CDR table, used for OS/DSS/DFI/PFI when `uses_cdr(cohort)`; `workers`: threads for
    reading many per-sample files (GDC STAR files; the other sources have one matrix file).
    """
    adapter = source_adapter(cohort)
    rules = HarmonisationRules.from_config(cohort.get("harmonise"))
    simulated = bool(cohort.get("simulated", False))
    cdr = None
    if adapter.tcga_cdr and uses_cdr(cohort):
        if cdr_path is None:
            raise ConfigError(f"cohort {cohort.get('project')}: survival_source needs the TCGA-CDR table, none given")
        cdr = (xena.read_cdr(cdr_path, cohort["project"]), str(Path(cdr_path).name))
    return adapter.load_cohort(
        cohort, raw_dir, rules, simulated=simulated, urls=_download_urls(Path(raw_dir)), cdr=cdr, workers=workers
    )
