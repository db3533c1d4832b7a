"""The clinical-models report section: nomogram (rms-style point axes), calibration and decision-curve figures."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .clinical_models import (
    PRETTY_INTERVALS,
    ClinicalModel,
    ClinicalSettings,
    Nomogram,
    clinical_model,
    model_tables,
    r_pretty,
    risk_score_columns,
)
from .errors import CohortError
from .plots import figure_uri
from .report import Section, table_html

SURVIVAL_TICKS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)  # rms examples' fun.at
MIN_LABEL_GAP = 3.5  # points (of the 0-100 width) between two tick labels of a nomogram axis
LABELS = {"stage": "Stage (I-IV)", "age": "Age (years)", "male": "Sex (male = 1)"}


def _format(value: float) -> str:
    return f"{value:g}" if abs(value) >= 0.01 or value == 0 else f"{value:.2g}"


def nomogram_plot(nomogram: Nomogram, horizons: list[float], *, title: str) -> str:
    """An rms-style nomogram: a Points axis, one axis per predictor, Total points, and survival per horizon."""
    rows: list[tuple[str, np.ndarray, list[str]]] = [
        ("Points", np.arange(0, 101, 10.0), [f"{p:g}" for p in range(0, 101, 10)])
    ]
    for name, axis in nomogram.axes.items():
        rows.append((LABELS.get(name, name), axis["points"].to_numpy(), [_format(v) for v in axis["value"]]))
    total_max = float(sum(axis["points"].max() for axis in nomogram.axes.values()))
    totals = r_pretty(0.0, total_max, PRETTY_INTERVALS)  # rms: pretty(c(0, sum.max), nint)
    totals = totals[totals <= total_max + 1e-9]
    scale = 100.0 / max(total_max, 1e-12)  # total points are drawn on the 0-100 width too
    rows.append(("Total points", totals * scale, [f"{t:g}" for t in totals]))
    model = nomogram.model
    for horizon in horizons:
        baseline = float(model.survival(horizon, model.center))
        ticks, labels = [], []
        for s in SURVIVAL_TICKS:
            if 0 < baseline < 1:
                lp = model.center + math.log(math.log(s) / math.log(baseline))
                points = float((lp - nomogram.lp_at_zero) * nomogram.points_per_lp)
                if 0 <= points <= total_max:
                    ticks.append(points * scale)
                    labels.append(f"{s:g}")
        rows.append((f"{horizon:g}-year survival", np.array(ticks), labels))
    fig, ax = plt.subplots(figsize=(8.5, 0.55 * len(rows) + 0.8))
    for i, (label, positions, texts) in enumerate(rows):
        y = len(rows) - 1 - i
        ax.text(-3, y, label, ha="right", va="center", fontsize=8)
        if len(positions) == 0:
            ax.text(0, y, "(outside the range of total points)", fontsize=7, va="center", color="#777")
            continue
        ax.hlines(y, positions.min(), positions.max(), color="#222", lw=0.9)
        ax.vlines(positions, y, y + 0.15, color="#222", lw=0.8)
        labelled = -np.inf
        for position, text in zip(positions, texts):
            # a predictor with a small coefficient has its ticks close together: label only every few points
            if abs(position - labelled) >= MIN_LABEL_GAP:
                ax.text(position, y + 0.22, text, ha="center", va="bottom", fontsize=6.5)
                labelled = position
    ax.set_xlim(-1, 103)
    ax.set_ylim(-0.6, len(rows) - 0.3)
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    return figure_uri(fig)


def calibration_plot(calibration: pd.DataFrame, *, title: str) -> str:
    """Observed (KM) against predicted survival per group and horizon, apparent and bootstrap-corrected."""
    fig, ax = plt.subplots(figsize=(4.8, 4.6))
    ax.plot([0, 1], [0, 1], color="#888", ls="--", lw=0.9, label="ideal")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for colour, (horizon, rows) in zip(colours, calibration.groupby("horizon")):
        ax.plot(
            rows["mean_predicted"],
            rows["km"],
            "o-",
            color=colour,
            ms=4,
            lw=0.8,
            alpha=0.5,
            label=f"{horizon:g} y apparent",
        )
        ax.plot(
            rows["mean_predicted"],
            rows["km_corrected"],
            "x-",
            color=colour,
            ms=6,
            lw=1.4,
            label=f"{horizon:g} y bootstrap-corrected",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted survival (Cox model)")
    ax.set_ylabel("observed survival (Kaplan-Meier)")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title, fontsize=10)
    return figure_uri(fig)


def decision_plot(decision: pd.DataFrame, *, title: str) -> str:
    """Net benefit against threshold probability per horizon: the model, treat all, treat none."""
    horizons = sorted(decision["horizon"].unique())
    fig, axes = plt.subplots(1, len(horizons), figsize=(3.6 * len(horizons), 3.4), squeeze=False, sharey=True)
    top = max(float(decision[["model", "treat_all"]].max().max()), 0.05)
    for ax, horizon in zip(axes[0], horizons):
        rows = decision[decision["horizon"] == horizon]
        ax.plot(rows["threshold"], rows["model"], color="#c0392b", lw=1.6, label="model")
        ax.plot(rows["threshold"], rows["treat_all"], color="#7f8c8d", lw=1.0, label="treat all")
        ax.plot(rows["threshold"], rows["treat_none"], color="#222", lw=1.0, ls="--", label="treat none")
        ax.set_ylim(-0.05 * top - 0.01, top * 1.1)
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"threshold risk of the event by {horizon:g} y")
        ax.set_title(f"{horizon:g} year{'s' if horizon != 1 else ''}", fontsize=9)
    axes[0][0].set_ylabel("net benefit")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return figure_uri(fig)


def clinical_models_section(
    cohort_label: str, models: list[ClinicalModel], *, notes: list[str], settings_text: str
) -> Section:
    blocks, summary = [], []
    for m in models:
        terms = m.model.table()
        title = f"{m.score} + {', '.join(m.model.predictors[1:]) or 'no clinical covariate'} ({m.endpoint})"
        corrected = m.calibration
        blocks.append(
            {
                "title": title,
                "n": m.model.n,
                "events": m.model.events,
                "notes": m.notes,
                "nomogram": nomogram_plot(m.nomogram, m.horizons, title=title),
                "calibration": calibration_plot(corrected, title=f"Calibration, {m.score}")
                if not corrected.empty
                else "",
                "decision": decision_plot(m.decision, title=f"Decision curves, {m.score}")
                if not m.decision.empty
                else "",
                "terms": table_html(terms),
                "points": table_html(m.nomogram.points_table()),
                "calibration_table": table_html(
                    corrected[
                        ["horizon", "group", "patients", "mean_predicted", "km", "mean_optimism", "km_corrected", "n"]
                    ]
                )
                if not corrected.empty
                else "",
            }
        )
        row = terms.iloc[0]
        summary.append(
            f"Clinical model of {m.score} with {', '.join(m.model.predictors[1:]) or 'no covariate'} "
            f"({m.endpoint}, {m.model.n} patients, {m.model.events} events): HR {row['hr']:.2f} per unit "
            f"of the score adjusted, p = {row['p_wald']:.2g}"
        )
    warnings = list(dict.fromkeys(list(notes) + [n for m in models for n in m.notes if not n.startswith("LASSO-Cox")]))
    return Section(
        id="clinical_models",
        title="Clinical models: nomogram, calibration, decision curves",
        template="clinical_models.html.j2",
        order=62,
        context={"cohort": cohort_label, "blocks": blocks, "notes": notes, "settings": settings_text},
        warnings=warnings,
        summary=summary[:3],
    )


@dataclass
class CohortClinicalModels:
    models: list[ClinicalModel]
    tables: dict[str, pd.DataFrame]
    section: Section


def cohort_clinical_models(
    adata,
    scores: pd.DataFrame,
    info: pd.DataFrame,
    block: dict[str, Any],
    *,
    models: list[dict[str, Any]],
    cohort: str,
    label: str,
) -> CohortClinicalModels:
    """The clinical models of one cohort's tumours: each risk score (and each LASSO-Cox entry applied here)."""
    from .risk_models import apply_risk_score, log2_expression
    from .survival_stage import tumour_samples

    settings = ClinicalSettings.from_config(block)
    tumours, notes = tumour_samples(adata.obs)
    obs = adata.obs.loc[tumours]
    raw = scores.reindex(tumours)
    info = info.astype({"category": object})
    roles = {}
    for entry in models:
        training = entry.get("training_cohort", "")
        roles[entry["id"]] = f"LASSO-Cox score trained on {training}: " + (
            "this is its training cohort (in-sample, optimistic)"
            if training == cohort
            else "weights applied unchanged (validation)"
        )
        expression = log2_expression(adata[adata.obs_names.isin(tumours)], entry["genes"]).loc[tumours]
        applied = apply_risk_score(entry, expression)
        raw[entry["id"]] = applied.score
        if applied.genes_missing:
            notes.append(
                f"risk model {entry['id']}: {', '.join(applied.genes_missing)} not measured here "
                f"({applied.missing_weight_share:.0%} of the total |weight| missing)"
            )
        info.loc[entry["id"], "category"] = "risk score (derived)"
    columns, score_notes = risk_score_columns(info, raw, list(block.get("scores", [])))
    notes += score_notes
    if not columns:
        notes.append("no risk score in this cohort (catalogue risk scores or a LASSO-Cox model): no clinical model")
    fitted = []
    if columns and settings.endpoint not in obs.columns:
        notes.append(f"endpoint {settings.endpoint}: not in this cohort; no clinical model")
        columns = []
    for column in columns:
        try:
            fitted.append(clinical_model(obs, raw[column], settings))
        except CohortError as error:
            notes.append(str(error))
            continue
        if column in roles:
            fitted[-1].notes.insert(0, roles[column])
    text = (
        f"Endpoint {settings.endpoint}; covariates {', '.join(settings.covariates) or 'none'}; horizons "
        f"{', '.join(f'{h:g}' for h in settings.horizons)} years; {settings.bootstrap} bootstrap resamples "
        f"(seed {settings.seed}); calibration groups of about {settings.group_size} patients."
    )
    section = clinical_models_section(label, fitted, notes=notes, settings_text=text)
    return CohortClinicalModels(models=fitted, tables=model_tables(fitted), section=section)
