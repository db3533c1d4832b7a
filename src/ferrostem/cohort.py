"""Assemble one harmonised AnnData per cohort: samples x genes, layers counts / tpm / log2.

Every choice that changes the data (PAR_Y rows, Ensembl versions, duplicate symbols, several samples
per patient, clinical records that match no sample) follows an explicit rule from the config and is
recorded in `uns["harmonisation"]`, so a reader of the .h5ad knows what was done.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .config import settings_from_block
from .endpoints import CDR_ENDPOINTS, survival_column_names
from .errors import CohortError, ConfigError

if TYPE_CHECKING:  # anndata costs 2 s to import: only the function that builds the cohort imports it
    import anndata as ad

log = logging.getLogger(__name__)

SURVIVAL_COLUMNS = [c for e in CDR_ENDPOINTS for c in (e, f"{e}.time")]
OBS_COLUMNS = [
    "sample_id",
    "patient_id",
    "sample_type",
    "sample_type_code",
    "tissue",
    "age",
    "sex",
    "stage",
    "grade",
    *SURVIVAL_COLUMNS,
]
_VERSION = re.compile(r"^(ENS[A-Z]*G\d+)\.\d+(_PAR_Y)?$")


@dataclass
class MissingValueRule:
    """Missing values of an expression table (config key `harmonise.missing`).

    Rows (probes) missing in more than `max_fraction` of the samples are dropped, then samples missing
    more than `max_fraction` of the remaining rows; what is still missing is filled with the row's median
    over the kept samples (`impute: median`), or every row with a missing value is dropped (`impute: drop`).
    """

    max_fraction: float = 0.2
    impute: Literal["median", "drop"] = "median"

    @classmethod
    def from_config(cls, values: Mapping[str, Any] | None) -> MissingValueRule:
        return settings_from_block(cls, values, "harmonise.missing")

    def describe(self) -> str:
        then = (
            "the rest filled with the probe's median over the kept samples"
            if self.impute == "median"
            else "then every probe with a missing value dropped"
        )
        return f"probes, then samples, with more than {self.max_fraction:.0%} missing values dropped; {then}"


@dataclass
class HarmonisationRules:
    """How ambiguous genes and samples are resolved (config key `harmonise`)."""

    par_y: Literal["drop", "sum"] = "drop"
    duplicate_symbols: Literal["max_mean", "sum"] = "max_mean"
    one_sample_per_patient: bool = True
    sample_types: list[str] = field(default_factory=lambda: ["Primary Tumor", "Solid Tissue Normal"])
    clinical_mismatch: Literal["warn", "error"] = "warn"
    probe_collapse: Literal["max_mean", "mean"] = "max_mean"
    multi_symbol_probes: Literal["drop", "split"] = "drop"
    missing: MissingValueRule = field(default_factory=MissingValueRule)

    def __post_init__(self) -> None:
        if not isinstance(self.missing, MissingValueRule):
            self.missing = MissingValueRule.from_config(self.missing)

    @classmethod
    def from_config(cls, values: Mapping[str, Any] | None) -> HarmonisationRules:
        return settings_from_block(cls, values, "harmonise")


@dataclass
class GeneReport:
    genes_in: int
    par_y_rows: int
    par_y_rule: str
    ensembl_duplicates_summed: int
    symbols_duplicated: list[str]
    duplicate_symbol_rule: str
    genes_without_symbol: int
    genes_out: int


def strip_ensembl_version(gene_id: str) -> str:
    """ENSG00000000003.15 -> ENSG00000000003; keeps the `_PAR_Y` tag so PAR copies stay distinct."""
    match = _VERSION.match(gene_id)
    if not match:
        return gene_id
    return match.group(1) + (match.group(2) or "")


def harmonise_genes(
    genes: pd.DataFrame, counts: np.ndarray, tpm: np.ndarray, rules: HarmonisationRules
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, GeneReport]:
    """Genes x samples matrices keyed by versioned Ensembl IDs -> one row per unique symbol.

    1. `_PAR_Y` copies (GENCODE lists PAR genes twice; GDC counts them on X) are dropped or summed
       into their X copy; 2. Ensembl versions are removed and IDs that then coincide are summed;
    3. a symbol carried by several Ensembl IDs keeps the ID with the highest mean count
       (`max_mean`) or the sum of them (`sum`). Genes without a symbol keep their Ensembl ID as name.
    """
    ids = genes["gene_id"].astype(str).map(strip_ensembl_version)
    is_par = ids.str.endswith("_PAR_Y").to_numpy()
    base_ids = ids.str.replace("_PAR_Y", "", regex=False)
    if rules.par_y == "drop":
        keep = ~is_par
    elif rules.par_y == "sum":
        keep = np.ones(len(ids), dtype=bool)
    else:
        raise ConfigError(f"harmonise.par_y {rules.par_y!r} is not one of drop, sum")
    frame = pd.DataFrame(
        {
            "gene_id": base_ids[keep].to_numpy(),
            "symbol": genes["gene_name"].astype(str).replace({"": np.nan, "nan": np.nan})[keep].to_numpy(),
            "biotype": genes["gene_type"].astype(str)[keep].to_numpy(),
        }
    )
    # the rows of `counts` and `tpm` behind `frame`: the matrices (200 MB each at TCGA size) are copied once, at
    # the end, unless rows are summed
    rows = np.flatnonzero(keep)
    n_ensembl_dup = int(frame["gene_id"].duplicated().sum())
    if n_ensembl_dup:
        codes, uniques = pd.factorize(frame["gene_id"])
        counts = _sum_rows(_take_rows(counts, rows), codes, len(uniques))
        tpm = _sum_rows(_take_rows(tpm, rows), codes, len(uniques))
        rows = np.arange(len(uniques))
        frame = frame.drop_duplicates("gene_id").reset_index(drop=True)
    no_symbol = frame["symbol"].isna()
    frame.loc[no_symbol, "symbol"] = frame.loc[no_symbol, "gene_id"]
    duplicated = sorted(frame.loc[frame["symbol"].duplicated(keep=False), "symbol"].unique())
    if duplicated:
        if rules.duplicate_symbols == "max_mean":
            mean = counts.mean(axis=1)[rows]  # per row, so the same numbers as the mean of the selected rows
            order = pd.DataFrame({"symbol": frame["symbol"], "mean": mean, "row": np.arange(len(frame))})
            chosen = np.sort(
                order.sort_values(["symbol", "mean"], ascending=[True, False])
                .drop_duplicates("symbol")["row"]
                .to_numpy()
            )
            frame, rows = frame.iloc[chosen].reset_index(drop=True), rows[chosen]
        elif rules.duplicate_symbols == "sum":
            codes, uniques = pd.factorize(frame["symbol"])
            counts = _sum_rows(_take_rows(counts, rows), codes, len(uniques))
            tpm = _sum_rows(_take_rows(tpm, rows), codes, len(uniques))
            rows = np.arange(len(uniques))
            first = frame.drop_duplicates("symbol").reset_index(drop=True)
            merged_ids = frame.groupby("symbol", sort=False)["gene_id"].agg(";".join)
            first["gene_id"] = merged_ids.reindex(first["symbol"]).to_numpy()
            frame = first
        else:
            raise ConfigError(f"harmonise.duplicate_symbols {rules.duplicate_symbols!r} is not one of max_mean, sum")
    report = GeneReport(
        genes_in=len(genes),
        par_y_rows=int(is_par.sum()),
        par_y_rule=rules.par_y,
        ensembl_duplicates_summed=n_ensembl_dup,
        symbols_duplicated=duplicated,
        duplicate_symbol_rule=rules.duplicate_symbols,
        genes_without_symbol=int(no_symbol.sum()),
        genes_out=len(frame),
    )
    return frame, _take_rows(counts, rows), _take_rows(tpm, rows), report


def _take_rows(matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """matrix[rows] (genes x samples); no copy when `rows` are all rows in order. A transposed view (STAR merge:
    samples are contiguous underneath) stays one, so that the cohort's samples x genes layers are C-ordered."""
    if len(rows) == matrix.shape[0] and np.array_equal(rows, np.arange(matrix.shape[0])):
        return matrix
    if matrix.flags.f_contiguous and not matrix.flags.c_contiguous:
        return matrix.T[:, rows].T
    return matrix[rows]


