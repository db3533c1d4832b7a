"""Prognostic and diagnostic models: LASSO-Cox risk scores, genes of interest, diagnostic gene panels.

- LASSO-Cox: scikit-survival's `CoxnetSurvivalAnalysis` (Simon et al. 2011, J Stat Softw 39(5)) with
  l1_ratio = 1 on per-gene z-scores of log2 expression; the penalty is chosen by K-fold cross-validation
  of Harrell's C (the score scikit-survival's estimators report), folds stratified by event. The fitted
  model becomes a catalogue entry (`weighted_sum` on per-cohort z-scores) and is applied unchanged to
  validation cohorts: only the per-gene centring and scaling is done within each cohort, which is what
  lets an RNA-seq model be applied to a microarray cohort.
- Gene-of-interest mode: tumour vs normal (Mann-Whitney on all samples; Wilcoxon signed-rank on patients
  with both), survival via ferrostem.survival, Spearman correlation with immune scores and checkpoints.
- Diagnostic panels: a cross-validated (stratified K-fold) L2 logistic regression of tumour vs normal on
  standardised panel genes (scikit-learn); ROC and AUC from the out-of-fold probabilities.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .errors import CohortError, ConfigError
from .files import atomic_write
from .progress import ProgressReport
from .numerics import bh_fdr, standardise
from .signatures import load_catalogue

RISK_INPUT_SCALE = "log2 expression, z-scored per gene within each cohort"


# --------------------------------------------------------------------------------------------------
# Gene universes and expression access
# --------------------------------------------------------------------------------------------------


def resolve_universe(
    universe: Any, catalogue_folder: str | os.PathLike[str] | None = None, *, key: str = "survival.lasso.universe"
) -> list[str]:
    """A gene list, or {catalogue: [signature ids]} resolved from the catalogue, or both ({genes, catalogue});
    `key` names the config key in messages.

    Catalogue entries are read with `signatures.load_catalogue` (schema-validated); a signature contributes every
    gene it scores (all parts, weights, housekeeping), with published symbol typos fixed.
    """
    if isinstance(universe, list):
        return list(dict.fromkeys(map(str, universe)))
    if not isinstance(universe, dict):
        raise ConfigError(f"{key} = {universe!r}: give a list of genes or {{catalogue: [ids]}}")
    genes = list(map(str, universe.get("genes", [])))
    ids = universe.get("catalogue", [])
    if ids:
        if catalogue_folder is None or not Path(catalogue_folder).is_dir():
            raise ConfigError(f"{key}.catalogue: no signature catalogue at {catalogue_folder}")
        signatures = {signature.id: signature for signature in load_catalogue(catalogue_folder)}
        for ident in ids:
            if ident not in signatures:
                raise ConfigError(
                    f"{key}.catalogue: no signature {ident!r} in "
                    f"{catalogue_folder} (known: {', '.join(sorted(signatures)[:10])} ...)"
                )
            signature = signatures[ident]
            genes.extend(signature.symbol_fixes.get(gene, gene) for gene in signature.genes)
    return list(dict.fromkeys(genes))


def log2_expression(adata, genes: list[str] | None = None) -> pd.DataFrame:
    """samples x genes of the cohort's log2 layer (only genes present)."""
    names = adata.var_names if genes is None else [g for g in genes if g in adata.var_names]
    view = adata[:, list(names)]
    values = view.layers["log2"] if "log2" in view.layers else view.X
    values = values.toarray() if hasattr(values, "toarray") else np.asarray(values)
    return pd.DataFrame(values, index=adata.obs_names, columns=list(names))


# --------------------------------------------------------------------------------------------------
# LASSO-Cox
# --------------------------------------------------------------------------------------------------


@dataclass
class LassoModel:
    weights: pd.Series  # gene -> coefficient on per-cohort z-scores (non-zero only)
    alpha: float
    cv: pd.DataFrame  # alpha, mean and SD of the held-out C-index, non-zero genes
    universe: list[str]
    missing_universe: list[str]
    n: int
    events: int
    endpoint: str
    folds: int
    seed: int
    warnings: list[str] = field(default_factory=list)


