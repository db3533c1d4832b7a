"""Figures and report sections for survival, immune-infiltration survival, genes of interest and cross-cohort pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .plots import figure_uri
from .report import Section, table_html
from .survival import (DAYS_PER_YEAR, EndpointResult, cox_univariate, logrank_test, median_groups,
                       random_effects_meta, tertile_groups)

import matplotlib.pyplot as plt  # noqa: E402  (ferrostem.plots selects the Agg backend first)

GROUP_COLOURS = {"low": "#2471a3", "mid": "#7f8c8d", "high": "#c0392b"}
IMMUNE_CATEGORIES = ("immune cell", "immune response", "checkpoint")
RESULT_COLUMNS = ["score", "category", "n", "events", "hr", "hr_lower", "hr_upper", "p_wald", "p_lr", "fdr",
                  "c_index", "direction", "km_median_p", "km_tertile_p", "cutpoint", "cutpoint_p",
                  "cutpoint_p_uncorrected", "mv_hr", "mv_hr_lower", "mv_hr_upper", "mv_p", "ph_violation", "not_analysed"]


def _fmt_p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "NA"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def _fmt_hr(row: pd.Series, prefix: str = "") -> str:
    return f"{row[prefix + 'hr']:.2f} ({row[prefix + 'hr_lower']:.2f}-{row[prefix + 'hr_upper']:.2f})"


# --------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------

def forest_plot(table: pd.DataFrame, *, label: str = "score", hr: str = "hr", lower: str = "hr_lower",
                upper: str = "hr_upper", p: str = "p_wald", title: str = "", colour_by: str | None = None) -> str:
    """Hazard ratios with 95% CIs on a log axis, one row per line of `table` (top row first)."""
    rows = table.dropna(subset=[hr, lower, upper])
    fig, ax = plt.subplots(figsize=(7.5, 0.28 * max(len(rows), 3) + 1.2))
    y = np.arange(len(rows))[::-1]
    colours = ["#c0392b" if v > 1 else "#2471a3" for v in rows[hr]]
    ax.hlines(y, rows[lower], rows[upper], color=colours, lw=1.6)
    ax.scatter(rows[hr], y, color=colours, s=22, zorder=3)
    ax.axvline(1, color="#555", lw=0.8, ls="--")
    ax.set_xscale("log")
    ticks = [t for t in (0.125, 0.25, 0.5, 1, 2, 4, 8) if rows[lower].min() / 2 <= t <= rows[upper].max() * 2] or [1]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    labels = [f"{r[label]}" + (f" [{r[colour_by]}]" if colour_by and isinstance(r.get(colour_by), str) else "")
              for _, r in rows.iterrows()]
    ax.set_yticks(y, labels, fontsize=8)
    for yi, (_, r) in zip(y, rows.iterrows()):
        ax.annotate(f"{r[hr]:.2f} ({r[lower]:.2f}-{r[upper]:.2f})  p={_fmt_p(r[p])}", (1.01, yi),
                    xycoords=("axes fraction", "data"), fontsize=7, va="center")
    ax.set_xlabel("hazard ratio per SD (95% CI)")
    ax.set_title(title, fontsize=10)
    ax.set_ylim(-0.8, len(rows) - 0.2)
    return figure_uri(fig)


def group_hr_text(time_days: np.ndarray, event: np.ndarray, groups: pd.Series) -> str:
    """'HR high vs low 1.84 (1.21-2.80)': Cox HR of the highest group against the lowest (tertiles: the outer
    two), so that a KM panel says how large the difference is and not only whether there is one."""
    present = [g for g in ("low", "mid", "high") if (groups == g).any()]
    if len(present) < 2:
        return "HR not estimable"
    low, high = present[0], present[-1]
    keep = groups.isin([low, high]).to_numpy()
    indicator = pd.DataFrame({"high": (groups[keep] == high).astype(float).to_numpy()})
    row = cox_univariate(np.asarray(time_days, dtype=float)[keep], np.asarray(event, dtype=float)[keep],
                         indicator).iloc[0]
    if not np.isfinite(row["hr"]):
        return f"HR {high} vs {low} not estimable"
    return f"HR {high} vs {low} {row['hr']:.2f} ({row['hr_lower']:.2f}-{row['hr_upper']:.2f})"


def km_plot(time_days: np.ndarray, event: np.ndarray, groups: pd.Series | np.ndarray, *, title: str,
            note: str = "", endpoint: str = "", hazard_ratio: bool = True) -> str:
    """Kaplan-Meier curves per group (lifelines) with the numbers at risk under the plot, time in years.

    `hazard_ratio`: the title gives the HR of the high group against the low one (groups low/mid/high); groups
    without that order (subtypes) turn it off."""
    from lifelines import KaplanMeierFitter
    from lifelines.plotting import add_at_risk_counts

    groups = pd.Series(np.asarray(groups, dtype=object))
    fig, ax = plt.subplots(figsize=(6.2, 4.6))
    fitters = []
    for group in [g for g in ["low", "mid", "high"] if g in set(groups)] + sorted(set(groups) - {"low", "mid", "high", None}):
        member = (groups == group).to_numpy()
        if not member.any():
            continue
        kmf = KaplanMeierFitter(label=f"{group} (n={member.sum()})")
        kmf.fit(np.asarray(time_days)[member] / DAYS_PER_YEAR, np.asarray(event)[member])
        kmf.plot_survival_function(ax=ax, ci_show=False, show_censors=True, color=GROUP_COLOURS.get(group),
                                   censor_styles={"ms": 4, "marker": "|"})
        fitters.append(kmf)
    test = logrank_test(time_days, event, groups.to_numpy())
    p_text = note or f"log-rank p = {_fmt_p(test.p)}"
    hr_text = f"{group_hr_text(time_days, event, groups)}, " if hazard_ratio else ""
    ax.set_title(f"{title}\n{hr_text}{p_text}", fontsize=9)
    ax.set_xlabel("years")
    ax.set_ylabel(f"{endpoint}: probability without event" if endpoint else "survival probability")
    ax.set_ylim(0, 1.05)
    if fitters:
        add_at_risk_counts(*fitters, ax=ax, rows_to_show=["At risk"])
    fig.tight_layout()
    return figure_uri(fig)


def auc_curve_plot(time_days: np.ndarray, event: np.ndarray, risks: dict[str, np.ndarray], *, title: str) -> str:
    """Cumulative/dynamic AUC over follow-up for a few scores (scikit-survival)."""
    from sksurv.metrics import cumulative_dynamic_auc
    from sksurv.util import Surv

    time_days, event = np.asarray(time_days, dtype=float), np.asarray(event, dtype=int)
    lo, hi = np.quantile(time_days[event == 1], 0.1), np.quantile(time_days, 0.85)
    grid = np.linspace(lo, hi, 25)
    fig, ax = plt.subplots(figsize=(6.2, 3.8))
    for name, risk in risks.items():
        ok = np.isfinite(risk)
        y = Surv.from_arrays(event[ok].astype(bool), time_days[ok])
        usable = grid[(grid > time_days[ok].min()) & (grid < time_days[ok].max())]
        try:
            auc, mean_auc = cumulative_dynamic_auc(y, y, np.asarray(risk)[ok], usable)
        except ValueError:
            continue
        ax.plot(usable / DAYS_PER_YEAR, auc, label=f"{name} (mean {mean_auc:.2f})")
    ax.axhline(0.5, color="#555", lw=0.8, ls="--")
    ax.set_xlabel("years")
    ax.set_ylabel("time-dependent AUC")
    ax.set_ylim(0.2, 1.0)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return figure_uri(fig)


def heatmap(matrix: pd.DataFrame, *, title: str, vmin: float = -1, vmax: float = 1, label: str = "Spearman rho",
            marks: pd.DataFrame | None = None) -> str:
    """A diverging heatmap; `marks` (same shape, strings such as '*') are written in their cells; missing
    cells are grey."""
    fig, ax = plt.subplots(figsize=(0.42 * matrix.shape[1] + 3, 0.32 * matrix.shape[0] + 2))
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="#d9d9d9")
    image = ax.imshow(np.ma.masked_invalid(matrix.to_numpy(dtype=float)), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    if marks is not None:
        for (i, j), text in np.ndenumerate(marks.reindex(index=matrix.index, columns=matrix.columns).fillna("").to_numpy()):
            if text:
                ax.text(j, i, text, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(matrix.shape[0]), matrix.index, fontsize=7)
    fig.colorbar(image, ax=ax, label=label, shrink=0.7)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return figure_uri(fig)


def coefficient_plot(weights: pd.Series, *, title: str) -> str:
    weights = weights.sort_values()
    fig, ax = plt.subplots(figsize=(5.5, 0.25 * len(weights) + 1.2))
    ax.barh(weights.index, weights.to_numpy(), color=["#c0392b" if w > 0 else "#2471a3" for w in weights])
    ax.axvline(0, color="#555", lw=0.8)
    ax.set_xlabel("LASSO-Cox coefficient (per SD of log2 expression)")
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return figure_uri(fig)


def roc_plot(panels: list[Any], *, title: str) -> str:
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    for panel in panels:
        if panel.fpr:
            ax.plot(panel.fpr, panel.tpr, label=f"{panel.name} (CV AUC {panel.auc:.2f})")
    ax.plot([0, 1], [0, 1], color="#555", lw=0.8, ls="--")
    ax.set_xlabel("false-positive rate (normal called tumour)")
    ax.set_ylabel("true-positive rate")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return figure_uri(fig)


def expression_plot(adata_expression: pd.DataFrame, tissue: pd.Series, patients: pd.Series, genes: list[str]) -> str:
    """Tumour vs normal log2 expression per gene; lines join a patient's tumour and normal samples."""
    fig, axes = plt.subplots(1, len(genes), figsize=(2.1 * len(genes) + 0.6, 3.4), squeeze=False)
    for ax, gene in zip(axes[0], genes):
        for position, kind in enumerate(["normal", "tumor"]):
            values = adata_expression.loc[tissue == kind, gene]
            jitter = np.random.default_rng(position).uniform(-0.12, 0.12, len(values))
            ax.scatter(position + jitter, values, s=8, alpha=0.6, color="#2471a3" if kind == "normal" else "#c0392b")
            ax.boxplot([values.to_numpy()], positions=[position], widths=0.5, showfliers=False)
        pairs = pd.DataFrame({"patient": patients, "tissue": tissue, "value": adata_expression[gene]})
        wide = pairs.pivot_table(index="patient", columns="tissue", values="value", aggfunc="mean").dropna()
        if {"normal", "tumor"} <= set(wide.columns):
            for _, row in wide.iterrows():
                ax.plot([0, 1], [row["normal"], row["tumor"]], color="#999", lw=0.5, alpha=0.6)
        ax.set_xticks([0, 1], ["normal", "tumour"])
        ax.set_title(gene, fontsize=9)
    axes[0][0].set_ylabel("log2 expression")
    fig.tight_layout()
    return figure_uri(fig)