def _sum_rows(matrix: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, matrix.shape[1]), dtype=matrix.dtype)
    np.add.at(out, codes, matrix)
    return out


def resolve_missing(
    table: pd.DataFrame, rule: MissingValueRule, source: str
) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """Apply `rule` to a probes x samples table with NaN for missing values (see MissingValueRule).

    Returns the complete table, the record for `uns["harmonisation"]["missing_values"]` (counts and ids)
    and the warnings to show; an input without missing values is returned unchanged.
    """
    if not 0 <= rule.max_fraction < 1:
        raise ConfigError(f"harmonise.missing.max_fraction = {rule.max_fraction!r} must be at least 0 and below 1")
    if rule.impute not in {"median", "drop"}:
        raise ConfigError(f"harmonise.missing.impute {rule.impute!r} is not one of median, drop")
    missing = table.isna()
    record: dict[str, Any] = {
        "rule": rule.describe(),
        "values_missing": int(missing.to_numpy().sum()),
        "probes_dropped": 0,
        "probes_dropped_ids": [],
        "samples_dropped": [],
        "values_imputed": 0,
        "probes_imputed": 0,
    }
    if not record["values_missing"]:
        return table, record, []
    row_fraction = missing.mean(axis=1)
    too_sparse_rows = row_fraction.index[row_fraction > rule.max_fraction]
    kept = table.drop(index=too_sparse_rows)
    sample_fraction = kept.isna().mean(axis=0)
    too_sparse_samples = [str(s) for s in sample_fraction.index[sample_fraction > rule.max_fraction]]
    kept = kept.drop(columns=too_sparse_samples)
    incomplete = kept.isna().any(axis=1)
    dropped_rows = [str(r) for r in too_sparse_rows]
    if rule.impute == "drop":
        dropped_rows += [str(r) for r in kept.index[incomplete]]
        kept = kept.loc[~incomplete]
    else:
        medians = kept.median(axis=1, skipna=True)
        unmeasured = medians.isna()  # missing in every kept sample: nothing to impute from
        dropped_rows += [str(r) for r in kept.index[unmeasured]]
        kept, medians, incomplete = kept.loc[~unmeasured], medians[~unmeasured], incomplete[~unmeasured]
        record["values_imputed"] = int(kept.isna().to_numpy().sum())
        record["probes_imputed"] = int(incomplete.sum())
        kept = kept.T.fillna(medians).T
    if kept.empty:
        raise CohortError(
            f"{source}: no complete probe and sample left after the missing-value rule "
            f"({rule.describe()}); {record['values_missing']} of {table.size} values are missing. "
            "Raise harmonise.missing.max_fraction or check the file"
        )
    record["probes_dropped"] = len(dropped_rows)
    record["probes_dropped_ids"] = dropped_rows[:50]
    record["samples_dropped"] = too_sparse_samples
    parts = []
    if dropped_rows:
        parts.append(f"{len(dropped_rows)} probes dropped (e.g. {', '.join(dropped_rows[:5])})")
    if too_sparse_samples:
        parts.append(f"{len(too_sparse_samples)} samples dropped ({', '.join(too_sparse_samples[:10])})")
    if record["values_imputed"]:
        parts.append(
            f"{record['values_imputed']} values in {record['probes_imputed']} probes filled with the probe's median"
        )
    warning = (
        f"{record['values_missing']} missing values in {source}: "
        + "; ".join(parts)
        + f" (harmonise.missing: {rule.describe()})"
    )
    return kept, record, [warning]


