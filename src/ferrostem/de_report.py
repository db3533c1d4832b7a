"""Figures and the report section of differential expression (one section per comparison)."""

from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .de import ENGINE_LABELS, GROUP, DEResult
from .genesets import FERROPTOSIS_CORE_REGULATORS
from .plots import TISSUE_COLOURS, figure_uri, new_figure, pca_coordinates
from .report import Section, table_html

# Classic cancer-stem-cell and pluripotency markers, used only to label points in the volcano plot.
STEMNESS_LABEL_MARKERS = (
    "PROM1",
    "CD44",
    "EPCAM",
    "SOX2",
    "POU5F1",
    "NANOG",
    "KLF4",
    "MYC",
    "ALDH1A1",
    "LIN28B",
    "SALL4",
    "ABCG2",
    "THY1",
    "BMI1",
    "NES",
    "TERT",
)
GROUP_COLOURS = {"test": TISSUE_COLOURS["tumor"], "reference": TISSUE_COLOURS["normal"]}


def volcano_figure(table: pd.DataFrame, alpha: float, title: str) -> plt.Figure:
    from adjustText import adjust_text

    fig, ax = new_figure(6.5, 5.6)
    data = table.dropna(subset=["pvalue"])
    y = -np.log10(np.clip(data["pvalue"].to_numpy(), 1e-300, None))
    sig = (data["padj"] < alpha).to_numpy()
    up = (data["log2FC"] > 0).to_numpy()
    colours = np.where(~sig, "#b3b6b7", np.where(up, TISSUE_COLOURS["tumor"], TISSUE_COLOURS["normal"]))
    ax.scatter(data["log2FC"], y, c=colours, s=5, alpha=0.6, edgecolors="none", rasterized=True)
    labels, marked_x, marked_y = [], [], []
    for genes, colour, marker in (
        (FERROPTOSIS_CORE_REGULATORS, "#7d3c98", "o"),
        (STEMNESS_LABEL_MARKERS, "#d68910", "s"),
    ):
        present = data.index.intersection(list(genes))
        px, py = data.loc[present, "log2FC"], -np.log10(np.clip(data.loc[present, "pvalue"], 1e-300, None))
        ax.scatter(px, py, s=22, facecolors="none", edgecolors=colour, marker=marker, linewidths=1.1)
        # every core regulator is named; a stemness marker only when it is significant (the rest crowd y = 0)
        named = [g for g in present if genes is FERROPTOSIS_CORE_REGULATORS or data.at[g, "padj"] < alpha]
        labels += [ax.text(px[g], py[g], g, fontsize=7, color=colour) for g in named]
        marked_x += list(px[named])
        marked_y += list(py[named])
    if labels:
        # Labels of neighbouring regulators (GPX4, AIFM2, SLC3A2, ...) otherwise print over each other.
        adjust_text(
            labels,
            x=marked_x,
            y=marked_y,
            ax=ax,
            expand=(1.3, 1.6),
            iter_lim=500,
            arrowprops={"arrowstyle": "-", "color": "#7f8c8d", "lw": 0.5},
        )
    ax.axvline(0, color="#555", lw=0.5)
    ax.set_xlabel("log2 fold change (test / reference)")
    ax.set_ylabel("-log10 p-value")
    ax.set_title(title)
    handles = [
        ax.scatter([], [], s=12, c=TISSUE_COLOURS["tumor"], label=f"padj < {alpha}, up"),
        ax.scatter([], [], s=12, c=TISSUE_COLOURS["normal"], label=f"padj < {alpha}, down"),
        ax.scatter([], [], s=12, c="#b3b6b7", label="not significant"),
        ax.scatter([], [], s=22, facecolors="none", edgecolors="#7d3c98", label="ferroptosis core regulators"),
        ax.scatter([], [], s=22, facecolors="none", edgecolors="#d68910", marker="s", label="stemness markers"),
    ]
    # Below the axes, so that the legend never covers points.
    ax.legend(handles=handles, frameon=False, fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3)
    return fig


def ma_figure(table: pd.DataFrame, alpha: float, log_mean: bool) -> plt.Figure:
    fig, ax = new_figure(6.0, 4.0)
    data = table.dropna(subset=["log2FC"])
    x = np.log10(data["baseMean"].clip(lower=1e-3)) if log_mean else data["baseMean"]
    sig = (data["padj"] < alpha).to_numpy()
    ax.scatter(x[~sig], data["log2FC"][~sig], s=4, c="#b3b6b7", edgecolors="none", rasterized=True)
    ax.scatter(
        x[sig], data["log2FC"][sig], s=5, c="#c0392b", edgecolors="none", rasterized=True, label=f"padj < {alpha}"
    )
    ax.axhline(0, color="#555", lw=0.5)
    ax.set_xlabel("log10 mean normalised count" if log_mean else "mean log2 expression")
    ax.set_ylabel("log2 fold change")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("MA plot")
    return fig


