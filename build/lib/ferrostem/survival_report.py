"""Report sections of the survival stage (survival, immune infiltration and survival) and of the cross-cohort page,
built from the analysis in `survival_stage`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .risk_models import spearman_table, too_few_tumours
from .report import Section, table_html
from .survival import EndpointResult, median_groups, tertile_groups
from .survival_figures import auc_curve_plot, coefficient_plot, forest_plot, format_p, heatmap, km_plot
from .survival_stage import RESULT_COLUMNS, CohortSurvival, fitted_risk, results_table

IMMUNE_CATEGORIES = ("immune cell", "immune response", "checkpoint")


def _fmt_hr(row: pd.Series, prefix: str = "") -> str:
    return f"{row[prefix + 'hr']:.2f} ({row[prefix + 'hr_lower']:.2f}-{row[prefix + 'hr_upper']:.2f})"


def single_gene(score: str, info: pd.DataFrame) -> str | None:
    """The gene whose expression a score is (a gene-panel part, a gene of interest), else None."""
    method = info["method"].get(score, "") if "method" in info.columns else ""
    if "__" in score and (score.startswith("gene__") or method == "gene_panel"):
        return score.split("__", 1)[1]
    return None


def forest_table(ranked: pd.DataFrame, info: pd.DataFrame) -> pd.DataFrame:
    """The rows of a forest plot: one per score, a gene's expression once (panels of the catalogue and the genes
    of interest give the same gene several score names and the same HR), labelled by its kind."""
    genes = ranked["score"].map(lambda score: single_gene(score, info))
    rows = ranked.assign(_gene=genes)
    rows = rows[rows["_gene"].isna() | ~rows.duplicated("_gene")].copy()
    is_gene = rows["_gene"].notna()
    rows.loc[is_gene, "score"] = rows.loc[is_gene, "_gene"]
    rows.loc[is_gene, "category"] = "gene expression"
    return rows.drop(columns="_gene")


def km_figures(
    result: EndpointResult,
    score: str,
    *,
    raw: pd.Series | None = None,
    cutpoint: float = np.nan,
    cutpoint_p: float = np.nan,
    cutpoint_p_uncorrected: float = np.nan,
) -> dict[str, Any]:
    """Kaplan-Meier curves by median split, tertiles and the optimal cutpoint of one score.

    Every key is present (empty when the split cannot be made, with the reason in `notes`): tied values
    can leave a median group empty or make tertile edges coincide.
    """
    frame = result.frame.dropna(subset=[score])
    time, event, values = frame["time"].to_numpy(), frame["event"].to_numpy(), frame[score]
    out: dict[str, Any] = {"score": score, "median": "", "tertiles": "", "cutpoint": "", "notes": []}
    groups = median_groups(values)
    if len(set(groups)) == 2:
        out["median"] = km_plot(
            time, event, groups, title=f"{score}: median split ({result.endpoint})", endpoint=result.endpoint
        )
    else:
        out["notes"].append(f"{score}: no median split (more than half of the samples share the median value)")
    tertiles = tertile_groups(values)
    if tertiles.notna().all():
        out["tertiles"] = km_plot(
            time,
            event,
            tertiles.astype(str).to_numpy(),
            title=f"{score}: tertiles ({result.endpoint})",
            endpoint=result.endpoint,
        )
    else:
        out["notes"].append(f"{score}: no tertiles (tied values make two tertile boundaries equal)")
    if raw is not None and np.isfinite(cutpoint):
        out["cutpoint"] = km_plot(
            time,
            event,
            np.where(raw.loc[frame.index] > cutpoint, "high", "low"),
            title=f"{score}: optimal cutpoint {cutpoint:.3g} ({result.endpoint})",
            note=(f"max-stat p = {format_p(cutpoint_p_uncorrected)} uncorrected, {format_p(cutpoint_p)} corrected"),
            endpoint=result.endpoint,
        )
    elif raw is not None:
        out["notes"].append(f"{score}: no optimal cutpoint (no cut leaves both groups within the allowed sizes)")
    return out


def endpoint_block(
    cohort_label: str,
    result: EndpointResult,
    info: pd.DataFrame,
    raw_scores: pd.DataFrame,
    *,
    top: int,
    forest_rows: int,
) -> tuple[dict[str, Any], list[str]]:
    """One endpoint of the survival section (forest plots, results table, KM curves, AUC) and its summary line."""
    summary = []
    table = results_table(result, info)
    ranked = table.dropna(subset=["p_wald"]).sort_values("p_wald")
    significant = ranked[ranked["fdr"] < 0.05]
    if len(ranked):
        best = ranked.iloc[0]
        summary.append(
            f"{cohort_label}, {result.endpoint}: {len(significant)} of {len(table)} scores prognostic "
            f"at FDR < 0.05; strongest {best['score']} HR {_fmt_hr(best)} per SD, p = {format_p(best['p_wald'])}"
        )
    forest = forest_table(ranked, info).head(forest_rows)
    forest_uni = forest_plot(
        forest, title=f"Univariate Cox, {result.endpoint} (top {len(forest)} by p)", colour_by="category"
    )
    mv = forest_table(table.dropna(subset=["mv_hr"]).sort_values("mv_p"), info).head(forest_rows)
    forest_mv = (
        forest_plot(
            mv,
            hr="mv_hr",
            lower="mv_hr_lower",
            upper="mv_hr_upper",
            p="mv_p",
            title=f"Multivariable Cox adjusted for {', '.join(result.covariates.columns)}",
            colour_by="category",
        )
        if len(mv)
        else ""
    )
    km = []
    by_score = ranked.set_index("score")
    for score in by_score.index[:top]:
        km.append(
            km_figures(
                result,
                score,
                raw=raw_scores[score],
                cutpoint=by_score.at[score, "cutpoint"],
                cutpoint_p=by_score.at[score, "cutpoint_p"],
                cutpoint_p_uncorrected=by_score.at[score, "cutpoint_p_uncorrected"],
            )
        )
    not_analysed = (
        table[table["not_analysed"].astype(str) != ""][["score", "not_analysed"]]
        if "not_analysed" in table.columns
        else pd.DataFrame()
    )
    auc_names = list(ranked["score"].head(top))
    auc_figure = (
        auc_curve_plot(
            result.frame["time"].to_numpy(),
            result.frame["event"].to_numpy(),
            {s: fitted_risk(result, s) for s in auc_names},
            title=f"Time-dependent AUC, {result.endpoint}",
        )
        if auc_names
        else ""
    )
    auc_columns = [f"auc_{y:g}y" for y in result.auc_years]
    # every ranked score was analysed: its not_analysed cell is empty (those scores have their own table)
    shown = ranked[[c for c in RESULT_COLUMNS if c in ranked.columns and c != "not_analysed"] + auc_columns]
    flagged = table[table["ph_violation"].astype(str) != ""][["score", "ph_violation", "ph_p"]]
    block = {
        "endpoint": result.endpoint,
        "n": int(len(result.frame)),
        "events": int(result.frame["event"].sum()),
        "covariates": list(result.covariates.columns),
        "forest_uni": forest_uni,
        "forest_mv": forest_mv,
        "table": table_html(shown, max_rows=60),
        "km": km,
        "auc": auc_figure,
        "auc_years": result.auc_years,
        "ph_flagged": table_html(flagged) if len(flagged) else "",
        "not_analysed": table_html(not_analysed) if len(not_analysed) else "",
    }
    return block, summary


def survival_section(
    cohort_label: str, survival: CohortSurvival, *, top: int, cutpoint_method: str, forest_rows: int = 30
) -> Section:
    """The survival section: per endpoint forest plots, results table, KM curves, AUC; then the risk models.

    `top`: Kaplan-Meier and AUC figures for this many strongest scores per endpoint (`survival.plots_top`).
    """
    endpoints, summary, warnings = [], [], list(survival.notes)
    for result in survival.results:
        warnings.extend(result.warnings)
        if result.table.empty:
            continue
        block, lines = endpoint_block(
            cohort_label, result, survival.info, survival.scores, top=top, forest_rows=forest_rows
        )
        summary.extend(lines)
        endpoints.append(block)
    model_blocks = risk_model_blocks(survival)
    for block in model_blocks:
        if block.get("summary"):
            summary.append(block["summary"])
        warnings.extend(block.get("warnings", []))
    context = {"endpoints": endpoints, "models": model_blocks, "cutpoint_method": cutpoint_method}
    return Section(
        id="survival",
        title="Survival",
        template="survival.html.j2",
        order=60,
        context=context,
        warnings=list(dict.fromkeys(warnings)),
        summary=summary,
    )


def risk_model_blocks(survival: CohortSurvival) -> list[dict[str, Any]]:
    """The report blocks of the risk models applied to the cohort, then of the catalogue's documented risk scores."""
    blocks = [model_block(m.entry, survival.cohort, m.result, cv=m.cv, applied=m.applied) for m in survival.models]
    tables = [results_table(r, survival.info) for r in survival.results if not r.table.empty]
    documented = documented_risk_block(tables, survival.info)
    return blocks + ([documented] if documented else [])


