"""Pan-cancer tables from the per-cohort outputs (de.tsv, survival.tsv, scores_annotated.tsv, score_info.tsv).

Nothing is recomputed per cohort: each function reads what the cohort's own jobs wrote and lays it out
across cancers. A cohort without a tumour-vs-normal table (no normal samples, so no comparison declared) is
kept, with a status saying so, rather than dropped: an empty column is a finding, a missing one a hiding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import InputFormatError
from .risk_models import spearman_table
from .survival_stage import cross_cohort_tables

SCORE_CATEGORIES = ("ferroptosis", "stemness", "immune cell", "immune response")
NO_NORMALS = "no tumour-vs-normal comparison (no normal samples)"
DE_COLUMNS = ("log2FC", "padj")
SURVIVAL_COLUMNS = ("score", "endpoint", "coef", "se", "hr", "hr_lower", "hr_upper", "p_wald", "fdr", "category")


def _require(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputFormatError(
            f"{what}: column(s) {', '.join(missing)} missing (has: {', '.join(map(str, table.columns))})"
        )


def core_regulator_changes(
    de_tables: Mapping[str, pd.DataFrame | None], genes: Sequence[str], *, alpha: float
) -> pd.DataFrame:
    """Per cancer and core regulator: tumour-vs-normal log2FC and FDR from the cohort's DE table.

    `de_tables` maps cancer -> its de.tsv (symbol or gene column, log2FC, padj), or None when the cohort has no
    tumour-vs-normal comparison; such a cancer gets one row per gene with status NO_NORMALS. A gene absent from
    a table gets status 'not measured'.
    """
    rows = []
    for cancer, table in de_tables.items():
        if table is None:
            rows += [
                {
                    "cancer": cancer,
                    "gene": g,
                    "log2fc": np.nan,
                    "fdr": np.nan,
                    "significant": False,
                    "status": NO_NORMALS,
                }
                for g in genes
            ]
            continue
        _require(table, DE_COLUMNS, f"{cancer} de.tsv")
        symbol = "symbol" if "symbol" in table.columns else "gene"
        _require(table, [symbol], f"{cancer} de.tsv")
        by_gene = table.dropna(subset=[symbol]).drop_duplicates(symbol).set_index(symbol)
        for g in genes:
            if g not in by_gene.index:
                rows.append(
                    {
                        "cancer": cancer,
                        "gene": g,
                        "log2fc": np.nan,
                        "fdr": np.nan,
                        "significant": False,
                        "status": "not measured",
                    }
                )
                continue
            fc, fdr = float(by_gene.at[g, "log2FC"]), float(by_gene.at[g, "padj"])
            rows.append(
                {
                    "cancer": cancer,
                    "gene": g,
                    "log2fc": fc,
                    "fdr": fdr,
                    "significant": bool(np.isfinite(fdr) and fdr < alpha),
                    "status": "tested",
                }
            )
    return pd.DataFrame(rows, columns=["cancer", "gene", "log2fc", "fdr", "significant", "status"])


def score_hazard_ratios(
    survival_tables: Mapping[str, pd.DataFrame], categories: Sequence[str] = SCORE_CATEGORIES
) -> pd.DataFrame:
    """Per cancer, endpoint and score of the given categories: the univariable HR per SD (survival.tsv)."""
    frames = []
    for cancer, table in survival_tables.items():
        if not len(table):
            continue
        _require(table, SURVIVAL_COLUMNS, f"{cancer} survival.tsv")
        chosen = table[table["category"].isin(categories)]
        frames.append(chosen[list(SURVIVAL_COLUMNS)].assign(cancer=cancer))
    columns = ["cancer", *SURVIVAL_COLUMNS]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def stemness_correlations(
    scores: Mapping[str, pd.DataFrame], infos: Mapping[str, pd.DataFrame], *, stemness_index: str
) -> pd.DataFrame:
    """Per cancer: Spearman correlation, over tumours, of the stemness index with every ferroptosis score.

    `scores` are the cohorts' scores_annotated.tsv (sample_id index, a tissue column, score columns); `infos`
    their score_info.tsv (score, category). BH-FDR within each cancer. A cancer whose scores lack the index
    gets one row with status naming it (e.g. mRNAsi left out because its resource was not fetched).
    """
    rows = []
    for cancer, table in scores.items():
        info = infos[cancer]
        _require(table, ["tissue"], f"{cancer} scores_annotated.tsv")
        _require(info, ["score", "category"], f"{cancer} score_info.tsv")
        if stemness_index not in table.columns:
            rows.append(
                pd.DataFrame(
                    [
                        {
                            "cancer": cancer,
                            "score": "",
                            "n": 0,
                            "rho": np.nan,
                            "p": np.nan,
                            "fdr": np.nan,
                            "status": f"{stemness_index} not scored in this cohort",
                        }
                    ]
                )
            )
            continue
        ferroptosis = [s for s in info.loc[info["category"] == "ferroptosis", "score"] if s in table.columns]
        tumours = table[table["tissue"].astype(str) == "tumor"]
        corr = spearman_table(tumours[[stemness_index]], tumours[ferroptosis])
        rows.append(corr.drop(columns="feature").assign(cancer=cancer, status="tested"))
    columns = ["cancer", "score", "n", "rho", "p", "fdr", "status"]
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.concat(rows, ignore_index=True)[columns]


def meta_across_cancers(hazards: pd.DataFrame) -> pd.DataFrame:
    """DerSimonian-Laird pooled HR per score and endpoint across cancers (the cross-cohort computation)."""
    if hazards.empty:
        return pd.DataFrame()
    tables = {cancer: group.drop(columns="cancer") for cancer, group in hazards.groupby("cancer", sort=False)}
    meta = cross_cohort_tables(tables)
    if meta.empty:
        return meta
    category = hazards.drop_duplicates("score").set_index("score")["category"]
    meta.insert(2, "category", meta["score"].map(category))
    return meta.rename(columns={"cohorts": "cancers"})
