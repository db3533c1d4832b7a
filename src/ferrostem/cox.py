"""Cox proportional-hazards models, batched: Newton-Raphson with Efron's handling of tied event times (Efron 1977,
JASA 72:557), many models with the same samples in one pass.

Checked against R `survival::coxph(ties = "efron")` (tests/data/make_survival_fixture.R). Written here rather than
taken from lifelines because lifelines costs about 40 ms per model, against microseconds here, which matters for
300 scores x several endpoints (docs/survival.md, "Why an own Cox fitter").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class CoxBatch:
    """Fits of k Cox models with p covariates each on the same samples (rows masked per model)."""

    coef: np.ndarray  # (k, p)
    cov: np.ndarray  # (k, p, p) inverse information
    loglik: np.ndarray  # (k,)
    loglik_null: np.ndarray  # (k,)
    n: np.ndarray  # (k,) samples used
    events: np.ndarray  # (k,)
    converged: np.ndarray  # (k,) bool

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diagonal(self.cov, axis1=1, axis2=2), 0, None))

    @property
    def p_wald(self) -> np.ndarray:
        from scipy import stats

        with np.errstate(divide="ignore", invalid="ignore"):  # models without a fit (se 0) give NaN
            return 2 * stats.norm.sf(np.abs(self.coef / self.se))

    @property
    def p_lr(self) -> np.ndarray:
        from scipy import stats

        statistic = np.clip(2 * (self.loglik - self.loglik_null), 0, None)
        return stats.chi2.sf(statistic, df=self.coef.shape[1])


def _efron_terms(
    time: np.ndarray, event: np.ndarray, x: np.ndarray, mask: np.ndarray, beta: np.ndarray, event_means: bool = False
):
    """Efron log partial likelihood, score and information for k models at once (and, with `event_means`, the
    Efron-weighted covariate mean at each event time, (k, T, p), that Schoenfeld residuals are taken from).

    time/event: (n,) sorted by time; x: (k, n, p); mask: (k, n) 0/1; beta: (k, p).
    """
    k, n, p = x.shape
    eta = np.einsum("knp,kp->kn", x, beta)
    eta = np.where(mask > 0, eta, 0.0)
    shift = eta.max(axis=1, keepdims=True)
    risk = mask * np.exp(eta - shift)  # (k, n)
    rx = risk[:, :, None] * x  # (k, n, p)
    rxx = rx[:, :, :, None] * x[:, :, None, :]  # (k, n, p, p)

    event_times = np.unique(time[event == 1])
    start = np.searchsorted(time, event_times, side="left")  # first sample at risk / of the tie
    stop = np.searchsorted(time, event_times, side="right")  # one past the tie

    def at_risk(values: np.ndarray) -> np.ndarray:
        tail = np.flip(np.cumsum(np.flip(values, axis=1), axis=1), axis=1)
        return tail[:, start]

    # samples are sorted by time, so the events at one time are a contiguous block; the running sums over the
    # event rows alone are those over all rows with the others' 0 added (x + 0 = x): the same values
    events = np.flatnonzero(event == 1)
    before = np.searchsorted(events, start), np.searchsorted(events, stop)  # event rows before start / stop

    def tied(values: np.ndarray) -> np.ndarray:
        cumulative = np.zeros((k, len(events) + 1, *values.shape[2:]))
        np.cumsum(values, axis=1, out=cumulative[:, 1:])
        return cumulative[:, before[1]] - cumulative[:, before[0]]

    s0, s1, s2 = at_risk(risk), at_risk(rx), at_risk(rxx)  # (k,T), (k,T,p), (k,T,p,p)
    rx_events = rx[:, events]
    d0, d1 = tied(risk[:, events]), tied(rx_events)
    d2 = tied(rx_events[:, :, :, None] * x[:, events, None, :])
    deaths = tied(mask[:, events])  # tied events per time, per model
    # with integer case weights in `mask` (bootstrap draw counts) a tie holds more deaths than samples
    largest = max(int(np.max([event[a:b].sum() for a, b in zip(start, stop)], initial=0)), int(deaths.max(initial=0)))
    steps = np.arange(max(largest, 1))
    valid = steps[None, None, :] < deaths[:, :, None]  # (k, T, L): the l-th of the tied deaths at t
    weight = valid.astype(float)
    # Efron's terms are computed at the valid (k, t, l) only (most ties hold one death; L is the largest tie) and
    # laid out on the (k, T, L) grid with 0 elsewhere, where the sums below weight them by 0. The grids are laid out
    # in memory as the whole-grid arithmetic laid them out (t outermost: `s0` etc. are column selections), since
    # numpy's sums follow the memory order: the same sums, term by term and in the same order, to the last bit.
    kk, tt, ll = np.nonzero(valid)
    frac = ll / deaths[kk, tt]
    a0 = s0[kk, tt] - frac * d0[kk, tt]
    a1 = s1[kk, tt] - frac[:, None] * d1[kk, tt]
    a2 = s2[kk, tt] - frac[:, None, None] * d2[kk, tt]
    mean_valid = a1 / a0[:, None]
    shape = (valid.shape[1], valid.shape[0], valid.shape[2])  # (T, k, L)
    log_a0 = np.zeros(shape).transpose(1, 0, 2)
    log_a0[kk, tt, ll] = np.log(a0)
    mean = np.zeros((*shape, p)).transpose(1, 0, 2, 3)
    mean[kk, tt, ll] = mean_valid
    inner = np.zeros((*shape, p, p)).transpose(1, 0, 2, 3, 4)
    inner[kk, tt, ll] = a2 / a0[:, None, None] - mean_valid[:, :, None] * mean_valid[:, None, :]
    event_mask = mask * event[None, :]
    loglik = np.sum(event_mask * (eta - shift), axis=1) - np.sum(weight * log_a0, axis=(1, 2))
    score = np.einsum("kn,knp->kp", event_mask, x) - np.einsum("ktl,ktlp->kp", weight, mean)
    info = np.einsum("ktl,ktlpq->kpq", weight, inner)
    if event_means:
        return loglik, score, info, np.einsum("ktl,ktlp->ktp", weight, mean) / np.maximum(deaths, 1)[:, :, None]
    return loglik, score, info


def cox_fit(
    time: np.ndarray,
    event: np.ndarray,
    x: np.ndarray,
    mask: np.ndarray | None = None,
    max_iter: int = 30,
    tol: float = 1e-9,
) -> CoxBatch:
    """Fit k Cox models (Efron ties) by Newton-Raphson with step halving, as survival::coxph does.

    x: (k, n, p) covariates; mask: (k, n) with 1 for the samples each model uses (no NaN in used rows), or
    integer case weights, which act as that many copies of the sample (as fitting the replicated rows).
    """
    time, event, x, mask = _prepare(time, event, x, mask)
    k, n, p = x.shape
    beta = np.zeros((k, p))
    loglik, score, info = _efron_terms(time, event, x, mask, beta)
    loglik_null = loglik.copy()
    converged = np.zeros(k, dtype=bool)
    for _ in range(max_iter):
        step = _solve(info, score)
        trial = beta + step
        new_loglik, new_score, new_info = _efron_terms(time, event, x, mask, trial)
        # step halving where the likelihood went down (or is not finite)
        for _half in range(20):
            worse = ~np.isfinite(new_loglik) | (new_loglik < loglik - 1e-12)
            if not worse.any():
                break
            trial = np.where(worse[:, None], beta + (trial - beta) / 2, trial)
            new_loglik, new_score, new_info = _efron_terms(time, event, x, mask, trial)
        done = np.abs(new_loglik - loglik) <= tol * (np.abs(loglik) + tol)
        beta, loglik, score, info = trial, new_loglik, new_score, new_info
        converged |= done
        if converged.all():
            break
    cov = np.linalg.pinv(info)
    return CoxBatch(
        coef=beta,
        cov=cov,
        loglik=loglik,
        loglik_null=loglik_null,
        n=mask.sum(axis=1),
        events=(mask * event[None, :]).sum(axis=1),
        converged=converged,
    )


def _prepare(
    time: np.ndarray, event: np.ndarray, x: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Samples sorted by time, unusable rows (mask 0 or non-finite) zeroed, covariates centred per model."""
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=int)
    x = np.asarray(x, dtype=float)
    k, n, _ = x.shape
    mask = np.ones((k, n)) if mask is None else np.asarray(mask, dtype=float)
    mask = mask * np.all(np.isfinite(x), axis=2)
    x = np.where(mask[:, :, None] > 0, np.nan_to_num(x), 0.0)
    # centring changes no coefficient but keeps exp() in range
    centre = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1)[:, None]
    x = np.where(mask[:, :, None] > 0, x - centre[:, None, :], 0.0)
    order = np.argsort(time, kind="stable")
    return time[order], event[order], x[:, order], mask[:, order]