# --------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------

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


def results_table(result: EndpointResult, info: pd.DataFrame) -> pd.DataFrame:
    table = result.table.copy()
    table["category"] = table["score"].map(info["category"]).fillna("")
    return table


def fitted_risk(result: EndpointResult, score: str) -> np.ndarray:
    """The score in the direction of its fitted Cox coefficient: the linear predictor whose C and AUC are reported."""
    row = result.table.set_index("score").loc[score]
    sign = -1.0 if row.get("direction", "") == "higher score, lower risk" else 1.0
    return sign * result.frame[score].to_numpy()


def km_figures(result: EndpointResult, score: str, *, raw: pd.Series | None = None, cutpoint: float = np.nan,
               cutpoint_p: float = np.nan, cutpoint_p_uncorrected: float = np.nan) -> dict[str, Any]:
    """Kaplan-Meier curves by median split, tertiles and the optimal cutpoint of one score.

    Every key is present (empty when the split cannot be made, with the reason in `notes`): tied values
    can leave a median group empty or make tertile edges coincide.
    """
    frame = result.frame.dropna(subset=[score])
    time, event, values = frame["time"].to_numpy(), frame["event"].to_numpy(), frame[score]
    out: dict[str, Any] = {"score": score, "median": "", "tertiles": "", "cutpoint": "", "notes": []}
    groups = median_groups(values)
    if len(set(groups)) == 2:
        out["median"] = km_plot(time, event, groups, title=f"{score}: median split ({result.endpoint})",
                                 endpoint=result.endpoint)
    else:
        out["notes"].append(f"{score}: no median split (more than half of the samples share the median value)")
    tertiles = tertile_groups(values)
    if tertiles.notna().all():
        out["tertiles"] = km_plot(time, event, tertiles.astype(str).to_numpy(),
                                  title=f"{score}: tertiles ({result.endpoint})", endpoint=result.endpoint)
    else:
        out["notes"].append(f"{score}: no tertiles (tied values make two tertile boundaries equal)")
    if raw is not None and np.isfinite(cutpoint):
        out["cutpoint"] = km_plot(time, event, np.where(raw.loc[frame.index] > cutpoint, "high", "low"),
                                  title=f"{score}: optimal cutpoint {cutpoint:.3g} ({result.endpoint})",
                                  note=(f"max-stat p = {_fmt_p(cutpoint_p_uncorrected)} uncorrected, "
                                        f"{_fmt_p(cutpoint_p)} corrected"), endpoint=result.endpoint)
    elif raw is not None:
        out["notes"].append(f"{score}: no optimal cutpoint (no cut leaves both groups within the allowed sizes)")
    return out


