"""Report sections of the signature stage: scores (order 40) and immune infiltration (order 50)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .risk_models import too_few_tumours
from .numerics import bh_fdr, standardise
from .plots import TISSUE_COLOURS, figure_uri, new_figure
from .report import Section, table_html
from .scoring import CohortScores

STAGES = ["Stage I", "Stage II", "Stage III", "Stage IV"]


def annotate(scores: pd.DataFrame, obs: pd.DataFrame) -> pd.DataFrame:
    """Sample metadata (obs) followed by the score columns, one row per sample."""
    meta = obs.copy()
    meta.index = meta.index.astype(str)
    meta = meta.drop(columns=[c for c in meta.columns if c in scores.columns or c == "sample_id"])
    joined = meta.join(scores, how="right")
    joined = joined.rename_axis("sample_id")
    return joined


def _summary_scores(info: pd.DataFrame) -> pd.DataFrame:
    """Score columns that summarise a signature (no per-gene panel columns)."""
    return info[info["method"].ne("gene_panel")]


def _pick(info: pd.DataFrame, categories: Sequence[str], preferred: Sequence[str] = ()) -> list[str]:
    available = _summary_scores(info)
    chosen = [s for s in preferred if s in set(available["score"])]
    chosen += [s for s in available.loc[available["category"].isin(categories), "score"] if s not in chosen]
    return chosen


def _tumours(annotated: pd.DataFrame) -> pd.DataFrame:
    """The tumour samples (all samples when there is no tissue column); never normals in their place."""
    tissue = annotated.get("tissue", pd.Series("tumor", index=annotated.index)).astype(str)
    return annotated[tissue.eq("tumor")]


def _distribution_figure(annotated: pd.DataFrame, scores: list[str], by: str, groups: list[str], title: str) -> str:
    from .plots import collect_box_lines

    n = len(scores)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = new_figure(3.2 * cols, 2.6 * rows)
    fig.clear()
    for i, score in enumerate(scores):
        ax = fig.add_subplot(rows, cols, i + 1)
        data = [annotated.loc[annotated[by].astype(str).eq(g), score].dropna().to_numpy() for g in groups]
        present = [(g, d) for g, d in zip(groups, data, strict=True) if len(d)]
        if not present:
            ax.set_axis_off()
            continue
        parts = ax.boxplot([d for _, d in present], patch_artist=True, widths=0.6, showfliers=False)
        for patch, (g, _) in zip(parts["boxes"], present, strict=True):
            patch.set_facecolor(TISSUE_COLOURS.get(g, "#aab7b8"))
            patch.set_alpha(0.6)
        collect_box_lines(ax, parts)
        for j, (_, d) in enumerate(present, start=1):
            ax.scatter(
                np.full(len(d), j) + np.random.default_rng(j).uniform(-0.15, 0.15, len(d)),
                d,
                s=5,
                c="#1b2631",
                alpha=0.5,
                edgecolors="none",
            )
        ax.set_xticks(range(1, len(present) + 1), [g.replace("Stage ", "") for g, _ in present], fontsize=7)
        ax.set_ylabel("score", fontsize=7)
        ax.set_title(f"{score}\n{group_difference(present)}", fontsize=7)
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return figure_uri(fig)


def group_difference(groups: Sequence[tuple[str, np.ndarray]]) -> str:
    """The test a reader expects above a box plot: Mann-Whitney U for two groups, Kruskal-Wallis for more."""
    if len(groups) < 2 or any(len(values) < 2 for _, values in groups):
        return "too few samples to compare"
    if len(groups) == 2:
        return f"Mann-Whitney p = {stats.mannwhitneyu(groups[0][1], groups[1][1]).pvalue:.2g}"
    return f"Kruskal-Wallis p = {stats.kruskal(*[values for _, values in groups]).pvalue:.2g}"


def significance_marks(q: np.ndarray) -> np.ndarray:
    """'***' q < 0.001, '**' < 0.01, '*' < 0.05 (BH-adjusted over the whole heatmap), else ''."""
    return np.select([q < 0.001, q < 0.01, q < 0.05], ["***", "**", "*"], default="")


def _correlation_heatmap(frame: pd.DataFrame, rows: list[str], cols: list[str], title: str) -> tuple[str, pd.DataFrame]:
    rho = pd.DataFrame(index=rows, columns=cols, dtype=float)
    pvalue = pd.DataFrame(np.nan, index=rows, columns=cols)
    for r in rows:
        for c in cols:
            if r == c:
                rho.loc[r, c] = 1.0
                continue
            rho.loc[r, c], pvalue.loc[r, c] = stats.spearmanr(frame[r], frame[c], nan_policy="omit")
    tested = np.isfinite(pvalue.to_numpy())
    q = bh_fdr(pvalue.to_numpy())
    marks = significance_marks(np.where(tested, q, 1.0))
    fig, ax = new_figure(max(5.0, 0.32 * len(cols) + 3), max(4.0, 0.28 * len(rows) + 2))
    image = ax.imshow(rho.to_numpy(dtype=float), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for (i, j), mark in np.ndenumerate(marks):
        if mark:
            ax.text(j, i, mark, ha="center", va="center", fontsize=5, color="#1b2631")
    ax.set_xlabel("* q < 0.05, ** q < 0.01, *** q < 0.001 (Spearman, BH over the heatmap)", fontsize=6)
    ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=6)
    ax.set_yticks(range(len(rows)), rows, fontsize=6)
    fig.colorbar(image, ax=ax, label="Spearman rho", shrink=0.7)
    ax.set_title(title, fontsize=9)
    return figure_uri(fig), rho


def _scatter(frame: pd.DataFrame, x: str, y: str, title: str) -> str:
    fig, ax = new_figure(4.8, 4.0)
    tissue = frame.get("tissue", pd.Series("tumor", index=frame.index)).astype(str)
    for name, colour in TISSUE_COLOURS.items():
        mask = tissue.eq(name)
        if mask.any():
            ax.scatter(
                frame.loc[mask, x], frame.loc[mask, y], s=14, c=colour, alpha=0.75, edgecolors="none", label=name
            )
    tumours = _tumours(frame)
    if too_few_tumours(len(tumours), "correlation"):
        subtitle = f"tumours: {len(tumours)}, too few for a correlation"
    else:
        rho, p = stats.spearmanr(tumours[x], tumours[y], nan_policy="omit")
        subtitle = f"tumours: Spearman rho = {rho:.2f}, p = {p:.2g}"
    ax.set_xlabel(x, fontsize=8)
    ax.set_ylabel(y, fontsize=8)
    ax.set_title(f"{title}\n{subtitle}", fontsize=8)
    ax.legend(frameon=False, fontsize=7)
    return figure_uri(fig)


def _coverage_table(result: CohortScores) -> str:
    shown = result.coverage[
        [
            "signature_id",
            "name",
            "method",
            "genes_found",
            "genes_total",
            "coverage",
            "weight_missing",
            "remapped",
            "missing",
            "scored",
            "reason",
        ]
    ].copy()
    shown["scored"] = shown["scored"].map({True: "yes", False: "NO"})
    return table_html(shown, max_rows=400)


def signatures_section(
    result: CohortScores, annotated: pd.DataFrame, *, order_by: str, min_coverage: float, normalise_ssgsea: bool
) -> Section:
    info = result.info
    tumours = _tumours(annotated)
    warnings = list(result.warnings)
    few = too_few_tumours(len(tumours), "tumour correlations and scores by stage")
    if few:
        warnings.append(few)
    figures = []
    headline = _pick(
        info,
        ["ferroptosis", "risk score", "stemness"],
        preferred=[order_by, "mrnasi_malta2018__minmax", "fps_he_melanoma", "wp4313_ferroptosis"],
    )[:12]
    if headline and "tissue" in annotated:
        figures.append(
            {
                "uri": _distribution_figure(
                    annotated, headline, "tissue", ["normal", "tumor", "other"], "Scores by tissue"
                ),
                "caption": "Ferroptosis, risk and stemness scores in tumour and normal samples.",
            }
        )
    if headline and "stage" in annotated and not few and tumours["stage"].notna().any():
        figures.append(
            {
                "uri": _distribution_figure(tumours, headline, "stage", STAGES, "Scores by stage (tumours)"),
                "caption": "The same scores in tumours by AJCC stage (stage unknown left out).",
            }
        )
    ferro = _pick(info, ["ferroptosis", "risk score"])
    stem = _pick(info, ["stemness"], preferred=["mrnasi_malta2018__minmax"])
    immune = _pick(info, ["immune response", "microenvironment", "immune cell"])
    correlation_table = ""
    if ferro and (stem or immune) and not few:
        uri, rho = _correlation_heatmap(
            tumours, ferro, stem + immune, "Ferroptosis scores vs stemness and immune scores (tumours)"
        )
        figures.append(
            {
                "uri": uri,
                "caption": "Spearman correlation in tumours; rows ferroptosis and risk scores, "
                "columns stemness then immune scores.",
            }
        )
        correlation_table = table_html(rho.reset_index(names="score"), float_format="{:.2f}")
    stemness_x = (
        "mrnasi_malta2018__minmax" if "mrnasi_malta2018__minmax" in info["score"].values else (stem[0] if stem else "")
    )
    scatter_note = ""
    if stemness_x and ferro:
        y = order_by if order_by in ferro else ferro[0]
        figures.append(
            {"uri": _scatter(annotated, stemness_x, y, f"{y} vs {stemness_x}"), "caption": f"{stemness_x} against {y}."}
        )
        if stemness_x != "mrnasi_malta2018__minmax":
            why = result.coverage.loc[result.coverage["signature_id"].eq("mrnasi_malta2018"), "reason"]
            scatter_note = (
                f"mRNAsi is not available in this run ({why.iloc[0] if len(why) else 'not selected'}); "
                f"the scatter uses {stemness_x} instead."
            )
    scored = int(result.coverage["scored"].sum())
    total = len(result.coverage)
    summary = [
        f"Signatures: {scored} of {total} catalogue entries scored ({len(result.scores.columns)} score columns); "
        f"{total - scored} not scored (coverage or resource, see the coverage table)."
    ]
    f_col = order_by if order_by in result.scores.columns else (ferro[0] if ferro else "")
    if f_col and stemness_x and few:
        summary.append(f"Tumours: {f_col} vs {stemness_x}: {few}.")
    elif f_col and stemness_x:
        rho = stats.spearmanr(tumours[f_col], tumours[stemness_x], nan_policy="omit")[0]
        summary.append(f"Tumours: {f_col} vs {stemness_x}, Spearman rho = {rho:.2f}.")
    not_scored = result.coverage.loc[~result.coverage["scored"].astype(bool), ["signature_id", "reason"]]
    info_table = table_html(info[["score", "name", "category", "method", "direction", "citation"]], max_rows=400)
    return Section(
        id="signatures",
        title="Ferroptosis and stemness signatures",
        template="signatures.html.j2",
        order=40,
        context={
            "figures": figures,
            "coverage": _coverage_table(result),
            "info": info_table,
            "correlations": correlation_table,
            "not_scored": table_html(not_scored, max_rows=400),
            "n_not_scored": len(not_scored),
            "min_coverage": min_coverage,
            "normalise_ssgsea": normalise_ssgsea,
            "scatter_note": scatter_note,
        },
        warnings=warnings,
        summary=summary,
    )


def _immune_heatmap(frame: pd.DataFrame, cells: list[str], order_by: str) -> str:
    ordered = frame.sort_values(order_by)
    z = standardise(ordered[cells].astype(float))
    fig, axes = new_figure(9, max(3.5, 0.2 * len(cells) + 2))
    fig.clear()
    grid = fig.add_gridspec(2, 1, height_ratios=[1, max(4, len(cells) / 2)], hspace=0.05)
    top = fig.add_subplot(grid[0])
    top.bar(range(len(ordered)), ordered[order_by].to_numpy(), color="#7f8c8d", width=1)
    top.set_xlim(-0.5, len(ordered) - 0.5)
    top.set_xticks([])
    top.set_ylabel(order_by, fontsize=6, rotation=0, ha="right")
    top.tick_params(labelsize=6)
    ax = fig.add_subplot(grid[1])
    image = ax.imshow(z.T.to_numpy(), cmap="RdBu_r", vmin=-2.5, vmax=2.5, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(cells)), cells, fontsize=6)
    ax.set_xticks([])
    ax.set_xlabel(f"tumour samples ordered by {order_by}", fontsize=8)
    fig.colorbar(image, ax=ax, label="z-score", shrink=0.6)
    return figure_uri(fig)


def immune_section(result: CohortScores, annotated: pd.DataFrame, *, order_by: str) -> Section:
    info = result.info
    tumours = _tumours(annotated)
    figures = []
    warnings = []
    few = too_few_tumours(len(tumours), "immune heatmap, checkpoint correlations and immune summaries in tumours")
    if few:
        warnings.append(few)
    if order_by not in result.scores.columns:
        fallback = _pick(info, ["ferroptosis"])
        warnings.append(
            f"signatures.heatmap_order_by = {order_by!r} is not a score of this run; ordering by "
            f"{fallback[0] if fallback else 'nothing'} instead"
        )
        order_by = fallback[0] if fallback else ""
    cells = list(
        info.loc[
            info["category"].isin(["immune cell", "microenvironment"]) & ~info["score"].str.endswith("__purity"),
            "score",
        ]
    )
    response = list(info.loc[info["category"].eq("immune response"), "score"])
    if cells and order_by and not few:
        figures.append(
            {
                "uri": _immune_heatmap(tumours, cells + response, order_by),
                "caption": f"Immune and stromal cell scores (z-scored per row) in tumours ordered by {order_by}.",
            }
        )
    checkpoints = list(info.loc[info["category"].eq("checkpoint"), "score"])
    key_scores = _pick(info, ["ferroptosis", "risk score", "stemness", "immune response"], preferred=[order_by])[:15]
    if checkpoints and key_scores and not few:
        uri, _ = _correlation_heatmap(
            tumours, checkpoints, key_scores, "Checkpoint gene expression vs scores (tumours)"
        )
        figures.append(
            {
                "uri": uri,
                "caption": "Spearman correlation of immune checkpoint genes (log2 expression) "
                "with the scores, tumours.",
            }
        )
        figures.append(
            {
                "uri": _scatter(annotated, order_by, checkpoints[0], f"{checkpoints[0]} vs {order_by}"),
                "caption": f"{checkpoints[0]} expression against {order_by}.",
            }
        )
    estimate_cols = [c for c in result.scores.columns if c.startswith("estimate__")]
    estimate_table = ""
    if estimate_cols and not few:
        described = tumours[estimate_cols].describe().T[["mean", "std", "min", "50%", "max"]]
        estimate_table = table_html(described.reset_index(names="score"))
    summary = []
    cytotoxic = [c for c in ("cyt_rooney2015", "mcpcounter__Cytotoxic_lymphocytes") if c in result.scores.columns]
    if cytotoxic and order_by and not few:
        rho = stats.spearmanr(tumours[cytotoxic[0]], tumours[order_by], nan_policy="omit")[0]
        summary.append(f"Immune: {cytotoxic[0]} vs {order_by} in tumours, Spearman rho = {rho:.2f}.")
    immune_cov = result.coverage[
        result.coverage["category"].isin(["immune cell", "immune response", "checkpoint", "microenvironment"])
        | result.coverage["signature_id"].isin(["charoentong28"])
    ]
    # a list that could not even be mapped (genes_total 0) was left out for its resource: say so here too
    for row in immune_cov[~immune_cov["scored"].astype(bool) & immune_cov["genes_total"].eq(0)].itertuples():
        warnings.append(f"{row.signature_id} {row.reason}")
    return Section(
        id="immune",
        title="Immune infiltration",
        template="immune.html.j2",
        order=50,
        context={
            "figures": figures,
            "estimate": estimate_table,
            "order_by": order_by,
            "coverage": table_html(
                immune_cov[["signature_id", "genes_found", "genes_total", "missing", "scored", "reason"]], max_rows=100
            ),
        },
        warnings=warnings,
        summary=summary,
    )
