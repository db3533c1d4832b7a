"""The survival stage of one cohort, analysis only: every score, gene of interest and risk model on every endpoint.

`cohort_survival` returns a `CohortSurvival`; `survival_report` turns it into report sections and
`survival_figures` draws it. The statistics themselves are in `survival` (and `models` for the risk scores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .endpoints import requested_endpoints
from .errors import InputFormatError
from .risk_models import AppliedScore, apply_risk_score, log2_expression
from .survival import EndpointResult, SurvivalSettings, analyse_endpoint, available_endpoints, random_effects_meta

RESULT_COLUMNS = [
    "score",
    "category",
    "n",
    "events",
    "hr",
    "hr_lower",
    "hr_upper",
    "p_wald",
    "p_lr",
    "fdr",
    "c_index",
    "direction",
    "km_median_p",
    "km_tertile_p",
    "cutpoint",
    "cutpoint_p",
    "cutpoint_p_uncorrected",
    "mv_hr",
    "mv_hr_lower",
    "mv_hr_upper",
    "mv_p",
    "ph_violation",
    "not_analysed",
]
GENE_PREFIX = "gene__"  # score name of a gene of interest's expression


def read_scores(scores_path: str, info_path: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """scores.tsv (sample_id + numeric columns) and score_info.tsv (score, category, ...), checked."""
    scores = pd.read_csv(scores_path, sep="\t")
    if scores.columns[0] != "sample_id":
        raise InputFormatError(f"{scores_path}: the first column must be sample_id, not {scores.columns[0]!r}")
    scores = scores.set_index("sample_id")
    for column in scores.columns:
        converted = pd.to_numeric(scores[column], errors="coerce")
        bad = converted.isna() & scores[column].notna()
        if bad.any():
            raise InputFormatError(
                f"{scores_path}: score {column!r} is not numeric for sample {bad.idxmax()!r} "
                f"({scores.at[bad.idxmax(), column]!r})"
            )
        scores[column] = converted
    info = pd.read_csv(info_path, sep="\t")
    for needed in ["score", "category"]:
        if needed not in info.columns:
            raise InputFormatError(f"{info_path}: no {needed!r} column")
    info = info.set_index("score")
    missing = [s for s in scores.columns if s not in info.index]
    if missing:
        raise InputFormatError(f"{info_path}: no row for score(s) {', '.join(missing[:5])} of {scores_path}")
    return scores, info


def tumour_samples(obs: pd.DataFrame) -> tuple[pd.Index, list[str]]:
    """Tumour samples, one per patient (the first), for survival."""
    tumours = obs[obs["tissue"].astype(str) == "tumor"]
    notes = []
    if "patient_id" in tumours:
        duplicated = tumours["patient_id"].duplicated(keep="first")
        if duplicated.any():
            notes.append(
                f"{int(duplicated.sum())} extra tumour samples of the same patients left out of survival "
                "(first sample per patient kept)"
            )
        tumours = tumours[~duplicated]
    return tumours.index, notes


def results_table(result: EndpointResult, info: pd.DataFrame) -> pd.DataFrame:
    """One endpoint's per-score table with each score's category from score_info."""
    table = result.table.copy()
    table["category"] = table["score"].map(info["category"]).fillna("")
    return table


def fitted_risk(result: EndpointResult, score: str) -> np.ndarray:
    """The score in the direction of its fitted Cox coefficient: the linear predictor whose C and AUC are reported."""
    row = result.table.set_index("score").loc[score]
    sign = -1.0 if row.get("direction", "") == "higher score, lower risk" else 1.0
    return sign * result.frame[score].to_numpy()


@dataclass
class AppliedModel:
    """A risk model applied unchanged to this cohort and analysed on its training endpoint."""

    entry: dict[str, Any]  # the model's catalogue entry (models.read_entry)
    cv: pd.DataFrame | None  # its cross-validation table, when trained by this workflow
    applied: AppliedScore
    result: EndpointResult


@dataclass
class CohortSurvival:
    cohort: str
    results: list[EndpointResult]  # one per endpoint analysed
    table: pd.DataFrame  # every score x endpoint
    terms: pd.DataFrame  # multivariable model terms
    scores: pd.DataFrame  # the scores analysed (tumours, raw scale), genes and risk models included
    info: pd.DataFrame  # score_info, with the genes of interest and the derived risk scores added
    models: list[AppliedModel]  # risk models whose endpoint the cohort has
    notes: list[str]  # what was left out and why, for the report

    @property
    def immune_scores(self) -> pd.DataFrame:
        """The scores without the genes of interest (their expression is not an immune score)."""
        return self.scores.drop(columns=[c for c in self.scores if c.startswith(GENE_PREFIX)])


def add_genes_of_interest(
    adata, tumours: pd.Index, raw: pd.DataFrame, info: pd.DataFrame, genes: list[str]
) -> list[str]:
    """Each measured gene of interest as a score `gene__<GENE>` (log2 expression) in `raw` and `info`; notes for
    the genes the cohort lacks."""
    present = [g for g in genes if g in adata.var_names]
    if present:
        expression = log2_expression(adata[adata.obs_names.isin(tumours)], present).loc[tumours]
        for gene in present:
            raw[f"{GENE_PREFIX}{gene}"] = expression[gene]
            info.loc[f"{GENE_PREFIX}{gene}", "category"] = "gene of interest"
    return [f"gene of interest {g}: not measured in this cohort" for g in genes if g not in adata.var_names]


def apply_models(
    adata,
    tumours: pd.Index,
    raw: pd.DataFrame,
    info: pd.DataFrame,
    models: list[tuple[dict[str, Any], pd.DataFrame | None]],
) -> list[tuple[dict[str, Any], Any, AppliedScore]]:
    """Each risk model's score (weights unchanged) as a column of `raw`, category 'risk score (derived)'."""
    applied_models = []
    for entry, cv in models:
        applied = apply_risk_score(
            entry, log2_expression(adata[adata.obs_names.isin(tumours)], entry["genes"]).loc[tumours]
        )
        raw[entry["id"]] = applied.score
        info.loc[entry["id"], "category"] = "risk score (derived)"
        applied_models.append((entry, cv, applied))
    return applied_models