def survival_section(cohort_label: str, results: list[EndpointResult], info: pd.DataFrame, *,
                     raw_scores: pd.DataFrame, models: list[dict[str, Any]], notes: list[str],
                     top: int = 4, forest_rows: int = 30, cutpoint_method: str = "lausen92") -> Section:
    """The survival section: per endpoint forest plots, results table, KM curves, AUC; then the risk models."""
    endpoints, summary, warnings = [], [], list(notes)
    for result in results:
        warnings.extend(result.warnings)
        if result.table.empty:
            continue
        table = results_table(result, info)
        ranked = table.dropna(subset=["p_wald"]).sort_values("p_wald")
        significant = ranked[ranked["fdr"] < 0.05]
        if len(ranked):
            best = ranked.iloc[0]
            summary.append(f"{cohort_label}, {result.endpoint}: {len(significant)} of {len(table)} scores prognostic "
                           f"at FDR < 0.05; strongest {best['score']} HR {_fmt_hr(best)} per SD, p = {_fmt_p(best['p_wald'])}")
        forest = forest_table(ranked, info).head(forest_rows)
        forest_uni = forest_plot(forest, title=f"Univariate Cox, {result.endpoint} (top {len(forest)} by p)",
                                 colour_by="category")
        mv = forest_table(table.dropna(subset=["mv_hr"]).sort_values("mv_p"), info).head(forest_rows)
        forest_mv = forest_plot(mv, hr="mv_hr", lower="mv_hr_lower", upper="mv_hr_upper", p="mv_p",
                                title=f"Multivariable Cox adjusted for {', '.join(result.covariates.columns)}",
                                colour_by="category") if len(mv) else ""
        km = []
        by_score = ranked.set_index("score")
        for score in by_score.index[:top]:
            km.append(km_figures(result, score, raw=raw_scores[score], cutpoint=by_score.at[score, "cutpoint"],
                                 cutpoint_p=by_score.at[score, "cutpoint_p"],
                                 cutpoint_p_uncorrected=by_score.at[score, "cutpoint_p_uncorrected"]))
        not_analysed = table[table["not_analysed"].astype(str) != ""][["score", "not_analysed"]] \
            if "not_analysed" in table.columns else pd.DataFrame()
        auc_names = list(ranked["score"].head(top))
        auc_figure = auc_curve_plot(result.frame["time"].to_numpy(), result.frame["event"].to_numpy(),
                                    {s: fitted_risk(result, s) for s in auc_names},
                                    title=f"Time-dependent AUC, {result.endpoint}") if auc_names else ""
        auc_columns = [f"auc_{y:g}y" for y in result.auc_years]
        # every ranked score was analysed: its not_analysed cell is empty (those scores have their own table)
        shown = ranked[[c for c in RESULT_COLUMNS if c in ranked.columns and c != "not_analysed"] + auc_columns]
        flagged = table[table["ph_violation"].astype(str) != ""][["score", "ph_violation", "ph_p"]]
        endpoints.append({
            "endpoint": result.endpoint, "n": int(len(result.frame)), "events": int(result.frame["event"].sum()),
            "covariates": list(result.covariates.columns), "forest_uni": forest_uni, "forest_mv": forest_mv,
            "table": table_html(shown, max_rows=60), "km": km, "auc": auc_figure,
            "auc_years": result.auc_years, "ph_flagged": table_html(flagged) if len(flagged) else "",
            "not_analysed": table_html(not_analysed) if len(not_analysed) else "",
        })
    model_blocks = []
    for model in models:
        block = dict(model)
        if model.get("summary"):
            summary.append(model["summary"])
        warnings.extend(model.get("warnings", []))
        model_blocks.append(block)
    context = {"endpoints": endpoints, "models": model_blocks, "cutpoint_method": cutpoint_method}
    return Section(id="survival", title="Survival", template="survival.html.j2", order=60, context=context,
                   warnings=list(dict.fromkeys(warnings)), summary=summary)


