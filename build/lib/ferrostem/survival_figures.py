"""Figures of the survival stage and of the pages built on it: forest plots, Kaplan-Meier curves, AUC over time,
heatmaps, risk-model coefficients, ROC curves and tumour-vs-normal expression. Each returns a data URI
(`plots.figure_uri`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .cox import cox_univariate
from .plots import figure_uri
from .survival import DAYS_PER_YEAR, logrank_test

import matplotlib.pyplot as plt

GROUP_COLOURS = {"low": "#2471a3", "mid": "#7f8c8d", "high": "#c0392b"}


def format_p(p: float) -> str:
    """A p-value for a figure or a sentence: 0.032, 1.2e-05, NA."""
    if p is None or not np.isfinite(p):
        return "NA"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def forest_plot(
    table: pd.DataFrame,
    *,
    label: str = "score",
    hr: str = "hr",
    lower: str = "hr_lower",
    upper: str = "hr_upper",
    p: str = "p_wald",
    title: str = "",
    colour_by: str | None = None,
) -> str:
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
    labels = [
        f"{r[label]}" + (f" [{r[colour_by]}]" if colour_by and isinstance(r.get(colour_by), str) else "")
        for _, r in rows.iterrows()
    ]
    ax.set_yticks(y, labels, fontsize=8)
    for yi, (_, r) in zip(y, rows.iterrows()):
        ax.annotate(
            f"{r[hr]:.2f} ({r[lower]:.2f}-{r[upper]:.2f})  p={format_p(r[p])}",
            (1.01, yi),
            xycoords=("axes fraction", "data"),
            fontsize=7,
            va="center",
        )
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
    row = cox_univariate(
        np.asarray(time_days, dtype=float)[keep], np.asarray(event, dtype=float)[keep], indicator
    ).iloc[0]
    if not np.isfinite(row["hr"]):
        return f"HR {high} vs {low} not estimable"
    return f"HR {high} vs {low} {row['hr']:.2f} ({row['hr_lower']:.2f}-{row['hr_upper']:.2f})"


def km_plot(
    time_days: np.ndarray,
    event: np.ndarray,
    groups: pd.Series | np.ndarray,
    *,
    title: str,
    note: str = "",
    endpoint: str = "",
    hazard_ratio: bool = True,
) -> str:
    """Kaplan-Meier curves per group (lifelines) with the numbers at risk under the plot, time in years.

    `hazard_ratio`: the title gives the HR of the high group against the low one (groups low/mid/high); groups
    without that order (subtypes) turn it off."""
    from lifelines import KaplanMeierFitter
    from lifelines.plotting import add_at_risk_counts

    groups = pd.Series(np.asarray(groups, dtype=object))
    fig, ax = plt.subplots(figsize=(6.2, 4.6))
    fitters = []
    for group in [g for g in ["low", "mid", "high"] if g in set(groups)] + sorted(
        set(groups) - {"low", "mid", "high", None}
    ):
        member = (groups == group).to_numpy()
        if not member.any():
            continue
        kmf = KaplanMeierFitter(label=f"{group} (n={member.sum()})")
        kmf.fit(np.asarray(time_days)[member] / DAYS_PER_YEAR, np.asarray(event)[member])
        kmf.plot_survival_function(
            ax=ax,
            ci_show=False,
            show_censors=True,
            color=GROUP_COLOURS.get(group),
            censor_styles={"ms": 4, "marker": "|"},
        )
        fitters.append(kmf)
    test = logrank_test(time_days, event, groups.to_numpy())
    p_text = note or f"log-rank p = {format_p(test.p)}"
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


def heatmap(
    matrix: pd.DataFrame,
    *,
    title: str,
    vmin: float = -1,
    vmax: float = 1,
    label: str = "Spearman rho",
    marks: pd.DataFrame | None = None,
) -> str:
    """A diverging heatmap; `marks` (same shape, strings such as '*') are written in their cells; missing
    cells are grey."""
    fig, ax = plt.subplots(figsize=(0.42 * matrix.shape[1] + 3, 0.32 * matrix.shape[0] + 2))
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="#d9d9d9")
    image = ax.imshow(
        np.ma.masked_invalid(matrix.to_numpy(dtype=float)), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto"
    )
    if marks is not None:
        for (i, j), text in np.ndenumerate(
            marks.reindex(index=matrix.index, columns=matrix.columns).fillna("").to_numpy()
        ):
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