def immune_survival_section(cohort_label: str, survival: CohortSurvival) -> Section:
    """Survival per immune cell type / response score, and immune scores vs ferroptosis and stemness scores."""
    results, info, scores = survival.results, survival.info, survival.immune_scores
    immune = [s for s in scores.columns if info["category"].get(s, "") in IMMUNE_CATEGORIES]
    partners = [
        s for s in scores.columns if str(info["category"].get(s, "")).split("/")[0] in ("ferroptosis", "stemness")
    ]
    warnings, summary, blocks = [], [], []
    if not immune:
        warnings.append("no immune-cell or immune-response score in scores.tsv: nothing to show")
    for result in results:
        if result.table.empty or not immune:
            continue
        table = (
            results_table(result, info)
            .set_index("score")
            .loc[[s for s in immune if s in set(result.table["score"])]]
            .reset_index()
        )
        ranked = table.sort_values("p_wald")
        good = ranked[(ranked["fdr"] < 0.05)]
        if len(good):
            summary.append(
                f"{cohort_label}, {result.endpoint}: immune scores associated with survival (FDR < 0.05): "
                + ", ".join(f"{r['score']} HR {r['hr']:.2f}" for _, r in good.head(4).iterrows())
            )
        blocks.append(
            {
                "endpoint": result.endpoint,
                "forest": forest_plot(
                    ranked, title=f"Immune scores, univariate Cox, {result.endpoint}", colour_by="category"
                ),
                "table": table_html(ranked[[c for c in RESULT_COLUMNS if c in ranked.columns]], max_rows=80),
            }
        )
    correlation_figure, correlation_table = "", ""
    few = too_few_tumours(len(scores), "correlation of immune scores with ferroptosis and stemness scores in tumours")
    if immune and partners and few:
        warnings.append(few)
    elif immune and partners:
        corr = spearman_table(scores[partners], scores[immune])
        matrix = corr.pivot(index="score", columns="feature", values="rho").loc[immune, partners]
        correlation_figure = heatmap(matrix, title="Immune scores vs ferroptosis and stemness scores (tumours)")
        known = corr.dropna(subset=["rho"])
        strongest = known.loc[known["rho"].abs().sort_values(ascending=False).index].head(40)
        correlation_table = table_html(strongest)
        if len(strongest):
            r = strongest.iloc[0]
            summary.append(
                f"{cohort_label}: strongest immune correlation {r['score']} ~ {r['feature']} rho = {r['rho']:.2f}"
            )
        else:
            warnings.append(
                "no immune correlation could be computed (too few samples with both scores, or constant scores)"
            )
    elif immune:
        warnings.append("no ferroptosis or stemness score to correlate the immune scores with")
    return Section(
        id="immune_survival",
        title="Immune infiltration and survival",
        template="immune_survival.html.j2",
        order=55,
        context={
            "blocks": blocks,
            "correlation_figure": correlation_figure,
            "correlation_table": correlation_table,
            "n_immune": len(immune),
        },
        warnings=warnings,
        summary=summary,
    )