def immune_survival_section(cohort_label: str, results: list[EndpointResult], info: pd.DataFrame,
                            scores: pd.DataFrame) -> Section:
    """Survival per immune cell type / response score, and immune scores vs ferroptosis and stemness scores."""
    from .models import spearman_table, too_few_tumours

    immune = [s for s in scores.columns if info["category"].get(s, "") in IMMUNE_CATEGORIES]
    partners = [s for s in scores.columns if str(info["category"].get(s, "")).split("/")[0] in ("ferroptosis", "stemness")]
    warnings, summary, blocks = [], [], []
    if not immune:
        warnings.append("no immune-cell or immune-response score in scores.tsv: nothing to show")
    for result in results:
        if result.table.empty or not immune:
            continue
        table = results_table(result, info).set_index("score").loc[[s for s in immune if s in set(result.table["score"])]].reset_index()
        ranked = table.sort_values("p_wald")
        good = ranked[(ranked["fdr"] < 0.05)]
        if len(good):
            summary.append(f"{cohort_label}, {result.endpoint}: immune scores associated with survival (FDR < 0.05): "
                           + ", ".join(f"{r['score']} HR {r['hr']:.2f}" for _, r in good.head(4).iterrows()))
        blocks.append({"endpoint": result.endpoint,
                       "forest": forest_plot(ranked, title=f"Immune scores, univariate Cox, {result.endpoint}", colour_by="category"),
                       "table": table_html(ranked[[c for c in RESULT_COLUMNS if c in ranked.columns]], max_rows=80)})
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
            summary.append(f"{cohort_label}: strongest immune correlation {r['score']} ~ {r['feature']} rho = {r['rho']:.2f}")
        else:
            warnings.append("no immune correlation could be computed (too few samples with both scores, or constant scores)")
    elif immune:
        warnings.append("no ferroptosis or stemness score to correlate the immune scores with")
    return Section(id="immune_survival", title="Immune infiltration and survival", template="immune_survival.html.j2",
                   order=55, context={"blocks": blocks, "correlation_figure": correlation_figure,
                                      "correlation_table": correlation_table, "n_immune": len(immune)},
                   warnings=warnings, summary=summary)


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
        row.update({"meta_hr": meta.hr, "meta_hr_lower": meta.hr_lower, "meta_hr_upper": meta.hr_upper,
                    "meta_p": meta.p, "tau2": meta.tau2, "i2": meta.i2})
        rows.append(row)
    return pd.DataFrame(rows)