def pca_figure(expression: pd.DataFrame, groups: pd.Series, labels: dict[str, str], scale: str) -> plt.Figure:
    coordinates, ratio = pca_coordinates(expression, n_top_genes=500)
    coords = coordinates.to_numpy()
    fig, ax = new_figure(5.5, 4.5)
    for level, colour in GROUP_COLOURS.items():
        mask = (groups == level).to_numpy()
        ax.scatter(
            coords[mask, 0],
            coords[mask, 1],
            s=14,
            c=colour,
            alpha=0.8,
            edgecolors="none",
            label=f"{labels[level]} (n={mask.sum()})",
        )
    ax.set_xlabel(f"PC1 ({ratio[0]:.1%})")
    ax.set_ylabel(f"PC2 ({ratio[1]:.1%})")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(f"PCA, 500 most variable genes ({scale})", fontsize=9)
    return fig


def heatmap_figure(
    expression: pd.DataFrame, genes: list[str], groups: pd.Series, title: str, labels: dict[str, str]
) -> plt.Figure:
    order = np.argsort(groups.map({"reference": 0, "test": 1}).to_numpy(), kind="stable")
    sub = expression.iloc[order][genes].to_numpy(dtype=float)
    z = (sub - sub.mean(axis=0)) / np.where(sub.std(axis=0) > 0, sub.std(axis=0), 1)
    height = max(2.5, 0.16 * len(genes) + 1.2)
    fig, (bar, ax) = plt.subplots(
        2, 1, figsize=(7.5, height), gridspec_kw={"height_ratios": [0.4, len(genes)]}, sharex=True
    )
    colours = groups.iloc[order].map({"reference": 0, "test": 1}).to_numpy()[None, :]
    bar.imshow(
        colours,
        aspect="auto",
        cmap=plt.matplotlib.colors.ListedColormap([GROUP_COLOURS["reference"], GROUP_COLOURS["test"]]),
    )
    bar.set_yticks([])
    bar.set_title(title, fontsize=9)
    bar.legend(
        handles=[
            plt.matplotlib.patches.Patch(color=GROUP_COLOURS[level], label=labels[level])
            for level in ("reference", "test")
        ],
        fontsize=7,
        frameon=False,
        ncol=2,
        loc="lower right",
        bbox_to_anchor=(1, 1),
    )
    image = ax.imshow(np.clip(z.T, -3, 3), aspect="auto", cmap="RdBu_r", vmin=-3, vmax=3, interpolation="nearest")
    ax.set_yticks(range(len(genes)), genes, fontsize=6.5)
    ax.set_xticks([])
    ax.set_xlabel(f"samples ({labels['reference']}, then {labels['test']})")
    fig.colorbar(image, ax=ax, fraction=0.03, label="z-score")
    return fig


def _symbol_first(ranked: pd.DataFrame) -> pd.DataFrame:
    """The gene symbol (the table's index) first, its Ensembl or probe id beside it."""
    shown = ranked.drop(columns=[c for c in ("symbol",) if c in ranked]).reset_index(names="gene")
    return shown[["gene", *[c for c in shown.columns if c != "gene"]]]


def de_section(
    result: DEResult, *, cohort: str, alpha: float, top_genes: int, simulated: bool, table_path: str
) -> Section:
    from .runtime import single_threaded_blas

    # The PCA's SVD is a few hundred samples x 500 genes: threaded OpenBLAS spends more CPU spinning its
    # threads than computing (tens of times the single-threaded CPU on the loaded 2-core machine), as in the fit.
    with single_threaded_blas():
        return _de_section(
            result, cohort=cohort, alpha=alpha, top_genes=top_genes, simulated=simulated, table_path=table_path
        )


