"""Clinical models: a Cox nomogram of a risk score with stage and age, its calibration and decision curves.

What the papers that build a ferroptosis risk score show next, computed here as R `rms` computes it:

- The model is a multivariable Cox model (Efron ties) of the risk score and the clinical covariates, fitted
  with the project's Cox fitter (`cox.cox_fit`, checked against R `survival::coxph`); stage is I-IV as
  1-4 (one log-HR per stage step), age in years, as the survival stage encodes them (`covariate_frame`).
- The nomogram follows `rms::nomogram` (Harrell, Regression Modeling Strategies, 2nd ed. 2015, ch. 20; the
  rms package): each predictor has an axis over its display range (a discrete predictor: its values; a
  continuous one: R `pretty()` ticks over its full range, as `rms::datadist` and
  `rms::nomogram` choose them); the predictor whose linear-predictor contribution spans the widest range gets 0-100
  points and the others are scaled alike; total points map back to the linear predictor and, through the
  baseline survival, to the predicted survival at each horizon. The baseline is the Breslow-type estimate
  that `survival::survfit.coxph` gives for an Efron fit (its Efron correction of tied deaths; Breslow's
  estimate when no deaths tie), at the covariate means as `rms::cph` stores it.
- Calibration at each horizon is `rms::calibrate(fit, cmethod = "KM", method = "boot", u, m, B)`: patients
  are grouped by predicted survival (about m per group), the Kaplan-Meier survival at the horizon in each
  group is compared with the mean prediction, and Harrell's bootstrap (Harrell, Lee & Mark 1996, Stat Med
  15:361; Efron & Tibshirani 1993) estimates the optimism of observed - predicted by refitting the model on
  B resamples (seeded) and subtracting the mean (training - test) difference. `bootstrap_indices` may be
  given, which is how the tests reproduce R's resamples exactly.
- Decision curves are those of Vickers & Elkin 2006 (Med Decis Making 26:565) for survival outcomes
  (Vickers et al. 2008, BMC Med Inform Decis Mak 8:53): at a threshold probability pt of the event by the
  horizon, the patients whose predicted risk is >= pt are "treated"; net benefit = P(treated)
  (1 - S_KM,treated(t)) - P(treated) S_KM,treated(t) pt / (1 - pt), against treating all (the
  Kaplan-Meier risk of everyone) and none (0). The tests check it against a hand computation and against
  the `dcurves` package (PyPI 1.1.7, committed output), which agrees to 1e-12 wherever it gives a value;
  dcurves gives none where every treated patient's follow-up ends before the horizon, and is therefore not
  used: here their Kaplan-Meier survival is carried forward from their last follow-up.

The fixture tests/data/clinical_models/ (R script beside it) holds R `rms` 6.x output on a small data set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .config import settings_from_block, with_schema_defaults
from .cox import CoxBatch, cox_fit
from .errors import CohortError, ConfigError
from .survival import DAYS_PER_YEAR, covariate_frame, endpoint_frame

MAX_POINTS = 100.0
DISCRETE_MAX_VALUES = 10  # rms::datadist keeps the values of a predictor with at most this many (n.unique)
PRETTY_INTERVALS = 10  # rms::nomogram's nint: about this many ticks on a continuous axis


# --------------------------------------------------------------------------------------------------
# Settings and data
# --------------------------------------------------------------------------------------------------


@dataclass
class ClinicalSettings:
    """The `clinical_models:` config block (its defaults are the schema's: `from_config`)."""

    horizons: list[float]  # years
    covariates: list[str]
    endpoint: str
    bootstrap: int
    seed: int
    group_size: int  # rms::calibrate's m: patients per calibration group
    min_events_per_variable: float
    # the decision-curve threshold grid: fixed, not a config key
    thresholds: list[float] = field(default_factory=lambda: [round(t, 2) for t in np.arange(0.01, 1.0, 0.01)])

    @classmethod
    def from_config(cls, block: dict[str, Any] | None) -> ClinicalSettings:
        filled = with_schema_defaults(block, "clinical_models")
        filled["horizons"] = [float(h) for h in filled["horizons"]]
        if not filled["horizons"] or any(h <= 0 for h in filled["horizons"]):
            raise ConfigError(f"clinical_models.horizons: give positive times in years, not {filled['horizons']!r}")
        return settings_from_block(cls, filled, "clinical_models", ignore=["scores"])


def clinical_frame(
    obs: pd.DataFrame, score: pd.Series, *, endpoint: str, covariates: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """Samples with the endpoint (time in years, event) and the score and covariates; notes for what is missing.

    A covariate the cohort lacks (no column, no known value, constant) is left out of the model with a note
    naming it; samples missing a value of a kept predictor are left out and counted.
    """
    surv, notes = endpoint_frame(obs, endpoint)
    clinical, covariate_notes = covariate_frame(obs.loc[surv.index], covariates)
    notes += [f"{n} (the clinical model is fitted without it)" for n in covariate_notes]
    name = str(score.name)
    frame = pd.DataFrame(
        {
            "time": surv["time"] / DAYS_PER_YEAR,
            "event": surv["event"],
            name: pd.to_numeric(score.reindex(surv.index), errors="coerce"),
        }
    )
    frame = frame.join(clinical)
    incomplete = frame.isna().any(axis=1)
    if incomplete.any():
        missing = {c: int(frame.loc[incomplete, c].isna().sum()) for c in frame.columns if frame[c].isna().any()}
        notes.append(
            f"{int(incomplete.sum())} of {len(frame)} samples left out of the clinical model for missing "
            + ", ".join(f"{c} ({k})" for c, k in missing.items())
        )
    return frame[~incomplete], notes


# --------------------------------------------------------------------------------------------------
# The Cox model and its baseline
# --------------------------------------------------------------------------------------------------


@dataclass
class ClinicalCox:
    predictors: list[str]
    coef: np.ndarray
    se: np.ndarray
    center: float  # linear predictor at the covariate means (rms: fit$center)
    event_times: np.ndarray  # distinct event times (years), increasing
    baseline_hazard: np.ndarray  # cumulative hazard at the covariate means, at event_times
    n: int
    events: int
    loglik: float
    loglik_null: float

    def linear_predictor(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        values = x[self.predictors].to_numpy(dtype=float) if isinstance(x, pd.DataFrame) else np.asarray(x, float)
        return values @ self.coef

    def survival(self, horizon: float, lp: np.ndarray | float) -> np.ndarray:
        """Predicted survival at `horizon` years of patients with linear predictor `lp` (uncentred, X beta)."""
        step = np.searchsorted(self.event_times, horizon, side="right")
        hazard = self.baseline_hazard[step - 1] if step > 0 else 0.0
        return np.exp(-hazard * np.exp(np.asarray(lp, dtype=float) - self.center))

    def table(self) -> pd.DataFrame:
        z = 1.959963984540054
        return pd.DataFrame(
            {
                "term": self.predictors,
                "coef": self.coef,
                "se": self.se,
                "hr": np.exp(self.coef),
                "hr_lower": np.exp(self.coef - z * self.se),
                "hr_upper": np.exp(self.coef + z * self.se),
                "p_wald": 2 * _norm_sf(np.abs(self.coef / self.se)),
            }
        )


def _norm_sf(z: np.ndarray) -> np.ndarray:
    from scipy import stats

    return stats.norm.sf(z)


def fit_clinical_cox(
    frame: pd.DataFrame, predictors: list[str], *, min_events_per_variable: float = 1.0, what: str = "clinical model"
) -> ClinicalCox:
    """Cox model (Efron ties) of `predictors`, with the baseline cumulative hazard at the covariate means."""
    time = frame["time"].to_numpy(dtype=float)
    event = frame["event"].to_numpy(dtype=int)
    x = frame[predictors].to_numpy(dtype=float)
    events = int(event.sum())
    needed = math.ceil(min_events_per_variable * len(predictors))
    if events < max(needed, len(predictors) + 1):
        raise CohortError(
            f"{what}: {events} events among {len(frame)} patients, too few for {len(predictors)} "
            f"predictors ({', '.join(predictors)}; at least {max(needed, len(predictors) + 1)} needed, "
            f"{min_events_per_variable:g} per predictor)"
        )
    fit = cox_fit(time, event, x[None])
    model = _clinical_cox(predictors, time, event, x, fit, 0)
    if model is None:
        coef = fit.coef[0]
        raise CohortError(
            f"{what}: the Cox model of {', '.join(predictors)} did not converge (coefficients "
            f"{np.round(coef, 3).tolist()}; monotone likelihood, e.g. every event on one side)"
        )
    return model


def _clinical_cox(
    predictors: list[str], time: np.ndarray, event: np.ndarray, x: np.ndarray, fit: CoxBatch, which: int
) -> ClinicalCox | None:
    """Model `which` of `fit` (fitted on these samples) with its baseline hazard; None if it did not converge."""
    coef = fit.coef[which]
    if not fit.converged[which] or not np.all(np.isfinite(coef)) or np.any(np.abs(coef) > 15):
        return None
    means = x.mean(axis=0)
    center = float(means @ coef)
    event_times, hazard = efron_baseline_hazard(time, event, x @ coef - center)
    return ClinicalCox(
        predictors=list(predictors),
        coef=coef,
        se=fit.se[which],
        center=center,
        event_times=event_times,
        baseline_hazard=hazard,
        n=len(time),
        events=int(event.sum()),
        loglik=float(fit.loglik[which]),
        loglik_null=float(fit.loglik_null[which]),
    )


def bootstrap_cox_fits(time: np.ndarray, event: np.ndarray, x: np.ndarray, resamples: np.ndarray) -> CoxBatch:
    """Cox fits of B bootstrap resamples (B x n indices into the n samples) in one batch: each sample weighted
    by how often a resample drew it, which is fitting that resample's replicated rows (`cox_fit` case weights)."""
    resamples = np.asarray(resamples)
    count, n = len(resamples), len(time)
    drawn = np.zeros((count, n))
    np.add.at(drawn, (np.repeat(np.arange(count), resamples.shape[1]), resamples.ravel()), 1.0)
    return cox_fit(time, event, np.broadcast_to(x, (count, n, x.shape[1])), drawn)


def efron_baseline_hazard(time: np.ndarray, event: np.ndarray, lp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative baseline hazard at each distinct event time, as survival::survfit.coxph for an Efron fit.

    At a time with d deaths and risk-set sum R (deaths' sum D), the hazard increment is
    sum_{j<d} 1 / (R - j/d D) (Efron's correction); with d = 1 it is Breslow's 1 / R.
    """
    order = np.argsort(time, kind="stable")
    time, event, risk = time[order], event[order], np.exp(lp[order])
    times = np.unique(time[event == 1])
    tail = np.concatenate([np.cumsum(risk[::-1])[::-1], [0.0]])
    at_risk = tail[np.searchsorted(time, times, side="left")]
    dead_risk = np.concatenate([[0.0], np.cumsum(risk * event)])
    dead_count = np.concatenate([[0], np.cumsum(event)])
    first, last = np.searchsorted(time, times, side="left"), np.searchsorted(time, times, side="right")
    tied, deaths = dead_risk[last] - dead_risk[first], dead_count[last] - dead_count[first]
    return times, np.cumsum(_efron_increments(at_risk, tied, deaths))


SEQUENTIAL_SUM = 8  # numpy sums fewer values than this one after the other (its pairwise sum unrolls from 8)


def _efron_increments(at_risk: np.ndarray, tied: np.ndarray, deaths: np.ndarray) -> np.ndarray:
    """sum_{j<d} 1 / (R - j/d D) at every event time, vectorised over the times.

    The same values as `np.sum(1.0 / (r - np.arange(d) / d * t))` time by time, to the last bit: below
    `SEQUENTIAL_SUM` terms numpy adds them one after the other, as here; a time with more tied deaths (rare) is
    summed by np.sum itself.
    """
    increments = np.zeros(len(at_risk))
    short = deaths < SEQUENTIAL_SUM
    for j in range(int(deaths[short].max(initial=0))):
        live = short & (deaths > j)
        increments[live] += 1.0 / (at_risk[live] - j / deaths[live] * tied[live])
    for i in np.flatnonzero(~short):
        r, t, d = at_risk[i], tied[i], deaths[i]
        increments[i] = np.sum(1.0 / (r - np.arange(d) / d * t))
    return increments


# --------------------------------------------------------------------------------------------------
# Nomogram
# --------------------------------------------------------------------------------------------------


def r_pretty(low: float, high: float, n: int = 5) -> np.ndarray:
    """R's `pretty(c(low, high), n)` (R_pretty in src/appl/pretty.c, default biases): round ticks covering the range."""
    min_n, shrink, h = n // 3, 0.75, 1.5
    h5 = 0.5 + 1.5 * h
    dx = high - low
    if dx == 0 and high == 0:
        cell, small = 1.0, True
    else:
        cell = max(abs(low), abs(high))
        u = 1 + (1 / (1 + h) if h5 >= 1.5 * h + 0.5 else 1.5 / (1 + h5))
        u *= max(1, n) * np.finfo(float).eps
        small = dx < cell * u * 3
    if small:
        if cell > 10:
            cell = 9 + cell / 10
        cell *= shrink
        if min_n > 1:
            cell /= min_n
    else:
        cell = dx / n if n > 1 else dx
    base = 10.0 ** math.floor(math.log10(cell))
    unit = base
    if 2 * base - cell < h * (cell - unit):
        unit = 2 * base
        if 5 * base - cell < h5 * (cell - unit):
            unit = 5 * base
            if 10 * base - cell < h * (cell - unit):
                unit = 10 * base
    eps = 1e-10
    ns = math.floor(low / unit + eps)
    nu = math.ceil(high / unit - eps)
    while ns * unit > low + eps * unit:
        ns -= 1
    while nu * unit < high - eps * unit:
        nu += 1
    k = int(0.5 + nu - ns)
    if k < min_n:
        k = min_n - k
        if ns >= 0:
            nu += k // 2
            ns -= k // 2 + k % 2
        else:
            ns -= k // 2
            nu += k // 2 + k % 2
    return np.arange(ns, nu + 1) * unit


def display_values(values: pd.Series) -> np.ndarray:
    """A predictor's nomogram axis as rms::nomogram draws it: the values of a predictor with at most 10
    (datadist's n.unique), else R `pretty(range, 10)` ticks over its full range (type.range = "full")."""
    values = values.dropna().astype(float)
    distinct = np.unique(values)
    if len(distinct) <= DISCRETE_MAX_VALUES:
        return distinct
    return r_pretty(float(distinct[0]), float(distinct[-1]), PRETTY_INTERVALS)


@dataclass
class Nomogram:
    axes: dict[str, pd.DataFrame]  # predictor -> columns value, points
    points_per_lp: float  # points per unit of linear predictor
    lp_at_zero: float  # linear predictor (X beta) of 0 total points
    model: ClinicalCox

    def total_points(self, x: pd.DataFrame) -> np.ndarray:
        return (self.model.linear_predictor(x) - self.lp_at_zero) * self.points_per_lp

    def linear_predictor(self, total_points: np.ndarray | float) -> np.ndarray:
        return self.lp_at_zero + np.asarray(total_points, dtype=float) / self.points_per_lp

    def survival(self, horizon: float, total_points: np.ndarray | float) -> np.ndarray:
        return self.model.survival(horizon, self.linear_predictor(total_points))

    def points_table(self) -> pd.DataFrame:
        return pd.concat([axis.assign(predictor=name) for name, axis in self.axes.items()], ignore_index=True)[
            ["predictor", "value", "points"]
        ]


def build_nomogram(
    model: ClinicalCox,
    frame: pd.DataFrame,
    *,
    axes: dict[str, np.ndarray] | None = None,
    max_points: float = MAX_POINTS,
) -> Nomogram:
    """rms::nomogram points: the predictor with the widest contribution range spans 0-`max_points`."""
    axes = axes or {p: display_values(frame[p]) for p in model.predictors}
    contributions = {p: np.asarray(axes[p], dtype=float) * b for p, b in zip(model.predictors, model.coef)}
    widest = max(np.ptp(c) for c in contributions.values())
    if widest <= 0:
        raise CohortError("clinical model: every predictor has a zero coefficient or a single value; no nomogram")
    scale = max_points / widest
    tables = {
        p: pd.DataFrame({"value": np.asarray(axes[p], dtype=float), "points": (c - c.min()) * scale})
        for p, c in contributions.items()
    }
    lp_at_zero = float(sum(c.min() for c in contributions.values()))
    return Nomogram(axes=tables, points_per_lp=scale, lp_at_zero=lp_at_zero, model=model)


# --------------------------------------------------------------------------------------------------
# Calibration (rms::calibrate, cmethod = "KM", method = "boot")
# --------------------------------------------------------------------------------------------------

MIN_CALIBRATION_EVENTS = 5  # rms::calibrate: a (re)sample with fewer events gives no estimate


def km_at(time: np.ndarray, event: np.ndarray, horizon: float, *, carry_forward: bool = False) -> float:
    """Kaplan-Meier survival at `horizon`. Past the last follow-up it is NaN unless 0, as rms::groupkm reads
    it, or with `carry_forward` the last value (decision curves: see the module docstring)."""
    if len(time) == 0:
        return math.nan
    ordered = np.sort(time)
    deaths = np.sort(time[event == 1])
    times = np.unique(deaths[deaths <= horizon + 1e-6])
    dying = np.searchsorted(deaths, times, side="right") - np.searchsorted(deaths, times, side="left")
    at_risk = len(ordered) - np.searchsorted(ordered, times, side="left")
    survival = float(np.prod(1 - dying / at_risk))
    if not carry_forward and horizon > ordered[-1] + 1e-6 and survival > 0:
        return math.nan
    return survival


def _baseline_at(model: ClinicalCox, horizon: float, max_time: float) -> float:
    """Baseline survival at `horizon` as rms::cph's surv.summary: NaN past the last follow-up (unless 0)."""
    survival = float(model.survival(horizon, model.center))
    return math.nan if horizon > max_time + 1e-6 and survival > 0 else survival


def calibration_cuts(predicted: np.ndarray, group_size: int) -> np.ndarray:
    """rms::calibrate's groups: quantiles of c(0, 1, predicted) into floor(n / m) groups."""
    groups = max(1, len(predicted) // group_size)
    return np.unique(np.quantile(np.concatenate([[0.0, 1.0], predicted]), np.linspace(0, 1, groups + 1)))


@dataclass
class GroupedKM:
    mean_predicted: np.ndarray
    km: np.ndarray
    patients: np.ndarray


def grouped_km(
    predicted: np.ndarray, time: np.ndarray, event: np.ndarray, horizon: float, cuts: np.ndarray
) -> GroupedKM:
    """rms::groupkm with fixed cuts: per group [c_i, c_i+1) (the last closed) the mean prediction and the KM
    (none for a group of fewer than 2 patients)."""
    groups = grouped_km_batch(predicted[None], time, event, horizon, cuts)
    return GroupedKM(groups.mean_predicted[0], groups.km[0], groups.patients[0])


def grouped_km_batch(
    predicted: np.ndarray, time: np.ndarray, event: np.ndarray, horizon: float, cuts: np.ndarray
) -> GroupedKM:
    """`grouped_km` of B sets of patients at once: predicted (B, m), time and event (B, m) or (m,) for all;
    the results are (B, groups).

    The Kaplan-Meier estimate of every group of every set comes from one histogram of the patients over the
    distinct event times up to the horizon: `km_at` of the group's patients to the last bit (the same integer
    counts, the same factors 1 - d/n multiplied in time order, with 1.0 at a time where the group has no
    death). The mean prediction of a group is numpy's mean of its members in their order, as `grouped_km` took it.
    """
    predicted = np.where(np.abs(predicted) < 1e-10, 0.0, predicted)
    sets, size = predicted.shape
    count = len(cuts) - 1
    time, event = np.broadcast_to(time, (sets, size)), np.broadcast_to(event, (sets, size))
    group = np.clip(np.searchsorted(cuts, predicted, side="right") - 1, 0, count - 1)
    cell = np.arange(sets)[:, None] * count + group  # (set, group) of each patient
    members = np.bincount(cell.ravel(), minlength=sets * count).reshape(sets, count)
    mean = np.full((sets, count), np.nan)
    for b in range(sets):
        order = np.argsort(group[b], kind="stable")  # each group's members, in their order
        bounds = np.cumsum(members[b])
        for g in np.flatnonzero(members[b]):
            mean[b, g] = predicted[b, order[bounds[g] - members[b, g] : bounds[g]]].mean()
    died = (event == 1) & (time <= horizon + 1e-6)
    times = np.unique(time[died])
    steps = len(times)
    # a patient is at risk at the event times up to its own: times[:position]
    position = np.searchsorted(times, time, side="right")
    at_risk_hist = np.bincount((cell * (steps + 1) + position).ravel(), minlength=sets * count * (steps + 1))
    at_risk = np.cumsum(at_risk_hist.reshape(sets, count, steps + 1)[..., ::-1], axis=2)[..., ::-1][..., 1:]
    death_cell = cell[died] * steps + np.searchsorted(times, time[died], side="left")
    dying = np.bincount(death_cell, minlength=sets * count * steps).reshape(sets, count, steps)
    with np.errstate(divide="ignore", invalid="ignore"):
        factors = np.ascontiguousarray(np.where(dying > 0, 1 - dying / np.ascontiguousarray(at_risk), 1.0))
    survival = np.prod(factors, axis=2)  # time by time, in order, as np.prod over the group's event times
    # km_at: NaN past the group's last follow-up, unless the survival is 0
    followed = np.bincount(cell[~(horizon > time + 1e-6)], minlength=sets * count).reshape(sets, count)
    km = np.where((members >= 2) & ((followed > 0) | (survival <= 0)), survival, np.nan)
    return GroupedKM(mean, km, np.where(members >= 2, members, 0))


def _calibration_distance(
    model: ClinicalCox,
    lp: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    horizon: float,
    cuts: np.ndarray,
    max_time: float,
) -> tuple[np.ndarray, GroupedKM | None]:
    """Observed (KM) - mean predicted survival per group, as rms::calibrate's `distance`."""
    if event.sum() < MIN_CALIBRATION_EVENTS:
        return np.full(len(cuts) - 1, np.nan), None
    predicted = _baseline_at(model, horizon, max_time) ** np.exp(lp - model.center)
    groups = grouped_km(predicted, time, event, horizon, cuts)
    return groups.km - groups.mean_predicted, groups


def bootstrap_calibration(
    frame: pd.DataFrame,
    model: ClinicalCox,
    horizons: list[float],
    *,
    group_size: int = 50,
    bootstrap: int = 200,
    seed: int = 0,
    bootstrap_indices: np.ndarray | None = None,
) -> pd.DataFrame:
    """rms::calibrate(cmethod = "KM", method = "boot") at each horizon: per group the mean prediction, the KM,
    its optimism over `bootstrap` resamples and the bootstrap-corrected KM (KM - mean optimism).

    rms refits the model on each resample once per horizon (one calibrate call each); the fit does not depend
    on the horizon, so here each resample is fitted once and serves every horizon (the same numbers).
    `bootstrap_indices` (B x n, 0-based) replaces the seeded resamples (the tests use R's). Resamples whose
    model does not converge or has fewer than 5 events are skipped, as predab.resample does; `n` counts the
    resamples that gave each group an estimate.
    """
    time = frame["time"].to_numpy(dtype=float)
    event = frame["event"].to_numpy(dtype=int)
    x = frame[model.predictors].to_numpy(dtype=float)
    lp = x @ model.coef
    cuts, original, groups = {}, {}, {}
    for horizon in horizons:
        predicted = _baseline_at(model, horizon, time.max()) ** np.exp(lp - model.center)
        if not np.all(np.isfinite(predicted)):
            raise CohortError(f"calibration at {horizon:g} years: beyond the last follow-up ({time.max():.2f} years)")
        cuts[horizon] = calibration_cuts(predicted, group_size)
        original[horizon], groups[horizon] = _calibration_distance(
            model, lp, time, event, horizon, cuts[horizon], time.max()
        )
        if groups[horizon] is None:
            raise CohortError(f"calibration at {horizon:g} years: fewer than {MIN_CALIBRATION_EVENTS} events")
    if bootstrap_indices is None:
        rng = np.random.default_rng(seed)
        bootstrap_indices = rng.integers(0, len(frame), size=(bootstrap, len(frame)))
    sums = {h: np.zeros((3, len(original[h]))) for h in horizons}  # training, test, resamples counted
    bootstrap_indices = np.asarray(bootstrap_indices)
    enough = np.array(
        [event[rows].sum() >= max(MIN_CALIBRATION_EVENTS, len(model.predictors) + 1) for rows in bootstrap_indices],
        dtype=bool,
    )
    fits = bootstrap_cox_fits(time, event, x, bootstrap_indices[enough]) if enough.any() else None
    refits = []  # (rows, refit, its linear predictor of every patient)
    for which, rows in enumerate(bootstrap_indices[enough]):
        refit = _clinical_cox(model.predictors, time[rows], event[rows], x[rows], fits, which)
        if refit is not None:
            refits.append((rows, refit, x @ refit.coef))
    if refits:
        rows = np.stack([r for r, _, _ in refits])  # (B, n) indices of each usable resample
        lps = np.stack([lp for _, _, lp in refits])
        centers = np.array([refit.center for _, refit, _ in refits])[:, None]
        for horizon in horizons:
            # the refit's predictions for the whole cohort (test) and for its own resample (training, the same
            # values at its rows), grouped and compared with the Kaplan-Meier estimates all resamples at once
            baseline = np.array([_baseline_at(refit, horizon, time[r].max()) for r, refit, _ in refits])[:, None]
            predicted = baseline ** np.exp(lps - centers)
            taken = np.take_along_axis(predicted, rows, axis=1)
            train_groups = grouped_km_batch(taken, time[rows], event[rows], horizon, cuts[horizon])
            test_groups = grouped_km_batch(predicted, time, event, horizon, cuts[horizon])
            train = train_groups.km - train_groups.mean_predicted
            test = test_groups.km - test_groups.mean_predicted
            if event.sum() < MIN_CALIBRATION_EVENTS:
                test[:] = np.nan
            train[event[rows].sum(axis=1) < MIN_CALIBRATION_EVENTS] = np.nan
            for b in range(len(refits)):  # summed resample by resample, in their order
                usable = np.isfinite(train[b] + test[b])
                sums[horizon] += [np.where(usable, train[b], 0.0), np.where(usable, test[b], 0.0), usable]
    tables = []
    for horizon in horizons:
        with np.errstate(invalid="ignore", divide="ignore"):
            training, testing = sums[horizon][0] / sums[horizon][2], sums[horizon][1] / sums[horizon][2]
        optimism = training - testing
        group = groups[horizon]
        tables.append(
            pd.DataFrame(
                {
                    "horizon": horizon,
                    "group": np.arange(1, len(optimism) + 1),
                    "index_orig": original[horizon],
                    "training": training,
                    "test": testing,
                    "mean_optimism": optimism,
                    "mean_corrected": original[horizon] - optimism,
                    "n": sums[horizon][2].astype(int),
                    "mean_predicted": group.mean_predicted,
                    "km": group.km,
                    "km_corrected": group.km - optimism,
                    "patients": group.patients,
                }
            )
        )
    return pd.concat(tables, ignore_index=True)


# --------------------------------------------------------------------------------------------------
# Decision curves (Vickers & Elkin 2006; Vickers et al. 2008 for survival; as dcurves::dca)
# --------------------------------------------------------------------------------------------------


def decision_curve(
    time: np.ndarray, event: np.ndarray, risk: np.ndarray, horizon: float, thresholds: list[float] | np.ndarray
) -> pd.DataFrame:
    """Net benefit of treating patients whose predicted risk of the event by `horizon` is >= each threshold.

    The event rate among the treated is 1 - their Kaplan-Meier survival at the horizon (censoring handled as
    dcurves does for survival outcomes); treat-all uses everyone, treat-none is 0.
    """
    time, event, risk = (np.asarray(a, dtype=float) for a in (time, event, risk))
    n = len(time)
    overall = 1 - km_at(time, event, horizon, carry_forward=True)
    rows = []
    for pt in np.asarray(thresholds, dtype=float):
        if not 0 < pt < 1:
            raise ConfigError(f"decision curve: threshold {float(pt):g} is not strictly between 0 and 1")
        odds = pt / (1 - pt)
        treated = risk >= pt
        share = treated.mean()
        if treated.any():
            rate = 1 - km_at(time[treated], event[treated], horizon, carry_forward=True)
            true_pos, false_pos = share * rate, share * (1 - rate)
        else:
            true_pos = false_pos = 0.0
        rows.append(
            {
                "threshold": pt,
                "model": true_pos - false_pos * odds,
                "treat_all": overall - (1 - overall) * odds,
                "treat_none": 0.0,
                "treated": int(treated.sum()),
                "n": n,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# One cohort: every risk score's clinical model
# --------------------------------------------------------------------------------------------------


@dataclass
class ClinicalModel:
    score: str
    endpoint: str
    frame: pd.DataFrame
    model: ClinicalCox
    nomogram: Nomogram
    calibration: pd.DataFrame  # every horizon evaluable
    decision: pd.DataFrame  # every horizon evaluable (column horizon)
    horizons: list[float]
    notes: list[str]


def risk_score_columns(info: pd.DataFrame, scores: pd.DataFrame, requested: list[str]) -> tuple[list[str], list[str]]:
    """The scores given clinical models: those `requested`, or every risk score (catalogue 'risk score' and the
    derived LASSO score) when none is; notes for requested scores this cohort lacks."""
    if requested:
        missing = [s for s in requested if s not in scores.columns]
        return [s for s in requested if s in scores.columns], [
            f"clinical_models.scores: {s!r} is not a score of this cohort; no clinical model" for s in missing
        ]
    risk = info.index[info["category"].astype(str).str.startswith("risk score")]
    return [s for s in scores.columns if s in risk], []


def evaluable_horizons(frame: pd.DataFrame, horizons: list[float]) -> tuple[list[float], list[str]]:
    """Horizons within follow-up (a patient still followed after it); notes for the others."""
    last = float(frame["time"].max()) if len(frame) else 0.0
    kept = [h for h in horizons if (frame["time"] > h).any()]
    return kept, [
        f"horizon {h:g} years: no patient followed beyond it (longest follow-up {last:.1f} years); not evaluated"
        for h in horizons
        if h not in kept
    ]


def clinical_model(obs: pd.DataFrame, score: pd.Series, settings: ClinicalSettings) -> ClinicalModel:
    """Nomogram, calibration and decision curves of `score` with the clinical covariates, on the endpoint."""
    frame, notes = clinical_frame(obs, score, endpoint=settings.endpoint, covariates=settings.covariates)
    predictors = [str(score.name)] + [c for c in frame.columns if c not in ("time", "event", score.name)]
    model = fit_clinical_cox(
        frame,
        predictors,
        min_events_per_variable=settings.min_events_per_variable,
        what=f"clinical model of {score.name} ({settings.endpoint})",
    )
    nomogram = build_nomogram(model, frame)
    horizons, horizon_notes = evaluable_horizons(frame, settings.horizons)
    notes += horizon_notes
    calibration = pd.DataFrame()
    if horizons:
        try:
            calibration = bootstrap_calibration(
                frame, model, horizons, group_size=settings.group_size, bootstrap=settings.bootstrap, seed=settings.seed
            )
        except CohortError as error:
            notes.append(str(error))
    decisions = []
    lp = model.linear_predictor(frame)
    for horizon in horizons:
        risk = 1 - model.survival(horizon, lp)
        decisions.append(
            decision_curve(
                frame["time"].to_numpy(), frame["event"].to_numpy(), risk, horizon, settings.thresholds
            ).assign(horizon=horizon)
        )
    return ClinicalModel(
        score=str(score.name),
        endpoint=settings.endpoint,
        frame=frame,
        model=model,
        nomogram=nomogram,
        calibration=calibration,
        decision=pd.concat(decisions, ignore_index=True) if decisions else pd.DataFrame(),
        horizons=horizons,
        notes=notes,
    )


def model_tables(models: list[ClinicalModel]) -> dict[str, pd.DataFrame]:
    """The results tables of a cohort's clinical models (one row block per score)."""

    def stacked(parts: list[pd.DataFrame]) -> pd.DataFrame:
        parts = [p for p in parts if not p.empty]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["score"])

    terms = [
        m.model.table().assign(score=m.score, endpoint=m.endpoint, n=m.model.n, events=m.model.events) for m in models
    ]
    return {
        "terms": stacked(terms),
        "points": stacked([m.nomogram.points_table().assign(score=m.score) for m in models]),
        "calibration": stacked([m.calibration.assign(score=m.score) for m in models if not m.calibration.empty]),
        "decision": stacked([m.decision.assign(score=m.score) for m in models if not m.decision.empty]),
    }