def cross_cohort_section(meta: pd.DataFrame, cohorts: list[str]) -> Section:
    summary, blocks = [], []
    if meta.empty:
        return Section(id="cross_cohort", title="Across cohorts", template="cross_cohort.html.j2", order=65,
                       context={"blocks": [], "cohorts": cohorts},
                       warnings=["no score was analysed in two or more cohorts"])
    for endpoint, table in meta.groupby("endpoint"):
        table = table.sort_values("meta_p")
        agree = table["same_direction"].mean()
        summary.append(f"{endpoint}: {int(table['same_direction'].sum())} of {len(table)} scores have the same "
                       f"direction in all {len(cohorts)} cohorts ({agree:.0%}); top pooled: {table.iloc[0]['score']} "
                       f"HR {table.iloc[0]['meta_hr']:.2f} ({table.iloc[0]['meta_hr_lower']:.2f}-"
                       f"{table.iloc[0]['meta_hr_upper']:.2f})")
        blocks.append({"endpoint": endpoint,
                       "forest": forest_plot(table.head(30), hr="meta_hr", lower="meta_hr_lower", upper="meta_hr_upper",
                                             p="meta_p", title=f"Random-effects pooled HR per SD, {endpoint}"),
                       "table": table_html(table, max_rows=100)})
    return Section(id="cross_cohort", title="Across cohorts", template="cross_cohort.html.j2", order=65,
                   context={"blocks": blocks, "cohorts": cohorts}, summary=summary)