@dataclass
class SampleReport:
    samples_in: int
    excluded_sample_types: dict[str, int]
    duplicates_dropped: list[str]
    duplicate_rule: str
    clinical_without_samples: list[str]
    samples_without_clinical: list[str]
    samples_out: int
    warnings: list[str]


def select_samples(sheet: pd.DataFrame, rules: HarmonisationRules) -> tuple[pd.DataFrame, dict[str, int], list[str]]:
    """Keep configured sample types and resolve several samples or aliquots per patient.

    `sheet` has one row per expression file (any index) with sample_id, patient_id, sample_type,
    sample_type_code, vial and depth. Several files of one sample (aliquots) keep the deepest library;
    with `one_sample_per_patient`, each patient keeps one sample per sample type: the first vial
    (A before B), then the deepest library, as most TCGA analyses use one primary tumour per patient.
    Returns the kept rows, the excluded sample-type counts and the dropped sample/file ids.
    """
    allowed = sheet["sample_type"].isin(rules.sample_types)
    excluded = {str(k): int(v) for k, v in sheet.loc[~allowed, "sample_type"].value_counts().items()}
    kept = sheet.loc[allowed]
    group = ["patient_id", "sample_type_code"] if rules.one_sample_per_patient else ["sample_id"]
    ordered = kept.sort_values(
        ["patient_id", "sample_type_code", "vial", "depth"], ascending=[True, True, True, False], kind="stable"
    )
    first = ordered.drop_duplicates(group)
    dropped_rows = kept.index.difference(first.index)
    dropped = [f"{kept.at[i, 'sample_id']} ({i})" if kept.at[i, "sample_id"] != i else str(i) for i in dropped_rows]
    return kept.loc[kept.index.isin(first.index)], excluded, sorted(dropped)