def cross_cohort_section(meta: pd.DataFrame, cohorts: list[str]) -> Section:
    summary, blocks = [], []
    if meta.empty:
        return Section(
            id="cross_cohort",
            title="Across cohorts",
            template="cross_cohort.html.j2",
            order=65,
            context={"blocks": [], "cohorts": cohorts},
            warnings=["no score was analysed in two or more cohorts"],
        )
    for endpoint, table in meta.groupby("endpoint"):
        table = table.sort_values("meta_p")
        agree = table["same_direction"].mean()
        summary.append(
            f"{endpoint}: {int(table['same_direction'].sum())} of {len(table)} scores have the same "
            f"direction in all {len(cohorts)} cohorts ({agree:.0%}); top pooled: {table.iloc[0]['score']} "
            f"HR {table.iloc[0]['meta_hr']:.2f} ({table.iloc[0]['meta_hr_lower']:.2f}-"
            f"{table.iloc[0]['meta_hr_upper']:.2f})"
        )
        blocks.append(
            {
                "endpoint": endpoint,
                "forest": forest_plot(
                    table.head(30),
                    hr="meta_hr",
                    lower="meta_hr_lower",
                    upper="meta_hr_upper",
                    p="meta_p",
                    title=f"Random-effects pooled HR per SD, {endpoint}",
                ),
                "table": table_html(table, max_rows=100),
            }
        )
    return Section(
        id="cross_cohort",
        title="Across cohorts",
        template="cross_cohort.html.j2",
        order=65,
        context={"blocks": blocks, "cohorts": cohorts},
        summary=summary,
    )