def genes_section(cohort_label: str, adata, genes: list[str], *, scores: pd.DataFrame, info: pd.DataFrame,
                  survival_tables: list[pd.DataFrame], checkpoint_genes: list[str], panels: dict[str, list[str]],
                  panel_folds: int = 5, seed: int = 0) -> Section:
    """Gene-of-interest mode (tumour vs normal, survival, immune correlations) and diagnostic panels."""
    from .models import diagnostic_panel, log2_expression, spearman_table, too_few_tumours, tumour_vs_normal

    warnings, summary = [], []
    context: dict[str, Any] = {"genes": [], "panels": []}
    if genes:
        de, notes = tumour_vs_normal(adata, genes)
        warnings.extend(notes)
        present = list(de["gene"]) if len(de) else []
        context["genes"] = present
        context["n_pairs"] = int(de["n_pairs"].max()) if len(de) else 0
        context["de_table"] = table_html(de) if len(de) else ""
        expression = log2_expression(adata, present)
        tissue = adata.obs["tissue"].astype(str)
        patients = adata.obs["patient_id"].astype(str) if "patient_id" in adata.obs else pd.Series(adata.obs_names, index=adata.obs_names)
        context["expression"] = expression_plot(expression, tissue, patients, present) if present and (tissue == "normal").any() else ""
        for _, row in de.iterrows():
            p = row["p_paired_wilcoxon"] if np.isfinite(row["p_paired_wilcoxon"]) else row["p_mannwhitney"]
            if np.isfinite(p) and p < 0.05:
                summary.append(f"{cohort_label}: {row['gene']} {'higher' if row['log2fc'] > 0 else 'lower'} in tumours "
                               f"(log2FC {row['log2fc']:.2f}, p = {_fmt_p(p)})")
        names = [f"gene__{g}" for g in present]
        surv = [t[t["score"].isin(names)] for t in survival_tables if len(t)]
        surv = pd.concat(surv) if surv else pd.DataFrame()
        context["survival_table"] = table_html(surv[[c for c in ["endpoint", *RESULT_COLUMNS] if c in surv.columns]]) if len(surv) else ""
        tumours = tissue == "tumor"
        immune = [s for s in scores.columns if info["category"].get(s, "") in ("immune cell", "immune response")]
        checkpoints = [g for g in checkpoint_genes if g in adata.var_names and g not in present]
        partners = pd.concat([scores.loc[scores.index.intersection(adata.obs_names[tumours]), immune],
                              log2_expression(adata[tumours.to_numpy()], checkpoints)], axis=1)
        few = too_few_tumours(int(tumours.sum()), "correlation of genes of interest with immune scores and checkpoints in tumours")
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
            summary.append(f"{cohort_label}: diagnostic panel {name} ({len(result.genes)} genes) separates tumour from "
                           f"normal with cross-validated AUC {result.auc:.2f}")
    if results:
        context["panels"] = [r.name for r in results]
        context["roc"] = roc_plot(results, title="Tumour vs normal, cross-validated")
        context["panel_table"] = table_html(pd.DataFrame([{
            "panel": r.name, "genes": ", ".join(r.genes), "missing": ", ".join(r.missing), "tumours": r.n_tumour,
            "normals": r.n_normal, "folds": r.folds, "cv_auc": r.auc,
            "fold_auc_range": f"{min(r.fold_auc):.2f}-{max(r.fold_auc):.2f}" if r.fold_auc else "",
            "gene_auc": ", ".join(f"{g} {a:.2f}" for g, a in r.gene_auc.items())} for r in results]))
    return Section(id="genes", title="Genes of interest and diagnostic panels", template="genes.html.j2", order=70,
                   context=context, warnings=warnings, summary=summary)


# --------------------------------------------------------------------------------------------------
# One cohort, end to end (called by workflow/scripts/survival.py)
# --------------------------------------------------------------------------------------------------

