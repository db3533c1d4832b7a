"""The pan-cancer page: heatmaps and tables of the pancancer tables, as one report Section."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .pancancer import NO_NORMALS
from .report import Section, table_html
from .survival_figures import forest_plot, heatmap

FDR_MARK = "*"


def _cancer_labels(changes: pd.DataFrame) -> dict[str, str]:
    """Column labels: a cancer without normals says so on its column."""
    without = set(changes.loc[changes["status"] == NO_NORMALS, "cancer"])
    return {c: f"{c} (no normals)" if c in without else c for c in changes["cancer"].unique()}


def regulator_heatmap(changes: pd.DataFrame, alpha: float) -> str:
    labels = _cancer_labels(changes)
    matrix = changes.pivot(index="gene", columns="cancer", values="log2fc")
    marks = changes.assign(mark=np.where(changes["significant"], FDR_MARK, "")).pivot(
        index="gene", columns="cancer", values="mark"
    )
    order = list(dict.fromkeys(changes["gene"]))
    cancers = list(labels)
    matrix, marks = matrix.loc[order, cancers], marks.loc[order, cancers]
    matrix.columns = marks.columns = [labels[c] for c in cancers]
    limit = (
        float(np.nanmax(np.abs(matrix.to_numpy(dtype=float))))
        if np.isfinite(matrix.to_numpy(dtype=float)).any()
        else 1.0
    )
    return heatmap(
        matrix,
        marks=marks,
        vmin=-limit,
        vmax=limit,
        label="log2FC tumour / normal",
        title=f"Ferroptosis core regulators, tumour vs normal ({FDR_MARK} FDR < {alpha:g}; grey: no normals)",
    )


def hazard_heatmap(hazards: pd.DataFrame, endpoint: str, alpha: float) -> str:
    table = hazards[hazards["endpoint"] == endpoint]
    log_hr = table.assign(log2_hr=np.log2(table["hr"].astype(float)))
    matrix = log_hr.pivot(index="score", columns="cancer", values="log2_hr")
    marks = table.assign(mark=np.where(table["fdr"] < alpha, FDR_MARK, "")).pivot(
        index="score", columns="cancer", values="mark"
    )
    limit = (
        float(np.nanmax(np.abs(matrix.to_numpy(dtype=float))))
        if np.isfinite(matrix.to_numpy(dtype=float)).any()
        else 1.0
    )
    return heatmap(
        matrix,
        marks=marks,
        vmin=-limit,
        vmax=limit,
        label="log2 HR per SD",
        title=f"{endpoint}: HR per SD of each score ({FDR_MARK} FDR < {alpha:g})",
    )


def correlation_heatmap(correlations: pd.DataFrame, stemness_index: str, alpha: float) -> str:
    tested = correlations[correlations["status"] == "tested"]
    matrix = tested.pivot(index="score", columns="cancer", values="rho")
    marks = tested.assign(mark=np.where(tested["fdr"] < alpha, FDR_MARK, "")).pivot(
        index="score", columns="cancer", values="mark"
    )
    return heatmap(
        matrix,
        marks=marks,
        title=f"Spearman rho of {stemness_index} with ferroptosis scores, tumours ({FDR_MARK} FDR < {alpha:g})",
    )


def pancancer_section(
    changes: pd.DataFrame,
    hazards: pd.DataFrame,
    correlations: pd.DataFrame,
    meta: pd.DataFrame,
    *,
    cancers: list[str],
    stemness_index: str,
    alpha: float,
) -> Section:
    summary: list[str] = []
    warnings: list[str] = []
    context: dict[str, Any] = {"cancers": cancers, "stemness_index": stemness_index, "alpha": alpha}
    without = sorted(set(changes.loc[changes["status"] == NO_NORMALS, "cancer"]))
    context["without_normals"] = without
    if (changes["status"] == "tested").any():
        context["regulator_figure"] = regulator_heatmap(changes, alpha)
        for gene, group in changes[changes["significant"]].groupby("gene", sort=False):
            up, down = (
                sorted(group.loc[group["log2fc"] > 0, "cancer"]),
                sorted(group.loc[group["log2fc"] < 0, "cancer"]),
            )
            summary.append(
                f"{gene}: higher in tumours of {', '.join(up) or 'no cancer'}, lower in "
                f"{', '.join(down) or 'no cancer'} (FDR < {alpha:g})"
            )
    else:
        context["regulator_figure"] = ""
        warnings.append("no cancer has a tumour-vs-normal table: the core-regulator heatmap is left out")
    context["regulator_table"] = table_html(changes, max_rows=1000)
    context["hazard_blocks"] = [
        {"endpoint": e, "figure": hazard_heatmap(hazards, e, alpha)} for e in sorted(hazards["endpoint"].unique())
    ]
    context["hazard_table"] = table_html(hazards.sort_values(["endpoint", "p_wald"]), max_rows=300)
    if (correlations["status"] == "tested").any():
        context["correlation_figure"] = correlation_heatmap(correlations, stemness_index, alpha)
    else:
        context["correlation_figure"] = ""
    for _, row in correlations[correlations["status"] != "tested"].iterrows():
        warnings.append(f"{row['cancer']}: {row['status']}; its stemness correlations are left out")
    context["correlation_table"] = table_html(correlations, max_rows=500)
    context["meta_blocks"] = []
    if meta.empty:
        warnings.append("no score was analysed in two or more cancers: no meta-analysis")
    for endpoint, table in meta.groupby("endpoint") if not meta.empty else []:
        table = table.sort_values("meta_p")
        top = table.iloc[0]
        summary.append(
            f"{endpoint}: top pooled score across {int(top['cancers'])} cancers {top['score']} HR "
            f"{top['meta_hr']:.2f} ({top['meta_hr_lower']:.2f}-{top['meta_hr_upper']:.2f}), I² {top['i2']:.0f}%"
        )
        context["meta_blocks"].append(
            {
                "endpoint": endpoint,
                "forest": forest_plot(
                    table.head(30),
                    hr="meta_hr",
                    lower="meta_hr_lower",
                    upper="meta_hr_upper",
                    p="meta_p",
                    title=f"Random-effects pooled HR per SD across cancers, {endpoint}",
                ),
                "table": table_html(table, max_rows=300),
            }
        )
    return Section(
        id="pancancer",
        title="Pan-cancer",
        template="pancancer.html.j2",
        order=66,
        context=context,
        summary=summary,
        warnings=warnings,
    )