def _de_section(
    result: DEResult, *, cohort: str, alpha: float, top_genes: int, simulated: bool, table_path: str
) -> Section:
    plan, table = result.plan, result.table
    comparison = plan.comparison
    labels = {"test": comparison.test, "reference": comparison.reference}
    title = f"{comparison.test} vs {comparison.reference}"
    groups = plan.frame[GROUP].astype(str).reindex(result.expression.index)
    summary = result.summary(alpha)
    engine = ENGINE_LABELS[summary.get("engine", "vectorised")]
    method_name = {
        "deseq2": f"DESeq2 negative binomial GLM, Wald test ({engine})",
        "limma": "limma lmFit/eBayes moderated t (inmoose)",
    }[result.method]
    ranked = table.dropna(subset=["padj"]).sort_values(["padj", "pvalue"])
    top = ranked[ranked["padj"] < alpha].head(top_genes).index.tolist() or ranked.head(top_genes).index.tolist()
    core = [g for g in FERROPTOSIS_CORE_REGULATORS if g in table.index]
    missing_core = [g for g in FERROPTOSIS_CORE_REGULATORS if g not in table.index]
    figures = [
        {
            "uri": figure_uri(volcano_figure(table, alpha, f"{comparison.name}: {title}")),
            "caption": f"Volcano plot; coloured points have padj < {alpha}; ferroptosis core regulators and stemness "
            "markers are circled and named.",
        },
        {"uri": figure_uri(ma_figure(table, alpha, result.method == "deseq2")), "caption": "MA plot."},
        {
            "uri": figure_uri(pca_figure(result.expression, groups, labels, result.expression_scale)),
            "caption": f"PCA of the compared samples on {result.expression_scale} values.",
        },
    ]
    if top:
        figures.append(
            {
                "uri": figure_uri(
                    heatmap_figure(result.expression, top, groups, f"Top {len(top)} DE genes (row z-scores)", labels)
                ),
                "caption": f"The {len(top)} genes with the smallest padj.",
            }
        )
    if core:
        figures.append(
            {
                "uri": figure_uri(
                    heatmap_figure(
                        result.expression, core, groups, "Ferroptosis core regulators (row z-scores)", labels
                    )
                ),
                "caption": "Ferroptosis core regulators: " + ", ".join(core) + ".",
            }
        )
    facts = {
        "method": method_name,
        "design": comparison.formula,
        "compared": f"{comparison.column}: {comparison.test} (n={plan.n_test}) vs {comparison.reference} "
        f"(n={plan.n_reference})" + (f", paired by {comparison.pair_by}" if comparison.paired else ""),
        "genes tested": f"{result.genes_tested:,} of {result.genes_in:,} ({summary['prefilter']})",
        f"significant (padj < {alpha})": f"{summary['significant']:,} ({summary['up']:,} up, {summary['down']:,} down)",
    }
    if result.method == "deseq2":
        facts["independent filtering"] = summary["independent_filtering"]
        if "dispersion_trend" in summary:
            facts["dispersion trend"] = dispersion_trend_fact(summary["dispersion_trend"], summary["fit_type"])
        facts["LFC shrinkage"] = (
            "apeGLM (log2FC shrunk; stat and p-values are Wald)" if summary["lfc_shrink"] else "off"
        )
    else:
        facts["eBayes prior"] = f"d0 = {summary['eBayes_df_prior']:.1f}, s0^2 = {summary['eBayes_s2_prior']:.3g}"
    core_table = table.loc[
        core, [c for c in ("gene_id", "log2FC", "lfcSE", "stat", "pvalue", "padj") if c in table]
    ].reset_index(names="gene")
    lines = [
        f"{cohort} {comparison.name} ({result.method}): {summary['significant']:,} genes at padj < {alpha} "
        f"({summary['up']:,} up, {summary['down']:,} down in {comparison.test})."
    ]
    shown = [f"{g} {table.at[g, 'log2FC']:+.2f}" for g in ("GPX4", "SLC7A11", "ACSL4") if g in table.index]
    if shown:
        lines.append(f"{cohort} {comparison.name}: log2FC " + ", ".join(shown) + ".")
    warnings = list(plan.notes) + (
        [f"core regulators not tested (absent or filtered): {', '.join(missing_core)}"] if missing_core else []
    )
    return Section(
        id=f"de_{comparison.name}",
        title=f"Differential expression: {comparison.name}",
        template="de.html.j2",
        order=20,
        warnings=warnings,
        summary=lines,
        context={
            "facts": facts,
            "simulated": simulated,
            "top": table_html(_symbol_first(ranked.head(30))),
            "table_path": table_path,
            "core": table_html(core_table),
            "figures": figures,
        },
    )


TREND_NAMES = {"parametric": "parametric a0 + a1/mean", "local": "local regression (locfit)", "mean": "trimmed mean"}


def dispersion_trend_fact(used: str, requested: str) -> str:
    """The dispersion trend used, and DESeq2's fall-back when it is not the one asked for."""
    if used == requested:
        return TREND_NAMES.get(used, used)
    who = "DESeq2's fall-back" if used == "local" else "PyDESeq2's fall-back; R uses the local fit"
    return f"{TREND_NAMES.get(used, used)} (the {TREND_NAMES.get(requested, requested)} fit failed: {who})"