def read_scores(scores_path: str, info_path: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """scores.tsv (sample_id + numeric columns) and score_info.tsv (score, category, ...), checked."""
    from .errors import InputFormatError

    scores = pd.read_csv(scores_path, sep="\t")
    if scores.columns[0] != "sample_id":
        raise InputFormatError(f"{scores_path}: the first column must be sample_id, not {scores.columns[0]!r}")
    scores = scores.set_index("sample_id")
    for column in scores.columns:
        converted = pd.to_numeric(scores[column], errors="coerce")
        bad = converted.isna() & scores[column].notna()
        if bad.any():
            raise InputFormatError(f"{scores_path}: score {column!r} is not numeric for sample {bad.idxmax()!r} "
                                   f"({scores.at[bad.idxmax(), column]!r})")
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
            notes.append(f"{int(duplicated.sum())} extra tumour samples of the same patients left out of survival "
                         "(first sample per patient kept)")
        tumours = tumours[~duplicated]
    return tumours.index, notes


def model_block(entry: dict[str, Any], cohort: str, result: EndpointResult, *, cv: pd.DataFrame | None,
                applied: Any) -> dict[str, Any]:
    """Report block of one risk model in one cohort: coefficients, HR / C / AUC here, KM and AUC curves."""
    weights = pd.Series(entry["weights"], dtype=float)
    training = entry.get("training_cohort", "")
    role = "training cohort (in-sample, optimistic)" if training == cohort else "validation cohort (weights applied unchanged)"
    block: dict[str, Any] = {"name": f"{entry.get('name', entry['id'])} — {role}", "coefficients": coefficient_plot(
        weights, title=f"{entry['id']}: {len(weights)} genes"), "km": "", "auc": "", "cv": "", "table": "",
        "warnings": [], "summary": ""}
    block["description"] = (f"{entry.get('citation', '')}; {len(weights)} genes; input: {entry.get('input_scale', '')}; "
                            f"genes used here {len(applied.genes_used)}, missing {len(applied.genes_missing)} "
                            f"({applied.missing_weight_share:.0%} of |weight|).")
    if applied.genes_missing:
        block["warnings"].append(f"risk model {entry['id']}: {', '.join(applied.genes_missing)} not measured in "
                                 f"{cohort} ({applied.missing_weight_share:.0%} of the total |weight| missing)")
    if cv is not None:
        block["cv"] = table_html(cv)
    if result.table.empty:
        block["warnings"].extend(result.warnings)
        return block
    row = result.table.iloc[0]
    score = row["score"]
    frame = result.frame.dropna(subset=[score])
    block["km"] = km_plot(frame["time"].to_numpy(), frame["event"].to_numpy(),
                          np.where(frame[score] > frame[score].median(), "high", "low"),
                          title=f"{entry['id']} in {cohort} ({result.endpoint})", endpoint=result.endpoint)
    block["auc"] = auc_curve_plot(frame["time"].to_numpy(), frame["event"].to_numpy(),
                                  {score: fitted_risk(result, score)[result.frame[score].notna().to_numpy()]},
                                  title=f"{entry['id']} in {cohort}")
    auc_cols = [f"auc_{y:g}y" for y in result.auc_years]
    block["table"] = table_html(result.table[["endpoint", "n", "events", "hr", "hr_lower", "hr_upper", "p_wald",
                                              "c_index", "direction", "km_median_p", *auc_cols]])
    aucs = ", ".join(f"AUC {y:g}y {row[f'auc_{y:g}y']:.2f}" for y in result.auc_years)
    block["summary"] = (f"{entry['id']} ({len(weights)} genes, trained on {training}) in {cohort} "
                        f"[{'training' if training == cohort else 'validation'}]: HR {_fmt_hr(row)} per SD, "
                        f"p = {_fmt_p(row['p_wald'])}, C = {row['c_index']:.2f}"
                        # C is that of the fitted direction: say so when the risk score came out protective here
                        + (" (inverted here: higher score, lower risk)" if row.get("direction") == "higher score, lower risk" else "")
                        + (f", {aucs}" if aucs else ""))
    return block


def documented_risk_block(tables: list[pd.DataFrame], info: pd.DataFrame) -> dict[str, Any] | None:
    """Risk scores from the catalogue (category 'risk score' in score_info), evaluated like every score."""
    risk = [s for s in info.index if str(info.at[s, "category"]).lower() == "risk score"]
    rows = [t[t["score"].isin(risk)] for t in tables if len(t)]
    rows = pd.concat(rows) if rows else pd.DataFrame()
    if rows.empty:
        return None
    columns = ["endpoint", "score", "n", "events", "hr", "hr_lower", "hr_upper", "p_wald", "fdr", "c_index", "direction",
               *[c for c in rows.columns if c.startswith("auc_")], "mv_hr", "mv_p"]
    citation = info["citation"] if "citation" in info.columns else pd.Series(dtype=str)
    described = rows.assign(citation=rows["score"].map(citation).fillna(""))
    return {"name": "Documented risk scores from the signature catalogue", "coefficients": "", "km": "", "auc": "",
            "cv": "", "warnings": [], "summary": "",
            "description": "Published weights applied unchanged (scored by the signature stage); statistics as above.",
            "table": table_html(described[[c for c in columns if c in described.columns] + ["citation"]])}


@dataclass
class CohortSurvival:
    table: pd.DataFrame          # every score x endpoint
    terms: pd.DataFrame          # multivariable model terms
    survival: Section
    immune: Section
    scores: pd.DataFrame         # the scores analysed (tumours, raw scale), genes and risk models included
    info: pd.DataFrame


def cohort_survival(adata, scores: pd.DataFrame, info: pd.DataFrame, block: dict[str, Any], *, cohort: str,
                    label: str, models: list[tuple[dict[str, Any], pd.DataFrame | None]]) -> CohortSurvival:
    """Every survival analysis of one cohort: scores, genes of interest and risk models, on every endpoint."""
    from .models import apply_risk_score, log2_expression
    from .endpoints import requested_endpoints
    from .survival import SurvivalSettings, analyse_endpoint, available_endpoints

    settings = SurvivalSettings.from_config(block)
    tumours, notes = tumour_samples(adata.obs)
    obs = adata.obs.loc[tumours]
    raw = scores.reindex(tumours)
    unscored = raw.isna().all(axis=1) if raw.shape[1] else pd.Series(False, index=tumours)
    if unscored.any():
        notes.append(f"{int(unscored.sum())} tumour samples have no row in scores.tsv")
    info = info.copy()
    genes = list(block.get("genes_of_interest", []))
    present = [g for g in genes if g in adata.var_names]
    notes.extend(f"gene of interest {g}: not measured in this cohort" for g in genes if g not in adata.var_names)
    if present:
        expression = log2_expression(adata[adata.obs_names.isin(tumours)], present).loc[tumours]
        for gene in present:
            raw[f"gene__{gene}"] = expression[gene]
            info.loc[f"gene__{gene}", "category"] = "gene of interest"
    applied_models = []
    for entry, cv in models:
        applied = apply_risk_score(entry, log2_expression(adata[adata.obs_names.isin(tumours)], entry["genes"]).loc[tumours])
        raw[entry["id"]] = applied.score
        info.loc[entry["id"], "category"] = "risk score (derived)"
        applied_models.append((entry, cv, applied))
    endpoints, endpoint_notes = available_endpoints(obs, requested_endpoints(block.get("endpoints", "all"), obs))
    notes.extend(endpoint_notes)
    if not endpoints:
        notes.append("no survival endpoint with data in this cohort: no survival analysis")
    results = [analyse_endpoint(obs, raw, endpoint, settings) for endpoint in endpoints]
    tables = [results_table(r, info) for r in results if not r.table.empty]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["endpoint", *RESULT_COLUMNS])
    terms = pd.concat([t.assign(endpoint=r.endpoint, score=s) for r in results for s, t in r.multivariable_terms.items()],
                      ignore_index=True) if any(r.multivariable_terms for r in results) else pd.DataFrame()
    blocks = []
    for entry, cv, applied in applied_models:
        endpoint = entry.get("training", {}).get("endpoint", "OS")
        if endpoint not in endpoints:
            notes.append(f"risk model {entry['id']}: endpoint {endpoint} not available in {cohort}")
            continue
        single = analyse_endpoint(obs, raw[[entry["id"]]], endpoint, settings)
        blocks.append(model_block(entry, cohort, single, cv=cv, applied=applied))
    documented = documented_risk_block(tables, info)
    if documented:
        blocks.append(documented)
    survival = survival_section(label, results, info, raw_scores=raw, models=blocks, notes=notes,
                                top=int(block.get("plots_top", 4)), cutpoint_method=settings.cutpoint_method)
    immune = immune_survival_section(label, results, info, raw.drop(columns=[c for c in raw if c.startswith("gene__")]))
    return CohortSurvival(table, terms, survival, immune, raw, info)