def join_clinical(
    sheet: pd.DataFrame, clinical: pd.DataFrame, rules: HarmonisationRules
) -> tuple[pd.DataFrame, list[str], list[str], list[str]]:
    """Attach patient-level clinical columns to samples; name every record that matches nothing."""
    patients = set(sheet["patient_id"])
    orphans = sorted(set(clinical.index) - patients)
    missing = sorted(sheet.index[~sheet["patient_id"].isin(clinical.index)])
    warnings = []
    if orphans:
        warnings.append(
            f"{len(orphans)} clinical records match no expression sample: {', '.join(orphans[:10])}"
            + (" ..." if len(orphans) > 10 else "")
        )
    if missing:
        warnings.append(
            f"{len(missing)} samples have no clinical record: {', '.join(missing[:10])}"
            + (" ..." if len(missing) > 10 else "")
        )
    if warnings and rules.clinical_mismatch == "error":
        raise CohortError("; ".join(warnings))
    joined = sheet.join(clinical.drop(columns=[c for c in clinical.columns if c in sheet.columns]), on="patient_id")
    return joined, orphans, missing, warnings


def standard_obs(obs: pd.DataFrame) -> pd.DataFrame:
    """Order columns, add missing standard ones as NA, and make strings h5ad-safe."""
    obs = obs.copy()
    for column in OBS_COLUMNS:
        if column not in obs.columns:
            obs[column] = np.nan if column in SURVIVAL_COLUMNS or column == "age" else pd.NA
    for column in dict.fromkeys(SURVIVAL_COLUMNS + survival_column_names(obs) + ["age"]):
        obs[column] = pd.to_numeric(obs[column], errors="coerce").astype(float)
    rest = [c for c in obs.columns if c not in OBS_COLUMNS]
    obs = obs[OBS_COLUMNS + rest]
    for column in obs.columns:
        if obs[column].dtype == object or isinstance(obs[column].dtype, pd.StringDtype):
            obs[column] = obs[column].astype("string").astype(object).where(obs[column].notna(), None)
            obs[column] = pd.Categorical(obs[column])
    obs.index = obs.index.astype(str)
    obs = obs.rename_axis(None)
    return obs