def lasso_cox(
    expression: pd.DataFrame,
    time: np.ndarray,
    event: np.ndarray,
    *,
    endpoint: str = "OS",
    folds: int = 5,
    seed: int = 0,
    n_alphas: int = 40,
    alpha_min_ratio: float = 0.02,
    universe: list[str] | None = None,
) -> LassoModel:
    """LASSO-Cox on per-gene z-scores; the penalty maximises the cross-validated Harrell's C."""
    from sklearn.model_selection import StratifiedKFold
    from sksurv.linear_model import CoxnetSurvivalAnalysis
    from sksurv.metrics import concordance_index_censored
    from sksurv.util import Surv

    universe = list(expression.columns) if universe is None else universe
    present = [g for g in universe if g in expression.columns]
    missing = [g for g in universe if g not in expression.columns]
    notes = []
    if missing:
        notes.append(
            f"{len(missing)} of {len(universe)} universe genes not in the discovery cohort "
            f"(e.g. {', '.join(missing[:5])})"
        )
    z = standardise(expression[present])
    constant = z.columns[z.isna().all()]
    if len(constant):
        notes.append(f"{len(constant)} universe genes constant in the discovery cohort; left out")
    z = z.drop(columns=constant)
    if z.shape[1] < 2:
        raise ConfigError(f"survival.lasso: only {z.shape[1]} usable universe genes in the discovery cohort")
    x = z.to_numpy()
    event = np.asarray(event, dtype=bool)
    if event.sum() < 2 or (~event).sum() < 2:
        raise CohortError(
            f"survival.lasso: endpoint {endpoint} has {int(event.sum())} events and "
            f"{int((~event).sum())} censored samples in the discovery cohort; cross-validation "
            "needs at least 2 of each (choose another survival.lasso.endpoint)"
        )
    y = Surv.from_arrays(event, np.asarray(time, dtype=float))
    path = CoxnetSurvivalAnalysis(l1_ratio=1.0, n_alphas=n_alphas, alpha_min_ratio=alpha_min_ratio).fit(x, y)
    alphas = path.alphas_
    n_splits = max(2, min(folds, int(event.sum()), int((~event).sum())))
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    scores = np.full((n_splits, len(alphas)), np.nan)
    progress = ProgressReport(
        f"LASSO-Cox cross-validation ({endpoint}, {len(alphas)} penalties)", n_splits, unit="folds", always=False
    )
    for i, (train, test) in enumerate(splitter.split(x, event)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = CoxnetSurvivalAnalysis(l1_ratio=1.0, alphas=alphas).fit(x[train], y[train])
        for j, _alpha in enumerate(alphas):
            risk = x[test] @ model.coef_[:, j]
            if np.ptp(risk) == 0 or not event[test].any():
                scores[i, j] = 0.5
                continue
            scores[i, j] = concordance_index_censored(event[test], y["time"][test], risk)[0]
        progress.add()
    progress.close()
    cv = pd.DataFrame(
        {
            "alpha": alphas,
            "cv_c_index": scores.mean(axis=0),
            "cv_c_sd": scores.std(axis=0),
            "nonzero": (np.abs(path.coef_) > 0).sum(axis=0),
        }
    )
    candidates = cv[cv["nonzero"] > 0]
    if candidates.empty:
        raise ConfigError("survival.lasso: the penalty path selects no gene at all")
    best = candidates.loc[candidates["cv_c_index"].idxmax()]
    column = int(np.argmin(np.abs(alphas - best["alpha"])))
    weights = pd.Series(path.coef_[:, column], index=z.columns)
    weights = weights[weights != 0].sort_values(key=np.abs, ascending=False)
    if best["cv_c_index"] < 0.55:
        notes.append(f"the cross-validated C-index of the selected model is only {best['cv_c_index']:.2f}")
    return LassoModel(
        weights=weights,
        alpha=float(best["alpha"]),
        cv=cv,
        universe=present,
        missing_universe=missing,
        n=len(event),
        events=int(event.sum()),
        endpoint=endpoint,
        folds=n_splits,
        seed=seed,
        warnings=notes,
    )


def risk_score_entry(model: LassoModel, cohort: str, *, endpoint: str | None = None) -> dict[str, Any]:
    """The model as a signature-catalogue entry (weighted sum on per-cohort gene z-scores)."""
    endpoint = endpoint or model.endpoint
    return {
        "id": f"lasso_cox_{cohort}_{endpoint}".lower(),
        "name": f"LASSO-Cox {endpoint} risk score derived from {cohort}",
        "category": "risk score",
        "status": "DERIVED",
        "genes": list(model.weights.index),
        "weights": {g: round(float(w), 6) for g, w in model.weights.items()},
        "method": "weighted_sum",
        "direction": f"higher = worse {endpoint}",
        "input_scale": RISK_INPUT_SCALE,
        "training_cohort": cohort,
        "citation": f"derived by ferrostem from {cohort}",
        "training": {
            "endpoint": endpoint,
            "samples": model.n,
            "events": model.events,
            "alpha": model.alpha,
            "cv_folds": model.folds,
            "seed": model.seed,
            "universe_genes": len(model.universe),
            "cv_c_index": round(
                float(model.cv.loc[np.isclose(model.cv["alpha"], model.alpha), "cv_c_index"].iloc[0]), 4
            ),
            "penalty": "L1 (CoxnetSurvivalAnalysis l1_ratio=1), chosen by cross-validated Harrell's C",
        },
    }


def write_entry(entry: dict[str, Any], path: str | os.PathLike[str]) -> None:
    with atomic_write(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump([entry], handle, sort_keys=False)


def read_entry(path: str | os.PathLike[str]) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        content = yaml.safe_load(handle)
    entry = content[0] if isinstance(content, list) else content
    for key in ["id", "genes", "weights", "method"]:
        if key not in entry:
            raise ConfigError(f"{path}: risk-score entry without {key!r}")
    if entry["method"] != "weighted_sum":
        raise ConfigError(f"{path}: method {entry['method']!r}; only weighted_sum risk scores can be applied here")
    return entry


@dataclass
class AppliedScore:
    score: pd.Series
    genes_used: list[str]
    genes_missing: list[str]
    missing_weight_share: float


def apply_risk_score(entry: dict[str, Any], expression: pd.DataFrame) -> AppliedScore:
    """Σ w_g z_g with the weights unchanged; z over the given samples (one cohort). Missing genes count 0."""
    weights = pd.Series(entry["weights"], dtype=float)
    used = [g for g in weights.index if g in expression.columns]
    missing = [g for g in weights.index if g not in expression.columns]
    z = standardise(expression[used]).fillna(0.0)
    score = (z * weights[used]).sum(axis=1) if used else pd.Series(np.nan, index=expression.index)
    share = float(weights[missing].abs().sum() / weights.abs().sum()) if len(weights) else math.nan
    return AppliedScore(score.rename(entry["id"]), used, missing, share)


# --------------------------------------------------------------------------------------------------
# Gene-of-interest mode
# --------------------------------------------------------------------------------------------------

# "In tumours" summaries (correlations, stage distributions, immune heatmaps) need this many tumour
# samples; below it they are not computed (never silently on all samples) and the report says so.
MIN_TUMOURS = 5


def too_few_tumours(n_tumours: int, analysis: str) -> str:
    """The note for `analysis` when a cohort has fewer than MIN_TUMOURS tumour samples, else ''."""
    if n_tumours >= MIN_TUMOURS:
        return ""
    return (
        f"{analysis}: not possible with {n_tumours} tumour sample{'s' if n_tumours != 1 else ''} "
        f"(at least {MIN_TUMOURS} needed)"
    )


def tumour_vs_normal(adata, genes: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Per gene: unpaired tumour vs normal (Mann-Whitney) and paired by patient (Wilcoxon signed-rank)."""
    from scipy import stats

    notes = []
    present = [g for g in genes if g in adata.var_names]
    for gene in genes:
        if gene not in adata.var_names:
            notes.append(f"gene of interest {gene}: not measured in this cohort")
    expression = log2_expression(adata, present)
    tissue = adata.obs["tissue"].astype(str)
    tumour, normal = expression[tissue == "tumor"], expression[tissue == "normal"]
    # len(), not .empty: a frame of no measured gene is empty even when it has normal samples
    if len(normal) == 0:
        notes.append("no normal samples: tumour vs normal comparison not possible")
    patients = adata.obs["patient_id"].astype(str) if "patient_id" in adata.obs else pd.Series(dtype=str)
    paired_t, paired_n = [], []
    if len(normal) and len(patients):
        by_patient_t = tumour.groupby(patients[tumour.index].to_numpy()).mean()
        by_patient_n = normal.groupby(patients[normal.index].to_numpy()).mean()
        both = by_patient_t.index.intersection(by_patient_n.index)
        paired_t, paired_n = by_patient_t.loc[both], by_patient_n.loc[both]
    rows = []
    for gene in present:
        row: dict[str, Any] = {
            "gene": gene,
            "n_tumour": len(tumour),
            "n_normal": len(normal),
            "mean_tumour": tumour[gene].mean(),
            "mean_normal": normal[gene].mean() if len(normal) else np.nan,
        }
        row["log2fc"] = row["mean_tumour"] - row["mean_normal"]
        row["p_mannwhitney"] = (
            stats.mannwhitneyu(tumour[gene], normal[gene]).pvalue if len(normal) >= 2 and len(tumour) >= 2 else np.nan
        )
        n_pairs = len(paired_t) if len(paired_t) else 0
        row["n_pairs"] = n_pairs
        if n_pairs >= 5:
            diff = paired_t[gene] - paired_n[gene]
            row["paired_log2fc"] = float(diff.mean())
            row["p_paired_wilcoxon"] = float(stats.wilcoxon(diff).pvalue) if diff.abs().sum() > 0 else 1.0
        else:
            row["paired_log2fc"], row["p_paired_wilcoxon"] = np.nan, np.nan
        rows.append(row)
    if present and 0 < (len(paired_t) if len(paired_t) else 0) < 5:
        notes.append(f"only {len(paired_t)} patients with both tumour and normal: no paired test")
    return pd.DataFrame(rows), notes


def spearman_table(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation of every column of `left` with every column of `right`, BH-FDR over all pairs.

    Complete columns are correlated at once (Pearson on average ranks, p from the t distribution with
    n - 2 degrees of freedom, as scipy.stats.spearmanr); pairs with missing values use their complete rows.
    """
    from scipy import stats

    common = left.index.intersection(right.index)
    left, right = left.loc[common], right.loc[common]
    complete_right = [c for c in right.columns if right[c].notna().all()]
    ranked_right = _standardised_ranks(right[complete_right])
    rows = []
    for a in left.columns:
        column = left[a]
        fast: dict[str, tuple[float, float]] = {}
        if column.notna().all() and complete_right:
            fast = _rank_correlations(_standardised_ranks(column.to_frame()), ranked_right, complete_right)
        for b in right.columns:
            if a == b:
                continue
            if b in fast:
                rho, p = fast[b]
                n = len(common)
            else:
                pair = pd.concat([column, right[b]], axis=1).dropna()
                n = len(pair)
                if n < 5 or pair.iloc[:, 0].nunique() < 2 or pair.iloc[:, 1].nunique() < 2:
                    rho, p = np.nan, np.nan
                else:
                    rho, p = stats.spearmanr(pair.iloc[:, 0], pair.iloc[:, 1])
            rows.append({"feature": a, "score": b, "n": n, "rho": rho, "p": p})
    table = pd.DataFrame(rows, columns=["feature", "score", "n", "rho", "p"])
    table["fdr"] = bh_fdr(table["p"]) if len(table) else []
    return table


def _standardised_ranks(frame: pd.DataFrame) -> np.ndarray:
    """Average ranks per column, centred and scaled to unit norm (NaN for constant columns)."""
    ranks = frame.rank(method="average").to_numpy(dtype=float)
    ranks -= ranks.mean(axis=0)
    norm = np.sqrt((ranks**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return ranks / np.where(norm > 0, norm, np.nan)


def _rank_correlations(left: np.ndarray, right: np.ndarray, names: list[str]) -> dict[str, tuple[float, float]]:
    from scipy import stats

    n = left.shape[0]
    if n < 5:
        return dict.fromkeys(names, (np.nan, np.nan))
    rho = np.clip((left.T @ right).ravel(), -1.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = rho * np.sqrt((n - 2) / np.maximum(1.0 - rho**2, 1e-300))
    p = 2 * stats.t.sf(np.abs(t), n - 2)
    return {name: (float(r), float(q)) for name, r, q in zip(names, rho, p)}


# --------------------------------------------------------------------------------------------------
# Diagnostic panels
# --------------------------------------------------------------------------------------------------


@dataclass
class PanelResult:
    name: str
    genes: list[str]
    missing: list[str]
    auc: float
    fold_auc: list[float]
    fpr: list[float]
    tpr: list[float]
    gene_auc: dict[str, float]
    coefficients: dict[str, float]
    n_tumour: int
    n_normal: int
    folds: int
    warnings: list[str] = field(default_factory=list)


def diagnostic_panel(adata, name: str, genes: list[str], *, folds: int = 5, seed: int = 0) -> PanelResult:
    """Cross-validated logistic regression of tumour (1) vs normal (0) on the panel's log2 expression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score, roc_curve
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    tissue = adata.obs["tissue"].astype(str)
    keep = tissue.isin(["tumor", "normal"]).to_numpy()
    present = [g for g in genes if g in adata.var_names]
    missing = [g for g in genes if g not in adata.var_names]
    notes = (
        [f"panel {name}: {', '.join(missing)} not measured; the panel uses {len(present)} of {len(genes)} genes"]
        if missing
        else []
    )
    y = (tissue[keep] == "tumor").to_numpy().astype(int)
    n_tumour, n_normal = int(y.sum()), int((1 - y).sum())
    empty = PanelResult(name, present, missing, math.nan, [], [], [], {}, {}, n_tumour, n_normal, 0, notes)
    if not present:
        notes.append(f"panel {name}: none of its genes is measured")
        return empty
    if min(n_tumour, n_normal) < 3:
        notes.append(f"panel {name}: {n_tumour} tumour and {n_normal} normal samples; at least 3 of each needed")
        return empty
    x = log2_expression(adata[keep], present).to_numpy()
    n_splits = min(folds, n_normal, n_tumour)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    probability = cross_val_predict(model, x, y, cv=splitter, method="predict_proba")[:, 1]
    fold_auc = [float(roc_auc_score(y[test], probability[test])) for _, test in splitter.split(x, y)]
    fpr, tpr, _ = roc_curve(y, probability)
    fitted = model.fit(x, y)
    coefficients = dict(zip(present, map(float, fitted[-1].coef_[0])))
    gene_auc = {g: float(roc_auc_score(y, x[:, i])) for i, g in enumerate(present)}
    return PanelResult(
        name,
        present,
        missing,
        float(roc_auc_score(y, probability)),
        fold_auc,
        list(map(float, fpr)),
        list(map(float, tpr)),
        gene_auc,
        coefficients,
        n_tumour,
        n_normal,
        n_splits,
        notes,
    )