def model_block(
    entry: dict[str, Any], cohort: str, result: EndpointResult, *, cv: pd.DataFrame | None, applied: Any
) -> dict[str, Any]:
    """Report block of one risk model in one cohort: coefficients, HR / C / AUC here, KM and AUC curves."""
    weights = pd.Series(entry["weights"], dtype=float)
    training = entry.get("training_cohort", "")
    role = (
        "training cohort (in-sample, optimistic)"
        if training == cohort
        else "validation cohort (weights applied unchanged)"
    )
    block: dict[str, Any] = {
        "name": f"{entry.get('name', entry['id'])} — {role}",
        "coefficients": coefficient_plot(weights, title=f"{entry['id']}: {len(weights)} genes"),
        "km": "",
        "auc": "",
        "cv": "",
        "table": "",
        "warnings": [],
        "summary": "",
    }
    block["description"] = (
        f"{entry.get('citation', '')}; {len(weights)} genes; input: {entry.get('input_scale', '')}; "
        f"genes used here {len(applied.genes_used)}, missing {len(applied.genes_missing)} "
        f"({applied.missing_weight_share:.0%} of |weight|)."
    )
    if applied.genes_missing:
        block["warnings"].append(
            f"risk model {entry['id']}: {', '.join(applied.genes_missing)} not measured in "
            f"{cohort} ({applied.missing_weight_share:.0%} of the total |weight| missing)"
        )
    if cv is not None:
        block["cv"] = table_html(cv)
    if result.table.empty:
        block["warnings"].extend(result.warnings)
        return block
    row = result.table.iloc[0]
    score = row["score"]
    frame = result.frame.dropna(subset=[score])
    block["km"] = km_plot(
        frame["time"].to_numpy(),
        frame["event"].to_numpy(),
        np.where(frame[score] > frame[score].median(), "high", "low"),
        title=f"{entry['id']} in {cohort} ({result.endpoint})",
        endpoint=result.endpoint,
    )
    block["auc"] = auc_curve_plot(
        frame["time"].to_numpy(),
        frame["event"].to_numpy(),
        {score: fitted_risk(result, score)[result.frame[score].notna().to_numpy()]},
        title=f"{entry['id']} in {cohort}",
    )
    auc_cols = [f"auc_{y:g}y" for y in result.auc_years]
    block["table"] = table_html(
        result.table[
            [
                "endpoint",
                "n",
                "events",
                "hr",
                "hr_lower",
                "hr_upper",
                "p_wald",
                "c_index",
                "direction",
                "km_median_p",
                *auc_cols,
            ]
        ]
    )
    aucs = ", ".join(f"AUC {y:g}y {row[f'auc_{y:g}y']:.2f}" for y in result.auc_years)
    block["summary"] = (
        f"{entry['id']} ({len(weights)} genes, trained on {training}) in {cohort} "
        f"[{'training' if training == cohort else 'validation'}]: HR {_fmt_hr(row)} per SD, "
        f"p = {format_p(row['p_wald'])}, C = {row['c_index']:.2f}"
        # C is that of the fitted direction: say so when the risk score came out protective here
        + (" (inverted here: higher score, lower risk)" if row.get("direction") == "higher score, lower risk" else "")
        + (f", {aucs}" if aucs else "")
    )
    return block


def documented_risk_block(tables: list[pd.DataFrame], info: pd.DataFrame) -> dict[str, Any] | None:
    """Risk scores from the catalogue (category 'risk score' in score_info), evaluated like every score."""
    risk = [s for s in info.index if str(info.at[s, "category"]).lower() == "risk score"]
    rows = [t[t["score"].isin(risk)] for t in tables if len(t)]
    rows = pd.concat(rows) if rows else pd.DataFrame()
    if rows.empty:
        return None
    columns = [
        "endpoint",
        "score",
        "n",
        "events",
        "hr",
        "hr_lower",
        "hr_upper",
        "p_wald",
        "fdr",
        "c_index",
        "direction",
        *[c for c in rows.columns if c.startswith("auc_")],
        "mv_hr",
        "mv_p",
    ]
    citation = info["citation"] if "citation" in info.columns else pd.Series(dtype=str)
    described = rows.assign(citation=rows["score"].map(citation).fillna(""))
    return {
        "name": "Documented risk scores from the signature catalogue",
        "coefficients": "",
        "km": "",
        "auc": "",
        "cv": "",
        "warnings": [],
        "summary": "",
        "description": "Published weights applied unchanged (scored by the signature stage); statistics as above.",
        "table": table_html(described[[c for c in columns if c in described.columns] + ["citation"]]),
    }
