"""Figures and the report section of gene-set enrichment (one section per comparison)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .enrichment import EnrichmentResult, EnrichmentSettings
from .plots import figure_uri, new_figure
from .report import Section, table_html


def running_score_figure(name: str, curve: dict[str, Any], row: pd.Series) -> plt.Figure:
    fig, (ax, rug) = plt.subplots(2, 1, figsize=(4.8, 3.2), sharex=True, gridspec_kw={"height_ratios": [4, 0.7]})
    res = curve["RES"]
    ax.plot(np.arange(len(res)), res, color="#1e8449", lw=1.2)
    ax.axhline(0, color="#555", lw=0.5)
    ax.set_ylabel("running ES")
    ax.set_title(f"{name}\nNES {row['NES']:.2f}, FDR {row['fdr']:.3g}", fontsize=8)
    rug.vlines(curve["hits"], 0, 1, color="#000", lw=0.5)
    rug.set_yticks([])
    rug.set_xlabel("gene rank (up in test -> down)")
    return fig


def dot_plot_figure(gsea: pd.DataFrame, per_collection: int = 10) -> plt.Figure:
    chosen = (
        gsea.assign(abs_nes=gsea["NES"].abs())
        .sort_values(["collection", "fdr", "abs_nes"], ascending=[True, True, False])
        .groupby("collection", sort=True)
        .head(per_collection)
    )
    chosen = chosen.iloc[::-1]
    fig, ax = new_figure(7.0, max(2.5, 0.24 * len(chosen) + 1.0))
    sizes = 20 + 40 * np.clip(-np.log10(chosen["fdr"].clip(lower=1e-4)), 0, 4)
    scatter = ax.scatter(
        chosen["NES"],
        np.arange(len(chosen)),
        s=sizes,
        c=chosen["NES"],
        cmap="RdBu_r",
        vmin=-3,
        vmax=3,
        edgecolors="#333",
        linewidths=0.4,
    )
    ax.set_yticks(range(len(chosen)), [f"{s} [{c}]" for s, c in zip(chosen["set"], chosen["collection"])], fontsize=7)
    ax.axvline(0, color="#555", lw=0.5)
    ax.set_xlabel("normalised enrichment score (NES)")
    ax.set_title("GSEA across collections", fontsize=9)
    fig.colorbar(scatter, ax=ax, fraction=0.03, label="NES")
    size_key = [
        ax.scatter([], [], s=20 + 40 * k, facecolors="none", edgecolors="#333", label=f"FDR {fdr}")
        for k, fdr in ((0, "1"), (1, "0.1"), (2, "0.01"), (4, "\u2264 1e-4"))
    ]
    ax.legend(
        handles=size_key,
        title="dot size",
        fontsize=7,
        title_fontsize=7,
        frameon=False,
        loc="upper left",
        bbox_to_anchor=(1.12, 1),
    )
    return fig


def enrichment_section(
    result: EnrichmentResult, settings: EnrichmentSettings, *, cohort: str, comparison: str, test: str, alpha: float
) -> Section:
    gsea = result.gsea
    figures = []
    if len(gsea):
        figures.append(
            {
                "uri": figure_uri(dot_plot_figure(gsea)),
                "caption": f"Top sets of each collection by FDR; positive NES = enriched among genes up in {test}.",
            }
        )
    themed = [s for s in gsea["set"] if result.themes.get(result.sets[s].collection) in ("ferroptosis", "stemness")]
    top = gsea.assign(a=gsea["NES"].abs()).sort_values("a", ascending=False)["set"].head(settings.running_score_plots)
    plotted = list(dict.fromkeys([*top, *themed]))[:40]
    running = []
    indexed = gsea.set_index("set")
    for name in plotted:
        running.append(
            {
                "uri": figure_uri(running_score_figure(name, result.curves[name], indexed.loc[name]), dpi=90),
                "caption": name,
            }
        )
    dropped = result.sizes[~result.sizes["kept"]]
    ora_shown = result.ora[result.ora["padj"] < 0.25] if len(result.ora) else result.ora
    lines = []
    for name in themed:
        row = indexed.loc[name]
        if row["fdr"] < 0.25:
            lines.append(
                f"{cohort} {comparison}: {name} {'up' if row['NES'] > 0 else 'down'} in {test} "
                f"(NES {row['NES']:.2f}, FDR {row['fdr']:.2g})."
            )
    not_run = (
        result.collections[result.collections["status"] != "run"] if len(result.collections) else result.collections
    )
    warnings = [f"collection {r.collection} not run: {r.reason}" for r in not_run.itertuples()]
    return Section(
        id=f"enrichment_{comparison}",
        title=f"Gene-set enrichment: {comparison}",
        template="enrichment.html.j2",
        order=30,
        warnings=warnings,
        summary=lines[:6],
        context={
            "settings": {
                "ranking statistic": "DE stat (Wald statistic or moderated t)",
                "set sizes kept": f"{settings.min_size} to {settings.max_size} tested genes",
                "permutations": settings.permutations,
                "seed": settings.seed,
                "ORA": f"hypergeometric, up/down at padj < {alpha}, universe = tested genes, BH per "
                "collection and direction"
                if settings.ora
                else "off",
                "sets tested": len(result.sets),
                "sets dropped": int(len(dropped)),
            },
            "collections": table_html(result.collections),
            "gsea": table_html(gsea, max_rows=60),
            "ora": table_html(ora_shown, max_rows=60),
            "dropped": table_html(dropped.drop(columns=["kept"]), max_rows=100),
            "figures": figures,
            "running": running,
        },
    )