def software_versions() -> dict[str, str]:
    names = [
        "ferrostem",
        "anndata",
        "numpy",
        "pandas",
        "polars",
        "snakemake",
        "pydeseq2",
        "gseapy",
        "lifelines",
        "scikit-survival",
        "scikit-learn",
        "inmoose",
        "statsmodels",
        "matplotlib",
    ]
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def provenance(
    source: str,
    *,
    release: str,
    inputs: Mapping[str, str],
    urls: list[str],
    simulated: bool,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Where the data came from: source, release, input checksums, retrieval time, software versions."""
    return {
        "source": source,
        "release": release,
        "simulated": simulated,
        "urls": list(urls),
        "input_sha256": dict(inputs),
        "assembled_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "software": software_versions(),
        **(dict(extra) if extra else {}),
    }


def _h5ad_safe(value: Any) -> Any:
    """anndata stores nested dicts of strings, numbers and lists; JSON-encode what it cannot."""
    if is_dataclass(value) and not isinstance(value, type):
        return _h5ad_safe(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _h5ad_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_h5ad_safe(v) for v in value]
        if all(isinstance(v, str) for v in items) or all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in items
        ):
            return items if items else []
        return json.dumps(items, default=str)
    if value is None:
        return ""
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return value


def _float32_layer(name: str, values: np.ndarray, samples: pd.Index, genes: pd.Index) -> np.ndarray:
    """A samples x genes layer as float32; an infinite value (overflow of 2**x or of float32) is an error."""
    with np.errstate(over="ignore"):
        stored = np.asarray(values, dtype=np.float32)
    infinite = np.isinf(stored)
    if infinite.any():
        row, column = np.argwhere(infinite)[0]
        original = float(np.asarray(values, dtype=np.float64)[row, column])
        raise CohortError(
            f"layer {name!r}: {int(infinite.sum())} values are infinite or beyond float32 (3.4e38), "
            f"e.g. {original:.6g} "
            f"for sample {samples[row]}, gene {genes[column]}; a log2 value this large means linear data read as "
            "log2 (check the declared scale)"
        )
    return stored


def build_anndata(
    obs: pd.DataFrame,
    var: pd.DataFrame,
    layers: Mapping[str, np.ndarray],
    layer_scales: Mapping[str, str],
    assay: Literal["rnaseq", "microarray"],
    provenance_record: Mapping[str, Any],
    harmonisation: Mapping[str, Any],
) -> ad.AnnData:
    """The cohort object every later stage reads. `X` is the `log2` layer; `layers` are samples x genes."""
    if "log2" not in layers:
        raise CohortError("a cohort needs a log2 layer")
    if obs.index.duplicated().any():
        raise CohortError(f"duplicate sample ids: {sorted(obs.index[obs.index.duplicated()].unique())[:5]}")
    var = var.copy()
    for column in var.columns:
        if not pd.api.types.is_numeric_dtype(var[column]):
            var[column] = var[column].astype(object).where(var[column].notna(), "").astype(str)
    var.index = pd.Index(var["symbol"].astype(str), name=None)
    if var.index.duplicated().any():
        raise CohortError(
            f"duplicate gene symbols after harmonisation: {sorted(var.index[var.index.duplicated()])[:5]}"
        )
    stored = {
        name: (np.asarray(m, dtype=np.int64) if name == "counts" else _float32_layer(name, m, obs.index, var.index))
        for name, m in layers.items()
    }
    import anndata as ad

    adata = ad.AnnData(X=stored["log2"].copy(), obs=standard_obs(obs), var=var, layers=stored)
    adata.uns["assay"] = assay
    adata.uns["layer_scales"] = dict(layer_scales)
    adata.uns["provenance"] = _h5ad_safe(provenance_record)
    adata.uns["harmonisation"] = _h5ad_safe(harmonisation)
    return adata


def uns_to_python(value: Any) -> Any:
    """Values read back from an .h5ad `uns` (numpy arrays and scalars) as plain Python objects."""
    if isinstance(value, Mapping):
        return {str(k): uns_to_python(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [uns_to_python(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [uns_to_python(v) for v in value]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return value


def report_dict(*reports: Any) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for report in reports:
        merged.update(asdict(report) if hasattr(report, "__dataclass_fields__") else dict(report))
    return merged


def rule_warnings(rules: Mapping[str, Mapping[str, Any]], informational: Collection[str] = ()) -> list[str]:
    """One warning per applied data rule ({rule, count, ids} records, e.g. `clinical_rules`), naming up to ten
    ids; `informational` rules (routine choices) are listed in the report's rules table only."""
    lines = []
    for name, record in rules.items():
        if name in informational or not record.get("count"):
            continue
        ids = list(record.get("ids", []))
        lines.append(f"{record['count']} x {record['rule']}: {', '.join(ids[:10])}" + (" ..." if len(ids) > 10 else ""))
    return lines
