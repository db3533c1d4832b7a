"""Survival analysis of per-sample scores: Cox models, Kaplan-Meier splits, cutpoints, C-index and AUC.

Every score is standardised (z-score over the samples analysed for that endpoint, sample SD), so hazard
ratios are per standard deviation. Times in the cohort are in days; evaluation times are given in years.

Methods and where they come from
- Cox proportional-hazards models are fitted in `cox` by Newton-Raphson with Efron's handling of tied event
  times (Efron 1977, JASA 72:557), batched over scores so that hundreds of models cost one pass; the
  results are checked against R `survival::coxph(ties = "efron")` (tests/data/make_survival_fixture.R).
  Lifelines is far slower per model (about 40 ms, against microseconds here), which matters for
  300 scores x several endpoints.
- Log-rank tests are the Mantel-Haenszel test with the hypergeometric variance, as `survival::survdiff`.
- The optimal cutpoint is the maximally selected log-rank statistic (Lausen & Schumacher 1992,
  Biometrics 48:73; Hothorn & Lausen 2003, CSDA 43:121) exactly as R `maxstat.test(smethod = "LogRank")`
  computes it; its p-value is corrected for the search over cutpoints with Lausen & Schumacher's
  approximation (`pmethod = "Lau92"`, conservative), or optionally by permutation of the log-rank scores.
  The plain log-rank p-value at the chosen cutpoint is reported too, labelled as uncorrected.
- Harrell's C and the cumulative/dynamic time-dependent AUC (Uno et al. 2007 estimator with inverse
  probability of censoring weights) come from scikit-survival, both of the fitted linear predictor
  (coef x score) as R `coxph` reports its concordance, so a protective score has C >= 0.5 too; the
  Schoenfeld-residual test of proportional hazards (Grambsch & Therneau 1994) in `cox.schoenfeld_test`, from the
  same Efron fits, with lifelines' numbers (its `proportional_hazard_test`, KM time scale);
  Kaplan-Meier curves and at-risk tables from lifelines; Benjamini-Hochberg FDR from scipy (R's `p.adjust` arithmetic).
  The DerSimonian-Laird random-effects meta-analysis (DerSimonian & Laird 1986) is written out here
  because statsmodels' version does not truncate a negative between-study variance at 0 (see
  `random_effects_meta`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from .config import settings_from_block, with_schema_defaults
from .cox import cox_fit, cox_multivariable, cox_univariate, schoenfeld_test
from .endpoints import endpoint_names
from .errors import CohortError, ConfigError
from .numerics import bh_fdr, standardise

DAYS_PER_YEAR = 365.25
COVARIATES = ("age", "stage", "sex")
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4}


# --------------------------------------------------------------------------------------------------
# Input: endpoints and covariates from the cohort's sample table
# --------------------------------------------------------------------------------------------------


def available_endpoints(obs: pd.DataFrame, requested: list[str]) -> tuple[list[str], list[str]]:
    """The requested endpoints that have both columns and at least one known value; notes for the rest."""
    present, notes = [], []
    for endpoint in requested:
        columns = [endpoint, f"{endpoint}.time"]
        if not all(c in obs.columns for c in columns):
            notes.append(
                f"endpoint {endpoint}: no {' / '.join(c for c in columns if c not in obs.columns)} "
                "column in this cohort; not analysed"
            )
        elif obs[columns].dropna().empty:
            notes.append(f"endpoint {endpoint}: no sample has both {endpoint} and {endpoint}.time; not analysed")
        else:
            present.append(endpoint)
    return present, notes


def endpoint_frame(obs: pd.DataFrame, endpoint: str) -> tuple[pd.DataFrame, list[str]]:
    """Samples usable for `endpoint`: a frame (index = sample) with `time` (days) and `event` (0/1).

    Samples with a missing time or status, or with zero or negative follow-up, are left out and counted in
    the warnings (a zero follow-up says nothing about survival and breaks risk sets at time 0).
    """
    absent = [c for c in (endpoint, f"{endpoint}.time") if c not in obs.columns]
    if absent:
        raise CohortError(
            f"endpoint {endpoint}: no {' / '.join(absent)} column in this cohort (its endpoints: "
            f"{', '.join(endpoint_names(obs)) or 'none'})"
        )
    time = pd.to_numeric(obs[f"{endpoint}.time"], errors="coerce")
    event = pd.to_numeric(obs[endpoint], errors="coerce")
    known = event.dropna()
    bad = known[~known.isin([0, 1])]
    if len(bad):
        raise CohortError(
            f"endpoint {endpoint}: status must be 0/1; sample {bad.index[0]!r} has {number(bad.iloc[0])} "
            f"({len(bad)} samples with other values)"
        )
    notes = []
    missing = time.isna() | event.isna()
    if missing.any():
        examples = ", ".join(map(str, time.index[missing][:5]))
        notes.append(
            f"{endpoint}: {int(missing.sum())} of {len(obs)} samples without follow-up time or status "
            f"(no usable {endpoint} endpoint) were left out (e.g. {examples})"
        )
    nonpositive = ~missing & (time <= 0)
    if nonpositive.any():
        examples = ", ".join(map(str, time.index[nonpositive][:3]))
        notes.append(
            f"{endpoint}: {int(nonpositive.sum())} samples with zero or negative follow-up time were "
            f"left out (e.g. {examples})"
        )
    keep = ~missing & ~nonpositive
    frame = pd.DataFrame({"time": time[keep].astype(float), "event": event[keep].astype(int)})
    return frame, notes


def median_follow_up_days(time: pd.Series, event: pd.Series) -> float:
    """Reverse Kaplan-Meier median follow-up (Schemper & Smith 1996): censoring treated as the event.

    Only positive times count (as in the survival analysis: a time of 0 is no follow-up). NaN ("not
    estimable") when no sample is censored after time 0 or the reverse KM never falls to 0.5.
    """
    from lifelines import KaplanMeierFitter

    time, event = pd.to_numeric(time, errors="coerce"), pd.to_numeric(event, errors="coerce")
    mask = time.notna() & event.notna() & (time > 0)
    if mask.sum() == 0 or (event[mask] == 0).sum() == 0:
        return math.nan
    fitter = KaplanMeierFitter().fit(time[mask], event_observed=1 - event[mask])
    median = float(fitter.median_survival_time_)
    return median if math.isfinite(median) else math.nan


# Follow-up outside these bounds (after conversion to days) almost always means a wrong time unit
# (months declared as days gives a median of a few "days"; days declared as months or years, centuries).
MIN_PLAUSIBLE_FOLLOW_UP_DAYS = 90.0
MAX_PLAUSIBLE_FOLLOW_UP_YEARS = 50.0


def follow_up_warnings(
    obs: pd.DataFrame, time_unit: str | None = None, declared: Mapping[str, Mapping[str, Any]] | None = None
) -> list[str]:
    """Warnings for endpoints whose median follow-up (days in `obs`) is implausible for the declared unit.

    `declared`: the endpoint records of `uns["harmonisation"]["endpoints"]` (name -> unit and the config
    key that declares it); an endpoint not in it is taken to be in `time_unit` (or the source's days).
    The reverse-KM median is used; when it is not estimable (no censoring), the median observed time.
    """
    warnings_: list[str] = []
    for endpoint in endpoint_names(obs):
        record = (declared or {}).get(endpoint) or {}
        unit = record.get("unit") or time_unit
        declared_as = f"the declared time unit ({unit})" if unit else "the source's time unit (days)"
        key = (
            f"{record['declared_in']}.unit"
            if str(record.get("declared_in", "")).startswith("geo.endpoints")
            else "geo.time_unit"
        )
        time = pd.to_numeric(obs[f"{endpoint}.time"], errors="coerce")
        event = pd.to_numeric(obs[endpoint], errors="coerce")
        known = time.notna() & event.notna()
        if not known.any():
            continue
        median = median_follow_up_days(time[known], event[known])
        what = "median follow-up"
        if not math.isfinite(median):
            median, what = float(time[known].median()), "median observed time"
        years = median / DAYS_PER_YEAR
        if median < MIN_PLAUSIBLE_FOLLOW_UP_DAYS:
            problem = (
                f"under {MIN_PLAUSIBLE_FOLLOW_UP_DAYS:.0f} days, implausibly short for a survival cohort: "
                "are times in months or years declared as days?"
            )
        elif years > MAX_PLAUSIBLE_FOLLOW_UP_YEARS:
            problem = (
                f"over {MAX_PLAUSIBLE_FOLLOW_UP_YEARS:.0f} years, implausibly long: are times in days "
                "declared as months or years?"
            )
        else:
            continue
        warnings_.append(
            f"{endpoint}: {what} is {median:.4g} days ({median / (DAYS_PER_YEAR / 12):.3g} months) "
            f"after conversion from {declared_as}; {problem} Check {key} against the series "
            "description; every time-dependent result depends on it."
        )
    return warnings_


def parse_stage(value: Any) -> float:
    """'Stage IIIA' / 'III' / 'tnm stage: 3' -> 3; anything else -> NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value) if 1 <= value <= 4 else math.nan
    match = re.search(r"(?:^|stage\s*)(IV|I{1,3})(?:[ABC]\d?)?\b", str(value).strip(), flags=re.IGNORECASE)
    if match:
        return float(_ROMAN[match.group(1).upper()])
    match = re.fullmatch(r"\s*(?:stage\s*)?([1-4])[abc]?\s*", str(value), flags=re.IGNORECASE)
    return float(match.group(1)) if match else math.nan


def covariate_frame(obs: pd.DataFrame, covariates: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Numeric covariates: age (years), stage (I-IV as 1-4, one log-HR per stage step), sex (male = 1).

    Other names are taken as numeric obs columns. Covariates that are absent, all missing or constant are
    dropped with a note.
    """
    columns: dict[str, pd.Series] = {}
    notes = []
    for name in covariates:
        if name not in obs.columns:
            notes.append(f"covariate {name!r}: no such column in the sample table; left out")
            continue
        raw = obs[name]
        if name == "stage":
            values = raw.map(parse_stage).astype(float)
        elif name == "sex":
            text = raw.astype("string").str.strip().str.lower()
            values = text.map({"male": 1.0, "m": 1.0, "female": 0.0, "f": 0.0}).astype(float)
            unknown = text.notna() & values.isna()
            if unknown.any():
                notes.append(
                    f"covariate sex: {int(unknown.sum())} values not male/female (e.g. "
                    f"{text[unknown].iloc[0]!r}) treated as missing"
                )
            name = "male"
        else:
            values = pd.to_numeric(raw, errors="coerce").astype(float)
        if values.notna().sum() == 0:
            notes.append(f"covariate {name!r}: no known values; left out")
        elif values.dropna().nunique() < 2:
            notes.append(f"covariate {name!r}: the same value in every sample; left out")
        else:
            columns[name] = values
    return pd.DataFrame(columns, index=obs.index), notes


# --------------------------------------------------------------------------------------------------
# Log-rank tests and the optimal cutpoint
# --------------------------------------------------------------------------------------------------


@dataclass
class LogRank:
    chisq: float
    df: int
    p: float
    observed: dict[str, float] = field(default_factory=dict)
    expected: dict[str, float] = field(default_factory=dict)


def logrank_test(time: np.ndarray, event: np.ndarray, groups: np.ndarray | pd.Series) -> LogRank:
    """k-group log-rank test with the hypergeometric variance (as survival::survdiff, rho = 0)."""
    from scipy import stats

    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=int)
    groups = pd.Series(np.asarray(groups)).astype("string")
    labels = sorted(groups.dropna().unique())
    if len(labels) < 2:
        return LogRank(math.nan, 0, math.nan)
    member = np.stack([(groups == g).to_numpy(dtype=float) for g in labels])  # (G, n)
    event_times = np.unique(time[event == 1])
    at_risk_time = (time[None, :] >= event_times[:, None]).astype(float)  # (T, n)
    dies = ((time[None, :] == event_times[:, None]) & (event[None, :] == 1)).astype(float)
    n_g = at_risk_time @ member.T  # (T, G)
    d_g = dies @ member.T
    n_t, d_t = n_g.sum(axis=1), d_g.sum(axis=1)
    share = n_g / n_t[:, None]
    observed, expected = d_g.sum(axis=0), (d_t[:, None] * share).sum(axis=0)
    factor = d_t * (n_t - d_t) / np.where(n_t > 1, n_t - 1, 1)
    variance = np.einsum("t,tg,gh->gh", factor, share, np.eye(len(labels))) - np.einsum(
        "t,tg,th->gh", factor, share, share
    )
    diff = (observed - expected)[:-1]
    chisq = float(diff @ np.linalg.pinv(variance[:-1, :-1]) @ diff)
    df = len(labels) - 1
    return LogRank(chisq, df, float(stats.chi2.sf(chisq, df)), dict(zip(labels, observed)), dict(zip(labels, expected)))


def logrank_scores(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Log-rank (Savage) scores a_i = d_i - sum_{j: t_j <= t_i} d_j / (N - rank_j + 1), as exactRankTests."""
    from scipy import stats

    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    n = len(time)
    order = np.argsort(time, kind="stable")
    # ties share the largest rank, so every tied subject sees the whole tie group's increments
    rank_max = stats.rankdata(time, method="max").astype(int)
    fact = event / (n - rank_max + 1)
    cumulative = np.cumsum(fact[order])
    return event - cumulative[rank_max - 1]


def lausen92_p(statistic: float, minprop: float = 0.1, maxprop: float = 0.9) -> float:
    """Lausen & Schumacher (1992) approximation to P(max |T| >= b) over cutpoints in [minprop, maxprop]."""
    from scipy import stats

    b = float(statistic)
    if not np.isfinite(b) or b < 1:
        return 1.0
    density = stats.norm.pdf(b)
    p = 4 * density / b + density * (b - 1 / b) * math.log((maxprop * (1 - minprop)) / ((1 - maxprop) * minprop))
    return float(min(max(p, 0.0), 1.0))


@dataclass
class Cutpoint:
    cutpoint: float
    statistic: float
    p_corrected: float
    p_uncorrected: float
    n_high: int
    n_low: int
    method: str


def maxstat_cutpoint(
    time: np.ndarray,
    event: np.ndarray,
    x: np.ndarray,
    *,
    minprop: float = 0.1,
    maxprop: float = 0.9,
    method: str = "lausen92",
    permutations: int = 1000,
    seed: int = 0,
) -> Cutpoint:
    """Maximally selected log-rank statistic over cutpoints of `x` (R maxstat.test, smethod = "LogRank").

    Groups are x <= cutpoint (low) and x > cutpoint (high). `method`: "lausen92" (Lausen & Schumacher
    1992 approximation, maxstat's pmethod = "Lau92") or "permutation" (log-rank scores permuted).
    """
    from scipy import stats

    time, event, x = (np.asarray(a, dtype=float) for a in (time, event, x))
    n = len(x)
    scores = logrank_scores(time, event)
    order = np.argsort(x, kind="stable")
    y, x_sorted = scores[order], x[order]
    ties = np.r_[False, x_sorted[1:] == x_sorted[:-1]]
    m = np.flatnonzero(~ties)
    m = m[(m >= max(1, math.floor(n * minprop))) & (m <= math.floor(n * maxprop))]
    if len(m) == 0:
        return Cutpoint(math.nan, math.nan, math.nan, math.nan, 0, 0, method)
    total, sq = y.sum(), (y**2).sum()
    expected = m / n * total
    variance = m * (n - m) / (n**2 * (n - 1)) * (n * sq - total**2)
    if not np.all(variance > 0):
        return Cutpoint(math.nan, math.nan, math.nan, math.nan, 0, 0, method)
    statistics = np.abs((np.cumsum(y)[m - 1] - expected) / np.sqrt(variance))
    best = int(np.argmax(statistics))
    statistic = float(statistics[best])
    cut = float(x_sorted[m[best] - 1])
    if method == "lausen92":
        p = lausen92_p(statistic, minprop, maxprop)
    elif method == "permutation":
        rng = np.random.default_rng(seed)
        perm = np.stack([rng.permutation(y) for _ in range(permutations)])
        null = np.abs((np.cumsum(perm, axis=1)[:, m - 1] - expected) / np.sqrt(variance)).max(axis=1)
        p = float((1 + np.sum(null >= statistic - 1e-12)) / (permutations + 1))
    else:
        raise ConfigError(f"survival.cutpoint.p_method = {method!r}: use 'lausen92' or 'permutation'")
    high = x > cut
    # the uncorrected p of the same standardised statistic (two-sided normal): a log-rank test of the chosen
    # split uses another variance and can come out above the corrected p, which reads as a contradiction
    uncorrected = float(2 * stats.norm.sf(statistic))
    return Cutpoint(cut, statistic, p, uncorrected, int(high.sum()), int((~high).sum()), method)


# --------------------------------------------------------------------------------------------------
# Discrimination: Harrell's C and time-dependent AUC (scikit-survival)
# --------------------------------------------------------------------------------------------------


def harrell_c(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    from sksurv.metrics import concordance_index_censored

    ok = np.isfinite(risk)
    if ok.sum() < 3 or not np.asarray(event)[ok].any():
        return math.nan
    return float(
        concordance_index_censored(
            np.asarray(event)[ok].astype(bool), np.asarray(time, dtype=float)[ok], np.asarray(risk, dtype=float)[ok]
        )[0]
    )


def evaluable_times(time: np.ndarray, event: np.ndarray, years: list[float]) -> tuple[list[float], list[str]]:
    """Evaluation times (years) with events before them and follow-up beyond them."""
    keep, notes = [], []
    time, event = np.asarray(time, dtype=float), np.asarray(event, dtype=int)
    for year in years:
        days = year * DAYS_PER_YEAR
        if not np.any((time <= days) & (event == 1)) or not np.any(time > days) or days >= time.max():
            notes.append(f"AUC at {year:g} years not estimable (no events before it or no follow-up beyond it)")
        else:
            keep.append(year)
    return keep, notes


def time_auc(time: np.ndarray, event: np.ndarray, risk: np.ndarray, years: list[float]) -> dict[float, float]:
    """Cumulative/dynamic AUC at `years` (must come from `evaluable_times`)."""
    from sksurv.metrics import cumulative_dynamic_auc
    from sksurv.util import Surv

    ok = np.isfinite(risk)
    if not years or ok.sum() < 5:
        return dict.fromkeys(years, math.nan)
    outcome = Surv.from_arrays(np.asarray(event)[ok].astype(bool), np.asarray(time, dtype=float)[ok])
    try:
        auc, _ = cumulative_dynamic_auc(
            outcome, outcome, np.asarray(risk, dtype=float)[ok], np.asarray(years) * DAYS_PER_YEAR
        )
    except ValueError:
        return dict.fromkeys(years, math.nan)
    return dict(zip(years, map(float, auc)))


# --------------------------------------------------------------------------------------------------
# Proportional hazards, FDR and DerSimonian-Laird meta-analysis
# --------------------------------------------------------------------------------------------------


def ph_check(frame: pd.DataFrame, duration: str = "time", event: str = "event") -> pd.DataFrame:
    """Schoenfeld-residual test per term of a Cox model of `event`/`duration` on the other columns of `frame`."""
    terms = [column for column in frame.columns if column not in (duration, event)]
    x = frame[terms].to_numpy(dtype=float)[None, :, :]
    return ph_checks(frame[duration].to_numpy(), frame[event].to_numpy(), x, terms)[0]


def ph_checks(time: np.ndarray, event: np.ndarray, x: np.ndarray, terms: list[str]) -> list[pd.DataFrame]:
    """Schoenfeld-residual tests (Grambsch & Therneau 1994, KM time scale, as lifelines'
    `proportional_hazard_test`) of k Cox models on covariates x (k, n, p) named `terms`, fitted in one batch;
    rows with a non-finite covariate are left out of their model."""
    fit = cox_fit(time, event, x)
    statistic, p = schoenfeld_test(time, event, x, fit)
    index = pd.Index(terms, name="term")
    return [pd.DataFrame({"test_statistic": statistic[i], "p": p[i]}, index=index) for i in range(len(x))]


@dataclass
class MetaResult:
    log_hr: float
    se: float
    hr: float
    hr_lower: float
    hr_upper: float
    p: float
    tau2: float
    i2: float
    q: float
    k: int


def random_effects_meta(log_hr: np.ndarray, se: np.ndarray) -> MetaResult:
    """DerSimonian-Laird random-effects pooling of log hazard ratios (DerSimonian & Laird 1986, Control Clin
    Trials 7:177), as R `metafor::rma(method = "DL")`.

    The moment estimate of the between-study variance, tau^2 = (Q - (k - 1)) / (sum w - sum w^2 / sum w), is
    truncated at 0 (a variance cannot be negative). statsmodels' `combine_effects` (0.14/0.15, method_re "dl"
    and "chi2") does not truncate it: for concordant studies (Q < k - 1) the random-effects weights go
    negative, the pooled HR leaves the range of the studies (1.46 and 1.47 pooled to 1.06) and the SE becomes
    NaN. I^2 is metafor's 100 tau^2 / (tau^2 + s^2), s^2 the typical within-study variance.
    """
    from scipy import stats

    log_hr, se = np.asarray(log_hr, dtype=float), np.asarray(se, dtype=float)
    ok = np.isfinite(log_hr) & np.isfinite(se) & (se > 0)
    log_hr, se = log_hr[ok], se[ok]
    k = len(log_hr)
    if k == 0:
        return MetaResult(*([math.nan] * 9), k=0)
    weight = 1 / se**2
    fixed = float(np.sum(weight * log_hr) / np.sum(weight))
    q = float(np.sum(weight * (log_hr - fixed) ** 2))
    scaling = float(np.sum(weight) - np.sum(weight**2) / np.sum(weight))
    tau2 = max(0.0, (q - (k - 1)) / scaling) if k > 1 else 0.0
    typical_variance = (k - 1) / scaling if k > 1 else 0.0
    i2 = 100 * tau2 / (tau2 + typical_variance) if tau2 > 0 else 0.0
    random_weight = 1 / (se**2 + tau2)
    pooled = float(np.sum(random_weight * log_hr) / np.sum(random_weight))
    pooled_se = float(math.sqrt(1 / np.sum(random_weight)))
    z = stats.norm.ppf(0.975)
    return MetaResult(
        pooled,
        pooled_se,
        math.exp(pooled),
        math.exp(pooled - z * pooled_se),
        math.exp(pooled + z * pooled_se),
        float(2 * stats.norm.sf(abs(pooled / pooled_se))),
        tau2,
        i2,
        q,
        k,
    )


# --------------------------------------------------------------------------------------------------
# One endpoint, every score
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CutpointSettings:
    """`survival.cutpoint`: the optimal cutpoint's p-value correction and smallest group."""

    p_method: Literal["lausen92", "permutation"]
    min_group_fraction: float
    permutations: int


@dataclass(frozen=True)
class LassoSettings:
    """`survival.lasso`: the LASSO-Cox risk model, trained on `discovery` and applied unchanged to `validation`."""

    enabled: bool
    validation: list[str]
    endpoint: str
    folds: int
    seed: int
    discovery: str | None = None  # the schema has no default: needed only when enabled
    universe: list[str] | dict[str, list[str]] | None = None


@dataclass(frozen=True)
class SurvivalSettings:
    """The `survival:` config block, complete; every default comes from the schema (`from_config`)."""

    endpoints: str | list[str]  # "all" or names
    covariates: list[str]
    auc_years: list[float]
    cutpoint: CutpointSettings
    min_events: int
    min_events_per_variable: float
    ph_check_top: int
    ph_alpha: float
    plots_top: int
    genes_of_interest: list[str]
    checkpoint_genes: list[str]
    panels: dict[str, list[str]]
    panel_folds: int
    seed: int
    lasso: LassoSettings

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None = None) -> SurvivalSettings:
        """The settings of a `survival:` block; keys it leaves out take the schema's defaults."""
        values = with_schema_defaults(block, "survival")
        values["cutpoint"] = settings_from_block(CutpointSettings, values["cutpoint"], "survival.cutpoint")
        values["lasso"] = settings_from_block(LassoSettings, values["lasso"], "survival.lasso")
        return settings_from_block(cls, values, "survival")


@dataclass
class EndpointResult:
    endpoint: str
    table: pd.DataFrame  # one row per score
    multivariable_terms: dict[str, pd.DataFrame]
    ph: dict[str, pd.DataFrame]
    frame: pd.DataFrame  # time, event and the standardised scores of the samples used
    covariates: pd.DataFrame
    auc_years: list[float]
    warnings: list[str]


def tertile_groups(values: pd.Series) -> pd.Series:
    try:
        return pd.qcut(values, 3, labels=["low", "mid", "high"])
    except ValueError:
        return pd.Series(pd.NA, index=values.index, dtype="object")


def median_groups(values: pd.Series | np.ndarray) -> np.ndarray:
    """'high' above the median, 'low' at or below it (as R's `x > median(x)`)."""
    values = np.asarray(values, dtype=float)
    return np.where(values > np.median(values), "high", "low")


# A score analysed as continuous (HR per SD, C, AUC, median / tertile / optimal splits) needs at least this
# many distinct values, and no single value in more than this share of the samples: a gene that is 0 in 420
# of 424 tumours has an "HR per SD" driven by 4 samples and no median or tertiles.
MIN_DISTINCT_VALUES = 10
MAX_MODAL_FRACTION = 0.5


def discreteness(values: pd.Series) -> str:
    """Why `values` (NaN ignored) cannot be analysed as a continuous score, or '' when it can."""
    known = values.dropna()
    if known.empty:
        return "no values"
    counts = known.value_counts()
    modal_fraction = counts.iloc[0] / len(known)
    if len(counts) < MIN_DISTINCT_VALUES or modal_fraction > MAX_MODAL_FRACTION:
        return (
            f"{len(counts)} distinct values; {number(counts.index[0])} in {int(counts.iloc[0])} of {len(known)} samples"
        )
    return ""


def number(value: Any) -> str:
    """A number for a message: 3, -5, 0.25, 1.2e-07 (never np.float64(-5.0))."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return str(value)


SPLIT_COLUMNS = [
    "c_index",
    "direction",
    "km_median_p",
    "km_median_no_event_group",
    "km_tertile_p",
    "cutpoint",
    "cutpoint_statistic",
    "cutpoint_p",
    "cutpoint_p_uncorrected",
    "cutpoint_n_high",
]
TEXT_COLUMNS = ("km_median_no_event_group", "direction")  # empty, not NaN, for a score not analysed


def analyse_endpoint(
    obs: pd.DataFrame, scores: pd.DataFrame, endpoint: str, settings: SurvivalSettings | None = None
) -> EndpointResult:
    """Univariate and multivariable Cox, KM splits, cutpoint, C and AUC for every score on one endpoint.

    `scores`: samples x scores on the raw scale (index = sample ids, a subset of obs.index). Scores are
    standardised over the samples with a usable follow-up. Scores with too few distinct values
    (`discreteness`) are not analysed (column `not_analysed` gives the reason); a split that cannot be made
    is a note. `settings`: the schema's defaults when not given.
    """
    settings = settings or SurvivalSettings.from_config()
    surv, notes = endpoint_frame(obs.loc[obs.index.intersection(scores.index)], endpoint)
    raw = scores.loc[surv.index].astype(float)
    z = standardise(raw)
    refusal = endpoint_refusal(endpoint, surv, settings.min_events)
    if refusal:
        return EndpointResult(endpoint, pd.DataFrame(), {}, {}, surv, pd.DataFrame(), [], [*notes, refusal])
    constant, discrete, excluded_notes = unanalysable_scores(endpoint, raw, z)
    notes.extend(excluded_notes)
    excluded = set(constant) | set(discrete)
    time, event = surv["time"].to_numpy(), surv["event"].to_numpy()
    table = univariate_table(endpoint, time, event, z, constant, discrete)
    auc_years, auc_notes = evaluable_times(time, event, settings.auc_years)
    notes.extend(f"{endpoint}: {n}" for n in auc_notes)
    notes.extend(add_split_statistics(table, endpoint, time, event, z, raw, excluded, auc_years, settings))
    covariates, cov_notes = covariate_frame(obs.loc[surv.index], settings.covariates)
    notes.extend(f"{endpoint}: {n}" for n in cov_notes)
    usable = [c for c in z.columns if c not in excluded]
    terms, ph, mv_notes = add_multivariable(table, endpoint, surv, z[usable], covariates, settings)
    notes.extend(mv_notes)
    frame = pd.concat([surv, z], axis=1)
    return EndpointResult(endpoint, table.reset_index(), terms, ph, frame, covariates, auc_years, notes)


def endpoint_refusal(endpoint: str, surv: pd.DataFrame, min_events: int) -> str:
    """Why the endpoint cannot be analysed at all (no events, too few samples or events), or ''."""
    events = int(surv["event"].sum())
    if len(surv) and not events:
        return (
            f"{endpoint}: no events among {len(surv)} samples (every follow-up is censored); "
            "endpoint not analysed. Check the endpoint's event field and event values"
        )
    if len(surv) < 10 or events < min_events:
        return (
            f"{endpoint}: {len(surv)} samples with {events} events; at least 10 samples and "
            f"{min_events} events are needed; endpoint not analysed"
        )
    return ""


def unanalysable_scores(
    endpoint: str, raw: pd.DataFrame, z: pd.DataFrame
) -> tuple[list[str], dict[str, str], list[str]]:
    """The scores constant in every sample, those too discrete to be continuous (with the reason), and notes."""
    notes = []
    constant = [c for c in z.columns if z[c].isna().all()]
    if constant:
        notes.append(
            f"{endpoint}: {len(constant)} score(s) constant (or unknown) in every sample, no survival "
            f"statistics: {', '.join(constant[:5])}{' ...' if len(constant) > 5 else ''}"
        )
    discrete = {c: discreteness(raw[c]) for c in z.columns if c not in constant}
    discrete = {c: reason for c, reason in discrete.items() if reason}
    if discrete:
        notes.append(
            f"{endpoint}: {len(discrete)} score(s) with too few distinct values to be analysed as continuous "
            f"scores (fewer than {MIN_DISTINCT_VALUES} distinct values, or one value in more than "
            f"{MAX_MODAL_FRACTION:.0%} of the samples); no survival statistics: "
            + "; ".join(f"{c} ({r})" for c, r in list(discrete.items())[:5])
            + (" ..." if len(discrete) > 5 else "")
        )
    return constant, discrete, notes


def univariate_table(
    endpoint: str, time: np.ndarray, event: np.ndarray, z: pd.DataFrame, constant: list[str], discrete: dict[str, str]
) -> pd.DataFrame:
    """Univariate Cox per score (the discrete ones left unfitted), the reason a score is not analysed, BH FDRs."""
    z_analysed = z.copy()
    z_analysed[list(discrete)] = np.nan
    table = cox_univariate(time, event, z_analysed)
    table.insert(0, "endpoint", endpoint)
    table["not_analysed"] = ["constant" if c in constant else discrete.get(c, "") for c in table.index]
    table["fdr"] = bh_fdr(table["p_wald"])
    table["fdr_lr"] = bh_fdr(table["p_lr"])
    return table


@dataclass
class SplitStatistics:
    """C, AUC, Kaplan-Meier splits and optimal cutpoint of one score, and the splits it could not have."""

    row: dict[str, Any]  # SPLIT_COLUMNS and auc_<year>y
    impossible: list[str]  # "median split", "tertiles", "optimal cutpoint"
    groups_without_events: list[str]


def split_statistics(
    time: np.ndarray,
    event: np.ndarray,
    values: np.ndarray,
    raw_values: np.ndarray,
    coef: float,
    auc_years: list[float],
    settings: SurvivalSettings,
) -> SplitStatistics:
    """The statistics of one score over the samples where it is known (`values` standardised, `raw_values` not)."""
    row: dict[str, Any] = {}
    impossible: list[str] = []
    # R coxph's concordance is that of the fitted linear predictor coef * score: a protective score
    # (HR < 1) is concordant when a low score goes with early death, so C >= 0.5 in the fitted direction
    sign = float(np.sign(coef)) if np.isfinite(coef) and coef != 0 else 0.0
    if sign == 0.0:  # no usable fit (monotone likelihood): the direction in which the score concords
        sign = 1.0 if harrell_c(time, event, values) >= 0.5 else -1.0
    row["direction"] = "higher score, higher risk" if sign > 0 else "higher score, lower risk"
    row["c_index"] = harrell_c(time, event, sign * values)
    for year, auc in time_auc(time, event, sign * values, auc_years).items():
        row[f"auc_{year:g}y"] = auc
    high = median_groups(values)
    without: list[str] = []
    if len(set(high)) < 2:
        impossible.append("median split")
        row["km_median_p"], row["km_median_no_event_group"] = math.nan, ""
    else:
        median_test = logrank_test(time, event, high)
        without = [g for g, o in median_test.observed.items() if o == 0]
        row["km_median_p"], row["km_median_no_event_group"] = median_test.p, ",".join(without)
    tert = tertile_groups(pd.Series(values))
    if tert.notna().all():
        row["km_tertile_p"] = logrank_test(time, event, tert.to_numpy()).p
    else:
        impossible.append("tertiles")
        row["km_tertile_p"] = math.nan
    cutpoint = settings.cutpoint
    cut = maxstat_cutpoint(
        time,
        event,
        raw_values,
        minprop=cutpoint.min_group_fraction,
        maxprop=1 - cutpoint.min_group_fraction,
        method=cutpoint.p_method,
        permutations=cutpoint.permutations,
        seed=settings.seed,
    )
    if not np.isfinite(cut.cutpoint):
        impossible.append("optimal cutpoint")
    row.update(
        cutpoint=cut.cutpoint,
        cutpoint_statistic=cut.statistic,
        cutpoint_p=cut.p_corrected,
        cutpoint_p_uncorrected=cut.p_uncorrected,
        cutpoint_n_high=cut.n_high,
    )
    return SplitStatistics(row, impossible, without)


def add_split_statistics(
    table: pd.DataFrame,
    endpoint: str,
    time: np.ndarray,
    event: np.ndarray,
    z: pd.DataFrame,
    raw: pd.DataFrame,
    excluded: set[str],
    auc_years: list[float],
    settings: SurvivalSettings,
) -> list[str]:
    """`split_statistics` of every analysed score as columns of `table` (NaN or '' for the others); notes."""
    columns = SPLIT_COLUMNS + [f"auc_{year:g}y" for year in auc_years]
    extra: dict[str, list[Any]] = {key: [] for key in columns}
    no_event_groups: list[str] = []
    impossible: dict[str, list[str]] = {"median split": [], "tertiles": [], "optimal cutpoint": []}
    for column in z.columns:
        values = z[column]
        ok = values.notna().to_numpy()
        if column in excluded or ok.sum() < 10:
            for key in extra:
                extra[key].append(math.nan if key not in TEXT_COLUMNS else "")
            continue
        stats_ = split_statistics(
            time[ok],
            event[ok],
            values.to_numpy()[ok],
            raw[column].to_numpy()[ok],
            table.at[column, "coef"],
            auc_years,
            settings,
        )
        for key in columns:
            extra[key].append(stats_.row[key])
        for split in stats_.impossible:
            impossible[split].append(column)
        if stats_.groups_without_events:
            no_event_groups.append(f"{column} ({'/'.join(stats_.groups_without_events)})")
    notes = []
    for split, names in impossible.items():
        if names:
            notes.append(
                f"{endpoint}: {split} not possible for {len(names)} score(s) (tied values leave a group "
                f"empty or smaller than allowed): {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
            )
    for key, values in extra.items():
        table[key] = values
    if no_event_groups:
        notes.append(
            f"{endpoint}: a median-split group has no events for {len(no_event_groups)} score(s), e.g. "
            f"{', '.join(no_event_groups[:3])}; its Kaplan-Meier curve stays at 1 and the log-rank test "
            "rests on the other group"
        )
    return notes


def add_multivariable(
    table: pd.DataFrame,
    endpoint: str,
    surv: pd.DataFrame,
    z: pd.DataFrame,
    covariates: pd.DataFrame,
    settings: SurvivalSettings,
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], list[str]]:
    """Each score of `z` adjusted for the covariates (columns mv_* of `table`), with a proportional-hazards check
    (ph_p, ph_violation) for the `ph_check_top` strongest; the model terms, the checks and notes."""
    notes: list[str] = []
    terms: dict[str, pd.DataFrame] = {}
    ph: dict[str, pd.DataFrame] = {}
    for col in ["mv_hr", "mv_hr_lower", "mv_hr_upper", "mv_p", "mv_n", "mv_events", "ph_p", "ph_violation"]:
        table[col] = np.nan if col != "ph_violation" else ""
    usable = list(z.columns)
    if covariates.shape[1] == 0:
        notes.append(f"{endpoint}: no usable clinical covariate; no multivariable model")
        return terms, ph, notes
    if not usable:
        return terms, ph, notes
    complete = covariates.notna().all(axis=1)
    mv_events = int(surv.loc[complete, "event"].sum())
    parameters = covariates.shape[1] + 1
    if mv_events < settings.min_events_per_variable * parameters:
        notes.append(
            f"{endpoint}: too few events for a multivariable model: {mv_events} events in "
            f"{int(complete.sum())} samples with complete covariates for {parameters} parameters "
            f"(at least {settings.min_events_per_variable} per parameter needed); not fitted"
        )
        return terms, ph, notes
    if mv_events < 10 * parameters:
        notes.append(
            f"{endpoint}: {mv_events} events for {parameters} parameters in the multivariable "
            "model (fewer than 10 per parameter): estimates may be unstable"
        )
    mv, terms = cox_multivariable(surv["time"].to_numpy(), surv["event"].to_numpy(), z, covariates)
    table.loc[usable, "mv_hr"] = mv["hr"]
    table.loc[usable, "mv_hr_lower"] = mv["hr_lower"]
    table.loc[usable, "mv_hr_upper"] = mv["hr_upper"]
    table.loc[usable, "mv_p"] = mv["p_wald"]
    table.loc[usable, "mv_n"] = mv["n"]
    table.loc[usable, "mv_events"] = mv["events"]
    ph, ph_notes = check_proportional_hazards(table, endpoint, surv, z, covariates, settings)
    return terms, ph, notes + ph_notes


def check_proportional_hazards(
    table: pd.DataFrame,
    endpoint: str,
    surv: pd.DataFrame,
    z: pd.DataFrame,
    covariates: pd.DataFrame,
    settings: SurvivalSettings,
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Schoenfeld tests of the `ph_check_top` strongest multivariable models, into `table` (ph_p, ph_violation)."""
    notes: list[str] = []
    ph: dict[str, pd.DataFrame] = {}
    ranked = table.loc[list(z.columns)].sort_values("mv_p").index[: settings.ph_check_top]
    ranked = [score for score in ranked if np.isfinite(table.at[score, "mv_p"])]
    x = np.empty((len(ranked), len(z), covariates.shape[1] + 1))
    x[:, :, 0] = z[ranked].to_numpy(dtype=float).T
    x[:, :, 1:] = covariates.loc[z.index].to_numpy(dtype=float)[None, :, :]
    checks = (
        ph_checks(
            surv.loc[z.index, "time"].to_numpy(),
            surv.loc[z.index, "event"].to_numpy(),
            x,
            ["score", *covariates.columns],
        )
        if ranked
        else []
    )
    for score, result in zip(ranked, checks):
        if not result["p"].notna().all():
            notes.append(f"{endpoint}: proportional-hazards check failed for {score}: no finite test statistic")
            continue
        ph[score] = result
        table.at[score, "ph_p"] = float(result["p"].min())
        violated = result.index[result["p"] < settings.ph_alpha]
        table.at[score, "ph_violation"] = ",".join(violated)
    flagged = table.index[table["ph_violation"].astype(str) != ""]
    if len(flagged):
        notes.append(
            f"{endpoint}: proportional hazards doubtful (Schoenfeld test p < {settings.ph_alpha}) "
            f"for {len(flagged)} of {len(ph)} checked models, e.g. "
            + "; ".join(f"{s}: {table.at[s, 'ph_violation']}" for s in flagged[:3])
        )
    return ph, notes