def cohort_survival(
    adata,
    scores: pd.DataFrame,
    info: pd.DataFrame,
    settings: SurvivalSettings,
    *,
    cohort: str,
    models: list[tuple[dict[str, Any], pd.DataFrame | None]],
) -> CohortSurvival:
    """Every survival analysis of one cohort: scores, genes of interest and risk models, on every endpoint."""
    tumours, notes = tumour_samples(adata.obs)
    obs = adata.obs.loc[tumours]
    raw = scores.reindex(tumours)
    unscored = raw.isna().all(axis=1) if raw.shape[1] else pd.Series(False, index=tumours)
    if unscored.any():
        notes.append(f"{int(unscored.sum())} tumour samples have no row in scores.tsv")
    info = info.copy()
    notes.extend(add_genes_of_interest(adata, tumours, raw, info, list(settings.genes_of_interest)))
    applied_models = apply_models(adata, tumours, raw, info, models)
    endpoints, endpoint_notes = available_endpoints(obs, requested_endpoints(settings.endpoints, obs))
    notes.extend(endpoint_notes)
    if not endpoints:
        notes.append("no survival endpoint with data in this cohort: no survival analysis")
    results = [analyse_endpoint(obs, raw, endpoint, settings) for endpoint in endpoints]
    tables = [results_table(r, info) for r in results if not r.table.empty]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["endpoint", *RESULT_COLUMNS])
    terms = (
        pd.concat(
            [t.assign(endpoint=r.endpoint, score=s) for r in results for s, t in r.multivariable_terms.items()],
            ignore_index=True,
        )
        if any(r.multivariable_terms for r in results)
        else pd.DataFrame()
    )
    analysed_models = []
    for entry, cv, applied in applied_models:
        endpoint = entry.get("training", {}).get("endpoint", "OS")
        if endpoint not in endpoints:
            notes.append(f"risk model {entry['id']}: endpoint {endpoint} not available in {cohort}")
            continue
        analysed_models.append(
            AppliedModel(entry, cv, applied, analyse_endpoint(obs, raw[[entry["id"]]], endpoint, settings))
        )
    return CohortSurvival(cohort, results, table, terms, raw, info, analysed_models, notes)


def cross_cohort_tables(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per score and endpoint: HR in each cohort, direction agreement and DerSimonian-Laird pooled HR."""
    long = pd.concat([t.assign(cohort=c) for c, t in tables.items() if len(t)], ignore_index=True)
    rows = []
    for (endpoint, score), group in long.groupby(["endpoint", "score"]):
        group = group.dropna(subset=["coef", "se"])
        if len(group) < 2:
            continue
        meta = random_effects_meta(group["coef"].to_numpy(), group["se"].to_numpy())
        row: dict[str, Any] = {"endpoint": endpoint, "score": score, "cohorts": len(group)}
        for _, r in group.iterrows():
            row[f"hr_{r['cohort']}"] = r["hr"]
            row[f"p_{r['cohort']}"] = r["p_wald"]
        signs = np.sign(group["coef"])
        row["same_direction"] = bool((signs == signs.iloc[0]).all())
        row.update(
            {
                "meta_hr": meta.hr,
                "meta_hr_lower": meta.hr_lower,
                "meta_hr_upper": meta.hr_upper,
                "meta_p": meta.p,
                "tau2": meta.tau2,
                "i2": meta.i2,
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)
