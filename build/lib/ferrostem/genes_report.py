"""The genes-of-interest section (rule `genes_of_interest`): tumour vs normal, survival and immune correlations of
each gene of interest, and the cross-validated diagnostic panels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .risk_models import diagnostic_panel, log2_expression, spearman_table, too_few_tumours, tumour_vs_normal
from .report import Section, table_html
from .survival_figures import expression_plot, format_p, heatmap, roc_plot
from .survival_stage import RESULT_COLUMNS


def genes_section(
    cohort_label: str,
    adata,
    genes: list[str],
    *,
    scores: pd.DataFrame,
    info: pd.DataFrame,
    survival_tables: list[pd.DataFrame],
    checkpoint_genes: list[str],
    panels: dict[str, list[str]],
    panel_folds: int = 5,
    seed: int = 0,
) -> Section:
    """Gene-of-interest mode (tumour vs normal, survival, immune correlations) and diagnostic panels."""
    warnings, summary = [], []
    context: dict[str, Any] = {"genes": [], "panels": []}
    if genes:
        de, notes = tumour_vs_normal(adata, genes)
        warnings.extend(notes)
        present = list(de["gene"]) if len(de) else []
        context["genes"] = present
        context["n_pairs"] = int(de["n_pairs"].max()) if len(de) else 0
        if len(de) and "gene_id" in adata.var:
            de.insert(1, "gene_id", adata.var["gene_id"].astype(str).reindex(de["gene"]).fillna("").to_numpy())
        context["de_table"] = table_html(de) if len(de) else ""
        expression = log2_expression(adata, present)
        tissue = adata.obs["tissue"].astype(str)
        patients = (
            adata.obs["patient_id"].astype(str)
            if "patient_id" in adata.obs
            else pd.Series(adata.obs_names, index=adata.obs_names)
        )
        context["expression"] = (
            expression_plot(expression, tissue, patients, present) if present and (tissue == "normal").any() else ""
        )
        for _, row in de.iterrows():
            p = row["p_paired_wilcoxon"] if np.isfinite(row["p_paired_wilcoxon"]) else row["p_mannwhitney"]
            if np.isfinite(p) and p < 0.05:
                summary.append(
                    f"{cohort_label}: {row['gene']} {'higher' if row['log2fc'] > 0 else 'lower'} in tumours "
                    f"(log2FC {row['log2fc']:.2f}, p = {format_p(p)})"
                )
        names = [f"gene__{g}" for g in present]
        surv = [t[t["score"].isin(names)] for t in survival_tables if len(t)]
        surv = pd.concat(surv) if surv else pd.DataFrame()
        context["survival_table"] = (
            table_html(surv[[c for c in ["endpoint", *RESULT_COLUMNS] if c in surv.columns]]) if len(surv) else ""
        )
        tumours = tissue == "tumor"
        immune = [s for s in scores.columns if info["category"].get(s, "") in ("immune cell", "immune response")]
        checkpoints = [g for g in checkpoint_genes if g in adata.var_names and g not in present]
        partners = pd.concat(
            [
                scores.loc[scores.index.intersection(adata.obs_names[tumours]), immune],
                log2_expression(adata[tumours.to_numpy()], checkpoints),
            ],
            axis=1,
        )
        few = too_few_tumours(
            int(tumours.sum()), "correlation of genes of interest with immune scores and checkpoints in tumours"
        )
        if present and few:
            context["correlation_figure"], context["correlation_table"] = "", ""
            warnings.append(few)
        elif present and partners.shape[1]:
            corr = spearman_table(expression.loc[tumours.to_numpy()], partners)
            matrix = corr.pivot(index="feature", columns="score", values="rho").loc[present, list(partners.columns)]
            context["correlation_figure"] = heatmap(matrix, title="Genes of interest vs immune scores and checkpoints")
            context["correlation_table"] = table_html(corr.sort_values("p"), max_rows=100)
        else:
            context["correlation_figure"], context["correlation_table"] = "", ""
            if present:
                warnings.append("no immune score or checkpoint gene available for the correlation of genes of interest")
    results = []
    for name, panel_genes in panels.items():
        result = diagnostic_panel(adata, name, list(panel_genes), folds=panel_folds, seed=seed)
        warnings.extend(result.warnings)
        results.append(result)
        if np.isfinite(result.auc):
            summary.append(
                f"{cohort_label}: diagnostic panel {name} ({len(result.genes)} genes) separates tumour from "
                f"normal with cross-validated AUC {result.auc:.2f}"
            )
    if results:
        context["panels"] = [r.name for r in results]
        context["roc"] = roc_plot(results, title="Tumour vs normal, cross-validated")
        context["panel_table"] = table_html(
            pd.DataFrame(
                [
                    {
                        "panel": r.name,
                        "genes": ", ".join(r.genes),
                        "missing": ", ".join(r.missing),
                        "tumours": r.n_tumour,
                        "normals": r.n_normal,
                        "folds": r.folds,
                        "cv_auc": r.auc,
                        "fold_auc_range": f"{min(r.fold_auc):.2f}-{max(r.fold_auc):.2f}" if r.fold_auc else "",
                        "gene_auc": ", ".join(f"{g} {a:.2f}" for g, a in r.gene_auc.items()),
                    }
                    for r in results
                ]
            )
        )
    return Section(
        id="genes",
        title="Genes of interest and diagnostic panels",
        template="genes.html.j2",
        order=70,
        context=context,
        warnings=warnings,
        summary=summary,
    )