def schoenfeld_test(
    time: np.ndarray, event: np.ndarray, x: np.ndarray, fit: CoxBatch, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Grambsch-Therneau test of proportional hazards per term of k fitted models, (k, p) statistics and p-values.

    The approximation that R survival's cox.zph used before version 3.0 and lifelines'
    `proportional_hazard_test(time_transform="km")` uses (Grambsch & Therneau 1994, Biometrika 81:515): scaled
    Schoenfeld residuals r* = d x (x_i - Efron-weighted mean at t_i) @ cov at each event, against
    g = 1 - KM(t_i); T_j = (sum (g - mean g) r*_j)^2 / (d cov_jj sum (g - mean g)^2), chi-squared on 1 df.
    `fit` is `cox_fit(time, event, x, mask)`.
    """
    from scipy import stats

    time, event, x, mask = _prepare(time, event, x, mask)
    *_, event_mean = _efron_terms(time, event, x, mask, fit.coef, event_means=True)
    event_times = np.unique(time[event == 1])
    at_time = np.clip(np.searchsorted(event_times, time), 0, max(len(event_times) - 1, 0))
    used_event = mask * event[None, :]  # (k, n)
    deaths = used_event.sum(axis=1)  # (k,)
    residual = (x - event_mean[:, at_time, :]) * used_event[:, :, None]
    scaled = deaths[:, None, None] * np.einsum("knp,kpq->knq", residual, fit.cov)
    # 1 - Kaplan-Meier at each event time of each model's samples, as lifelines computes it (log scale)
    start = np.searchsorted(time, event_times, side="left")
    stop = np.searchsorted(time, event_times, side="right")
    at_risk = np.flip(np.cumsum(np.flip(mask, axis=1), axis=1), axis=1)[:, start]
    cumulative = np.concatenate([np.zeros((len(mask), 1)), np.cumsum(used_event, axis=1)], axis=1)
    died = cumulative[:, stop] - cumulative[:, start]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_step = np.where(died > 0, np.log(at_risk - died) - np.log(at_risk), 0.0)
    transformed = 1 - np.exp(np.cumsum(log_step, axis=1))[:, at_time]  # (k, n)
    centred = transformed - (transformed * used_event).sum(axis=1, keepdims=True) / np.maximum(deaths, 1)[:, None]
    centred = centred * used_event
    variance = np.diagonal(fit.cov, axis1=1, axis2=2)  # (k, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.einsum("kn,knp->kp", centred, scaled) ** 2 / (
            deaths[:, None] * variance * (centred**2).sum(axis=1)[:, None]
        )
    return statistic, stats.chi2.sf(statistic, df=1)


def _solve(info: np.ndarray, score: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(info, score[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.einsum("kpq,kq->kp", np.linalg.pinv(info), score)


def _exp(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.exp(values)


def _cox_table(fit: CoxBatch, index: pd.Index, term: int = 0) -> pd.DataFrame:
    from scipy import stats

    coef, se = fit.coef[:, term], fit.se[:, term]
    z = stats.norm.ppf(0.975)
    table = pd.DataFrame(
        {
            "n": fit.n.astype(int),
            "events": fit.events.astype(int),
            "coef": coef,
            "se": se,
            "hr": _exp(coef),
            "hr_lower": _exp(coef - z * se),
            "hr_upper": _exp(coef + z * se),
            "p_wald": fit.p_wald[:, term],
            "p_lr": fit.p_lr,
            "converged": fit.converged,
        },
        index=index,
    )
    # monotone likelihood (e.g. every event on one side) drives |coef| to infinity: no usable estimate
    unstable = ~fit.converged | (np.abs(coef) > 15)
    table.loc[unstable, ["coef", "se", "hr", "hr_lower", "hr_upper", "p_wald"]] = np.nan
    return table


def cox_univariate(time: np.ndarray, event: np.ndarray, scores: pd.DataFrame) -> pd.DataFrame:
    """One Cox model per column of `scores` (already standardised: HR per SD); NaN scores are left out."""
    values = scores.to_numpy(dtype=float).T[:, :, None]  # (k, n, 1)
    usable = np.isfinite(values[:, :, 0])
    constant = np.array([np.nanstd(v) == 0 if np.isfinite(v).sum() > 1 else True for v in values[:, :, 0]])
    fit = cox_fit(time, event, np.where(constant[:, None, None], 0.0, values), usable & ~constant[:, None])
    table = _cox_table(fit, scores.columns)
    table.loc[constant, ["coef", "se", "hr", "hr_lower", "hr_upper", "p_wald", "p_lr"]] = np.nan
    table = table.rename_axis("score")
    return table


def cox_multivariable(
    time: np.ndarray, event: np.ndarray, scores: pd.DataFrame, covariates: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Score + covariates, one model per score (complete cases). Returns the score rows and, per score, all terms."""
    from scipy import stats

    k, p = scores.shape[1], covariates.shape[1] + 1
    x = np.empty((k, len(scores), p))
    x[:, :, 0] = scores.to_numpy(dtype=float).T
    x[:, :, 1:] = covariates.to_numpy(dtype=float)[None, :, :]
    usable = np.all(np.isfinite(x), axis=2)
    fit = cox_fit(time, event, x, usable)
    score_rows = _cox_table(fit, scores.columns, term=0)
    score_rows = score_rows.rename_axis("score")
    terms = {}
    names = ["score", *covariates.columns]
    z = stats.norm.ppf(0.975)
    for i, score in enumerate(scores.columns):
        coef, se = fit.coef[i], fit.se[i]
        terms[score] = pd.DataFrame(
            {
                "term": names,
                "coef": coef,
                "se": se,
                "hr": _exp(coef),
                "hr_lower": _exp(coef - z * se),
                "hr_upper": _exp(coef + z * se),
                "p_wald": fit.p_wald[i],
            }
        )
    return score_rows, terms
